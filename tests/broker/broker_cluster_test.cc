// Three Brokers in one process, on 127.0.0.1, talking real gRPC to each other and to the test:
// the produce/fetch contract, idempotence, and that every bad request gets its documented error
// while the broker keeps serving.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <thread>

#include "broker/broker.h"
#include "broker_test_util.h"
#include "common/record_batch.h"
#include "skiff/v1/admin.grpc.pb.h"
#include "skiff/v1/fetch.grpc.pb.h"
#include "skiff/v1/metadata.grpc.pb.h"
#include "skiff/v1/produce.grpc.pb.h"
#include "storage/partition_log.h"

namespace skiff::broker {
namespace {

using Clock = std::chrono::steady_clock;
using skiff::testing::ReservePort;
using testing::MakeBatch;
using testing::Values;

class BrokerClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new std::string(std::filesystem::temp_directory_path() /
                            ("skiff-broker-test-" + std::to_string(::getpid())));
    std::filesystem::remove_all(*root_);
    std::vector<MetadataVoter> voters;
    std::vector<BrokerOptions> options;
    for (int i = 1; i <= 3; ++i) {
      BrokerOptions o;
      o.broker_id = i;
      o.client_address = "127.0.0.1:" + std::to_string(ReservePort());
      o.raft_address = "127.0.0.1:" + std::to_string(ReservePort());
      o.data_dir = *root_ + "/b" + std::to_string(i);
      o.rack = "r" + std::to_string(i);
      voters.push_back({i, o.raft_address});
      options.push_back(o);
    }
    voters_ = new std::vector<MetadataVoter>(voters);
    brokers_ = new std::vector<std::unique_ptr<Broker>>();
    for (auto& o : options) {
      o.metadata_voters = voters;
      ASSERT_TRUE(PrepareDataDir(o.data_dir).ok());
      auto b = Broker::Start(o, Tuning());
      ASSERT_TRUE(b.ok()) << b.status().ToString();
      brokers_->push_back(std::move(*b));
    }
    // All three registered.
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    while (Clock::now() < deadline) {
      bool all = true;
      for (auto& b : *brokers_) all = all && b->metadata()->brokers().size() == 3;
      if (all) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_EQ((*brokers_)[0]->metadata()->brokers().size(), 3u);
  }

  static BrokerTuning Tuning() {
    BrokerTuning tuning;
    tuning.storage.min_free_bytes = 1 << 20;
    tuning.retention_check_interval = std::chrono::milliseconds(100);
    tuning.liveness_timeout = std::chrono::milliseconds(1500);
    tuning.leader_rebalance_interval = std::chrono::milliseconds(500);
    tuning.in_sync_check_interval = std::chrono::milliseconds(200);
    // Reports of leaderships and in-sync sets must follow their changes, not a periodic rescan.
    tuning.leadership_rescan_interval = std::chrono::minutes(10);
    // Snapshots of the metadata group, and the log dropped behind them, happen within a few
    // commands, so restarts and joins below go through them.
    tuning.metadata_snapshot_entries = 10;
    tuning.metadata_log_keep_entries = 3;
    return tuning;
  }

  // The first index still in broker b's metadata log (0 if the group did not answer).
  static raft::Index MetadataLogStart(Broker& b) {
    auto start = std::make_shared<std::promise<raft::Index>>();
    auto future = start->get_future();
    b.host().Run(kMetadataGroup,
                 [start](GroupHandle* g) { start->set_value(g ? g->log->FirstIndex() : 0); });
    if (future.wait_for(std::chrono::seconds(5)) != std::future_status::ready) return 0;
    return future.get();
  }

  static void TearDownTestSuite() {
    for (auto& b : *brokers_) b->Shutdown(std::chrono::milliseconds(0));
    delete brokers_;
    delete voters_;
    std::filesystem::remove_all(*root_);
    delete root_;
  }

  static std::shared_ptr<grpc::Channel> Channel(int broker) {
    // No leader found (-1) is a test failure reported by the caller's checks; send it to
    // broker 1 rather than index out of range.
    if (broker < 1 || broker > static_cast<int>(brokers_->size())) broker = 1;
    return grpc::CreateChannel((*brokers_)[broker - 1]->options().client_address,
                               grpc::InsecureChannelCredentials());
  }

