// LogStore: the one RocksDB instance of a broker's data dir, holding the Raft logs of every
// group on the broker (the Raft log IS the partition log: a record batch is written once).
//
//   column family   key                        value (sealed: crc32c + body)
//   ------------------------------------------------------------------------------------------
//   log             (group, raft index)        entry: type, term, base offset, records, data
//   raft_state      (group, tag)               hard state | conf state | applied | log meta |
//                                              snapshot meta
//   snapshot        (group)                    snapshot data (the state machine image)
//   offset_index    (group, base offset)       a span of batches: first/last raft index,
//                                              record count, timestamps, size
//   metadata        free-form (caller's keys)  the metadata state machine's rows
//
// Grammar and invariants: docs/formats/partition_log.md.
//
// Group commit
//   Write() takes the persisted part of many groups' Ready at once and makes it ONE WriteBatch
//   and at most ONE WAL sync. Concurrent Write() calls from many host threads are joined by
//   RocksDB's own write group: the first writer becomes the leader, appends every queued
//   batch to the WAL with one write and one fdatasync, and releases the followers. Measured
//   (storage_bench BM_AppendThreads, BM_StoreVsDisk): 64 threads each writing 1 KiB get ~70x
//   the throughput of one thread, i.e. they share fsyncs, so no extra committer queue is
//   built on top. Pipelined writes overlap the next group's WAL write with this group's
//   memtable insert. A host that already holds many groups' Ready should still pass them in
//   one Write(): it skips the per-writer handoff, which costs CPU on a small machine.
//
//       thread A: Write({g1,g7}) --+
//       thread B: Write({g3})    --+--> RocksDB write group -> 1 WAL append + 1 fdatasync
//       thread C: Write({g9,g2}) --+
//
//   Write() leaves one writer's memtable insert and WAL write in series with its fsync.
//   WriteAsync() takes the fsync off the caller: it returns once the batch is applied, and a
//   durability thread runs one WAL sync for all the writes queued meanwhile, then their
//   callbacks. A caller that keeps a few rounds in flight (Raft's async storage writes) overlaps
//   its next rounds with the sync: measured at 64 groups, 1 writer, 4 rounds in flight, ~1.0x
//   the disk's own append+fdatasync rate against ~0.5x for Write() (storage_bench).
//
// Sync policy (what "acknowledged" means when Write() returns OK)
//   kEveryCommit (default)  fsynced: survives a power cut. Required by the Raft durability
//                           contract (an append/vote response promises durability).
//   kInterval(ms)           written to the OS (survives kill -9, not a power cut); a background
//                           thread fsyncs the WAL every interval. A correlated power loss of a
//                           quorum may lose the last `interval` of acknowledged writes.
//   kNever                  written to the OS only; fsync left to the kernel. Benchmarks/tests.
//
// Errors: a failed write returns kResourceExhausted for a full disk and kIoError for other I/O
// failures; nothing of that write is applied (the batch is atomic) and nothing previously
// acknowledged is affected. Reads keep working. RocksDB turns such a failure into a
// "background error" that makes the DB read-only; the next Write() calls DB::Resume() first
// (after a full disk: only once the data dir has room to flush the memtables, checked with
// statvfs, because Resume() can block on a disk that is still full), so writes resume once
// space returns. An I/O error is settled by the failing write itself: if Resume() cannot clear
// it (RocksDB 7.8 never can after a failed WAL write or sync), that write already returns the
// final "restart the broker" error and FatalWriteError() reports it.
//
// Thread-safety: all methods are thread-safe. Writes to ONE group must come from one thread at
// a time (Raft drives a group from one thread); violating that returns kFailedPrecondition.
// PartitionLog pointers stay valid for the life of the LogStore.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/ids.h"
#include "common/status.h"
#include "raft/types.h"
#include "storage/key_format.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class Env;
class FileSystem;
class WriteBatch;
}  // namespace rocksdb

