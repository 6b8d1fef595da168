#include "broker/metadata_state.h"

#include <algorithm>
#include <limits>
#include <set>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

namespace skiff::broker {
namespace {

constexpr uint32_t kSnapshotVersion = 1;

using Command = internal::MetadataCommand;

void MergeSetFields(const v1::TopicConfig& from, v1::TopicConfig& into) {
  if (from.has_retention_ms()) into.set_retention_ms(from.retention_ms());
  if (from.has_retention_bytes()) into.set_retention_bytes(from.retention_bytes());
  if (from.has_max_message_bytes()) into.set_max_message_bytes(from.max_message_bytes());
  if (from.has_min_insync_replicas()) into.set_min_insync_replicas(from.min_insync_replicas());
}

void FillTopicMetadata(const TopicRecord& topic, v1::TopicMetadata& out) {
  out.set_name(topic.name);
  out.set_id(std::to_string(topic.id.value()));
  for (const PartitionRecord& partition : topic.partitions) {
    v1::PartitionMetadata* p = out.add_partitions();
    p->set_partition(partition.partition);
    p->set_leader(-1);  // leaders are Raft state, not metadata state
    for (int64_t replica : partition.replicas) p->add_replicas(replica);
  }
}

}  // namespace

v1::TopicConfig EffectiveTopicConfig(const v1::TopicConfig& config, int32_t replication_factor) {
  v1::TopicConfig effective;
  effective.set_retention_ms(kDefaultRetentionMs);
  effective.set_retention_bytes(kDefaultRetentionBytes);
  effective.set_max_message_bytes(kDefaultMaxMessageBytes);
  effective.set_min_insync_replicas(std::max(replication_factor, 1) / 2 + 1);
  MergeSetFields(config, effective);
  return effective;
}

Result<internal::MetadataResult> MetadataState::Apply(const Command& command) {
  internal::MetadataResult result;
  switch (command.command_case()) {
    case Command::kRegisterBroker: {
      const Command::RegisterBroker& c = command.register_broker();
      if (c.id() < 1) {
        return InvalidArgumentError("broker id must be at least 1, got " + std::to_string(c.id()));
      }
      BrokerRecord& broker = brokers_[c.id()];
      broker = BrokerRecord{c.id(), c.client_address(), c.raft_address(), c.rack(), true};
      return result;
    }
    case Command::kSetBrokerAlive: {
      const Command::SetBrokerAlive& c = command.set_broker_alive();
      auto it = brokers_.find(c.id());
      if (it == brokers_.end()) {
        return NotFoundError("broker " + std::to_string(c.id()) + " is not registered");
      }
      it->second.alive = c.alive();
      return result;
    }
    case Command::kCreateTopic:
      return ApplyCreateTopic(command.create_topic());
    case Command::kDeleteTopic: {
      auto it = topics_.find(command.delete_topic().name());
      if (it == topics_.end()) {
        return NotFoundError("topic '" + command.delete_topic().name() + "' does not exist");
      }
      for (const PartitionRecord& partition : it->second.partitions) {
        result.add_partition_groups(partition.group.value());
      }
      topics_.erase(it);
      return result;
    }
    case Command::kAlterTopicConfig: {
      auto it = topics_.find(command.alter_topic_config().name());
      if (it == topics_.end()) {
        return NotFoundError("topic '" + command.alter_topic_config().name() + "' does not exist");
      }
      MergeSetFields(command.alter_topic_config().config(), it->second.config);
      *result.mutable_config() = it->second.config;
      return result;
    }
    case Command::kAllocateProducerId:
      return ApplyAllocateProducerId(command.allocate_producer_id());
    case Command::kReportLeaders:
      return ApplyReportLeaders(command.report_leaders());
    case Command::COMMAND_NOT_SET:
      break;
  }
  return InvalidArgumentError("metadata command has no command set");
}

Result<internal::MetadataResult> MetadataState::ApplyReportLeaders(
    const Command::ReportLeaders& c) {
  if (brokers_.count(c.broker_id()) == 0) {
    return NotFoundError("broker " + std::to_string(c.broker_id()) + " is not registered");
  }
  bool changed = false;
  std::map<uint64_t, const Command::ReportLeaders::Leadership*> reported;  // by group
  for (const auto& l : c.leaderships()) reported[l.group()] = &l;
  for (auto& [name, topic] : topics_) {
    for (PartitionRecord& partition : topic.partitions) {
      auto it = reported.find(partition.group.value());
      if (it == reported.end()) continue;
      const auto& l = *it->second;
      // Raft elects at most one leader per term, so a newer term is a newer leadership; the
      // same term from the recorded leader updates its in-sync set.
      const bool newer = l.term() > partition.leader_term;
      const bool same = l.term() == partition.leader_term && partition.leader == c.broker_id();
      if (!newer && !same) continue;
      std::vector<int64_t> in_sync(l.in_sync().begin(), l.in_sync().end());
      std::sort(in_sync.begin(), in_sync.end());
      if (same && in_sync == partition.in_sync) continue;
      partition.leader = c.broker_id();
      partition.leader_term = l.term();
      partition.in_sync = std::move(in_sync);
      changed = true;
    }
  }
  internal::MetadataResult result;
  result.set_unchanged(!changed);
  return result;
}

Result<internal::MetadataResult> MetadataState::ApplyCreateTopic(const Command::CreateTopic& c) {
  if (c.name().empty()) return InvalidArgumentError("topic name is empty");
  if (topics_.count(c.name()) > 0) {
    return AlreadyExistsError("topic '" + c.name() + "' already exists");
  }
  if (c.assignment().empty()) {
    return InvalidArgumentError("topic '" + c.name() + "' has no partitions");
  }
  for (int p = 0; p < c.assignment_size(); ++p) {
    const auto& brokers = c.assignment(p).brokers();
    const std::string where = "partition " + std::to_string(p) + " of topic '" + c.name() + "'";
    if (brokers.empty()) return InvalidArgumentError(where + " has no replicas");
    std::set<int64_t> seen;
    for (int64_t id : brokers) {
      if (!seen.insert(id).second) {
        return InvalidArgumentError(where + " lists broker " + std::to_string(id) + " twice");
      }
      if (brokers_.count(id) == 0) {
        return InvalidArgumentError(where + " names unregistered broker " + std::to_string(id));
      }
    }
  }

  TopicRecord topic;
  topic.name = c.name();
  topic.id = TopicId(next_topic_id_++);
  topic.config = EffectiveTopicConfig(c.config(), c.assignment(0).brokers_size());
  internal::MetadataResult result;
  for (int p = 0; p < c.assignment_size(); ++p) {
    PartitionRecord partition;
    partition.partition = p;
    partition.group = RaftGroupId(next_group_id_++);
    partition.replicas.assign(c.assignment(p).brokers().begin(), c.assignment(p).brokers().end());
    result.add_partition_groups(partition.group.value());
    topic.partitions.push_back(std::move(partition));
  }
  result.set_topic_id(topic.id.value());
  *result.mutable_config() = topic.config;
  FillTopicMetadata(topic, *result.mutable_topic());
  topics_.emplace(topic.name, std::move(topic));
  return result;
}

Result<internal::MetadataResult> MetadataState::ApplyAllocateProducerId(
    const Command::AllocateProducerId& c) {
  if (next_producer_id_ == std::numeric_limits<int64_t>::max()) {
    return ResourceExhaustedError("producer ids are exhausted");
  }
  internal::MetadataResult result;
  NamedProducer producer{next_producer_id_, 0};
  if (!c.producer_name().empty()) {
    auto it = named_producers_.find(c.producer_name());
    if (it != named_producers_.end() &&
        it->second.producer_epoch < std::numeric_limits<int32_t>::max()) {
      producer = NamedProducer{it->second.producer_id, it->second.producer_epoch + 1};
    }
    // Otherwise a new name, or an exhausted epoch: as Kafka, a fresh id at epoch 0 (which fences
    // the old instances just as well, since their id is no longer this name's).
  }
  if (producer.producer_id == next_producer_id_) ++next_producer_id_;
  if (!c.producer_name().empty()) named_producers_[c.producer_name()] = producer;
  result.set_producer_id(producer.producer_id);
  result.set_producer_epoch(producer.producer_epoch);
  return result;
}

const BrokerRecord* MetadataState::broker(int64_t id) const {
  auto it = brokers_.find(id);
  return it == brokers_.end() ? nullptr : &it->second;
}

std::vector<BrokerRecord> MetadataState::brokers() const {
  std::vector<BrokerRecord> out;
  out.reserve(brokers_.size());
  for (const auto& [id, broker] : brokers_) out.push_back(broker);
  return out;
}

const TopicRecord* MetadataState::topic(std::string_view name) const {
  auto it = topics_.find(name);
  return it == topics_.end() ? nullptr : &it->second;
}

std::vector<const TopicRecord*> MetadataState::topics() const {
  std::vector<const TopicRecord*> out;
  out.reserve(topics_.size());
  for (const auto& [name, topic] : topics_) out.push_back(&topic);
  return out;
}

std::vector<HostedPartition> MetadataState::PartitionsOf(int64_t broker) const {
  std::vector<HostedPartition> out;
  for (const auto& [name, topic] : topics_) {
    for (const PartitionRecord& partition : topic.partitions) {
      if (std::find(partition.replicas.begin(), partition.replicas.end(), broker) ==
          partition.replicas.end()) {
        continue;
      }
      out.push_back(HostedPartition{name, partition.partition, partition.group, partition.replicas,
                                    topic.config});
    }
  }
  return out;
}

std::vector<BrokerLoad> MetadataState::LoadOfLiveBrokers() const {
  std::map<int64_t, BrokerLoad> load;
  for (const auto& [id, broker] : brokers_) {
    if (broker.alive) load[id] = BrokerLoad{id, broker.rack, 0, 0};
  }
  for (const auto& [name, topic] : topics_) {
    for (const PartitionRecord& partition : topic.partitions) {
      for (size_t i = 0; i < partition.replicas.size(); ++i) {
        auto it = load.find(partition.replicas[i]);
        if (it == load.end()) continue;
        ++it->second.replicas;
        if (i == 0) ++it->second.leaders;
      }
    }
  }
  std::vector<BrokerLoad> out;
  out.reserve(load.size());
  for (auto& [id, broker_load] : load) out.push_back(std::move(broker_load));
  return out;
}

std::string MetadataState::EncodeSnapshot() const {
  internal::MetadataSnapshot snapshot;
  snapshot.set_version(kSnapshotVersion);
  for (const auto& [id, broker] : brokers_) {
    auto* b = snapshot.add_brokers();
    b->set_id(id);
    b->set_client_address(broker.client_address);
    b->set_raft_address(broker.raft_address);
    b->set_rack(broker.rack);
    b->set_alive(broker.alive);
  }
  for (const auto& [name, topic] : topics_) {
    auto* t = snapshot.add_topics();
    t->set_name(name);
    t->set_id(topic.id.value());
    *t->mutable_config() = topic.config;
    for (const PartitionRecord& partition : topic.partitions) {
      auto* p = t->add_partitions();
      p->set_partition(partition.partition);
      p->set_group(partition.group.value());
      for (int64_t replica : partition.replicas) p->add_replicas(replica);
      p->set_leader(partition.leader);
      p->set_leader_term(partition.leader_term);
      for (int64_t r : partition.in_sync) p->add_in_sync(r);
    }
  }
  snapshot.set_next_topic_id(next_topic_id_);
  snapshot.set_next_group_id(next_group_id_);
  snapshot.set_next_producer_id(next_producer_id_);
  for (const auto& [name, producer] : named_producers_) {
    auto* n = snapshot.add_named_producers();
    n->set_name(name);
    n->set_producer_id(producer.producer_id);
    n->set_producer_epoch(producer.producer_epoch);
  }
  // Deterministic serialization: the bytes are a function of the state alone.
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    snapshot.SerializeToCodedStream(&coded);
  }
  return out;
}

