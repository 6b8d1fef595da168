#include "broker/validation.h"

#include <gtest/gtest.h>

#include "broker/status_to_grpc.h"

namespace skiff::broker {
namespace {

TEST(ValidationTest, TopicNames) {
  for (const char* good : {"a", "orders", "Orders.v2", "a-b_c.d", "0"}) {
    EXPECT_TRUE(ValidateTopicName(good).ok()) << good;
  }
  EXPECT_TRUE(ValidateTopicName(std::string(249, 'x')).ok());
  for (std::string bad : {std::string(), std::string("."), std::string(".."), std::string(250, 'x'),
                          std::string("a b"), std::string("a/b"), std::string("caf\xc3\xa9"),
                          std::string("a\0b", 3)}) {
    Status s = ValidateTopicName(bad);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_FALSE(s.message().empty());
  }
}

v1::CreateTopicRequest GoodCreate() {
  v1::CreateTopicRequest r;
  r.set_name("t");
  r.set_partitions(4);
  r.set_replication_factor(3);
  return r;
}

TEST(ValidationTest, CreateTopic) {
  EXPECT_TRUE(ValidateCreateTopic(GoodCreate()).ok());

  auto r = GoodCreate();
  r.set_partitions(0);
  EXPECT_EQ(ValidateCreateTopic(r).code(), StatusCode::kInvalidArgument);
  r = GoodCreate();
  r.set_replication_factor(0);
  EXPECT_EQ(ValidateCreateTopic(r).code(), StatusCode::kInvalidArgument);
  r = GoodCreate();
  r.mutable_config()->set_retention_ms(-2);
  EXPECT_EQ(ValidateCreateTopic(r).code(), StatusCode::kInvalidArgument);
  r = GoodCreate();
  r.mutable_config()->set_max_message_bytes(0);
  EXPECT_EQ(ValidateCreateTopic(r).code(), StatusCode::kInvalidArgument);
  r = GoodCreate();
  r.mutable_config()->set_min_insync_replicas(4);
  EXPECT_EQ(ValidateCreateTopic(r).code(), StatusCode::kInvalidArgument);

  r = GoodCreate();
  for (int p = 0; p < 4; ++p) {
    auto* list = r.add_replica_assignment();
    list->add_brokers(1);
    list->add_brokers(2);
    list->add_brokers(3);
  }
  EXPECT_TRUE(ValidateCreateTopic(r).ok());
  r.mutable_replica_assignment(2)->set_brokers(1, 1);
  Status dup = ValidateCreateTopic(r);
  EXPECT_EQ(dup.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(dup.message().find("twice"), std::string::npos) << dup.message();
  r.mutable_replica_assignment()->RemoveLast();
  EXPECT_EQ(ValidateCreateTopic(r).code(), StatusCode::kInvalidArgument);
}

TEST(ValidationTest, ProduceRequest) {
  v1::ProduceRequest r;
  EXPECT_EQ(ValidateProduceRequest(r).code(), StatusCode::kInvalidArgument) << "no batches";
  r.add_batches()->set_topic("t");
  EXPECT_TRUE(ValidateProduceRequest(r).ok());
  r.set_acks(static_cast<v1::Acks>(17));
  EXPECT_EQ(ValidateProduceRequest(r).code(), StatusCode::kInvalidArgument);
  r.set_acks(v1::ACKS_NONE);
  r.set_timeout_ms(-1);
  EXPECT_EQ(ValidateProduceRequest(r).code(), StatusCode::kInvalidArgument);
  r.set_timeout_ms(kMaxProduceTimeoutMs + 1);
  EXPECT_EQ(ValidateProduceRequest(r).code(), StatusCode::kInvalidArgument);
}

TEST(ValidationTest, FetchRequest) {
  v1::FetchRequest r;
  r.set_topic("t");
  EXPECT_TRUE(ValidateFetchRequest(r).ok());
  r.set_offset(-1);
  Status negative = ValidateFetchRequest(r);
  EXPECT_EQ(negative.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(negative.message().find("offset"), std::string::npos);
  r.set_offset(0);
  r.set_partition(-3);
  EXPECT_EQ(ValidateFetchRequest(r).code(), StatusCode::kInvalidArgument);
  r.set_partition(0);
  r.set_max_bytes(-5);
  EXPECT_EQ(ValidateFetchRequest(r).code(), StatusCode::kInvalidArgument);
  r.set_max_bytes(0);
  r.set_max_wait_ms(kMaxFetchWaitMs + 1);
  EXPECT_EQ(ValidateFetchRequest(r).code(), StatusCode::kInvalidArgument);

  v1::SubscribeRequest s;
  s.set_topic("t");
  EXPECT_TRUE(ValidateSubscribeRequest(s).ok());
  s.set_offset(-10);
  EXPECT_EQ(ValidateSubscribeRequest(s).code(), StatusCode::kInvalidArgument);
}

TEST(ValidationTest, BatchStatusToPartitionError) {
  EXPECT_EQ(ErrorCodeForBatchStatus(Status::Ok()), v1::ERROR_NONE);
  EXPECT_EQ(ErrorCodeForBatchStatus(CorruptionError("x")), v1::CORRUPT_BATCH);
  EXPECT_EQ(ErrorCodeForBatchStatus(OutOfRangeError("x")), v1::BATCH_TOO_LARGE);
  EXPECT_EQ(ErrorCodeForBatchStatus(InvalidArgumentError("x")), v1::INVALID_BATCH);
  EXPECT_EQ(ErrorCodeForBatchStatus(ResourceExhaustedError("x")), v1::STORAGE_FULL);
}

TEST(ValidationTest, RefusedProposalToPartitionError) {
  EXPECT_EQ(ErrorCodeForProposeStatus(FailedPreconditionError("not leader")), v1::NOT_LEADER);
  // A leadership transfer in progress: the client must find the new leader (this was
  // THROTTLED, which clients retried against the old leader; seen as a CI failure).
  EXPECT_EQ(ErrorCodeForProposeStatus(AbortedError("leadership transfer in progress")),
            v1::LEADER_NOT_AVAILABLE);
  EXPECT_EQ(ErrorCodeForProposeStatus(ResourceExhaustedError("too many uncommitted bytes")),
            v1::THROTTLED);
  EXPECT_EQ(ErrorCodeForProposeStatus(IoError("disk")), v1::STORAGE_ERROR);
}

TEST(StatusToGrpcTest, EveryCodeMapsToItsDocumentedGrpcCode) {
  EXPECT_TRUE(ToGrpcStatus(Status::Ok()).ok());
  grpc::Status s = ToGrpcStatus(FailedPreconditionError("not leader; leader is 127.0.0.1:9093"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(s.error_message(), "not leader; leader is 127.0.0.1:9093");
  EXPECT_EQ(GrpcCodeFor(StatusCode::kResourceExhausted), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(GrpcCodeFor(StatusCode::kCorruption), grpc::StatusCode::DATA_LOSS);
  EXPECT_EQ(GrpcCodeFor(StatusCode::kIoError), grpc::StatusCode::UNAVAILABLE);
  for (int c = 1; c <= static_cast<int>(StatusCode::kInternal); ++c) {
    EXPECT_NE(GrpcCodeFor(static_cast<StatusCode>(c)), grpc::StatusCode::OK) << c;
    EXPECT_NE(GrpcCodeFor(static_cast<StatusCode>(c)), grpc::StatusCode::UNKNOWN) << c;
  }
}

}  // namespace
}  // namespace skiff::broker
