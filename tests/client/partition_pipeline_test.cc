// Scripted scenarios for the producer's per-partition state machine: what goes on the wire, in
// which order, with which sequences, as results arrive.
#include "client/partition_pipeline.h"

#include <gtest/gtest.h>

namespace skiff::client {
namespace {

PipelineOptions Options(int window, bool idempotent = true) {
  PipelineOptions o;
  o.max_in_flight = window;
  o.idempotent = idempotent;
  o.retry_backoff_ms = 10;
  o.max_retry_backoff_ms = 40;
  return o;
}

// Everything NextToSend hands out at `now`, as batch ids.
std::vector<uint64_t> SendAll(PartitionPipeline& p, int64_t now) {
  std::vector<uint64_t> ids;
  while (auto t = p.NextToSend(now)) ids.push_back(t->batch_id);
  return ids;
}

const Status kNotLeader = UnavailableError("NOT_LEADER");

TEST(PartitionPipeline, SequencesCountRecords) {
  PartitionPipeline p(Options(5));
  EXPECT_EQ(p.Append(1, 3, 1000), 0);
  EXPECT_EQ(p.Append(2, 2, 1000), 3);
  EXPECT_EQ(p.Append(3, 1, 1000), 5);
  auto t = p.NextToSend(0);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->batch_id, 1u);
  EXPECT_EQ(t->base_sequence, 0);
  EXPECT_EQ(t->attempt, 1);
}

TEST(PartitionPipeline, WindowLimitsInFlight) {
  PartitionPipeline p(Options(2));
  for (uint64_t id = 1; id <= 4; ++id) p.Append(id, 1, 1000);
  EXPECT_EQ(SendAll(p, 0), (std::vector<uint64_t>{1, 2}));
  p.OnAcked(1, 100);
  EXPECT_EQ(SendAll(p, 0), (std::vector<uint64_t>{3}));
  auto done = p.TakeCompletions();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_TRUE(done[0].status.ok());
  EXPECT_EQ(done[0].base_offset, 100);
}

TEST(PartitionPipeline, RetryWaitsForInFlightThenResendsInOrder) {
  PartitionPipeline p(Options(3));
  for (uint64_t id = 1; id <= 4; ++id) p.Append(id, 1, 10000);
  EXPECT_EQ(SendAll(p, 0), (std::vector<uint64_t>{1, 2, 3}));
  p.OnRetriable(1, 0, kNotLeader);
  EXPECT_TRUE(p.paused());
  // Nothing new goes out while 2 and 3 are still in flight, even after the backoff.
  EXPECT_TRUE(SendAll(p, 100).empty());
  // The broker refuses the later ones (the sequence gap), they queue up in place.
  p.OnRetriable(2, 1, UnavailableError("OUT_OF_SEQUENCE"));
  EXPECT_TRUE(SendAll(p, 100).empty());
  p.OnRetriable(3, 2, UnavailableError("OUT_OF_SEQUENCE"));
  // Backoff not over yet (3 consecutive failures: 10, 20, 40 ms from t=2).
  EXPECT_TRUE(SendAll(p, 41).empty());
  auto t1 = p.NextToSend(42);
  ASSERT_TRUE(t1);
  EXPECT_EQ(t1->batch_id, 1u);
  EXPECT_EQ(t1->base_sequence, 0);  // same sequence as the first attempt
  EXPECT_EQ(t1->attempt, 2);
  EXPECT_EQ(SendAll(p, 42), (std::vector<uint64_t>{2, 3}));
  p.OnAcked(1, 7);
  p.OnAcked(2, 8);
  p.OnAcked(3, 9);
  EXPECT_EQ(SendAll(p, 42), (std::vector<uint64_t>{4}));
  p.OnAcked(4, 10);
  std::vector<int64_t> offsets;
  for (const Completion& c : p.TakeCompletions()) offsets.push_back(c.base_offset);
  EXPECT_EQ(offsets, (std::vector<int64_t>{7, 8, 9, 10}));
  EXPECT_EQ(p.unacked(), 0u);
}

TEST(PartitionPipeline, LaterBatchAckedWhileEarlierRetriesStillOrdersResend) {
  // Batch 1 timed out on the wire but was written; batch 2 was acked. The resent batch 1 is a
  // duplicate the broker answers with its original offset.
  PartitionPipeline p(Options(2));
  p.Append(1, 1, 10000);
  p.Append(2, 1, 10000);
  SendAll(p, 0);
  p.OnRetriable(1, 0, UnavailableError("DEADLINE_EXCEEDED"));
  p.OnAcked(2, 6);
  auto t = p.NextToSend(100);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->batch_id, 1u);
  EXPECT_EQ(t->base_sequence, 0);
  p.OnAcked(1, 5);
  auto done = p.TakeCompletions();
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[1].batch_id, 1u);
  EXPECT_EQ(done[1].base_offset, 5);
}

