// Disk full: on a small tmpfs, a write fails with kResourceExhausted, nothing crashes, reads keep
// working, and writes resume once space is freed; every acknowledged entry survives a reopen.
// Needs root to mount the tmpfs; skipped (with the reason) otherwise.
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include <gtest/gtest.h>

#include "storage/log_store.h"
#include "storage/partition_log.h"
#include "storage_test_util.h"

namespace skiff::storage {
namespace {

using testing::MakeEntry;

class DiskFullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (mount("tmpfs", dir_.path().c_str(), "tmpfs", 0, "size=8m") != 0) {
      GTEST_SKIP() << "cannot mount a tmpfs (needs root / CAP_SYS_ADMIN): " << std::strerror(errno);
    }
    mounted_ = true;
  }
  void TearDown() override {
    store_.reset();
    if (mounted_) {
      EXPECT_EQ(umount2(dir_.path().c_str(), MNT_DETACH), 0) << std::strerror(errno);
    }
  }

  void Open() {
    LogStoreOptions options;
    options.log_write_buffer_size_bytes = 1 << 20;
    options.max_total_wal_size_bytes = 2 << 20;
    options.blob_file_size_bytes = 1 << 20;
    options.allow_fallocate = false;
    options.min_free_bytes = 512 << 10;
    auto s = LogStore::Open(dir_.path() + "/db", options);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }

  // Fills the file system with a filler file, leaving about `leave` bytes free.
  void Fill(const std::string& path, size_t bytes) {
    std::ofstream f(path, std::ios::binary);
    std::string chunk(1 << 16, 'f');
    for (size_t written = 0; written < bytes && f.good(); written += chunk.size()) {
      f.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    }
  }

  static std::string Payload(raft::Index i) { return std::string(16 << 10, char('a' + i % 26)); }

  testing::TempDir dir_;
  bool mounted_ = false;
  std::unique_ptr<LogStore> store_;
};

TEST_F(DiskFullTest, WriteFailsClearlyReadsWorkWritesResume) {
  Open();
  const std::string filler = dir_.path() + "/filler";
  Fill(filler, 5 << 20);
  PartitionLog* log = *store_->Group(RaftGroupId(1));

  // Append until the disk is full (bounded).
  raft::Index acked = 0;
  Status failure;
  for (int i = 0; i < 2000; ++i) {
    Status s = log->Append({MakeEntry(acked + 1, 1, Payload(acked + 1))});
    if (!s.ok()) {
      failure = s;
      break;
    }
    ++acked;
  }
  ASSERT_FALSE(failure.ok()) << "the 8 MiB tmpfs never filled up";
  EXPECT_EQ(failure.code(), StatusCode::kResourceExhausted) << failure.ToString();
  ASSERT_GT(acked, 0u);
  EXPECT_EQ(log->LastIndex(), acked);

  // Reads keep working and return every acknowledged entry.
  auto entries = log->Entries(1, acked + 1, UINT64_MAX);
  ASSERT_TRUE(entries.ok()) << entries.status().ToString();
  ASSERT_EQ(entries->size(), acked);
  EXPECT_EQ(entries->back().data.ToString(), Payload(acked));

  // Still full: another write fails the same clear way, and does not crash.
  Status again = log->Append({MakeEntry(acked + 1, 1, Payload(acked + 1))});
  EXPECT_FALSE(again.ok());
  EXPECT_EQ(again.code(), StatusCode::kResourceExhausted) << again.ToString();

  // Free space: writes resume (the store resumes RocksDB from its background error). Recovery
  // may take a few attempts while RocksDB finishes its own; bounded.
  ASSERT_EQ(::unlink(filler.c_str()), 0);
  Status resumed;
  for (int attempt = 0; attempt < 2000; ++attempt) {
    resumed = log->Append({MakeEntry(acked + 1, 1, Payload(acked + 1))});
    if (resumed.ok()) break;
    ::usleep(1000);  // yields to RocksDB's recovery thread; bounded by the attempt count
  }
  ASSERT_TRUE(resumed.ok()) << resumed.ToString();
  ++acked;
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(log->Append({MakeEntry(acked + 1, 1, Payload(acked + 1))}).ok());
    ++acked;
  }

  // Nothing acknowledged was lost, across a reopen.
  store_.reset();
  Open();
  log = *store_->Group(RaftGroupId(1));
  ASSERT_EQ(log->LastIndex(), acked);
  auto all = log->Entries(1, acked + 1, UINT64_MAX);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  for (const raft::Entry& e : *all) ASSERT_EQ(e.data.ToString(), Payload(e.index)) << e.index;
}

}  // namespace
}  // namespace skiff::storage