Result<MetadataState> MetadataState::DecodeSnapshot(std::string_view data) {
  internal::MetadataSnapshot snapshot;
  if (!snapshot.ParseFromArray(data.data(), static_cast<int>(data.size()))) {
    return CorruptionError("metadata snapshot does not parse");
  }
  if (snapshot.version() != kSnapshotVersion) {
    return CorruptionError("metadata snapshot has unknown version " +
                           std::to_string(snapshot.version()));
  }
  MetadataState state;
  state.next_topic_id_ = snapshot.next_topic_id();
  state.next_group_id_ = snapshot.next_group_id();
  state.next_producer_id_ = snapshot.next_producer_id();
  if (state.next_topic_id_ < 1 || state.next_group_id_ < 1 || state.next_producer_id_ < 1) {
    return CorruptionError("metadata snapshot counters are out of range");
  }
  for (const auto& b : snapshot.brokers()) {
    if (b.id() < 1 || (!state.brokers_.empty() && b.id() <= state.brokers_.rbegin()->first)) {
      return CorruptionError("metadata snapshot brokers are not unique ascending ids >= 1");
    }
    state.brokers_.emplace(
        b.id(), BrokerRecord{b.id(), b.client_address(), b.raft_address(), b.rack(), b.alive()});
  }
  std::set<uint64_t> topic_ids, groups;
  for (const auto& t : snapshot.topics()) {
    if (t.name().empty() || (!state.topics_.empty() && t.name() <= state.topics_.rbegin()->first)) {
      return CorruptionError("metadata snapshot topics are not unique ascending names");
    }
    if (t.id() == 0 || t.id() >= state.next_topic_id_ || !topic_ids.insert(t.id()).second) {
      return CorruptionError("metadata snapshot topic '" + t.name() + "' has a bad id");
    }
    if (t.partitions().empty()) {
      return CorruptionError("metadata snapshot topic '" + t.name() + "' has no partitions");
    }
    TopicRecord topic;
    topic.name = t.name();
    topic.id = TopicId(t.id());
    topic.config = t.config();
    for (int p = 0; p < t.partitions_size(); ++p) {
      const auto& part = t.partitions(p);
      if (part.partition() != p || part.group() == 0 || part.group() >= state.next_group_id_ ||
          !groups.insert(part.group()).second || part.replicas().empty()) {
        return CorruptionError("metadata snapshot partition " + std::to_string(p) + " of topic '" +
                               t.name() + "' is malformed");
      }
      topic.partitions.push_back(
          PartitionRecord{p, RaftGroupId(part.group()),
                          std::vector<int64_t>(part.replicas().begin(), part.replicas().end()),
                          part.leader_term() == 0 ? -1 : part.leader(), part.leader_term(),
                          std::vector<int64_t>(part.in_sync().begin(), part.in_sync().end())});
    }
    state.topics_.emplace(topic.name, std::move(topic));
  }
  for (const auto& n : snapshot.named_producers()) {
    if (n.name().empty() ||
        (!state.named_producers_.empty() && n.name() <= state.named_producers_.rbegin()->first) ||
        n.producer_id() < 1 || n.producer_id() >= state.next_producer_id_ ||
        n.producer_epoch() < 0) {
      return CorruptionError("metadata snapshot named producer '" + n.name() + "' is malformed");
    }
    state.named_producers_.emplace(n.name(), NamedProducer{n.producer_id(), n.producer_epoch()});
  }
  return state;
}

}  // namespace skiff::broker
