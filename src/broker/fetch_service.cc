// FetchService: serves committed batches (below the high watermark) from the partition log.
#include <glog/logging.h>

#include <chrono>

#include "broker/broker.h"
#include "broker/partition_entry.h"
#include "broker/services.h"
#include "broker/status_to_grpc.h"
#include "broker/validation.h"
#include "skiff/v1/fetch.grpc.pb.h"
#include "storage/partition_log.h"

namespace skiff::broker {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int32_t kDefaultFetchBytes = 1 << 20;

struct Located {
  std::shared_ptr<PartitionReplica> replica;
  v1::ErrorCode error = v1::ERROR_NONE;
  std::string message;
  int64_t leader = -1;
};

class FetchServiceImpl final : public v1::FetchService::Service {
 public:
  explicit FetchServiceImpl(Broker* broker) : broker_(broker) {}

  grpc::Status Fetch(grpc::ServerContext*, const v1::FetchRequest* request,
                     v1::FetchResponse* response) override {
    if (auto s = ValidateFetchRequest(*request); !s.ok()) return ToGrpcStatus(s);
    response->set_topic(request->topic());
    response->set_partition(request->partition());
    Located where = Locate(request->topic(), request->partition(), request->allow_follower(),
                           request->client_rack());
    if (where.error != v1::ERROR_NONE) return Fail(where, response);
    const int32_t max_bytes = request->max_bytes() > 0 ? request->max_bytes() : kDefaultFetchBytes;
    const auto deadline = Clock::now() + std::chrono::milliseconds(request->max_wait_ms());
    FillBatches(*where.replica, request->offset(), max_bytes, deadline, response);
    return grpc::Status::OK;
  }

  grpc::Status Subscribe(grpc::ServerContext* context, const v1::SubscribeRequest* request,
                         grpc::ServerWriter<v1::FetchResponse>* writer) override {
    if (auto s = ValidateSubscribeRequest(*request); !s.ok()) return ToGrpcStatus(s);
    const int32_t max_bytes = request->max_bytes_per_message() > 0
                                  ? request->max_bytes_per_message()
                                  : kDefaultFetchBytes;
    int64_t offset = request->offset();
    while (!context->IsCancelled()) {
      v1::FetchResponse response;
      response.set_topic(request->topic());
      response.set_partition(request->partition());
      Located where = Locate(request->topic(), request->partition(), request->allow_follower(),
                             request->client_rack());
      if (where.error != v1::ERROR_NONE) {
        Fail(where, &response);
        writer->Write(response);
        return grpc::Status::OK;
      }
      // Short waits so a cancelled stream or a moved leadership is noticed promptly.
      FillBatches(*where.replica, offset, max_bytes, Clock::now() + std::chrono::milliseconds(500),
                  &response);
      if (response.error() != v1::ERROR_NONE) {
        writer->Write(response);
        return grpc::Status::OK;
      }
      if (response.batches_size() == 0) {
        if (where.replica->closed()) {
          return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the broker is stopping");
        }
        continue;
      }
      const auto& last = response.batches(response.batches_size() - 1);
      offset = last.base_offset() + last.record_count();
      if (!writer->Write(response)) break;
    }
    return grpc::Status::OK;
  }

  grpc::Status ListOffsets(grpc::ServerContext*, const v1::ListOffsetsRequest* request,
                           v1::ListOffsetsResponse* response) override {
    Located where = Locate(request->topic(), request->partition(), false, "");
    if (where.error != v1::ERROR_NONE) {
      response->set_error(where.error);
      response->set_error_message(where.message);
      response->mutable_leader()->set_broker_id(where.leader);
      if (where.leader > 0) {
        response->mutable_leader()->set_address(broker_->ClientAddressOf(where.leader));
      }
      return grpc::Status::OK;
    }
    PartitionReplica& replica = *where.replica;
    if (!replica.is_serving_leader()) {
      // A new leader still applying its predecessor's entries has a stale high watermark;
      // an answer from it (e.g. "no batch that recent") could be wrong.
      response->set_error(v1::LEADER_NOT_AVAILABLE);
      response->set_error_message("the new leader is still catching up; retry shortly");
      return grpc::Status::OK;
    }
    const int64_t hw = replica.high_watermark();
    switch (request->spec()) {
      case v1::OFFSET_SPEC_EARLIEST:
        response->set_offset(replica.log()->LogStartOffset().value());
        break;
      case v1::OFFSET_SPEC_LATEST:
        response->set_offset(hw);
        break;
      case v1::OFFSET_SPEC_TIMESTAMP: {
        auto found = replica.log()->FindTimestamp(request->timestamp_ms());
        if (found.ok() && found->base_offset.value() < hw) {
          response->set_offset(
              std::max(found->base_offset.value(), replica.log()->LogStartOffset().value()));
          response->set_timestamp_ms(found->max_timestamp_ms);
        } else if (found.ok() || found.status().code() == StatusCode::kNotFound) {
          response->set_offset(-1);
        } else {
          response->set_error(v1::STORAGE_ERROR);
          response->set_error_message(found.status().ToString());
        }
        break;
      }
      default:
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "unknown offset spec");
    }
    return grpc::Status::OK;
  }

