#include "client/client.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "client/errors.h"
#include "skiff/v1/admin.grpc.pb.h"
#include "skiff/v1/metadata.grpc.pb.h"

namespace skiff::client {
namespace {

using Clock = std::chrono::steady_clock;

void SetDeadline(grpc::ClientContext* ctx, Clock::time_point overall, int64_t attempt_ms) {
  const auto attempt_end = Clock::now() + std::chrono::milliseconds(attempt_ms);
  const auto end = std::min(overall, attempt_end);
  ctx->set_deadline(
      std::chrono::system_clock::now() +
      std::chrono::duration_cast<std::chrono::system_clock::duration>(end - Clock::now()));
}

}  // namespace

Result<std::vector<std::string>> ParseBrokerList(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    std::string entry = list.substr(start, comma - start);
    entry.erase(0, entry.find_first_not_of(" \t"));
    entry.erase(entry.find_last_not_of(" \t") + 1);
    if (!entry.empty()) {
      const size_t colon = entry.rfind(':');
      if (colon == std::string::npos || colon == 0 || colon + 1 == entry.size() ||
          entry.find_first_not_of("0123456789", colon + 1) != std::string::npos) {
        return InvalidArgumentError("broker '" + entry + "' is not host:port");
      }
      out.push_back(std::move(entry));
    }
    start = comma + 1;
  }
  if (out.empty()) return InvalidArgumentError("the broker list is empty");
  return out;
}

Result<std::unique_ptr<Client>> Client::Create(ClientOptions options) {
  if (options.bootstrap_brokers.empty()) {
    return InvalidArgumentError("at least one bootstrap broker is needed");
  }
  if (options.rpc_timeout_ms <= 0 || options.admin_deadline_ms <= 0) {
    return InvalidArgumentError("timeouts must be positive");
  }
  return std::unique_ptr<Client>(new Client(std::move(options)));
}

std::shared_ptr<grpc::Channel> Client::Channel(const std::string& address) {
  std::lock_guard lock(mu_);
  auto& channel = channels_[address];
  if (!channel) {
    grpc::ChannelArguments args;
    // Records can be large; the broker enforces the real limits.
    args.SetMaxReceiveMessageSize(64 << 20);
    args.SetMaxSendMessageSize(64 << 20);
    channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  }
  return channel;
}

std::vector<std::string> Client::BrokerAddresses() {
  std::lock_guard lock(mu_);
  std::vector<std::string> out = cache_.AllBrokerAddresses();
  for (const std::string& address : options_.bootstrap_brokers) {
    if (std::find(out.begin(), out.end(), address) == out.end()) out.push_back(address);
  }
  if (!out.empty()) {
    std::rotate(out.begin(), out.begin() + static_cast<long>(next_broker_ % out.size()), out.end());
  }
  return out;
}

Status Client::CallAnyBroker(const Attempt& attempt, int64_t deadline_ms) {
  const auto deadline =
      Clock::now() +
      std::chrono::milliseconds(deadline_ms > 0 ? deadline_ms : options_.admin_deadline_ms);
  Status last = UnavailableError("no broker answered");
  int64_t backoff_ms = 50;
  // Bounded by the deadline: every round either returns or sleeps toward it.
  while (true) {
    const std::vector<std::string> addresses = BrokerAddresses();
    for (size_t i = 0; i < addresses.size(); ++i) {
      if (Clock::now() >= deadline) return last;
      grpc::ClientContext ctx;
      SetDeadline(&ctx, deadline, options_.rpc_timeout_ms);
      grpc::Status status = attempt(Channel(addresses[i]), &ctx);
      if (status.ok()) return Status::Ok();
      last = FromGrpc(status, addresses[i]);
      if (!IsTryAnotherBroker(status.error_code())) return last;
      std::lock_guard lock(mu_);
      ++next_broker_;  // start the next call elsewhere
    }
    const auto now = Clock::now();
    if (now >= deadline) return last;
    std::this_thread::sleep_for(
        std::min<Clock::duration>(std::chrono::milliseconds(backoff_ms), deadline - now));
    backoff_ms = std::min<int64_t>(backoff_ms * 2, 1000);
  }
}

Result<v1::MetadataResponse> Client::Metadata(const std::vector<std::string>& topics,
                                              int64_t deadline_ms) {
  v1::MetadataRequest request;
  for (const std::string& topic : topics) request.add_topics(topic);
  v1::MetadataResponse response;
  SKIFF_RETURN_IF_ERROR(CallAnyBroker(
      [&](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext* ctx) {
        return v1::MetadataService::NewStub(channel)->Metadata(ctx, request, &response);
      },
      deadline_ms));
  std::lock_guard lock(mu_);
  cache_.Update(response);
  return response;
}

