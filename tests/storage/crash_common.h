// Shared by the crash test and its writer process: the deterministic payload of (group, index),
// so the parent can check every stored entry byte for byte without being told its contents.
#pragma once

#include <cstdint>
#include <string>

namespace skiff::storage::crash {

inline uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

inline std::string Payload(uint64_t group, uint64_t index) {
  const uint64_t h = Mix(group * 1000003 + index);
  std::string out(64 + h % 6000, '\0');
  uint64_t x = h;
  for (char& c : out) {
    x = Mix(x);
    c = static_cast<char>(x);
  }
  return out;
}

inline constexpr int kGroups = 16;
inline constexpr int kThreads = 4;

}  // namespace skiff::storage::crash