namespace skiff::storage {

class PartitionLog;

enum class SyncPolicy : uint8_t { kEveryCommit, kInterval, kNever };

// Tells storage how many records an entry holds and their newest timestamp, so storage stays
// agnostic of the record batch format. Must be deterministic (it runs on every replica).
using EntryClassifier = std::function<EntryRecordInfo(const raft::Entry&)>;

// The default: a non-empty kNormal entry is one record with no timestamp; others take none.
EntryRecordInfo DefaultClassifier(const raft::Entry& entry);

struct LogStoreOptions {
  SyncPolicy sync_policy = SyncPolicy::kEveryCommit;
  uint32_t sync_interval_ms = 10;  // kInterval only
  EntryClassifier classifier = DefaultClassifier;
  // Values at least this large go to blob files (written once at flush, never rewritten by
  // compaction); smaller ones (no-ops, conf changes) stay in the LSM.
  uint64_t min_blob_size_bytes = 256;
  // The offset index gets one row per span of batches of about this many payload bytes (like
  // Kafka's index.interval.bytes); a lookup reads at most one span's entries. 0: a row per
  // batch.
  uint64_t offset_index_interval_bytes = 16 << 10;
  uint64_t blob_file_size_bytes = 256ull << 20;
  uint64_t log_write_buffer_size_bytes = 64ull << 20;
  int log_max_write_buffers = 4;
  uint64_t max_total_wal_size_bytes = 512ull << 20;
  uint64_t block_cache_size_bytes = 64ull << 20;
  int max_background_jobs = 2;
  // Preallocate WAL/SST space with fallocate (faster appends on ext4/xfs). Tests on a tiny
  // tmpfs turn it off: preallocating a whole WAL block there fails long before the disk is full.
  bool allow_fallocate = true;
  // Flushes and compactions write their files with O_DIRECT when the file system supports it
  // (probed at open; tmpfs does not). On small VMs a buffered write's copy into the page cache
  // costs more CPU than anything else on the produce path, and a flush writes every payload a
  // second time (the WAL was the first). Reads stay buffered.
  bool direct_io_for_flush = true;
  // Writes are refused (kResourceExhausted) while the file system has less free space than
  // this reserve plus what flushing the current memtables needs. Refusing before RocksDB runs
  // into ENOSPC keeps the DB out of its background-error state, whose recovery (DB::Resume)
  // can hang in RocksDB 7.8 (seen here in WaitForFlushMemTables). Reads keep working and
  // writes resume as soon as space returns. Like Redpanda's storage_min_free_bytes.
  uint64_t min_free_bytes = 64ull << 20;
  // The file system RocksDB uses; null means the operating system's. Tests wrap it to inject
  // I/O errors (a failing fsync) that a real disk produces only rarely.
  std::shared_ptr<rocksdb::FileSystem> file_system;
};

// A snapshot received from a leader, to install (replaces the group's whole log).
struct SnapshotWrite {
  raft::Snapshot snapshot;
  uint64_t next_offset = 0;  // the partition offset that follows the snapshot
};

// The persisted part of one group's Ready, applied in this order: snapshot, entries (a stored
// suffix conflicting with entries.front().index is discarded first), hard state, conf state,
// applied index.
struct GroupWrite {
  RaftGroupId group;
  std::optional<SnapshotWrite> snapshot;
  std::vector<raft::Entry> entries;
  std::optional<raft::HardState> hard_state;
  std::optional<raft::ConfState> conf_state;
  std::optional<raft::Index> applied;
  bool must_sync = true;  // Ready::must_sync; a Write syncs if any of its groups must
};

class LogStore {
 public:
  // Opens (creating if needed) the store in `dir`.
  static Result<std::unique_ptr<LogStore>> Open(const std::string& dir, LogStoreOptions options);
  ~LogStore();
  LogStore(const LogStore&) = delete;
  LogStore& operator=(const LogStore&) = delete;

  // The view of one group (created empty if it has never been written). Loads the group's
  // cached state on first use. kCorruption if its stored state is damaged.
  Result<PartitionLog*> Group(RaftGroupId group);

  // Persists several groups atomically: one WriteBatch, at most one WAL sync. Each group at
  // most once per call. On error nothing of the call is applied.
  Status Write(std::span<const GroupWrite> writes);

