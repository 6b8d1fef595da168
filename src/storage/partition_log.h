// PartitionLog: one Raft group's log as stored in the LogStore, seen two ways:
//   * as raft::LogStorage (entries, terms, first/last index, snapshot) for the Raft core, and
//   * as a partition (offsets): every entry that is a record batch takes record_count offsets,
//     entries with no records (conf changes, no-ops) take none. The offset index maps a
//     partition offset to the raft index of its batch, and a timestamp to the first batch whose
//     max timestamp is >= it (Kafka ListOffsets).
//
// The offset index is sparse: one row per span of consecutive batches of about
// offset_index_interval_bytes, written when the span is full. The batches after the last row
// (the open span) are summarized in memory and rebuilt from the log's entry headers on load.
// A lookup finds the span, then reads the headers of at most that span's entries.
//
// Index space follows raft::LogStorage: entries (FirstIndex()-1, LastIndex()] are stored, and
// TermAt(FirstIndex()-1) answers the term of the compacted prefix (or of the snapshot).
// Offset space: records [LogStartOffset(), LogEndOffset()) are stored.
//
// Writes go through LogStore::Write (group commit); the methods below are conveniences that
// write this group alone. Truncating a suffix (an Append that conflicts) removes its offset
// rows and moves the log end offset back. Compact(i) drops the prefix through i with one
// DeleteRange, advances the log start offset, and requires a snapshot covering i (otherwise a
// lagging follower could never be caught up). Retention (by time or size) only computes the
// cut: the host makes a snapshot covering it, then calls Compact.
//
// Reads use an in-memory cache of first/last index, last term and offsets, refreshed after
// every successful write; they read a consistent RocksDB view and verify every value's CRC
// (a damaged value is kCorruption, never served).
//
// Thread-safety: reads are thread-safe and may run concurrently with the single writer of the
// group (a reader racing a compaction gets kOutOfRange, as for any compacted index).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <vector>

#include "common/ids.h"
#include "raft/log_storage.h"
#include "storage/log_store.h"

namespace rocksdb {
class WriteBatch;
}

namespace skiff::storage {

// Where a partition offset lives.
struct OffsetLocation {
  raft::Index index = 0;  // the raft entry (record batch) holding it
  Offset base_offset;     // offset of that batch's first record
  uint32_t record_count = 0;
  int64_t max_timestamp_ms = -1;
};

struct RetentionPolicy {
  std::optional<int64_t> retention_ms;      // drop batches whose max timestamp is older
  std::optional<uint64_t> retention_bytes;  // keep at most this many payload bytes
};

// What retention would cut. cut_through == 0: nothing to cut.
struct RetentionCut {
  raft::Index cut_through = 0;  // the host snapshots at >= this, then Compact(cut_through)
  Offset new_log_start_offset;
  uint64_t bytes = 0;  // payload bytes freed
};

class PartitionLog : public raft::LogStorage {
 public:
  // raft::LogStorage
  Result<raft::InitialState> GetInitialState() const override;
  Result<std::vector<raft::Entry>> Entries(raft::Index lo, raft::Index hi,
                                           uint64_t max_bytes) const override;
  Result<raft::Term> TermAt(raft::Index i) const override;
  raft::Index FirstIndex() const override;
  raft::Index LastIndex() const override;
  Result<raft::Snapshot> GetSnapshot() const override;

  RaftGroupId group() const { return group_; }
  raft::Term LastTerm() const;
  raft::Index Applied() const;
  raft::HardState hard_state() const;

  // Single-group writes (same semantics as the GroupWrite fields / MemoryLogStorage).
  Status Append(const std::vector<raft::Entry>& entries);
  Status SetHardState(const raft::HardState& hs);
  Status SetConfState(const raft::ConfState& cs);
  Status SetApplied(raft::Index applied);
  // Replaces the whole log with the snapshot; kOutOfRange if older than the current one.
  Status ApplySnapshot(const SnapshotWrite& snapshot);
  // Records a snapshot of the state machine at index (<= LastIndex(), not compacted), keeping
  // the log. kOutOfRange otherwise.
  Status CreateSnapshot(raft::Index index, const raft::ConfState& conf, Bytes data);
  // Drops entries through index. Idempotent below FirstIndex(). kOutOfRange beyond the log;
  // kFailedPrecondition unless a snapshot covers index.
  Status Compact(raft::Index index);

