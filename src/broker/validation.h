// Request validation: the checks every service runs before a request reaches the domain code.
//
// A broker never crashes on what a client sends, and a rejected request leaves no trace. Each
// function checks one request shape and returns kInvalidArgument with a message naming the
// field and the accepted range, which the service turns into gRPC INVALID_ARGUMENT (or into a
// per-partition INVALID_REQUEST / INVALID_BATCH where the API answers per partition).
#pragma once

#include "common/status.h"
#include "skiff/v1/admin.pb.h"
#include "skiff/v1/errors.pb.h"
#include "skiff/v1/fetch.pb.h"
#include "skiff/v1/produce.pb.h"

namespace skiff::broker {

// Limits shared by validation and the services; values documented in the .proto files.
inline constexpr int kMaxTopicNameLength = 249;
inline constexpr int32_t kMaxPartitionsPerTopic = 100000;
inline constexpr int32_t kMaxReplicationFactor = 16;
inline constexpr int32_t kMaxProduceTimeoutMs = 300000;
inline constexpr int32_t kMaxFetchWaitMs = 60000;
inline constexpr int32_t kMaxFetchBytes = 64 << 20;
inline constexpr int32_t kMaxMessageBytesLimit = 64 << 20;

// 1-249 characters of [a-zA-Z0-9._-], not "." or "..".
Status ValidateTopicName(std::string_view name);

Status ValidateTopicConfig(const v1::TopicConfig& config);
Status ValidateCreateTopic(const v1::CreateTopicRequest& request);

// Request-level checks only (acks, timeout, at least one batch); per-partition batch checks
// are ValidateRecordBatchForAppend in common/record_batch.h.
Status ValidateProduceRequest(const v1::ProduceRequest& request);

Status ValidateFetchRequest(const v1::FetchRequest& request);
Status ValidateSubscribeRequest(const v1::SubscribeRequest& request);

// The per-partition error code for a Status returned by batch validation or the partition.
v1::ErrorCode ErrorCodeForBatchStatus(const Status& status);

// The per-partition error code for a refused Raft proposal. A transfer in progress
// (kAborted) means leadership is moving: the client must look the new leader up, not back
// off as from an overloaded leader (kResourceExhausted, too many uncommitted bytes).
v1::ErrorCode ErrorCodeForProposeStatus(const Status& status);

}  // namespace skiff::broker
