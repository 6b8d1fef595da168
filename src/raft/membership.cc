// Membership (single-server changes, applied etcd-style when the host applies the entry),
// bootstrap, leadership transfer and transport feedback.
#include <algorithm>
#include <string>

#include "common/assert.h"
#include "raft/raft_node.h"

namespace skiff::raft {

namespace {

bool Contains(const std::vector<NodeId>& v, NodeId id) {
  return std::binary_search(v.begin(), v.end(), id);
}

void Insert(std::vector<NodeId>& v, NodeId id) {
  auto it = std::lower_bound(v.begin(), v.end(), id);
  if (it == v.end() || *it != id) v.insert(it, id);
}

void Erase(std::vector<NodeId>& v, NodeId id) {
  auto it = std::lower_bound(v.begin(), v.end(), id);
  if (it != v.end() && *it == id) v.erase(it);
}

}  // namespace

Status RaftNode::Bootstrap(const ConfState& conf) {
  if (log_.LastIndex() != 0 || term_ != 0) {
    return FailedPreconditionError("bootstrap: the log is not empty");
  }
  if (conf.voters.empty()) return InvalidArgumentError("bootstrap: no voters");
  ConfState c;
  for (NodeId v : conf.voters) {
    if (v == kNoNode) return InvalidArgumentError("bootstrap: node id 0");
    Insert(c.voters, v);
  }
  for (NodeId l : conf.learners) {
    if (l == kNoNode || Contains(c.voters, l)) {
      return InvalidArgumentError("bootstrap: bad learner id");
    }
    Insert(c.learners, l);
  }
  // The initial membership becomes a snapshot at index 1 (term 1), identical on every initial
  // member, so a node added later receives it like any other state: through kSnapshot.
  Snapshot snap;
  snap.meta.index = 1;
  snap.meta.term = 1;
  snap.meta.conf = c;
  log_.RestoreSnapshot(snap);
  SetConf(c);
  // Start at the snapshot's term so that every log term stays <= the current term and the
  // first leader (term 2) never mistakes the bootstrap snapshot for an entry of its own term.
  term_ = 1;
  return Status::Ok();
}

void RaftNode::SetConf(const ConfState& conf) {
  voters_.clear();
  learners_.clear();
  for (NodeId v : conf.voters) Insert(voters_, v);
  for (NodeId l : conf.learners) {
    if (!Contains(voters_, l)) Insert(learners_, l);
  }
  const Index next = log_.LastIndex() + 1;
  for (auto it = progress_.begin(); it != progress_.end();) {
    if (!Contains(voters_, it->first) && !Contains(learners_, it->first)) {
      it = progress_.erase(it);
    } else {
      ++it;
    }
  }
  auto add = [&](NodeId id, bool learner) {
    auto [it, inserted] =
        progress_.try_emplace(id, next, static_cast<size_t>(config_.max_inflight_appends));
    it->second.is_learner = learner;
    if (inserted && id == config_.id) {
      it->second.recent_active = true;
      if (role_ == Role::kLeader && !config_.async_storage_writes) {
        it->second.match = log_.StableLastIndex();
      }
    }
  };
  for (NodeId v : voters_) add(v, false);
  for (NodeId l : learners_) add(l, true);
}

Status RaftNode::ValidateConfChange(const ConfChange& cc) const {
  if (cc.node == kNoNode) return InvalidArgumentError("conf change: node id 0");
  const bool voter = Contains(voters_, cc.node);
  const bool learner = Contains(learners_, cc.node);
  switch (cc.type) {
    case ConfChangeType::kAddVoter:
      if (voter) return InvalidArgumentError("conf change: already a voter");
      break;
    case ConfChangeType::kAddLearner:
      if (learner) return InvalidArgumentError("conf change: already a learner");
      if (voter && voters_.size() == 1) return InvalidArgumentError("conf change: last voter");
      break;
    case ConfChangeType::kRemoveNode:
      if (!voter && !learner) return InvalidArgumentError("conf change: unknown node");
      if (voter && voters_.size() == 1) return InvalidArgumentError("conf change: last voter");
      break;
  }
  return Status::Ok();
}

Result<Index> RaftNode::ProposeConfChange(const ConfChange& cc) {
  if (role_ != Role::kLeader) return FailedPreconditionError("not the leader");
  if (lead_transferee_ != kNoNode) return AbortedError("leadership transfer in progress");
  if (pending_conf_index_ > log_.applied()) {
    return FailedPreconditionError("another membership change is still pending (index " +
                                   std::to_string(pending_conf_index_) + ")");
  }
  if (!CommittedInCurrentTerm()) {
    return FailedPreconditionError("the leader has not committed an entry of its term yet");
  }
  SKIFF_RETURN_IF_ERROR(ValidateConfChange(cc));
  Unquiesce();
  const Index index = AppendLocal(EntryType::kConfChange, Bytes(EncodeConfChange(cc)));
  pending_conf_index_ = index;
  return index;
}

ConfState RaftNode::ApplyConfChange(const ConfChange& cc, Index entry_index) {
  // The snapshot restored since already reflects this change (and possibly later ones).
  if (entry_index <= snapshot_restored_index_) return CurrentConf();
  return ApplyConfChange(cc);
}

ConfState RaftNode::ApplyConfChange(const ConfChange& cc) {
  const ConfState before = CurrentConf();
  ConfState next = before;
  switch (cc.type) {
    case ConfChangeType::kAddVoter:
      Erase(next.learners, cc.node);
      Insert(next.voters, cc.node);
      break;
    case ConfChangeType::kAddLearner:
      Erase(next.voters, cc.node);
      Insert(next.learners, cc.node);
      break;
    case ConfChangeType::kRemoveNode:
      Erase(next.voters, cc.node);
      Erase(next.learners, cc.node);
      break;
  }
  // Refused at proposal time; ignored (deterministically, on every member) if it slips through.
  if (cc.node == kNoNode || next.voters.empty()) return CurrentConf();
  SetConf(next);
  if (role_ == Role::kLeader) {
    if (!IsVoter(config_.id)) {
      // Removed or demoted: stop leading now; the remaining voters elect a new leader.
      BecomeFollower(term_, kNoNode);
      return CurrentConf();
    }
    if (lead_transferee_ != kNoNode && !IsVoter(lead_transferee_)) AbortTransfer();
    if (MaybeCommit()) NoteCommitAdvanced();
    // Probe new members at once (with an empty append if need be) so they get the log.
    if (!Contains(before.voters, cc.node) && !Contains(before.learners, cc.node) &&
        cc.node != config_.id) {
      SendAppend(cc.node, /*send_if_empty=*/true);
    }
    ProcessPendingReads();
  }
  return CurrentConf();
}

Status RaftNode::TransferLeadership(NodeId target) {
  if (role_ != Role::kLeader) return FailedPreconditionError("not the leader");
  if (target == config_.id) return Status::Ok();
  if (!IsVoter(target)) return InvalidArgumentError("transfer target is not a voter");
  Unquiesce();
  if (lead_transferee_ == target) return Status::Ok();
  lead_transferee_ = target;
  transfer_elapsed_ = 0;  // the transfer is abandoned after one election timeout from now
  const Progress& pr = progress_.at(target);
  if (pr.match == log_.LastIndex()) {
    SendTimeoutNow(target);
  } else {
    SendAppend(target, /*send_if_empty=*/true);
  }
  return Status::Ok();
}

void RaftNode::SendTimeoutNow(NodeId to) { Send(MakeMessage(MessageType::kTimeoutNow, to)); }

void RaftNode::ReportUnreachable(NodeId peer) {
  if (role_ != Role::kLeader) return;
  auto it = progress_.find(peer);
  if (it == progress_.end() || peer == config_.id) return;
  if (it->second.state == ProgressState::kReplicate) it->second.BecomeProbe();
}

void RaftNode::ReportSnapshot(NodeId peer, bool succeeded) {
  if (role_ != Role::kLeader) return;
  auto it = progress_.find(peer);
  if (it == progress_.end() || peer == config_.id) return;
  Progress& pr = it->second;
  if (pr.state != ProgressState::kSnapshot) return;
  if (!succeeded) pr.pending_snapshot = 0;
  pr.BecomeProbe();
  // Wait for the next heartbeat response before probing (the follower may be down).
  pr.probe_sent = true;
}

}  // namespace skiff::raft
