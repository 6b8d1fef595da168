// The producer's send-side state machine for one partition: which batch may go on the wire
// next, and what a failure does to the ones behind it. It is the part that keeps a partition's
// records in order and, with idempotence, written exactly once.
//
// Rules
//   * Batches get consecutive sequences (counting records, wrapping at 2^31) in append order.
//   * Up to max_in_flight batches are outstanding at once (the window).
//   * When an attempt fails with a retriable error the partition pauses: nothing new is sent
//     until every in-flight batch has come back, then the unacknowledged batches are resent in
//     sequence order, with the same sequences, after a backoff. Later in-flight batches that
//     the broker rejects meanwhile (OUT_OF_SEQUENCE) are simply queued again in their place.
//     A resent batch the broker already wrote is answered with its original offset, so
//     retries never duplicate.
//   * A batch fails for good only on a fatal error or, while nothing is in flight, once its
//     delivery deadline has passed. With idempotence that leaves a hole in the sequences, so the
//     partition then needs a fresh producer id: needs_sequence_reset() turns true, nothing is
//     sent until ResetSequences(), which renumbers the remaining batches from 0.
//   * Without idempotence a later batch may be written before a resent earlier one (like Kafka
//     with max.in.flight > 1 and no idempotence); use max_in_flight = 1 to rule that out.
//
// Time is an argument (ms, any monotonic origin). Thread-safety: none; the Producer guards it.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "common/status.h"

namespace skiff::client {

struct PipelineOptions {
  int max_in_flight = 5;
  bool idempotent = true;
  int64_t retry_backoff_ms = 50;
  int64_t max_retry_backoff_ms = 1000;
};

struct SendTicket {
  uint64_t batch_id = 0;
  int32_t base_sequence = 0;
  int attempt = 0;  // 1 for the first send
};

// The final outcome of a batch: OK with the offset of its first record, or the error.
struct Completion {
  uint64_t batch_id = 0;
  Status status;
  int64_t base_offset = -1;
};

class PartitionPipeline {
 public:
  explicit PartitionPipeline(PipelineOptions options) : options_(options) {}

  // Queues a sealed batch behind the others; returns its base sequence.
  int32_t Append(uint64_t batch_id, int32_t record_count, int64_t deadline_ms);

  // The batch to send now, if the window, a pause, a backoff or a pending reset allow one.
  // Call repeatedly until nullopt. Expires overdue batches first (see Rules).
  std::optional<SendTicket> NextToSend(int64_t now_ms);

  // Outcomes of an attempt. batch_id must be in flight.
  void OnAcked(uint64_t batch_id, int64_t base_offset);
  void OnRetriable(uint64_t batch_id, int64_t now_ms, Status why);
  void OnFatal(uint64_t batch_id, Status why);

  // Finished batches since the last call, in the order they finished.
  std::vector<Completion> TakeCompletions();

  bool needs_sequence_reset() const { return needs_reset_; }
  // Precondition: needs_sequence_reset() and in_flight() == 0. The caller has switched to a new
  // producer id for this partition.
  void ResetSequences();

  int in_flight() const { return in_flight_; }
  size_t unacked() const { return slots_.size(); }
  bool paused() const { return paused_; }
  // When NextToSend may have something new without any result arriving (backoff end or a
  // deadline); nullopt when only a result can unblock the pipeline.
  std::optional<int64_t> NextWakeupMs() const;

 private:
  enum class State { kQueued, kInFlight };
  struct Slot {
    uint64_t id = 0;
    int32_t base_sequence = 0;
    int32_t record_count = 0;
    int64_t deadline_ms = 0;
    State state = State::kQueued;
    int attempts = 0;
    Status last_error;
  };
  std::deque<Slot>::iterator Find(uint64_t batch_id);
  void ExpireOverdue(int64_t now_ms);

  PipelineOptions options_;
  std::deque<Slot> slots_;  // unacknowledged batches, in sequence order
  int32_t next_sequence_ = 0;
  int in_flight_ = 0;
  bool paused_ = false;
  int64_t resume_at_ms_ = 0;
  int consecutive_failures_ = 0;
  bool needs_reset_ = false;
  std::vector<Completion> completions_;
};

}  // namespace skiff::client
