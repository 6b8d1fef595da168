// Storage faults on a partition leader, end to end, with three in-process brokers.
//
// Disk full: each broker has its data on its own small tmpfs. The leader's disk is filled (a
// ballast file, then produced records) until it refuses appends. A full leader answers STORAGE_FULL
// while it still leads; since it can no longer persist (or heartbeat), its followers soon elect a
// leader that has space, and the full broker answers NOT_LEADER. Either way it never acknowledges
// what it could not store, keeps serving reads of everything acknowledged, and the partition takes
// writes again (at the new leader, or once space returns), with nothing acknowledged lost or
// duplicated. Needs root to mount tmpfs; skipped otherwise.
//
// fsync failing with EIO: every broker's RocksDB runs on a file system that can fail its syncs.
// The leader's fails: it acknowledges nothing it could not sync, its followers elect a new
// leader that takes the writes, the failed broker keeps serving reads of what it has and reports
// NOT_SERVING on its health service, and once restarted on a healthy disk it catches up, with
// every replica holding every acknowledged record once, in order.
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "broker/broker.h"
#include "broker_test_util.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "skiff/v1/admin.grpc.pb.h"
#include "skiff/v1/fetch.grpc.pb.h"
#include "skiff/v1/metadata.grpc.pb.h"
#include "skiff/v1/produce.grpc.pb.h"
#include "storage/failing_sync_file_system.h"

namespace skiff::broker {
namespace {

using Clock = std::chrono::steady_clock;
using skiff::testing::ReservePort;
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

enum class Disk { kSmallTmpfs, kFailingSync };

// Parameter: Raft's async storage writes (RaftHostOptions::async_storage_writes) on or off.
class BrokerStorageFaultTest : public ::testing::TestWithParam<bool> {
 protected:
  // Starts three brokers; returns false (the test skips) if the disks cannot be set up.
  bool StartCluster(Disk disk) {
    root_ = std::filesystem::temp_directory_path() /
            ("skiff-storage-fault-" + std::to_string(::getpid()));
    std::filesystem::remove_all(root_);
    std::vector<MetadataVoter> voters;
    for (int i = 1; i <= 3; ++i) {
      const std::string mount_point = root_ + "/m" + std::to_string(i);
      std::filesystem::create_directories(mount_point);
      if (disk == Disk::kSmallTmpfs) {
        if (::mount("tmpfs", mount_point.c_str(), "tmpfs", 0, "size=24m") != 0) {
          skip_reason_ = std::string("cannot mount a tmpfs (needs root / CAP_SYS_ADMIN): ") +
                         std::strerror(errno);
          return false;
        }
        mounts_.push_back(mount_point);
      }
      BrokerOptions o;
      o.broker_id = i;
      o.client_address = "127.0.0.1:" + std::to_string(ReservePort());
      o.raft_address = "127.0.0.1:" + std::to_string(ReservePort());
      o.data_dir = mount_point + "/data";
      o.rack = "r" + std::to_string(i);
      voters.push_back({i, o.raft_address});
      options_.push_back(o);
    }
    for (auto& o : options_) {
      o.metadata_voters = voters;
      EXPECT_TRUE(PrepareDataDir(o.data_dir).ok());
      BrokerTuning tuning;
      tuning.host.async_storage_writes = GetParam();
      tuning.host.idle_sync_in_place = idle_sync_in_place_;
      if (disk == Disk::kSmallTmpfs) {
        // Small buffers and files so a few MiB of records reach the disk; no preallocation,
        // which fails on a tiny tmpfs long before it is full.
        tuning.storage.log_write_buffer_size_bytes = kMiB;
        tuning.storage.max_total_wal_size_bytes = 2 * kMiB;
        tuning.storage.blob_file_size_bytes = kMiB;
        tuning.storage.allow_fallocate = false;
        tuning.storage.min_free_bytes = 2 * kMiB;
      } else {
        file_systems_.push_back(std::make_shared<storage::testing::FailingSyncFileSystem>(
            rocksdb::FileSystem::Default()));
        tuning.storage.file_system = file_systems_.back();
      }
      tunings_.push_back(tuning);
      auto b = Broker::Start(o, tuning);
      EXPECT_TRUE(b.ok()) << b.status().ToString();
      if (!b.ok()) return true;
      brokers_.push_back(std::move(*b));
    }
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    while (Clock::now() < deadline && brokers_[0]->metadata()->brokers().size() < 3) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_EQ(brokers_[0]->metadata()->brokers().size(), 3u);
    return true;
  }

  // The leader `broker` names in its Metadata answer (-1: none, or no answer).
  int MetadataLeader(int broker, const std::string& topic, int partition = 0) {
    if (!brokers_[broker - 1]) return -1;
    v1::MetadataRequest req;
    req.add_topics(topic);
    v1::MetadataResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    if (!v1::MetadataService::NewStub(Channel(broker))->Metadata(&ctx, req, &resp).ok() ||
        resp.topics_size() != 1 || resp.topics(0).partitions_size() <= partition) {
      return -1;
    }
    return static_cast<int>(resp.topics(0).partitions(partition).leader());
  }

