// fsync failing with EIO: the write that needed the sync fails with kIoError and is not
// installed, reads keep serving every acknowledged entry, further writes are refused with a
// clear error (RocksDB cannot resume a failed WAL, and pages a failed fsync touched are not to be
// trusted) until the store is reopened, and after a reopen every acknowledged entry is intact
// and writes resume. The failed write itself is an
// "unknown" outcome (its bytes reached the page cache), so after the reopen it may be present;
// it must never be present while the store that refused it is still running.
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <rocksdb/file_system.h>

#include "failing_sync_file_system.h"
#include "storage/log_store.h"
#include "storage/partition_log.h"
#include "storage_test_util.h"

namespace skiff::storage {
namespace {

using testing::FailingSyncFileSystem;
using testing::MakeEntry;

constexpr RaftGroupId kGroupA{1};
constexpr RaftGroupId kGroupB{2};

std::string Payload(RaftGroupId group, raft::Index i) {
  return "g" + std::to_string(group.value()) + "i" + std::to_string(i) + std::string(900, 'x');
}

class SyncFailureTest : public ::testing::Test {
 protected:
  void Open(SyncPolicy policy = SyncPolicy::kEveryCommit) {
    LogStoreOptions options;
    options.classifier = testing::TestClassifier;
    options.file_system = fs_;
    options.sync_policy = policy;
    options.sync_interval_ms = 5;
    auto s = LogStore::Open(dir_.path() + "/db", options);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }

  // One write of the next entry of both groups (a group commit).
  Status AppendBoth(raft::Index index) {
    std::vector<GroupWrite> writes(2);
    writes[0].group = kGroupA;
    writes[0].entries = {MakeEntry(index, 1, Payload(kGroupA, index))};
    writes[1].group = kGroupB;
    writes[1].entries = {MakeEntry(index, 1, Payload(kGroupB, index))};
    return store_->Write(writes);
  }

  void ExpectAcknowledged(raft::Index acked) {
    for (RaftGroupId g : {kGroupA, kGroupB}) {
      PartitionLog* log = *store_->Group(g);
      auto entries = log->Entries(1, acked + 1, UINT64_MAX);
      ASSERT_TRUE(entries.ok()) << entries.status().ToString();
      ASSERT_EQ(entries->size(), acked);
      for (const raft::Entry& e : *entries) {
        ASSERT_EQ(e.data.ToString(), Payload(g, e.index))
            << "group " << g.value() << " " << e.index;
      }
    }
  }

  testing::TempDir dir_;
  std::shared_ptr<FailingSyncFileSystem> fs_ =
      std::make_shared<FailingSyncFileSystem>(rocksdb::FileSystem::Default());
  std::unique_ptr<LogStore> store_;
};

TEST_F(SyncFailureTest, FailedSyncFailsTheWriteReadsWorkWritesResumeAfterReopen) {
  Open();
  raft::Index acked = 0;
  for (; acked < 20; ++acked) ASSERT_TRUE(AppendBoth(acked + 1).ok());

  fs_->set_failing(true);
  Status failed = AppendBoth(acked + 1);
  ASSERT_FALSE(failed.ok());
  EXPECT_GT(fs_->failed_syncs(), 0);
  EXPECT_EQ(failed.code(), StatusCode::kIoError) << failed.ToString();
  EXPECT_NE(failed.message().find("EIO"), std::string::npos) << failed.ToString();
  // Neither group installed the failed write; the acknowledged prefix reads back intact.
  EXPECT_EQ((*store_->Group(kGroupA))->LastIndex(), acked);
  EXPECT_EQ((*store_->Group(kGroupB))->LastIndex(), acked);
  ExpectAcknowledged(acked);

  // Even once the disk syncs again, the running store refuses writes, saying why and what to do;
  // it never acknowledges a write it cannot vouch for.
  fs_->set_failing(false);
  for (int attempt = 0; attempt < 3; ++attempt) {
    Status refused = AppendBoth(acked + 1);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.code(), StatusCode::kIoError) << refused.ToString();
    EXPECT_NE(refused.message().find("EIO"), std::string::npos) << refused.ToString();
    EXPECT_NE(refused.message().find("restart"), std::string::npos) << refused.ToString();
  }
  ExpectAcknowledged(acked);

