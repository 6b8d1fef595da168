// Key order, value round trips, and that every single-byte flip of a sealed value is caught.
#include "storage/key_format.h"

#include <gtest/gtest.h>

#include "common/coding.h"

namespace skiff::storage {
namespace {

TEST(KeyFormatTest, IndexedKeysSortByGroupThenIndex) {
  EXPECT_LT(IndexedKey(1, 255), IndexedKey(1, 256));
  EXPECT_LT(IndexedKey(1, UINT64_MAX), IndexedKey(2, 0));
  EXPECT_LT(IndexedKey(0, 1ull << 40), IndexedKey(1, 0));
  EXPECT_EQ(IndexedKey(0x0102030405060708ull, 9),
            std::string("\x01\x02\x03\x04\x05\x06\x07\x08\0\0\0\0\0\0\0\x09", 16));
  auto decoded = DecodeIndexedKey(IndexedKey(7, 42));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->first, 7u);
  EXPECT_EQ(decoded->second, 42u);
  EXPECT_FALSE(DecodeIndexedKey("short"));
  EXPECT_EQ(StateKey(3, StateTag::kHardState).size(), 9u);
  EXPECT_LT(StateKey(3, StateTag::kLogMeta), GroupKey(4));
}

TEST(KeyFormatTest, EntryRoundTripAndEveryFlipDetected) {
  raft::Entry e{7, 99, raft::EntryType::kConfChange, Bytes(std::string("payload"))};
  const std::string value = EncodeEntryHeader(e, 1234, EntryRecordInfo{3, -5}) + e.data.ToString();
  ASSERT_EQ(value.size(), kEntryHeaderSize + 7);
  auto body = Unseal(value, "entry");
  ASSERT_TRUE(body.ok());
  auto stored = DecodeEntryBody(*body, 99);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->entry, e);
  EXPECT_EQ(stored->base_offset, 1234u);
  EXPECT_EQ(stored->info, (EntryRecordInfo{3, -5}));
  EXPECT_EQ(*DecodeEntryTerm(*body), 7u);
  for (size_t i = 0; i < value.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string damaged = value;
      damaged[i] = static_cast<char>(damaged[i] ^ (1 << bit));
      EXPECT_EQ(Unseal(damaged, "entry").status().code(), StatusCode::kCorruption) << i;
    }
  }
  // Truncated tails are caught too.
  for (size_t n = 0; n < value.size(); ++n) {
    EXPECT_FALSE(Unseal(value.substr(0, n), "entry").ok()) << n;
  }
}

TEST(KeyFormatTest, EmptyEntryAndMalformedBodies) {
  raft::Entry e{1, 1, raft::EntryType::kNormal, Bytes()};
  const std::string value = EncodeEntryHeader(e, 0, {});
  auto stored = DecodeEntryBody(*Unseal(value, "e"), 1);
  ASSERT_TRUE(stored.ok());
  EXPECT_TRUE(stored->entry.data.empty());
  EXPECT_EQ(DecodeEntryBody("\x02", 1).status().code(), StatusCode::kCorruption);
  std::string bad_type = std::string(*Unseal(value, "e"));
  bad_type[1] = 9;
  EXPECT_EQ(DecodeEntryBody(bad_type, 1).status().code(), StatusCode::kCorruption);
}

TEST(KeyFormatTest, StateRowsRoundTrip) {
  raft::HardState hs{5, 2, 17};
  EXPECT_EQ(*DecodeHardState(EncodeHardState(hs)), hs);
  raft::ConfState cs{{1, 2, 3}, {9}};
  EXPECT_EQ(*DecodeConfState(EncodeConfState(cs)), cs);
  LogMeta meta{10, 3, 400};
  EXPECT_EQ(*DecodeLogMeta(EncodeLogMeta(meta)), meta);
  StoredSnapshotMeta snap{raft::SnapshotMeta{10, 3, cs}, 400};
  EXPECT_EQ(*DecodeSnapshotMeta(EncodeSnapshotMeta(snap)), snap);
  OffsetRow row{12, 15, 5, 1700000000000, 1600000000000, 1024};
  auto decoded = DecodeOffsetRow(EncodeOffsetRow(row));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, row);
  {
    // The first format's one-batch row (raft_index, count, timestamp, size) is a span of one.
    std::string old_row;
    PutFixed64(old_row, 12);
    PutFixed32(old_row, 5);
    PutFixed64(old_row, 1700000000000);
    PutFixed32(old_row, 1024);
    auto one = DecodeOffsetRow(old_row);
    ASSERT_TRUE(one.ok());
    EXPECT_EQ(*one, (OffsetRow{12, 12, 5, 1700000000000, 1700000000000, 1024}));
  }
  EXPECT_EQ(*DecodeU64(EncodeU64(77)), 77u);
  EXPECT_FALSE(DecodeHardState("x").ok());
  EXPECT_FALSE(DecodeConfState(EncodeConfState(cs) + "x").ok());
  EXPECT_FALSE(DecodeOffsetRow(EncodeOffsetRow(OffsetRow{1, 1, 0, 0, 0, 0})).ok());  // 0 records
  EXPECT_FALSE(DecodeOffsetRow(EncodeOffsetRow(OffsetRow{5, 4, 1, 0, 0, 0})).ok());  // last < first
}

}  // namespace
}  // namespace skiff::storage
