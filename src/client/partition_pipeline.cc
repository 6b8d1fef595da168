#include "client/partition_pipeline.h"

#include <algorithm>

#include "common/assert.h"

namespace skiff::client {
namespace {

int32_t AddSequence(int32_t sequence, int32_t count) {
  return static_cast<int32_t>((static_cast<int64_t>(sequence) + count) & 0x7fffffff);
}

}  // namespace

int32_t PartitionPipeline::Append(uint64_t batch_id, int32_t record_count, int64_t deadline_ms) {
  SKIFF_ASSERT(record_count >= 1);
  Slot slot;
  slot.id = batch_id;
  slot.base_sequence = next_sequence_;
  slot.record_count = record_count;
  slot.deadline_ms = deadline_ms;
  next_sequence_ = AddSequence(next_sequence_, record_count);
  slots_.push_back(std::move(slot));
  return slots_.back().base_sequence;
}

void PartitionPipeline::ExpireOverdue(int64_t now_ms) {
  // Only with nothing in flight: then every slot is queued and no answer can still arrive.
  if (in_flight_ != 0) return;
  bool expired = false;
  for (auto it = slots_.begin(); it != slots_.end();) {
    if (it->deadline_ms > now_ms) {
      ++it;
      continue;
    }
    std::string why = "delivery timeout after " + std::to_string(it->attempts) + " attempt(s)";
    if (!it->last_error.ok()) why += "; last error: " + it->last_error.ToString();
    completions_.push_back({it->id, UnavailableError(std::move(why)), -1});
    it = slots_.erase(it);
    expired = true;
  }
  if (expired && options_.idempotent) needs_reset_ = true;
}

std::optional<SendTicket> PartitionPipeline::NextToSend(int64_t now_ms) {
  ExpireOverdue(now_ms);
  if (paused_) {
    if (in_flight_ > 0 || now_ms < resume_at_ms_) return std::nullopt;
    paused_ = false;
  }
  if (needs_reset_ || in_flight_ >= options_.max_in_flight) return std::nullopt;
  for (Slot& slot : slots_) {
    if (slot.state == State::kInFlight) continue;
    slot.state = State::kInFlight;
    ++slot.attempts;
    ++in_flight_;
    return SendTicket{slot.id, slot.base_sequence, slot.attempts};
  }
  return std::nullopt;
}

std::deque<PartitionPipeline::Slot>::iterator PartitionPipeline::Find(uint64_t batch_id) {
  return std::find_if(slots_.begin(), slots_.end(),
                      [batch_id](const Slot& slot) { return slot.id == batch_id; });
}

void PartitionPipeline::OnAcked(uint64_t batch_id, int64_t base_offset) {
  auto slot = Find(batch_id);
  SKIFF_ASSERT(slot != slots_.end() && slot->state == State::kInFlight);
  --in_flight_;
  consecutive_failures_ = 0;
  completions_.push_back({batch_id, Status::Ok(), base_offset});
  slots_.erase(slot);
}

void PartitionPipeline::OnRetriable(uint64_t batch_id, int64_t now_ms, Status why) {
  auto slot = Find(batch_id);
  SKIFF_ASSERT(slot != slots_.end() && slot->state == State::kInFlight);
  --in_flight_;
  slot->state = State::kQueued;
  slot->last_error = std::move(why);
  ++consecutive_failures_;
  const int shift = std::min(consecutive_failures_ - 1, 20);
  const int64_t backoff =
      std::min(options_.retry_backoff_ms << shift, options_.max_retry_backoff_ms);
  resume_at_ms_ = std::max(resume_at_ms_, now_ms + backoff);
  paused_ = true;
}

void PartitionPipeline::OnFatal(uint64_t batch_id, Status why) {
  auto slot = Find(batch_id);
  SKIFF_ASSERT(slot != slots_.end() && slot->state == State::kInFlight);
  --in_flight_;
  completions_.push_back({batch_id, std::move(why), -1});
  slots_.erase(slot);
  if (options_.idempotent) {
    // Later batches carry sequences past the hole; they come back OUT_OF_SEQUENCE and wait
    // for the reset.
    needs_reset_ = true;
    paused_ = true;
  }
}

std::vector<Completion> PartitionPipeline::TakeCompletions() {
  std::vector<Completion> out;
  out.swap(completions_);
  return out;
}

void PartitionPipeline::ResetSequences() {
  SKIFF_ASSERT(needs_reset_ && in_flight_ == 0);
  next_sequence_ = 0;
  for (Slot& slot : slots_) {
    slot.base_sequence = next_sequence_;
    next_sequence_ = AddSequence(next_sequence_, slot.record_count);
  }
  needs_reset_ = false;
}

std::optional<int64_t> PartitionPipeline::NextWakeupMs() const {
  if (in_flight_ > 0 || slots_.empty()) return std::nullopt;
  int64_t earliest = slots_.front().deadline_ms;
  for (const Slot& slot : slots_) earliest = std::min(earliest, slot.deadline_ms);
  if (paused_) earliest = std::min(earliest, resume_at_ms_);
  return earliest;
}

}  // namespace skiff::client
