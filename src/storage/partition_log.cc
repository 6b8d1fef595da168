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

// Adds one record batch to a span of the offset index.
void AddBatch(OffsetRow* span, raft::Index index, const EntryRecordInfo& info, uint64_t bytes) {
  if (span->record_count == 0) {
    *span = OffsetRow{index, index, 0, info.max_timestamp_ms, info.max_timestamp_ms, 0};
  }
  span->last_index = index;
  span->record_count += info.record_count;
  span->max_timestamp_ms = std::max(span->max_timestamp_ms, info.max_timestamp_ms);
  span->min_batch_timestamp_ms = std::min(span->min_batch_timestamp_ms, info.max_timestamp_ms);
  span->size_bytes += bytes;
}

OffsetLocation LocationOf(const StoredEntry& e) {
  return OffsetLocation{e.entry.index, Offset(static_cast<int64_t>(e.base_offset)),
                        e.info.record_count, e.info.max_timestamp_ms};
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

  // The last stored entry gives last index and term, and where the offsets end.
  std::optional<uint64_t> last_entry_end;
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
      uint64_t data_bytes = 0;
      SKIFF_ASSIGN_OR_RETURN(StoredEntry last,
                             DecodeEntryHeaderOnly(body, key->second, &data_bytes));
      st.last_term = last.entry.term;
      st.last_index = key->second;
      last_entry_end = last.base_offset + last.info.record_count;
    }
    SKIFF_RETURN_IF_ERROR(FromRocks(it->status(), "load last entry"));
  }
  if (st.last_index < st.meta.compacted_index) {
    return CorruptionError("group " + Str(g) + ": last index below compacted prefix");
  }

  // Offsets: the end and size from the rows, then the open span from the entries after them.
  uint64_t size = 0, end = st.meta.log_start_offset;
  raft::Index after_rows = st.meta.compacted_index;
  SKIFF_RETURN_IF_ERROR(ScanOffsets(0, kMaxKey, [&](uint64_t base, const OffsetRow& row) {
    size += row.size_bytes;
    end = base + row.record_count;
    after_rows = std::max(after_rows, row.last_index);
    return true;
  }));
  // Batches after the last row? (Not for a group whose entries take no offsets, like the
  // metadata group: its log is not read.)
  if (last_entry_end && *last_entry_end != end) {
    SKIFF_RETURN_IF_ERROR(
        SummarizeEntries(after_rows + 1, st.last_index + 1, &st.open, &st.open_base));
  }
  if (st.open.record_count > 0) {
    if (st.open_base != end) {
      return CorruptionError("group " + Str(g) + ": entry " + Str(st.open.first_index) +
                             " starts at offset " + Str(st.open_base) +
                             " but the offset index ends at " + Str(end));
    }
    size += st.open.size_bytes;
    end += st.open.record_count;
  }
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

Status PartitionLog::ForEachEntryBody(
    raft::Index lo, raft::Index hi,
    const std::function<Status(raft::Index, const Result<std::string_view>&, bool*)>& fn,
    bool from_first_stored) const {
  if (lo >= hi) return Status::Ok();
  const uint64_t g = group_.value();
  const std::string lower = IndexedKey(g, lo), upper = IndexedKey(g, hi);
  rocksdb::Slice lo_slice(lower), hi_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_lower_bound = &lo_slice;
  ro.iterate_upper_bound = &hi_slice;
  std::unique_ptr<rocksdb::Iterator> it(store_->db_->NewIterator(ro, store_->log_cf_));
  raft::Index expected = lo;
  for (it->SeekToFirst(); it->Valid(); it->Next(), ++expected) {
    auto key = DecodeIndexedKey(std::string_view(it->key().data(), it->key().size()));
    if (!key || key->first != g) return CorruptionError("log key malformed");
    if (from_first_stored && expected == lo) expected = key->second;
    if (key->second != expected) {
      // Only a concurrent compaction (at the front) or truncation can make a hole.
      return OutOfRangeError("entry " + Str(expected) + " no longer stored");
    }
    bool stop = false;
    SKIFF_RETURN_IF_ERROR(fn(expected,
                             Unseal(std::string_view(it->value().data(), it->value().size()),
                                    "log entry " + Str(expected)),
                             &stop));
    if (stop) return FromRocks(it->status(), "read entries");
  }
  SKIFF_RETURN_IF_ERROR(FromRocks(it->status(), "read entries"));
  if (from_first_stored && expected == lo) return Status::Ok();  // all of it compacted
  if (expected != hi) return OutOfRangeError("entry " + Str(expected) + " no longer stored");
  return Status::Ok();
}

