#include "sim_network.h"

#include <algorithm>
#include <utility>

namespace skiff::sim {

void SimNetwork::Send(raft::Message message, uint64_t now_ticks) {
  SKIFF_ASSERT(message.from >= 1 && message.from <= kMaxNodeId);
  sent_total_++;
  if (random_->Percent(faults_.drop_percent)) {
    Lose(std::move(message));
    return;
  }
  if (random_->Percent(faults_.duplicate_percent)) Enqueue(message, now_ticks);
  Enqueue(std::move(message), now_ticks);
}

void SimNetwork::Enqueue(raft::Message message, uint64_t now_ticks) {
  uint64_t delay = random_->Between(faults_.delay_ticks_min, faults_.delay_ticks_max);
  if (random_->Percent(faults_.long_delay_percent)) {
    delay = random_->Between(faults_.delay_ticks_min, faults_.long_delay_ticks_max);
  }
  SKIFF_ASSERT(delay >= 1);
  if (in_flight_.size() >= kMaxInFlight) {
    // A bounded queue: the message due last is lost.
    auto last = std::prev(in_flight_.end());
    Lose(std::move(last->second));
    in_flight_.erase(last);
  }
  in_flight_.emplace(Key{now_ticks + delay, next_sequence_++}, std::move(message));
}

void SimNetwork::Route(raft::Message&& m, std::vector<raft::Message>* deliver,
                       std::vector<raft::Message>* blocked) {
  if (m.to < 1 || m.to > kMaxNodeId || blocked_[m.from][m.to]) {
    blocked->push_back(std::move(m));
  } else {
    deliver->push_back(std::move(m));
  }
}

void SimNetwork::TakeDue(uint64_t now_ticks, std::vector<raft::Message>* deliver,
                         std::vector<raft::Message>* blocked) {
  while (!in_flight_.empty() && in_flight_.begin()->first.first <= now_ticks) {
    auto it = in_flight_.begin();
    Route(std::move(it->second), deliver, blocked);
    in_flight_.erase(it);
  }
}

std::map<SimNetwork::Key, raft::Message>::iterator SimNetwork::RandomInFlight() {
  SKIFF_ASSERT(!in_flight_.empty());
  auto it = in_flight_.begin();
  std::advance(it, static_cast<std::ptrdiff_t>(random_->Below(in_flight_.size())));
  return it;
}

bool SimNetwork::DeliverAnyOne(std::vector<raft::Message>* deliver,
                               std::vector<raft::Message>* blocked) {
  if (in_flight_.empty()) return false;
  auto it = RandomInFlight();
  Route(std::move(it->second), deliver, blocked);
  in_flight_.erase(it);
  return true;
}

bool SimNetwork::DropAnyOne() {
  if (in_flight_.empty()) return false;
  auto it = RandomInFlight();
  Lose(std::move(it->second));
  in_flight_.erase(it);
  return true;
}

bool SimNetwork::DuplicateAnyOne(uint64_t now_ticks) {
  if (in_flight_.empty()) return false;
  raft::Message copy = RandomInFlight()->second;
  Enqueue(std::move(copy), now_ticks);
  return true;
}

void SimNetwork::Block(raft::NodeId from, raft::NodeId to) {
  SKIFF_ASSERT(from >= 1 && from <= kMaxNodeId && to >= 1 && to <= kMaxNodeId);
  if (from != to) blocked_[from][to] = true;
}

void SimNetwork::Isolate(raft::NodeId node) {
  for (raft::NodeId other = 1; other <= kMaxNodeId; other++) {
    if (other != node) BlockBoth(node, other);
  }
}

void SimNetwork::HealAll() {
  for (auto& row : blocked_) std::fill(std::begin(row), std::end(row), false);
}

bool SimNetwork::AnyBlocked() const {
  for (const auto& row : blocked_) {
    for (bool b : row) {
      if (b) return true;
    }
  }
  return false;
}

}  // namespace skiff::sim