  static void CreateTopic(const std::string& name, int partitions, int rf,
                          int32_t max_message_bytes = 0, int64_t retention_bytes = -1) {
    v1::CreateTopicRequest req;
    req.set_name(name);
    req.set_partitions(partitions);
    req.set_replication_factor(rf);
    if (max_message_bytes > 0) req.mutable_config()->set_max_message_bytes(max_message_bytes);
    if (retention_bytes >= 0) req.mutable_config()->set_retention_bytes(retention_bytes);
    v1::CreateTopicResponse resp;
    grpc::ClientContext ctx;
    auto s = v1::AdminService::NewStub(Channel(2))->CreateTopic(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << "code " << s.error_code() << ": " << s.error_message();
  }

  // The leader of a partition, waiting (bounded) for one to be elected.
  static int LeaderOf(const std::string& topic, int partition) {
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    while (Clock::now() < deadline) {
      for (auto& b : *brokers_) {
        if (b == nullptr) continue;  // stopped by the test
        auto ref = b->FindPartition(topic, partition);
        if (ref.ok() && ref->replica && ref->replica->is_leader()) {
          return static_cast<int>(b->id().value());
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }

  static v1::PartitionProduceResult Produce(int broker, const std::string& topic, int partition,
                                            const v1::RecordBatch& batch,
                                            v1::Acks acks = v1::ACKS_ALL) {
    v1::ProduceRequest req;
    req.set_acks(acks);
    auto* pb = req.add_batches();
    pb->set_topic(topic);
    pb->set_partition(partition);
    *pb->mutable_batch() = batch;
    v1::ProduceResponse resp;
    grpc::ClientContext ctx;
    auto s = v1::ProduceService::NewStub(Channel(broker))->Produce(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.results_size() ? resp.results(0) : v1::PartitionProduceResult();
  }

  // A fresh producer id (and epoch), allocated through broker 1.
  static void InitProducerId(v1::InitProducerIdResponse* out) {
    grpc::ClientContext ctx;
    ASSERT_TRUE(v1::AdminService::NewStub(Channel(1))
                    ->InitProducerId(&ctx, v1::InitProducerIdRequest(), out)
                    .ok());
  }

  // Produces to the leader, retrying while a new leader settles in.
  static v1::PartitionProduceResult ProduceToLeader(const std::string& topic, int partition,
                                                    const v1::RecordBatch& batch,
                                                    v1::Acks acks = v1::ACKS_ALL) {
    v1::PartitionProduceResult r;
    for (int attempt = 0; attempt < 200; ++attempt) {
      r = Produce(LeaderOf(topic, partition), topic, partition, batch, acks);
      if (r.error() != v1::LEADER_NOT_AVAILABLE && r.error() != v1::NOT_LEADER) return r;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return r;
  }

  static v1::FetchResponse Fetch(int broker, const std::string& topic, int partition,
                                 int64_t offset, int32_t max_wait_ms = 0) {
    v1::FetchRequest req;
    req.set_topic(topic);
    req.set_partition(partition);
    req.set_offset(offset);
    req.set_max_wait_ms(max_wait_ms);
    v1::FetchResponse resp;
    grpc::ClientContext ctx;
    auto s = v1::FetchService::NewStub(Channel(broker))->Fetch(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }

  static inline std::string* root_ = nullptr;
  static inline std::vector<MetadataVoter>* voters_ = nullptr;
  static inline std::vector<std::unique_ptr<Broker>>* brokers_ = nullptr;
};

TEST_F(BrokerClusterTest, ProducedRecordsAreFetchedInOrderWithDenseOffsets) {
  CreateTopic("basic", 2, 3);
  int64_t expected_offset = 0;
  for (int i = 0; i < 10; ++i) {
    auto r = ProduceToLeader("basic", 1, MakeBatch({"a" + std::to_string(i), "b"}));
    ASSERT_EQ(r.error(), v1::ERROR_NONE) << r.error_message();
    EXPECT_EQ(r.base_offset(), expected_offset);
    expected_offset += 2;
  }
  auto resp = Fetch(LeaderOf("basic", 1), "basic", 1, 0);
  ASSERT_EQ(resp.error(), v1::ERROR_NONE) << resp.error_message();
  EXPECT_EQ(resp.high_watermark(), 20);
  auto values = Values(resp);
  ASSERT_EQ(values.size(), 20u);
  EXPECT_EQ(values[0], "a0");
  EXPECT_EQ(values[18], "a9");
  // Fetching from the middle starts with the batch holding the offset.
  auto mid = Fetch(LeaderOf("basic", 1), "basic", 1, 5);
  ASSERT_GT(mid.batches_size(), 0);
  EXPECT_EQ(mid.batches(0).base_offset(), 4);
}

TEST_F(BrokerClusterTest, ProduceStreamPipelinesAndAnswersInOrder) {
  CreateTopic("stream", 1, 3);
  ASSERT_EQ(ProduceToLeader("stream", 0, MakeBatch({"warm"})).error(), v1::ERROR_NONE);
  grpc::ClientContext ctx;
  auto stream = v1::ProduceService::NewStub(Channel(LeaderOf("stream", 0)))->ProduceStream(&ctx);
  constexpr int kRequests = 100;
  for (int i = 0; i < kRequests; ++i) {
    v1::ProduceRequest req;
    req.set_request_id(1000 + i);
    auto* pb = req.add_batches();
    pb->set_topic("stream");
    pb->set_partition(0);
    *pb->mutable_batch() = MakeBatch({"s" + std::to_string(i)});
    ASSERT_TRUE(stream->Write(req));
  }
  stream->WritesDone();
  v1::ProduceResponse resp;
  int64_t previous = 0;
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_TRUE(stream->Read(&resp));
    EXPECT_EQ(resp.request_id(), static_cast<uint64_t>(1000 + i));
    ASSERT_EQ(resp.results(0).error(), v1::ERROR_NONE) << resp.results(0).error_message();
    EXPECT_EQ(resp.results(0).base_offset(), previous + 1);
    previous = resp.results(0).base_offset();
  }
  EXPECT_FALSE(stream->Read(&resp));
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(BrokerClusterTest, SubscribeStreamsCommittedRecordsAsTheyArrive) {
  CreateTopic("sub", 1, 3);
  ASSERT_EQ(ProduceToLeader("sub", 0, MakeBatch({"first"})).error(), v1::ERROR_NONE);
  const int leader = LeaderOf("sub", 0);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  v1::SubscribeRequest req;
  req.set_topic("sub");
  req.set_offset(0);
  auto stream = v1::FetchService::NewStub(Channel(leader))->Subscribe(&ctx, req);
  std::thread producer([&] {
    for (int i = 0; i < 3; ++i) ProduceToLeader("sub", 0, MakeBatch({"live" + std::to_string(i)}));
  });
  std::vector<std::string> got;
  v1::FetchResponse resp;
  while (got.size() < 4 && stream->Read(&resp)) {
    ASSERT_EQ(resp.error(), v1::ERROR_NONE) << resp.error_message();
    for (const auto& v : Values(resp)) got.push_back(v);
  }
  producer.join();
  ctx.TryCancel();
  EXPECT_EQ(got, (std::vector<std::string>{"first", "live0", "live1", "live2"}));
}

TEST_F(BrokerClusterTest, ListOffsetsFindsEarliestLatestAndByTimestamp) {
  CreateTopic("offsets", 1, 3);
  // Recent create times: older ones would be deleted by the default 7-day retention (the
  // fixture checks retention every 100 ms).
  const int64_t base = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count() -
                       100000;
  std::vector<v1::Record> records(2);
  records[0].set_value("old");
  records[0].set_timestamp_ms(base + 1000);
  records[1].set_value("older-batch-end");
  records[1].set_timestamp_ms(base + 2000);
  auto early = BuildRecordBatch(records, v1::COMPRESSION_NONE);
  ASSERT_TRUE(early.ok());
  early->set_producer_id(-1);
  ASSERT_EQ(ProduceToLeader("offsets", 0, *early).error(), v1::ERROR_NONE);
  records[0].set_timestamp_ms(base + 5000);
  records[1].set_timestamp_ms(base + 6000);
  auto late = BuildRecordBatch(records, v1::COMPRESSION_NONE);
  ASSERT_TRUE(late.ok());
  late->set_producer_id(-1);
  ASSERT_EQ(ProduceToLeader("offsets", 0, *late).error(), v1::ERROR_NONE);
  auto list = [&](v1::OffsetSpec spec, int64_t ts) {
    v1::ListOffsetsRequest req;
    req.set_topic("offsets");
    req.set_spec(spec);
    req.set_timestamp_ms(ts);
    v1::ListOffsetsResponse resp;
    // Leadership may move meanwhile (rebalancing): retry, bounded, on a retriable answer.
    for (int attempt = 0; attempt < 100; ++attempt) {
      grpc::ClientContext ctx;
      resp.Clear();
      EXPECT_TRUE(v1::FetchService::NewStub(Channel(LeaderOf("offsets", 0)))
                      ->ListOffsets(&ctx, req, &resp)
                      .ok());
      if (resp.error() != v1::NOT_LEADER && resp.error() != v1::LEADER_NOT_AVAILABLE) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_EQ(resp.error(), v1::ERROR_NONE) << resp.error_message();
    return resp.offset();
  };
  EXPECT_EQ(list(v1::OFFSET_SPEC_EARLIEST, 0), 0);
  EXPECT_EQ(list(v1::OFFSET_SPEC_LATEST, 0), 4);
  EXPECT_EQ(list(v1::OFFSET_SPEC_TIMESTAMP, base + 1500), 0);  // the first batch reaches +2000
  EXPECT_EQ(list(v1::OFFSET_SPEC_TIMESTAMP, base + 2500), 2);  // only the second is that recent
  EXPECT_EQ(list(v1::OFFSET_SPEC_TIMESTAMP, base + 9000), -1);
}

TEST_F(BrokerClusterTest, AcksLeaderAndNoneAreAcceptedAndCommitted) {
  CreateTopic("acks", 1, 3);
  auto r1 = ProduceToLeader("acks", 0, MakeBatch({"x"}), v1::ACKS_LEADER);
  ASSERT_EQ(r1.error(), v1::ERROR_NONE) << r1.error_message();
  EXPECT_EQ(r1.base_offset(), 0);
  auto r2 = ProduceToLeader("acks", 0, MakeBatch({"y"}), v1::ACKS_NONE);
  ASSERT_EQ(r2.error(), v1::ERROR_NONE);
  EXPECT_EQ(r2.base_offset(), -1);
  // acks=NONE answered before the append: poll (bounded) until it has committed.
  std::vector<std::string> values;
  for (int i = 0; i < 100 && values.size() < 2; ++i) {
    values = Values(Fetch(LeaderOf("acks", 0), "acks", 0, 0));
    if (values.size() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(values, (std::vector<std::string>{"x", "y"}));
}

TEST_F(BrokerClusterTest, LongPollReturnsRecordsProducedWhileWaiting) {
  CreateTopic("poll", 1, 3);
  const int leader = LeaderOf("poll", 0);
  ASSERT_EQ(ProduceToLeader("poll", 0, MakeBatch({"warm"})).error(), v1::ERROR_NONE);
  std::thread producer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    ProduceToLeader("poll", 0, MakeBatch({"late"}));
  });
  auto resp = Fetch(leader, "poll", 0, 1, /*max_wait_ms=*/10000);
  producer.join();
  EXPECT_EQ(resp.error(), v1::ERROR_NONE);
  EXPECT_EQ(Values(resp), (std::vector<std::string>{"late"}));
}

TEST_F(BrokerClusterTest, NonLeaderAnswersNotLeaderWithTheLeadersAddress) {
  CreateTopic("redirect", 1, 3);
  const int leader = LeaderOf("redirect", 0);
  ASSERT_GT(leader, 0);
  const int follower = leader % 3 + 1;
  auto r = Produce(follower, "redirect", 0, MakeBatch({"x"}));
  EXPECT_EQ(r.error(), v1::NOT_LEADER);
  // The follower may learn of the leader a moment after the leader knows itself.
  if (r.leader().broker_id() == leader) {
    EXPECT_EQ(r.leader().address(), (*brokers_)[leader - 1]->options().client_address);
  }
  auto f = Fetch(follower, "redirect", 0, 0);
  EXPECT_EQ(f.error(), v1::NOT_LEADER);
}

TEST_F(BrokerClusterTest, IdempotentRetryIsWrittenOnceAndGapsAreRejected) {
  CreateTopic("idem", 1, 3);
  v1::InitProducerIdResponse pid;
  ASSERT_NO_FATAL_FAILURE(InitProducerId(&pid));
  auto first = ProduceToLeader("idem", 0, MakeBatch({"a", "b"}, pid.producer_id(), 0, 0));
  ASSERT_EQ(first.error(), v1::ERROR_NONE) << first.error_message();
  auto retry = ProduceToLeader("idem", 0, MakeBatch({"a", "b"}, pid.producer_id(), 0, 0));
  ASSERT_EQ(retry.error(), v1::ERROR_NONE) << retry.error_message();
  EXPECT_EQ(retry.base_offset(), first.base_offset());
  auto next = ProduceToLeader("idem", 0, MakeBatch({"c"}, pid.producer_id(), 0, 2));
  ASSERT_EQ(next.error(), v1::ERROR_NONE);
  EXPECT_EQ(next.base_offset(), 2);
  auto gap = ProduceToLeader("idem", 0, MakeBatch({"e"}, pid.producer_id(), 0, 9));
  EXPECT_EQ(gap.error(), v1::OUT_OF_SEQUENCE);
  auto values = Values(Fetch(LeaderOf("idem", 0), "idem", 0, 0));
  EXPECT_EQ(values, (std::vector<std::string>{"a", "b", "c"}));
}

TEST_F(BrokerClusterTest, BadProduceRequestsGetTheirErrorAndTheBrokerKeepsServing) {
  CreateTopic("bad", 1, 3, /*max_message_bytes=*/4096);
  const int leader = LeaderOf("bad", 0);
  ASSERT_GT(leader, 0);
  EXPECT_EQ(Produce(leader, "no-such-topic", 0, MakeBatch({"x"})).error(), v1::UNKNOWN_TOPIC);
  EXPECT_EQ(Produce(leader, "bad", 7, MakeBatch({"x"})).error(), v1::UNKNOWN_PARTITION);
  EXPECT_EQ(Produce(leader, "bad", -1, MakeBatch({"x"})).error(), v1::UNKNOWN_PARTITION);
  EXPECT_EQ(Produce(leader, "bad", 0, MakeBatch({std::string(10000, 'z')})).error(),
            v1::BATCH_TOO_LARGE);
  v1::RecordBatch garbage = MakeBatch({"x"});
  garbage.set_records("\xff\xfe garbage");
  garbage.clear_crc32c();
  EXPECT_EQ(Produce(leader, "bad", 0, garbage).error(), v1::INVALID_BATCH);
  v1::RecordBatch empty = MakeBatch({"x"});
  empty.set_record_count(0);
  EXPECT_EQ(Produce(leader, "bad", 0, empty).error(), v1::INVALID_BATCH);
  v1::RecordBatch corrupt = MakeBatch({"x"});
  corrupt.set_crc32c(corrupt.crc32c() ^ 1);
  EXPECT_EQ(Produce(leader, "bad", 0, corrupt).error(), v1::CORRUPT_BATCH);
  {
    v1::ProduceRequest req;  // no batches at all
    v1::ProduceResponse resp;
    grpc::ClientContext ctx;
    auto s = v1::ProduceService::NewStub(Channel(leader))->Produce(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  {
    v1::FetchRequest req;
    req.set_topic("bad");
    req.set_offset(-5);
    v1::FetchResponse resp;
    grpc::ClientContext ctx;
    auto s = v1::FetchService::NewStub(Channel(leader))->Fetch(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  auto beyond = Fetch(leader, "bad", 0, 1000);
  EXPECT_EQ(beyond.error(), v1::OFFSET_OUT_OF_RANGE);
  EXPECT_EQ(beyond.high_watermark(), 0);
  // Nothing of the above was written, and the partition still takes good batches.
  auto ok = ProduceToLeader("bad", 0, MakeBatch({"good"}));
  ASSERT_EQ(ok.error(), v1::ERROR_NONE) << ok.error_message();
  EXPECT_EQ(ok.base_offset(), 0);
}

TEST_F(BrokerClusterTest, AdminErrorsUseTheDocumentedStatusCodes) {
  CreateTopic("admin", 1, 3);
  auto admin = v1::AdminService::NewStub(Channel(3));
  auto create = [&](const std::string& name, int partitions, int rf) {
    v1::CreateTopicRequest req;
    req.set_name(name);
    req.set_partitions(partitions);
    req.set_replication_factor(rf);
    v1::CreateTopicResponse resp;
    grpc::ClientContext ctx;
    return admin->CreateTopic(&ctx, req, &resp).error_code();
  };
  EXPECT_EQ(create("admin", 1, 3), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(create("too-many-replicas", 1, 5), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(create("bad/name", 1, 1), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(create("zero", 0, 1), grpc::StatusCode::INVALID_ARGUMENT);
  v1::DescribeTopicRequest req;
  req.set_name("missing");
  v1::DescribeTopicResponse resp;
  grpc::ClientContext ctx;
  EXPECT_EQ(admin->DescribeTopic(&ctx, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(BrokerClusterTest, MetadataFromAnyBrokerNamesTheLeaders) {
  CreateTopic("meta", 3, 3);
  for (int p = 0; p < 3; ++p) ASSERT_GT(LeaderOf("meta", p), 0);
  for (int b = 1; b <= 3; ++b) {
    v1::MetadataRequest req;
    req.add_topics("meta");
    req.add_topics("unknown");
    v1::MetadataResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(v1::MetadataService::NewStub(Channel(b))->Metadata(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.topics_size(), 1);
    EXPECT_EQ(resp.unknown_topics_size(), 1);
    EXPECT_EQ(resp.brokers_size(), 3);
    EXPECT_EQ(resp.topics(0).partitions_size(), 3);
    for (const auto& p : resp.topics(0).partitions()) EXPECT_EQ(p.replicas_size(), 3);
  }
}

TEST_F(BrokerClusterTest, RetentionDropsThePrefixAndARestartedFollowerCatchesUpFromASnapshot) {
  CreateTopic("retained", 1, 3, 0, /*retention_bytes=*/4096);
  const std::string kilobyte(1000, 'k');
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(ProduceToLeader("retained", 0, MakeBatch({kilobyte + std::to_string(i)})).error(),
              v1::ERROR_NONE);
  }
  // Stop a follower, keep producing until the leader has cut past everything it holds.
  const int leader = LeaderOf("retained", 0);
  const int follower = leader % 3 + 1;
  const BrokerOptions follower_options = (*brokers_)[follower - 1]->options();
  (*brokers_)[follower - 1]->Shutdown(std::chrono::milliseconds(0));
  (*brokers_)[follower - 1].reset();
  auto live = [&](int b) { return (*brokers_)[b - 1] != nullptr; };
  auto leader_now = [&]() -> Broker* {
    for (int b = 1; b <= 3; ++b) {
      if (!live(b)) continue;
      auto ref = (*brokers_)[b - 1]->FindPartition("retained", 0);
      if (ref.ok() && ref->replica && ref->replica->is_leader()) return (*brokers_)[b - 1].get();
    }
    return nullptr;
  };
  int produced = 5;
  int64_t leader_start = 0;
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < deadline && (produced < 40 || leader_start <= 5)) {
    Broker* l = leader_now();
    if (l == nullptr) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    if (produced < 40) {
      auto r = Produce(static_cast<int>(l->id().value()), "retained", 0,
                       MakeBatch({kilobyte + std::to_string(produced)}));
      if (r.error() == v1::ERROR_NONE) ++produced;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    leader_start = l->FindPartition("retained", 0)->replica->log()->LogStartOffset().value();
  }
  ASSERT_EQ(produced, 40);
  ASSERT_GT(leader_start, 5) << "retention never cut the leader's prefix";
  // Below the log start: OFFSET_OUT_OF_RANGE naming the valid range.
  Broker* l = leader_now();
  ASSERT_NE(l, nullptr);
  auto below = Fetch(static_cast<int>(l->id().value()), "retained", 0, 0);
  EXPECT_EQ(below.error(), v1::OFFSET_OUT_OF_RANGE);
  EXPECT_GT(below.log_start_offset(), 0);
  EXPECT_EQ(below.high_watermark(), 40);

  // The follower comes back with a log that ends before the leader's start: it must be
  // brought up to date by a snapshot, then hold the same records as the leader.
  auto restarted = Broker::Start(follower_options, Tuning());
  ASSERT_TRUE(restarted.ok()) << restarted.status().ToString();
  (*brokers_)[follower - 1] = std::move(*restarted);
  Broker& f = *(*brokers_)[follower - 1];
  const auto caught_up_by = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < caught_up_by) {
    auto ref = f.FindPartition("retained", 0);
    if (ref.ok() && ref->replica && ref->replica->high_watermark() == 40) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto ref = f.FindPartition("retained", 0);
  ASSERT_TRUE(ref.ok() && ref->replica);
  ASSERT_EQ(ref->replica->high_watermark(), 40);
  const int64_t start = ref->replica->log()->LogStartOffset().value();
  EXPECT_GT(start, 5) << "the follower kept its old prefix instead of installing the snapshot";
  v1::FetchRequest req;
  req.set_topic("retained");
  req.set_offset(start);
  req.set_max_bytes(1 << 20);
  req.set_allow_follower(true);
  req.set_client_rack(follower_options.rack);
  v1::FetchResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(v1::FetchService::NewStub(Channel(follower))->Fetch(&ctx, req, &resp).ok());
  ASSERT_EQ(resp.error(), v1::ERROR_NONE) << resp.error_message();
  auto values = Values(resp);
  ASSERT_EQ(static_cast<int64_t>(values.size()), 40 - resp.batches(0).base_offset());
  EXPECT_EQ(values.back(), kilobyte + "39");
}

TEST_F(BrokerClusterTest, TransferLeadershipMovesItAndRebalancingBringsItBack) {
  CreateTopic("moveit", 1, 3);
  const int leader = LeaderOf("moveit", 0);
  ASSERT_GT(leader, 0);
  const int target = leader % 3 + 1;
  const int other = target % 3 + 1;  // neither leader nor target: it must forward the call
  auto admin = v1::AdminService::NewStub(Channel(other));
  {
    v1::TransferLeadershipRequest req;
    req.set_topic("moveit");
    req.set_target_broker(target);
    v1::TransferLeadershipResponse resp;
    grpc::Status s;
    // Right after creation `other` may not know the leader yet: UNAVAILABLE, retriable.
    for (int attempt = 0; attempt < 100; ++attempt) {
      grpc::ClientContext ctx;
      s = admin->TransferLeadership(&ctx, req, &resp);
      if (s.error_code() != grpc::StatusCode::UNAVAILABLE) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(resp.leader(), target);
  }
  {
    v1::TransferLeadershipRequest req;
    req.set_topic("moveit");
    req.set_target_broker(9);
    v1::TransferLeadershipResponse resp;
    grpc::ClientContext ctx;
    EXPECT_EQ(admin->TransferLeadership(&ctx, req, &resp).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  {
    v1::TransferLeadershipRequest req;
    req.set_topic("no-such-topic");
    v1::TransferLeadershipResponse resp;
    grpc::ClientContext ctx;
    EXPECT_EQ(admin->TransferLeadership(&ctx, req, &resp).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  // The preferred leader (first replica, which campaigned at creation) gets it back.
  const int preferred =
      static_cast<int>((*brokers_)[0]->FindPartition("moveit", 0)->replicas.front());
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (Clock::now() < deadline && LeaderOf("moveit", 0) != preferred) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(LeaderOf("moveit", 0), preferred);
}

TEST_F(BrokerClusterTest, ADeadBrokerIsMarkedNotAliveAndAliveAgainAfterItReturns) {
  CreateTopic("isr", 1, 3);
  // Stop a broker that leads neither the metadata group nor the partition, so both leaders
  // can judge it.
  const int64_t controller = (*brokers_)[0]->metadata_leader();
  ASSERT_GT(controller, 0);
  // Leadership may still move to the preferred leader (rebalancing): keep the victim away
  // from both, and ask whoever leads at the time.
  const int partition_leader = LeaderOf("isr", 0);
  ASSERT_GT(partition_leader, 0);
  const int preferred = static_cast<int>((*brokers_)[0]->FindPartition("isr", 0)->replicas.front());
  int victim = 1;
  while (victim == controller || victim == partition_leader || victim == preferred) ++victim;
  if (victim > 3) GTEST_SKIP() << "no broker leads nothing here; placement put all on two";
  auto in_sync_at = [&](int broker) {
    v1::MetadataRequest req;
    req.add_topics("isr");
    v1::MetadataResponse resp;
    grpc::ClientContext ctx;
    EXPECT_TRUE(v1::MetadataService::NewStub(Channel(broker))->Metadata(&ctx, req, &resp).ok());
    return resp.topics_size() == 1 ? resp.topics(0).partitions(0).in_sync_size() : -1;
  };
  auto in_sync = [&] { return in_sync_at(LeaderOf("isr", 0)); };
  // Every running broker, leader or not, reports the same in-sync count (the leader's, as
  // recorded in the metadata group).
  auto everywhere = [&](int want) {
    for (size_t b = 1; b <= brokers_->size(); ++b) {
      if ((*brokers_)[b - 1] != nullptr && in_sync_at(static_cast<int>(b)) != want) return false;
    }
    return true;
  };
  auto under_replicated = [&] {
    v1::DescribeClusterResponse resp;
    grpc::ClientContext ctx;
    EXPECT_TRUE(v1::AdminService::NewStub(Channel(LeaderOf("isr", 0)))
                    ->DescribeCluster(&ctx, v1::DescribeClusterRequest(), &resp)
                    .ok());
    return resp.under_replicated_partitions();
  };
  auto eventually = [&](const std::function<bool()>& condition) {
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    while (Clock::now() < deadline && !condition()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return condition();
  };
  ASSERT_TRUE(eventually([&] { return in_sync() == 3; })) << "in_sync " << in_sync();
  const BrokerOptions victim_options = (*brokers_)[victim - 1]->options();
  (*brokers_)[victim - 1]->Shutdown(std::chrono::milliseconds(0));
  (*brokers_)[victim - 1].reset();
  Broker& observer = *(*brokers_)[controller - 1];
  auto alive = [&](int id) {
    const BrokerRecord* b = observer.metadata()->broker(id);
    return b != nullptr && b->alive;
  };
  auto wait_for = [&](bool want) {
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    while (Clock::now() < deadline && alive(victim) != want) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return alive(victim) == want;
  };
  EXPECT_TRUE(wait_for(false)) << "broker " << victim << " never marked dead";
  ASSERT_TRUE(ProduceToLeader("isr", 0, MakeBatch({"while-down"})).error() == v1::ERROR_NONE);
  EXPECT_TRUE(eventually([&] { return in_sync() == 2; })) << "in_sync " << in_sync();
  EXPECT_GE(under_replicated(), 1);
  EXPECT_TRUE(eventually([&] { return everywhere(2); }));
  auto restarted = Broker::Start(victim_options, Tuning());
  ASSERT_TRUE(restarted.ok()) << restarted.status().ToString();
  (*brokers_)[victim - 1] = std::move(*restarted);
  EXPECT_TRUE(wait_for(true)) << "broker " << victim << " never marked alive again";
  EXPECT_TRUE(eventually([&] { return in_sync() == 3; })) << "in_sync " << in_sync();
  EXPECT_TRUE(eventually([&] { return everywhere(3); }));
}

TEST_F(BrokerClusterTest, ALeaderThatCannotConfirmItLeadsDoesNotRejectASequenceGap) {
  // OUT_OF_SEQUENCE is final for a producer, so a leader gives it only after confirming that no
  // newer leader exists: a deposed leader that has not noticed yet (the chaos suite's paused
  // and resumed broker) holds a stale producer table.
  CreateTopic("confirm", 1, 3);
  v1::InitProducerIdResponse pid;
  ASSERT_NO_FATAL_FAILURE(InitProducerId(&pid));
  ASSERT_EQ(ProduceToLeader("confirm", 0, MakeBatch({"a"}, pid.producer_id(), 0, 0)).error(),
            v1::ERROR_NONE);
  const int leader = LeaderOf("confirm", 0);
  ASSERT_GT(leader, 0);
  // Cut the leader off: its two peers stop.
  std::vector<std::pair<int, BrokerOptions>> stopped;
  for (int b = 1; b <= 3; ++b) {
    if (b == leader) continue;
    stopped.emplace_back(b, (*brokers_)[b - 1]->options());
    (*brokers_)[b - 1]->Shutdown(std::chrono::milliseconds(0));
    (*brokers_)[b - 1].reset();
  }
  auto cut_off = Produce(leader, "confirm", 0, MakeBatch({"gap"}, pid.producer_id(), 0, 7));
  EXPECT_NE(cut_off.error(), v1::OUT_OF_SEQUENCE)
      << "a leader that could not confirm its leadership gave a final answer";
  EXPECT_TRUE(cut_off.error() == v1::NOT_LEADER || cut_off.error() == v1::REQUEST_TIMED_OUT)
      << v1::ErrorCode_Name(cut_off.error()) << ": " << cut_off.error_message();
  for (auto& [b, options] : stopped) {
    auto restarted = Broker::Start(options, Tuning());
    ASSERT_TRUE(restarted.ok()) << restarted.status().ToString();
    (*brokers_)[b - 1] = std::move(*restarted);
  }
  // With its peers back, a confirmed leader rejects the gap.
  auto confirmed = ProduceToLeader("confirm", 0, MakeBatch({"gap"}, pid.producer_id(), 0, 7));
  EXPECT_EQ(confirmed.error(), v1::OUT_OF_SEQUENCE) << confirmed.error_message();
  // The cluster is whole again for the tests after this one.
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < deadline && (*brokers_)[0]->metadata_leader() <= 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_GT((*brokers_)[0]->metadata_leader(), 0);
}

TEST_F(BrokerClusterTest, TheMetadataLogIsSnapshottedAndARestartedBrokerRecoversFromIt) {
  for (int i = 0; i < 12; ++i) {
    CreateTopic("meta-" + std::to_string(i), 1, 3);
    // Producer ids are counters: a command applied twice on restart would show in the state.
    v1::InitProducerIdResponse resp;
    ASSERT_NO_FATAL_FAILURE(InitProducerId(&resp));
  }
  // Every replica snapshots its metadata state and drops the log behind it (bounded wait).
  for (auto& b : *brokers_) {
    raft::Index start = 0;
    for (int i = 0; i < 100 && (start = MetadataLogStart(*b)) <= 1; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_GT(start, 1u) << "broker " << b->id() << " kept its whole metadata log";
  }
  // A restarted broker rebuilds its metadata from the snapshot plus the log after it.
  const int restarted_id = 3;
  BrokerOptions options = (*brokers_)[restarted_id - 1]->options();
  (*brokers_)[restarted_id - 1]->Shutdown(std::chrono::milliseconds(0));
  (*brokers_)[restarted_id - 1].reset();
  auto restarted = Broker::Start(options, Tuning());
  ASSERT_TRUE(restarted.ok()) << restarted.status().ToString();
  (*brokers_)[restarted_id - 1] = std::move(*restarted);
  Broker& b = *(*brokers_)[restarted_id - 1];
  // Start returns once the group runs; the entries after the snapshot are applied just after.
  const auto recovered_by = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < recovered_by && !b.metadata()->topic("meta-11")) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (int i = 0; i < 12; ++i) {
    const TopicRecord* t = b.metadata()->topic("meta-" + std::to_string(i));
    ASSERT_NE(t, nullptr) << "meta-" << i;
    EXPECT_EQ(t->partitions.size(), 1u);
  }
  EXPECT_EQ(b.metadata()->brokers().size(), (*brokers_)[0]->metadata()->brokers().size());
  // And it takes part in new commands.
  CreateTopic("meta-after-restart", 1, 3);
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < deadline && !b.metadata()->topic("meta-after-restart")) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_NE(b.metadata()->topic("meta-after-restart"), nullptr);
  // Every replica holds the same state, byte for byte (leadership reports settle; bounded).
  auto all_equal = [&] {
    const std::string first = (*brokers_)[0]->metadata()->EncodeSnapshot();
    for (auto& other : *brokers_) {
      if (other->metadata()->EncodeSnapshot() != first) return false;
    }
    return true;
  };
  for (int i = 0; i < 200 && !all_equal(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(all_equal());
}

TEST_F(BrokerClusterTest, ABrokerOnAPortInUseRefusesToStartAndNamesIt) {
  // A single-voter broker 7 whose Raft port, then client port, broker 1 already listens on.
  const BrokerOptions& taken = (*brokers_)[0]->options();
  for (const bool raft_port_taken : {true, false}) {
    const std::string fresh = "127.0.0.1:" + std::to_string(ReservePort());
    BrokerOptions o;
    o.broker_id = 7;
    o.raft_address = raft_port_taken ? taken.raft_address : fresh;
    o.client_address = raft_port_taken ? fresh : taken.client_address;
    o.data_dir = *root_ + (raft_port_taken ? "/b7-raft" : "/b7-client");
    o.metadata_voters = {{7, o.raft_address}};
    ASSERT_TRUE(PrepareDataDir(o.data_dir).ok());
    auto started = Broker::Start(o, Tuning());
    ASSERT_FALSE(started.ok()) << "broker 7 shares "
                               << (raft_port_taken ? "the Raft" : "the client")
                               << " port of broker 1";
    const std::string& address = raft_port_taken ? taken.raft_address : taken.client_address;
    EXPECT_NE(started.status().message().find("cannot listen on " + address), std::string::npos)
        << started.status().ToString();
  }
  // Broker 1 kept both ports: clients and peers still reach it.
  CreateTopic("ports-kept", 1, 3);
  EXPECT_EQ(ProduceToLeader("ports-kept", 0, MakeBatch({"x"})).error(), v1::ERROR_NONE);
  v1::MetadataRequest req;
  v1::MetadataResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(v1::MetadataService::NewStub(Channel(1))->Metadata(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.brokers_size(), 3);
}

TEST_F(BrokerClusterTest, ABrokerOutsideTheVotersJoinsAsALearnerAndHostsReplicas) {
  CreateTopic("before-join", 1, 3);
  // The voters' metadata logs must no longer start at 1, so that the new broker can only catch
  // up by installing a snapshot of the metadata state (bounded: a few more commands if this
  // test runs alone).
  for (int i = 0; i < 30 && MetadataLogStart(*(*brokers_)[0]) <= 1; ++i) {
    CreateTopic("pad-" + std::to_string(i), 1, 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_GT(MetadataLogStart(*(*brokers_)[0]), 1u);
  BrokerOptions o;
  o.broker_id = 4;
  o.client_address = "127.0.0.1:" + std::to_string(ReservePort());
  o.raft_address = "127.0.0.1:" + std::to_string(ReservePort());
  o.data_dir = *root_ + "/b4";
  o.rack = "r4";
  o.metadata_voters = *voters_;
  ASSERT_TRUE(PrepareDataDir(o.data_dir).ok());
  BrokerTuning tuning;
  tuning.storage.min_free_bytes = 1 << 20;
  auto joined = Broker::Start(o, tuning);
  ASSERT_TRUE(joined.ok()) << joined.status().ToString();
  Broker& b4 = **joined;
  // Broker 4 joins the fixture's list (so LeaderOf and Channel see it) for this test only; it
  // is the last test of the suite because the cluster keeps broker 4 registered afterwards.
  brokers_->push_back(std::move(*joined));
  // It registers through the voters, is added as a learner and catches up on the metadata log.
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < deadline &&
         !(b4.metadata()->topic("before-join") && b4.metadata()->broker(4) &&
           (*brokers_)[0]->metadata()->broker(4))) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_NE(b4.metadata()->topic("before-join"), nullptr);
  ASSERT_NE((*brokers_)[0]->metadata()->broker(4), nullptr);
  // Broker 4 hosts no replica of "before-join", yet its Metadata answer names the partition's
  // leader (reported to the metadata group by the leader's broker).
  auto b4_channel = grpc::CreateChannel(o.client_address, grpc::InsecureChannelCredentials());
  int leader = 0;
  int64_t reported = -1;
  for (int i = 0; i < 100 && reported != leader; ++i) {
    leader = LeaderOf("before-join", 0);
    ASSERT_GT(leader, 0);
    v1::MetadataRequest req;
    req.add_topics("before-join");
    v1::MetadataResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(v1::MetadataService::NewStub(b4_channel)->Metadata(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.topics_size(), 1);
    reported = resp.topics(0).partitions(0).leader();
    if (reported != leader) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(reported, leader);
  // With four brokers a replication factor of 4 can be placed, so broker 4 hosts a replica.
  CreateTopic("after-join", 1, 4);
  auto r = ProduceToLeader("after-join", 0, MakeBatch({"hello"}));
  ASSERT_EQ(r.error(), v1::ERROR_NONE) << r.error_message();
  std::vector<std::string> values;
  for (int i = 0; i < 200 && values.empty(); ++i) {
    auto ref = b4.FindPartition("after-join", 0);
    ASSERT_TRUE(ref.ok());
    if (ref->replica && ref->replica->high_watermark() >= 1) {
      v1::FetchRequest req;
      req.set_topic("after-join");
      req.set_allow_follower(true);
      req.set_client_rack("r4");
      v1::FetchResponse resp;
      grpc::ClientContext ctx;
      auto channel = grpc::CreateChannel(o.client_address, grpc::InsecureChannelCredentials());
      ASSERT_TRUE(v1::FetchService::NewStub(channel)->Fetch(&ctx, req, &resp).ok());
      values = Values(resp);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  EXPECT_EQ(values, (std::vector<std::string>{"hello"}));
  b4.Shutdown(std::chrono::milliseconds(0));
  brokers_->pop_back();
}

}  // namespace
}  // namespace skiff::broker
