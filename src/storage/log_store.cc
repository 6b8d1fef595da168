#include "storage/log_store.h"

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include "common/thread_name.h"
#include "storage/partition_log.h"
#include "storage/rocksdb_status.h"

namespace skiff::storage {
namespace {

constexpr const char* kLogCf = "log";
constexpr const char* kStateCf = "raft_state";
constexpr const char* kSnapshotCf = "snapshot";
constexpr const char* kOffsetCf = "offset_index";
constexpr const char* kMetadataCf = "metadata";

rocksdb::ColumnFamilyOptions SmallCfOptions(const std::shared_ptr<rocksdb::Cache>& cache,
                                            uint64_t write_buffer_size) {
  rocksdb::ColumnFamilyOptions cf;
  cf.write_buffer_size = write_buffer_size;
  cf.max_write_buffer_number = 3;
  cf.compression = rocksdb::kLZ4Compression;
  cf.level_compaction_dynamic_level_bytes = true;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return cf;
}

// RocksDB's info log goes to stderr, warnings and up. Not to a LOG file in the data dir: on a
// full disk that file's writer is what fails first, and RocksDB asserts on its next append.
class StderrLogger : public rocksdb::Logger {
 public:
  StderrLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    char line[1024];
    std::vsnprintf(line, sizeof(line), format, ap);
    std::fprintf(stderr, "rocksdb: %s\n", line);
  }
};

// Turns off RocksDB's own recovery from background errors: it polls for free space on its own
// schedule and makes a manual Resume() fail with Busy meanwhile. The store resumes explicitly
// on the next write instead, so a write after space returns succeeds at once.
class ManualRecoveryListener : public rocksdb::EventListener {
 public:
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status bg_error,
                            bool* auto_recovery) override {
    bg_error.PermitUncheckedError();
    *auto_recovery = false;
  }
};