  // Where a client is sent: the first leader named by any broker's Metadata, asking brokers in
  // order (bounded wait).
  int ClientLeaderOf(const std::string& topic, int partition = 0) {
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    while (Clock::now() < deadline) {
      for (int b = 1; b <= 3; ++b) {
        if (int leader = MetadataLeader(b, topic, partition); leader > 0) return leader;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }

  void CreateTopic(const std::string& name, int partitions = 1) {
    v1::CreateTopicRequest req;
    req.set_name(name);
    req.set_partitions(partitions);
    req.set_replication_factor(3);
    v1::CreateTopicResponse resp;
    grpc::ClientContext ctx;
    auto s = v1::AdminService::NewStub(Channel(1))->CreateTopic(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  void TearDown() override {
    for (auto& fs : file_systems_) fs->set_stalled(false);
    for (auto& b : brokers_) {
      if (b) b->Shutdown(std::chrono::milliseconds(0));
    }
    brokers_.clear();
    for (const auto& m : mounts_) {
      EXPECT_EQ(::umount2(m.c_str(), MNT_DETACH), 0) << std::strerror(errno);
    }
    std::filesystem::remove_all(root_);
  }

  int LeaderOf(const std::string& topic, int avoid = 0) {
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    while (Clock::now() < deadline) {
      for (auto& b : brokers_) {
        if (!b || static_cast<int>(b->id().value()) == avoid) continue;
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
                                     int32_t timeout_ms = 3000, const std::string& topic = "full") {
    v1::ProduceRequest req;
    req.set_timeout_ms(timeout_ms);
    req.set_acks(v1::ACKS_ALL);
    auto* pb = req.add_batches();
    pb->set_topic(topic);
    pb->set_partition(0);
    *pb->mutable_batch() = batch;
    v1::ProduceResponse resp;
    grpc::ClientContext ctx;
    auto s = v1::ProduceService::NewStub(Channel(broker))->Produce(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.results_size() ? resp.results(0) : v1::PartitionProduceResult();
  }

  // Everything committed, read from `broker` whether it leads or follows (follower read).
  std::vector<std::string> ReadAll(int broker, const std::string& topic = "full") {
    std::vector<std::string> all;
    for (int i = 0; i < 1000; ++i) {
      v1::FetchRequest req;
      req.set_topic(topic);
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

  // A consumer's ordinary read (from the leader, not a follower read) at `broker`: served with
  // records, or answered NOT_LEADER naming a leader to go to.
  void ExpectPlainReadServedOrRedirected(int broker, const std::string& topic) {
    v1::FetchRequest req;
    req.set_topic(topic);
    req.set_offset(0);
    req.set_max_wait_ms(0);
    v1::FetchResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    ASSERT_TRUE(v1::FetchService::NewStub(Channel(broker))->Fetch(&ctx, req, &resp).ok());
    if (resp.error() == v1::ERROR_NONE) {
      EXPECT_FALSE(Values(resp).empty());
    } else {
      EXPECT_EQ(resp.error(), v1::NOT_LEADER) << resp.error_message();
      EXPECT_GT(resp.leader().broker_id(), 0) << resp.error_message();
    }
  }

  bool idle_sync_in_place_ = true;  // RaftHostOptions::idle_sync_in_place
  std::string root_;
  std::string skip_reason_;
  std::vector<std::string> mounts_;
  std::vector<BrokerOptions> options_;
  std::vector<BrokerTuning> tunings_;
  std::vector<std::shared_ptr<storage::testing::FailingSyncFileSystem>> file_systems_;
  std::vector<std::unique_ptr<Broker>> brokers_;
};

TEST_P(BrokerStorageFaultTest, FullLeaderRefusesWithStorageFullKeepsServingReadsAndResumes) {
  if (!StartCluster(Disk::kSmallTmpfs)) GTEST_SKIP() << skip_reason_;
  ASSERT_FALSE(HasFailure());
  CreateTopic("full");
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
  ExpectPlainReadServedOrRedirected(leader, "full");
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

// Two of three replicas' disks hang (fsync never returns): the one healthy replica cannot commit
// alone, so nothing is acknowledged however long a produce waits, whether a worker waits for its
// fsync (sync writes) or goes on and only holds back what the fsync must precede (async writes:
// a host that let an append's acknowledgement out before its fsync returned, or counted the
// leader's own unsynced entries, would commit with the healthy follower). Once the disks return,
// writes commit again and nothing acknowledged is lost.
TEST_P(BrokerStorageFaultTest, HungFsyncOnTwoReplicasAcknowledgesNothingUntilTheyReturn) {
  // An idle worker would sync in place, waiting like a sync-writes worker (the other
  // parameter); this test is about what an async worker holds back while it goes on.
  idle_sync_in_place_ = false;
  ASSERT_TRUE(StartCluster(Disk::kFailingSync));
  ASSERT_FALSE(HasFailure());
  CreateTopic("hang");
  const int leader = LeaderOf("hang");
  ASSERT_GT(leader, 0);
  auto first = Produce(leader, MakeBatch({"before"}), 3000, "hang");
  ASSERT_EQ(first.error(), v1::ERROR_NONE) << first.error_message();
  const int hung_follower = leader % 3 + 1;
  const int healthy = 6 - leader - hung_follower;
  file_systems_[leader - 1]->set_stalled(true);
  file_systems_[hung_follower - 1]->set_stalled(true);

  std::vector<std::string> unknown;
  for (int i = 0; i < 5; ++i) {
    const std::string record = "during-" + std::to_string(i);
    auto r = Produce(leader, MakeBatch({record}), 400, "hang");
    ASSERT_NE(r.error(), v1::ERROR_NONE)
        << record << " acknowledged while only broker " << healthy << " could sync";
    unknown.push_back(record);
  }
  // The healthy follower's committed log did not grow either.
  EXPECT_EQ(ReadAll(healthy, "hang"), std::vector<std::string>{"before"});

  file_systems_[leader - 1]->set_stalled(false);
  file_systems_[hung_follower - 1]->set_stalled(false);
  bool resumed = false;
  for (int i = 0; i < 200 && !resumed; ++i) {
    const int l = ClientLeaderOf("hang");
    ASSERT_GT(l, 0);
    auto r = Produce(l, MakeBatch({"after"}), 1000, "hang");
    if (r.error() == v1::ERROR_NONE) {
      resumed = true;
    } else {
      if (r.error() == v1::REQUEST_TIMED_OUT) unknown.push_back("after");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ASSERT_TRUE(resumed) << "writes did not resume once the disks returned";
  std::vector<std::string> read = ReadAll(ClientLeaderOf("hang"), "hang");
  ASSERT_FALSE(read.empty());
  EXPECT_EQ(read.back(), "after");
  read.pop_back();
  ExpectAckedInOrderAmongUnknown(read, {"before"}, unknown);
}

// The serving status a broker's health service reports for the whole server ("").
grpc::health::v1::HealthCheckResponse::ServingStatus OverallHealth(
    const std::shared_ptr<grpc::Channel>& channel) {
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  if (!grpc::health::v1::Health::NewStub(channel)->Check(&ctx, req, &resp).ok()) {
    return grpc::health::v1::HealthCheckResponse::UNKNOWN;
  }
  return resp.status();
}

TEST_P(BrokerStorageFaultTest, LeaderFsyncEioFailsOverKeepsReadsAndRecoversAfterRestart) {
  ASSERT_TRUE(StartCluster(Disk::kFailingSync));
  ASSERT_FALSE(HasFailure());
  CreateTopic("eio");
  const int failed = LeaderOf("eio");
  ASSERT_GT(failed, 0);
  // An idle partition the failing broker also leads: nothing is produced to it, so only the
  // broker fencing itself lets its followers (quiesced) elect a new leader.
  CreateTopic("eio-idle", 3);
  int idle_partition = -1;
  for (int p = 0; p < 3; ++p) {
    if (ClientLeaderOf("eio-idle", p) == failed) idle_partition = p;
  }
  ASSERT_GE(idle_partition, 0) << "placement spreads preferred leaders, so one is broker "
                               << failed;
  EXPECT_EQ(OverallHealth(Channel(failed)), grpc::health::v1::HealthCheckResponse::SERVING);

  std::vector<std::string> acked;
  std::vector<std::string> unknown;
  for (int i = 0; i < 20; ++i) {
    const std::string record = "before-" + std::to_string(i);
    auto r = Produce(failed, MakeBatch({record}), 3000, "eio");
    ASSERT_EQ(r.error(), v1::ERROR_NONE) << r.error_message();
    ASSERT_EQ(r.base_offset(), static_cast<int64_t>(acked.size()));
    acked.push_back(record);
  }
  const size_t acked_before = acked.size();

  // The leader's disk starts failing every fsync. Produce to whoever leads, with a short
  // timeout, until ten records are acknowledged by a new leader (bounded).
  file_systems_[failed - 1]->set_failing(true);
  std::set<v1::ErrorCode> refusals;
  int new_leader = -1;
  size_t acked_after = 0;
  for (int i = 0; i < 400 && acked_after < 10; ++i) {
    const std::string record = "after-" + std::to_string(i);
    // Found the way a client finds it: Metadata from the brokers.
    const int leader = ClientLeaderOf("eio");
    ASSERT_GT(leader, 0);
    auto r = Produce(leader, MakeBatch({record}), 300, "eio");
    if (r.error() == v1::ERROR_NONE) {
      ASSERT_NE(leader, failed) << "acknowledged by the broker whose fsync fails";
      new_leader = leader;
      ++acked_after;
      acked.push_back(record);
    } else if (r.error() == v1::REQUEST_TIMED_OUT) {
      unknown.push_back(record);  // proposed, never acknowledged: outcome unknown
    } else if (r.error() == v1::STORAGE_ERROR || r.error() == v1::NOT_LEADER ||
               r.error() == v1::LEADER_NOT_AVAILABLE) {
      refusals.insert(r.error());
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    } else {
      FAIL() << "unexpected error " << v1::ErrorCode_Name(r.error()) << ": " << r.error_message();
    }
  }
  ASSERT_EQ(acked_after, 10u) << "no new leader took writes after the leader's fsync failed";
  ASSERT_GT(new_leader, 0);
  std::printf("fsync EIO on broker %d: refusals seen:", failed);
  for (auto code : refusals) std::printf(" %s", v1::ErrorCode_Name(code).c_str());
  std::printf("; broker %d leads now; %zu unknown\n", new_leader, unknown.size());

  // The failed broker says so on its health service, and still serves reads of what it holds:
  // every record acknowledged before the fault, in order.
  for (int i = 0; i < 100 && OverallHealth(Channel(failed)) !=
                                 grpc::health::v1::HealthCheckResponse::NOT_SERVING;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(OverallHealth(Channel(failed)), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  // Asked directly, it refuses: it cannot store anything.
  auto direct = Produce(failed, MakeBatch({"direct"}), 300, "eio");
  EXPECT_TRUE(direct.error() == v1::STORAGE_ERROR || direct.error() == v1::NOT_LEADER)
      << v1::ErrorCode_Name(direct.error()) << ": " << direct.error_message();
  // It no longer names itself leader, and the idle partition it led fails over too.
  EXPECT_NE(MetadataLeader(failed, "eio"), failed);
  int idle_leader = -1;
  for (int i = 0; i < 400; ++i) {
    idle_leader = MetadataLeader(new_leader, "eio-idle", idle_partition);
    if (idle_leader > 0 && idle_leader != failed) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(idle_leader > 0 && idle_leader != failed)
      << "idle partition still led by " << idle_leader;
  // A plain consumer read (not a follower read) at the failed broker is served, or sent to a
  // known leader: never left without anywhere to go.
  ExpectPlainReadServedOrRedirected(failed, "eio");
  std::vector<std::string> held = ReadAll(failed, "eio");
  ASSERT_GE(held.size(), acked_before);
  EXPECT_EQ(std::vector<std::string>(held.begin(), held.begin() + acked_before),
            std::vector<std::string>(acked.begin(), acked.begin() + acked_before));

  // Restarted on a healthy disk, it catches up: every replica ends byte-identical, holding every
  // acknowledged record once and in order (bounded wait).
  brokers_[failed - 1]->Shutdown(std::chrono::milliseconds(0));
  brokers_[failed - 1].reset();
  file_systems_[failed - 1]->set_failing(false);
  auto restarted = Broker::Start(options_[failed - 1], tunings_[failed - 1]);
  ASSERT_TRUE(restarted.ok()) << restarted.status().ToString();
  brokers_[failed - 1] = std::move(*restarted);
  // Leadership may move again as it rejoins: retry as a client does (bounded).
  v1::PartitionProduceResult last;
  for (int i = 0; i < 100; ++i) {
    last = Produce(ClientLeaderOf("eio"), MakeBatch({"last"}), 1000, "eio");
    if (last.error() == v1::ERROR_NONE) break;
    if (last.error() == v1::REQUEST_TIMED_OUT) unknown.push_back("last");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(last.error(), v1::ERROR_NONE) << last.error_message();
  acked.push_back("last");
  std::vector<std::string> replicas[3];
  for (int i = 0; i < 200; ++i) {
    for (int b = 1; b <= 3; ++b) replicas[b - 1] = ReadAll(b, "eio");
    if (replicas[0] == replicas[1] && replicas[1] == replicas[2] && !replicas[0].empty() &&
        replicas[0].back() == "last") {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(replicas[0], replicas[1]);
  EXPECT_EQ(replicas[1], replicas[2]);
  ExpectAckedInOrderAmongUnknown(replicas[failed - 1], acked, unknown);
  EXPECT_EQ(OverallHealth(Channel(failed)), grpc::health::v1::HealthCheckResponse::SERVING);
}

INSTANTIATE_TEST_SUITE_P(Writes, BrokerStorageFaultTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Async" : "Sync";
                         });

}  // namespace
}  // namespace skiff::broker
