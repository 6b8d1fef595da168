// Unit tests of PartitionLog / LogStore: every operation, with truncation and compaction edges,
// persistence across reopen, offsets, retention, group commit and the metadata family.
#include "storage/partition_log.h"

#include <thread>

#include <gtest/gtest.h>

#include "storage/log_store.h"
#include "storage_test_util.h"

namespace skiff::storage {
namespace {

using testing::BatchPayload;
using testing::MakeEntries;
using testing::MakeEntry;
using testing::TempDir;

class PartitionLogTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen() {
    store_.reset();
    LogStoreOptions options;
    options.classifier = testing::TestClassifier;
    auto opened = LogStore::Open(dir_.path(), options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
    log_ = Group(1);
  }

  PartitionLog* Group(uint64_t id) {
    auto g = store_->Group(RaftGroupId(id));
    EXPECT_TRUE(g.ok()) << g.status().ToString();
    return g.ok() ? *g : nullptr;
  }

  std::vector<raft::Entry> All(PartitionLog* log) {
    auto es = log->Entries(log->FirstIndex(), log->LastIndex() + 1, UINT64_MAX);
    EXPECT_TRUE(es.ok()) << es.status().ToString();
    return es.ok() ? *es : std::vector<raft::Entry>{};
  }

  // Appends one batch entry of `records` records with max timestamp ts.
  void AppendBatch(raft::Index index, raft::Term term, uint32_t records, int64_t ts) {
    ASSERT_TRUE(log_->Append({MakeEntry(index, term,
                                        BatchPayload(records, ts, "x" + std::to_string(index)))})
                    .ok());
  }