uint64_t FreeBytes(const std::string& dir) {
  struct statvfs st;
  if (::statvfs(dir.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

// Whether `dir`'s file system accepts O_DIRECT (tmpfs answers EINVAL).
bool SupportsDirectIo(const std::string& dir) {
  const std::string probe = dir + "/.direct_io_probe";
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_DIRECT | O_CLOEXEC, 0600);
  if (fd >= 0) ::close(fd);
  ::unlink(probe.c_str());
  return fd >= 0;
}

}  // namespace

EntryRecordInfo DefaultClassifier(const raft::Entry& entry) {
  if (entry.type != raft::EntryType::kNormal || entry.data.empty()) return {};
  return EntryRecordInfo{1, -1};
}

LogStore::LogStore(std::string dir, LogStoreOptions options)
    : dir_(std::move(dir)), options_(std::move(options)) {}

uint64_t LogStore::ResumeMinFreeBytes() const {
  // Resume() flushes what the memtables hold now; leave 10% and 1 MiB of slack for SST and
  // blob file overhead, the MANIFEST and the new WAL.
  uint64_t memtables = 0;
  if (!db_->GetAggregatedIntProperty(rocksdb::DB::Properties::kCurSizeAllMemTables, &memtables)) {
    memtables = options_.log_write_buffer_size_bytes;
  }
  return memtables + memtables / 10 + (1ull << 20);
}

Result<std::unique_ptr<LogStore>> LogStore::Open(const std::string& dir, LogStoreOptions options) {
  if (!options.classifier) return InvalidArgumentError("LogStoreOptions.classifier is empty");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec == std::errc::no_space_on_device) {
    return ResourceExhaustedError("disk full: create " + dir + ": " + ec.message());
  }
  if (ec) return IoError("create " + dir + ": " + ec.message());
  std::unique_ptr<LogStore> store(new LogStore(dir, std::move(options)));
  const LogStoreOptions& o = store->options_;

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = o.max_background_jobs;
  db_options.max_total_wal_size = o.max_total_wal_size_bytes;
  db_options.bytes_per_sync = 1 << 20;
  // With few cores, one writer inserting a whole write group beats concurrent skiplist
  // inserts; pipelining overlaps the next group's WAL write with it (measured: see bench).
  db_options.allow_concurrent_memtable_write = false;
  db_options.enable_pipelined_write = true;  // smooth flush writeback instead of one big burst
  db_options.info_log = std::make_shared<StderrLogger>();
  db_options.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  db_options.listeners.push_back(std::make_shared<ManualRecoveryListener>());
  db_options.max_manifest_file_size = 64 << 20;
  // Raft's safety rests on a replica never forgetting what it persisted (its votes, the entries
  // it acknowledged). RocksDB's default WAL recovery stops silently at the first damaged record
  // and opens without everything after it. Only a torn tail (a write that never completed its
  // sync, so was never acknowledged) may be dropped; damage before it refuses the open, and the
  // operator replaces the replica.
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;

  db_options.allow_fallocate = o.allow_fallocate;
  store->direct_io_for_flush_ = o.direct_io_for_flush && SupportsDirectIo(dir);
  db_options.use_direct_io_for_flush_and_compaction = store->direct_io_for_flush_;
  if (o.file_system) {
    store->env_ = rocksdb::NewCompositeEnv(o.file_system);
    db_options.env = store->env_.get();
  }
  auto cache = rocksdb::NewLRUCache(o.block_cache_size_bytes);
  const uint64_t small_buffer = std::min<uint64_t>(8 << 20, o.log_write_buffer_size_bytes);

  // The log: payloads are written to the WAL and, at flush, once to a blob file; compaction
  // moves only keys and blob references. Batches arrive already compressed by the producer.
  rocksdb::ColumnFamilyOptions log_cf = SmallCfOptions(cache, small_buffer);
  log_cf.write_buffer_size = o.log_write_buffer_size_bytes;
  log_cf.max_write_buffer_number = o.log_max_write_buffers;
  log_cf.compression = rocksdb::kNoCompression;
  log_cf.enable_blob_files = true;
  log_cf.min_blob_size = o.min_blob_size_bytes;
  log_cf.blob_file_size = o.blob_file_size_bytes;
  log_cf.blob_compression_type = rocksdb::kNoCompression;
  // Logs are deleted oldest first, so whole blob files die; no GC rewrite is needed.
  log_cf.enable_blob_garbage_collection = false;
  log_cf.target_file_size_base = 32 << 20;
  // Not memtable_insert_with_hint_prefix_extractor: RocksDB 7.8 applies the hint to range
  // tombstones too and corrupts the memtable (an assertion in InlineSkipList::Insert).

  rocksdb::ColumnFamilyOptions snapshot_cf = SmallCfOptions(cache, small_buffer);
  snapshot_cf.enable_blob_files = true;
  snapshot_cf.min_blob_size = 4096;
  snapshot_cf.compression = rocksdb::kNoCompression;

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors = {
      {rocksdb::kDefaultColumnFamilyName, SmallCfOptions(cache, small_buffer)},
      {kLogCf, log_cf},
      {kStateCf, SmallCfOptions(cache, small_buffer)},
      {kSnapshotCf, snapshot_cf},
      {kOffsetCf, SmallCfOptions(cache, small_buffer)},
      {kMetadataCf, SmallCfOptions(cache, small_buffer)},
  };
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s =
      rocksdb::DB::Open(rocksdb::Options(db_options, SmallCfOptions(cache, small_buffer)), dir,
                        descriptors, &store->handles_, &raw);
  if (!s.ok()) return FromRocks(s, "open " + dir);
  store->db_.reset(raw);
  store->log_cf_ = store->handles_[1];
  store->state_cf_ = store->handles_[2];
  store->snapshot_cf_ = store->handles_[3];
  store->offset_cf_ = store->handles_[4];
  store->metadata_cf_ = store->handles_[5];

  if (o.sync_policy == SyncPolicy::kInterval) {
    store->sync_thread_ = std::thread([s = store.get()] { s->SyncLoop(); });
  }
  return store;
}

LogStore::~LogStore() {
  {
    std::lock_guard lock(sync_mu_);
    stopping_ = true;
  }
  sync_cv_.notify_all();
  if (sync_thread_.joinable()) sync_thread_.join();
  {
    // The durability thread syncs and answers what is queued before it exits.
    std::lock_guard lock(durable_mu_);
    durable_stopping_ = true;
  }
  durable_cv_.notify_all();
  if (durability_thread_.joinable()) durability_thread_.join();
  if (db_) {
    // Leave a durable point behind even under kInterval/kNever (not after a failed write: the
    // WAL writer that failed must not be touched again before Resume()).
    if (!needs_resume_.load()) db_->SyncWAL().PermitUncheckedError();
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    db_->Close().PermitUncheckedError();
  }
}

