// Cluster: real raft::Node objects driven by a simulated host, network, disk and clock.
//
// Each node is driven exactly by the host loop documented in raft/node.h: after every input
// (tick, message, request) the cluster drains the node's Ready batches, and for each one
//   1. persists rd.snapshot, rd.entries, rd.hard_state to the node's SimStorage as one unit,
//      and syncs when rd.must_sync (unsynced units may be lost by a later crash);
//   2. sends rd.messages into the SimNetwork;
//   3. applies rd.committed_entries to the node's SimStateMachine (ApplyConfChange for
//      membership entries), checkpoints it, and checks rd.read_states;
//   4. calls Advance(rd).
// Every observation is reported to the Checker as it happens.
//
// Time: a global tick counter. Each running node has a rate in eighths of a tick (clock skew):
// on each global tick it receives rate/8 Ticks on average. Messages due are delivered at the
// end of each global tick.
//
// Node lifecycle (by id, 1..max_node_id):
//   kNeverStarted -> kUp            an initial member bootstraps; a new member is started when a
//                                   membership change adding it is applied anywhere
//   kUp -> kCrashed                 Crash: the Node object and unsynced writes are lost
//   kCrashed -> kUp                 Restart: Node::Create from durable storage, applied =
//                                   the durable state machine's applied index
//   kUp -> kShutDown                the node applied its own removal (clean stop, synced)
//   kShutDown -> kUp                re-added: started again from its old storage
//
// Ownership: the cluster owns nodes, storage and network; the random source and checker are
// borrowed and must outlive it. Thread-safety: none.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "checker.h"
#include "raft/node.h"
#include "sim_network.h"
#include "sim_random.h"
#include "sim_storage.h"

namespace skiff::sim {

enum class NodeState : uint8_t { kNeverStarted, kUp, kCrashed, kShutDown };

struct ClusterConfig {
  int initial_nodes = 3;         // ids 1..initial_nodes bootstrap the group
  raft::NodeId max_node_id = 5;  // ids above initial_nodes may be added later
  raft::Config raft;             // template: id, storage, applied, seed are set here
  uint64_t seed = 1;
  bool lying_disk = false;  // checker self-test: ignore Ready.must_sync (crashes lose acked state)
  // Sometimes crash a leader right after it sent appends, before its own write (the
  // randomized runs; scripted scenarios keep their nodes up unless they crash them).
  bool crash_after_early_send = false;
  bool async_acks_before_sync = false;           // checker self-test: see SimOptions
  bool async_hold_only_writing_readies = false;  // checker self-test: see SimOptions
  // Async writes: Tick never syncs on its own; the script decides when each node's disk syncs
  // (SyncAsyncWrites). Scripted scenarios only; the randomized runs sync at random.
  bool scripted_async_syncs = false;
};

// What a crash does with the writes that were never synced.
enum class CrashLoss : uint8_t {
  kRandomSuffix,  // a random prefix survives (the OS wrote some of it back)
  kAllUnsynced,   // the worst case, for scripted scenarios
};

struct SimNode {
  raft::NodeId id = raft::kNoNode;
  NodeState state = NodeState::kNeverStarted;
  bool initial_member = false;
  std::unique_ptr<raft::Node> node;  // set iff state == kUp
  SimStorage storage;
  SimStateMachine sm;         // volatile; restored from storage on restart
  uint64_t rate_eighths = 8;  // ticks per global tick, in eighths
  uint64_t tick_credit = 0;
  uint64_t incarnation = 0;
  bool stop_after_ready = false;  // applied its own removal
  // raft.async_storage_writes: Readies are Advanced once written; their messages and the
  // OnDurable reports of their entries wait here until the storage's next sync.
  std::vector<raft::Message> held;
  std::vector<std::pair<raft::Index, raft::Term>> not_durable;
  bool unsynced = false;  // something was written since the last sync
  // Something that must be durable before messages go (a must_sync write) awaits the next
  // sync: messages wait in `held`. A write nothing needs synced (a commit index) holds nothing.
  bool holding = false;
};

struct ClusterStats {
  uint64_t crashes = 0;
  uint64_t crashes_before_leader_write = 0;  // crashed after sending appends, before its write
  uint64_t restarts = 0;
  uint64_t shutdowns = 0;
  uint64_t snapshots_installed = 0;
  uint64_t snapshots_taken = 0;
  uint64_t conf_changes_applied = 0;
  uint64_t entries_applied = 0;
  uint64_t readies = 0;
  uint64_t unsynced_persists = 0;  // Readies that persisted something without must_sync
  uint64_t async_syncs = 0;        // syncs that released held messages (async writes)
  // Broken host (async_hold_only_writing_readies): messages of write-less Readies it sent while
  // earlier writes were still unsynced. Always 0 for a correct host.
  uint64_t sent_ahead_of_unsynced_writes = 0;
};

class Cluster {
 public:
  Cluster(const ClusterConfig& config, SimRandom* random, Checker* checker);
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Bootstraps the initial members.
  void Start();

