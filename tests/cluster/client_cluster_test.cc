// The C++ client against a real 3-broker cluster: admin calls, the idempotent producer across a
// leader crash (every acknowledged record exactly once, in order), and the consumer's errors.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "client/client.h"
#include "client/consumer.h"
#include "client/producer.h"
#include "cluster_harness.h"

namespace skiff::testing {
namespace {

using client::Client;
using client::Consumer;
using client::Producer;

class ClientClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ClusterOptions options;
    options.skiffd_path = SKIFFD_PATH;
    options.brokers = 3;
    Result<std::unique_ptr<ClusterHarness>> started = ClusterHarness::Start(options);
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    cluster_ = std::move(started).value();
    client::ClientOptions client_options;
    client_options.bootstrap_brokers = {cluster_->ClientAddress(0), cluster_->ClientAddress(1),
                                        cluster_->ClientAddress(2)};
    Result<std::unique_ptr<Client>> made = Client::Create(client_options);
    ASSERT_TRUE(made.ok());
    client_ = std::move(made).value();
  }

  void CreateTopic(const std::string& name, int partitions) {
    v1::CreateTopicRequest request;
    request.set_name(name);
    request.set_partitions(partitions);
    request.set_replication_factor(3);
    Result<v1::CreateTopicResponse> created = client_->CreateTopic(request);
    ASSERT_TRUE(created.ok()) << created.status().ToString();
  }

  // Every record of a partition from offset 0 to the high watermark.
  std::vector<client::ConsumedRecord> ReadAll(const std::string& topic, int32_t partition) {
    Consumer consumer(*client_);
    Result<int64_t> end = consumer.ListOffset(topic, partition, v1::OFFSET_SPEC_LATEST);
    EXPECT_TRUE(end.ok()) << end.status().ToString();
    std::vector<client::ConsumedRecord> out;
    int64_t offset = 0;
    while (end.ok() && offset < *end) {  // bounded: each round advances or fails
      Result<client::FetchResult> fetched = consumer.Fetch(topic, partition, offset);
      if (!fetched.ok() || fetched->next_offset <= offset) {
        ADD_FAILURE() << "fetch at " << offset << ": " << fetched.status().ToString();
        break;
      }
      for (auto& r : fetched->records) out.push_back(std::move(r));
      offset = fetched->next_offset;
    }
    return out;
  }

  std::unique_ptr<ClusterHarness> cluster_;
  std::unique_ptr<Client> client_;
};

TEST_F(ClientClusterTest, AdminCalls) {
  CreateTopic("admin-topic", 2);
  Result<v1::ListTopicsResponse> list = client_->ListTopics(false);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->topics_size(), 1);
  EXPECT_EQ(list->topics(0).name(), "admin-topic");
  Result<v1::DescribeTopicResponse> described = client_->DescribeTopic("admin-topic");
  ASSERT_TRUE(described.ok());
  EXPECT_EQ(described->topic().partitions_size(), 2);
  Result<v1::DescribeClusterResponse> info = client_->DescribeCluster();
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->brokers_size(), 3);
  EXPECT_EQ(client_->PartitionCount("admin-topic").value(), 2);
  EXPECT_TRUE(client_->DeleteTopic("admin-topic").ok());
  // Brokers apply metadata asynchronously; the delete shows everywhere soon, not at once.
  Result<v1::DescribeTopicResponse> gone = client_->DescribeTopic("admin-topic");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (gone.ok() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    gone = client_->DescribeTopic("admin-topic");
  }
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.status().code(), StatusCode::kNotFound);
  EXPECT_NE(gone.status().message().find("broker 127.0.0.1:"), std::string::npos)
      << gone.status().ToString();
}

