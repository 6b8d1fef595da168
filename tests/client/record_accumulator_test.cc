#include "client/record_accumulator.h"

#include <gtest/gtest.h>

namespace skiff::client {
namespace {

QueuedRecord MakeRecord(const std::string& value, uint64_t number) {
  QueuedRecord r;
  r.record.set_value(value);
  r.number = number;
  return r;
}

const TopicPartition kP0{"t", 0};
const TopicPartition kP1{"t", 1};

TEST(RecordAccumulator, NothingDueBeforeLinger) {
  RecordAccumulator acc(/*batch_bytes=*/1 << 20, /*linger_ms=*/5);
  acc.Append(kP0, MakeRecord("a", 0), 100);
  EXPECT_TRUE(acc.Drain(104, false).empty());
  EXPECT_EQ(acc.NextDueMs(), 105);
  auto due = acc.Drain(105, false);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].records.size(), 1u);
  EXPECT_EQ(due[0].created_ms, 100);
  EXPECT_TRUE(acc.empty());
  EXPECT_FALSE(acc.NextDueMs().has_value());
}

TEST(RecordAccumulator, SealsOnSizeAndKeepsOrder) {
  const std::string value(100, 'v');
  const int64_t per_record = EstimatedRecordBytes(MakeRecord(value, 0).record);
  RecordAccumulator acc(/*batch_bytes=*/per_record * 3, /*linger_ms=*/1000);
  for (uint64_t i = 0; i < 7; ++i) acc.Append(kP0, MakeRecord(value, i), 0);
  EXPECT_EQ(acc.NextDueMs(), 0);  // full batches are due now
  auto due = acc.Drain(1, false);
  ASSERT_EQ(due.size(), 2u);  // two full batches; the 7th record lingers
  EXPECT_EQ(due[0].records.front().number, 0u);
  EXPECT_EQ(due[0].records.back().number, 2u);
  EXPECT_EQ(due[1].records.front().number, 3u);
  auto rest = acc.Drain(1, /*flush_all=*/true);
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].records.front().number, 6u);
}

TEST(RecordAccumulator, OversizedRecordGetsItsOwnBatch) {
  RecordAccumulator acc(/*batch_bytes=*/50, /*linger_ms=*/1000);
  acc.Append(kP0, MakeRecord("small", 0), 0);
  acc.Append(kP0, MakeRecord(std::string(500, 'x'), 1), 0);
  auto due = acc.Drain(0, false);
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(due[0].records.size(), 1u);
  EXPECT_EQ(due[0].records[0].number, 0u);
  EXPECT_EQ(due[1].records[0].number, 1u);
}

TEST(RecordAccumulator, PartitionsAreSeparate) {
  RecordAccumulator acc(1 << 20, 10);
  acc.Append(kP0, MakeRecord("a", 0), 0);
  acc.Append(kP1, MakeRecord("b", 1), 5);
  auto due = acc.Drain(10, false);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].tp, kP0);
  EXPECT_EQ(acc.NextDueMs(), 15);
  due = acc.Drain(15, false);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].tp, kP1);
}

}  // namespace
}  // namespace skiff::client
