// The one place a skiff::Status becomes a grpc::Status. Every service returns through here,
// so a code means the same thing on every RPC.
#pragma once

#include <grpcpp/support/status.h>

#include "common/status.h"

namespace skiff::broker {

grpc::StatusCode GrpcCodeFor(StatusCode code);
grpc::Status ToGrpcStatus(const Status& status);

}  // namespace skiff::broker