void LogStore::SyncLoop() {
  SetThreadName("wal-sync");
  std::unique_lock lock(sync_mu_);
  while (!stopping_) {
    sync_cv_.wait_for(lock, std::chrono::milliseconds(options_.sync_interval_ms));
    if (stopping_) break;
    lock.unlock();
    // A failure here resurfaces on the next Write (RocksDB records it as a background error).
    if (!needs_resume_.load(std::memory_order_acquire)) {
      rocksdb::Status synced = db_->SyncWAL();
      if (!synced.ok()) {
        std::lock_guard resume_lock(resume_mu_);
        last_write_error_ = FromRocks(synced, "sync WAL");
        needs_resume_.store(true, std::memory_order_release);
      }
    }
    lock.lock();
  }
}

Result<PartitionLog*> LogStore::Group(RaftGroupId group) {
  std::lock_guard lock(groups_mu_);
  auto it = groups_.find(group);
  if (it != groups_.end()) return it->second.get();
  std::unique_ptr<PartitionLog> log(new PartitionLog(this, group));
  SKIFF_RETURN_IF_ERROR(log->Load());
  PartitionLog* raw = log.get();
  groups_.emplace(group, std::move(log));
  return raw;
}

Status LogStore::ResumeLocked() {
  // Resume() flushes the memtables; on a disk that is still full it can block (seen in
  // RocksDB 7.8). Only try once there is room for that flush.
  if (last_write_error_.code() == StatusCode::kResourceExhausted) {
    const uint64_t need = ResumeMinFreeBytes();
    const uint64_t free_bytes = FreeBytes(dir_);
    if (free_bytes < need) {
      return ResourceExhaustedError(last_write_error_.message() + "; " +
                                    std::to_string(free_bytes) + " bytes free, " +
                                    std::to_string(need) + " needed to resume writes");
    }
  }
  rocksdb::Status r = db_->Resume();
  if (!r.ok()) {
    Status st = FromRocks(r, "write refused, resume after earlier error failed");
    // Still the same condition (e.g. the disk is still full): report it as such.
    if (st.code() != StatusCode::kResourceExhausted &&
        last_write_error_.code() == StatusCode::kResourceExhausted) {
      return ResourceExhaustedError(last_write_error_.message() + "; " + st.message());
    }
    if (last_write_error_.code() == StatusCode::kIoError) {
      // A failed WAL write or sync is unrecoverable in RocksDB 7.8: its WAL writer stays
      // failed. Reopening in-process would also trust pages that a failed fsync may have
      // left behind (Linux can drop them), so, like Kafka's offline log dir and etcd, the
      // store stays read-only until the process restarts on a healthy disk.
      fatal_write_error_ =
          IoError("writes refused after an I/O error (" + last_write_error_.message() +
                  "); reads still work; restart the broker once the disk is healthy");
      fatal_.store(true, std::memory_order_release);
      return fatal_write_error_;
    }
    return st;
  }
  needs_resume_.store(false, std::memory_order_release);
  return Status::Ok();
}

