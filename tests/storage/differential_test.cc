// Randomized differential test: PartitionLog must behave like raft::MemoryLogStorage for the
// same sequence of operations (append with conflicting suffixes, hard state, snapshots created
// and installed, compaction), including across reopen. Its offsets (the sparse offset index)
// must answer like a plain list of every batch: offset and timestamp lookups, start, end, size
// and retention cuts. Seeded; a failure prints its seed.
#include <random>

#include <gtest/gtest.h>

#include "raft/memory_log_storage.h"
#include "storage/log_store.h"
#include "storage/partition_log.h"
#include "storage_test_util.h"

namespace skiff::storage {
namespace {

using testing::BatchPayload;
using testing::MakeEntry;

// One record batch as the reference model sees it.
struct ModelBatch {
  raft::Index index;
  uint64_t base;
  uint32_t count;
  int64_t max_ts;
  uint64_t size;
};

std::vector<ModelBatch> ModelBatches(const raft::MemoryLogStorage& mem, uint64_t start) {
  std::vector<ModelBatch> out;
  if (mem.LastIndex() < mem.FirstIndex()) return out;
  auto entries = mem.Entries(mem.FirstIndex(), mem.LastIndex() + 1, UINT64_MAX);
  EXPECT_TRUE(entries.ok());
  uint64_t next = start;
  for (const raft::Entry& e : *entries) {
    const EntryRecordInfo info = testing::TestClassifier(e);
    if (info.record_count == 0) continue;
    out.push_back({e.index, next, info.record_count, info.max_timestamp_ms, e.data.size()});
    next += info.record_count;
  }
  return out;
}

// The retention rule, batch by batch (what the sparse index must reproduce exactly).
RetentionCut ModelRetention(const std::vector<ModelBatch>& batches, uint64_t start,
                            raft::Index limit, const RetentionPolicy& policy, int64_t now_ms) {
  RetentionCut cut;
  cut.new_log_start_offset = Offset(static_cast<int64_t>(start));
  uint64_t remaining = 0;
  for (const ModelBatch& b : batches) remaining += b.size;
  for (const ModelBatch& b : batches) {
    if (b.index > limit) break;
    const bool by_size = policy.retention_bytes && remaining > *policy.retention_bytes;
    const bool by_time =
        policy.retention_ms && b.max_ts >= 0 && b.max_ts < now_ms - *policy.retention_ms;
    if (!by_size && !by_time) break;
    cut.cut_through = b.index;
    cut.new_log_start_offset = Offset(static_cast<int64_t>(b.base + b.count));
    cut.bytes += b.size;
    remaining -= std::min(b.size, remaining);
  }
  return cut;
}

void ExpectSameOffsets(const raft::MemoryLogStorage& mem, uint64_t start, const PartitionLog& log,
                       std::mt19937_64& rng, const std::string& where) {
  SCOPED_TRACE(where);
  const std::vector<ModelBatch> batches = ModelBatches(mem, start);
  uint64_t end = start, size = 0;
  for (const ModelBatch& b : batches) end = b.base + b.count, size += b.size;
  ASSERT_EQ(log.LogStartOffset().value(), static_cast<int64_t>(start));
  ASSERT_EQ(log.LogEndOffset().value(), static_cast<int64_t>(end));
  ASSERT_EQ(log.SizeBytes(), size);
  for (uint64_t o = start > 0 ? start - 1 : 0; o <= end; ++o) {
    auto found = log.FindOffset(Offset(static_cast<int64_t>(o)));
    const ModelBatch* want = nullptr;
    for (const ModelBatch& b : batches) {
      if (b.base <= o && o < b.base + b.count) want = &b;
    }
    ASSERT_EQ(found.ok(), want != nullptr)
        << "FindOffset " << o << " " << found.status().ToString();
    if (want) {
      ASSERT_EQ(found->index, want->index) << "FindOffset " << o;
      ASSERT_EQ(found->base_offset.value(), static_cast<int64_t>(want->base));
      ASSERT_EQ(found->record_count, want->count);
      ASSERT_EQ(found->max_timestamp_ms, want->max_ts);
    } else {
      ASSERT_EQ(found.status().code(), StatusCode::kOutOfRange);
    }
  }
  for (int64_t ts : {int64_t{0}, int64_t{1000}, int64_t{1100} + static_cast<int64_t>(rng() % 400),
                     int64_t{1500}, int64_t{2000}}) {
    auto found = log.FindTimestamp(ts);
    const ModelBatch* want = nullptr;
    for (const ModelBatch& b : batches) {
      if (b.max_ts >= ts) {
        want = &b;
        break;
      }
    }
    ASSERT_EQ(found.ok(), want != nullptr) << "FindTimestamp " << ts;
    if (want) {
      ASSERT_EQ(found->index, want->index) << "FindTimestamp " << ts;
    } else {
      ASSERT_EQ(found.status().code(), StatusCode::kNotFound);
    }
  }
  for (int k = 0; k < 4; ++k) {
    RetentionPolicy policy;
    if (rng() % 2) policy.retention_bytes = rng() % (size + 100);
    if (rng() % 2) policy.retention_ms = static_cast<int64_t>(rng() % 600);
    const int64_t now_ms = 1600;
    const raft::Index limit = std::min(mem.hard_state().commit, mem.LastIndex());
    auto got = log.ComputeRetention(policy, now_ms);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    const RetentionCut want = ModelRetention(batches, start, limit, policy, now_ms);
    ASSERT_EQ(got->cut_through, want.cut_through) << "retention " << k;
    ASSERT_EQ(got->new_log_start_offset, want.new_log_start_offset) << "retention " << k;
    ASSERT_EQ(got->bytes, want.bytes) << "retention " << k;
  }
}

void ExpectSame(const raft::MemoryLogStorage& mem, const PartitionLog& log, std::mt19937_64& rng,
                const std::string& where) {
  SCOPED_TRACE(where);
  ASSERT_EQ(mem.FirstIndex(), log.FirstIndex());
  ASSERT_EQ(mem.LastIndex(), log.LastIndex());
  for (raft::Index i = mem.FirstIndex() - 1; i <= mem.LastIndex() + 1; ++i) {
    auto a = mem.TermAt(i);
    auto b = log.TermAt(i);
    ASSERT_EQ(a.ok(), b.ok()) << "TermAt " << i;
    if (a.ok()) {
      ASSERT_EQ(*a, *b) << "TermAt " << i;
    }
  }
  if (mem.FirstIndex() > 1) {
    EXPECT_EQ(log.TermAt(mem.FirstIndex() - 2).status().code(), StatusCode::kOutOfRange);
  }
  const uint64_t max_bytes = std::uniform_int_distribution<uint64_t>(0, 400)(rng);
  for (raft::Index lo = mem.FirstIndex() > 1 ? mem.FirstIndex() - 1 : 1; lo <= mem.LastIndex() + 1;
       lo += 1 + rng() % 3) {
    const raft::Index hi = lo + rng() % (mem.LastIndex() + 2 - lo + 1);
    auto a = mem.Entries(lo, hi, max_bytes);
    auto b = log.Entries(lo, hi, max_bytes);
    ASSERT_EQ(a.ok(), b.ok()) << "Entries " << lo << "," << hi;
    if (a.ok()) {
      ASSERT_EQ(*a, *b) << "Entries " << lo << "," << hi;
    } else {
      ASSERT_EQ(a.status().code(), b.status().code());
    }
  }
  ASSERT_EQ(*mem.GetSnapshot(), *log.GetSnapshot());
  ASSERT_EQ(mem.GetInitialState()->hard_state, log.GetInitialState()->hard_state);
  ASSERT_EQ(mem.GetInitialState()->conf_state, log.GetInitialState()->conf_state);
}

void RunSeed(uint64_t seed) {
  SCOPED_TRACE("reproduce with seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  testing::TempDir dir;
  LogStoreOptions options;
  options.sync_policy = SyncPolicy::kNever;  // durability is the crash test's job
  options.min_blob_size_bytes = 16;          // exercise blob files with small entries too
  options.classifier = testing::TestClassifier;
  // A row per batch, or spans of a few batches (payloads are 1-70 bytes).
  const uint64_t intervals[] = {0, 1, 64, 200};
  options.offset_index_interval_bytes = intervals[seed % 4];
  auto open = [&]() {
    auto s = LogStore::Open(dir.path(), options);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return std::move(s).value();
  };
  std::unique_ptr<LogStore> store = open();
  PartitionLog* log = *store->Group(RaftGroupId(seed % 5));
  raft::MemoryLogStorage mem;
  raft::Term term = 1;
  uint64_t snap_counter = 0;
  uint64_t start_offset = 0;  // the model's log start offset

  for (int step = 0; step < 200; ++step) {
    const int op = static_cast<int>(rng() % 100);
    std::string what = "step " + std::to_string(step) + " op " + std::to_string(op);
    if (op < 55) {
      // Append from a random point in [first-2, last+1] (below first: partly compacted).
      if (rng() % 4 == 0) ++term;
      const raft::Index last = mem.LastIndex();
      const raft::Index lo_min = mem.FirstIndex() > 2 ? mem.FirstIndex() - 2 : 1;
      raft::Index from = rng() % 3 == 0 ? lo_min + rng() % (last + 2 - lo_min) : last + 1;
      if (rng() % 20 == 0) from = last + 2;  // a gap: both must refuse
      std::vector<raft::Entry> entries;
      const int n = static_cast<int>(rng() % 6);
      for (int k = 0; k < n; ++k) {
        const bool noop = rng() % 8 == 0;
        const bool conf = rng() % 10 == 0;
        // 0-3 records (0: a batch that takes no offsets), a timestamp or none (-1).
        const int64_t ts = rng() % 5 == 0 ? -1 : 1000 + static_cast<int64_t>(rng() % 500);
        std::string data =
            noop ? ""
                 : BatchPayload(static_cast<uint32_t>(rng() % 4), ts,
                                std::string(rng() % 60 + 1, static_cast<char>('a' + k)));
        entries.push_back(MakeEntry(
            from + k, term, data, conf ? raft::EntryType::kConfChange : raft::EntryType::kNormal));
      }
      Status a = mem.Append(entries);
      Status b = log->Append(entries);
      ASSERT_EQ(a.code(), b.code()) << what << " " << b.ToString();
    } else if (op < 65) {
      raft::HardState hs{term, rng() % 3, mem.LastIndex() == 0 ? 0 : rng() % (mem.LastIndex() + 1)};
      mem.SetHardState(hs);
      ASSERT_TRUE(log->SetHardState(hs).ok());
    } else if (op < 80) {
      // Snapshot then compact, at a random point of the stored log.
      if (mem.LastIndex() + 1 < mem.FirstIndex()) continue;
      const raft::Index lo = mem.FirstIndex() - 1;
      const raft::Index at = lo + rng() % (mem.LastIndex() - lo + 1);
      if (at == 0) continue;  // a snapshot of nothing: MemoryLogStorage keeps its data, we don't
      raft::ConfState conf{{1, 2, 3}, {}};
      Bytes data(std::string("snap") + std::to_string(++snap_counter));
      Status a = mem.CreateSnapshot(at, conf, data);
      Status b = log->CreateSnapshot(at, conf, data);
      ASSERT_EQ(a.code(), b.code()) << what;
      if (a.ok() && rng() % 2 == 0) {
        for (const ModelBatch& b : ModelBatches(mem, start_offset)) {
          if (b.index <= at) start_offset = b.base + b.count;
        }
        ASSERT_TRUE(mem.Compact(at).ok());
        ASSERT_TRUE(log->Compact(at).ok()) << what;
      }
    } else if (op < 85) {
      // A snapshot from a leader, sometimes older than ours.
      raft::Snapshot snap;
      snap.meta.index = mem.LastIndex() + 1 + rng() % 10;
      if (rng() % 4 == 0 && snap.meta.index > 5) snap.meta.index -= 5;
      snap.meta.term = term;
      snap.meta.conf = raft::ConfState{{1, 2}, {3}};
      snap.data = Bytes(std::string("leader") + std::to_string(step));
      const uint64_t next_offset = rng() % 3 == 0 ? 0 : rng() % 1000;
      Status a = mem.ApplySnapshot(snap);
      Status b = log->ApplySnapshot(SnapshotWrite{snap, next_offset});
      ASSERT_EQ(a.code(), b.code()) << what;
      if (a.ok()) start_offset = next_offset;
    } else if (op < 90) {
      raft::ConfState cs{{1, 2, 3, rng() % 9 + 4}, {}};
      mem.SetConfState(cs);
      ASSERT_TRUE(log->SetConfState(cs).ok());
    } else if (op < 95) {
      store.reset();
      store = open();
      log = *store->Group(RaftGroupId(seed % 5));
      what += " (after reopen)";
    } else {
      ASSERT_TRUE(store->FlushAll().ok());
    }
    ExpectSame(mem, *log, rng, what);
    if (::testing::Test::HasFatalFailure()) return;
    ExpectSameOffsets(mem, start_offset, *log, rng, what);
    if (::testing::Test::HasFatalFailure()) return;
    // Offsets never go backwards past the log start and stay within the stored batches.
    ASSERT_LE(log->LogStartOffset(), log->LogEndOffset());
  }
}

TEST(DifferentialTest, PartitionLogMatchesMemoryLogStorage) {
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    RunSeed(seed);
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace skiff::storage