TEST_F(ClientClusterTest, IdempotentProducerSurvivesLeaderCrashExactlyOnceInOrder) {
  constexpr int kPartitions = 3;
  constexpr int kRecords = 3000;
  CreateTopic("orders", kPartitions);
  client::ProducerOptions options;
  options.linger_ms = 2;
  options.batch_bytes = 2048;  // many small batches: a deep in-flight window
  options.max_in_flight = 5;
  Result<std::unique_ptr<Producer>> made = Producer::Create(*client_, options);
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  Producer& producer = **made;

  std::mutex mu;
  std::map<int32_t, std::vector<std::pair<int64_t, std::string>>> acked;  // partition -> acks
  int failed = 0;
  std::string first_error;
  auto send = [&](int i) {
    v1::Record record;
    record.set_key("key-" + std::to_string(i % 17));
    record.set_value("value-" + std::to_string(i));
    Status status = producer.Send(
        "orders", -1, record, [&, value = record.value()](const Result<client::RecordMetadata>& r) {
          std::lock_guard lock(mu);
          if (r.ok()) {
            acked[r->partition].emplace_back(r->offset, value);
          } else {
            ++failed;
            if (first_error.empty()) first_error = r.status().ToString();
          }
        });
    ASSERT_TRUE(status.ok()) << status.ToString();
  };
  for (int i = 0; i < kRecords / 2; ++i) send(i);
  // Crash the leader of partition 0 while batches are in flight.
  Result<v1::MetadataResponse> md = client_->Metadata({"orders"});
  ASSERT_TRUE(md.ok());
  const int64_t leader = md->topics(0).partitions(0).leader();
  const int victim = leader >= 1 ? static_cast<int>(leader - 1) : 0;
  ASSERT_TRUE(cluster_->Kill(victim).ok());
  for (int i = kRecords / 2; i < kRecords; ++i) send(i);
  producer.Flush();
  ASSERT_TRUE(cluster_->Restart(victim).ok());
  producer.Close();

  std::lock_guard lock(mu);
  EXPECT_EQ(failed, 0) << first_error;
  size_t total = 0;
  for (int32_t p = 0; p < kPartitions; ++p) {
    std::vector<client::ConsumedRecord> log = ReadAll("orders", p);
    auto& acks = acked[p];
    total += acks.size();
    ASSERT_EQ(log.size(), acks.size()) << "partition " << p << ": written != acknowledged";
    std::map<int64_t, std::string> by_offset(acks.begin(), acks.end());
    ASSERT_EQ(by_offset.size(), acks.size()) << "two records acknowledged at one offset";
    int last_index = -1;
    for (const client::ConsumedRecord& r : log) {
      EXPECT_EQ(by_offset[r.offset], r.record.value()) << "offset " << r.offset;
      // Send order within the partition: the value's index increases with the offset.
      const int index = std::stoi(r.record.value().substr(6));
      EXPECT_GT(index, last_index) << "partition " << p << " reordered at " << r.offset;
      last_index = index;
    }
  }
  EXPECT_EQ(total, static_cast<size_t>(kRecords));
}

TEST_F(ClientClusterTest, ConsumerReportsTheValidRange) {
  CreateTopic("small", 1);
  Result<std::unique_ptr<Producer>> producer = Producer::Create(*client_, {});
  ASSERT_TRUE(producer.ok());
  v1::Record record;
  record.set_value("only");
  Result<client::RecordMetadata> sent = (*producer)->Send("small", 0, record).get();
  ASSERT_TRUE(sent.ok()) << sent.status().ToString();
  EXPECT_EQ(sent->offset, 0);
  Consumer consumer(*client_);
  Result<client::FetchResult> beyond = consumer.Fetch("small", 0, 5);
  ASSERT_EQ(beyond.status().code(), StatusCode::kOutOfRange) << beyond.status().ToString();
  EXPECT_NE(beyond.status().message().find("[0, 1]"), std::string::npos)
      << beyond.status().ToString();
  Result<client::FetchResult> fetched = consumer.Fetch("small", 0, 0);
  ASSERT_TRUE(fetched.ok());
  ASSERT_EQ(fetched->records.size(), 1u);
  EXPECT_EQ(fetched->records[0].record.value(), "only");
  EXPECT_FALSE((*producer)->Send("no-such-topic", 0, record).get().ok());
}

TEST_F(ClientClusterTest, ProducerGivesUpAtDeliveryTimeout) {
  CreateTopic("doomed", 1);
  ASSERT_TRUE(client_->Metadata({"doomed"}).ok());
  client::ProducerOptions options;
  options.delivery_timeout_ms = 2000;
  options.request_timeout_ms = 1000;
  Result<std::unique_ptr<Producer>> producer = Producer::Create(*client_, options);
  ASSERT_TRUE(producer.ok()) << producer.status().ToString();
  for (int i = 0; i < cluster_->size(); ++i) ASSERT_TRUE(cluster_->Kill(i).ok());
  v1::Record record;
  record.set_value("lost");
  std::future<Result<client::RecordMetadata>> outcome = (*producer)->Send("doomed", 0, record);
  // Bounded: the delivery timeout plus the metadata calls the sender makes meanwhile.
  ASSERT_EQ(outcome.wait_for(std::chrono::seconds(120)), std::future_status::ready);
  Result<client::RecordMetadata> result = outcome.get();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kUnavailable) << result.status().ToString();
  (*producer)->Close();
}

}  // namespace
}  // namespace skiff::testing