TEST(PartitionPipeline, DeliveryTimeoutFailsBatchAndAsksForReset) {
  PartitionPipeline p(Options(2));
  p.Append(1, 2, /*deadline_ms=*/100);
  p.Append(2, 3, /*deadline_ms=*/500);
  SendAll(p, 0);
  p.OnRetriable(1, 50, kNotLeader);
  p.OnRetriable(2, 60, kNotLeader);
  // At t=100 nothing is in flight: batch 1 expires, batch 2 waits for a new producer id.
  EXPECT_TRUE(SendAll(p, 100).empty());
  auto done = p.TakeCompletions();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].batch_id, 1u);
  EXPECT_EQ(done[0].status.code(), StatusCode::kUnavailable);
  EXPECT_NE(done[0].status.message().find("NOT_LEADER"), std::string::npos);
  EXPECT_TRUE(p.needs_sequence_reset());
  p.ResetSequences();
  auto t = p.NextToSend(101);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->batch_id, 2u);
  EXPECT_EQ(t->base_sequence, 0);  // renumbered under the new producer id
  EXPECT_EQ(p.Append(3, 1, 1000), 3);
}

TEST(PartitionPipeline, NoExpiryWhileInFlight) {
  PartitionPipeline p(Options(1));
  p.Append(1, 1, 100);
  SendAll(p, 0);
  EXPECT_TRUE(SendAll(p, 1000).empty());
  EXPECT_TRUE(p.TakeCompletions().empty());
  EXPECT_FALSE(p.NextWakeupMs().has_value());  // only the result can move it
  p.OnRetriable(1, 1000, kNotLeader);
  EXPECT_TRUE(SendAll(p, 1000).empty());
  EXPECT_EQ(p.TakeCompletions().size(), 1u);
}

TEST(PartitionPipeline, FatalErrorFailsOneBatchAndResetsWithIdempotence) {
  PartitionPipeline p(Options(3));
  for (uint64_t id = 1; id <= 3; ++id) p.Append(id, 1, 10000);
  SendAll(p, 0);
  p.OnFatal(2, InvalidArgumentError("INVALID_BATCH"));
  p.OnAcked(1, 0);
  p.OnRetriable(3, 1, UnavailableError("OUT_OF_SEQUENCE"));
  EXPECT_TRUE(p.needs_sequence_reset());
  EXPECT_TRUE(SendAll(p, 1000).empty());
  p.ResetSequences();
  auto t = p.NextToSend(1000);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->batch_id, 3u);
  EXPECT_EQ(t->base_sequence, 0);
  auto done = p.TakeCompletions();
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[0].batch_id, 2u);
  EXPECT_FALSE(done[0].status.ok());
  EXPECT_TRUE(done[1].status.ok());
}

TEST(PartitionPipeline, WithoutIdempotenceFatalNeedsNoReset) {
  PartitionPipeline p(Options(2, /*idempotent=*/false));
  p.Append(1, 1, 10000);
  p.Append(2, 1, 10000);
  SendAll(p, 0);
  p.OnFatal(1, InvalidArgumentError("BATCH_TOO_LARGE"));
  EXPECT_FALSE(p.needs_sequence_reset());
  EXPECT_FALSE(p.paused());
  p.OnAcked(2, 0);
  EXPECT_EQ(p.TakeCompletions().size(), 2u);
}

TEST(PartitionPipeline, BackoffGrowsAndResetsOnSuccess) {
  PartitionPipeline p(Options(1));
  p.Append(1, 1, 100000);
  p.Append(2, 1, 100000);
  int64_t now = 0;
  SendAll(p, now);
  p.OnRetriable(1, now, kNotLeader);
  EXPECT_EQ(p.NextWakeupMs(), 10);
  EXPECT_TRUE(p.NextToSend(9) == std::nullopt);
  ASSERT_TRUE(p.NextToSend(10));
  p.OnRetriable(1, 10, kNotLeader);
  EXPECT_EQ(p.NextWakeupMs(), 30);
  ASSERT_TRUE(p.NextToSend(30));
  p.OnRetriable(1, 30, kNotLeader);
  EXPECT_EQ(p.NextWakeupMs(), 70);
  ASSERT_TRUE(p.NextToSend(70));
  p.OnRetriable(1, 70, kNotLeader);
  EXPECT_EQ(p.NextWakeupMs(), 110);  // capped at 40 ms
  ASSERT_TRUE(p.NextToSend(110));
  p.OnAcked(1, 0);
  ASSERT_TRUE(p.NextToSend(110));
  p.OnRetriable(2, 110, kNotLeader);
  EXPECT_EQ(p.NextWakeupMs(), 120);  // back to the base backoff
}

TEST(PartitionPipeline, SequencesWrapAt2To31) {
  PartitionPipeline p(Options(5));
  p.Append(1, 0x7fffffff, 1000);
  EXPECT_EQ(p.Append(2, 5, 1000), 0x7fffffff);
  EXPECT_EQ(p.Append(3, 1, 1000), 4);
}

}  // namespace
}  // namespace skiff::client
