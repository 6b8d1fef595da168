#include "client/errors.h"

#include <gtest/gtest.h>

namespace skiff::client {
namespace {

TEST(Errors, GrpcStatusNamesBrokerAndCode) {
  Status s =
      FromGrpc(grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection refused"), "10.0.0.1:9092");
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_EQ(s.message(), "broker 10.0.0.1:9092: UNAVAILABLE: connection refused");
  EXPECT_EQ(FromGrpc(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, ""), "b:1").code(),
            StatusCode::kUnimplemented);
}

TEST(Errors, ErrorCodeNamesBrokerAndCode) {
  Status s = FromErrorCode(v1::UNKNOWN_TOPIC, "no such topic", "b:1");
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "broker b:1: UNKNOWN_TOPIC: no such topic");
}

TEST(Errors, RetriableProduceErrors) {
  for (v1::ErrorCode code :
       {v1::REQUEST_TIMED_OUT, v1::THROTTLED, v1::STORAGE_FULL, v1::OUT_OF_SEQUENCE}) {
    EXPECT_EQ(ClassifyErrorCode(code), FailureKind::kRetry) << v1::ErrorCode_Name(code);
  }
  for (v1::ErrorCode code : {v1::NOT_LEADER, v1::LEADER_NOT_AVAILABLE, v1::UNKNOWN_TOPIC}) {
    EXPECT_EQ(ClassifyErrorCode(code), FailureKind::kRetryAfterMetadata)
        << v1::ErrorCode_Name(code);
  }
  for (v1::ErrorCode code : {v1::INVALID_BATCH, v1::CORRUPT_BATCH, v1::BATCH_TOO_LARGE,
                             v1::PRODUCER_FENCED, v1::INVALID_REQUEST, v1::STORAGE_ERROR}) {
    EXPECT_EQ(ClassifyErrorCode(code), FailureKind::kFatal) << v1::ErrorCode_Name(code);
  }
}

TEST(Errors, RetriableGrpcCodes) {
  EXPECT_EQ(ClassifyGrpc(grpc::StatusCode::UNAVAILABLE), FailureKind::kRetryAfterMetadata);
  EXPECT_EQ(ClassifyGrpc(grpc::StatusCode::DEADLINE_EXCEEDED), FailureKind::kRetryAfterMetadata);
  EXPECT_EQ(ClassifyGrpc(grpc::StatusCode::INVALID_ARGUMENT), FailureKind::kFatal);
  EXPECT_EQ(ClassifyGrpc(grpc::StatusCode::UNIMPLEMENTED), FailureKind::kFatal);
  EXPECT_TRUE(IsTryAnotherBroker(grpc::StatusCode::UNAVAILABLE));
  EXPECT_FALSE(IsTryAnotherBroker(grpc::StatusCode::NOT_FOUND));
}

}  // namespace
}  // namespace skiff::client