  uint64_t now_ticks() const { return now_ticks_; }
  // One global tick: ticks every running node by its rate, then delivers due messages.
  void Tick();
  // Delivers one random in-flight message now, ignoring its delay (reordering).
  void DeliverAnyOne();

  void Crash(raft::NodeId id, CrashLoss loss = CrashLoss::kRandomSuffix);
  void Restart(raft::NodeId id);  // from kCrashed (or kShutDown/kNeverStarted: start)
  // Host-side snapshot of the applied state + log compaction, keeping `keep_entries` entries.
  void SnapshotAndCompact(raft::NodeId id, raft::Index keep_entries);

  // After any direct call into a node (Propose, ReadIndex, ...), drain its Ready.
  void Drain(raft::NodeId id);
  // Starts members that a membership change added while they were not running, and gives
  // transport feedback for messages the network lost. Called after every simulation action.
  void StartAddedMembers();
  // Async writes: syncs the node's storage, then sends its held messages and reports its writes
  // durable, in order. No-op unless the node is up with unsynced writes.
  void SyncAsyncWrites(raft::NodeId id) { SyncAsyncWrites(node(id)); }

  SimNetwork& network() { return network_; }
  SimNode& node(raft::NodeId id);
  const SimNode& node(raft::NodeId id) const;
  raft::NodeId max_node_id() const { return config_.max_node_id; }
  bool IsUp(raft::NodeId id) const { return node(id).state == NodeState::kUp; }
  // The running leader with the highest term, or kNoNode.
  raft::NodeId Leader() const;
  // Highest commit index known to any running node.
  raft::Index MaxKnownCommit() const;
  // Checks per-node invariants of every running node (called after each simulation step).
  void CheckAll();
  const ClusterStats& stats() const { return stats_; }
  // One line per node: state, role, term, commit, last, applied, quiesced, leader's matches.
  std::string Describe() const;
  const ClusterConfig& config() const { return config_; }
  raft::Config RaftConfigFor(SimNode& n) const;

  // Optional trace sink (verbose replays).
  std::function<void(const std::string&)> trace;

 private:
  void CreateNode(SimNode& n, bool bootstrap);
  void HandleReady(SimNode& n);
  // Async writes: syncs n's storage, then sends its held messages and reports its writes
  // durable, in order.
  void SyncAsyncWrites(SimNode& n);
  void Deliver(const raft::Message& m);
  void Undeliverable(const raft::Message& m);
  // Reports snapshots the network lost to their senders.
  void ReportLost();
  void OnConfChangeApplied(SimNode& n, const raft::ConfChange& cc);
  void Trace(const std::string& line) {
    if (trace) trace(line);
  }

  ClusterConfig config_;
  SimRandom* random_;
  Checker* checker_;
  SimNetwork network_;
  std::vector<SimNode> nodes_;  // index = id; [0] unused
  raft::ConfState initial_conf_;
  std::vector<raft::NodeId> to_start_;
  uint64_t now_ticks_ = 0;
  ClusterStats stats_;
  std::string last_ready_summary_;
};

}  // namespace skiff::sim
