#include "broker/partition_state.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>

namespace skiff::broker {
namespace {

BatchEntryHeader Batch(int64_t producer_id, int32_t epoch, int32_t base_sequence,
                       uint32_t records) {
  BatchEntryHeader header;
  header.record_count = records;
  header.max_timestamp_ms = 1000;
  header.producer_id = producer_id;
  header.producer_epoch = epoch;
  header.base_sequence = base_sequence;
  return header;
}

SequenceVerdict Verdict(const PartitionState& state, const BatchEntryHeader& header) {
  return state.CheckSequence(header).verdict;
}

TEST(PartitionStateTest, LastSequenceWrapsAt2To31) {
  EXPECT_EQ(LastSequence(0, 1), 0);
  EXPECT_EQ(LastSequence(0, 5), 4);
  EXPECT_EQ(LastSequence(std::numeric_limits<int32_t>::max(), 1),
            std::numeric_limits<int32_t>::max());
  EXPECT_EQ(LastSequence(std::numeric_limits<int32_t>::max(), 2), 0);
  EXPECT_EQ(LastSequence(std::numeric_limits<int32_t>::max() - 1, 4), 1);
  EXPECT_EQ(LastSequence(5, 0), 5);
  EXPECT_EQ(LastSequence(-1, 1), std::numeric_limits<int32_t>::max());
}

TEST(PartitionStateTest, ApplyAssignsDenseOffsets) {
  PartitionState state;
  EXPECT_EQ(state.end_offset(), Offset(0));
  EXPECT_EQ(state.ApplyBatch(Batch(-1, 0, 0, 3), 2), Offset(0));
  state.ApplyNonBatch(3);
  EXPECT_EQ(state.ApplyBatch(Batch(-1, 0, 0, 4), 5), Offset(3));
  EXPECT_EQ(state.end_offset(), Offset(7));
  EXPECT_EQ(state.applied_index(), 5u);
  EXPECT_EQ(state.producer_count(), 0u);
}

TEST(PartitionStateTest, NonIdempotentBatchesAreAlwaysAccepted) {
  PartitionState state;
  state.ApplyBatch(Batch(-1, 0, 0, 1), 1);
  EXPECT_EQ(Verdict(state, Batch(-1, 0, 0, 1)), SequenceVerdict::kAccept);
  EXPECT_EQ(Verdict(state, Batch(-1, 7, 12345, 1)), SequenceVerdict::kAccept);
}

TEST(PartitionStateTest, UnknownProducerMustStartAtZero) {
  PartitionState state;
  EXPECT_EQ(Verdict(state, Batch(1, 0, 0, 5)), SequenceVerdict::kAccept);
  EXPECT_EQ(Verdict(state, Batch(1, 4, 0, 5)), SequenceVerdict::kAccept);
  SequenceCheck check = state.CheckSequence(Batch(1, 0, 3, 5));
  EXPECT_EQ(check.verdict, SequenceVerdict::kOutOfSequence);
  EXPECT_NE(check.message.find("expected sequence 0, got 3"), std::string::npos) << check.message;
  EXPECT_EQ(Verdict(state, Batch(1, 0, -1, 1)), SequenceVerdict::kOutOfSequence);
}

TEST(PartitionStateTest, SequenceMustContinue) {
  PartitionState state;
  state.ApplyBatch(Batch(9, 0, 0, 5), 1);
  EXPECT_EQ(Verdict(state, Batch(9, 0, 5, 2)), SequenceVerdict::kAccept);
  SequenceCheck gap = state.CheckSequence(Batch(9, 0, 6, 2));
  EXPECT_EQ(gap.verdict, SequenceVerdict::kOutOfSequence);
  EXPECT_NE(gap.message.find("expected sequence 5, got 6"), std::string::npos) << gap.message;
  EXPECT_EQ(Verdict(state, Batch(9, 0, 4, 2)), SequenceVerdict::kOutOfSequence);
}

TEST(PartitionStateTest, RetryOfOneOfLastFiveBatchesIsDuplicate) {
  PartitionState state;
  int32_t seq = 0;
  for (raft::Index i = 1; i <= 6; ++i) {
    state.ApplyBatch(Batch(9, 0, seq, 2), i);
    seq += 2;
  }
  // Batches: [0,1]@0 [2,3]@2 [4,5]@4 [6,7]@6 [8,9]@8 [10,11]@10; the first is out of the window.
  for (int b = 1; b < 6; ++b) {
    SequenceCheck check = state.CheckSequence(Batch(9, 0, 2 * b, 2));
    ASSERT_EQ(check.verdict, SequenceVerdict::kDuplicate) << b;
    EXPECT_EQ(check.original, (ProducerBatch{2 * b, 2 * b + 1, 2 * b, raft::Index(b + 1)}));
  }
  EXPECT_EQ(Verdict(state, Batch(9, 0, 0, 2)), SequenceVerdict::kOutOfSequence);
  // Same first sequence, other length: not the same batch.
  EXPECT_EQ(Verdict(state, Batch(9, 0, 10, 1)), SequenceVerdict::kOutOfSequence);
  EXPECT_EQ(Verdict(state, Batch(9, 0, 12, 1)), SequenceVerdict::kAccept);
}

TEST(PartitionStateTest, OlderEpochIsFencedNewerEpochRestartsAtZero) {
  PartitionState state;
  state.ApplyBatch(Batch(9, 2, 0, 5), 1);
  SequenceCheck fenced = state.CheckSequence(Batch(9, 1, 5, 1));
  EXPECT_EQ(fenced.verdict, SequenceVerdict::kFenced);
  EXPECT_NE(fenced.message.find("epoch 1"), std::string::npos);
  EXPECT_NE(fenced.message.find("epoch 2"), std::string::npos);
  EXPECT_EQ(Verdict(state, Batch(9, 3, 5, 1)), SequenceVerdict::kOutOfSequence);
  EXPECT_EQ(Verdict(state, Batch(9, 3, 0, 1)), SequenceVerdict::kAccept);
  state.ApplyBatch(Batch(9, 3, 0, 1), 2);
  EXPECT_EQ(Verdict(state, Batch(9, 2, 5, 1)), SequenceVerdict::kFenced);
  // The old epoch's batches are not duplicates in the new epoch.
  EXPECT_EQ(Verdict(state, Batch(9, 3, 1, 1)), SequenceVerdict::kAccept);
}

TEST(PartitionStateTest, SequenceWrapsAround) {
  PartitionState state;
  const int32_t max = std::numeric_limits<int32_t>::max();
  // Apply records whatever committed, so a producer can be placed near the wrap directly.
  state.ApplyBatch(Batch(9, 0, max - 1, 3), 1);  // max-1, max, 0
  EXPECT_EQ(Verdict(state, Batch(9, 0, 1, 1)), SequenceVerdict::kAccept);
  EXPECT_EQ(Verdict(state, Batch(9, 0, max - 1, 3)), SequenceVerdict::kDuplicate);
  state.ApplyBatch(Batch(9, 0, 1, 1), 2);
  state.ApplyBatch(Batch(9, 0, 2, max - 2), 3);  // 2 .. max-1
  EXPECT_EQ(Verdict(state, Batch(9, 0, max, 1)), SequenceVerdict::kAccept);
  state.ApplyBatch(Batch(9, 0, max, 1), 4);
  EXPECT_EQ(Verdict(state, Batch(9, 0, 0, 1)), SequenceVerdict::kAccept);
}

TEST(PartitionStateTest, PendingBatchesArePipelined) {
  PartitionState state;
  state.ApplyBatch(Batch(9, 0, 0, 5), 1);
  ASSERT_EQ(Verdict(state, Batch(9, 0, 5, 5)), SequenceVerdict::kAccept);
  state.AddPending(Batch(9, 0, 5, 5), 2);
  ASSERT_EQ(Verdict(state, Batch(9, 0, 10, 5)), SequenceVerdict::kAccept);
  state.AddPending(Batch(9, 0, 10, 5), 3);
  EXPECT_EQ(state.pending_count(), 2u);
  EXPECT_EQ(Verdict(state, Batch(9, 0, 15, 1)), SequenceVerdict::kAccept);
  EXPECT_EQ(Verdict(state, Batch(9, 0, 10, 1)), SequenceVerdict::kOutOfSequence);

  SequenceCheck retry = state.CheckSequence(Batch(9, 0, 5, 5));
  ASSERT_EQ(retry.verdict, SequenceVerdict::kDuplicate);
  EXPECT_EQ(retry.original, (ProducerBatch{5, 9, -1, 2}));

  EXPECT_EQ(state.ApplyBatch(Batch(9, 0, 5, 5), 2), Offset(5));
  EXPECT_EQ(state.pending_count(), 1u);
  retry = state.CheckSequence(Batch(9, 0, 5, 5));
  ASSERT_EQ(retry.verdict, SequenceVerdict::kDuplicate);
  EXPECT_EQ(retry.original, (ProducerBatch{5, 9, 5, 2}));

  // Leadership lost: the entry at 3 may never commit, so sequence 10 is expected again.
  state.ClearPending();
  EXPECT_EQ(state.pending_count(), 0u);
  EXPECT_EQ(Verdict(state, Batch(9, 0, 15, 1)), SequenceVerdict::kOutOfSequence);
  EXPECT_EQ(Verdict(state, Batch(9, 0, 10, 5)), SequenceVerdict::kAccept);
}

TEST(PartitionStateTest, PendingAtAnAppliedIndexIsIgnored) {
  PartitionState state;
  state.ApplyBatch(Batch(9, 0, 0, 5), 1);
  state.AddPending(Batch(9, 0, 0, 5), 1);
  EXPECT_EQ(state.pending_count(), 0u);
  state.AddPending(Batch(-1, 0, 0, 5), 2);
  EXPECT_EQ(state.pending_count(), 0u);
}

TEST(PartitionStateTest, PendingNewEpochFencesOlderEpoch) {
  PartitionState state;
  state.ApplyBatch(Batch(9, 0, 0, 5), 1);
  state.AddPending(Batch(9, 1, 0, 1), 2);
  EXPECT_EQ(Verdict(state, Batch(9, 0, 5, 1)), SequenceVerdict::kFenced);
  EXPECT_EQ(Verdict(state, Batch(9, 1, 1, 1)), SequenceVerdict::kAccept);
}

TEST(PartitionStateTest, PendingOverwrittenByAnotherEntryIsDropped) {
  PartitionState state;
  state.ApplyBatch(Batch(9, 0, 0, 5), 1);
  state.AddPending(Batch(9, 0, 5, 5), 2);
  state.AddPending(Batch(8, 0, 0, 1), 3);
  state.AddPending(Batch(9, 0, 10, 5), 4);
  // A new leader's no-op and another producer's batch took indexes 2 and 3.
  state.ApplyNonBatch(2);
  state.ApplyBatch(Batch(7, 0, 0, 1), 3);
  EXPECT_EQ(state.pending_count(), 1u);
  EXPECT_EQ(Verdict(state, Batch(8, 0, 0, 1)), SequenceVerdict::kAccept);
  state.ApplyBatch(Batch(-1, 0, 0, 1), 4);
  EXPECT_EQ(state.pending_count(), 0u);
  EXPECT_EQ(Verdict(state, Batch(9, 0, 5, 1)), SequenceVerdict::kAccept);
}

TEST(PartitionStateTest, ApplyRecordsWhateverCommitted) {
  PartitionState state;
  state.ApplyBatch(Batch(9, 5, 0, 2), 1);
  // A gap and an older epoch committed (a follower never checks): both are recorded.
  EXPECT_EQ(state.ApplyBatch(Batch(9, 5, 100, 2), 2), Offset(2));
  EXPECT_EQ(Verdict(state, Batch(9, 5, 102, 1)), SequenceVerdict::kAccept);
  EXPECT_EQ(state.ApplyBatch(Batch(9, 4, 7, 1), 3), Offset(4));
  EXPECT_EQ(Verdict(state, Batch(9, 4, 8, 1)), SequenceVerdict::kAccept);
  EXPECT_EQ(Verdict(state, Batch(9, 3, 0, 1)), SequenceVerdict::kFenced);
  EXPECT_EQ(state.end_offset(), Offset(5));
}

TEST(PartitionStateTest, InvalidCommittedBatchesStillSnapshot) {
  // Only a bug commits these, but apply must record them and a snapshot must carry them.
  PartitionState state;
  state.ApplyBatch(Batch(9, -3, -5, 1), 1);
  state.ApplyBatch(Batch(8, 0, 0, 0), 2);
  EXPECT_EQ(state.end_offset(), Offset(1));
  Result<PartitionState> decoded = PartitionState::DecodeSnapshot(state.EncodeSnapshot());
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->EncodeSnapshot(), state.EncodeSnapshot());
}

TEST(PartitionStateTest, EvictsProducerWithOldestLastBatch) {
  PartitionState state(3);
  state.ApplyBatch(Batch(1, 0, 0, 1), 1);
  state.ApplyBatch(Batch(2, 0, 0, 1), 2);
  state.ApplyBatch(Batch(3, 0, 0, 1), 3);
  state.ApplyBatch(Batch(1, 0, 1, 1), 4);  // 1 is now the most recent
  state.ApplyBatch(Batch(4, 0, 0, 1), 5);  // evicts 2
  EXPECT_EQ(state.producer_count(), 3u);
  EXPECT_EQ(Verdict(state, Batch(2, 0, 1, 1)), SequenceVerdict::kOutOfSequence);
  EXPECT_EQ(Verdict(state, Batch(1, 0, 2, 1)), SequenceVerdict::kAccept);
  EXPECT_EQ(Verdict(state, Batch(3, 0, 1, 1)), SequenceVerdict::kAccept);
  EXPECT_EQ(Verdict(state, Batch(4, 0, 1, 1)), SequenceVerdict::kAccept);
}

// Applies a random mix of committed entries; `seed` drives producers, epochs and sequences.
void ApplyRandom(PartitionState& state, std::mt19937_64& rng, raft::Index& index, int steps) {
  for (int i = 0; i < steps; ++i) {
    ++index;
    const int kind = static_cast<int>(rng() % 10);
    if (kind == 0) {
      state.ApplyNonBatch(index);
      continue;
    }
    const int64_t producer = kind == 1 ? -1 : static_cast<int64_t>(rng() % 20);
    BatchEntryHeader header =
        Batch(producer, static_cast<int32_t>(rng() % 3), static_cast<int32_t>(rng() % 50),
              1 + static_cast<uint32_t>(rng() % 4));
    state.ApplyBatch(header, index);
  }
}

TEST(PartitionStateTest, SnapshotRoundTripsAndReplaysIdentically) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    PartitionState a(15);
    raft::Index index = 0;
    ApplyRandom(a, rng, index, 200);
    a.AddPending(Batch(3, 9, 0, 1), index + 1000);  // pending is not part of a snapshot
    const std::string bytes = a.EncodeSnapshot();
    Result<PartitionState> b = PartitionState::DecodeSnapshot(bytes, 15);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    EXPECT_EQ(b->EncodeSnapshot(), bytes) << "seed " << seed;
    EXPECT_EQ(b->end_offset(), a.end_offset());
    EXPECT_EQ(b->applied_index(), a.applied_index());
    EXPECT_EQ(b->producer_count(), a.producer_count());
    EXPECT_EQ(b->pending_count(), 0u);
    a.ClearPending();