Status PartitionLog::ScanEntryHeaders(
    raft::Index lo, raft::Index hi,
    const std::function<bool(const StoredEntry&, uint64_t)>& fn) const {
  return ForEachEntryBody(
      lo, hi, [&](raft::Index i, const Result<std::string_view>& body, bool* stop) -> Status {
        if (!body.ok()) return body.status();
        uint64_t data_bytes = 0;
        SKIFF_ASSIGN_OR_RETURN(StoredEntry stored, DecodeEntryHeaderOnly(*body, i, &data_bytes));
        *stop = !fn(stored, data_bytes);
        return Status::Ok();
      });
}

Status PartitionLog::SummarizeEntries(raft::Index lo, raft::Index hi, OffsetRow* span,
                                      uint64_t* base) const {
  *span = OffsetRow{};
  *base = 0;
  return ScanEntryHeaders(lo, hi, [&](const StoredEntry& e, uint64_t data_bytes) {
    if (e.info.record_count == 0) return true;
    if (span->record_count == 0) *base = e.base_offset;
    AddBatch(span, e.entry.index, e.info, data_bytes);
    return true;
  });
}

Result<std::optional<OffsetLocation>> PartitionLog::FindInSpan(
    const OffsetRow& span, uint64_t base, const std::function<bool(const StoredEntry&)>& match,
    bool skip_damaged) const {
  std::optional<OffsetLocation> found;
  if (span.first_index == span.last_index) {
    // A span of one batch (every batch of 16 KiB or more) is answered by its row alone.
    StoredEntry only;
    only.entry.index = span.first_index;
    only.base_offset = base;
    only.info = EntryRecordInfo{span.record_count, span.max_timestamp_ms};
    if (match(only)) found = LocationOf(only);
    return found;
  }
  // Readers race the writer: a compaction may have cut the span's front since it was read
  // (the rest is still served). A damaged entry must not hide the batches after it when they
  // are matched by offset (their own headers decide); by timestamp it could be the first
  // match, so it fails the lookup.
  Status damaged;
  Status scanned = ForEachEntryBody(
      span.first_index, span.last_index + 1,
      [&](raft::Index i, const Result<std::string_view>& body, bool* stop) -> Status {
        uint64_t data_bytes = 0;
        auto stored = body.ok() ? DecodeEntryHeaderOnly(*body, i, &data_bytes)
                                : Result<StoredEntry>(body.status());
        if (!stored.ok()) {
          if (!skip_damaged) return stored.status();
          if (damaged.ok()) damaged = stored.status();
          return Status::Ok();
        }
        if (stored->info.record_count == 0 || !match(*stored)) return Status::Ok();
        found = LocationOf(*stored);
        *stop = true;
        return Status::Ok();
      },
      /*from_first_stored=*/true);
  if (found) return found;
  SKIFF_RETURN_IF_ERROR(damaged);
  SKIFF_RETURN_IF_ERROR(scanned);
  return found;
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
  uint64_t bytes = 0;
  SKIFF_RETURN_IF_ERROR(ForEachEntryBody(
      lo, hi, [&](raft::Index i, const Result<std::string_view>& body, bool* stop) -> Status {
        if (!body.ok()) return body.status();
        SKIFF_ASSIGN_OR_RETURN(StoredEntry stored, DecodeEntryBody(*body, i));
        const uint64_t size = stored.entry.SizeBytes();
        if (!out.empty() && bytes + size > max_bytes) {
          *stop = true;
          return Status::Ok();
        }
        bytes += size;
        out.push_back(std::move(stored.entry));
        return Status::Ok();
      }));
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
    next->open = OffsetRow{};
    next->open_base = 0;
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
  if (from <= next->last_index) SKIFF_RETURN_IF_ERROR(PrepareTruncate(from, batch, next));
  const EntryClassifier& classify = store_->options_.classifier;
  const uint64_t interval = store_->options_.offset_index_interval_bytes;
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
      if (next->open.record_count == 0) next->open_base = next->log_end_offset;
      AddBatch(&next->open, e.index, info, e.data.size());
      next->log_end_offset += info.record_count;
      next->size_bytes += e.data.size();
      if (next->open.size_bytes >= interval) {
        batch->Put(store_->offset_cf_, IndexedKey(g, next->open_base),
                   Seal(EncodeOffsetRow(next->open)));
        next->open = OffsetRow{};
      }
    }
    next->last_index = e.index;
    next->last_term = e.term;
  }
  return Status::Ok();
}

