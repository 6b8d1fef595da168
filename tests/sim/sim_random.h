// SimRandom: the simulator's only source of randomness.
//
// One 64-bit seed decides every choice of a simulation run (which action, which message, which
// delay, which node crashes), so any failure replays exactly from its seed. The generator is
// xoshiro256** seeded through splitmix64; both are tiny, fast and have no platform-dependent
// behaviour (unlike std::uniform_int_distribution, whose output differs between libstdc++ and
// libc++). Never mix in std::random_device, time or addresses.
//
// Thread-safety: none; one generator per simulation run.
#pragma once

#include <cstdint>

#include "common/assert.h"

namespace skiff::sim {

// splitmix64 step: also used on its own as a cheap, well-mixed hash of a 64-bit value.
inline uint64_t SplitMix64(uint64_t& state) {
  state += 0x9e3779b97f4a7c15ULL;
  uint64_t z = state;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

inline uint64_t Mix64(uint64_t value) { return SplitMix64(value); }

class SimRandom {
 public:
  explicit SimRandom(uint64_t seed) {
    uint64_t sm = seed;
    for (uint64_t& word : state_) word = SplitMix64(sm);
  }

  uint64_t Next() {
    const uint64_t result = Rotl(state_[1] * 5, 7) * 9;
    const uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = Rotl(state_[3], 45);
    return result;
  }

  // Uniform in [0, n). Multiply-shift (Lemire) without the rejection step: the bias is below
  // 2^-32 for the small n used here, and determinism matters more than perfect uniformity.
  uint64_t Below(uint64_t n) {
    SKIFF_ASSERT(n > 0);
    return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
  }

  // Uniform in [lo, hi], inclusive.
  uint64_t Between(uint64_t lo, uint64_t hi) {
    SKIFF_ASSERT(lo <= hi);
    return lo + Below(hi - lo + 1);
  }

  bool Percent(uint64_t p) { return Below(100) < p; }
  bool OneIn(uint64_t n) { return Below(n) == 0; }

  // An independent generator derived from this one (e.g. one per node's raft seed).
  uint64_t DeriveSeed() { return Next() ^ 0x5851f42d4c957f2dULL; }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t state_[4];
};

}  // namespace skiff::sim
