// SimStorage: one simulated node's disk, which loses writes that were never synced.
//
// Two MemoryLogStorage images are kept:
//   visible  what the running raft::Node reads (Config.storage points here): every write the
//            host made, synced or not, like a page cache;
//   durable  what survives a crash: the writes that were synced.
// Writes since the last sync sit in an ordered queue of *units*. A unit is everything one Ready
// asked to persist (snapshot, entries, hard state: atomic per the contract in raft/node.h), or a
// checkpoint of the state machine taken after applying. Sync moves the whole queue to durable.
// Crash keeps a random prefix of the queue (the OS may have written some of it back, in order),
// drops the rest, and resets visible to durable. This is the FoundationDB AsyncFileNonDurable
// idea at the granularity at which the host writes.
//
// The state machine (SimStateMachine) is persisted with the log: a checkpoint unit records the
// applied index, the chain hash of applied entries and the membership, which is what a real
// host persists "with that applied index" (node.h, ApplyConfChange). After a restart the node is
// created with Config.applied = durable_state_machine().applied.
//
// Thread-safety: none.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "raft/memory_log_storage.h"
#include "raft/types.h"
#include "sim_random.h"

namespace skiff::sim {

// The replicated state machine of the simulation: it "applies" an entry by folding it into a
// running hash, so two replicas agree on their whole applied history iff their hashes agree.
struct SimStateMachine {
  raft::Index applied = 0;
  raft::Term applied_term = 0;  // term of the entry at `applied` (0 if unknown: initial state)
  uint64_t chain_hash = 0;      // hash of every applied entry, in order
  raft::ConfState conf;         // membership as of `applied`

  // Folds entry e (which must be at applied+1) into the state.
  void Apply(const raft::Entry& e);
  static uint64_t EntryDigest(const raft::Entry& e);

  // The state a snapshot with an empty image stands for: the library's bootstrap snapshot
  // (raft_node.h: the initial membership is installed as a snapshot at index 1), which carries
  // no application data. Its chain hash is a function of the snapshot point only.
  static SimStateMachine FromEmptySnapshot(const raft::SnapshotMeta& meta);

  // The snapshot image: Encode/Decode round-trip exactly. Decode returns nullopt on bad input.
  Bytes Encode() const;
  static std::optional<SimStateMachine> Decode(std::string_view data);
  friend bool operator==(const SimStateMachine&, const SimStateMachine&) = default;
};

class SimStorage {
 public:
  SimStorage() = default;

  const raft::MemoryLogStorage* visible() const { return &visible_; }
  const raft::MemoryLogStorage& durable() const { return durable_; }
  const SimStateMachine& durable_state_machine() const { return durable_sm_; }
  size_t unsynced_units() const { return pending_.size(); }

  // Persists one Ready's writes as an atomic unit (not yet synced). `sm_after_snapshot` is the
  // state machine decoded from rd.snapshot when there is one. Returns the first error from
  // MemoryLogStorage, which the simulator reports as a failure.
  Status PersistReady(const std::optional<raft::Snapshot>& snapshot,
                      const SimStateMachine* sm_after_snapshot,
                      const std::vector<raft::Entry>& entries,
                      const std::optional<raft::HardState>& hard_state);
  // Records the state machine after applying (membership included).
  void Checkpoint(const SimStateMachine& sm);
  // Makes every queued unit durable.
  Status Sync();
  // Loses a random suffix of the unsynced units and resets the visible image to durable.
  Status Crash(SimRandom* random);
  // The worst case of Crash: loses every unsynced unit (scripted scenarios need it for sure).
  Status CrashLosingAllUnsynced();

  // Host-side log compaction: syncs, records a snapshot of `sm` at sm.applied in both images
  // and discards entries up to compact_index (<= sm.applied).
  Status SnapshotAndCompact(const SimStateMachine& sm, raft::Index compact_index);

  // Installs the initial membership of a bootstrapping member, durably.
  void SetInitialConf(const raft::ConfState& conf);

 private:
  struct Unit {
    bool is_checkpoint = false;
    std::optional<raft::Snapshot> snapshot;
    std::vector<raft::Entry> entries;
    std::optional<raft::HardState> hard_state;
    SimStateMachine sm;  // checkpoint, or the state installed with `snapshot`
  };
  static Status ApplyUnit(const Unit& unit, raft::MemoryLogStorage* log, SimStateMachine* sm);
  // Makes the first `keep` unsynced units durable, drops the rest, resets visible to durable.
  Status CrashKeeping(size_t keep);

  raft::MemoryLogStorage visible_;
  raft::MemoryLogStorage durable_;
  SimStateMachine visible_sm_;  // only to keep ApplyUnit symmetric; the live SM is the node's
  SimStateMachine durable_sm_;
  std::vector<Unit> pending_;
};

}  // namespace skiff::sim