Status PartitionLog::PrepareTruncate(raft::Index from, rocksdb::WriteBatch* batch,
                                     State* next) const {
  const uint64_t g = group_.value();
  batch->DeleteRange(store_->log_cf_, IndexedKey(g, from), IndexedKey(g, next->last_index + 1));
  // The rows all precede the open span. If the open span starts before `from`, only its tail
  // goes and the rows stay.
  const OffsetRow old_open = next->open;
  if (old_open.record_count > 0) {
    next->size_bytes -= std::min(old_open.size_bytes, next->size_bytes);
    next->log_end_offset = next->open_base;
    next->open = OffsetRow{};
    if (old_open.first_index < from) {
      uint64_t base = 0;
      SKIFF_RETURN_IF_ERROR(SummarizeEntries(old_open.first_index, from, &next->open, &base));
      next->size_bytes += next->open.size_bytes;
      next->log_end_offset += next->open.record_count;
      return Status::Ok();
    }
  }
  // Rows reaching `from` go; the batches of the first of them that precede `from` become the
  // open span again.
  uint64_t cut_base = kMaxKey;
  std::optional<OffsetRow> straddling;
  SKIFF_RETURN_IF_ERROR(ScanOffsets(
      0, kMaxKey,
      [&](uint64_t base, const OffsetRow& row) {
        if (row.last_index < from) return false;
        cut_base = base;
        next->size_bytes -= std::min(row.size_bytes, next->size_bytes);
        if (row.first_index < from) straddling = row;
        return true;
      },
      /*reverse=*/true));
  if (cut_base == kMaxKey) return Status::Ok();
  batch->DeleteRange(store_->offset_cf_, IndexedKey(g, cut_base), IndexedKey(g, kMaxKey));
  next->log_end_offset = cut_base;
  if (straddling) {
    // Its batches before `from` keep a row (a shorter one), so that a reader holding the state
    // from before this write still finds them through the index.
    OffsetRow kept;
    uint64_t base = 0;
    SKIFF_RETURN_IF_ERROR(SummarizeEntries(straddling->first_index, from, &kept, &base));
    if (kept.record_count == 0 || base != cut_base) {
      return CorruptionError("group " + Str(g) + ": offset row of entries " +
                             Str(straddling->first_index) + ".." + Str(straddling->last_index) +
                             " does not match the entries before " + Str(from));
    }
    batch->Put(store_->offset_cf_, IndexedKey(g, cut_base), Seal(EncodeOffsetRow(kept)));
    next->size_bytes += kept.size_bytes;
    next->log_end_offset += kept.record_count;
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
  const uint64_t g = group_.value();
  // The entry at index says where the offsets after it start.
  SKIFF_ASSIGN_OR_RETURN(auto entry_row,
                         GetRow(store_->db_.get(), store_->log_cf_, IndexedKey(g, index)));
  if (!entry_row) return CorruptionError("entry " + Str(index) + " missing");
  SKIFF_ASSIGN_OR_RETURN(std::string_view body, Unseal(*entry_row, "log entry " + Str(index)));
  uint64_t data_bytes = 0;
  SKIFF_ASSIGN_OR_RETURN(StoredEntry last_cut, DecodeEntryHeaderOnly(body, index, &data_bytes));
  const uint64_t new_start = last_cut.base_offset + last_cut.info.record_count;

  rocksdb::WriteBatch batch;
  uint64_t freed = 0;
  // Rows wholly compacted go; a row reaching past index is cut down to its batches after it.
  std::optional<OffsetRow> straddling;
  SKIFF_RETURN_IF_ERROR(ScanOffsets(0, kMaxKey, [&](uint64_t, const OffsetRow& row) {
    if (row.first_index > index) return false;
    if (row.last_index > index) straddling = row;
    freed += row.size_bytes;
    return row.last_index <= index;
  }));
  batch.DeleteRange(store_->offset_cf_, IndexedKey(g, 0), IndexedKey(g, new_start));
  if (straddling) {
    OffsetRow rest;
    uint64_t base = 0;
    SKIFF_RETURN_IF_ERROR(SummarizeEntries(index + 1, straddling->last_index + 1, &rest, &base));
    if (rest.record_count == 0 || base != new_start) {
      return CorruptionError("group " + Str(g) + ": offset row of entries " +
                             Str(straddling->first_index) + ".." + Str(straddling->last_index) +
                             " does not match the entries after " + Str(index));
    }
    batch.Put(store_->offset_cf_, IndexedKey(g, new_start), Seal(EncodeOffsetRow(rest)));
    freed -= std::min(rest.size_bytes, freed);
  } else if (next.open.record_count > 0 && next.open.first_index <= index) {
    // The open span reaches into the compacted prefix (no row does).
    freed += next.open.size_bytes;
    const OffsetRow old_open = next.open;
    uint64_t base = 0;
    if (old_open.last_index > index) {
      SKIFF_RETURN_IF_ERROR(
          SummarizeEntries(index + 1, old_open.last_index + 1, &next.open, &base));
      next.open_base = base;
      freed -= std::min(next.open.size_bytes, freed);
    } else {
      next.open = OffsetRow{};
    }
  }
  batch.DeleteRange(store_->log_cf_, IndexedKey(g, 0), IndexedKey(g, index + 1));
  next.meta = LogMeta{index, last_cut.entry.term, new_start};
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
  uint64_t start = 0, end = 0, open_base = 0;
  OffsetRow open;
  {
    std::lock_guard lock(mu_);
    start = state_.meta.log_start_offset;
    end = state_.log_end_offset;
    open = state_.open;
    open_base = state_.open_base;
  }
  if (offset.value() < 0 || static_cast<uint64_t>(offset.value()) < start ||
      static_cast<uint64_t>(offset.value()) >= end) {
    return OutOfRangeError("offset " + std::to_string(offset.value()) + " outside [" + Str(start) +
                           "," + Str(end) + ")");
  }
  const uint64_t o = static_cast<uint64_t>(offset.value());
  std::optional<OffsetRow> span;
  uint64_t span_base = 0;
  if (open.record_count > 0 && open_base <= o && o < open_base + open.record_count) {
    span = open;
    span_base = open_base;
  } else {
    // The span holding o is the last row whose base is <= o.
    SKIFF_RETURN_IF_ERROR(ScanOffsets(
        0, o + 1,
        [&](uint64_t base, const OffsetRow& row) {
          if (base + row.record_count > o) span = row, span_base = base;
          return false;
        },
        /*reverse=*/true));
  }
  if (span) {
    auto in_batch = [o](const StoredEntry& e) {
      return e.base_offset <= o && o < e.base_offset + e.info.record_count;
    };
    SKIFF_ASSIGN_OR_RETURN(auto found,
                           FindInSpan(*span, span_base, in_batch, /*skip_damaged=*/true));
    if (found) return *found;
  }
  return OutOfRangeError("offset " + Str(o) + " no longer stored");
}

Result<OffsetLocation> PartitionLog::FindTimestamp(int64_t timestamp_ms) const {
  OffsetRow open;  // copied before the rows are read: a span sealed meanwhile is then a row
  uint64_t open_base = 0;
  {
    std::lock_guard lock(mu_);
    open = state_.open;
    open_base = state_.open_base;
  }
  auto match = [timestamp_ms](const StoredEntry& e) {
    return e.info.max_timestamp_ms >= timestamp_ms;
  };
  std::optional<OffsetLocation> found;
  Status in_span;
  SKIFF_RETURN_IF_ERROR(ScanOffsets(0, kMaxKey, [&](uint64_t base, const OffsetRow& row) {
    if (row.max_timestamp_ms < timestamp_ms) return true;
    auto f = FindInSpan(row, base, match, /*skip_damaged=*/false);
    if (!f.ok()) {
      in_span = f.status();
      return false;
    }
    found = *f;
    return !found;
  }));
  SKIFF_RETURN_IF_ERROR(in_span);
  if (!found && open.record_count > 0 && open.max_timestamp_ms >= timestamp_ms) {
    SKIFF_ASSIGN_OR_RETURN(found, FindInSpan(open, open_base, match, /*skip_damaged=*/false));
  }
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
  // Batch by batch, in order: a batch goes while the log holds more than retention_bytes, or
  // while its max timestamp is older than retention_ms (a batch without one never expires by
  // time); never past the commit index. A span goes whole when all its batches would.
  auto cut_batch = [&](const StoredEntry& e, uint64_t bytes) {
    if (e.entry.index > limit) return false;
    if (e.info.record_count == 0) return true;
    const bool by_size = policy.retention_bytes && remaining > *policy.retention_bytes;
    const bool by_time = policy.retention_ms && e.info.max_timestamp_ms >= 0 &&
                         e.info.max_timestamp_ms < now_ms - *policy.retention_ms;
    if (!by_size && !by_time) return false;
    cut.cut_through = e.entry.index;
    cut.new_log_start_offset = Offset(static_cast<int64_t>(e.base_offset + e.info.record_count));
    cut.bytes += bytes;
    remaining -= std::min<uint64_t>(bytes, remaining);
    return true;
  };
  bool stopped = false;
  auto cut_span = [&](uint64_t base, const OffsetRow& span) -> Status {
    if (span.first_index > limit) {
      stopped = true;
      return Status::Ok();
    }
    const bool all_by_size = policy.retention_bytes && span.last_index <= limit &&
                             remaining > span.size_bytes + *policy.retention_bytes;
    const bool all_by_time = policy.retention_ms && span.last_index <= limit &&
                             span.min_batch_timestamp_ms >= 0 &&
                             span.max_timestamp_ms < now_ms - *policy.retention_ms;
    if (all_by_size || all_by_time) {
      cut.cut_through = span.last_index;
      cut.new_log_start_offset = Offset(static_cast<int64_t>(base + span.record_count));
      cut.bytes += span.size_bytes;
      remaining -= std::min<uint64_t>(span.size_bytes, remaining);
      return Status::Ok();
    }
    bool whole = true;
    SKIFF_RETURN_IF_ERROR(ScanEntryHeaders(span.first_index, span.last_index + 1,
                                           [&](const StoredEntry& e, uint64_t bytes) {
                                             whole = cut_batch(e, bytes);
                                             return whole;
                                           }));
    stopped = !whole;
    return Status::Ok();
  };
  Status scan_error;
  SKIFF_RETURN_IF_ERROR(ScanOffsets(0, kMaxKey, [&](uint64_t base, const OffsetRow& row) {
    // A row written after the copy of the state is its open span: taken below.
    if (st.open.record_count > 0 && row.first_index >= st.open.first_index) return false;
    scan_error = cut_span(base, row);
    return scan_error.ok() && !stopped;
  }));
  SKIFF_RETURN_IF_ERROR(scan_error);
  if (!stopped && st.open.record_count > 0) SKIFF_RETURN_IF_ERROR(cut_span(st.open_base, st.open));
  return cut;
}

}  // namespace skiff::storage