  // Offsets.
  Offset LogStartOffset() const;
  Offset LogEndOffset() const;  // the offset the next record will get
  // The batch holding `offset`; kOutOfRange outside [LogStartOffset(), LogEndOffset()).
  Result<OffsetLocation> FindOffset(Offset offset) const;
  // The first batch whose max timestamp is >= timestamp_ms; kNotFound if none. Scans the
  // offset index (one row per span), then the entries of the first span that qualifies.
  Result<OffsetLocation> FindTimestamp(int64_t timestamp_ms) const;
  // Payload bytes of the stored batches.
  uint64_t SizeBytes() const;

  // The prefix retention would remove: whole batches, never past the commit index.
  Result<RetentionCut> ComputeRetention(const RetentionPolicy& policy, int64_t now_ms) const;

 private:
  friend class LogStore;

  // Everything the readers use, copied and modified while preparing a write.
  struct State {
    LogMeta meta;
    raft::Index last_index = 0;
    raft::Term last_term = 0;
    uint64_t log_end_offset = 0;
    uint64_t size_bytes = 0;
    raft::HardState hard_state;
    raft::ConfState conf_state;
    raft::Index applied = 0;
    StoredSnapshotMeta snapshot;
    // The batches after the last offset row (record_count == 0: none), and the offset of its
    // first record.
    OffsetRow open;
    uint64_t open_base = 0;
  };

  PartitionLog(LogStore* store, RaftGroupId group) : store_(store), group_(group) {}
  Status Load();
  State CopyState() const;
  // Adds gw's rows to batch, advancing `next` from the current state. Reads committed rows
  // (the group has one writer, so they are stable while it prepares).
  Status PrepareWrite(const GroupWrite& gw, rocksdb::WriteBatch* batch, State* next) const;
  Status PrepareAppend(const std::vector<raft::Entry>& entries, rocksdb::WriteBatch* batch,
                       State* next) const;
  void PrepareDropAll(rocksdb::WriteBatch* batch) const;
  void Install(State next);
  Status WriteAlone(const GroupWrite& gw);
  Status CommitBatch(rocksdb::WriteBatch* batch, State next);
  // Removes the stored suffix from index `from` and the offsets its batches took.
  Status PrepareTruncate(raft::Index from, rocksdb::WriteBatch* batch, State* next) const;
  // Offset rows in [from, to) in order; fn returns false to stop.
  Status ScanOffsets(uint64_t from, uint64_t to,
                     const std::function<bool(uint64_t base, const OffsetRow&)>& fn,
                     bool reverse = false) const;
  // The unsealed bodies of the stored entries in [lo, hi), in order (a damaged one as its
  // kCorruption); fn sets *stop to end early. kOutOfRange if one is missing (compacted or
  // truncated meanwhile), except, with from_first_stored, a compacted front.
  Status ForEachEntryBody(
      raft::Index lo, raft::Index hi,
      const std::function<Status(raft::Index, const Result<std::string_view>&, bool* stop)>& fn,
      bool from_first_stored = false) const;
  // The stored entries in [lo, hi) in order, without their payloads: fn(entry with empty data,
  // its base offset and record info, payload bytes) returns false to stop. kOutOfRange if one
  // is missing (compacted or truncated meanwhile).
  Status ScanEntryHeaders(
      raft::Index lo, raft::Index hi,
      const std::function<bool(const StoredEntry&, uint64_t data_bytes)>& fn) const;
  // The span of the record batches stored in [lo, hi) (record_count 0: none) and the offset
  // of its first record.
  Status SummarizeEntries(raft::Index lo, raft::Index hi, OffsetRow* span, uint64_t* base) const;
  // The first batch of a span (whose first record has offset `base`) that matches; with
  // skip_damaged, a damaged entry fails the lookup only if nothing after it matches.
  Result<std::optional<OffsetLocation>> FindInSpan(
      const OffsetRow& span, uint64_t base, const std::function<bool(const StoredEntry&)>& match,
      bool skip_damaged) const;

  LogStore* store_;
  const RaftGroupId group_;
  mutable std::mutex mu_;
  State state_;  // guarded by mu_
  std::atomic<bool> writing_{false};
};

}  // namespace skiff::storage
