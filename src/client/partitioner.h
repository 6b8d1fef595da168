// Which partition a record without an explicit partition goes to. A keyed record always lands on
// the same partition for a given partition count (so per-key order holds); records without a
// key are spread round-robin.
//
// The hash is Kafka's murmur2 (seed 0x9747b28c, sign bit masked) so keys map to the partitions
// a Kafka client would pick — convenient when comparing the two, and stable across releases.
// Thread-safety: Murmur2 is pure; RoundRobin is a value owned by one producer.
#pragma once

#include <cstdint>
#include <string_view>

namespace skiff::client {

uint32_t Murmur2(std::string_view data);

// The partition for `key` among `partition_count` (>= 1). `round_robin` is advanced only for
// empty keys.
int32_t ChoosePartition(std::string_view key, int32_t partition_count, uint64_t& round_robin);

}  // namespace skiff::client
