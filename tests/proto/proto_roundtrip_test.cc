// The v1 messages survive serialization, and the wire contract's defaults mean what the
// .proto comments say (a client in another language relies on exactly these).
#include <gtest/gtest.h>

#include "skiff/internal/raft.pb.h"
#include "skiff/v1/admin.pb.h"
#include "skiff/v1/fetch.pb.h"
#include "skiff/v1/groups.pb.h"
#include "skiff/v1/metadata.pb.h"
#include "skiff/v1/produce.pb.h"

namespace skiff {
namespace {

template <typename T>
T RoundTrip(const T& message) {
  std::string wire;
  EXPECT_TRUE(message.SerializeToString(&wire));
  T back;
  EXPECT_TRUE(back.ParseFromString(wire));
  return back;
}

TEST(ProtoRoundTripTest, ProduceRequestKeepsEveryField) {
  v1::ProduceRequest request;
  request.set_request_id(42);
  request.set_acks(v1::ACKS_LEADER);
  request.set_timeout_ms(1500);
  v1::PartitionBatch* pb = request.add_batches();
  pb->set_topic("orders");
  pb->set_partition(3);
  v1::RecordBatch* batch = pb->mutable_batch();
  batch->set_record_count(2);
  batch->set_producer_id(7);
  batch->set_producer_epoch(1);
  batch->set_base_sequence(100);
  batch->set_compression(v1::COMPRESSION_ZSTD);
  batch->set_crc32c(0);  // zero is a valid checksum and must stay distinguishable from unset
  batch->set_records(std::string("\x00\xff\x01", 3));

  v1::ProduceRequest back = RoundTrip(request);
  EXPECT_EQ(back.SerializeAsString(), request.SerializeAsString());
  ASSERT_EQ(back.batches_size(), 1);
  EXPECT_TRUE(back.batches(0).batch().has_crc32c());
  EXPECT_EQ(back.batches(0).batch().crc32c(), 0u);
  EXPECT_EQ(back.batches(0).batch().records(), std::string("\x00\xff\x01", 3));
}

TEST(ProtoRoundTripTest, DefaultsAreTheDocumentedOnes) {
  v1::ProduceRequest request;
  EXPECT_EQ(request.acks(), v1::ACKS_ALL) << "an unset acks must mean the safe level";
  v1::RecordBatch batch;
  EXPECT_FALSE(batch.has_crc32c()) << "unset CRC means: the leader computes it";
  EXPECT_EQ(batch.compression(), v1::COMPRESSION_NONE);
  v1::FetchResponse response;
  EXPECT_EQ(response.error(), v1::ERROR_NONE);
  v1::TopicConfig config;
  EXPECT_FALSE(config.has_retention_ms()) << "unset config means the cluster default";
}

TEST(ProtoRoundTripTest, ErrorResultCarriesLeaderHint) {
  v1::PartitionProduceResult result;
  result.set_error(v1::NOT_LEADER);
  result.mutable_leader()->set_broker_id(2);
  result.mutable_leader()->set_address("127.0.0.1:9093");
  v1::PartitionProduceResult back = RoundTrip(result);
  EXPECT_EQ(back.error(), v1::NOT_LEADER);
  EXPECT_EQ(back.leader().broker_id(), 2);
  EXPECT_EQ(back.leader().address(), "127.0.0.1:9093");
}

TEST(ProtoRoundTripTest, MetadataAdminAndGroupsRoundTrip) {
  v1::MetadataResponse md;
  md.set_cluster_id("c1");
  auto* b = md.add_brokers();
  b->set_id(1);
  b->set_rack("r1");
  b->set_alive(true);
  auto* t = md.add_topics();
  t->set_name("t");
  auto* p = t->add_partitions();
  p->set_leader(1);
  p->add_replicas(1);
  p->add_replicas(2);
  p->add_learners(3);
  EXPECT_EQ(RoundTrip(md).SerializeAsString(), md.SerializeAsString());

  v1::CreateTopicRequest create;
  create.set_name("t");
  create.set_partitions(16);
  create.set_replication_factor(3);
  create.mutable_config()->set_retention_ms(-1);
  v1::CreateTopicRequest create_back = RoundTrip(create);
  EXPECT_TRUE(create_back.config().has_retention_ms());
  EXPECT_EQ(create_back.config().retention_ms(), -1);
  EXPECT_FALSE(create_back.config().has_retention_bytes());

  v1::GroupHeartbeatResponse hb;
  hb.set_member_id("m-1");
  hb.set_member_epoch(3);
  auto* tp = hb.mutable_assignment()->add_partitions();
  tp->set_topic("t");
  tp->add_partitions(0);
  tp->add_partitions(5);
  v1::GroupHeartbeatResponse hb_back = RoundTrip(hb);
  EXPECT_TRUE(hb_back.has_assignment());
  EXPECT_EQ(hb_back.assignment().partitions(0).partitions(1), 5);
}

TEST(ProtoRoundTripTest, RaftTransportBatchesManyGroups) {
  internal::MessageBatch frame;
  frame.set_from_broker(1);
  frame.set_to_broker(2);
  for (uint64_t g = 0; g < 100; ++g) {
    auto* hb = frame.add_heartbeats();
    hb->set_group(g);
    hb->set_term(5);
    hb->set_commit(1000 + g);
  }
  auto* m = frame.add_messages();
  m->set_group(7);
  auto* e = m->add_entries();
  e->set_term(5);
  e->set_index(11);
  e->set_data(std::string(4096, 'x'));
  internal::MessageBatch back = RoundTrip(frame);
  ASSERT_EQ(back.heartbeats_size(), 100);
  EXPECT_EQ(back.heartbeats(99).commit(), 1099u);
  EXPECT_EQ(back.messages(0).entries(0).data().size(), 4096u);
}

TEST(ProtoRoundTripTest, GarbageBytesAreRejectedNotCrashing) {
  // A truncated varint/length prefix must fail to parse rather than produce a message.
  v1::ProduceRequest request;
  EXPECT_FALSE(request.ParseFromString(std::string("\x22\xff\xff\xff\xff\x0f", 6)));
}

}  // namespace
}  // namespace skiff
