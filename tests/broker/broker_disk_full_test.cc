// Disk full on a partition leader, end to end: three in-process brokers, each with its data on
// its own small tmpfs. The leader's disk is filled (a ballast file, then produced records) until
// it refuses appends. A full leader answers STORAGE_FULL while it still leads; since it can no
// longer persist (or heartbeat), its followers soon elect a leader that has space, and the full
// broker answers NOT_LEADER. Either way it never acknowledges what it could not store, keeps
// serving reads of everything acknowledged, and the partition takes writes again (at the new
// leader, or once space returns), with nothing acknowledged lost or duplicated. Needs root to
// mount tmpfs; skipped otherwise.
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "broker/broker.h"
#include "broker_test_util.h"
#include "skiff/v1/admin.grpc.pb.h"
#include "skiff/v1/fetch.grpc.pb.h"
#include "skiff/v1/produce.grpc.pb.h"

namespace skiff::broker {
namespace {

using Clock = std::chrono::steady_clock;
using testing::FreePort;
using testing::MakeBatch;
using testing::Values;

constexpr uint64_t kMiB = 1 << 20;

void WriteBallast(const std::string& path, uint64_t bytes) {
  std::ofstream out(path, std::ios::binary);
  const std::string chunk(kMiB, 'b');
  for (uint64_t i = 0; i < bytes / kMiB; ++i) out.write(chunk.data(), chunk.size());
}

// `log` must hold every acknowledged record exactly once, in acknowledgement order; between them
// only records whose produce timed out (outcome unknown) may appear, each at most once.
void ExpectAckedInOrderAmongUnknown(const std::vector<std::string>& log,
                                    const std::vector<std::string>& acked,
                                    std::vector<std::string> unknown) {
  size_t next = 0;
  for (size_t i = 0; i < log.size(); ++i) {
    if (next < acked.size() && log[i] == acked[next]) {
      ++next;
      continue;
    }
    auto it = std::find(unknown.begin(), unknown.end(), log[i]);
    ASSERT_NE(it, unknown.end()) << "offset " << i << " holds a record that was not sent, "
                                 << "or an acknowledged one out of order or twice";
    unknown.erase(it);
  }
  EXPECT_EQ(next, acked.size()) << "acknowledged records missing";
}

class BrokerDiskFullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ =
        std::filesystem::temp_directory_path() / ("skiff-disk-full-" + std::to_string(::getpid()));
    std::filesystem::remove_all(root_);
    std::vector<MetadataVoter> voters;
    for (int i = 1; i <= 3; ++i) {
      const std::string mount_point = root_ + "/m" + std::to_string(i);
      std::filesystem::create_directories(mount_point);
      if (::mount("tmpfs", mount_point.c_str(), "tmpfs", 0, "size=24m") != 0) {
        GTEST_SKIP() << "cannot mount a tmpfs (needs root / CAP_SYS_ADMIN): "
                     << std::strerror(errno);
      }
      mounts_.push_back(mount_point);
      BrokerOptions o;
      o.broker_id = i;
      o.client_address = "127.0.0.1:" + std::to_string(FreePort());
      o.raft_address = "127.0.0.1:" + std::to_string(FreePort());
      o.data_dir = mount_point + "/data";
      o.rack = "r" + std::to_string(i);
      voters.push_back({i, o.raft_address});
      options_.push_back(o);
    }
    for (auto& o : options_) {
      o.metadata_voters = voters;
      ASSERT_TRUE(PrepareDataDir(o.data_dir).ok());
      BrokerTuning tuning;
      // Small buffers and files so a few MiB of records reach the disk; no preallocation,
      // which fails on a tiny tmpfs long before it is full.
      tuning.storage.log_write_buffer_size_bytes = kMiB;
      tuning.storage.max_total_wal_size_bytes = 2 * kMiB;
      tuning.storage.blob_file_size_bytes = kMiB;
      tuning.storage.allow_fallocate = false;
      tuning.storage.min_free_bytes = 2 * kMiB;
      auto b = Broker::Start(o, tuning);
      ASSERT_TRUE(b.ok()) << b.status().ToString();
      brokers_.push_back(std::move(*b));
    }
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    while (Clock::now() < deadline && brokers_[0]->metadata()->brokers().size() < 3) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_EQ(brokers_[0]->metadata()->brokers().size(), 3u);
  }

  void TearDown() override {
    for (auto& b : brokers_) b->Shutdown(std::chrono::milliseconds(0));
    brokers_.clear();
    for (const auto& m : mounts_) {
      EXPECT_EQ(::umount2(m.c_str(), MNT_DETACH), 0) << std::strerror(errno);
    }
    std::filesystem::remove_all(root_);
  }

