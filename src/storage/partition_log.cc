#include "storage/partition_log.h"

#include <algorithm>
#include <limits>
#include <string>

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include "storage/rocksdb_status.h"

namespace skiff::storage {
namespace {

constexpr uint64_t kMaxKey = std::numeric_limits<uint64_t>::max();

std::string Str(uint64_t v) { return std::to_string(v); }

// Marks the group as being written for the life of the guard (one writer per group).
class WriterClaim {
 public:
  explicit WriterClaim(std::atomic<bool>& flag)
      : flag_(flag), ok_(!flag.exchange(true, std::memory_order_acq_rel)) {}
  ~WriterClaim() {
    if (ok_) flag_.store(false, std::memory_order_release);
  }
  bool ok() const { return ok_; }

 private:
  std::atomic<bool>& flag_;
  bool ok_;
};

Status ConcurrentWriter() {
  return FailedPreconditionError("group written by two threads at once");
}

// Reads one sealed row; nullopt if absent.
Result<std::optional<std::string>> GetRow(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf,
                                          const std::string& key) {
  std::string value;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), cf, key, &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return FromRocks(s, "get");
  return std::optional<std::string>(std::move(value));
}

}  // namespace

// ---------------------------------------------------------------- loading and state

Status PartitionLog::Load() {
  rocksdb::DB* db = store_->db_.get();
  const uint64_t g = group_.value();
  State st;
  auto load = [&](StateTag tag, auto decode, auto& out) -> Status {
    SKIFF_ASSIGN_OR_RETURN(auto row, GetRow(db, store_->state_cf_, StateKey(g, tag)));
    if (!row) return Status::Ok();
    SKIFF_ASSIGN_OR_RETURN(std::string_view body, Unseal(*row, "raft state"));
    SKIFF_ASSIGN_OR_RETURN(out, decode(body));
    return Status::Ok();
  };
  SKIFF_RETURN_IF_ERROR(load(StateTag::kLogMeta, DecodeLogMeta, st.meta));
  SKIFF_RETURN_IF_ERROR(load(StateTag::kHardState, DecodeHardState, st.hard_state));
  SKIFF_RETURN_IF_ERROR(load(StateTag::kConfState, DecodeConfState, st.conf_state));
  SKIFF_RETURN_IF_ERROR(load(StateTag::kApplied, DecodeU64, st.applied));
  SKIFF_RETURN_IF_ERROR(load(StateTag::kSnapshotMeta, DecodeSnapshotMeta, st.snapshot));

  // The last stored entry gives last index and term.
  st.last_index = st.meta.compacted_index;
  st.last_term = st.meta.compacted_term;
  {
    const std::string lower = IndexedKey(g, 0), upper = IndexedKey(g, kMaxKey);
    rocksdb::Slice lo(lower), hi(upper);
    rocksdb::ReadOptions ro;
    ro.iterate_lower_bound = &lo;
    ro.iterate_upper_bound = &hi;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, store_->log_cf_));
    it->SeekToLast();
    if (it->Valid()) {
      auto key = DecodeIndexedKey(std::string_view(it->key().data(), it->key().size()));
      if (!key) return CorruptionError("log key of group " + Str(g) + " malformed");
      SKIFF_ASSIGN_OR_RETURN(std::string_view body,
                             Unseal(std::string_view(it->value().data(), it->value().size()),
                                    "log entry " + Str(key->second)));
      SKIFF_ASSIGN_OR_RETURN(st.last_term, DecodeEntryTerm(body));
      st.last_index = key->second;
    }
    SKIFF_RETURN_IF_ERROR(FromRocks(it->status(), "load last entry"));
  }
  if (st.last_index < st.meta.compacted_index) {
    return CorruptionError("group " + Str(g) + ": last index below compacted prefix");
  }

  // Offsets: the end from the last offset row, the size from all of them.
  st.log_end_offset = st.meta.log_start_offset;
  uint64_t size = 0, end = st.meta.log_start_offset;
  SKIFF_RETURN_IF_ERROR(ScanOffsets(0, kMaxKey, [&](uint64_t base, const OffsetRow& row) {
    size += row.size_bytes;
    end = base + row.record_count;
    return true;
  }));
  st.size_bytes = size;
  st.log_end_offset = end;
  std::lock_guard lock(mu_);
  state_ = std::move(st);
  return Status::Ok();
}

