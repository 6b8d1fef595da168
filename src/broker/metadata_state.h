// MetadataState: the state machine of the metadata Raft group (group 0) — brokers, topics and
// their partitions' Raft groups and replicas, and producer ids.
//
// Every broker applies the same committed MetadataCommands in log order and so holds the same
// state; the proposer makes every non-deterministic decision (replica placement) and puts it in
// the command. Apply validates the command against the state, so a command that was valid when
// proposed but lost a race (two CreateTopic of one name) fails at apply with the same error on
// every replica, and the proposer reports that error to its client. A failed command changes
// nothing.
//
// Ids are never reused: topic ids and partition group ids come from counters that survive
// deletes (group 0 is this group), so a recreated topic gets new groups and stale replicas of
// the old ones can never be mistaken for the new.
//
// Not thread-safe: owned by the metadata group's apply loop; readers on other threads read a
// copy or synchronise outside.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "broker/placement.h"
#include "common/ids.h"
#include "common/status.h"
#include "skiff/internal/metadata.pb.h"
#include "skiff/v1/admin.pb.h"

namespace skiff::broker {

inline constexpr RaftGroupId kMetadataGroup{0};

inline constexpr int64_t kDefaultRetentionMs = int64_t{7} * 24 * 3600 * 1000;
inline constexpr int64_t kDefaultRetentionBytes = -1;
inline constexpr int32_t kDefaultMaxMessageBytes = 1 << 20;

struct BrokerRecord {
  int64_t id = 0;
  std::string client_address, raft_address, rack;
  bool alive = true;
  friend bool operator==(const BrokerRecord&, const BrokerRecord&) = default;
};

struct PartitionRecord {
  int32_t partition = 0;
  RaftGroupId group;
  std::vector<int64_t> replicas;  // preferred leader first
  // The leader last reported (ReportLeaders) and its term; -1 and 0 before any report. A hint
  // for clients: the partition's Raft group is the authority.
  int64_t leader = -1;
  uint64_t leader_term = 0;
  std::vector<int64_t> in_sync;  // as that leader last reported, ascending
};

struct TopicRecord {
  std::string name;
  TopicId id;
  v1::TopicConfig config;                   // effective: every field set
  std::vector<PartitionRecord> partitions;  // by partition, 0..n-1
};

struct HostedPartition {
  std::string topic;
  int32_t partition = 0;
  RaftGroupId group;
  std::vector<int64_t> replicas;
  v1::TopicConfig config;
};

// Every field of a TopicConfig set: the given values, else the defaults documented in
// admin.proto (retention_ms 7 days, retention_bytes -1, max_message_bytes 1 MiB,
// min_insync_replicas a majority of replication_factor).
v1::TopicConfig EffectiveTopicConfig(const v1::TopicConfig& config, int32_t replication_factor);

class MetadataState {
 public:
  // Applies one committed command. Deterministic. Errors, which change nothing:
  //   kInvalidArgument: no command set; RegisterBroker with id < 1; CreateTopic with an empty
  //     name, no partitions, or a replica list that is empty, repeats a broker or names an
  //     unregistered one;
  //   kAlreadyExists: CreateTopic of an existing name;
  //   kNotFound: SetBrokerAlive or ReportLeaders of an unknown broker,
  //     DeleteTopic/AlterTopicConfig of an unknown topic;
  //   kResourceExhausted: AllocateProducerId when all 2^63 ids are taken.
  // Results: CreateTopic -> topic, topic_id, partition_groups, config; DeleteTopic ->
  // partition_groups (to tear down); AlterTopicConfig -> config; AllocateProducerId ->
  // producer_id, producer_epoch; ReportLeaders -> unchanged (nothing recorded); the rest -> an
  // empty result.
  Result<internal::MetadataResult> Apply(const internal::MetadataCommand& command);

  const BrokerRecord* broker(int64_t id) const;
  std::vector<BrokerRecord> brokers() const;  // by id
  const TopicRecord* topic(std::string_view name) const;
  std::vector<const TopicRecord*> topics() const;  // by name; valid until the next Apply

  // The partitions with `broker` among their replicas, by topic name then partition.
  std::vector<HostedPartition> PartitionsOf(int64_t broker) const;

  // Per live broker, by id: how many replicas and preferred leaderships it holds (the input of
  // PlaceReplicas).
  std::vector<BrokerLoad> LoadOfLiveBrokers() const;

  // The whole state as a serialized internal::MetadataSnapshot. Equal states give equal bytes.
  std::string EncodeSnapshot() const;
  // kCorruption if `data` does not parse or breaks an invariant (duplicate or unordered
  // entries, counters behind the ids in use).
  static Result<MetadataState> DecodeSnapshot(std::string_view data);

 private:
  struct NamedProducer {
    int64_t producer_id = 0;
    int32_t producer_epoch = 0;
  };

  Result<internal::MetadataResult> ApplyCreateTopic(
      const internal::MetadataCommand::CreateTopic& command);
  Result<internal::MetadataResult> ApplyAllocateProducerId(
      const internal::MetadataCommand::AllocateProducerId& command);
  Result<internal::MetadataResult> ApplyReportLeaders(
      const internal::MetadataCommand::ReportLeaders& command);

  std::map<int64_t, BrokerRecord> brokers_;
  std::map<std::string, TopicRecord, std::less<>> topics_;
  std::map<std::string, NamedProducer, std::less<>> named_producers_;
  uint64_t next_topic_id_ = 1;
  uint64_t next_group_id_ = 1;  // 0 is kMetadataGroup
  // Producer ids start at 1 so that a client that forgets to set producer_id (proto3 default
  // 0) is not taken for a real producer.
  int64_t next_producer_id_ = 1;
};

}  // namespace skiff::broker
