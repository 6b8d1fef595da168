// Client: the connection to a Skiff cluster that producers, consumers and tools share.
//
// It bootstraps from a list of "host:port" brokers, keeps one gRPC channel per broker address,
// and caches cluster metadata (which broker leads each partition). Metadata and admin calls go
// to any broker — the broker forwards admin requests to the metadata leader — trying the next
// broker on UNAVAILABLE / DEADLINE_EXCEEDED until admin_deadline_ms has passed.
//
// Thread-safety: every method is safe to call from any thread. A Client must outlive the
// Producers and Consumers built on it.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "client/metadata_cache.h"
#include "common/status.h"
#include "skiff/v1/admin.pb.h"
#include "skiff/v1/metadata.pb.h"

namespace skiff::client {

struct ClientOptions {
  std::vector<std::string> bootstrap_brokers;  // "host:port"; at least one
  int64_t rpc_timeout_ms = 10000;              // one attempt at one broker
  int64_t admin_deadline_ms = 30000;           // all attempts of one metadata or admin call
};

// "a:1,b:2" -> {"a:1", "b:2"}; kInvalidArgument for an empty list or an entry without a port.
Result<std::vector<std::string>> ParseBrokerList(const std::string& list);

class Client {
 public:
  // Checks the options; connects lazily (no network traffic here).
  static Result<std::unique_ptr<Client>> Create(ClientOptions options);

  const ClientOptions& options() const { return options_; }

  // The (cached) channel to a broker address.
  std::shared_ptr<grpc::Channel> Channel(const std::string& address);

  // Metadata for `topics` (all topics when empty) from the first broker that answers; the
  // cache is updated with the answer. deadline_ms bounds all attempts (<= 0: admin_deadline_ms).
  Result<v1::MetadataResponse> Metadata(const std::vector<std::string>& topics,
                                        int64_t deadline_ms = 0);

  // Partition count of a topic, from the cache or, when unknown, a metadata refresh.
  // kNotFound when the cluster does not know the topic.
  Result<int32_t> PartitionCount(const std::string& topic);

  // Addresses to try for a partition, best first: the cached leader, or else (after a metadata
  // refresh) the leader or its replicas. kNotFound for an unknown topic/partition.
  // refresh_deadline_ms bounds that refresh (<= 0: admin_deadline_ms), so a data path can keep
  // its own timeouts while the cluster is unreachable.
  Result<std::vector<std::string>> PartitionAddresses(const std::string& topic, int32_t partition,
                                                      int64_t refresh_deadline_ms = 0);

  // A replica of the partition in `rack` (from the cached metadata, refreshed once when the
  // partition is unknown); nullopt when there is none.
  std::optional<std::string> ReplicaInRack(const std::string& topic, int32_t partition,
                                           const std::string& rack);

  // Feedback from data-path calls.
  void ApplyLeaderHint(const std::string& topic, int32_t partition, const v1::LeaderHint& hint);
  void ForgetLeader(const std::string& topic, int32_t partition);

  // Admin API (see proto/skiff/v1/admin.proto).
  Result<v1::CreateTopicResponse> CreateTopic(const v1::CreateTopicRequest& request);
  Status DeleteTopic(const std::string& name);
  Result<v1::ListTopicsResponse> ListTopics(bool include_internal);
  Result<v1::DescribeTopicResponse> DescribeTopic(const std::string& name);
  Result<v1::DescribeClusterResponse> DescribeCluster();
  // deadline_ms bounds all attempts (<= 0: admin_deadline_ms).
  Result<v1::InitProducerIdResponse> InitProducerId(const std::string& producer_name,
                                                    int64_t deadline_ms = 0);

 private:
  explicit Client(ClientOptions options) : options_(std::move(options)) {}

  // One attempt of a unary call against one broker.
  using Attempt =
      std::function<grpc::Status(const std::shared_ptr<grpc::Channel>&, grpc::ClientContext*)>;
  // Runs `attempt` against the known brokers in turn until one answers, a non-transient error
  // comes back, or deadline_ms (<= 0: admin_deadline_ms) passes.
  Status CallAnyBroker(const Attempt& attempt, int64_t deadline_ms = 0);
  std::vector<std::string> BrokerAddresses();

  const ClientOptions options_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_;  // guarded by mu_
  MetadataCache cache_;                                             // guarded by mu_
  size_t next_broker_ = 0;  // guarded by mu_; spreads admin calls, remembers a good broker
};

}  // namespace skiff::client
