// PartitionState: the replicated state of one partition beyond its log — the next offset and
// the idempotent producers' sequence numbers.
//
// Every replica applies the same committed entries in index order and so holds the same state;
// the leader additionally tracks *pending* batches (proposed, not yet applied) so that a
// producer may pipeline batches without waiting for each to commit. Pending state is
// leader-local and never part of a snapshot.
//
// Sequence rules (as Kafka's): per producer id, sequences count records from 0 and wrap at
// 2^31. A batch from an older epoch is fenced; a new epoch (or an unknown producer) starts at
// sequence 0; within an epoch a batch must continue right after the previous one, and a retry
// of one of the producer's last kProducerBatchesKept batches is recognised as a duplicate (the
// caller answers it with the original offset instead of writing it twice).
//
// Apply never rejects: a committed entry is the log's truth, whatever a leader checked or did not
// check before proposing it. Apply only records what the entry says.
//
// Memory is bounded: at most max_producers producers are remembered; past that, the producer
// whose last applied batch is oldest is forgotten (Kafka expires idle producer ids likewise).
// A forgotten producer's next batch must start a new epoch or sequence 0, otherwise it is out
// of sequence. Every replica must use the same max_producers (eviction is part of the state).
//
// Not thread-safe: owned by the partition's apply loop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>

#include "broker/partition_entry.h"
#include "common/ids.h"
#include "common/status.h"
#include "raft/types.h"

namespace skiff::broker {

inline constexpr size_t kProducerBatchesKept = 5;
inline constexpr size_t kDefaultMaxProducers = 100000;

struct ProducerBatch {
  int32_t first_sequence = 0;
  int32_t last_sequence = 0;  // first + record_count - 1, wrapping at 2^31 like Kafka
  int64_t base_offset = -1;   // -1 while the batch is proposed but not yet applied
  raft::Index index = 0;      // raft index of its entry
  friend bool operator==(const ProducerBatch&, const ProducerBatch&) = default;
};

enum class SequenceVerdict { kAccept, kDuplicate, kOutOfSequence, kFenced };

struct SequenceCheck {
  SequenceVerdict verdict = SequenceVerdict::kAccept;
  ProducerBatch original;  // kDuplicate: the batch this one repeats (maybe still pending)
  std::string message;     // kOutOfSequence / kFenced: human-readable, names expected vs got
};

// The last sequence of a batch of `record_count` records starting at `first_sequence`, modulo
// 2^31 (in [0, 2^31)). A record_count of 0 (never valid) is treated as 1.
int32_t LastSequence(int32_t first_sequence, uint32_t record_count);

class PartitionState {
 public:
  // max_producers >= 1.
  explicit PartitionState(size_t max_producers = kDefaultMaxProducers);

  Offset end_offset() const { return end_offset_; }  // offset after the last applied record
  raft::Index applied_index() const { return applied_index_; }

  // Checks an incoming batch against the applied state plus pending proposals. Non-idempotent
  // batches (producer_id < 0) always get kAccept. Older epoch -> kFenced; newer epoch (or
  // unknown producer) must start at sequence 0 (else kOutOfSequence); same epoch: a batch equal
  // (first and last sequence) to one of the producer's last 5 batches -> kDuplicate with that
  // batch; base_sequence == last_sequence+1 (with wrap) -> kAccept; anything else ->
  // kOutOfSequence. A negative base_sequence on an idempotent batch is kOutOfSequence.
  SequenceCheck CheckSequence(const BatchEntryHeader& header) const;

  // Leader only: a batch that passed CheckSequence was proposed at `index` (not applied yet), so
  // that the next CheckSequence sees it (pipelined produce). Precondition: `index` exceeds the
  // index of every pending batch (asserted). No-op for non-idempotent batches and for
  // index <= applied_index() (already applied, so the applied state covers it).
  void AddPending(const BatchEntryHeader& header, raft::Index index);

  // The leader lost leadership: forget every pending batch (their entries may never commit).
  void ClearPending();

  // Applies a committed batch entry at `index` (> applied_index()). Returns its base offset
  // (= end_offset() before), advances end_offset by record_count and records the producer's
  // sequence state (its last 5 batches). Pending batches at indexes <= `index` are dropped:
  // the one at `index`, if any, is now applied; any other was overwritten by a new leader.
  Offset ApplyBatch(const BatchEntryHeader& header, raft::Index index);

  // A committed entry with no records (no-op, conf change) at `index` (> applied_index()):
  // only applied_index moves (and pending batches at indexes <= `index` are dropped).
  void ApplyNonBatch(raft::Index index);

  // The applied state (pending excluded) for Raft snapshots. Equal states give equal bytes.
  std::string EncodeSnapshot() const;
  // kCorruption if `data` is not what EncodeSnapshot produced (checksum, format, invariants).
  static Result<PartitionState> DecodeSnapshot(std::string_view data,
                                               size_t max_producers = kDefaultMaxProducers);

  size_t producer_count() const { return producers_.size(); }
  size_t pending_count() const { return pending_by_index_.size(); }

 private:
  struct Producer {
    int32_t epoch = 0;
    std::deque<ProducerBatch> batches;  // applied, oldest first, 1..kProducerBatchesKept
  };
  struct PendingBatch {
    int32_t epoch = 0;
    ProducerBatch batch;
  };

  void DropPendingThrough(raft::Index index);
  void EvictIfOverLimit();

  size_t max_producers_;
  Offset end_offset_{0};
  raft::Index applied_index_ = 0;
  std::unordered_map<int64_t, Producer> producers_;
  // Producer id by the index of its last applied batch: the eviction order. Each index applies
  // at most one batch, so the keys are unique.
  std::map<raft::Index, int64_t> producer_by_last_index_;
  std::unordered_map<int64_t, std::deque<PendingBatch>> pending_;  // by index, per producer
  std::map<raft::Index, int64_t> pending_by_index_;
};

}  // namespace skiff::broker
