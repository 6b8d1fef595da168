#include "raft/memory_log_storage.h"

#include <gtest/gtest.h>

#include "raft_test_util.h"

namespace skiff::raft {
namespace {

using testing::MakeEntry;

TEST(MemoryLogStorageTest, EmptyLog) {
  MemoryLogStorage s;
  EXPECT_EQ(s.FirstIndex(), 1u);
  EXPECT_EQ(s.LastIndex(), 0u);
  EXPECT_EQ(*s.TermAt(0), 0u);
  EXPECT_EQ(s.TermAt(1).status().code(), StatusCode::kOutOfRange);
  EXPECT_TRUE(s.GetSnapshot()->empty());
  EXPECT_TRUE(s.Entries(1, 1, 100)->empty());
}

TEST(MemoryLogStorageTest, AppendTruncatesConflictingSuffix) {
  MemoryLogStorage s;
  ASSERT_TRUE(s.Append({MakeEntry(1, 1), MakeEntry(2, 1), MakeEntry(3, 1)}).ok());
  ASSERT_TRUE(s.Append({MakeEntry(2, 2)}).ok());
  EXPECT_EQ(s.LastIndex(), 2u);
  EXPECT_EQ(*s.TermAt(2), 2u);
  // Gaps and non-contiguous batches are refused.
  EXPECT_EQ(s.Append({MakeEntry(5, 2)}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.Append({MakeEntry(3, 2), MakeEntry(5, 2)}).code(), StatusCode::kInvalidArgument);
}

TEST(MemoryLogStorageTest, EntriesRespectsMaxBytesButReturnsOne) {
  MemoryLogStorage s;
  ASSERT_TRUE(
      s.Append({MakeEntry(1, 1, "aaaa"), MakeEntry(2, 1, "bbbb"), MakeEntry(3, 1, "c")}).ok());
  EXPECT_EQ(s.Entries(1, 4, 0)->size(), 1u);
  EXPECT_EQ(s.Entries(1, 4, 2 * 28)->size(), 2u);
  EXPECT_EQ(s.Entries(1, 4, UINT64_MAX)->size(), 3u);
  EXPECT_EQ(s.Entries(2, 5, 100).status().code(), StatusCode::kOutOfRange);
}

TEST(MemoryLogStorageTest, CompactKeepsTermOfLastCompacted) {
  MemoryLogStorage s;
  ASSERT_TRUE(s.Append({MakeEntry(1, 1), MakeEntry(2, 2), MakeEntry(3, 3)}).ok());
  ASSERT_TRUE(s.CreateSnapshot(2, ConfState{{1}, {}}, Bytes()).ok());
  ASSERT_TRUE(s.Compact(2).ok());
  EXPECT_EQ(s.FirstIndex(), 3u);
  EXPECT_EQ(s.LastIndex(), 3u);
  EXPECT_EQ(*s.TermAt(2), 2u);
  EXPECT_EQ(s.TermAt(1).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(s.Entries(2, 4, 100).status().code(), StatusCode::kOutOfRange);
  EXPECT_TRUE(s.Compact(1).ok());  // idempotent below
  EXPECT_EQ(s.Compact(9).code(), StatusCode::kOutOfRange);
  // Appending below the compacted prefix skips those entries.
  ASSERT_TRUE(s.Append({MakeEntry(2, 2), MakeEntry(3, 3), MakeEntry(4, 3)}).ok());
  EXPECT_EQ(s.LastIndex(), 4u);
}

TEST(MemoryLogStorageTest, SnapshotCreateAndApply) {
  MemoryLogStorage s;
  ASSERT_TRUE(s.Append({MakeEntry(1, 1), MakeEntry(2, 2), MakeEntry(3, 3)}).ok());
  ConfState conf{{1, 2, 3}, {}};
  ASSERT_TRUE(s.CreateSnapshot(2, conf, Bytes(std::string("img"))).ok());
  EXPECT_EQ(s.GetSnapshot()->meta.index, 2u);
  EXPECT_EQ(s.GetSnapshot()->meta.term, 2u);
  EXPECT_EQ(s.CreateSnapshot(1, conf, Bytes()).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(s.CreateSnapshot(9, conf, Bytes()).code(), StatusCode::kOutOfRange);

  Snapshot snap;
  snap.meta = {10, 5, ConfState{{1, 2}, {4}}};
  ASSERT_TRUE(s.ApplySnapshot(snap).ok());
  EXPECT_EQ(s.FirstIndex(), 11u);
  EXPECT_EQ(s.LastIndex(), 10u);
  EXPECT_EQ(*s.TermAt(10), 5u);
  EXPECT_EQ(s.GetInitialState()->conf_state, snap.meta.conf);
  Snapshot older;
  older.meta = {4, 1, {}};
  EXPECT_EQ(s.ApplySnapshot(older).code(), StatusCode::kOutOfRange);
  ASSERT_TRUE(s.Append({MakeEntry(11, 5)}).ok());
  EXPECT_EQ(s.LastIndex(), 11u);
}

TEST(TypesTest, ConfChangeRoundTripAndRejectsGarbage) {
  ConfChange cc{ConfChangeType::kAddLearner, 0x0102030405060708ULL};
  std::string enc = EncodeConfChange(cc);
  ASSERT_EQ(enc.size(), 9u);
  EXPECT_EQ(static_cast<uint8_t>(enc[1]), 0x08);
  EXPECT_EQ(DecodeConfChange(enc), cc);
  EXPECT_FALSE(DecodeConfChange("").has_value());
  EXPECT_FALSE(DecodeConfChange(enc.substr(0, 8)).has_value());
  std::string bad = enc;
  bad[0] = 9;
  EXPECT_FALSE(DecodeConfChange(bad).has_value());
  EXPECT_STREQ(MessageTypeName(MessageType::kTimeoutNow), "TimeoutNow");
  EXPECT_STREQ(RoleName(Role::kPreCandidate), "PreCandidate");
}

// Review F4(d): the log is never compacted past the snapshot that replaces it.
TEST(MemoryLogStorageTest, CompactRefusesToGoBeyondTheSnapshot) {
  MemoryLogStorage s;
  ASSERT_TRUE(s.Append({MakeEntry(1, 1), MakeEntry(2, 1), MakeEntry(3, 1), MakeEntry(4, 1)}).ok());
  EXPECT_EQ(s.Compact(2).code(), StatusCode::kFailedPrecondition) << "no snapshot yet";
  ASSERT_TRUE(s.CreateSnapshot(2, ConfState{{1}, {}}, Bytes()).ok());
  EXPECT_EQ(s.Compact(3).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.FirstIndex(), 1u);
  EXPECT_EQ(s.Compact(9).code(), StatusCode::kOutOfRange);
  ASSERT_TRUE(s.Compact(2).ok());
  EXPECT_EQ(s.FirstIndex(), 3u);
}

}  // namespace
}  // namespace skiff::raft
