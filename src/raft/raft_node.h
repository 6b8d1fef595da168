// RaftNode: the implementation of Node (see node.h for the contract). Internal header.
//
// The implementation is split by protocol step:
//   node.cc        creation/restore, role transitions, Tick, Step dispatch, Ready/Advance, status
//   election.cc    campaigns (pre-vote and vote), vote requests and tallies, leader lease
//   replication.cc leader appends/heartbeats/snapshots, follower handling, the commit rule
//   membership.cc  conf changes, bootstrap, leadership transfer
//   read_index.cc  ReadIndex and quiescence
//
// Design decisions worth knowing:
//   * The leader counts its own entries towards the commit quorum only once Advance reports them
//     durable (self progress follows RaftLog::StableLastIndex()).
//   * Proposals only append to the log; appends to followers are sent in one batch when the host
//     next calls GetReady (so N proposals between two Readys become one kAppend per follower).
//   * A leader that applies a conf change removing (or demoting) itself steps down at once.
//   * Bootstrap installs the initial membership as a snapshot at index 1, term 1, so that nodes
//     added later learn it the same way (from a snapshot) as any other state.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "raft/node.h"
#include "raft/progress.h"
#include "raft/raft_log.h"
#include "raft/random.h"

namespace skiff::raft {

// kVote context value marking an election forced by leadership transfer (kTimeoutNow): voters
// grant it even while they believe a leader is alive.
inline constexpr uint64_t kTransferContext = 1;

inline Message MakeMessage(MessageType type, NodeId to) {
  Message m;
  m.type = type;
  m.to = to;
  return m;
}

class RaftNode final : public Node {
 public:
  explicit RaftNode(const Config& config);
  Status Init();

  Status Bootstrap(const ConfState& conf) override;
  void Tick() override;
  Status Step(const Message& message) override;
  Result<Index> Propose(Bytes data) override;
  Result<Index> ProposeConfChange(const ConfChange& cc) override;
  ConfState ApplyConfChange(const ConfChange& cc) override;
  ConfState ApplyConfChange(const ConfChange& cc, Index entry_index) override;
  void Campaign() override;
  Status TransferLeadership(NodeId target) override;
  Status ReadIndex(uint64_t context) override;
  void Wake() override;
  void ReportUnreachable(NodeId peer) override;
  void ReportSnapshot(NodeId peer, bool succeeded) override;
  bool HasReady() const override;
  Ready GetReady() override;
  void Advance(const Ready& ready) override;
  void OnDurable(Index index, Term term) override;
  NodeStatus GetStatus() const override;
  bool IsLeader() const override { return role_ == Role::kLeader; }
  NodeId Leader() const override { return lead_; }
  bool Quiesced() const override { return quiesced_; }

 private:
  struct ReadRequest {
    NodeId from = kNoNode;  // who asked (self for local requests)
    uint64_t context = 0;
    Index index = 0;     // commit index when the request was registered
    uint64_t round = 0;  // heartbeat round that must be acknowledged by a quorum
  };

  // node.cc
  void Reset(Term term);
  void BecomeFollower(Term term, NodeId lead);
  void BecomePreCandidate();
  void BecomeCandidate();
  void BecomeLeader();
  void ResetRandomizedElectionTimeout();
  void Send(Message m);
  bool IsVoter(NodeId id) const;
  bool Promotable() const { return IsVoter(config_.id); }
  void TickElection();
  void TickHeartbeat();
  void StepLeader(const Message& m);
  void StepCandidate(const Message& m);
  void HeardFromLeader(NodeId leader);
  void StepFollower(const Message& m);
  Status Validate(const Message& m) const;
  // Absolute and delta invariants, checked after every input (always on; cheap).
  void CheckInvariants();
  HardState CurrentHardState() const { return {term_, vote_, log_.committed()}; }
  SoftState CurrentSoftState() const { return {lead_, role_}; }

  // election.cc
  void Hup(bool transfer);
  void CampaignPreVote();
  void CampaignVote(bool transfer);
  bool InLease() const;
  void HandleVoteRequest(const Message& m);
  void HandleVoteResponse(const Message& m);
  bool QuorumActive() const;
  bool HasUnappliedConfChange();

