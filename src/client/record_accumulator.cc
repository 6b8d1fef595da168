#include "client/record_accumulator.h"

#include <algorithm>

namespace skiff::client {

int64_t EstimatedRecordBytes(const v1::Record& record) {
  int64_t bytes = 16 + static_cast<int64_t>(record.key().size() + record.value().size());
  for (const v1::RecordHeader& header : record.headers()) {
    bytes += 8 + static_cast<int64_t>(header.name().size() + header.value().size());
  }
  return bytes;
}

void RecordAccumulator::Append(const TopicPartition& tp, QueuedRecord record, int64_t now_ms) {
  const int64_t bytes = EstimatedRecordBytes(record.record);
  auto it = open_.find(tp);
  if (it != open_.end() && it->second.bytes + bytes > batch_bytes_) {
    sealed_.push_back(std::move(it->second.batch));
    open_.erase(it);
    it = open_.end();
  }
  if (it == open_.end()) {
    Open fresh;
    fresh.batch.tp = tp;
    fresh.batch.created_ms = now_ms;
    it = open_.emplace(tp, std::move(fresh)).first;
  }
  it->second.batch.records.push_back(std::move(record));
  it->second.bytes += bytes;
  if (it->second.bytes >= batch_bytes_) {
    sealed_.push_back(std::move(it->second.batch));
    open_.erase(it);
  }
}

std::vector<SealedBatch> RecordAccumulator::Drain(int64_t now_ms, bool flush_all) {
  std::vector<SealedBatch> out(std::make_move_iterator(sealed_.begin()),
                               std::make_move_iterator(sealed_.end()));
  sealed_.clear();
  for (auto it = open_.begin(); it != open_.end();) {
    if (flush_all || now_ms - it->second.batch.created_ms >= linger_ms_) {
      out.push_back(std::move(it->second.batch));
      it = open_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

std::optional<int64_t> RecordAccumulator::NextDueMs() const {
  if (!sealed_.empty()) return 0;
  std::optional<int64_t> due;
  for (const auto& [tp, open] : open_) {
    const int64_t at = open.batch.created_ms + linger_ms_;
    due = due ? std::min(*due, at) : at;
  }
  return due;
}

}  // namespace skiff::client
