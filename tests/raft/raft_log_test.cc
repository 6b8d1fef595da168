#include "raft/raft_log.h"

#include <gtest/gtest.h>

#include "raft/memory_log_storage.h"
#include "raft_test_util.h"

namespace skiff::raft {
namespace {

using testing::MakeEntry;

TEST(RaftLogTest, MaybeAppendFindsConflictAndTruncates) {
  MemoryLogStorage s;
  ASSERT_TRUE(s.Append({MakeEntry(1, 1), MakeEntry(2, 2), MakeEntry(3, 2)}).ok());
  RaftLog log(&s);
  EXPECT_FALSE(log.MaybeAppend(3, 1, {}).has_value());  // term mismatch at 3
  EXPECT_FALSE(log.MaybeAppend(4, 2, {}).has_value());  // beyond last
  auto last = log.MaybeAppend(1, 1, {MakeEntry(2, 2), MakeEntry(3, 3), MakeEntry(4, 3)});
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(*last, 4u);
  EXPECT_EQ(log.LastIndex(), 4u);
  EXPECT_EQ(*log.TermAt(3), 3u);
  ASSERT_EQ(log.UnstableEntries().size(), 2u);  // 3 and 4 replaced/added
  EXPECT_EQ(log.UnstableEntries().front().index, 3u);
  // A shorter, matching append never truncates (a stale message must not undo progress).
  EXPECT_EQ(*log.MaybeAppend(1, 1, {MakeEntry(2, 2)}), 2u);
  EXPECT_EQ(log.LastIndex(), 4u);
}

TEST(RaftLogTest, StableToIgnoresReplacedEntries) {
  MemoryLogStorage s;
  RaftLog log(&s);
  log.Append({MakeEntry(1, 1), MakeEntry(2, 1)});
  log.Append({MakeEntry(2, 2)});  // replaces 2 before it was persisted
  log.StableTo(2, 1);             // stale acknowledgement: ignored
  EXPECT_EQ(log.UnstableEntries().size(), 2u);
  log.StableTo(1, 1);
  EXPECT_EQ(log.UnstableEntries().size(), 1u);
  EXPECT_EQ(log.StableLastIndex(), 1u);
}

TEST(RaftLogTest, FindConflictByTerm) {
  MemoryLogStorage s;
  ASSERT_TRUE(s.Append({MakeEntry(1, 1), MakeEntry(2, 1), MakeEntry(3, 3), MakeEntry(4, 3),
                        MakeEntry(5, 5)})
                  .ok());
  RaftLog log(&s);
  EXPECT_EQ(log.FindConflictByTerm(5, 4), 4u);
  EXPECT_EQ(log.FindConflictByTerm(5, 2), 2u);
  EXPECT_EQ(log.FindConflictByTerm(5, 0), 0u);
  EXPECT_EQ(log.FindConflictByTerm(9, 9), 5u);
}

TEST(RaftLogTest, IsUpToDate) {
  MemoryLogStorage s;
  ASSERT_TRUE(s.Append({MakeEntry(1, 1), MakeEntry(2, 2)}).ok());
  RaftLog log(&s);
  EXPECT_TRUE(log.IsUpToDate(2, 2));
  EXPECT_TRUE(log.IsUpToDate(1, 3));
  EXPECT_FALSE(log.IsUpToDate(1, 2));
  EXPECT_FALSE(log.IsUpToDate(5, 1));
}

TEST(RaftLogTest, CommittedEntriesAndSnapshotRestore) {
  MemoryLogStorage s;
  ASSERT_TRUE(s.Append({MakeEntry(1, 1), MakeEntry(2, 1)}).ok());
  RaftLog log(&s);
  log.Append({MakeEntry(3, 1)});
  log.CommitTo(3);
  auto ents = log.NextCommittedEntries(UINT64_MAX);
  ASSERT_EQ(ents.size(), 3u);  // includes the unstable entry 3
  log.AcceptApplying(3);
  EXPECT_FALSE(log.HasNextCommittedEntries());
  log.AppliedTo(3);
  Snapshot snap;
  snap.meta = {10, 4, {}};
  log.RestoreSnapshot(snap);
  EXPECT_EQ(log.committed(), 10u);
  EXPECT_EQ(log.LastIndex(), 10u);
  EXPECT_EQ(log.FirstIndex(), 11u);
  EXPECT_EQ(*log.TermAt(10), 4u);
  EXPECT_FALSE(log.TermAt(3).has_value());
  EXPECT_FALSE(log.HasNextCommittedEntries());  // nothing to apply until the snapshot lands
  EXPECT_EQ(log.Slice(3, 4, 100).status().code(), StatusCode::kOutOfRange);
}

// Storage whose stored entries fail their checksum (a flipped bit on disk).
class DamagedStorage : public MemoryLogStorage {
 public:
  Result<std::vector<Entry>> Entries(Index, Index, uint64_t) const override {
    return CorruptionError("entry 2: checksum mismatch");
  }
};

TEST(RaftLogDeathTest, DamagedStoredEntriesStopTheReplicaSayingWhy) {
  DamagedStorage s;
  ASSERT_TRUE(s.Append({MakeEntry(1, 1), MakeEntry(2, 1), MakeEntry(3, 1)}).ok());
  RaftLog log(&s);
  EXPECT_DEATH((void)log.Slice(1, 4, UINT64_MAX),
               "reading stored entries \\[1, 4\\) failed: .*checksum mismatch.*log is damaged");
}

}  // namespace
}  // namespace skiff::raft
