// A damaged stored value is reported as kCorruption and never served: bytes flipped through a
// raw RocksDB Put in each column family, and bytes flipped inside a blob file on disk.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include "storage/key_format.h"
#include "storage/log_store.h"
#include "storage/partition_log.h"
#include "storage_test_util.h"

namespace skiff::storage {
namespace {

using testing::BatchPayload;
using testing::MakeEntry;

class CorruptionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Open();
    std::vector<raft::Entry> entries;
    for (raft::Index i = 1; i <= 5; ++i) {
      entries.push_back(MakeEntry(i, 1, BatchPayload(2, 10 * i, std::string(600, 'p'))));
    }
    GroupWrite gw;
    gw.group = RaftGroupId(1);
    gw.entries = entries;
    gw.hard_state = raft::HardState{1, 1, 3};
    ASSERT_TRUE(store_->Write({&gw, 1}).ok());
    store_.reset();
  }

  void Open() {
    LogStoreOptions options;
    options.classifier = testing::TestClassifier;
    // A row per batch: every entry is behind a row, so loading the group reads only the last
    // entry (see DamagedEntryOfTheOpenSpanFailsGroupOpen for the default).
    options.offset_index_interval_bytes = offset_index_interval_bytes_;
    auto s = LogStore::Open(dir_.path(), options);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }

  // Flips one byte of the value at (family, key) with RocksDB directly, the store closed.
  void FlipByte(const std::string& family, const std::string& key, size_t pos_from_end) {
    std::vector<std::string> names;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir_.path(), &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    for (const auto& n : names) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), dir_.path(), cfs, &handles, &db).ok());
    rocksdb::ColumnFamilyHandle* cf = nullptr;
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == family) cf = handles[i];
    }
    ASSERT_NE(cf, nullptr);
    std::string value;
    ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), cf, key, &value).ok());
    ASSERT_GT(value.size(), pos_from_end);
    value[value.size() - 1 - pos_from_end] ^= 0x20;
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), cf, key, value).ok());
    for (auto* h : handles) ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
    delete db;
  }

  testing::TempDir dir_;
  std::unique_ptr<LogStore> store_;
  uint64_t offset_index_interval_bytes_ = 0;
};

