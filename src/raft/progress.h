// Progress: the leader's view of one peer's log, driving flow control (etcd-style).
//
//   kProbe      the leader does not know where the follower's log matches; it sends one append
//               at a time (then waits for a response or the next heartbeat) and backs off on
//               rejection using the follower's hint.
//   kReplicate  the follower is known to match through `match`; appends are pipelined, at most
//               Inflights::capacity() in flight, and `next` advances optimistically as they go.
//   kSnapshot   the follower needs entries that were compacted away; a snapshot is in flight and
//               nothing else is sent until it is reported done or the follower acknowledges it.
//
// Invariant: match < next. Pure bookkeeping; no messages are sent from here.
#pragma once

#include <cstddef>
#include <deque>

#include "raft/types.h"

namespace skiff::raft {

// Sliding window of in-flight kAppend messages, each identified by the last index it carried.
class Inflights {
 public:
  explicit Inflights(size_t capacity) : capacity_(capacity) {}

  // Records an append whose last entry is `last_index`; indexes must be added increasingly.
  void Add(Index last_index);
  // Frees every message whose last index is <= `index` (acknowledged).
  void FreeLE(Index index);
  void FreeFirstOne();
  bool Full() const { return window_.size() >= capacity_; }
  size_t Count() const { return window_.size(); }
  size_t capacity() const { return capacity_; }
  void Reset() { window_.clear(); }

 private:
  size_t capacity_;
  std::deque<Index> window_;
};

enum class ProgressState { kProbe, kReplicate, kSnapshot };
const char* ProgressStateName(ProgressState state);

class Progress {
 public:
  Progress(Index next, size_t max_inflight) : next(next), inflights(max_inflight) {}

  Index match = 0;
  Index next = 1;
  ProgressState state = ProgressState::kProbe;
  Index pending_snapshot = 0;  // kSnapshot: index of the snapshot being sent
  bool recent_active = false;  // heard from within the current check-quorum window
  bool probe_sent = false;     // kProbe: an append is outstanding; wait for a reply/heartbeat
  bool is_learner = false;
  int snapshot_ticks = 0;  // leader ticks spent in kSnapshot (a lost snapshot times out)
  // The highest commit index this follower was sent that it can apply on receipt (capped at
  // the log it holds after the message). Reset when the leader loses track of the follower.
  Index commit_sent = 0;
  Inflights inflights;

  void BecomeProbe();
  void BecomeReplicate();
  void BecomeSnapshot(Index snapshot_index);

  // The follower acknowledged entries through `index`. Returns true if match advanced.
  bool MaybeUpdate(Index index);
  // An append carrying entries through `last` was sent (replicate state): optimistic next.
  void OptimisticUpdate(Index last) { next = last + 1; }
  // The follower rejected an append whose previous index was `rejected`; `match_hint` is the
  // highest index at which the logs may still match. Returns false if the rejection is stale.
  bool MaybeDecrTo(Index rejected, Index match_hint);
  // Whether the leader should hold back further appends to this peer.
  bool IsPaused() const;
};

}  // namespace skiff::raft
