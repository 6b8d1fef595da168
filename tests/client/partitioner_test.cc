#include "client/partitioner.h"

#include <gtest/gtest.h>

#include <set>

namespace skiff::client {
namespace {

// Vectors from Kafka's own murmur2 test, so keys land where a Kafka client would put them.
TEST(Murmur2, MatchesKafka) {
  EXPECT_EQ(static_cast<int32_t>(Murmur2("21")), -973932308);
  EXPECT_EQ(static_cast<int32_t>(Murmur2("foobar")), -790332482);
  EXPECT_EQ(static_cast<int32_t>(Murmur2("a-little-bit-long-string")), -985981536);
  EXPECT_EQ(static_cast<int32_t>(Murmur2("a-little-bit-longer-string")), -1486304829);
  EXPECT_EQ(static_cast<int32_t>(Murmur2("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8")),
            -58897971);
  EXPECT_EQ(static_cast<int32_t>(Murmur2("abc")), 479470107);
}

TEST(ChoosePartition, SameKeySamePartition) {
  uint64_t rr = 0;
  const int32_t p = ChoosePartition("user-42", 12, rr);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(ChoosePartition("user-42", 12, rr), p);
  EXPECT_EQ(rr, 0u) << "keyed records must not advance the round robin";
  EXPECT_GE(p, 0);
  EXPECT_LT(p, 12);
}

TEST(ChoosePartition, EmptyKeysRoundRobin) {
  uint64_t rr = 0;
  std::vector<int32_t> got;
  for (int i = 0; i < 6; ++i) got.push_back(ChoosePartition("", 3, rr));
  EXPECT_EQ(got, (std::vector<int32_t>{0, 1, 2, 0, 1, 2}));
}

TEST(ChoosePartition, KeysSpreadOverPartitions) {
  uint64_t rr = 0;
  std::set<int32_t> seen;
  for (int i = 0; i < 200; ++i) seen.insert(ChoosePartition("k" + std::to_string(i), 8, rr));
  EXPECT_EQ(seen.size(), 8u);
}

TEST(ChoosePartition, NegativeHashStaysInRange) {
  uint64_t rr = 0;
  // "21" hashes to a negative int32; the sign bit is masked like Kafka's toPositive.
  EXPECT_EQ(ChoosePartition("21", 7, rr), static_cast<int32_t>((-973932308 & 0x7fffffff) % 7));
}

}  // namespace
}  // namespace skiff::client
