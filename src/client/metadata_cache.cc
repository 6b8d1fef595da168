#include "client/metadata_cache.h"

#include <algorithm>

namespace skiff::client {

void MetadataCache::Update(const v1::MetadataResponse& response) {
  for (const v1::Broker& broker : response.brokers()) {
    if (!broker.address().empty()) brokers_[broker.id()] = broker.address();
    if (!broker.rack().empty()) racks_[broker.id()] = broker.rack();
  }
  for (const v1::TopicMetadata& topic : response.topics()) {
    int32_t count = 0;
    for (const v1::PartitionMetadata& p : topic.partitions()) {
      count = std::max(count, p.partition() + 1);
    }
    std::vector<PartitionInfo> partitions(static_cast<size_t>(count));
    for (const v1::PartitionMetadata& p : topic.partitions()) {
      if (p.partition() < 0) continue;
      PartitionInfo& info = partitions[static_cast<size_t>(p.partition())];
      info.leader = p.leader();
      info.replicas.assign(p.replicas().begin(), p.replicas().end());
      info.leader_epoch = p.leader_epoch();
    }
    topics_[topic.name()] = std::move(partitions);
  }
  for (const std::string& unknown : response.unknown_topics()) topics_.erase(unknown);
}

void MetadataCache::ApplyLeaderHint(const std::string& topic, int32_t partition,
                                    const v1::LeaderHint& hint) {
  if (hint.broker_id() >= 0 && !hint.address().empty()) {
    brokers_[hint.broker_id()] = hint.address();
  }
  auto it = topics_.find(topic);
  if (it == topics_.end() || partition < 0 || static_cast<size_t>(partition) >= it->second.size()) {
    return;
  }
  it->second[static_cast<size_t>(partition)].leader = hint.broker_id() >= 0 ? hint.broker_id() : -1;
}

void MetadataCache::ForgetLeader(const std::string& topic, int32_t partition) {
  v1::LeaderHint unknown;
  unknown.set_broker_id(-1);
  ApplyLeaderHint(topic, partition, unknown);
}

std::optional<int32_t> MetadataCache::PartitionCount(const std::string& topic) const {
  auto it = topics_.find(topic);
  if (it == topics_.end()) return std::nullopt;
  return static_cast<int32_t>(it->second.size());
}

std::optional<PartitionInfo> MetadataCache::Partition(const std::string& topic,
                                                      int32_t partition) const {
  auto it = topics_.find(topic);
  if (it == topics_.end() || partition < 0 || static_cast<size_t>(partition) >= it->second.size()) {
    return std::nullopt;
  }
  return it->second[static_cast<size_t>(partition)];
}

std::vector<std::string> MetadataCache::CandidateAddresses(const std::string& topic,
                                                           int32_t partition) const {
  std::vector<std::string> out;
  std::optional<PartitionInfo> info = Partition(topic, partition);
  if (!info) return out;
  if (info->leader >= 0) {
    if (auto address = BrokerAddress(info->leader)) return {*address};
  }
  for (int64_t replica : info->replicas) {
    if (auto address = BrokerAddress(replica)) out.push_back(*address);
  }
  return out;
}

std::optional<std::string> MetadataCache::ReplicaInRack(const std::string& topic, int32_t partition,
                                                        const std::string& rack) const {
  std::optional<PartitionInfo> info = Partition(topic, partition);
  if (!info || rack.empty()) return std::nullopt;
  for (int64_t replica : info->replicas) {
    auto it = racks_.find(replica);
    if (it != racks_.end() && it->second == rack) return BrokerAddress(replica);
  }
  return std::nullopt;
}

std::optional<std::string> MetadataCache::BrokerAddress(int64_t broker_id) const {
  auto it = brokers_.find(broker_id);
  if (it == brokers_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> MetadataCache::AllBrokerAddresses() const {
  std::vector<std::string> out;
  for (const auto& [id, address] : brokers_) out.push_back(address);
  return out;
}

}  // namespace skiff::client
