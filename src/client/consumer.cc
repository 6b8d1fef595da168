#include "client/consumer.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "client/errors.h"
#include "skiff/v1/fetch.grpc.pb.h"

namespace skiff::client {
namespace {

using Clock = std::chrono::steady_clock;

// Sleeps before retry `attempt` (>= 1), never past `deadline`; false when the deadline passed.
bool BackOff(int attempt, Clock::time_point deadline) {
  const auto now = Clock::now();
  if (now >= deadline) return false;
  const auto pause =
      std::chrono::milliseconds(std::min<int64_t>(int64_t{25} << std::min(attempt, 6), 1000));
  std::this_thread::sleep_for(std::min<Clock::duration>(pause, deadline - now));
  return Clock::now() < deadline;
}

}  // namespace

Result<FetchResult> DecodeFetchResponse(const v1::FetchResponse& response, int64_t offset,
                                        const BatchLimits& limits) {
  FetchResult out;
  out.high_watermark = response.high_watermark();
  out.log_start_offset = response.log_start_offset();
  out.next_offset = offset;
  for (const v1::RecordBatch& batch : response.batches()) {
    const int64_t end = batch.base_offset() + batch.record_count();
    if (end <= out.next_offset) continue;  // wholly before what we asked for
    SKIFF_ASSIGN_OR_RETURN(v1::RecordSet set, DecodeRecordBatch(batch, limits));
    if (batch.base_offset() > out.next_offset && !out.records.empty()) {
      return CorruptionError("fetch response has a gap: batch at offset " +
                             std::to_string(batch.base_offset()) + " after offset " +
                             std::to_string(out.next_offset - 1));
    }
    for (int i = 0; i < set.records_size(); ++i) {
      const int64_t record_offset = batch.base_offset() + i;
      if (record_offset < out.next_offset) continue;
      ConsumedRecord record;
      record.offset = record_offset;
      record.record = std::move(*set.mutable_records(i));
      record.batch_max_timestamp_ms = batch.max_timestamp_ms();
      out.records.push_back(std::move(record));
    }
    out.next_offset = end;
  }
  return out;
}

Result<FetchResult> Consumer::Fetch(const std::string& topic, int32_t partition, int64_t offset,
                                    const FetchOptions& options) {
  v1::FetchRequest request;
  request.set_topic(topic);
  request.set_partition(partition);
  request.set_offset(offset);
  request.set_max_bytes(options.max_bytes);
  request.set_max_wait_ms(options.max_wait_ms);
  request.set_client_rack(options.client_rack);
  request.set_allow_follower(options.allow_follower);
  Status last = UnavailableError("no attempt made");
  const auto deadline = Clock::now() + std::chrono::milliseconds(options.retry_deadline_ms);
  // Bounded by the deadline: every failed attempt backs off toward it.
  for (int attempt = 0; attempt == 0 || BackOff(attempt, deadline); ++attempt) {
    SKIFF_ASSIGN_OR_RETURN(std::vector<std::string> addresses,
                           client_.PartitionAddresses(topic, partition));
    std::string address = addresses[static_cast<size_t>(attempt) % addresses.size()];
    // Follower reads: the first attempt goes to a replica in our rack, if there is one (the
    // broker serves followers' reads only to clients in its rack); retries use the leader.
    if (attempt == 0 && options.allow_follower && !options.client_rack.empty()) {
      if (auto local = client_.ReplicaInRack(topic, partition, options.client_rack)) {
        address = *local;
      }
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(
        std::chrono::system_clock::now() +
        std::chrono::milliseconds(options.max_wait_ms + client_.options().rpc_timeout_ms));
    v1::FetchResponse response;
    grpc::Status status =
        v1::FetchService::NewStub(client_.Channel(address))->Fetch(&ctx, request, &response);
    if (!status.ok()) {
      last = FromGrpc(status, address);
      if (!IsTryAnotherBroker(status.error_code())) return last;
      client_.ForgetLeader(topic, partition);
      continue;
    }
    switch (response.error()) {
      case v1::ERROR_NONE:
        return DecodeFetchResponse(response, offset);
      case v1::OFFSET_OUT_OF_RANGE:
        return OutOfRangeError("broker " + address + ": offset " + std::to_string(offset) + " of " +
                               topic + "/" + std::to_string(partition) +
                               " is out of range; valid offsets are [" +
                               std::to_string(response.log_start_offset()) + ", " +
                               std::to_string(response.high_watermark()) + "]");
      case v1::NOT_LEADER:
      case v1::LEADER_NOT_AVAILABLE:
      case v1::UNKNOWN_TOPIC:
      case v1::UNKNOWN_PARTITION:
        last = FromErrorCode(response.error(), response.error_message(), address);
        if (response.has_leader() && response.leader().broker_id() >= 0 &&
            !response.leader().address().empty()) {
          client_.ApplyLeaderHint(topic, partition, response.leader());
        } else {
          client_.ForgetLeader(topic, partition);
        }
        continue;
      default:
        return FromErrorCode(response.error(), response.error_message(), address);
    }
  }
  return last;
}

Result<int64_t> Consumer::ListOffset(const std::string& topic, int32_t partition,
                                     v1::OffsetSpec spec, int64_t timestamp_ms,
                                     int64_t retry_deadline_ms) {
  v1::ListOffsetsRequest request;
  request.set_topic(topic);
  request.set_partition(partition);
  request.set_spec(spec);
  request.set_timestamp_ms(timestamp_ms);
  Status last = UnavailableError("no attempt made");
  const auto deadline = Clock::now() + std::chrono::milliseconds(retry_deadline_ms);
  for (int attempt = 0; attempt == 0 || BackOff(attempt, deadline); ++attempt) {
    SKIFF_ASSIGN_OR_RETURN(std::vector<std::string> addresses,
                           client_.PartitionAddresses(topic, partition));
    const std::string& address = addresses[static_cast<size_t>(attempt) % addresses.size()];
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::milliseconds(client_.options().rpc_timeout_ms));
    v1::ListOffsetsResponse response;
    grpc::Status status =
        v1::FetchService::NewStub(client_.Channel(address))->ListOffsets(&ctx, request, &response);
    if (!status.ok()) {
      last = FromGrpc(status, address);
      if (!IsTryAnotherBroker(status.error_code())) return last;
      client_.ForgetLeader(topic, partition);
      continue;
    }
    if (response.error() == v1::ERROR_NONE) return response.offset();
    last = FromErrorCode(response.error(), response.error_message(), address);
    // As for produce: a moved leader, or a broker whose metadata has not caught up with a topic
    // just created (UNKNOWN_TOPIC), is retried elsewhere; anything else is final.
    if (ClassifyErrorCode(response.error()) != FailureKind::kRetryAfterMetadata) return last;
    if (response.has_leader() && response.leader().broker_id() >= 0 &&
        !response.leader().address().empty()) {
      client_.ApplyLeaderHint(topic, partition, response.leader());
    } else {
      client_.ForgetLeader(topic, partition);
    }
  }
  return last;
}

}  // namespace skiff::client
