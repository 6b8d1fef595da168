// Randomized differential test: PartitionLog must behave like raft::MemoryLogStorage for the
// same sequence of operations (append with conflicting suffixes, hard state, snapshots created
// and installed, compaction), including across reopen. Seeded; a failure prints its seed.
#include <random>

#include <gtest/gtest.h>

#include "raft/memory_log_storage.h"
#include "storage/log_store.h"
#include "storage/partition_log.h"
#include "storage_test_util.h"

namespace skiff::storage {
namespace {

using testing::MakeEntry;

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
        std::string data = noop ? "" : std::string(rng() % 60 + 1, static_cast<char>('a' + k));
        entries.push_back(MakeEntry(
            from + k, term, data, conf ? raft::EntryType::kConfChange : raft::EntryType::kNormal));
      }
      Status a = mem.Append(entries);
      Status b = log->Append(entries);
      ASSERT_EQ(a.code(), b.code()) << what << " " << b.ToString();
    } else if (op < 65) {
      raft::HardState hs{term, rng() % 3, mem.LastIndex() == 0 ? 0 : rng() % mem.LastIndex()};
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
      Status a = mem.ApplySnapshot(snap);
      Status b = log->ApplySnapshot(SnapshotWrite{snap, 0});
      ASSERT_EQ(a.code(), b.code()) << what;
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
    // Offsets never go backwards past the log start and stay within the stored batches.
    ASSERT_LE(log->LogStartOffset(), log->LogEndOffset());
  }
}

TEST(DifferentialTest, PartitionLogMatchesMemoryLogStorage) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    RunSeed(seed);
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace skiff::storage
