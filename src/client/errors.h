// How the client turns what a broker says into skiff::Status, and which failures are worth a
// retry. Two sources of failure exist: the gRPC status of a call (transport, UNIMPLEMENTED,
// whole-request problems) and the per-partition skiff.v1.ErrorCode inside a response.
//
// Thread-safety: pure functions.
#pragma once

#include <grpcpp/support/status.h>

#include <string>
#include <string_view>

#include "common/status.h"
#include "skiff/v1/errors.pb.h"

namespace skiff::client {

// What the producer does after a failed attempt.
enum class FailureKind {
  kRetry,               // transient: resend the same batch (same sequence) after a backoff
  kRetryAfterMetadata,  // leadership or placement changed: refresh metadata, then resend
  kFatal,               // resending cannot help: fail the batch's records
};

// A gRPC failure from `address`, as a Status whose message names the broker and the gRPC code,
// e.g. "broker 127.0.0.1:9092: UNAVAILABLE: failed to connect". `status` must not be OK.
Status FromGrpc(const grpc::Status& status, std::string_view address);

// A per-partition error code from `address` (error_message is the broker's detail).
// `code` must not be ERROR_NONE.
Status FromErrorCode(v1::ErrorCode code, std::string_view error_message, std::string_view address);

FailureKind ClassifyGrpc(grpc::StatusCode code);
FailureKind ClassifyErrorCode(v1::ErrorCode code);

// True for a gRPC code after which another broker may well answer (admin and metadata calls
// try the next broker on these).
bool IsTryAnotherBroker(grpc::StatusCode code);

}  // namespace skiff::client
