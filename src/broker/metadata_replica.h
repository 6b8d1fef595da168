// MetadataReplica: this broker's replica of the metadata group (group 0) — the state machine
// that applies MetadataCommands, the leader's propose path, and an immutable view of the
// latest state for every other thread.
//
// Commands are proposed only by the metadata leader, and only once it has applied the first
// entry of its own term, so the state it validates against (and places replicas on) includes
// every earlier command. Each proposer waits for its command's entry to apply; the outcome of
// Apply (e.g. ALREADY_EXISTS for a topic created concurrently) is what its client sees.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "broker/metadata_state.h"
#include "broker/raft_host.h"
#include "skiff/internal/metadata.pb.h"

namespace skiff::broker {

using MetadataView = std::shared_ptr<const MetadataState>;
using MetadataDone = std::function<void(Result<internal::MetadataResult>)>;

class MetadataReplica {
 public:
  // on_change runs on the worker thread after each applied batch of commands, with the new view.
  explicit MetadataReplica(BrokerId self, std::function<void(MetadataView)> on_change);

  // Worker thread (RaftHost::Run on kMetadataGroup). Fills in replica placement for a
  // CreateTopic without an explicit assignment, proposes, and calls done once the command is
  // applied (or with kAborted when this broker does not lead the metadata group, kUnavailable
  // while a new leader catches up).
  void Propose(GroupHandle* handle, internal::MetadataCommand command, MetadataDone done);

  // Any thread.
  MetadataView view() const;
  int64_t leader() const { return leader_.load(); }
  uint64_t term() const { return term_.load(); }

  std::unique_ptr<GroupStateMachine> MakeStateMachine(std::shared_ptr<MetadataReplica> self);

  // Worker thread. Once `min_entries` entries have been applied since the latest snapshot,
  // snapshots the state at the applied index and drops the log through `keep_entries` before
  // it (a lagging follower within that tail catches up from the log, one further behind
  // installs the snapshot). Keeps the metadata log, and a restart's replay, bounded. Returns
  // whether it took a snapshot.
  Result<bool> MaybeSnapshot(GroupHandle* handle, uint64_t min_entries, uint64_t keep_entries);

  // GroupStateMachine callbacks (worker thread).
  Status Restore(const raft::Snapshot& snapshot);
  void Apply(const raft::Entry& entry);
  void OnAppliedBatch();
  void OnPersisted(raft::Index index, raft::Term term);
  void OnSoftState(const raft::SoftState& soft, raft::Term term);
  // While this replica cannot write it neither leads usefully nor knows who does.
  void OnStorageStatus(const Status& status);
  void OnStop();

 private:
  struct Waiter {
    raft::Term term = 0;
    MetadataDone done;
  };
  void Publish();

  const BrokerId self_;
  std::function<void(MetadataView)> on_change_;

  // Worker thread only.
  MetadataState state_;
  std::multimap<raft::Index, Waiter> waiters_;
  // Outcomes of this batch's commands, delivered once the batch's view is published.
  std::vector<std::pair<MetadataDone, Result<internal::MetadataResult>>> completed_;
  bool leading_ = false;
  bool leader_ready_ = false;
  raft::Term leading_term_ = 0;
  bool dirty_ = false;
  raft::Index applied_index_ = 0;   // state_ reflects the log through here
  raft::Index snapshot_index_ = 0;  // of the latest snapshot in the log store

  mutable std::mutex view_mu_;
  MetadataView view_;  // guarded by view_mu_
  std::atomic<int64_t> leader_{-1};
  std::atomic<uint64_t> term_{0};
};

}  // namespace skiff::broker
