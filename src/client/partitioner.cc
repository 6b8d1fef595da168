#include "client/partitioner.h"

#include "common/assert.h"

namespace skiff::client {

uint32_t Murmur2(std::string_view data) {
  constexpr uint32_t kSeed = 0x9747b28c;
  constexpr uint32_t m = 0x5bd1e995;
  constexpr int r = 24;
  const auto length = static_cast<uint32_t>(data.size());
  uint32_t h = kSeed ^ length;
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  const uint32_t quads = length / 4;
  for (uint32_t i = 0; i < quads; ++i) {
    const uint32_t j = i * 4;
    uint32_t k = static_cast<uint32_t>(bytes[j]) | (static_cast<uint32_t>(bytes[j + 1]) << 8) |
                 (static_cast<uint32_t>(bytes[j + 2]) << 16) |
                 (static_cast<uint32_t>(bytes[j + 3]) << 24);
    k *= m;
    k ^= k >> r;
    k *= m;
    h *= m;
    h ^= k;
  }
  const uint32_t tail = quads * 4;
  switch (length % 4) {
    case 3:
      h ^= static_cast<uint32_t>(bytes[tail + 2]) << 16;
      [[fallthrough]];
    case 2:
      h ^= static_cast<uint32_t>(bytes[tail + 1]) << 8;
      [[fallthrough]];
    case 1:
      h ^= static_cast<uint32_t>(bytes[tail]);
      h *= m;
  }
  h ^= h >> 13;
  h *= m;
  h ^= h >> 15;
  return h;
}

int32_t ChoosePartition(std::string_view key, int32_t partition_count, uint64_t& round_robin) {
  SKIFF_ASSERT(partition_count >= 1);
  const auto count = static_cast<uint32_t>(partition_count);
  if (key.empty()) return static_cast<int32_t>(round_robin++ % count);
  return static_cast<int32_t>((Murmur2(key) & 0x7fffffff) % count);
}

}  // namespace skiff::client
