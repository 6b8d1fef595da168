#include "client/errors.h"

namespace skiff::client {
namespace {

std::string_view GrpcCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN_CODE";
  }
}

StatusCode ToStatusCode(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::INVALID_ARGUMENT:
      return StatusCode::kInvalidArgument;
    case grpc::StatusCode::NOT_FOUND:
      return StatusCode::kNotFound;
    case grpc::StatusCode::ALREADY_EXISTS:
      return StatusCode::kAlreadyExists;
    case grpc::StatusCode::FAILED_PRECONDITION:
      return StatusCode::kFailedPrecondition;
    case grpc::StatusCode::OUT_OF_RANGE:
      return StatusCode::kOutOfRange;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return StatusCode::kResourceExhausted;
    case grpc::StatusCode::ABORTED:
      return StatusCode::kAborted;
    case grpc::StatusCode::DATA_LOSS:
      return StatusCode::kCorruption;
    case grpc::StatusCode::UNIMPLEMENTED:
      return StatusCode::kUnimplemented;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::CANCELLED:
      return StatusCode::kUnavailable;
    default:
      return StatusCode::kInternal;
  }
}

StatusCode ToStatusCode(v1::ErrorCode code) {
  switch (code) {
    case v1::UNKNOWN_TOPIC:
    case v1::UNKNOWN_PARTITION:
    case v1::UNKNOWN_MEMBER:
      return StatusCode::kNotFound;
    case v1::NOT_LEADER:
    case v1::LEADER_NOT_AVAILABLE:
    case v1::REQUEST_TIMED_OUT:
    case v1::THROTTLED:
      return StatusCode::kUnavailable;
    case v1::INVALID_BATCH:
    case v1::INVALID_REQUEST:
      return StatusCode::kInvalidArgument;
    case v1::CORRUPT_BATCH:
      return StatusCode::kCorruption;
    case v1::BATCH_TOO_LARGE:
    case v1::OFFSET_OUT_OF_RANGE:
      return StatusCode::kOutOfRange;
    case v1::OUT_OF_SEQUENCE:
    case v1::ILLEGAL_GENERATION:
      return StatusCode::kFailedPrecondition;
    case v1::PRODUCER_FENCED:
      return StatusCode::kAborted;
    case v1::STORAGE_FULL:
      return StatusCode::kResourceExhausted;
    case v1::STORAGE_ERROR:
      return StatusCode::kIoError;
    case v1::UNSUPPORTED:
      return StatusCode::kUnimplemented;
    default:
      return StatusCode::kInternal;
  }
}

}  // namespace

Status FromGrpc(const grpc::Status& status, std::string_view address) {
  return Status(ToStatusCode(status.error_code()),
                "broker " + std::string(address) + ": " +
                    std::string(GrpcCodeName(status.error_code())) + ": " + status.error_message());
}

Status FromErrorCode(v1::ErrorCode code, std::string_view error_message, std::string_view address) {
  std::string message = "broker " + std::string(address) + ": " + v1::ErrorCode_Name(code);
  if (!error_message.empty()) message += ": " + std::string(error_message);
  return Status(ToStatusCode(code), std::move(message));
}

FailureKind ClassifyGrpc(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      // The broker may be gone for good; metadata tells us who leads now.
      return FailureKind::kRetryAfterMetadata;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
    case grpc::StatusCode::ABORTED:
      return FailureKind::kRetry;
    default:
      return FailureKind::kFatal;
  }
}

FailureKind ClassifyErrorCode(v1::ErrorCode code) {
  switch (code) {
    case v1::NOT_LEADER:
    case v1::LEADER_NOT_AVAILABLE:
    // A topic just created may not have reached every broker's metadata yet.
    case v1::UNKNOWN_TOPIC:
    case v1::UNKNOWN_PARTITION:
      return FailureKind::kRetryAfterMetadata;
    case v1::REQUEST_TIMED_OUT:
    case v1::THROTTLED:
    case v1::STORAGE_FULL:
    // After a retry, a later batch can arrive before the resent earlier one; the pipeline
    // resends in sequence order, so this heals (see partition_pipeline.h).
    case v1::OUT_OF_SEQUENCE:
      return FailureKind::kRetry;
    default:
      return FailureKind::kFatal;
  }
}

bool IsTryAnotherBroker(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED;
}

}  // namespace skiff::client
