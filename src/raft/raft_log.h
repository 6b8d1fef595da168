// RaftLog: the node's view of its log = what the host has persisted (LogStorage, read-only here)
// plus an in-memory unstable tail (entries and possibly a snapshot) not yet persisted.
//
//   storage:  [snapshot/compacted | FirstIndex() .......... stable last]
//   unstable:                                  [offset ......... last]  (may overlap/replace a
//                                                                        stored suffix)
//
// The unstable tail is handed to the host via Ready and dropped once Advance says it is
// durable (StableTo). Also tracks the commit index and the applied index:
//   applied <= applying <= committed <= LastIndex()
// where `applying` is the highest index handed to the host for application but not yet
// acknowledged by Advance.
//
// Storage read errors other than kOutOfRange (compaction) are fatal: a core that cannot read
// its own durable log cannot make safe decisions.
#pragma once

#include <optional>
#include <vector>

#include "common/status.h"
#include "raft/log_storage.h"
#include "raft/types.h"

namespace skiff::raft {

class RaftLog {
 public:
  explicit RaftLog(const LogStorage* storage);

  // Initialises commit/applied after a restart. The commit index is at least the snapshot.
  void Restore(Index committed, Index applied);

  Index FirstIndex() const;
  Index LastIndex() const;
  Term LastTerm() const;
  // Term of entry i, or nullopt if i is compacted or beyond the last index.
  std::optional<Term> TermAt(Index i) const;
  bool MatchTerm(Index i, Term t) const;
  // Whether a log ending at (last_index, last_term) is at least as up to date as ours.
  bool IsUpToDate(Index last_index, Term last_term) const;

  // Follower: appends `entries` after (prev_index, prev_term) if that matches, truncating any
  // conflicting suffix; returns the index of the last entry the leader vouched for.
  std::optional<Index> MaybeAppend(Index prev_index, Term prev_term,
                                   const std::vector<Entry>& entries);
  // Testing only (UnsafeTestingKnobs): a broken Raft may ask a follower to overwrite committed
  // entries. Normally that is a fatal assertion; with this set the append is refused instead, so
  // that the simulator's checker (not an abort) reports the divergence.
  void set_tolerate_divergence(bool on) { tolerate_divergence_ = on; }
  // Appends entries (which may replace an uncommitted suffix). Returns the new last index.
  Index Append(const std::vector<Entry>& entries);
  // First index in `entries` whose term differs from ours, or 0 if all match / are new.
  Index FindConflict(const std::vector<Entry>& entries) const;
  // Largest j <= index whose term is <= term (used for fast back-tracking), bounded below by
  // the compacted prefix.
  Index FindConflictByTerm(Index index, Term term) const;

  Index committed() const { return committed_; }
  Index applied() const { return applied_; }
  Index applying() const { return applying_; }
  void CommitTo(Index index);
  bool MaybeCommit(Index index, Term term);

  // Entries [lo, hi), at least one if lo < hi, stopping before max_bytes is exceeded.
  // kOutOfRange if lo is compacted.
  Result<std::vector<Entry>> Slice(Index lo, Index hi, uint64_t max_bytes) const;

  // Committed entries not yet handed out for application (none while a snapshot is pending).
  bool HasNextCommittedEntries() const;
  std::vector<Entry> NextCommittedEntries(uint64_t max_bytes) const;
  void AcceptApplying(Index index);  // entries through index were handed to the host
  void AppliedTo(Index index);       // ...and the host says they are applied

  // Unstable state, handed to the host through Ready.
  const std::vector<Entry>& UnstableEntries() const { return unstable_entries_; }
  const std::optional<Snapshot>& UnstableSnapshot() const { return unstable_snapshot_; }
  // Index of the last entry known durable in storage and consistent with this log.
  Index StableLastIndex() const;
  void StableTo(Index index, Term term);
  void StableSnapTo(Index index);

  // Replaces the log with `snapshot` (follower install). Commit jumps to the snapshot index.
  void RestoreSnapshot(const Snapshot& snapshot);
  // The most recent snapshot: the unstable one if any, else storage's.
  Result<Snapshot> GetSnapshot() const;

 private:
  std::optional<Term> UnstableTerm(Index i) const;

  const LogStorage* storage_;
  std::optional<Snapshot> unstable_snapshot_;
  std::vector<Entry> unstable_entries_;
  Index unstable_offset_;  // index of unstable_entries_[0] (or where it would go)
  Index committed_ = 0;
  Index applying_ = 0;
  Index applied_ = 0;
  bool tolerate_divergence_ = false;
};

}  // namespace skiff::raft