Result<int32_t> Client::PartitionCount(const std::string& topic) {
  {
    std::lock_guard lock(mu_);
    if (auto count = cache_.PartitionCount(topic)) return *count;
  }
  SKIFF_RETURN_IF_ERROR(Metadata({topic}).status());
  std::lock_guard lock(mu_);
  if (auto count = cache_.PartitionCount(topic); count && *count > 0) return *count;
  return NotFoundError("unknown topic '" + topic + "'");
}

Result<std::vector<std::string>> Client::PartitionAddresses(const std::string& topic,
                                                            int32_t partition,
                                                            int64_t refresh_deadline_ms) {
  {
    std::lock_guard lock(mu_);
    std::optional<PartitionInfo> info = cache_.Partition(topic, partition);
    if (info && info->leader >= 0 && cache_.BrokerAddress(info->leader)) {
      return std::vector<std::string>{*cache_.BrokerAddress(info->leader)};
    }
  }
  // Leader unknown: ask again; if the cluster does not know either, its replicas are the best
  // guess (one of them is, or is about to be, the leader) — also when no broker answers.
  Status refreshed = Metadata({topic}, refresh_deadline_ms).status();
  std::lock_guard lock(mu_);
  if (!refreshed.ok()) {
    auto cached = cache_.CandidateAddresses(topic, partition);
    if (cached.empty()) return refreshed;
    return cached;
  }
  if (!cache_.Partition(topic, partition)) {
    return NotFoundError("unknown partition " + topic + "/" + std::to_string(partition));
  }
  auto addresses = cache_.CandidateAddresses(topic, partition);
  if (addresses.empty()) {
    return UnavailableError("no known broker for " + topic + "/" + std::to_string(partition));
  }
  return addresses;
}

std::optional<std::string> Client::ReplicaInRack(const std::string& topic, int32_t partition,
                                                 const std::string& rack) {
  {
    std::lock_guard lock(mu_);
    if (cache_.Partition(topic, partition)) return cache_.ReplicaInRack(topic, partition, rack);
  }
  if (!Metadata({topic}).ok()) return std::nullopt;
  std::lock_guard lock(mu_);
  return cache_.ReplicaInRack(topic, partition, rack);
}

void Client::ApplyLeaderHint(const std::string& topic, int32_t partition,
                             const v1::LeaderHint& hint) {
  std::lock_guard lock(mu_);
  cache_.ApplyLeaderHint(topic, partition, hint);
}

void Client::ForgetLeader(const std::string& topic, int32_t partition) {
  std::lock_guard lock(mu_);
  cache_.ForgetLeader(topic, partition);
}

Result<v1::CreateTopicResponse> Client::CreateTopic(const v1::CreateTopicRequest& request) {
  v1::CreateTopicResponse response;
  SKIFF_RETURN_IF_ERROR(
      CallAnyBroker([&](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext* ctx) {
        return v1::AdminService::NewStub(channel)->CreateTopic(ctx, request, &response);
      }));
  return response;
}

Status Client::DeleteTopic(const std::string& name) {
  v1::DeleteTopicRequest request;
  request.set_name(name);
  v1::DeleteTopicResponse response;
  return CallAnyBroker(
      [&](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext* ctx) {
        return v1::AdminService::NewStub(channel)->DeleteTopic(ctx, request, &response);
      });
}

Result<v1::ListTopicsResponse> Client::ListTopics(bool include_internal) {
  v1::ListTopicsRequest request;
  request.set_include_internal(include_internal);
  v1::ListTopicsResponse response;
  SKIFF_RETURN_IF_ERROR(
      CallAnyBroker([&](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext* ctx) {
        return v1::AdminService::NewStub(channel)->ListTopics(ctx, request, &response);
      }));
  return response;
}

Result<v1::DescribeTopicResponse> Client::DescribeTopic(const std::string& name) {
  v1::DescribeTopicRequest request;
  request.set_name(name);
  v1::DescribeTopicResponse response;
  SKIFF_RETURN_IF_ERROR(
      CallAnyBroker([&](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext* ctx) {
        return v1::AdminService::NewStub(channel)->DescribeTopic(ctx, request, &response);
      }));
  return response;
}

Result<v1::DescribeClusterResponse> Client::DescribeCluster() {
  v1::DescribeClusterRequest request;
  v1::DescribeClusterResponse response;
  SKIFF_RETURN_IF_ERROR(
      CallAnyBroker([&](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext* ctx) {
        return v1::AdminService::NewStub(channel)->DescribeCluster(ctx, request, &response);
      }));
  return response;
}

Result<v1::InitProducerIdResponse> Client::InitProducerId(const std::string& producer_name,
                                                          int64_t deadline_ms) {
  v1::InitProducerIdRequest request;
  request.set_producer_name(producer_name);
  v1::InitProducerIdResponse response;
  SKIFF_RETURN_IF_ERROR(CallAnyBroker(
      [&](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext* ctx) {
        return v1::AdminService::NewStub(channel)->InitProducerId(ctx, request, &response);
      },
      deadline_ms));
  return response;
}

}  // namespace skiff::client