TEST_F(CorruptionTest, DamagedEntryPayloadIsNotServed) {
  FlipByte("log", IndexedKey(1, 3), 100);
  Open();
  PartitionLog* log = *store_->Group(RaftGroupId(1));
  EXPECT_EQ(log->Entries(1, 6, UINT64_MAX).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(log->Entries(3, 4, UINT64_MAX).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(log->TermAt(3).status().code(), StatusCode::kCorruption);
  // Undamaged neighbours are still served.
  EXPECT_EQ(log->Entries(1, 3, UINT64_MAX)->size(), 2u);
  EXPECT_EQ(log->Entries(4, 6, UINT64_MAX)->size(), 2u);
}

TEST_F(CorruptionTest, DamagedEntryHeaderIsNotServed) {
  FlipByte("log", IndexedKey(1, 2), 600 + 20);  // inside the header (term / base offset)
  Open();
  PartitionLog* log = *store_->Group(RaftGroupId(1));
  EXPECT_EQ(log->TermAt(2).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(log->CreateSnapshot(2, {}, Bytes()).code(), StatusCode::kCorruption);
}

TEST_F(CorruptionTest, DamagedLastEntryFailsGroupOpen) {
  FlipByte("log", IndexedKey(1, 5), 0);
  Open();
  EXPECT_EQ(store_->Group(RaftGroupId(1)).status().code(), StatusCode::kCorruption);
}

TEST_F(CorruptionTest, DamagedEntryOfTheOpenSpanFailsGroupOpen) {
  // With the default interval, group 2's five entries (3 KB) form one open span, rebuilt from
  // their headers on load: a damaged one fails the group's open (fail-stop), naming the entry.
  offset_index_interval_bytes_ = LogStoreOptions{}.offset_index_interval_bytes;
  Open();
  GroupWrite gw;
  gw.group = RaftGroupId(2);
  for (raft::Index i = 1; i <= 5; ++i) {
    gw.entries.push_back(MakeEntry(i, 1, BatchPayload(2, 10 * i, std::string(600, 'q'))));
  }
  ASSERT_TRUE(store_->Write({&gw, 1}).ok());
  store_.reset();
  FlipByte("log", IndexedKey(2, 3), 100);
  Open();
  auto group = store_->Group(RaftGroupId(2));
  EXPECT_EQ(group.status().code(), StatusCode::kCorruption);
  EXPECT_NE(group.status().message().find("log entry 3"), std::string::npos)
      << group.status().ToString();
  EXPECT_TRUE(store_->Group(RaftGroupId(1)).ok());  // other groups unaffected
}

TEST_F(CorruptionTest, DamagedOffsetIndexRow) {
  FlipByte("offset_index", IndexedKey(1, 4), 0);  // the batch at index 3 (offsets 4,5)
  Open();
  // The group scans its offset rows on open (size accounting), so the damage shows there.
  EXPECT_EQ(store_->Group(RaftGroupId(1)).status().code(), StatusCode::kCorruption);
}

// Spans of two batches (600 B each, interval 1000): rows for entries 1-2 and 3-4, entry 5 in
// the open span. Entry i holds offsets 2(i-1) and 2i-1, max timestamp 10i.
class CorruptionInSpansTest : public CorruptionTest {
 protected:
  CorruptionInSpansTest() { offset_index_interval_bytes_ = 1000; }
};

TEST_F(CorruptionInSpansTest, ADamagedEntryHidesOnlyItsOwnOffsets) {
  FlipByte("log", IndexedKey(1, 3), 100);
  Open();
  PartitionLog* log = *store_->Group(RaftGroupId(1));
  EXPECT_EQ(log->FindOffset(Offset(4)).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(log->FindOffset(Offset(5)).status().code(), StatusCode::kCorruption);
  auto after = log->FindOffset(Offset(6));  // entry 4, in the damaged entry's span
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(after->index, 4u);
  EXPECT_EQ(after->base_offset, Offset(6));
  EXPECT_EQ(log->FindOffset(Offset(3))->index, 2u);
  EXPECT_EQ(log->FindOffset(Offset(9))->index, 5u);
  // By timestamp the damaged entry could be the answer: the lookup fails rather than skip it.
  EXPECT_EQ(log->FindTimestamp(25).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(log->FindTimestamp(15)->index, 2u);
  EXPECT_EQ(log->FindTimestamp(45)->index, 5u);
}

TEST_F(CorruptionTest, DamagedHardState) {
  FlipByte("raft_state", StateKey(1, StateTag::kHardState), 3);
  Open();
  EXPECT_EQ(store_->Group(RaftGroupId(1)).status().code(), StatusCode::kCorruption);
  EXPECT_TRUE(store_->Group(RaftGroupId(2)).ok());  // other groups unaffected
}

TEST_F(CorruptionTest, DamagedBlobFileOnDisk) {
  Open();
  ASSERT_TRUE(store_->FlushAll().ok());
  store_.reset();
  int damaged = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir_.path())) {
    if (f.path().extension() != ".blob") continue;
    std::fstream file(f.path(), std::ios::in | std::ios::out | std::ios::binary);
    const auto size = std::filesystem::file_size(f.path());
    // Flip a byte in the middle of the file: inside some entry's payload.
    file.seekg(static_cast<std::streamoff>(size / 2));
    char c = 0;
    file.read(&c, 1);
    c = static_cast<char>(c ^ 0x01);
    file.seekp(static_cast<std::streamoff>(size / 2));
    file.write(&c, 1);
    ++damaged;
  }
  ASSERT_GT(damaged, 0) << "expected the entries in a blob file";
  Open();
  auto log = store_->Group(RaftGroupId(1));
  // Either the group refuses to open (its last entry was hit) or a read of the range fails.
  if (log.ok()) {
    EXPECT_EQ((*log)->Entries(1, 6, UINT64_MAX).status().code(), StatusCode::kCorruption);
  } else {
    EXPECT_EQ(log.status().code(), StatusCode::kCorruption);
  }
}

// A damaged WAL record with more after it: the store refuses to open rather than start without
// what it persisted (a replica that forgets its votes or acknowledged entries breaks Raft).
TEST(WalCorruptionTest, DamagedWalRecordBeforeTheTailRefusesToOpen) {
  testing::TempDir dir;
  LogStoreOptions options;
  options.classifier = testing::TestClassifier;
  {
    auto opened = LogStore::Open(dir.path(), options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    PartitionLog* log = *(*opened)->Group(RaftGroupId(1));
    for (raft::Index i = 1; i <= 10; ++i) {
      ASSERT_TRUE(
          log->Append({MakeEntry(i, 1, std::string(600, static_cast<char>('a' + i)))}).ok());
    }
  }
  // Flip one byte inside the first record of the WAL (the first append).
  std::string wal;
  for (const auto& f : std::filesystem::directory_iterator(dir.path())) {
    if (f.path().extension() == ".log" && std::filesystem::file_size(f.path()) > 4096) {
      wal = f.path().string();
    }
  }
  ASSERT_FALSE(wal.empty()) << "no WAL holding the appends";
  {
    std::fstream f(wal, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(300);
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x5a);
    f.seekp(300);
    f.write(&c, 1);
  }
  auto reopened = LogStore::Open(dir.path(), options);
  ASSERT_FALSE(reopened.ok()) << "opened on a WAL with a damaged record";
  EXPECT_EQ(reopened.status().code(), StatusCode::kCorruption) << reopened.status().ToString();
}

}  // namespace
}  // namespace skiff::storage
