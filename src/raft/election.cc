// Elections: pre-vote and vote rounds, granting votes, the leader lease (check-quorum).
#include <algorithm>

#include "common/assert.h"
#include "raft/quorum.h"
#include "raft/raft_node.h"
#include "raft/types.h"

namespace skiff::raft {

void RaftNode::Campaign() {
  Unquiesce();
  Hup(/*transfer=*/false);
}

void RaftNode::Hup(bool transfer) {
  if (role_ == Role::kLeader || !Promotable()) return;
  // A node that has committed but not applied a membership change does not know its current
  // configuration yet, so it must not campaign with a stale one.
  if (HasUnappliedConfChange()) return;
  if (config_.pre_vote && !transfer) {
    CampaignPreVote();
  } else {
    CampaignVote(transfer);
  }
}

bool RaftNode::HasUnappliedConfChange() {
  // last_conf_index_ bounds the index of every conf change in the log from above, so the usual
  // case (none after applied) reads nothing.
  if (log_.committed() <= log_.applied() || last_conf_index_ <= log_.applied()) return false;
  const Index hi = std::min(log_.committed(), last_conf_index_) + 1;
  for (Index lo = log_.applied() + 1; lo < hi;) {
    // Paged by max_append_bytes; stops at the first conf change.
    auto r = log_.Slice(lo, hi, config_.max_append_bytes);
    if (!r.ok() || r->empty()) return false;
    for (const Entry& e : *r) {
      if (e.type == EntryType::kConfChange) return true;
    }
    lo = r->back().index + 1;
  }
  // None in (applied, min(committed, bound)]; if the bound is within that range there is no
  // conf change after applied at all, so the next attempt reads nothing.
  if (last_conf_index_ <= log_.committed()) last_conf_index_ = 0;
  return false;
}

void RaftNode::CampaignPreVote() {
  BecomePreCandidate();
  votes_[config_.id] = true;
  if (quorum::TallyVotes(voters_, votes_) == quorum::VoteResult::kWon) {
    CampaignVote(/*transfer=*/false);
    return;
  }
  for (NodeId v : voters_) {
    if (v == config_.id) continue;
    Message m = MakeMessage(MessageType::kPreVote, v);
    m.term = term_ + 1;
    m.index = log_.LastIndex();
    m.log_term = log_.LastTerm();
    Send(std::move(m));
  }
}

void RaftNode::CampaignVote(bool transfer) {
  BecomeCandidate();
  votes_[config_.id] = true;
  if (quorum::TallyVotes(voters_, votes_) == quorum::VoteResult::kWon) {
    BecomeLeader();
    return;
  }
  for (NodeId v : voters_) {
    if (v == config_.id) continue;
    Message m = MakeMessage(MessageType::kVote, v);
    m.index = log_.LastIndex();
    m.log_term = log_.LastTerm();
    m.context = transfer ? kTransferContext : 0;
    Send(std::move(m));
  }
}

bool RaftNode::InLease() const {
  return config_.check_quorum && lead_ != kNoNode && !lease_suspended_ &&
         election_elapsed_ < config_.election_ticks;
}

void RaftNode::HandleVoteRequest(const Message& m) {
  const bool pre = m.type == MessageType::kPreVote;
  const auto& knobs = config_.unsafe;
  bool can_vote =
      vote_ == m.from || (vote_ == kNoNode && lead_ == kNoNode) || (pre && m.term > term_);
  if (knobs.vote_ignores_term) can_vote = true;
  const bool up_to_date = knobs.vote_ignores_log || log_.IsUpToDate(m.index, m.log_term);
  Message r = MakeMessage(pre ? MessageType::kPreVoteResponse : MessageType::kVoteResponse, m.from);
  if (can_vote && up_to_date) {
    // The response carries the request's term so the (pre-)candidate counts it.
    r.term = m.term;
    // (Under vote_ignores_term a second grant in the term is sent but not recorded.)
    if (!pre && m.term == term_ && (vote_ == kNoNode || vote_ == m.from)) {
      election_elapsed_ = 0;
      vote_ = m.from;
    }
  } else {
    r.term = term_;
    r.reject = true;
  }
  Send(std::move(r));
}

void RaftNode::HandleVoteResponse(const Message& m) {
  if (m.type == MessageType::kPreVoteResponse) {
    if (role_ != Role::kPreCandidate) return;
    // Granted responses carry term_+1; rejections at our own term (higher ones made us step down).
    if (m.reject ? m.term != term_ : m.term != term_ + 1) return;
  } else {
    if (role_ != Role::kCandidate || m.term != term_) return;
  }
  if (!IsVoter(m.from)) return;
  votes_.try_emplace(m.from, !m.reject);  // the first answer from each voter counts
  switch (quorum::TallyVotes(voters_, votes_)) {
    case quorum::VoteResult::kWon:
      if (role_ == Role::kPreCandidate) {
        CampaignVote(/*transfer=*/false);
      } else {
        BecomeLeader();
      }
      break;
    case quorum::VoteResult::kLost:
      BecomeFollower(term_, kNoNode);
      break;
    case quorum::VoteResult::kPending:
      break;
  }
}

bool RaftNode::QuorumActive() const {
  std::map<NodeId, bool> active;
  for (NodeId v : voters_) {
    auto it = progress_.find(v);
    if (v == config_.id || (it != progress_.end() && it->second.recent_active)) active[v] = true;
  }
  return quorum::TallyVotes(voters_, active) == quorum::VoteResult::kWon;
}

}  // namespace skiff::raft