Status LogStore::Commit(rocksdb::WriteBatch* batch, bool sync) {
  rocksdb::WriteOptions wo;
  wo.sync = sync && options_.sync_policy == SyncPolicy::kEveryCommit;
  if (fatal_.load(std::memory_order_acquire)) return FatalWriteError();
  if (needs_resume_.load(std::memory_order_acquire)) {
    std::lock_guard lock(resume_mu_);
    if (needs_resume_.load(std::memory_order_relaxed)) SKIFF_RETURN_IF_ERROR(ResumeLocked());
  }
  // What flushing the memtables plus this batch will need, on top of the configured reserve.
  const uint64_t need = options_.min_free_bytes + ResumeMinFreeBytes() + batch->GetDataSize();
  const uint64_t free_bytes = FreeBytes(dir_);
  if (free_bytes < need) {
    return ResourceExhaustedError(
        "disk nearly full: " + std::to_string(free_bytes) + " bytes free in " + dir_ +
        ", writes need " + std::to_string(need) + " (reserve " +
        std::to_string(options_.min_free_bytes) + " + memtable flush + batch)");
  }
  rocksdb::Status s = db_->Write(wo, batch);
  if (s.ok()) return Status::Ok();
  // The DB may now hold a background error that keeps it read-only until Resume().
  Status st = FromRocks(s, "write");
  std::lock_guard lock(resume_mu_);
  // Keep an earlier error (the background sync's own EIO says more than "previous error").
  if (!needs_resume_.load(std::memory_order_relaxed)) last_write_error_ = st;
  needs_resume_.store(true, std::memory_order_release);
  // An I/O error is decided now, not at the next write: the caller learns at once whether
  // writes are over until a restart (the broker then fences itself).
  if (last_write_error_.code() == StatusCode::kIoError) {
    Status resumed = ResumeLocked();
    if (!resumed.ok()) return resumed;
  }
  return st;
}

Status LogStore::Write(std::span<const GroupWrite> writes) {
  bool sync = false;
  for (const GroupWrite& gw : writes) sync = sync || gw.must_sync;
  return WriteGroups(writes, sync);
}

Status LogStore::WriteAsync(std::span<const GroupWrite> writes,
                            std::function<void(Status)> on_durable) {
  SKIFF_RETURN_IF_ERROR(WriteGroups(writes, /*sync=*/false));
  if (options_.sync_policy != SyncPolicy::kEveryCommit) {
    on_durable(Status::Ok());
    return Status::Ok();
  }
  {
    std::lock_guard lock(durable_mu_);
    if (!durability_thread_.joinable()) {
      durability_thread_ = std::thread([this] { DurabilityLoop(); });
    }
    awaiting_sync_.push_back(std::move(on_durable));
  }
  durable_cv_.notify_one();
  return Status::Ok();
}

void LogStore::DurabilityLoop() {
  SetThreadName("wal-durable");
  std::unique_lock lock(durable_mu_);
  while (true) {
    durable_cv_.wait(lock, [&] { return durable_stopping_ || !awaiting_sync_.empty(); });
    if (awaiting_sync_.empty()) return;  // stopping, nothing left to sync
    // Every callback queued so far belongs to a write that returned before this sync starts,
    // so the sync covers it; writes queued meanwhile wait for the next round (group commit).
    std::vector<std::function<void(Status)>> batch;
    batch.swap(awaiting_sync_);
    lock.unlock();
    Status synced = FatalWriteError();
    if (synced.ok()) {
      rocksdb::Status s = db_->SyncWAL();
      if (!s.ok()) {
        std::lock_guard resume_lock(resume_mu_);
        if (!needs_resume_.load(std::memory_order_relaxed)) {
          last_write_error_ = FromRocks(s, "sync WAL");
        }
        needs_resume_.store(true, std::memory_order_release);
        // Settled now, as for a failed Write: the callers learn the final error at once.
        synced = ResumeLocked();
        if (synced.ok()) synced = FromRocks(s, "sync WAL");
      }
    }
    for (auto& on_durable : batch) on_durable(synced);
    lock.lock();
  }
}

Status LogStore::WriteGroups(std::span<const GroupWrite> writes, bool sync) {
  if (writes.empty()) return Status::Ok();
  std::vector<PartitionLog*> logs;
  logs.reserve(writes.size());
  for (const GroupWrite& gw : writes) {
    SKIFF_ASSIGN_OR_RETURN(PartitionLog * log, Group(gw.group));
    logs.push_back(log);
  }
  // Claim every group (one writer per group), releasing on every exit path.
  size_t claimed = 0;
  auto release = [&] {
    for (size_t i = 0; i < claimed; ++i) logs[i]->writing_.store(false, std::memory_order_release);
  };
  for (; claimed < logs.size(); ++claimed) {
    if (logs[claimed]->writing_.exchange(true, std::memory_order_acq_rel)) {
      release();
      return FailedPreconditionError("group " + std::to_string(writes[claimed].group.value()) +
                                     " written twice in one call or by two threads at once");
    }
  }
  rocksdb::WriteBatch batch;
  std::vector<PartitionLog::State> next(logs.size());
  for (size_t i = 0; i < logs.size(); ++i) {
    next[i] = logs[i]->CopyState();
    Status st = logs[i]->PrepareWrite(writes[i], &batch, &next[i]);
    if (!st.ok()) {
      release();
      return st;
    }
  }
  Status st = Commit(&batch, sync);
  if (st.ok()) {
    for (size_t i = 0; i < logs.size(); ++i) logs[i]->Install(std::move(next[i]));
  }
  release();
  return st;
}

