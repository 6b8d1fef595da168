#include "broker/partition_state.h"
#include "common/coding.h"

#include <algorithm>
#include <vector>

#include "common/assert.h"
#include "common/crc32c.h"

namespace skiff::broker {
namespace {

constexpr int64_t kSequenceModulus = int64_t{1} << 31;
constexpr uint8_t kSnapshotVersion = 1;

int32_t NextSequence(int32_t last_sequence) {
  return static_cast<int32_t>((int64_t{last_sequence} + 1) % kSequenceModulus);
}

// Reads fixed-width little-endian fields; once a read runs past the end, ok() is false for good
// and every later read returns 0, so a decoder checks once per record rather than per field.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  bool ok() const { return ok_; }
  bool done() const { return pos_ == data_.size(); }
  uint8_t U8() { return static_cast<uint8_t>(Get(1)); }
  uint32_t U32() { return static_cast<uint32_t>(Get(4)); }
  uint64_t U64() { return Get(8); }

 private:
  uint64_t Get(size_t n) {
    if (!ok_ || data_.size() - pos_ < n) {
      ok_ = false;
      return 0;
    }
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) v = (v << 8) | static_cast<uint8_t>(data_[pos_ + i]);
    pos_ += n;
    return v;
  }

  std::string_view data_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace

int32_t LastSequence(int32_t first_sequence, uint32_t record_count) {
  const int64_t count = std::max<int64_t>(record_count, 1);
  // Euclidean modulo: a negative first sequence (rejected by CheckSequence, but apply records
  // whatever committed) still maps into [0, 2^31) the same way on every replica.
  const int64_t last = (int64_t{first_sequence} + count - 1) % kSequenceModulus;
  return static_cast<int32_t>(last < 0 ? last + kSequenceModulus : last);
}

PartitionState::PartitionState(size_t max_producers) : max_producers_(max_producers) {
  SKIFF_ASSERT(max_producers_ >= 1);
}

SequenceCheck PartitionState::CheckSequence(const BatchEntryHeader& header) const {
  SequenceCheck check;
  if (header.producer_id < 0) return check;
  const std::string who = "producer " + std::to_string(header.producer_id);
  if (header.base_sequence < 0) {
    check.verdict = SequenceVerdict::kOutOfSequence;
    check.message = who + ": negative base sequence " + std::to_string(header.base_sequence);
    return check;
  }

  // The producer's current epoch and its batches in that epoch, oldest first: applied ones,
  // then the pending ones proposed after them.
  bool known = false;
  int32_t epoch = 0;
  std::vector<ProducerBatch> recent;
  auto consider = [&](int32_t batch_epoch, const ProducerBatch& batch) {
    if (!known || batch_epoch != epoch) {
      recent.clear();
      epoch = batch_epoch;
      known = true;
    }
    recent.push_back(batch);
  };
  if (auto it = producers_.find(header.producer_id); it != producers_.end()) {
    for (const ProducerBatch& batch : it->second.batches) consider(it->second.epoch, batch);
  }
  if (auto it = pending_.find(header.producer_id); it != pending_.end()) {
    for (const PendingBatch& pending : it->second) consider(pending.epoch, pending.batch);
  }

  const std::string got = std::to_string(header.base_sequence);
  if (!known || header.producer_epoch > epoch) {
    if (header.base_sequence != 0) {
      check.verdict = SequenceVerdict::kOutOfSequence;
      check.message = who + (known ? " epoch " + std::to_string(header.producer_epoch) +
                                         " is new: expected sequence 0, got " + got
                                   : " is unknown: expected sequence 0, got " + got);
    }
    return check;
  }
  if (header.producer_epoch < epoch) {
    check.verdict = SequenceVerdict::kFenced;
    check.message = who + " epoch " + std::to_string(header.producer_epoch) +
                    " is fenced by epoch " + std::to_string(epoch);
    return check;
  }
  const int32_t last = LastSequence(header.base_sequence, header.record_count);
  const size_t window = std::min(recent.size(), kProducerBatchesKept);
  for (size_t i = 0; i < window; ++i) {
    const ProducerBatch& batch = recent[recent.size() - 1 - i];
    if (batch.first_sequence == header.base_sequence && batch.last_sequence == last) {
      check.verdict = SequenceVerdict::kDuplicate;
      check.original = batch;
      return check;
    }
  }
  const int32_t expected = NextSequence(recent.back().last_sequence);
  if (header.base_sequence != expected) {
    check.verdict = SequenceVerdict::kOutOfSequence;
    check.message = who + " epoch " + std::to_string(epoch) + ": expected sequence " +
                    std::to_string(expected) + ", got " + got;
  }
  return check;
}

void PartitionState::AddPending(const BatchEntryHeader& header, raft::Index index) {
  // Already applied (a single-node group can commit before the proposer gets here): the
  // applied state has it, and a pending copy would never be dropped.
  if (header.producer_id < 0 || index <= applied_index_) return;
  SKIFF_ASSERT(pending_by_index_.empty() || index > pending_by_index_.rbegin()->first);
  PendingBatch pending;
  pending.epoch = header.producer_epoch;
  pending.batch.first_sequence = header.base_sequence;
  pending.batch.last_sequence = LastSequence(header.base_sequence, header.record_count);
  pending.batch.index = index;
  pending_[header.producer_id].push_back(pending);
  pending_by_index_.emplace(index, header.producer_id);
}

void PartitionState::ClearPending() {
  pending_.clear();
  pending_by_index_.clear();
}

void PartitionState::DropPendingThrough(raft::Index index) {
  while (!pending_by_index_.empty() && pending_by_index_.begin()->first <= index) {
    const int64_t producer_id = pending_by_index_.begin()->second;
    auto it = pending_.find(producer_id);
    SKIFF_ASSERT(it != pending_.end() && !it->second.empty());
    SKIFF_ASSERT(it->second.front().batch.index == pending_by_index_.begin()->first);
    it->second.pop_front();
    if (it->second.empty()) pending_.erase(it);
    pending_by_index_.erase(pending_by_index_.begin());
  }
}

void PartitionState::EvictIfOverLimit() {
  while (producers_.size() > max_producers_) {
    auto oldest = producer_by_last_index_.begin();
    SKIFF_ASSERT(oldest != producer_by_last_index_.end());
    producers_.erase(oldest->second);
    producer_by_last_index_.erase(oldest);
  }
}

Offset PartitionState::ApplyBatch(const BatchEntryHeader& header, raft::Index index) {
  SKIFF_ASSERT(index > applied_index_);
  const Offset base_offset = end_offset_;
  end_offset_ = end_offset_ + header.record_count;
  applied_index_ = index;
  DropPendingThrough(index);
  if (header.producer_id < 0) return base_offset;

  auto [it, inserted] = producers_.try_emplace(header.producer_id);
  Producer& producer = it->second;
  if (!inserted) {
    producer_by_last_index_.erase(producer.batches.back().index);
  }
  // The committed batch defines the producer's epoch even if it is not newer: the log is the
  // truth, and following it blindly is what keeps replicas identical.
  if (inserted || header.producer_epoch != producer.epoch) {
    producer.epoch = header.producer_epoch;
    producer.batches.clear();
  }
  producer.batches.push_back(ProducerBatch{header.base_sequence,
                                           LastSequence(header.base_sequence, header.record_count),
                                           base_offset.value(), index});
  if (producer.batches.size() > kProducerBatchesKept) producer.batches.pop_front();
  producer_by_last_index_.emplace(index, header.producer_id);
  EvictIfOverLimit();
  return base_offset;
}

void PartitionState::ApplyNonBatch(raft::Index index) {
  SKIFF_ASSERT(index > applied_index_);
  applied_index_ = index;
  DropPendingThrough(index);
}

// Grammar (little-endian, fixed width):
//   snapshot = version:u8(=1) end_offset:i64 applied_index:u64 count:u32 producer{count} crc:u32
//   producer = id:i64 epoch:i32 n:u8 batch{n}             -- ascending id, 1 <= n <= 5
//   batch    = first_sequence:i32 last_sequence:i32 base_offset:i64 index:u64   -- oldest first
//   crc      = CRC32C of everything before it
std::string PartitionState::EncodeSnapshot() const {
  std::vector<int64_t> ids;
  ids.reserve(producers_.size());
  for (const auto& [id, producer] : producers_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());

  std::string out;
  out.push_back(static_cast<char>(kSnapshotVersion));
  PutFixed64(out, static_cast<uint64_t>(end_offset_.value()));
  PutFixed64(out, applied_index_);
  PutFixed32(out, static_cast<uint32_t>(ids.size()));
  for (int64_t id : ids) {
    const Producer& producer = producers_.at(id);
    PutFixed64(out, static_cast<uint64_t>(id));
    PutFixed32(out, static_cast<uint32_t>(producer.epoch));
    out.push_back(static_cast<char>(producer.batches.size()));
    for (const ProducerBatch& batch : producer.batches) {
      PutFixed32(out, static_cast<uint32_t>(batch.first_sequence));
      PutFixed32(out, static_cast<uint32_t>(batch.last_sequence));
      PutFixed64(out, static_cast<uint64_t>(batch.base_offset));
      PutFixed64(out, batch.index);
    }
  }
  PutFixed32(out, Crc32c(out));
  return out;
}

Result<PartitionState> PartitionState::DecodeSnapshot(std::string_view data, size_t max_producers) {
  if (data.size() < 4) return CorruptionError("partition snapshot is truncated");
  const std::string_view body = data.substr(0, data.size() - 4);
  Reader crc_reader(data.substr(body.size()));
  if (crc_reader.U32() != Crc32c(body)) {
    return CorruptionError("partition snapshot checksum mismatch");
  }
  Reader in(body);
  const uint8_t version = in.U8();
  if (!in.ok() || version != kSnapshotVersion) {
    return CorruptionError("partition snapshot has unknown version " + std::to_string(version));
  }
  PartitionState state(max_producers);
  state.end_offset_ = Offset(static_cast<int64_t>(in.U64()));
  state.applied_index_ = in.U64();
  const uint32_t count = in.U32();
  if (!in.ok() || state.end_offset_.value() < 0) {
    return CorruptionError("partition snapshot header is malformed");
  }
  int64_t previous_id = -1;
  for (uint32_t i = 0; i < count; ++i) {
    const auto id = static_cast<int64_t>(in.U64());
    Producer producer;
    producer.epoch = static_cast<int32_t>(in.U32());
    const uint8_t n = in.U8();
    if (!in.ok() || id <= previous_id || n == 0 || n > kProducerBatchesKept) {
      return CorruptionError("partition snapshot producer " + std::to_string(i) + " is malformed");
    }
    previous_id = id;
    for (uint8_t j = 0; j < n; ++j) {
      ProducerBatch batch;
      batch.first_sequence = static_cast<int32_t>(in.U32());
      batch.last_sequence = static_cast<int32_t>(in.U32());
      batch.base_offset = static_cast<int64_t>(in.U64());
      batch.index = in.U64();
      const bool ordered = producer.batches.empty() || batch.index > producer.batches.back().index;
      if (!in.ok() || !ordered || batch.index == 0 || batch.index > state.applied_index_ ||
          batch.base_offset < 0 || batch.base_offset > state.end_offset_.value()) {
        return CorruptionError("partition snapshot batch of producer " + std::to_string(id) +
                               " is malformed");
      }
      producer.batches.push_back(batch);
    }
    if (!state.producer_by_last_index_.emplace(producer.batches.back().index, id).second) {
      return CorruptionError("partition snapshot has two producers with one last index");
    }
    state.producers_.emplace(id, std::move(producer));
  }
  if (!in.done()) return CorruptionError("partition snapshot has trailing bytes");
  // A replica configured with fewer producers than the snapshot's source keeps the newest.
  state.EvictIfOverLimit();
  return state;
}

}  // namespace skiff::broker