    std::mt19937_64 rng_a(seed * 1000), rng_b(seed * 1000);
    raft::Index index_a = index, index_b = index;
    ApplyRandom(a, rng_a, index_a, 100);
    ApplyRandom(*b, rng_b, index_b, 100);
    EXPECT_EQ(a.EncodeSnapshot(), b->EncodeSnapshot()) << "seed " << seed;
    for (int64_t p = 0; p < 20; ++p) {
      for (int32_t s = 0; s < 60; s += 7) {
        const BatchEntryHeader probe = Batch(p, 1, s, 2);
        EXPECT_EQ(Verdict(a, probe), Verdict(*b, probe)) << "seed " << seed;
      }
    }
  }
}

TEST(PartitionStateTest, EmptySnapshotRoundTrips) {
  PartitionState empty;
  Result<PartitionState> decoded = PartitionState::DecodeSnapshot(empty.EncodeSnapshot());
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->EncodeSnapshot(), empty.EncodeSnapshot());
}

TEST(PartitionStateTest, EveryCorruptedOrTruncatedSnapshotIsRejected) {
  std::mt19937_64 rng(7);
  PartitionState state;
  raft::Index index = 0;
  ApplyRandom(state, rng, index, 30);
  const std::string bytes = state.EncodeSnapshot();
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string bad = bytes;
    bad[i] = static_cast<char>(bad[i] ^ 0x04);
    EXPECT_EQ(PartitionState::DecodeSnapshot(bad).status().code(), StatusCode::kCorruption) << i;
  }
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_EQ(PartitionState::DecodeSnapshot(bytes.substr(0, n)).status().code(),
              StatusCode::kCorruption)
        << n;
  }
  EXPECT_EQ(PartitionState::DecodeSnapshot(bytes + "x").status().code(), StatusCode::kCorruption);
}

TEST(PartitionStateTest, DecodingWithASmallerLimitKeepsTheNewestProducers) {
  PartitionState state;
  for (int64_t p = 0; p < 10; ++p) state.ApplyBatch(Batch(p, 0, 0, 1), raft::Index(p + 1));
  Result<PartitionState> small = PartitionState::DecodeSnapshot(state.EncodeSnapshot(), 4);
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(small->producer_count(), 4u);
  EXPECT_EQ(Verdict(*small, Batch(9, 0, 1, 1)), SequenceVerdict::kAccept);
  EXPECT_EQ(Verdict(*small, Batch(5, 0, 1, 1)), SequenceVerdict::kOutOfSequence);
}

TEST(PartitionStateTest, SameEntriesGiveSameState) {
  std::mt19937_64 rng_a(99), rng_b(99);
  PartitionState a, b;
  raft::Index index_a = 0, index_b = 0;
  ApplyRandom(a, rng_a, index_a, 500);
  ApplyRandom(b, rng_b, index_b, 500);
  EXPECT_EQ(a.EncodeSnapshot(), b.EncodeSnapshot());
}

}  // namespace
}  // namespace skiff::broker