Status LogStore::DropGroup(RaftGroupId group) {
  SKIFF_ASSIGN_OR_RETURN(PartitionLog * log, Group(group));
  if (log->writing_.exchange(true, std::memory_order_acq_rel)) {
    return FailedPreconditionError("group written concurrently with DropGroup");
  }
  rocksdb::WriteBatch batch;
  log->PrepareDropAll(&batch);
  batch.Delete(state_cf_, StateKey(group.value(), StateTag::kSnapshotMeta));
  batch.Delete(snapshot_cf_, GroupKey(group.value()));
  for (StateTag tag :
       {StateTag::kHardState, StateTag::kConfState, StateTag::kApplied, StateTag::kLogMeta}) {
    batch.Delete(state_cf_, StateKey(group.value(), tag));
  }
  Status st = Commit(&batch, true);
  if (st.ok()) log->Install(PartitionLog::State{});
  log->writing_.store(false, std::memory_order_release);
  return st;
}

Status LogStore::PutMetadata(std::string_view key, std::string_view value) {
  rocksdb::WriteBatch batch;
  batch.Put(metadata_cf_, rocksdb::Slice(key.data(), key.size()), Seal(value));
  return Commit(&batch, true);
}

Status LogStore::DeleteMetadata(std::string_view key) {
  rocksdb::WriteBatch batch;
  batch.Delete(metadata_cf_, rocksdb::Slice(key.data(), key.size()));
  return Commit(&batch, true);
}

Result<std::optional<std::string>> LogStore::GetMetadata(std::string_view key) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), metadata_cf_,
                               rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return FromRocks(s, "get metadata");
  SKIFF_ASSIGN_OR_RETURN(std::string_view body, Unseal(value, "metadata row"));
  return std::optional<std::string>(std::string(body));
}

Status LogStore::ScanMetadata(
    std::string_view prefix,
    const std::function<void(std::string_view, std::string_view)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), metadata_cf_));
  for (it->Seek(rocksdb::Slice(prefix.data(), prefix.size())); it->Valid(); it->Next()) {
    std::string_view key(it->key().data(), it->key().size());
    if (key.substr(0, prefix.size()) != prefix) break;
    SKIFF_ASSIGN_OR_RETURN(
        std::string_view body,
        Unseal(std::string_view(it->value().data(), it->value().size()), "metadata row"));
    fn(key, body);
  }
  return FromRocks(it->status(), "scan metadata");
}

Status LogStore::FatalWriteError() const {
  // Set once, never cleared: without the flag, no lock (Resume() may hold it for long).
  if (!fatal_.load(std::memory_order_acquire)) return Status::Ok();
  std::lock_guard lock(resume_mu_);
  return fatal_write_error_;
}

Status LogStore::SyncWal() { return FromRocks(db_->SyncWAL(), "sync WAL"); }

Status LogStore::FlushAll() {
  rocksdb::FlushOptions fo;
  fo.wait = true;
  return FromRocks(db_->Flush(fo, handles_), "flush");
}

Status LogStore::CompactGroupPrefix(RaftGroupId group) {
  SKIFF_ASSIGN_OR_RETURN(PartitionLog * log, Group(group));
  const std::string begin = IndexedKey(group.value(), 0);
  const std::string end = IndexedKey(group.value(), log->FirstIndex());
  rocksdb::Slice b(begin), e(end);
  rocksdb::CompactRangeOptions co;
  return FromRocks(db_->CompactRange(co, log_cf_, &b, &e), "compact prefix");
}

}  // namespace skiff::storage