 private:
  Located Locate(const std::string& topic, int32_t partition, bool allow_follower,
                 const std::string& client_rack) {
    Located out;
    auto ref = broker_->FindPartition(topic, partition);
    if (!ref.ok()) {
      out.error = broker_->metadata()->topic(topic) ? v1::UNKNOWN_PARTITION : v1::UNKNOWN_TOPIC;
      out.message = ref.status().message();
      return out;
    }
    out.leader = broker_->PartitionLeader(*ref);
    const bool local_follower_ok =
        allow_follower && !client_rack.empty() && client_rack == broker_->options().rack;
    if (!ref->replica || !(ref->replica->is_leader() || local_follower_ok)) {
      out.error = out.leader > 0 || ref->replica ? v1::NOT_LEADER : v1::LEADER_NOT_AVAILABLE;
      if (!ref->replica && out.leader < 0 && !ref->replicas.empty()) {
        // No local replica and no known leader: point at a replica; it knows the leader.
        out.error = v1::NOT_LEADER;
        out.leader = ref->replicas.front();
      }
      out.message = "this broker does not lead the partition";
      return out;
    }
    out.replica = ref->replica;
    return out;
  }

  grpc::Status Fail(const Located& where, v1::FetchResponse* response) {
    response->set_error(where.error);
    response->set_error_message(where.message);
    response->mutable_leader()->set_broker_id(where.leader);
    if (where.leader > 0) {
      response->mutable_leader()->set_address(broker_->ClientAddressOf(where.leader));
    }
    return grpc::Status::OK;
  }

  void FillBatches(PartitionReplica& replica, int64_t offset, int32_t max_bytes,
                   Clock::time_point deadline, v1::FetchResponse* response) {
    storage::PartitionLog* log = replica.log();
    int64_t hw = replica.high_watermark();
    if (offset >= hw) hw = replica.WaitForData(offset, deadline);
    const int64_t log_start = log->LogStartOffset().value();
    response->set_high_watermark(hw);
    response->set_log_start_offset(log_start);
    // Beyond the high watermark but within the log is not an error: this replica's high
    // watermark (what it has applied) can trail offsets a consumer already read elsewhere —
    // a new leader still applying its predecessor's entries, a replica replaying its log after
    // a restart. The consumer gets an empty answer and polls again. Only an offset beyond
    // everything this replica stores (or below its start) is out of range.
    const int64_t log_end = std::max(hw, log->LogEndOffset().value());
    if (offset < log_start || offset > log_end) {
      response->set_error(v1::OFFSET_OUT_OF_RANGE);
      response->set_error_message("offset " + std::to_string(offset) + " is outside [" +
                                  std::to_string(log_start) + ", " + std::to_string(hw) + "]");
      return;
    }
    if (offset >= hw) return;  // nothing committed there yet
    auto location = log->FindOffset(Offset(offset));
    if (!location.ok()) return StorageFailure(location.status(), log_start, hw, response);
    auto entries = log->Entries(location->index, replica.applied_index() + 1,
                                static_cast<uint64_t>(max_bytes));
    if (!entries.ok()) return StorageFailure(entries.status(), log_start, hw, response);
    int64_t base = location->base_offset.value();
    for (const raft::Entry& e : *entries) {
      if (e.type != raft::EntryType::kNormal || e.data.empty()) continue;
      if (base >= hw) break;
      auto batch = DecodeBatchEntry(e.data.view(), Offset(base));
      if (!batch.ok()) {
        LOG(ERROR) << replica.topic() << "/" << replica.partition() << ": index " << e.index << ": "
                   << batch.status().ToString();
        return StorageFailure(batch.status(), log_start, hw, response);
      }
      base += batch->record_count();
      *response->add_batches() = std::move(*batch);
    }
  }

  void StorageFailure(const Status& status, int64_t log_start, int64_t hw,
                      v1::FetchResponse* response) {
    response->clear_batches();
    if (status.code() == StatusCode::kOutOfRange) {
      // Retention cut the prefix between our checks.
      response->set_error(v1::OFFSET_OUT_OF_RANGE);
    } else {
      response->set_error(v1::STORAGE_ERROR);
    }
    response->set_error_message(status.ToString());
    response->set_log_start_offset(log_start);
    response->set_high_watermark(hw);
  }

  Broker* broker_;
};

}  // namespace

std::unique_ptr<grpc::Service> MakeFetchService(Broker* broker) {
  return std::make_unique<FetchServiceImpl>(broker);
}

}  // namespace skiff::broker
