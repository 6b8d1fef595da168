// Log replication: the leader's appends, heartbeats and snapshots; the follower's handling of
// them; the commit rule.
#include <algorithm>

#include "common/assert.h"
#include "raft/quorum.h"
#include "raft/raft_node.h"

namespace skiff::raft {

// --- Leader: proposals -------------------------------------------------------------------------

Result<Index> RaftNode::Propose(Bytes data) {
  if (role_ != Role::kLeader) return FailedPreconditionError("not the leader");
  if (lead_transferee_ != kNoNode) return AbortedError("leadership transfer in progress");
  const uint64_t size = data.size();
  if (config_.max_uncommitted_bytes > 0 && uncommitted_bytes_ > 0 &&
      uncommitted_bytes_ + size > config_.max_uncommitted_bytes) {
    return ResourceExhaustedError("too many uncommitted bytes");
  }
  Unquiesce();
  return AppendLocal(EntryType::kNormal, std::move(data));
}

Index RaftNode::AppendLocal(EntryType type, Bytes data) {
  SKIFF_ASSERT(role_ == Role::kLeader);
  Entry e;
  e.term = term_;
  e.index = log_.LastIndex() + 1;
  e.type = type;
  e.data = std::move(data);
  const uint64_t size = e.data.size();
  log_.Append({e});
  if (type == EntryType::kConfChange) last_conf_index_ = e.index;
  if (size > 0) {
    uncommitted_.emplace_back(e.index, size);
    uncommitted_bytes_ += size;
  }
  idle_ticks_ = 0;
  pending_broadcast_ = true;
  return e.index;
}

void RaftNode::FlushBroadcast() {
  if (role_ == Role::kLeader && (pending_broadcast_ || pending_commit_broadcast_)) {
    BroadcastAppend(pending_commit_broadcast_);
  }
  pending_broadcast_ = false;
  pending_commit_broadcast_ = false;
}

// --- Leader: sending ---------------------------------------------------------------------------

bool RaftNode::SendAppend(NodeId to, bool send_if_empty) {
  auto it = progress_.find(to);
  if (it == progress_.end() || to == config_.id) return false;
  Progress& pr = it->second;
  if (pr.IsPaused()) return false;
  const Index prev = pr.next - 1;
  const auto prev_term = log_.TermAt(prev);
  auto entries = log_.Slice(pr.next, log_.LastIndex() + 1, config_.max_append_bytes);
  if (!prev_term.has_value() || !entries.ok()) return SendSnapshot(to, pr);
  if (entries->empty() && !send_if_empty) return false;

  Message m = MakeMessage(MessageType::kAppend, to);
  m.index = prev;
  m.log_term = *prev_term;
  m.commit = log_.committed();
  m.entries = std::move(entries).value();
  pr.commit_sent = std::max(pr.commit_sent, std::min(m.commit, m.index + m.entries.size()));
  if (!m.entries.empty()) {
    const Index last = m.entries.back().index;
    if (pr.state == ProgressState::kReplicate) {
      pr.OptimisticUpdate(last);
      pr.inflights.Add(last);
    } else {
      pr.probe_sent = true;
    }
  } else if (pr.state == ProgressState::kProbe) {
    pr.probe_sent = true;
  }
  Send(std::move(m));
  return true;
}

void RaftNode::SendAppendsWhilePossible(NodeId to) {
  // Pipelining: in kReplicate this fills the inflight window; in kProbe it sends one message.
  while (SendAppend(to, /*send_if_empty=*/false)) {
  }
}

bool RaftNode::SendSnapshot(NodeId to, Progress& pr) {
  auto snap = log_.GetSnapshot();
  if (!snap.ok() || snap->empty()) return false;  // being produced: retry on a later trigger
  pr.BecomeSnapshot(snap->meta.index);
  Message m = MakeMessage(MessageType::kSnapshot, to);
  m.index = snap->meta.index;
  m.log_term = snap->meta.term;
  m.snapshot = std::move(snap).value();
  Send(std::move(m));
  return true;
}

void RaftNode::BroadcastAppend(bool send_if_empty) {
  for (auto& [id, pr] : progress_) {
    if (id == config_.id) continue;
    if (send_if_empty) SendAppend(id, /*send_if_empty=*/true);
    SendAppendsWhilePossible(id);
  }
}

void RaftNode::SendHeartbeat(NodeId to, uint64_t context, bool quiesce) {
  Progress& pr = progress_.at(to);
  Message m = MakeMessage(MessageType::kHeartbeat, to);
  // Never tell a follower to commit beyond what it is known to hold.
  m.commit = std::min(pr.match, log_.committed());
  pr.commit_sent = std::max(pr.commit_sent, m.commit);
  m.context = context;
  m.quiesce = quiesce;
  Send(std::move(m));
}

void RaftNode::SendDeferredCommits() {
  for (auto& [id, pr] : progress_) {
    if (id == config_.id || pr.state == ProgressState::kSnapshot) continue;
    // Only what the follower was sent can be committed there (next - 1); anything beyond that
    // goes out with the entries themselves.
    if (pr.commit_sent < std::min(log_.committed(), pr.next - 1)) {
      SendAppend(id, /*send_if_empty=*/true);
    }
  }
}

void RaftNode::BroadcastHeartbeat(uint64_t context, bool quiesce) {
  for (const auto& [id, pr] : progress_) {
    if (id != config_.id) SendHeartbeat(id, context, quiesce);
  }
}

// --- Leader: commit rule -----------------------------------------------------------------------

void RaftNode::NoteCommitAdvanced() {
  if (!config_.defer_commit_broadcast) pending_commit_broadcast_ = true;
}

bool RaftNode::MaybeCommit() {
  std::vector<Index> matches;
  matches.reserve(voters_.size());
  for (NodeId v : voters_) {
    auto it = progress_.find(v);
    matches.push_back(it == progress_.end() ? 0 : it->second.match);
  }
  const Index index = config_.unsafe.commit_on_minority ? quorum::MinorityCommittedIndex(matches)
                                                        : quorum::CommittedIndex(matches);
  // Only an entry of the current term is committed by counting replicas (paper §5.4.2).
  if (!log_.MaybeCommit(index, term_)) return false;
  OnCommitAdvanced();
  return true;
}

void RaftNode::OnCommitAdvanced() {
  while (!uncommitted_.empty() && uncommitted_.front().first <= log_.committed()) {
    uncommitted_bytes_ -= uncommitted_.front().second;
    uncommitted_.pop_front();
  }
  if (!deferred_reads_.empty() && CommittedInCurrentTerm()) {
    auto deferred = std::move(deferred_reads_);
    deferred_reads_.clear();
    for (const auto& [from, context] : deferred) HandleReadRequest(from, context);
  }
}

// --- Leader: responses -------------------------------------------------------------------------

void RaftNode::HandleAppendResponse(const Message& m, Progress& pr) {
  pr.recent_active = true;
  if (m.reject) {
    // Fast back-tracking: skip over the follower's whole conflicting term at once.
    Index hint = m.reject_hint;
    if (m.reject_hint_term > 0) hint = log_.FindConflictByTerm(m.reject_hint, m.reject_hint_term);
    if (pr.MaybeDecrTo(m.index, hint)) {
      if (pr.state == ProgressState::kReplicate) pr.BecomeProbe();
      SendAppend(m.from, /*send_if_empty=*/true);
    }
    return;
  }
  if (m.index > log_.LastIndex()) return;  // cannot acknowledge what we never had: ignore
  const bool was_paused = pr.IsPaused();
  const bool updated = pr.MaybeUpdate(m.index);
  if (pr.state == ProgressState::kSnapshot) {
    // etcd's rule, on any acknowledgement (advancing or not): once the log can serve the rest
    // (match+1 >= FirstIndex), replicate from match+1 instead of waiting for the snapshot. The
    // snapshot acknowledged (match >= pending_snapshot) also ends the state, even if the log has
    // been compacted further since: the next append then sends a newer snapshot at once.
    if (pr.match + 1 >= log_.FirstIndex() || pr.match >= pr.pending_snapshot) {
      pr.BecomeProbe();
      pr.BecomeReplicate();
    } else if (!updated) {
      return;
    }
  } else if (!updated) {
    if (pr.state == ProgressState::kReplicate) pr.inflights.FreeLE(m.index);
    return;  // duplicate or stale acknowledgement
  } else if (pr.state == ProgressState::kProbe) {
    pr.BecomeReplicate();
  } else {
    pr.inflights.FreeLE(m.index);
  }
  if (MaybeCommit()) {
    NoteCommitAdvanced();
  } else if (was_paused) {
    SendAppend(m.from, /*send_if_empty=*/false);
  }
  SendAppendsWhilePossible(m.from);
  if (m.from == lead_transferee_ && pr.match == log_.LastIndex()) SendTimeoutNow(m.from);
}

void RaftNode::HandleHeartbeatResponse(const Message& m, Progress& pr) {
  pr.recent_active = true;
  pr.probe_sent = false;
  if (pr.state == ProgressState::kReplicate && pr.inflights.Full()) pr.inflights.FreeFirstOne();
  if (pr.match < log_.LastIndex()) {
    // In kProbe this re-sends the probe (possibly empty) that may have been lost.
    SendAppend(m.from, /*send_if_empty=*/true);
    SendAppendsWhilePossible(m.from);
  }
  if (m.context > 0 && IsVoter(m.from)) {
    uint64_t& acked = acked_round_[m.from];
    acked = std::max(acked, m.context);
    ProcessPendingReads();
  }
}

// --- Follower ----------------------------------------------------------------------------------

void RaftNode::HandleAppend(const Message& m) {
  Message r = MakeMessage(MessageType::kAppendResponse, m.from);
  if (m.index < log_.committed()) {
    // Everything through our commit index already matches the leader's log.
    r.index = log_.committed();
    Send(std::move(r));
    return;
  }
  if (auto last = log_.MaybeAppend(m.index, m.log_term, m.entries)) {
    for (const Entry& e : m.entries) {
      if (e.type == EntryType::kConfChange) last_conf_index_ = std::max(last_conf_index_, e.index);
    }
    log_.CommitTo(std::min(m.commit, *last));
    r.index = *last;
    Send(std::move(r));
    return;
  }
  // Reject with a hint: the last index at which our term is <= the leader's term at m.index,
  // so the leader can skip a whole conflicting term per round trip.
  const Index hint = log_.FindConflictByTerm(std::min(m.index, log_.LastIndex()), m.log_term);
  r.index = m.index;
  r.reject = true;
  r.reject_hint = hint;
  r.reject_hint_term = log_.TermAt(hint).value_or(0);
  Send(std::move(r));
}

void RaftNode::HandleHeartbeat(const Message& m) {
  log_.CommitTo(std::min(m.commit, log_.LastIndex()));
  Message r = MakeMessage(MessageType::kHeartbeatResponse, m.from);
  r.context = m.context;
  Send(std::move(r));
  if (m.quiesce) quiesced_ = true;
}

void RaftNode::HandleSnapshot(const Message& m) {
  const Snapshot& snap = *m.snapshot;
  Message r = MakeMessage(MessageType::kAppendResponse, m.from);
  if (snap.meta.index <= log_.committed()) {
    r.index = log_.committed();
  } else if (log_.MatchTerm(snap.meta.index, snap.meta.term)) {
    // We already hold the covered entries: just fast-forward the commit index.
    log_.CommitTo(snap.meta.index);
    r.index = log_.committed();
  } else {
    log_.RestoreSnapshot(snap);
    SetConf(snap.meta.conf);
    last_conf_index_ = 0;  // the log now starts after the snapshot
    snapshot_restored_index_ = snap.meta.index;
    r.index = log_.LastIndex();
  }
  Send(std::move(r));
}

}  // namespace skiff::raft
