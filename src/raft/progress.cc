#include "raft/progress.h"

#include <algorithm>

#include "common/assert.h"

namespace skiff::raft {

void Inflights::Add(Index last_index) {
  SKIFF_ASSERT(!Full());
  SKIFF_ASSERT(window_.empty() || window_.back() <= last_index);
  window_.push_back(last_index);
}

void Inflights::FreeLE(Index index) {
  while (!window_.empty() && window_.front() <= index) window_.pop_front();
}

void Inflights::FreeFirstOne() {
  if (!window_.empty()) window_.pop_front();
}

const char* ProgressStateName(ProgressState state) {
  switch (state) {
    case ProgressState::kProbe:
      return "Probe";
    case ProgressState::kReplicate:
      return "Replicate";
    case ProgressState::kSnapshot:
      return "Snapshot";
  }
  return "Unknown";
}

void Progress::BecomeProbe() {
  if (state == ProgressState::kSnapshot) {
    next = std::max(match + 1, pending_snapshot + 1);
  } else {
    next = match + 1;
  }
  state = ProgressState::kProbe;
  pending_snapshot = 0;
  probe_sent = false;
  commit_sent = 0;
  inflights.Reset();
}

void Progress::BecomeReplicate() {
  state = ProgressState::kReplicate;
  next = match + 1;
  pending_snapshot = 0;
  probe_sent = false;
  inflights.Reset();
}

void Progress::BecomeSnapshot(Index snapshot_index) {
  state = ProgressState::kSnapshot;
  pending_snapshot = snapshot_index;
  snapshot_ticks = 0;
  probe_sent = false;
  commit_sent = 0;
  inflights.Reset();
}

bool Progress::MaybeUpdate(Index index) {
  bool updated = false;
  if (index > match) {
    match = index;
    probe_sent = false;
    updated = true;
  }
  next = std::max(next, index + 1);
  return updated;
}

bool Progress::MaybeDecrTo(Index rejected, Index match_hint) {
  if (state == ProgressState::kReplicate) {
    // Stale if it rejects something we already know matches.
    if (rejected <= match) return false;
    next = match + 1;
    return true;
  }
  if (state == ProgressState::kSnapshot) return false;
  // Probe: only the rejection of the latest probe counts.
  if (next == 0 || next - 1 != rejected) return false;
  next = std::max(std::min(rejected, match_hint + 1), match + 1);
  probe_sent = false;
  return true;
}

bool Progress::IsPaused() const {
  switch (state) {
    case ProgressState::kProbe:
      return probe_sent;
    case ProgressState::kReplicate:
      return inflights.Full();
    case ProgressState::kSnapshot:
      return true;
  }
  return true;
}

}  // namespace skiff::raft
