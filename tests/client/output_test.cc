#include "output.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace skiff::cli {
namespace {

v1::TopicMetadata Topic() {
  v1::TopicMetadata t;
  t.set_name("orders");
  t.set_id("abc");
  v1::PartitionMetadata* p = t.add_partitions();
  p->set_partition(0);
  p->set_leader(2);
  p->set_leader_epoch(4);
  p->add_replicas(1);
  p->add_replicas(2);
  p->add_in_sync(2);
  return t;
}

TEST(Output, TopicText) {
  v1::TopicConfig config;
  config.set_retention_ms(1000);
  EXPECT_EQ(FormatTopic(Topic(), &config, Format::kText),
            "topic orders  id abc  partitions 1\n"
            "  partition 0  leader 2  epoch 4  replicas 1,2  in_sync 2\n"
            "  config retention_ms=1000\n");
}

TEST(Output, TopicJsonParses) {
  auto j = nlohmann::json::parse(FormatTopic(Topic(), nullptr, Format::kJson));
  EXPECT_EQ(j["name"], "orders");
  EXPECT_EQ(j["partitions"][0]["leader"], 2);
  EXPECT_EQ(j["partitions"][0]["replicas"], (std::vector<int64_t>{1, 2}));
  EXPECT_FALSE(j.contains("config"));
}

TEST(Output, RecordTextIsTheValue) {
  client::ConsumedRecord r;
  r.offset = 7;
  r.record.set_value("hello");
  EXPECT_EQ(FormatRecord(r, Format::kText), "hello\n");
}

TEST(Output, RecordJsonFallsBackToBatchTimestampAndSurvivesBadUtf8) {
  client::ConsumedRecord r;
  r.offset = 7;
  r.record.set_key("k");
  r.record.set_value(std::string("\xff\xfe", 2));
  r.batch_max_timestamp_ms = 1234;
  auto j = nlohmann::json::parse(FormatRecord(r, Format::kJson));
  EXPECT_EQ(j["offset"], 7);
  EXPECT_EQ(j["key"], "k");
  EXPECT_EQ(j["timestamp"], 1234);
  EXPECT_TRUE(j["value"].is_string());
}

TEST(Output, ClusterAndList) {
  v1::DescribeClusterResponse c;
  c.set_cluster_id("c1");
  c.set_controller_id(1);
  v1::Broker* b = c.add_brokers();
  b->set_id(1);
  b->set_address("h:1");
  b->set_alive(true);
  EXPECT_NE(FormatCluster(c, Format::kText).find("broker 1  h:1  rack -  alive"),
            std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(FormatCluster(c, Format::kJson))["brokers"][0]["address"], "h:1");
  v1::ListTopicsResponse list;
  v1::TopicSummary* t = list.add_topics();
  t->set_name("a");
  t->set_partitions(3);
  t->set_replication_factor(2);
  EXPECT_EQ(FormatTopicList(list, Format::kText), "a\tpartitions=3\treplication_factor=2\n");
}

TEST(Output, BenchJson) {
  BenchReport r;
  r.topic = "b";
  r.record_size = 1024;
  r.seconds = 2;
  r.acked = 2048;
  r.consumed = 2048;
  r.verified = true;
  r.p99_us = 1500;
  auto j = nlohmann::json::parse(FormatBench(r, Format::kJson));
  EXPECT_EQ(j["records_per_s"], 1024.0);
  EXPECT_EQ(j["mb_per_s"], 1.0);
  EXPECT_EQ(j["latency_us"]["p99"], 1500);
  EXPECT_TRUE(j["verified"]);
  EXPECT_NE(FormatBench(r, Format::kText).find("p99 1.500"), std::string::npos);
}

}  // namespace
}  // namespace skiff::cli
