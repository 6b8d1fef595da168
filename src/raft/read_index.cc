// ReadIndex (linearizable reads confirmed by a heartbeat round) and quiescence.
#include <algorithm>

#include "common/assert.h"
#include "raft/quorum.h"
#include "raft/raft_node.h"

namespace skiff::raft {

bool RaftNode::CommittedInCurrentTerm() const {
  return log_.TermAt(log_.committed()).value_or(0) == term_;
}

Status RaftNode::ReadIndex(uint64_t context) {
  if (role_ == Role::kLeader) {
    Unquiesce();
    HandleReadRequest(config_.id, context);
    return Status::Ok();
  }
  if (lead_ == kNoNode) return UnavailableError("no leader known");
  Unquiesce();
  Message m = MakeMessage(MessageType::kReadIndex, lead_);
  m.context = context;
  Send(std::move(m));
  return Status::Ok();
}

void RaftNode::HandleReadRequest(NodeId from, uint64_t context) {
  SKIFF_ASSERT(role_ == Role::kLeader);
  // Until the leader commits an entry of its term it may not know the latest commit index.
  if (!CommittedInCurrentTerm()) {
    deferred_reads_.emplace_back(from, context);
    return;
  }
  if (voters_.size() == 1 && IsVoter(config_.id)) {
    RespondRead(from, context, log_.committed());
    return;
  }
  ++read_round_;
  pending_reads_.push_back(ReadRequest{from, context, log_.committed(), read_round_});
  acked_round_[config_.id] = read_round_;
  BroadcastHeartbeat(read_round_, /*quiesce=*/false);
}

void RaftNode::RespondRead(NodeId to, uint64_t context, Index index) {
  if (to == config_.id) {
    read_states_.push_back(ReadState{context, index});
    return;
  }
  Message m = MakeMessage(MessageType::kReadIndexResponse, to);
  m.context = context;
  m.index = index;
  Send(std::move(m));
}

void RaftNode::RejectPendingReads() {
  // Remote requesters get an explicit rejection (their host retries); local ones get no
  // ReadState, the host sees the leadership change in Ready::soft_state and retries.
  for (const ReadRequest& r : pending_reads_) {
    if (r.from != config_.id) RejectRead(r.from, r.context);
  }
  for (const auto& [from, context] : deferred_reads_) {
    if (from != config_.id) RejectRead(from, context);
  }
  pending_reads_.clear();
  deferred_reads_.clear();
}

void RaftNode::RejectRead(NodeId to, uint64_t context) {
  Message m = MakeMessage(MessageType::kReadIndexResponse, to);
  m.context = context;
  m.reject = true;
  Send(std::move(m));
}

void RaftNode::ProcessPendingReads() {
  while (!pending_reads_.empty()) {
    const ReadRequest& r = pending_reads_.front();
    std::map<NodeId, bool> acks;
    for (NodeId v : voters_) {
      auto it = acked_round_.find(v);
      if (it != acked_round_.end() && it->second >= r.round) acks[v] = true;
    }
    if (quorum::TallyVotes(voters_, acks) != quorum::VoteResult::kWon) break;
    RespondRead(r.from, r.context, r.index);
    pending_reads_.pop_front();
  }
}

// --- Quiescence --------------------------------------------------------------------------------

void RaftNode::Wake() { Unquiesce(); }

void RaftNode::Unquiesce() {
  if (!quiesced_) return;
  quiesced_ = false;
  idle_ticks_ = 0;
  if (role_ == Role::kLeader) {
    // Followers stopped hearing from us; count them active for the current check-quorum
    // window (election_elapsed_ is not reset: it is the check-quorum clock).
    for (auto& [id, pr] : progress_) pr.recent_active = true;
    heartbeat_elapsed_ = config_.heartbeat_ticks;  // heartbeat on the next tick
  } else {
    election_elapsed_ = 0;
    // Until we hear from the leader again we do not know it is alive (it may have been quiet
    // all along, or its host died): no leader stickiness meanwhile.
    lease_suspended_ = true;
    // We were woken by something other than a (live) leader's traffic, or by a message the
    // leader sent before it went quiet: the leader may still be quiesced and would never speak
    // again. Tell it to wake (a quiesced leader ignores ordinary heartbeat responses).
    if (role_ == Role::kFollower && lead_ != kNoNode) {
      Message m = MakeMessage(MessageType::kHeartbeatResponse, lead_);
      m.reject = true;
      Send(std::move(m));
    }
  }
}

bool RaftNode::CanQuiesce() const {
  if (lead_transferee_ != kNoNode || !pending_reads_.empty() || !deferred_reads_.empty()) {
    return false;
  }
  if (pending_conf_index_ > log_.applied()) return false;
  const Index last = log_.LastIndex();
  if (log_.committed() != last || log_.applied() != last) return false;
  for (const auto& [id, pr] : progress_) {
    if (pr.match != last) return false;
  }
  return true;
}

void RaftNode::MaybeQuiesce() {
  if (config_.quiesce_after_ticks <= 0) return;
  if (!CanQuiesce()) {
    idle_ticks_ = 0;
    return;
  }
  if (++idle_ticks_ < config_.quiesce_after_ticks) return;
  BroadcastHeartbeat(read_round_, /*quiesce=*/true);
  quiesced_ = true;
  idle_ticks_ = 0;
}

}  // namespace skiff::raft
