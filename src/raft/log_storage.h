// LogStorage: the read side of a Raft group's durable log, as the Raft core sees it.
//
// The core never writes storage. It hands the host, through Ready, the entries, hard state and
// snapshot to persist; the host writes them (for Skiff: the RocksDB partition log, with group
// commit) and only then calls Node::Advance. From then on this interface must return them.
//
// Index space: entries (FirstIndex()-1, LastIndex()] are stored. FirstIndex()-1 is the index of
// the last compacted entry (or of the snapshot), whose term TermAt must still answer.
// An empty log has FirstIndex() == 1 and LastIndex() == 0, and TermAt(0) == 0.
//
// Thread-safety: the core calls it from the single thread that drives the Node. Implementations
// shared with other threads must synchronise internally.
#pragma once

#include <cstdint>
#include <vector>

#include "common/status.h"
#include "raft/types.h"

namespace skiff::raft {

struct InitialState {
  HardState hard_state;
  ConfState conf_state;  // membership as of the last applied configuration change or snapshot
};

class LogStorage {
 public:
  virtual ~LogStorage() = default;

  // Called once when the Node is created.
  virtual Result<InitialState> GetInitialState() const = 0;

  // Entries [lo, hi), FirstIndex() <= lo <= hi <= LastIndex()+1. Returns at least one entry when
  // lo < hi even if it alone exceeds max_bytes; otherwise stops before the total would exceed it.
  // Errors: kOutOfRange if lo < FirstIndex() (compacted), kIoError/kCorruption from the device.
  virtual Result<std::vector<Entry>> Entries(Index lo, Index hi, uint64_t max_bytes) const = 0;

  // Term of entry i, for FirstIndex()-1 <= i <= LastIndex(). kOutOfRange outside that.
  virtual Result<Term> TermAt(Index i) const = 0;

  virtual Index FirstIndex() const = 0;
  virtual Index LastIndex() const = 0;

  // The most recent snapshot (empty() if none). The core sends it to followers that are behind
  // the compacted prefix. kUnavailable means "being produced, ask again later".
  virtual Result<Snapshot> GetSnapshot() const = 0;
};

}  // namespace skiff::raft