  // Restarted on the healthy disk: everything acknowledged is there and writes resume. The
  // failed write may have reached the disk; then both groups have it, whole.
  store_.reset();
  Open();
  const raft::Index last = (*store_->Group(kGroupA))->LastIndex();
  ASSERT_TRUE(last == acked || last == acked + 1) << last;
  EXPECT_EQ((*store_->Group(kGroupB))->LastIndex(), last);
  ExpectAcknowledged(acked);
  acked = last;
  for (int i = 0; i < 10; ++i, ++acked) ASSERT_TRUE(AppendBoth(acked + 1).ok());
  ExpectAcknowledged(acked);
}

TEST_F(SyncFailureTest, ReopenAfterFailedSyncKeepsEveryAcknowledgedEntry) {
  Open();
  raft::Index acked = 0;
  for (; acked < 50; ++acked) ASSERT_TRUE(AppendBoth(acked + 1).ok());
  fs_->set_failing(true);
  ASSERT_FALSE(AppendBoth(acked + 1).ok());
  ExpectAcknowledged(acked);

  // The broker stops without the disk recovering (the close cannot sync either), then restarts
  // on a disk that works.
  store_.reset();
  fs_->set_failing(false);
  Open();
  for (RaftGroupId g : {kGroupA, kGroupB}) {
    PartitionLog* log = *store_->Group(g);
    // The failed write is an unknown outcome: present whole, or absent; never torn.
    ASSERT_GE(log->LastIndex(), acked);
    ASSERT_LE(log->LastIndex(), acked + 1);
    auto entries = log->Entries(1, log->LastIndex() + 1, UINT64_MAX);
    ASSERT_TRUE(entries.ok()) << entries.status().ToString();
    for (const raft::Entry& e : *entries) ASSERT_EQ(e.data.ToString(), Payload(g, e.index));
  }
  ExpectAcknowledged(acked);
  // One WriteBatch: both groups got the failed write, or neither did. Writes go on from there.
  const raft::Index last = (*store_->Group(kGroupA))->LastIndex();
  EXPECT_EQ((*store_->Group(kGroupB))->LastIndex(), last);
  ASSERT_TRUE(AppendBoth(last + 1).ok());
}

// Under the interval policy the failing fsync is the background one; the next write must then
// fail the same clear way, and the store must report the error as fatal.
TEST_F(SyncFailureTest, FailedBackgroundSyncUnderIntervalPolicyRefusesWrites) {
  Open(SyncPolicy::kInterval);
  raft::Index acked = 0;
  for (; acked < 20; ++acked) ASSERT_TRUE(AppendBoth(acked + 1).ok());
  ASSERT_TRUE(store_->FatalWriteError().ok());
  fs_->set_failing(true);
  for (int i = 0; i < 2000 && fs_->failed_syncs() == 0; ++i) ::usleep(1000);  // bounded: 2 s
  ASSERT_GT(fs_->failed_syncs(), 0) << "the background sync never ran";
  fs_->set_failing(false);
  Status refused = AppendBoth(acked + 1);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.code(), StatusCode::kIoError) << refused.ToString();
  EXPECT_NE(refused.message().find("restart"), std::string::npos) << refused.ToString();
  EXPECT_FALSE(store_->FatalWriteError().ok());
  ExpectAcknowledged(acked);
}

// WriteAsync: what it wrote is readable at once; on_durable answers each write once, in order,
// OK while syncs work, and with the sync's error once one fails (never OK for a write the
// failed sync should have covered); after that writes are refused until a reopen.
class AsyncOutcomes {
 public:
  std::function<void(Status)> Expect(raft::Index index) {
    return [this, index](Status s) {
      std::lock_guard lock(mu_);
      order_.push_back(index);
      results_.push_back(s);
      cv_.notify_all();
    };
  }
  // Waits (bounded) for n outcomes.
  bool WaitFor(size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return results_.size() >= n; });
  }
  std::vector<raft::Index> order() {
    std::lock_guard lock(mu_);
    return order_;
  }
  std::vector<Status> results() {
    std::lock_guard lock(mu_);
    return results_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<raft::Index> order_;
  std::vector<Status> results_;
};

TEST_F(SyncFailureTest, WriteAsyncIsReadableAtOnceDurableInOrderAndReportsAFailedSync) {
  Open();
  AsyncOutcomes outcomes;
  auto append_async = [&](raft::Index index) {
    std::vector<GroupWrite> writes(2);
    writes[0].group = kGroupA;
    writes[0].entries = {MakeEntry(index, 1, Payload(kGroupA, index))};
    writes[1].group = kGroupB;
    writes[1].entries = {MakeEntry(index, 1, Payload(kGroupB, index))};
    return store_->WriteAsync(writes, outcomes.Expect(index));
  };
  raft::Index written = 0;
  for (; written < 30; ++written) {
    ASSERT_TRUE(append_async(written + 1).ok());
    EXPECT_EQ((*store_->Group(kGroupA))->LastIndex(), written + 1) << "readable before durable";
  }
  ASSERT_TRUE(outcomes.WaitFor(30));
  std::vector<raft::Index> in_order(30);
  for (size_t i = 0; i < in_order.size(); ++i) in_order[i] = i + 1;
  EXPECT_EQ(outcomes.order(), in_order);
  for (const Status& s : outcomes.results()) EXPECT_TRUE(s.ok()) << s.ToString();
  ExpectAcknowledged(written);

  // The disk fails: the next writes are applied (page cache) but their sync fails.
  fs_->set_failing(true);
  const raft::Index acked = written;
  size_t issued = 30;
  for (int i = 0; i < 3; ++i) {
    if (!append_async(written + 1).ok()) break;  // refused once the failure is known
    ++written;
    ++issued;
  }
  ASSERT_GT(issued, 30u) << "the first write after the failure was applied before its sync";
  ASSERT_TRUE(outcomes.WaitFor(issued));
  const std::vector<Status> results = outcomes.results();
  for (size_t i = 30; i < issued; ++i) {
    EXPECT_EQ(results[i].code(), StatusCode::kIoError)
        << "write " << i + 1 << ": " << results[i].ToString();
  }
  EXPECT_GT(fs_->failed_syncs(), 0);
  EXPECT_FALSE(store_->FatalWriteError().ok());
  fs_->set_failing(false);
  EXPECT_FALSE(append_async(written + 1).ok()) << "writes after a failed sync need a restart";
  ExpectAcknowledged(acked);

  // Reopened on a healthy disk: every write reported durable is there.
  store_.reset();
  Open();
  EXPECT_GE((*store_->Group(kGroupA))->LastIndex(), acked);
  ExpectAcknowledged(acked);
}

}  // namespace
}  // namespace skiff::storage
