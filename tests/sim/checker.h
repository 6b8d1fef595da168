// Checker: the Raft safety invariants, checked after every simulated event.
//
// The cluster reports what it observes through the On* hooks (in the order the host performs
// them); the checker keeps run-wide history and records the first violation it sees. It never
// reads a Node's private state: only what a host can see (Ready contents, NodeStatus, storage).
//
// Invariants (Raft paper figure 3, plus the host contract in raft/node.h):
//   election safety      at most one leader per term, over the whole run
//   log matching         an (index, term) pair identifies one entry and one predecessor term,
//                        and terms never decrease along a log; by induction two logs holding
//                        the same (index, term) agree on every earlier entry
//   leader completeness  a new leader of term T holds every entry applied anywhere before it
//                        won that is known to have been committed in a term < T (a leader of
//                        a lower term may legitimately win late, from delayed vote responses)
//   state machine safety every replica applies the same entry at each index, contiguously, and
//                        installs snapshots whose image equals what replicas applied
//   no duplicate apply   a proposal's payload is applied at one index only
//   monotonicity         per node, term and commit never decrease (reset across a crash, where
//                        commit may fall back to its durable value); commit <= last index;
//                        applied <= commit
//   linearizable reads   a ReadState's index is >= every commit index known anywhere when the
//                        read was requested
//   durability           everything applied anywhere is never changed (end-of-run check through
//                        CheckProposalsResolved and the applied chain hashes)
//
// Thread-safety: none. Memory grows with the number of entries in the run, which the step
// count bounds.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "raft/log_storage.h"
#include "raft/node.h"
#include "raft/types.h"
#include "sim_storage.h"

namespace skiff::sim {

class Checker {
 public:
  bool failed() const { return !failure_.empty(); }
  const std::string& failure() const { return failure_; }
  // Records a violation; only the first one is kept (later ones are usually consequences).
  void Fail(const std::string& what);

  // rd.entries were just persisted to `log` (after rd.snapshot, if any).
  void OnPersistEntries(raft::NodeId node, const raft::LogStorage& log,
                        const std::vector<raft::Entry>& entries);
  // A snapshot from the leader was installed; `sm` is its decoded image. An empty image is the
  // library's bootstrap snapshot: it starts the applied history instead of joining it.
  void OnSnapshotInstalled(raft::NodeId node, const raft::SnapshotMeta& meta,
                           const SimStateMachine& sm, bool empty_image);
  // `e` was applied; `sm` is the state machine after it; `node_term` is the applying node's
  // current term, an upper bound on the term in which `e` was committed (the node learned of
  // the commit from a leader of that term or later).
  void OnApply(raft::NodeId node, const raft::Entry& e, const SimStateMachine& sm,
               raft::Term node_term);
  // The node reported role leader (soft state) in term `term`; `log` holds its whole log.
  void OnBecameLeader(raft::NodeId node, raft::Term term, const raft::LogStorage& log);
  // Called after every simulation step for every running node.
  void OnStatus(const raft::NodeStatus& status);
  // The node lost its volatile state (crash or shutdown); baselines restart from what the
  // restarted node reports.
  void OnNodeStopped(raft::NodeId node);

  void OnReadRequested(uint64_t context, raft::Index commit_floor);
  void OnReadState(raft::NodeId node, const raft::ReadState& rs);

  // A leader accepted a proposal at (index, term).
  void OnProposalAccepted(raft::Index index, raft::Term term, const raft::Entry& entry);
  // End of run, after convergence: every accepted proposal was either applied as proposed or
  // superseded (another entry was applied at its index). Unresolved ones are a liveness failure.
  void CheckProposalsResolved();
  raft::Index max_proposal_index() const { return max_proposal_index_; }

  raft::Index max_applied_index() const { return applied_.empty() ? 0 : applied_.size() - 1; }
  // Chain hash of the applied history through `index` (which must have been applied).
  bool AppliedChainAt(raft::Index index, uint64_t* chain) const;
  size_t leaders_elected() const { return leader_of_term_.size(); }
  raft::Term max_term() const { return max_term_; }
  uint64_t reads_checked() const { return reads_checked_; }
  uint64_t proposals_accepted() const { return proposals_.size(); }
  uint64_t proposals_committed() const { return proposals_committed_; }
  uint64_t proposals_superseded() const { return proposals_superseded_; }

 private:
  struct LogRecord {
    uint64_t digest;
    raft::Term prev_term;  // kUnknownTerm if never observed
    raft::NodeId first_node;
  };
  struct AppliedRecord {
    bool present = false;
    raft::Term term = 0;
    uint64_t digest = 0;
    uint64_t chain = 0;
    raft::NodeId first_node = raft::kNoNode;
    raft::Term commit_term_bound = 0;  // min over appliers of their term: >= the commit term
  };
  struct NodeBaseline {
    bool valid = false;
    raft::Term term = 0;
    raft::Index commit = 0;
  };
  struct Proposal {
    raft::Index index;
    raft::Term term;
    uint64_t digest;
  };
  static constexpr raft::Term kUnknownTerm = ~raft::Term{0};

  void RecordLogEntry(raft::NodeId node, raft::Index index, raft::Term term, uint64_t digest,
                      raft::Term prev_term);

  std::string failure_;
  std::map<std::pair<raft::Index, raft::Term>, LogRecord> log_records_;
  std::vector<AppliedRecord> applied_;                                  // by index; [0] unused
  std::unordered_map<std::string, raft::Index> applied_payload_index_;  // lookups only
  std::map<raft::Term, raft::NodeId> leader_of_term_;
  std::map<raft::NodeId, NodeBaseline> baselines_;
  std::map<uint64_t, raft::Index> read_floor_;
  std::vector<Proposal> proposals_;
  raft::Index max_proposal_index_ = 0;
  raft::Term max_term_ = 0;
  uint64_t reads_checked_ = 0;
  uint64_t proposals_committed_ = 0;
  uint64_t proposals_superseded_ = 0;
};

}  // namespace skiff::sim
