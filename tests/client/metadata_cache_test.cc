#include "client/metadata_cache.h"

#include <gtest/gtest.h>

namespace skiff::client {
namespace {

v1::MetadataResponse ThreeBrokersOneTopic() {
  v1::MetadataResponse r;
  for (int id = 1; id <= 3; ++id) {
    v1::Broker* b = r.add_brokers();
    b->set_id(id);
    b->set_address("h" + std::to_string(id) + ":909" + std::to_string(id));
    b->set_rack("rack" + std::to_string(id));
  }
  v1::TopicMetadata* t = r.add_topics();
  t->set_name("orders");
  for (int p = 0; p < 2; ++p) {
    v1::PartitionMetadata* pm = t->add_partitions();
    pm->set_partition(p);
    pm->set_leader(p == 0 ? 2 : -1);
    for (int id = 1; id <= 3; ++id) pm->add_replicas(id);
  }
  return r;
}

TEST(MetadataCache, LeaderAddressFirst) {
  MetadataCache cache;
  cache.Update(ThreeBrokersOneTopic());
  EXPECT_EQ(cache.PartitionCount("orders"), 2);
  EXPECT_EQ(cache.CandidateAddresses("orders", 0), (std::vector<std::string>{"h2:9092"}));
}

TEST(MetadataCache, UnknownLeaderFallsBackToReplicas) {
  MetadataCache cache;
  cache.Update(ThreeBrokersOneTopic());
  EXPECT_EQ(cache.CandidateAddresses("orders", 1),
            (std::vector<std::string>{"h1:9091", "h2:9092", "h3:9093"}));
}

TEST(MetadataCache, LeaderHintUpdatesLeaderAndAddress) {
  MetadataCache cache;
  cache.Update(ThreeBrokersOneTopic());
  v1::LeaderHint hint;
  hint.set_broker_id(3);
  hint.set_address("moved:1234");
  cache.ApplyLeaderHint("orders", 0, hint);
  EXPECT_EQ(cache.CandidateAddresses("orders", 0), (std::vector<std::string>{"moved:1234"}));
  cache.ForgetLeader("orders", 0);
  EXPECT_EQ(cache.Partition("orders", 0)->leader, -1);
  EXPECT_EQ(cache.CandidateAddresses("orders", 0).size(), 3u);
}

TEST(MetadataCache, ReplicaInRack) {
  MetadataCache cache;
  cache.Update(ThreeBrokersOneTopic());
  EXPECT_EQ(cache.ReplicaInRack("orders", 0, "rack3"), "h3:9093");
  EXPECT_FALSE(cache.ReplicaInRack("orders", 0, "rack9").has_value());
  EXPECT_FALSE(cache.ReplicaInRack("orders", 0, "").has_value());
  EXPECT_FALSE(cache.ReplicaInRack("other", 0, "rack1").has_value());
}

TEST(MetadataCache, UnknownTopicsAreDropped) {
  MetadataCache cache;
  cache.Update(ThreeBrokersOneTopic());
  v1::MetadataResponse gone;
  gone.add_unknown_topics("orders");
  cache.Update(gone);
  EXPECT_FALSE(cache.PartitionCount("orders").has_value());
  EXPECT_TRUE(cache.CandidateAddresses("orders", 0).empty());
  EXPECT_EQ(cache.AllBrokerAddresses().size(), 3u);  // brokers are kept
}

TEST(MetadataCache, OutOfRangePartitionIsUnknown) {
  MetadataCache cache;
  cache.Update(ThreeBrokersOneTopic());
  EXPECT_FALSE(cache.Partition("orders", 2).has_value());
  EXPECT_FALSE(cache.Partition("orders", -1).has_value());
  v1::LeaderHint hint;
  hint.set_broker_id(1);
  cache.ApplyLeaderHint("orders", 7, hint);  // ignored, no crash
}

}  // namespace
}  // namespace skiff::client
