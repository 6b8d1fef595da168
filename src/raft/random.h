// The node's private, seeded PRNG (splitmix64). Randomness is an input: the same seed and the
// same sequence of calls give the same numbers, which the deterministic simulator relies on.
#pragma once

#include <cstdint>

namespace skiff::raft {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}

  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  // Uniform-enough value in [0, n); n > 0. (Modulo bias is irrelevant for timeout jitter.)
  uint64_t Uniform(uint64_t n) { return Next() % n; }

 private:
  uint64_t state_;
};

}  // namespace skiff::raft
