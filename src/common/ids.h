// Strong types for the numbers that get mixed up.
//
// A partition *offset* (what Kafka clients see, counting records) and a Raft *log index*
// (counting Raft entries, including configuration changes and no-ops) are both uint64 and
// both grow together, which is exactly why mixing them up is a silent, data-losing bug.
// They are distinct types here; converting between them goes through the offset index.
//
// Inside src/raft the consensus arithmetic (term, index, node id) uses plain uint64 aliases
// declared in raft/types.h: the library is small, self-contained and checked by a simulator,
// and strong types there would obscure the algorithm more than they protect it.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <ostream>

namespace skiff {

template <typename Tag>
class StrongId {
 public:
  constexpr StrongId() = default;
  constexpr explicit StrongId(uint64_t value) : value_(value) {}
  constexpr uint64_t value() const { return value_; }
  constexpr auto operator<=>(const StrongId&) const = default;
  friend std::ostream& operator<<(std::ostream& os, StrongId id) { return os << id.value_; }

 private:
  uint64_t value_ = 0;
};

struct BrokerIdTag {};
struct TopicIdTag {};
struct GroupIdTag {};
using BrokerId = StrongId<BrokerIdTag>;    // a skiffd process; also its Raft node id
using TopicId = StrongId<TopicIdTag>;      // assigned by the metadata group, never reused
using RaftGroupId = StrongId<GroupIdTag>;  // 0 is the metadata group; partitions get the rest

// A record's position in a partition, as clients see it. Signed like Kafka's, so that "-1"
// style sentinels sent by clients are representable and rejected explicitly, not wrapped.
class Offset {
 public:
  constexpr Offset() = default;
  constexpr explicit Offset(int64_t value) : value_(value) {}
  constexpr int64_t value() const { return value_; }
  constexpr auto operator<=>(const Offset&) const = default;
  constexpr Offset operator+(int64_t n) const { return Offset(value_ + n); }
  constexpr int64_t operator-(Offset other) const { return value_ - other.value_; }
  friend std::ostream& operator<<(std::ostream& os, Offset o) { return os << o.value_; }

 private:
  int64_t value_ = 0;
};

using PartitionIndex = int32_t;  // 0..partitions-1 within a topic, as in Kafka

}  // namespace skiff

template <typename Tag>
struct std::hash<skiff::StrongId<Tag>> {
  size_t operator()(skiff::StrongId<Tag> id) const noexcept {
    return std::hash<uint64_t>()(id.value());
  }
};