PartitionLog::State PartitionLog::CopyState() const {
  std::lock_guard lock(mu_);
  return state_;
}

void PartitionLog::Install(State next) {
  std::lock_guard lock(mu_);
  state_ = std::move(next);
}

Status PartitionLog::ScanOffsets(uint64_t from, uint64_t to,
                                 const std::function<bool(uint64_t, const OffsetRow&)>& fn,
                                 bool reverse) const {
  const uint64_t g = group_.value();
  const std::string lower = IndexedKey(g, from), upper = IndexedKey(g, to);
  rocksdb::Slice lo(lower), hi(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_lower_bound = &lo;
  ro.iterate_upper_bound = &hi;
  std::unique_ptr<rocksdb::Iterator> it(store_->db_->NewIterator(ro, store_->offset_cf_));
  for (reverse ? it->SeekToLast() : it->SeekToFirst(); it->Valid();
       reverse ? it->Prev() : it->Next()) {
    auto key = DecodeIndexedKey(std::string_view(it->key().data(), it->key().size()));
    if (!key) return CorruptionError("offset index key malformed");
    SKIFF_ASSIGN_OR_RETURN(std::string_view body,
                           Unseal(std::string_view(it->value().data(), it->value().size()),
                                  "offset index row " + Str(key->second)));
    SKIFF_ASSIGN_OR_RETURN(OffsetRow row, DecodeOffsetRow(body));
    if (!fn(key->second, row)) break;
  }
  return FromRocks(it->status(), "scan offset index");
}

// ---------------------------------------------------------------- raft::LogStorage

Result<raft::InitialState> PartitionLog::GetInitialState() const {
  std::lock_guard lock(mu_);
  return raft::InitialState{state_.hard_state, state_.conf_state};
}

raft::Index PartitionLog::FirstIndex() const {
  std::lock_guard lock(mu_);
  return state_.meta.compacted_index + 1;
}

raft::Index PartitionLog::LastIndex() const {
  std::lock_guard lock(mu_);
  return state_.last_index;
}

raft::Term PartitionLog::LastTerm() const {
  std::lock_guard lock(mu_);
  return state_.last_term;
}

raft::Index PartitionLog::Applied() const {
  std::lock_guard lock(mu_);
  return state_.applied;
}

raft::HardState PartitionLog::hard_state() const {
  std::lock_guard lock(mu_);
  return state_.hard_state;
}

Result<raft::Term> PartitionLog::TermAt(raft::Index i) const {
  {
    std::lock_guard lock(mu_);
    if (i < state_.meta.compacted_index || i > state_.last_index) {
      return OutOfRangeError("term of index " + Str(i) + " not stored");
    }
    if (i == state_.meta.compacted_index) return state_.meta.compacted_term;
    if (i == state_.last_index) return state_.last_term;
  }
  SKIFF_ASSIGN_OR_RETURN(auto row,
                         GetRow(store_->db_.get(), store_->log_cf_, IndexedKey(group_.value(), i)));
  if (!row) return OutOfRangeError("term of index " + Str(i) + " not stored (compacted)");
  SKIFF_ASSIGN_OR_RETURN(std::string_view body, Unseal(*row, "log entry " + Str(i)));
  return DecodeEntryTerm(body);
}

Result<std::vector<raft::Entry>> PartitionLog::Entries(raft::Index lo, raft::Index hi,
                                                       uint64_t max_bytes) const {
  {
    std::lock_guard lock(mu_);
    if (lo <= state_.meta.compacted_index) {
      return OutOfRangeError("entries compacted below " + Str(lo));
    }
    if (hi > state_.last_index + 1 || lo > hi) {
      return OutOfRangeError("entries [" + Str(lo) + "," + Str(hi) + ") beyond the log");
    }
  }
  std::vector<raft::Entry> out;
  if (lo == hi) return out;
  const uint64_t g = group_.value();
  const std::string upper = IndexedKey(g, hi);
  rocksdb::Slice hi_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &hi_slice;
  std::unique_ptr<rocksdb::Iterator> it(store_->db_->NewIterator(ro, store_->log_cf_));
  raft::Index expected = lo;
  uint64_t bytes = 0;
  for (it->Seek(IndexedKey(g, lo)); it->Valid(); it->Next()) {
    auto key = DecodeIndexedKey(std::string_view(it->key().data(), it->key().size()));
    if (!key || key->first != g) return CorruptionError("log key malformed");
    if (key->second != expected) {
      // Only a concurrent compaction (at the front) or truncation can make a hole.
      return OutOfRangeError("entry " + Str(expected) + " no longer stored");
    }
    SKIFF_ASSIGN_OR_RETURN(std::string_view body,
                           Unseal(std::string_view(it->value().data(), it->value().size()),
                                  "log entry " + Str(expected)));
    SKIFF_ASSIGN_OR_RETURN(StoredEntry stored, DecodeEntryBody(body, expected));
    const uint64_t size = stored.entry.SizeBytes();
    if (!out.empty() && bytes + size > max_bytes) return out;
    bytes += size;
    out.push_back(std::move(stored.entry));
    ++expected;
  }
  SKIFF_RETURN_IF_ERROR(FromRocks(it->status(), "read entries"));
  if (expected != hi) return OutOfRangeError("entry " + Str(expected) + " no longer stored");
  return out;
}

Result<raft::Snapshot> PartitionLog::GetSnapshot() const {
  raft::Snapshot snap;
  {
    std::lock_guard lock(mu_);
    snap.meta = state_.snapshot.meta;
  }
  if (snap.meta.index == 0) return snap;
  SKIFF_ASSIGN_OR_RETURN(auto row,
                         GetRow(store_->db_.get(), store_->snapshot_cf_, GroupKey(group_.value())));
  if (!row) return UnavailableError("snapshot replaced concurrently; ask again");
  SKIFF_ASSIGN_OR_RETURN(std::string_view body, Unseal(*row, "snapshot data"));
  snap.data = Bytes(body);
  return snap;
}

// ---------------------------------------------------------------- writes

void PartitionLog::PrepareDropAll(rocksdb::WriteBatch* batch) const {
  const uint64_t g = group_.value();
  batch->DeleteRange(store_->log_cf_, IndexedKey(g, 0), IndexedKey(g, kMaxKey));
  batch->DeleteRange(store_->offset_cf_, IndexedKey(g, 0), IndexedKey(g, kMaxKey));
}

Status PartitionLog::PrepareWrite(const GroupWrite& gw, rocksdb::WriteBatch* batch,
                                  State* next) const {
  const uint64_t g = group_.value();
  rocksdb::ColumnFamilyHandle* state_cf = store_->state_cf_;
  if (gw.snapshot) {
    const raft::Snapshot& snap = gw.snapshot->snapshot;
    if (snap.meta.index < next->snapshot.meta.index) {
      return OutOfRangeError("snapshot at " + Str(snap.meta.index) + " older than " +
                             Str(next->snapshot.meta.index));
    }
    PrepareDropAll(batch);
    next->meta = LogMeta{snap.meta.index, snap.meta.term, gw.snapshot->next_offset};
    next->last_index = snap.meta.index;
    next->last_term = snap.meta.term;
    next->log_end_offset = gw.snapshot->next_offset;
    next->size_bytes = 0;
    next->conf_state = snap.meta.conf;
    next->snapshot = StoredSnapshotMeta{snap.meta, gw.snapshot->next_offset};
    batch->Put(state_cf, StateKey(g, StateTag::kLogMeta), Seal(EncodeLogMeta(next->meta)));
    batch->Put(state_cf, StateKey(g, StateTag::kConfState),
               Seal(EncodeConfState(next->conf_state)));
    batch->Put(state_cf, StateKey(g, StateTag::kSnapshotMeta),
               Seal(EncodeSnapshotMeta(next->snapshot)));
    batch->Put(store_->snapshot_cf_, GroupKey(g), Seal(snap.data.view()));
  }
  SKIFF_RETURN_IF_ERROR(PrepareAppend(gw.entries, batch, next));
  if (gw.hard_state) {
    next->hard_state = *gw.hard_state;
    batch->Put(state_cf, StateKey(g, StateTag::kHardState), Seal(EncodeHardState(*gw.hard_state)));
  }
  if (gw.conf_state) {
    next->conf_state = *gw.conf_state;
    batch->Put(state_cf, StateKey(g, StateTag::kConfState), Seal(EncodeConfState(*gw.conf_state)));
  }
  if (gw.applied) {
    next->applied = *gw.applied;
    batch->Put(state_cf, StateKey(g, StateTag::kApplied), Seal(EncodeU64(*gw.applied)));
  }
  return Status::Ok();
}

Status PartitionLog::PrepareAppend(const std::vector<raft::Entry>& entries,
                                   rocksdb::WriteBatch* batch, State* next) const {
  if (entries.empty()) return Status::Ok();
  for (size_t i = 1; i < entries.size(); ++i) {
    if (entries[i].index != entries[i - 1].index + 1) {
      return InvalidArgumentError("entries not contiguous");
    }
  }
  if (entries.front().index > next->last_index + 1) {
    return InvalidArgumentError("gap: appending " + Str(entries.front().index) + " after " +
                                Str(next->last_index));
  }
  size_t skip = 0;
  while (skip < entries.size() && entries[skip].index <= next->meta.compacted_index) ++skip;
  if (skip == entries.size()) return Status::Ok();
  const uint64_t g = group_.value();
  const raft::Index from = entries[skip].index;
  if (from <= next->last_index) {
    // A conflicting suffix: drop it and the offsets its batches took.
    batch->DeleteRange(store_->log_cf_, IndexedKey(g, from), IndexedKey(g, next->last_index + 1));
    uint64_t new_end = next->log_end_offset;
    uint64_t freed = 0;
    SKIFF_RETURN_IF_ERROR(ScanOffsets(
        0, kMaxKey,
        [&](uint64_t base, const OffsetRow& row) {
          if (row.index < from) return false;
          new_end = base;
          freed += row.size_bytes;
          return true;
        },
        /*reverse=*/true));
    if (new_end < next->log_end_offset) {
      batch->DeleteRange(store_->offset_cf_, IndexedKey(g, new_end), IndexedKey(g, kMaxKey));
    }
    next->log_end_offset = new_end;
    next->size_bytes -= std::min(freed, next->size_bytes);
  }
  const EntryClassifier& classify = store_->options_.classifier;
  for (size_t i = skip; i < entries.size(); ++i) {
    const raft::Entry& e = entries[i];
    const EntryRecordInfo info = classify(e);
    const std::string key = IndexedKey(g, e.index);
    const std::string header = EncodeEntryHeader(e, next->log_end_offset, info);
    rocksdb::Slice key_part(key);
    rocksdb::Slice value_parts[2] = {rocksdb::Slice(header),
                                     rocksdb::Slice(e.data.data(), e.data.size())};
    batch->Put(store_->log_cf_, rocksdb::SliceParts(&key_part, 1),
               rocksdb::SliceParts(value_parts, 2));
    if (info.record_count > 0) {
      OffsetRow row{e.index, info.record_count, info.max_timestamp_ms,
                    static_cast<uint32_t>(e.data.size())};
      batch->Put(store_->offset_cf_, IndexedKey(g, next->log_end_offset),
                 Seal(EncodeOffsetRow(row)));
      next->log_end_offset += info.record_count;
      next->size_bytes += e.data.size();
    }
    next->last_index = e.index;
    next->last_term = e.term;
  }
  return Status::Ok();
}

Status PartitionLog::WriteAlone(const GroupWrite& gw) {
  return store_->Write(std::span<const GroupWrite>(&gw, 1));
}

Status PartitionLog::CommitBatch(rocksdb::WriteBatch* batch, State next) {
  SKIFF_RETURN_IF_ERROR(store_->Commit(batch, true));
  Install(std::move(next));
  return Status::Ok();
}

Status PartitionLog::Append(const std::vector<raft::Entry>& entries) {
  GroupWrite gw;
  gw.group = group_;
  gw.entries = entries;
  return WriteAlone(gw);
}

Status PartitionLog::SetHardState(const raft::HardState& hs) {
  GroupWrite gw;
  gw.group = group_;
  gw.hard_state = hs;
  return WriteAlone(gw);
}

Status PartitionLog::SetConfState(const raft::ConfState& cs) {
  GroupWrite gw;
  gw.group = group_;
  gw.conf_state = cs;
  return WriteAlone(gw);
}

Status PartitionLog::SetApplied(raft::Index applied) {
  GroupWrite gw;
  gw.group = group_;
  gw.applied = applied;
  return WriteAlone(gw);
}

Status PartitionLog::ApplySnapshot(const SnapshotWrite& snapshot) {
  GroupWrite gw;
  gw.group = group_;
  gw.snapshot = snapshot;
  return WriteAlone(gw);
}

Status PartitionLog::CreateSnapshot(raft::Index index, const raft::ConfState& conf, Bytes data) {
  WriterClaim claim(writing_);
  if (!claim.ok()) return ConcurrentWriter();
  State next = CopyState();
  if (index < next.snapshot.meta.index) {
    return OutOfRangeError("snapshot index " + Str(index) + " below current");
  }
  if (index > next.last_index) return OutOfRangeError("snapshot index beyond the log");
  if (index < next.meta.compacted_index) return OutOfRangeError("snapshot index compacted");
  StoredSnapshotMeta meta;
  meta.meta.index = index;
  meta.meta.conf = conf;
  if (index == next.meta.compacted_index) {
    meta.meta.term = next.meta.compacted_term;
    meta.next_offset = next.meta.log_start_offset;
  } else {
    SKIFF_ASSIGN_OR_RETURN(
        auto row, GetRow(store_->db_.get(), store_->log_cf_, IndexedKey(group_.value(), index)));
    if (!row) return CorruptionError("entry " + Str(index) + " missing");
    SKIFF_ASSIGN_OR_RETURN(std::string_view body, Unseal(*row, "log entry " + Str(index)));
    SKIFF_ASSIGN_OR_RETURN(StoredEntry stored, DecodeEntryBody(body, index));
    meta.meta.term = stored.entry.term;
    meta.next_offset = stored.base_offset + stored.info.record_count;
  }
  next.snapshot = meta;
  rocksdb::WriteBatch batch;
  batch.Put(store_->state_cf_, StateKey(group_.value(), StateTag::kSnapshotMeta),
            Seal(EncodeSnapshotMeta(meta)));
  batch.Put(store_->snapshot_cf_, GroupKey(group_.value()), Seal(data.view()));
  return CommitBatch(&batch, std::move(next));
}

Status PartitionLog::Compact(raft::Index index) {
  WriterClaim claim(writing_);
  if (!claim.ok()) return ConcurrentWriter();
  State next = CopyState();
  if (index <= next.meta.compacted_index) return Status::Ok();  // idempotent
  if (index > next.last_index) return OutOfRangeError("compact beyond the log");
  if (next.snapshot.meta.index < index) {
    return FailedPreconditionError("compact through " + Str(index) +
                                   " needs a snapshot covering it (latest at " +
                                   Str(next.snapshot.meta.index) + ")");
  }
  SKIFF_ASSIGN_OR_RETURN(raft::Term term, TermAt(index));
  uint64_t new_start = next.meta.log_start_offset;
  uint64_t freed = 0;
  SKIFF_RETURN_IF_ERROR(ScanOffsets(0, kMaxKey, [&](uint64_t base, const OffsetRow& row) {
    if (row.index > index) return false;
    new_start = base + row.record_count;
    freed += row.size_bytes;
    return true;
  }));
  const uint64_t g = group_.value();
  rocksdb::WriteBatch batch;
  batch.DeleteRange(store_->log_cf_, IndexedKey(g, 0), IndexedKey(g, index + 1));
  batch.DeleteRange(store_->offset_cf_, IndexedKey(g, 0), IndexedKey(g, new_start));
  next.meta = LogMeta{index, term, new_start};
  batch.Put(store_->state_cf_, StateKey(g, StateTag::kLogMeta), Seal(EncodeLogMeta(next.meta)));
  next.size_bytes -= std::min(freed, next.size_bytes);
  return CommitBatch(&batch, std::move(next));
}

// ---------------------------------------------------------------- offsets

Offset PartitionLog::LogStartOffset() const {
  std::lock_guard lock(mu_);
  return Offset(static_cast<int64_t>(state_.meta.log_start_offset));
}

Offset PartitionLog::LogEndOffset() const {
  std::lock_guard lock(mu_);
  return Offset(static_cast<int64_t>(state_.log_end_offset));
}

uint64_t PartitionLog::SizeBytes() const {
  std::lock_guard lock(mu_);
  return state_.size_bytes;
}

Result<OffsetLocation> PartitionLog::FindOffset(Offset offset) const {
  uint64_t start = 0, end = 0;
  {
    std::lock_guard lock(mu_);
    start = state_.meta.log_start_offset;
    end = state_.log_end_offset;
  }
  if (offset.value() < 0 || static_cast<uint64_t>(offset.value()) < start ||
      static_cast<uint64_t>(offset.value()) >= end) {
    return OutOfRangeError("offset " + std::to_string(offset.value()) + " outside [" + Str(start) +
                           "," + Str(end) + ")");
  }
  const uint64_t o = static_cast<uint64_t>(offset.value());
  std::optional<OffsetLocation> found;
  // The batch holding o is the last row whose base is <= o.
  SKIFF_RETURN_IF_ERROR(ScanOffsets(
      0, o + 1,
      [&](uint64_t base, const OffsetRow& row) {
        if (base + row.record_count > o) {
          found = OffsetLocation{row.index, Offset(static_cast<int64_t>(base)), row.record_count,
                                 row.max_timestamp_ms};
        }
        return false;
      },
      /*reverse=*/true));
  if (!found) return OutOfRangeError("offset " + Str(o) + " no longer stored");
  return *found;
}

Result<OffsetLocation> PartitionLog::FindTimestamp(int64_t timestamp_ms) const {
  std::optional<OffsetLocation> found;
  SKIFF_RETURN_IF_ERROR(ScanOffsets(0, kMaxKey, [&](uint64_t base, const OffsetRow& row) {
    if (row.max_timestamp_ms < timestamp_ms) return true;
    found = OffsetLocation{row.index, Offset(static_cast<int64_t>(base)), row.record_count,
                           row.max_timestamp_ms};
    return false;
  }));
  if (!found) return NotFoundError("no batch with timestamp >= " + std::to_string(timestamp_ms));
  return *found;
}

Result<RetentionCut> PartitionLog::ComputeRetention(const RetentionPolicy& policy,
                                                    int64_t now_ms) const {
  State st = CopyState();
  const raft::Index limit = std::min(st.hard_state.commit, st.last_index);
  RetentionCut cut;
  cut.new_log_start_offset = Offset(static_cast<int64_t>(st.meta.log_start_offset));
  uint64_t remaining = st.size_bytes;
  SKIFF_RETURN_IF_ERROR(ScanOffsets(0, kMaxKey, [&](uint64_t base, const OffsetRow& row) {
    if (row.index > limit) return false;
    const bool by_size = policy.retention_bytes && remaining > *policy.retention_bytes;
    // A batch without a timestamp (< 0) never expires by time.
    const bool by_time = policy.retention_ms && row.max_timestamp_ms >= 0 &&
                         row.max_timestamp_ms < now_ms - *policy.retention_ms;
    if (!by_size && !by_time) return false;
    cut.cut_through = row.index;
    cut.new_log_start_offset = Offset(static_cast<int64_t>(base + row.record_count));
    cut.bytes += row.size_bytes;
    remaining -= std::min<uint64_t>(row.size_bytes, remaining);
    return true;
  }));
  return cut;
}

}  // namespace skiff::storage