  // Like Write(), but returns once the batch is applied (readable) and handed to the OS,
  // without waiting for the WAL sync, so that a caller can issue its next writes while this
  // one syncs. If it returns OK, `on_durable` is called exactly once, on the store's
  // durability thread: OK once a WAL sync that covers this write completed, or the error that
  // failed it (after which writes are refused until a restart, as FatalWriteError() says).
  // Callbacks run in the order the WriteAsync calls returned. Under kInterval and kNever, which
  // acknowledge unsynced writes, on_durable runs before this returns. on_durable must not
  // call back into the store's writes.
  Status WriteAsync(std::span<const GroupWrite> writes, std::function<void(Status)> on_durable);

  // Removes every row of a group (the partition was deleted). Its PartitionLog becomes empty.
  Status DropGroup(RaftGroupId group);

  // The metadata state machine's rows (synced per the sync policy).
  Status PutMetadata(std::string_view key, std::string_view value);
  Status DeleteMetadata(std::string_view key);
  Result<std::optional<std::string>> GetMetadata(std::string_view key) const;
  // Calls fn(key, value) for every row whose key starts with prefix, in key order.
  Status ScanMetadata(std::string_view prefix,
                      const std::function<void(std::string_view, std::string_view)>& fn) const;

  // fsyncs the WAL now (for kInterval / kNever callers that need a durability point).
  Status SyncWal();
  // Flushes all memtables (tests and benchmarks).
  Status FlushAll();
  // Compacts a group's deleted prefix away so its blob files can be freed.
  Status CompactGroupPrefix(RaftGroupId group);

  // Why writes are refused until the process restarts (an I/O error RocksDB cannot resume
  // from, such as a failed fsync), or OK. A full disk does not count: writes resume by
  // themselves once space returns.
  Status FatalWriteError() const;

  const LogStoreOptions& options() const { return options_; }
  // Whether flushes and compactions write with O_DIRECT (asked for, and the file system allows).
  bool direct_io_for_flush() const { return direct_io_for_flush_; }

 private:
  friend class PartitionLog;
  LogStore(std::string dir, LogStoreOptions options);
  // Free bytes the data dir must have before a write retries after a full disk.
  uint64_t ResumeMinFreeBytes() const;

  // Writes a batch under the sync policy, resuming from a background error first if needed.
  Status Commit(rocksdb::WriteBatch* batch, bool sync);
  // With resume_mu_ held and needs_resume_ set: clears the background error, or says why
  // writes stay refused (a full disk until space returns; an I/O error until a restart).
  Status ResumeLocked();
  void SyncLoop();
  // Write() and WriteAsync(): applies the writes; syncs the WAL first if `sync`.
  Status WriteGroups(std::span<const GroupWrite> writes, bool sync);
  // kEveryCommit: syncs the WAL for the queued WriteAsync callbacks, then runs them.
  void DurabilityLoop();

  const std::string dir_;
  LogStoreOptions options_;
  bool direct_io_for_flush_ = false;
  std::unique_ptr<rocksdb::Env> env_;  // wraps options_.file_system; outlives db_
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::ColumnFamilyHandle* log_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* state_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* snapshot_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* offset_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* metadata_cf_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;

  std::mutex groups_mu_;
  std::unordered_map<RaftGroupId, std::unique_ptr<PartitionLog>> groups_;  // guarded

  std::atomic<bool> needs_resume_{false};
  mutable std::mutex resume_mu_;
  Status last_write_error_;         // guarded by resume_mu_
  Status fatal_write_error_;        // guarded by resume_mu_
  std::atomic<bool> fatal_{false};  // fatal_write_error_ is set (and final)

  std::mutex sync_mu_;
  std::condition_variable sync_cv_;
  bool stopping_ = false;  // guarded by sync_mu_
  std::thread sync_thread_;

  std::mutex durable_mu_;
  std::condition_variable durable_cv_;
  std::vector<std::function<void(Status)>> awaiting_sync_;  // guarded by durable_mu_
  bool durable_stopping_ = false;                           // guarded by durable_mu_
  std::thread durability_thread_;  // started by the first WriteAsync under kEveryCommit
};

}  // namespace skiff::storage