  // replication.cc
  bool SendAppend(NodeId to, bool send_if_empty);
  void SendAppendsWhilePossible(NodeId to);
  bool SendSnapshot(NodeId to, Progress& pr);
  void BroadcastAppend(bool send_if_empty);
  void SendHeartbeat(NodeId to, uint64_t context, bool quiesce);
  void BroadcastHeartbeat(uint64_t context, bool quiesce);
  void FlushBroadcast();
  // Followers behind on the commit index get an empty append (Config::defer_commit_broadcast).
  void SendDeferredCommits();
  Index AppendLocal(EntryType type, Bytes data);
  bool MaybeCommit();
  // Called after MaybeCommit advanced the commit index: schedules the empty appends that tell
  // followers, unless Config::defer_commit_broadcast leaves that to the next tick.
  void NoteCommitAdvanced();
  void OnCommitAdvanced();
  void HandleAppend(const Message& m);
  void HandleHeartbeat(const Message& m);
  void HandleSnapshot(const Message& m);
  void HandleAppendResponse(const Message& m, Progress& pr);
  void HandleHeartbeatResponse(const Message& m, Progress& pr);

  // membership.cc
  void SetConf(const ConfState& conf);
  ConfState CurrentConf() const { return {voters_, learners_}; }
  Status ValidateConfChange(const ConfChange& cc) const;
  void AbortTransfer() {
    lead_transferee_ = kNoNode;
    transfer_elapsed_ = 0;
  }
  void SendTimeoutNow(NodeId to);

  // read_index.cc
  bool CommittedInCurrentTerm() const;
  void HandleReadRequest(NodeId from, uint64_t context);
  void RespondRead(NodeId to, uint64_t context, Index index);
  void RejectRead(NodeId to, uint64_t context);
  // A leader stepping down answers every pending and deferred remote read with a rejection.
  void RejectPendingReads();
  void ProcessPendingReads();
  void Unquiesce();
  bool CanQuiesce() const;
  void MaybeQuiesce();

  Config config_;
  RaftLog log_;
  SplitMix64 rng_;

  Term term_ = 0;
  NodeId vote_ = kNoNode;
  NodeId lead_ = kNoNode;
  Role role_ = Role::kFollower;

  std::vector<NodeId> voters_;           // sorted
  std::vector<NodeId> learners_;         // sorted
  std::map<NodeId, Progress> progress_;  // every member (self included) -> progress
  std::map<NodeId, bool> votes_;

  int election_elapsed_ = 0;
  int heartbeat_elapsed_ = 0;
  int randomized_election_timeout_ = 0;

  NodeId lead_transferee_ = kNoNode;
  int transfer_elapsed_ = 0;  // leader ticks since the current transfer started
  Index pending_conf_index_ = 0;
  // Upper bound on the index of the last kConfChange entry in the log (0 = none after applied
  // is possible). Raised on every append; after a restart it is the last index (unknown tail);
  // lowered by HasUnappliedConfChange once a scan proves there is none.
  Index last_conf_index_ = 0;
  // Index of the last snapshot this node restored from a leader (ApplyConfChange ignores
  // changes at or below it).
  Index snapshot_restored_index_ = 0;
  std::deque<std::pair<Index, uint64_t>> uncommitted_;  // (index, bytes) of own proposals
  uint64_t uncommitted_bytes_ = 0;
  bool pending_broadcast_ = false;         // new entries to send to followers at GetReady
  bool pending_commit_broadcast_ = false;  // commit advanced: tell followers even if no entries

  // ReadIndex (leader).
  std::deque<ReadRequest> pending_reads_;
  std::vector<std::pair<NodeId, uint64_t>> deferred_reads_;  // until a current-term commit
  uint64_t read_round_ = 0;
  std::map<NodeId, uint64_t> acked_round_;

  // Quiescence.
  bool quiesced_ = false;
  int idle_ticks_ = 0;
  // Follower woken from quiescence that has not heard from its leader since: not in lease.
  bool lease_suspended_ = false;

  // Last values seen by CheckInvariants.
  Term checked_term_ = 0;
  Index checked_commit_ = 0;

  // Output.
  std::vector<Message> msgs_;
  std::vector<ReadState> read_states_;
  SoftState prev_soft_;
  HardState prev_hard_;
};

}  // namespace skiff::raft
