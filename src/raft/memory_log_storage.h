// MemoryLogStorage: a LogStorage held in memory, with the write operations a host performs.
//
// Used by unit tests, the deterministic simulator and benchmarks; it is also the reference
// behaviour the RocksDB partition log is tested against. Not thread-safe.
#pragma once

#include <vector>

#include "raft/log_storage.h"

namespace skiff::raft {

class MemoryLogStorage : public LogStorage {
 public:
  MemoryLogStorage();

  Result<InitialState> GetInitialState() const override;
  Result<std::vector<Entry>> Entries(Index lo, Index hi, uint64_t max_bytes) const override;
  Result<Term> TermAt(Index i) const override;
  Index FirstIndex() const override;
  Index LastIndex() const override;
  Result<Snapshot> GetSnapshot() const override;

  // Appends entries, first discarding any stored suffix from entries.front().index on.
  // Entries must be contiguous and entries.front().index <= LastIndex()+1. Entries at or below
  // the compacted prefix are skipped.
  Status Append(const std::vector<Entry>& entries);
  void SetHardState(const HardState& hs) { hard_state_ = hs; }
  void SetConfState(const ConfState& cs) { conf_state_ = cs; }
  const HardState& hard_state() const { return hard_state_; }

  // Replaces the whole log with the snapshot (the log restarts after snapshot.meta.index).
  // kOutOfRange if the snapshot is older than the current one.
  Status ApplySnapshot(const Snapshot& snapshot);

  // Records a snapshot of the state machine at `index` (<= LastIndex()), keeping the log.
  Status CreateSnapshot(Index index, const ConfState& conf, Bytes data);

  // Discards entries up to and including `index`. Idempotent at or below the compacted prefix;
  // kOutOfRange beyond LastIndex(); kFailedPrecondition beyond the current snapshot (a prefix
  // no snapshot covers could never be sent to a follower behind it).
  Status Compact(Index index);

 private:
  // entries_[0] is a dummy holding the index/term of the compacted prefix.
  std::vector<Entry> entries_;
  HardState hard_state_;
  ConfState conf_state_;
  Snapshot snapshot_;
};

}  // namespace skiff::raft