  int LeaderOf(const std::string& topic) {
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    while (Clock::now() < deadline) {
      for (auto& b : brokers_) {
        auto ref = b->FindPartition(topic, 0);
        if (ref.ok() && ref->replica && ref->replica->is_leader()) {
          return static_cast<int>(b->id().value());
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }

  std::shared_ptr<grpc::Channel> Channel(int broker) {
    return grpc::CreateChannel(options_[broker - 1].client_address,
                               grpc::InsecureChannelCredentials());
  }

  v1::PartitionProduceResult Produce(int broker, const v1::RecordBatch& batch,
                                     int32_t timeout_ms = 3000) {
    v1::ProduceRequest req;
    req.set_timeout_ms(timeout_ms);
    auto* pb = req.add_batches();
    pb->set_topic("full");
    pb->set_partition(0);
    *pb->mutable_batch() = batch;
    v1::ProduceResponse resp;
    grpc::ClientContext ctx;
    auto s = v1::ProduceService::NewStub(Channel(broker))->Produce(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.results_size() ? resp.results(0) : v1::PartitionProduceResult();
  }

  // Everything committed, read from `broker` whether it leads or follows (follower read).
  std::vector<std::string> ReadAll(int broker) {
    std::vector<std::string> all;
    for (int i = 0; i < 1000; ++i) {
      v1::FetchRequest req;
      req.set_topic("full");
      req.set_allow_follower(true);
      req.set_client_rack(options_[broker - 1].rack);
      req.set_offset(static_cast<int64_t>(all.size()));
      req.set_max_bytes(4 << 20);
      v1::FetchResponse resp;
      grpc::ClientContext ctx;
      if (!v1::FetchService::NewStub(Channel(broker))->Fetch(&ctx, req, &resp).ok()) break;
      EXPECT_EQ(resp.error(), v1::ERROR_NONE) << resp.error_message();
      if (resp.error() != v1::ERROR_NONE || resp.batches_size() == 0) break;
      auto values = Values(resp);
      const int64_t skip = static_cast<int64_t>(all.size()) - resp.batches(0).base_offset();
      all.insert(all.end(), values.begin() + skip, values.end());
    }
    return all;
  }

  std::string root_;
  std::vector<std::string> mounts_;
  std::vector<BrokerOptions> options_;
  std::vector<std::unique_ptr<Broker>> brokers_;
};

TEST_F(BrokerDiskFullTest, LeaderRefusesWithStorageFullKeepsServingReadsAndResumes) {
  {
    v1::CreateTopicRequest req;
    req.set_name("full");
    req.set_partitions(1);
    req.set_replication_factor(3);
    v1::CreateTopicResponse resp;
    grpc::ClientContext ctx;
    auto s = v1::AdminService::NewStub(Channel(1))->CreateTopic(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  const int leader = LeaderOf("full");
  ASSERT_GT(leader, 0);
  // The leader gets less room than its followers, so it is the one that runs out.
  const std::string ballast = mounts_[leader - 1] + "/ballast";
  WriteBallast(ballast, 10 * kMiB);

  const std::string value(60 * 1024, 'v');
  std::vector<std::string> acked;
  std::vector<std::string> unknown;
  v1::ErrorCode refusal = v1::ERROR_NONE;
  for (int i = 0; i < 1000 && refusal == v1::ERROR_NONE; ++i) {
    const std::string record = std::to_string(i) + ":" + value;
    // A short timeout, so that the first request after the disk fills is answered by the full
    // leader itself while it still leads (STORAGE_FULL), not only after it lost leadership.
    auto r = Produce(leader, MakeBatch({record}), /*timeout_ms=*/150);
    if (r.error() == v1::ERROR_NONE) {
      // Unknown (timed-out) batches before it may or may not have taken an offset.
      ASSERT_GE(r.base_offset(), static_cast<int64_t>(acked.size()));
      ASSERT_LE(r.base_offset(), static_cast<int64_t>(acked.size() + unknown.size()));
      acked.push_back(record);
    } else if (r.error() == v1::STORAGE_FULL || r.error() == v1::NOT_LEADER) {
      refusal = r.error();
    } else if (r.error() == v1::REQUEST_TIMED_OUT) {
      // Proposed just before the leader's write failed: the followers may still commit it (a
      // quorum without the leader), so its outcome is unknown; it was never acknowledged.
      unknown.push_back(record);
    } else {
      FAIL() << "unexpected error " << v1::ErrorCode_Name(r.error()) << ": " << r.error_message();
    }
  }
  ASSERT_NE(refusal, v1::ERROR_NONE)
      << "the leader never refused (" << acked.size() << " batches acknowledged)";
  ASSERT_GT(acked.size(), 10u);
  std::printf("full leader refused with %s after %zu acknowledged, %zu unknown\n",
              v1::ErrorCode_Name(refusal).c_str(), acked.size(), unknown.size());

  // Reads keep working on the full broker, and hold every acknowledged record.
  std::vector<std::string> read = ReadAll(leader);
  ExpectAckedInOrderAmongUnknown(read, acked, unknown);
  for (auto& b : brokers_) ASSERT_TRUE(b->metadata()->topic("full")) << "broker still serves";

  // Space returns: appends resume (bounded wait for the broker to notice).
  std::filesystem::remove(ballast);
  bool resumed = false;
  for (int i = 0; i < 200 && !resumed; ++i) {
    const int l = LeaderOf("full");
    auto r = Produce(l, MakeBatch({"after"}));
    if (r.error() == v1::ERROR_NONE) {
      resumed = true;
    } else {
      if (r.error() == v1::REQUEST_TIMED_OUT) unknown.push_back("after");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ASSERT_TRUE(resumed) << "appends did not resume after space returned";
  read = ReadAll(LeaderOf("full"));
  ASSERT_FALSE(read.empty());
  EXPECT_EQ(read.back(), "after");
  read.pop_back();
  ExpectAckedInOrderAmongUnknown(read, acked, unknown);
}

}  // namespace
}  // namespace skiff::broker
