// The client's view of the cluster: topic -> partitions -> leader and replicas, and broker id ->
// client address. Filled from Metadata responses and patched by leader hints, which arrive with
// NOT_LEADER answers and are fresher than any Metadata response we hold.
//
// Thread-safety: none; Client guards it with its mutex. Pure (no I/O), so it is unit-tested.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "skiff/v1/errors.pb.h"
#include "skiff/v1/metadata.pb.h"

namespace skiff::client {

struct PartitionInfo {
  int64_t leader = -1;  // -1: unknown
  std::vector<int64_t> replicas;
  int64_t leader_epoch = 0;
};

class MetadataCache {
 public:
  // Replaces what the response describes; topics it does not mention are kept, topics it lists
  // as unknown are dropped.
  void Update(const v1::MetadataResponse& response);

  // A leader hint for one partition. A hint with broker_id -1 only marks the leader unknown.
  void ApplyLeaderHint(const std::string& topic, int32_t partition, const v1::LeaderHint& hint);

  // Forgets a partition's leader, so the next lookup refreshes metadata.
  void ForgetLeader(const std::string& topic, int32_t partition);

  // Number of partitions of a known topic.
  std::optional<int32_t> PartitionCount(const std::string& topic) const;
  std::optional<PartitionInfo> Partition(const std::string& topic, int32_t partition) const;

  // Where to send a partition's requests, best first: the leader's address when known,
  // otherwise the addresses of its replicas (one of them is, or will be, the leader). Empty
  // when the partition is unknown or no address is known.
  std::vector<std::string> CandidateAddresses(const std::string& topic, int32_t partition) const;

  // The address of a replica of the partition on a broker in `rack`, for follower reads.
  std::optional<std::string> ReplicaInRack(const std::string& topic, int32_t partition,
                                           const std::string& rack) const;

  std::optional<std::string> BrokerAddress(int64_t broker_id) const;
  // Every broker address known, in broker id order.
  std::vector<std::string> AllBrokerAddresses() const;

 private:
  std::map<int64_t, std::string> brokers_;  // id -> client address
  std::map<int64_t, std::string> racks_;    // id -> rack, for brokers that declared one
  std::map<std::string, std::vector<PartitionInfo>> topics_;
};

}  // namespace skiff::client
