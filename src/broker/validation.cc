#include "broker/validation.h"

#include <string>

namespace skiff::broker {
namespace {

bool IsTopicNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

std::string Quoted(std::string_view s) {
  std::string out = "'";
  for (char c : s.substr(0, 64)) out += (c >= 32 && c < 127) ? c : '?';
  if (s.size() > 64) out += "...";
  return out + "'";
}

}  // namespace

Status ValidateTopicName(std::string_view name) {
  if (name.empty()) return InvalidArgumentError("topic name is empty");
  if (name.size() > kMaxTopicNameLength) {
    return InvalidArgumentError("topic name is " + std::to_string(name.size()) +
                                " characters; at most " + std::to_string(kMaxTopicNameLength) +
                                " are allowed");
  }
  if (name == "." || name == "..") return InvalidArgumentError("topic name cannot be '.' or '..'");
  for (char c : name) {
    if (!IsTopicNameChar(c)) {
      return InvalidArgumentError("topic name " + Quoted(name) +
                                  " may contain only [a-zA-Z0-9._-]");
    }
  }
  return Status::Ok();
}

Status ValidateTopicConfig(const v1::TopicConfig& config) {
  if (config.has_retention_ms() && config.retention_ms() < -1) {
    return InvalidArgumentError("retention_ms must be -1 (forever) or >= 0");
  }
  if (config.has_retention_bytes() && config.retention_bytes() < -1) {
    return InvalidArgumentError("retention_bytes must be -1 (unlimited) or >= 0");
  }
  if (config.has_max_message_bytes() &&
      (config.max_message_bytes() < 1 || config.max_message_bytes() > kMaxMessageBytesLimit)) {
    return InvalidArgumentError("max_message_bytes must be in [1, " +
                                std::to_string(kMaxMessageBytesLimit) + "]");
  }
  if (config.has_min_insync_replicas() && config.min_insync_replicas() < 1) {
    return InvalidArgumentError("min_insync_replicas must be >= 1");
  }
  return Status::Ok();
}

Status ValidateCreateTopic(const v1::CreateTopicRequest& request) {
  SKIFF_RETURN_IF_ERROR(ValidateTopicName(request.name()));
  if (request.partitions() < 1 || request.partitions() > kMaxPartitionsPerTopic) {
    return InvalidArgumentError("partitions must be in [1, " +
                                std::to_string(kMaxPartitionsPerTopic) + "], got " +
                                std::to_string(request.partitions()));
  }
  if (request.replication_factor() < 1 || request.replication_factor() > kMaxReplicationFactor) {
    return InvalidArgumentError("replication_factor must be in [1, " +
                                std::to_string(kMaxReplicationFactor) + "], got " +
                                std::to_string(request.replication_factor()));
  }
  SKIFF_RETURN_IF_ERROR(ValidateTopicConfig(request.config()));
  if (request.config().has_min_insync_replicas() &&
      request.config().min_insync_replicas() > request.replication_factor()) {
    return InvalidArgumentError("min_insync_replicas exceeds replication_factor");
  }
  if (request.replica_assignment_size() > 0) {
    if (request.replica_assignment_size() != request.partitions()) {
      return InvalidArgumentError(
          "replica_assignment has " + std::to_string(request.replica_assignment_size()) +
          " entries for " + std::to_string(request.partitions()) + " partitions");
    }
    for (int p = 0; p < request.replica_assignment_size(); ++p) {
      const auto& brokers = request.replica_assignment(p).brokers();
      if (brokers.size() != request.replication_factor()) {
        return InvalidArgumentError("replica_assignment[" + std::to_string(p) + "] has " +
                                    std::to_string(brokers.size()) + " brokers, expected " +
                                    std::to_string(request.replication_factor()));
      }
      for (int i = 0; i < brokers.size(); ++i) {
        if (brokers[i] < 0) return InvalidArgumentError("broker ids are >= 0");
        for (int j = 0; j < i; ++j) {
          if (brokers[i] == brokers[j]) {
            return InvalidArgumentError("replica_assignment[" + std::to_string(p) +
                                        "] names broker " + std::to_string(brokers[i]) + " twice");
          }
        }
      }
    }
  }
  return Status::Ok();
}

Status ValidateProduceRequest(const v1::ProduceRequest& request) {
  if (!v1::Acks_IsValid(request.acks())) {
    return InvalidArgumentError("acks must be ACKS_ALL, ACKS_LEADER or ACKS_NONE");
  }
  if (request.timeout_ms() < 0 || request.timeout_ms() > kMaxProduceTimeoutMs) {
    return InvalidArgumentError("timeout_ms must be in [0, " +
                                std::to_string(kMaxProduceTimeoutMs) + "]");
  }
  if (request.batches_size() == 0) return InvalidArgumentError("no batches to produce");
  return Status::Ok();
}

namespace {
Status ValidateReadPosition(const std::string& topic, int32_t partition, int64_t offset) {
  SKIFF_RETURN_IF_ERROR(ValidateTopicName(topic));
  if (partition < 0) return InvalidArgumentError("partition must be >= 0");
  if (offset < 0) {
    return InvalidArgumentError("offset must be >= 0, got " + std::to_string(offset) +
                                " (use ListOffsets to find the earliest or latest offset)");
  }
  return Status::Ok();
}
}  // namespace

Status ValidateFetchRequest(const v1::FetchRequest& request) {
  SKIFF_RETURN_IF_ERROR(
      ValidateReadPosition(request.topic(), request.partition(), request.offset()));
  if (request.max_bytes() < 0 || request.max_bytes() > kMaxFetchBytes) {
    return InvalidArgumentError("max_bytes must be in [0, " + std::to_string(kMaxFetchBytes) + "]");
  }
  if (request.max_wait_ms() < 0 || request.max_wait_ms() > kMaxFetchWaitMs) {
    return InvalidArgumentError("max_wait_ms must be in [0, " + std::to_string(kMaxFetchWaitMs) +
                                "]");
  }
  return Status::Ok();
}

Status ValidateSubscribeRequest(const v1::SubscribeRequest& request) {
  SKIFF_RETURN_IF_ERROR(
      ValidateReadPosition(request.topic(), request.partition(), request.offset()));
  if (request.max_bytes_per_message() < 0 || request.max_bytes_per_message() > kMaxFetchBytes) {
    return InvalidArgumentError("max_bytes_per_message must be in [0, " +
                                std::to_string(kMaxFetchBytes) + "]");
  }
  return Status::Ok();
}

v1::ErrorCode ErrorCodeForBatchStatus(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk:
      return v1::ERROR_NONE;
    case StatusCode::kCorruption:
      return v1::CORRUPT_BATCH;
    case StatusCode::kOutOfRange:
      return v1::BATCH_TOO_LARGE;
    case StatusCode::kInvalidArgument:
      return v1::INVALID_BATCH;
    case StatusCode::kNotFound:
      return v1::UNKNOWN_PARTITION;
    case StatusCode::kFailedPrecondition:
      return v1::NOT_LEADER;
    case StatusCode::kResourceExhausted:
      return v1::STORAGE_FULL;
    case StatusCode::kIoError:
      return v1::STORAGE_ERROR;
    case StatusCode::kAborted:
      return v1::THROTTLED;
    case StatusCode::kUnavailable:
      return v1::LEADER_NOT_AVAILABLE;
    case StatusCode::kUnimplemented:
      return v1::UNSUPPORTED;
    default:
      return v1::STORAGE_ERROR;
  }
}

v1::ErrorCode ErrorCodeForProposeStatus(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk:
      return v1::ERROR_NONE;
    case StatusCode::kFailedPrecondition:
      return v1::NOT_LEADER;
    case StatusCode::kAborted:
      return v1::LEADER_NOT_AVAILABLE;
    case StatusCode::kResourceExhausted:
      return v1::THROTTLED;
    default:
      return v1::STORAGE_ERROR;
  }
}

}  // namespace skiff::broker
