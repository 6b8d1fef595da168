// Per-partition buffers where the producer collects records until a batch is worth sending:
// when it reaches batch_bytes, or when its oldest record has waited linger_ms. Batching is what
// buys throughput; linger bounds the latency it costs.
//
// Thread-safety: none; the Producer guards it. Pure (time is an argument), so it is unit-tested.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "skiff/v1/records.pb.h"

namespace skiff::client {

// Where an acknowledged record landed. offset is -1 with acks=NONE (the broker does not say).
struct RecordMetadata {
  int32_t partition = -1;
  int64_t offset = -1;
};

// Called exactly once per record, from a client thread; must not block for long.
using DeliveryCallback = std::function<void(const Result<RecordMetadata>&)>;

struct QueuedRecord {
  v1::Record record;
  DeliveryCallback callback;
  int64_t enqueued_ms = 0;
  uint64_t number = 0;  // producer-wide, in Send order; lets Flush wait for "everything before"
};

struct TopicPartition {
  std::string topic;
  int32_t partition = 0;
  friend auto operator<=>(const TopicPartition&, const TopicPartition&) = default;
};

struct SealedBatch {
  TopicPartition tp;
  std::vector<QueuedRecord> records;
  int64_t created_ms = 0;  // when its first record arrived; the delivery timeout counts from here
};

// Bytes a record adds to a batch, approximately (protobuf framing is a few bytes per field).
int64_t EstimatedRecordBytes(const v1::Record& record);

class RecordAccumulator {
 public:
  RecordAccumulator(int64_t batch_bytes, int64_t linger_ms)
      : batch_bytes_(batch_bytes), linger_ms_(linger_ms) {}

  // Adds a record. A record that does not fit the open batch seals it first; a single record
  // larger than batch_bytes gets a batch of its own (the broker decides whether it is too big).
  void Append(const TopicPartition& tp, QueuedRecord record, int64_t now_ms);

  // Removes and returns the batches due: full ones, lingered ones, or all of them with
  // `flush_all`. Batches of one partition come out in append order.
  std::vector<SealedBatch> Drain(int64_t now_ms, bool flush_all);

  // When the next open batch's linger expires; nullopt when nothing is open. A full (sealed)
  // batch is due now.
  std::optional<int64_t> NextDueMs() const;

  bool empty() const { return open_.empty() && sealed_.empty(); }

 private:
  struct Open {
    SealedBatch batch;
    int64_t bytes = 0;
  };
  int64_t batch_bytes_;
  int64_t linger_ms_;
  std::map<TopicPartition, Open> open_;
  std::deque<SealedBatch> sealed_;  // full batches waiting for Drain
};

}  // namespace skiff::client