  TempDir dir_;
  std::unique_ptr<LogStore> store_;
  PartitionLog* log_ = nullptr;
};

TEST_F(PartitionLogTest, EmptyLog) {
  EXPECT_EQ(log_->FirstIndex(), 1u);
  EXPECT_EQ(log_->LastIndex(), 0u);
  EXPECT_EQ(*log_->TermAt(0), 0u);
  EXPECT_EQ(log_->TermAt(1).status().code(), StatusCode::kOutOfRange);
  EXPECT_TRUE(log_->Entries(1, 1, 100)->empty());
  EXPECT_EQ(log_->Entries(1, 2, 100).status().code(), StatusCode::kOutOfRange);
  EXPECT_TRUE(log_->GetSnapshot()->empty());
  EXPECT_EQ(log_->LogStartOffset(), Offset(0));
  EXPECT_EQ(log_->LogEndOffset(), Offset(0));
  EXPECT_EQ(log_->FindOffset(Offset(0)).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(log_->FindTimestamp(0).status().code(), StatusCode::kNotFound);
}

TEST_F(PartitionLogTest, AppendReadAndMaxBytes) {
  auto entries = MakeEntries(1, 10, 1);
  ASSERT_TRUE(log_->Append(entries).ok());
  EXPECT_EQ(log_->LastIndex(), 10u);
  EXPECT_EQ(All(log_), entries);
  EXPECT_EQ(*log_->TermAt(5), 1u);
  // max_bytes: at least one entry, then stop before exceeding.
  const uint64_t one = entries[0].SizeBytes();
  EXPECT_EQ(log_->Entries(1, 11, 0)->size(), 1u);
  EXPECT_EQ(log_->Entries(1, 11, one * 3)->size(), 3u);
  EXPECT_EQ(log_->Entries(3, 5, UINT64_MAX)->front().index, 3u);
  EXPECT_EQ(log_->Entries(1, 12, UINT64_MAX).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(log_->Entries(5, 4, UINT64_MAX).status().code(), StatusCode::kOutOfRange);
  // Contiguity and gaps.
  EXPECT_EQ(log_->Append({MakeEntry(12, 1, "gap")}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(log_->Append({MakeEntry(11, 1, "a"), MakeEntry(13, 1, "b")}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(log_->LastIndex(), 10u);
}

TEST_F(PartitionLogTest, StatePersistsAcrossReopen) {
  auto entries = MakeEntries(1, 5, 2);
  entries.push_back(MakeEntry(6, 3, "", raft::EntryType::kNormal));  // leader no-op
  entries.push_back(MakeEntry(7, 3, "cc", raft::EntryType::kConfChange));
  GroupWrite gw;
  gw.group = RaftGroupId(1);
  gw.entries = entries;
  gw.hard_state = raft::HardState{3, 2, 5};
  gw.conf_state = raft::ConfState{{1, 2, 3}, {4}};
  gw.applied = 4;
  ASSERT_TRUE(store_->Write({&gw, 1}).ok());
  Reopen();
  EXPECT_EQ(All(log_), entries);
  EXPECT_EQ(log_->LastTerm(), 3u);
  auto init = log_->GetInitialState();
  EXPECT_EQ(init->hard_state, (raft::HardState{3, 2, 5}));
  EXPECT_EQ(init->conf_state, (raft::ConfState{{1, 2, 3}, {4}}));
  EXPECT_EQ(log_->Applied(), 4u);
  EXPECT_EQ(log_->LogEndOffset(), Offset(5));  // no-op and conf change take no offsets
}

TEST_F(PartitionLogTest, TruncateConflictingSuffixFixesOffsets) {
  for (raft::Index i = 1; i <= 6; ++i) AppendBatch(i, 1, 10, 100 * static_cast<int64_t>(i));
  EXPECT_EQ(log_->LogEndOffset(), Offset(60));
  EXPECT_EQ(log_->SizeBytes(), All(log_).size() * All(log_)[0].data.size());
  // A new leader overwrites 4.. with a shorter suffix of different sizes.
  ASSERT_TRUE(log_->Append({MakeEntry(4, 2, BatchPayload(3, 1000, "n4")),
                            MakeEntry(5, 2, "", raft::EntryType::kNormal)})
                  .ok());
  EXPECT_EQ(log_->LastIndex(), 5u);
  EXPECT_EQ(log_->LastTerm(), 2u);
  EXPECT_EQ(*log_->TermAt(3), 1u);
  EXPECT_EQ(*log_->TermAt(4), 2u);
  EXPECT_EQ(log_->LogEndOffset(), Offset(33));
  auto loc = log_->FindOffset(Offset(31));
  ASSERT_TRUE(loc.ok());
  EXPECT_EQ(loc->index, 4u);
  EXPECT_EQ(loc->base_offset, Offset(30));
  EXPECT_EQ(log_->FindOffset(Offset(33)).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(log_->Entries(6, 7, UINT64_MAX).status().code(), StatusCode::kOutOfRange);
  // Survives reopen: the truncated suffix and its offset rows are gone from disk too.
  Reopen();
  EXPECT_EQ(log_->LastIndex(), 5u);
  EXPECT_EQ(log_->LogEndOffset(), Offset(33));
  EXPECT_EQ(log_->FindTimestamp(500)->index, 4u);
  // Appending the same suffix again is a no-op rewrite; appending at last+1 extends.
  AppendBatch(6, 2, 1, 2000);
  EXPECT_EQ(log_->LogEndOffset(), Offset(34));
  // Truncating everything back to index 1.
  ASSERT_TRUE(log_->Append({MakeEntry(1, 3, BatchPayload(2, 5, "z"))}).ok());
  EXPECT_EQ(log_->LastIndex(), 1u);
  EXPECT_EQ(log_->LogEndOffset(), Offset(2));
  EXPECT_EQ(log_->SizeBytes(), BatchPayload(2, 5, "z").size());
}

TEST_F(PartitionLogTest, OffsetsSkipNonBatchEntriesAndTimestampLookup) {
  AppendBatch(1, 1, 5, 100);                              // offsets 0..4
  ASSERT_TRUE(log_->Append({MakeEntry(2, 1, "")}).ok());  // no-op
  ASSERT_TRUE(log_->Append({MakeEntry(3, 1, "c", raft::EntryType::kConfChange)}).ok());
  AppendBatch(4, 1, 1, 300);  // offset 5
  AppendBatch(5, 1, 4, 200);  // offsets 6..9
  EXPECT_EQ(log_->LogEndOffset(), Offset(10));
  for (int64_t o = 0; o < 10; ++o) {
    auto loc = log_->FindOffset(Offset(o));
    ASSERT_TRUE(loc.ok()) << o;
    EXPECT_EQ(loc->index, o < 5 ? 1u : o == 5 ? 4u : 5u) << o;
  }
  EXPECT_EQ(log_->FindOffset(Offset(-1)).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(log_->FindTimestamp(0)->index, 1u);
  EXPECT_EQ(log_->FindTimestamp(101)->index, 4u);
  EXPECT_EQ(log_->FindTimestamp(250)->index, 4u);  // first batch with max_ts >= t
  EXPECT_EQ(log_->FindTimestamp(301).status().code(), StatusCode::kNotFound);
}

TEST_F(PartitionLogTest, CompactionNeedsSnapshotAndAdvancesLogStart) {
  for (raft::Index i = 1; i <= 10; ++i) AppendBatch(i, i <= 5 ? 1 : 2, 2, 10);
  EXPECT_EQ(log_->Compact(4).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(log_->CreateSnapshot(11, {}, Bytes(std::string("s"))).code(), StatusCode::kOutOfRange);
  ASSERT_TRUE(log_->CreateSnapshot(6, raft::ConfState{{1}, {}}, Bytes(std::string("img"))).ok());
  auto snap = log_->GetSnapshot();
  EXPECT_EQ(snap->meta.index, 6u);
  EXPECT_EQ(snap->meta.term, 2u);
  EXPECT_EQ(snap->data.ToString(), "img");
  EXPECT_EQ(log_->Compact(7).code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(log_->Compact(4).ok());
  EXPECT_EQ(log_->FirstIndex(), 5u);
  EXPECT_EQ(*log_->TermAt(4), 1u);
  EXPECT_EQ(log_->TermAt(3).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(log_->Entries(4, 6, UINT64_MAX).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(log_->Entries(5, 11, UINT64_MAX)->size(), 6u);
  EXPECT_EQ(log_->LogStartOffset(), Offset(8));
  EXPECT_EQ(log_->FindOffset(Offset(7)).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(log_->FindOffset(Offset(8))->index, 5u);
  EXPECT_TRUE(log_->Compact(3).ok());  // idempotent below the first index
  EXPECT_EQ(log_->Compact(11).code(), StatusCode::kOutOfRange);
  // Snapshot below the current one is refused; at the compacted index is fine.
  EXPECT_EQ(log_->CreateSnapshot(5, {}, Bytes()).code(), StatusCode::kOutOfRange);
  ASSERT_TRUE(log_->Compact(6).ok());
  ASSERT_TRUE(log_->CreateSnapshot(6, {}, Bytes(std::string("again"))).ok());
  Reopen();
  EXPECT_EQ(log_->FirstIndex(), 7u);
  EXPECT_EQ(*log_->TermAt(6), 2u);
  EXPECT_EQ(log_->LogStartOffset(), Offset(12));
  EXPECT_EQ(log_->LogEndOffset(), Offset(20));
  uint64_t stored_bytes = 0;
  for (const raft::Entry& e : All(log_)) stored_bytes += e.data.size();
  EXPECT_EQ(log_->SizeBytes(), stored_bytes);
  EXPECT_EQ(log_->GetSnapshot()->data.ToString(), "again");
  // Compact the whole log: empty but keeps the term of the last entry and the offsets.
  ASSERT_TRUE(log_->CreateSnapshot(10, {}, Bytes()).ok());
  ASSERT_TRUE(log_->Compact(10).ok());
  Reopen();
  EXPECT_EQ(log_->FirstIndex(), 11u);
  EXPECT_EQ(log_->LastIndex(), 10u);
  EXPECT_EQ(*log_->TermAt(10), 2u);
  EXPECT_EQ(log_->LogStartOffset(), Offset(20));
  EXPECT_EQ(log_->LogEndOffset(), Offset(20));
  EXPECT_EQ(log_->SizeBytes(), 0u);
  AppendBatch(11, 3, 1, 0);
  EXPECT_EQ(log_->LogEndOffset(), Offset(21));
  // Appending entries at or below the compacted prefix skips them.
  ASSERT_TRUE(log_->Append(MakeEntries(9, 11, 2)).ok());
  EXPECT_EQ(log_->LastIndex(), 11u);
  EXPECT_EQ(*log_->TermAt(11), 2u);
}

TEST_F(PartitionLogTest, ApplySnapshotReplacesLog) {
  for (raft::Index i = 1; i <= 5; ++i) AppendBatch(i, 1, 1, 0);
  raft::Snapshot snap;
  snap.meta = raft::SnapshotMeta{20, 4, raft::ConfState{{1, 2, 3}, {}}};
  snap.data = Bytes(std::string("state"));
  ASSERT_TRUE(log_->ApplySnapshot(SnapshotWrite{snap, 1000}).ok());
  EXPECT_EQ(log_->FirstIndex(), 21u);
  EXPECT_EQ(log_->LastIndex(), 20u);
  EXPECT_EQ(*log_->TermAt(20), 4u);
  EXPECT_EQ(log_->LogStartOffset(), Offset(1000));
  EXPECT_EQ(log_->LogEndOffset(), Offset(1000));
  EXPECT_EQ(log_->GetInitialState()->conf_state, snap.meta.conf);
  AppendBatch(21, 4, 3, 0);
  EXPECT_EQ(log_->FindOffset(Offset(1002))->index, 21u);
  raft::Snapshot older = snap;
  older.meta.index = 10;
  EXPECT_EQ(log_->ApplySnapshot(SnapshotWrite{older, 0}).code(), StatusCode::kOutOfRange);
  Reopen();
  EXPECT_EQ(*log_->GetSnapshot(), snap);
  EXPECT_EQ(log_->LastIndex(), 21u);
  EXPECT_EQ(log_->LogEndOffset(), Offset(1003));
}

TEST_F(PartitionLogTest, RetentionBySizeAndTimeStopsAtCommit) {
  for (raft::Index i = 1; i <= 10; ++i) {
    AppendBatch(i, 1, 1, 1000 * static_cast<int64_t>(i));
  }
  // Nothing committed: nothing may be cut.
  RetentionPolicy by_time{std::optional<int64_t>(1000), std::nullopt};
  EXPECT_EQ(log_->ComputeRetention(by_time, 100000)->cut_through, 0u);
  ASSERT_TRUE(log_->SetHardState(raft::HardState{1, 1, 8}).ok());
  // Time: batches with max_ts < now - 1000 = 4500 -> 1..4.
  auto cut = log_->ComputeRetention(by_time, 5500);
  EXPECT_EQ(cut->cut_through, 4u);
  EXPECT_EQ(cut->new_log_start_offset, Offset(4));
  EXPECT_EQ(log_->ComputeRetention(by_time, 1000000)->cut_through, 8u);  // capped at commit
  // Size: keep at most the bytes of the last 3 batches.
  uint64_t keep = 0;
  for (raft::Index i = 8; i <= 10; ++i) {
    keep += BatchPayload(1, 1000 * static_cast<int64_t>(i), "x" + std::to_string(i)).size();
  }
  RetentionPolicy by_size{std::nullopt, std::optional<uint64_t>(keep)};
  cut = log_->ComputeRetention(by_size, 0);
  EXPECT_EQ(cut->cut_through, 7u);
  // The host snapshots and compacts; the cut is then gone.
  ASSERT_TRUE(log_->CreateSnapshot(cut->cut_through, {}, Bytes()).ok());
  ASSERT_TRUE(log_->Compact(cut->cut_through).ok());
  EXPECT_EQ(log_->LogStartOffset(), cut->new_log_start_offset);
  EXPECT_LE(log_->SizeBytes(), *by_size.retention_bytes);
  EXPECT_EQ(log_->ComputeRetention(by_size, 0)->cut_through, 0u);
  ASSERT_TRUE(store_->CompactGroupPrefix(RaftGroupId(1)).ok());
  EXPECT_EQ(All(log_).size(), 3u);
}

TEST_F(PartitionLogTest, GroupCommitWritesManyGroupsAtomically) {
  std::vector<GroupWrite> writes(3);
  for (uint64_t g = 0; g < 3; ++g) {
    writes[g].group = RaftGroupId(10 + g);
    writes[g].entries = MakeEntries(1, 2 + g, 1);
    writes[g].hard_state = raft::HardState{1, 0, g};
  }
  ASSERT_TRUE(store_->Write(writes).ok());
  for (uint64_t g = 0; g < 3; ++g) {
    PartitionLog* log = Group(10 + g);
    EXPECT_EQ(log->LastIndex(), 2 + g);
    EXPECT_EQ(log->hard_state().commit, g);
  }
  // A bad write in one group fails the whole call, leaving every group unchanged.
  writes[0].entries = MakeEntries(4, 4, 1);  // group 10 ends at 2: a gap
  writes[1].entries = MakeEntries(4, 4, 1);
  EXPECT_EQ(store_->Write(writes).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Group(11)->LastIndex(), 3u);
  // The same group twice in one call is refused.
  std::vector<GroupWrite> twice(2);
  twice[0].group = twice[1].group = RaftGroupId(10);
  EXPECT_EQ(store_->Write(twice).code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(store_->Write(std::span<const GroupWrite>()).ok());
}

TEST_F(PartitionLogTest, ConcurrentWritersOnDistinctGroups) {
  constexpr int kThreads = 8, kAppends = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t] {
      PartitionLog* log = Group(100 + t);
      for (int i = 1; i <= kAppends; ++i) {
        GroupWrite gw;
        gw.group = RaftGroupId(100 + t);
        gw.entries = {MakeEntry(i, 1, "t" + std::to_string(t) + "i" + std::to_string(i))};
        EXPECT_TRUE(store_->Write({&gw, 1}).ok());
        // A concurrent reader of another group sees a consistent prefix.
        auto es = Group(100 + (t + 1) % kThreads)->Entries(1, 1, 0);
        EXPECT_TRUE(es.ok());
      }
      EXPECT_EQ(log->LastIndex(), static_cast<raft::Index>(kAppends));
    });
  }
  for (auto& th : threads) th.join();
  Reopen();
  for (int t = 0; t < kThreads; ++t) {
    auto es = All(Group(100 + t));
    ASSERT_EQ(es.size(), static_cast<size_t>(kAppends));
    EXPECT_EQ(es[9].data.ToString(), "t" + std::to_string(t) + "i10");
  }
}

TEST_F(PartitionLogTest, DropGroupRemovesEverything) {
  ASSERT_TRUE(log_->Append(MakeEntries(1, 3, 1)).ok());
  ASSERT_TRUE(log_->SetHardState({1, 1, 1}).ok());
  ASSERT_TRUE(Group(2)->Append(MakeEntries(1, 2, 1)).ok());
  ASSERT_TRUE(store_->DropGroup(RaftGroupId(1)).ok());
  EXPECT_EQ(log_->LastIndex(), 0u);
  Reopen();
  EXPECT_EQ(log_->LastIndex(), 0u);
  EXPECT_EQ(log_->hard_state(), raft::HardState{});
  EXPECT_EQ(Group(2)->LastIndex(), 2u);  // neighbours untouched
}

TEST_F(PartitionLogTest, MetadataFamily) {
  ASSERT_TRUE(store_->PutMetadata("topic/a", "1").ok());
  ASSERT_TRUE(store_->PutMetadata("topic/b", "2").ok());
  ASSERT_TRUE(store_->PutMetadata("zzz", "3").ok());
  EXPECT_EQ(**store_->GetMetadata("topic/a"), "1");
  EXPECT_FALSE(store_->GetMetadata("nope")->has_value());
  std::vector<std::string> seen;
  ASSERT_TRUE(store_
                  ->ScanMetadata("topic/",
                                 [&](std::string_view k, std::string_view v) {
                                   seen.push_back(std::string(k) + "=" + std::string(v));
                                 })
                  .ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"topic/a=1", "topic/b=2"}));
  ASSERT_TRUE(store_->DeleteMetadata("topic/a").ok());
  Reopen();
  EXPECT_FALSE(store_->GetMetadata("topic/a")->has_value());
  EXPECT_EQ(**store_->GetMetadata("zzz"), "3");
}

TEST_F(PartitionLogTest, SyncPoliciesAllPersistOnCleanClose) {
  for (SyncPolicy policy : {SyncPolicy::kInterval, SyncPolicy::kNever}) {
    store_.reset();
    LogStoreOptions options;
    options.sync_policy = policy;
    options.sync_interval_ms = 1;
    options.classifier = testing::TestClassifier;
    auto opened = LogStore::Open(dir_.path(), options);
    ASSERT_TRUE(opened.ok());
    store_ = std::move(opened).value();
    PartitionLog* log = Group(7);
    const raft::Index next = log->LastIndex() + 1;
    ASSERT_TRUE(log->Append(MakeEntries(next, next + 4, 1)).ok());
    ASSERT_TRUE(store_->SyncWal().ok());
  }
  Reopen();
  EXPECT_EQ(Group(7)->LastIndex(), 10u);
}

TEST_F(PartitionLogTest, LargeEntriesGoToBlobsAndSurviveFlush) {
  std::vector<raft::Entry> entries;
  for (raft::Index i = 1; i <= 20; ++i) {
    entries.push_back(MakeEntry(i, 1, std::string(4096 + i, static_cast<char>('a' + i % 26))));
  }
  ASSERT_TRUE(log_->Append(entries).ok());
  ASSERT_TRUE(store_->FlushAll().ok());
  Reopen();
  EXPECT_EQ(All(log_), entries);
  EXPECT_EQ(*log_->TermAt(7), 1u);
}

}  // namespace
}  // namespace skiff::storage
