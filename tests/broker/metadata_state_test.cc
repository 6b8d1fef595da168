#include "broker/metadata_state.h"

#include <gtest/gtest.h>

#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace skiff::broker {
namespace {

using internal::MetadataCommand;

MetadataCommand Register(int64_t id, std::string rack = "") {
  MetadataCommand c;
  auto* r = c.mutable_register_broker();
  r->set_id(id);
  r->set_client_address("host" + std::to_string(id) + ":9092");
  r->set_raft_address("host" + std::to_string(id) + ":9093");
  r->set_rack(std::move(rack));
  return c;
}

MetadataCommand SetAlive(int64_t id, bool alive) {
  MetadataCommand c;
  c.mutable_set_broker_alive()->set_id(id);
  c.mutable_set_broker_alive()->set_alive(alive);
  return c;
}

MetadataCommand Create(const std::string& name, std::vector<std::vector<int64_t>> assignment,
                       v1::TopicConfig config = {}) {
  MetadataCommand c;
  auto* t = c.mutable_create_topic();
  t->set_name(name);
  *t->mutable_config() = config;
  for (const auto& replicas : assignment) {
    auto* list = t->add_assignment();
    for (int64_t id : replicas) list->add_brokers(id);
  }
  return c;
}

MetadataCommand Delete(const std::string& name) {
  MetadataCommand c;
  c.mutable_delete_topic()->set_name(name);
  return c;
}

MetadataCommand Alter(const std::string& name, v1::TopicConfig config) {
  MetadataCommand c;
  c.mutable_alter_topic_config()->set_name(name);
  *c.mutable_alter_topic_config()->mutable_config() = config;
  return c;
}

MetadataCommand Allocate(const std::string& name) {
  MetadataCommand c;
  c.mutable_allocate_producer_id()->set_producer_name(name);
  return c;
}

internal::MetadataResult MustApply(MetadataState& state, const MetadataCommand& c) {
  Result<internal::MetadataResult> result = state.Apply(c);
  EXPECT_TRUE(result.ok()) << result.status().ToString() << " for " << c.ShortDebugString();
  return result.ok() ? *result : internal::MetadataResult{};
}

MetadataState ThreeBrokers() {
  MetadataState state;
  for (int64_t id = 1; id <= 3; ++id) MustApply(state, Register(id, "r" + std::to_string(id)));
  return state;
}

TEST(EffectiveTopicConfigTest, FillsDocumentedDefaults) {
  v1::TopicConfig config = EffectiveTopicConfig({}, 3);
  EXPECT_EQ(config.retention_ms(), 7LL * 24 * 3600 * 1000);
  EXPECT_EQ(config.retention_bytes(), -1);
  EXPECT_EQ(config.max_message_bytes(), 1 << 20);
  EXPECT_EQ(config.min_insync_replicas(), 2);
  EXPECT_TRUE(config.has_retention_ms() && config.has_retention_bytes() &&
              config.has_max_message_bytes() && config.has_min_insync_replicas());
  EXPECT_EQ(EffectiveTopicConfig({}, 1).min_insync_replicas(), 1);
  EXPECT_EQ(EffectiveTopicConfig({}, 4).min_insync_replicas(), 3);
  EXPECT_EQ(EffectiveTopicConfig({}, 5).min_insync_replicas(), 3);

  v1::TopicConfig given;
  given.set_retention_ms(-1);
  given.set_max_message_bytes(100);
  config = EffectiveTopicConfig(given, 3);
  EXPECT_EQ(config.retention_ms(), -1);
  EXPECT_EQ(config.max_message_bytes(), 100);
  EXPECT_EQ(config.retention_bytes(), -1);
}

TEST(MetadataStateTest, RegistersAndUpdatesBrokers) {
  MetadataState state;
  MustApply(state, Register(2, "b"));
  MustApply(state, Register(1, "a"));
  ASSERT_EQ(state.brokers().size(), 2u);
  EXPECT_EQ(state.brokers()[0].id, 1);
  EXPECT_EQ(state.brokers()[1].id, 2);
  MustApply(state, SetAlive(2, false));
  EXPECT_FALSE(state.broker(2)->alive);
  MetadataCommand again = Register(2, "c");
  again.mutable_register_broker()->set_client_address("new:1");
  MustApply(state, again);
  EXPECT_TRUE(state.broker(2)->alive);
  EXPECT_EQ(state.broker(2)->rack, "c");
  EXPECT_EQ(state.broker(2)->client_address, "new:1");
  EXPECT_EQ(state.broker(3), nullptr);
}

TEST(MetadataStateTest, CreatesTopicsWithFreshIdsAndGroups) {
  MetadataState state = ThreeBrokers();
  internal::MetadataResult a = MustApply(state, Create("a", {{1, 2}, {2, 3}}));
  EXPECT_EQ(a.topic_id(), 1u);
  ASSERT_EQ(a.partition_groups_size(), 2);
  EXPECT_EQ(a.partition_groups(0), 1u);
  EXPECT_EQ(a.partition_groups(1), 2u);
  EXPECT_EQ(a.topic().name(), "a");
  ASSERT_EQ(a.topic().partitions_size(), 2);
  EXPECT_EQ(a.topic().partitions(1).replicas(0), 2);
  EXPECT_EQ(a.topic().partitions(1).leader(), -1);
  EXPECT_EQ(a.config().min_insync_replicas(), 2);

  internal::MetadataResult b = MustApply(state, Create("b", {{3}}));
  EXPECT_EQ(b.topic_id(), 2u);
  EXPECT_EQ(b.partition_groups(0), 3u);

  const TopicRecord* topic = state.topic("a");
  ASSERT_NE(topic, nullptr);
  EXPECT_EQ(topic->id, TopicId(1));
  ASSERT_EQ(topic->partitions.size(), 2u);
  EXPECT_EQ(topic->partitions[1].partition, 1);
  EXPECT_EQ(topic->partitions[1].group, RaftGroupId(2));
  EXPECT_EQ(topic->partitions[1].replicas, (std::vector<int64_t>{2, 3}));
  EXPECT_TRUE(topic->config.has_retention_ms());

  // Deleting and recreating never reuses ids.
  internal::MetadataResult deleted = MustApply(state, Delete("a"));
  EXPECT_EQ(deleted.partition_groups_size(), 2);
  EXPECT_EQ(state.topic("a"), nullptr);
  internal::MetadataResult again = MustApply(state, Create("a", {{1}}));
  EXPECT_EQ(again.topic_id(), 3u);
  EXPECT_EQ(again.partition_groups(0), 4u);
  EXPECT_NE(kMetadataGroup, RaftGroupId(again.partition_groups(0)));
}

TEST(MetadataStateTest, ErrorsChangeNothing) {
  MetadataState state = ThreeBrokers();
  MustApply(state, Create("t", {{1, 2}}));
  const std::string before = state.EncodeSnapshot();
  struct Case {
    MetadataCommand command;
    StatusCode code;
  };
  const std::vector<Case> cases = {
      {MetadataCommand{}, StatusCode::kInvalidArgument},
      {Register(0), StatusCode::kInvalidArgument},
      {Register(-4), StatusCode::kInvalidArgument},
      {SetAlive(9, false), StatusCode::kNotFound},
      {Create("t", {{1}}), StatusCode::kAlreadyExists},
      {Create("", {{1}}), StatusCode::kInvalidArgument},
      {Create("u", {}), StatusCode::kInvalidArgument},
      {Create("u", {{1}, {}}), StatusCode::kInvalidArgument},
      {Create("u", {{1, 2, 1}}), StatusCode::kInvalidArgument},
      {Create("u", {{1}, {2, 7}}), StatusCode::kInvalidArgument},
      {Delete("nope"), StatusCode::kNotFound},
      {Alter("nope", {}), StatusCode::kNotFound},
  };
  for (const Case& c : cases) {
    Result<internal::MetadataResult> result = state.Apply(c.command);
    EXPECT_EQ(result.status().code(), c.code) << c.command.ShortDebugString();
    EXPECT_EQ(state.EncodeSnapshot(), before) << c.command.ShortDebugString();
  }
  // A failed create consumes no ids.
  EXPECT_EQ(MustApply(state, Create("u", {{3}})).topic_id(), 2u);
}

TEST(MetadataStateTest, AltersOnlyTheFieldsSet) {
  MetadataState state = ThreeBrokers();
  v1::TopicConfig initial;
  initial.set_retention_bytes(1000);
  MustApply(state, Create("t", {{1, 2, 3}}, initial));
  v1::TopicConfig change;
  change.set_retention_ms(5000);
  internal::MetadataResult result = MustApply(state, Alter("t", change));
  EXPECT_EQ(result.config().retention_ms(), 5000);
  EXPECT_EQ(result.config().retention_bytes(), 1000);
  EXPECT_EQ(result.config().min_insync_replicas(), 2);
  EXPECT_EQ(state.topic("t")->config.SerializeAsString(), result.config().SerializeAsString());
}

TEST(MetadataStateTest, AllocatesProducerIds) {
  MetadataState state;
  internal::MetadataResult first = MustApply(state, Allocate(""));
  internal::MetadataResult second = MustApply(state, Allocate(""));
  EXPECT_GE(first.producer_id(), 1);
  EXPECT_NE(first.producer_id(), second.producer_id());
  EXPECT_EQ(first.producer_epoch(), 0);

  internal::MetadataResult named = MustApply(state, Allocate("orders"));
  internal::MetadataResult named_again = MustApply(state, Allocate("orders"));
  EXPECT_EQ(named.producer_id(), named_again.producer_id());
  EXPECT_EQ(named.producer_epoch(), 0);
  EXPECT_EQ(named_again.producer_epoch(), 1);
  internal::MetadataResult other = MustApply(state, Allocate("payments"));
  EXPECT_NE(other.producer_id(), named.producer_id());
  EXPECT_EQ(other.producer_epoch(), 0);
  std::set<int64_t> ids = {first.producer_id(), second.producer_id(), named.producer_id(),
                           other.producer_id()};
  EXPECT_EQ(ids.size(), 4u);
}

TEST(MetadataStateTest, ExhaustedEpochGetsAFreshId) {
  internal::MetadataSnapshot snapshot;
  snapshot.set_version(1);
  snapshot.set_next_topic_id(1);
  snapshot.set_next_group_id(1);
  snapshot.set_next_producer_id(10);
  auto* producer = snapshot.add_named_producers();
  producer->set_name("p");
  producer->set_producer_id(5);
  producer->set_producer_epoch(std::numeric_limits<int32_t>::max());
  Result<MetadataState> state = MetadataState::DecodeSnapshot(snapshot.SerializeAsString());
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  internal::MetadataResult result = MustApply(*state, Allocate("p"));
  EXPECT_EQ(result.producer_id(), 10);
  EXPECT_EQ(result.producer_epoch(), 0);
  EXPECT_EQ(MustApply(*state, Allocate("p")).producer_epoch(), 1);
}

TEST(MetadataStateTest, PartitionsOfAndLoad) {
  MetadataState state;
  for (int64_t id = 1; id <= 4; ++id) MustApply(state, Register(id));
  MustApply(state, Create("b", {{1, 2}, {2, 3}}));
  MustApply(state, Create("a", {{2, 4}}));
  MustApply(state, SetAlive(3, false));

  std::vector<HostedPartition> hosted = state.PartitionsOf(2);
  ASSERT_EQ(hosted.size(), 3u);
  EXPECT_EQ(hosted[0].topic, "a");
  EXPECT_EQ(hosted[1].topic, "b");
  EXPECT_EQ(hosted[1].partition, 0);
  EXPECT_EQ(hosted[2].partition, 1);
  EXPECT_EQ(hosted[2].group, state.topic("b")->partitions[1].group);
  EXPECT_EQ(hosted[2].replicas, (std::vector<int64_t>{2, 3}));
  EXPECT_TRUE(hosted[0].config.has_max_message_bytes());
  EXPECT_TRUE(state.PartitionsOf(9).empty());

  std::vector<BrokerLoad> load = state.LoadOfLiveBrokers();
  ASSERT_EQ(load.size(), 3u);  // broker 3 is down
  EXPECT_EQ(load[0].id, 1);
  EXPECT_EQ(load[0].replicas, 1);
  EXPECT_EQ(load[0].leaders, 1);
  EXPECT_EQ(load[1].id, 2);
  EXPECT_EQ(load[1].replicas, 3);
  EXPECT_EQ(load[1].leaders, 2);
  EXPECT_EQ(load[2].id, 4);
  EXPECT_EQ(load[2].replicas, 1);
  EXPECT_EQ(load[2].leaders, 0);

  std::vector<const TopicRecord*> topics = state.topics();
  ASSERT_EQ(topics.size(), 2u);
  EXPECT_EQ(topics[0]->name, "a");
  EXPECT_EQ(topics[1]->name, "b");
}

// A random command stream, including invalid commands, over a handful of names and brokers.
MetadataCommand Report(int64_t broker, std::vector<std::pair<uint64_t, uint64_t>> group_terms) {
  MetadataCommand c;
  auto* r = c.mutable_report_leaders();
  r->set_broker_id(broker);
  for (auto [group, term] : group_terms) {
    auto* l = r->add_leaderships();
    l->set_group(group);
    l->set_term(term);
  }
  return c;
}

TEST(MetadataStateTest, RecordsReportedLeadersByNewestTerm) {
  MetadataState state = ThreeBrokers();
  MustApply(state, Create("t", {{1, 2, 3}, {2, 3, 1}}));
  const uint64_t g0 = state.topic("t")->partitions[0].group.value();
  const uint64_t g1 = state.topic("t")->partitions[1].group.value();
  EXPECT_EQ(state.topic("t")->partitions[0].leader, -1);

  // 999: no such group, skipped.
  EXPECT_FALSE(MustApply(state, Report(1, {{g0, 3}, {g1, 2}, {999, 7}})).unchanged());
  EXPECT_EQ(state.topic("t")->partitions[0].leader, 1);
  EXPECT_EQ(state.topic("t")->partitions[0].leader_term, 3u);
  EXPECT_EQ(state.topic("t")->partitions[1].leader, 1);

  // A newer term replaces the record; an older or equal one (a late report) does not.
  MustApply(state, Report(2, {{g0, 4}, {g1, 2}}));
  EXPECT_EQ(state.topic("t")->partitions[0].leader, 2);
  EXPECT_EQ(state.topic("t")->partitions[0].leader_term, 4u);
  EXPECT_EQ(state.topic("t")->partitions[1].leader, 1);
  EXPECT_TRUE(MustApply(state, Report(3, {{g0, 3}})).unchanged());
  EXPECT_EQ(state.topic("t")->partitions[0].leader, 2);

  // The recorded leader updates its in-sync set within its term; another broker cannot.
  MetadataCommand isr = Report(2, {{g0, 4}});
  isr.mutable_report_leaders()->mutable_leaderships(0)->add_in_sync(3);
  isr.mutable_report_leaders()->mutable_leaderships(0)->add_in_sync(2);
  MustApply(state, isr);
  EXPECT_EQ(state.topic("t")->partitions[0].in_sync, (std::vector<int64_t>{2, 3}));
  isr.mutable_report_leaders()->set_broker_id(3);
  isr.mutable_report_leaders()->mutable_leaderships(0)->add_in_sync(1);
  MustApply(state, isr);
  EXPECT_EQ(state.topic("t")->partitions[0].leader, 2);
  EXPECT_EQ(state.topic("t")->partitions[0].in_sync, (std::vector<int64_t>{2, 3}));

  // From an unregistered broker: refused, nothing changes.
  auto refused = state.Apply(Report(9, {{g0, 10}}));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(state.topic("t")->partitions[0].leader, 2);

  // The record survives a snapshot.
  auto decoded = MetadataState::DecodeSnapshot(state.EncodeSnapshot());
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->topic("t")->partitions[0].leader, 2);
  EXPECT_EQ(decoded->topic("t")->partitions[0].leader_term, 4u);
  EXPECT_EQ(decoded->topic("t")->partitions[0].in_sync, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(decoded->EncodeSnapshot(), state.EncodeSnapshot());
}

std::vector<MetadataCommand> RandomCommands(uint64_t seed, int n) {
  std::mt19937_64 rng(seed);
  std::vector<MetadataCommand> out;
  for (int i = 0; i < n; ++i) {
    const std::string name = "t" + std::to_string(rng() % 6);
    switch (rng() % 8) {
      case 7:
        out.push_back(Report(1 + static_cast<int64_t>(rng() % 6),
                             {{1 + rng() % 12, rng() % 5}, {1 + rng() % 12, rng() % 5}}));
        break;
      case 0:
        out.push_back(
            Register(1 + static_cast<int64_t>(rng() % 6), "r" + std::to_string(rng() % 3)));
        break;
      case 1:
        out.push_back(SetAlive(1 + static_cast<int64_t>(rng() % 7), rng() % 2 == 0));
        break;
      case 2:
      case 3: {
        std::vector<std::vector<int64_t>> assignment(rng() % 4);
        for (auto& replicas : assignment) {
          const int rf = 1 + static_cast<int>(rng() % 3);
          for (int r = 0; r < rf; ++r) replicas.push_back(1 + static_cast<int64_t>(rng() % 6));
        }
        v1::TopicConfig config;
        if (rng() % 2 == 0) config.set_retention_ms(static_cast<int64_t>(rng() % 100000));
        out.push_back(Create(name, assignment, config));
        break;
      }
      case 4:
        out.push_back(Delete(name));
        break;
      case 5: {
        v1::TopicConfig config;
        config.set_max_message_bytes(1 + static_cast<int32_t>(rng() % 1000));
        out.push_back(Alter(name, config));
        break;
      }
      default:
        out.push_back(Allocate(rng() % 2 == 0 ? "" : "p" + std::to_string(rng() % 3)));
    }
  }
  return out;
}

TEST(MetadataStateTest, SnapshotThenReplayEqualsDirectReplay) {
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    const std::vector<MetadataCommand> commands = RandomCommands(seed, 200);
    MetadataState direct;
    MetadataState via_snapshot;
    std::vector<StatusCode> direct_codes, snapshot_codes;
    for (size_t i = 0; i < commands.size(); ++i) {
      Result<internal::MetadataResult> a = direct.Apply(commands[i]);
      Result<internal::MetadataResult> b = via_snapshot.Apply(commands[i]);
      ASSERT_EQ(a.status().code(), b.status().code());
      if (a.ok()) {
        EXPECT_EQ(a->SerializeAsString(), b->SerializeAsString());
      }
      if (i % 37 == 0) {
        Result<MetadataState> restored =
            MetadataState::DecodeSnapshot(via_snapshot.EncodeSnapshot());
        ASSERT_TRUE(restored.ok()) << restored.status().ToString();
        via_snapshot = std::move(*restored);
      }
    }
    EXPECT_EQ(direct.EncodeSnapshot(), via_snapshot.EncodeSnapshot()) << "seed " << seed;
    EXPECT_EQ(direct.brokers(), via_snapshot.brokers());
    ASSERT_EQ(direct.topics().size(), via_snapshot.topics().size());
    for (size_t t = 0; t < direct.topics().size(); ++t) {
      EXPECT_EQ(direct.topics()[t]->name, via_snapshot.topics()[t]->name);
      EXPECT_EQ(direct.topics()[t]->id, via_snapshot.topics()[t]->id);
    }
  }
}

TEST(MetadataStateTest, SnapshotIsDeterministic) {
  const std::vector<MetadataCommand> commands = RandomCommands(5, 300);
  MetadataState a, b;
  for (const MetadataCommand& c : commands) {
    a.Apply(c).IgnoreError();  // errors are part of the stream; both sides see the same
    b.Apply(c).IgnoreError();
  }
  EXPECT_EQ(a.EncodeSnapshot(), b.EncodeSnapshot());
  Result<MetadataState> c = MetadataState::DecodeSnapshot(a.EncodeSnapshot());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->EncodeSnapshot(), a.EncodeSnapshot());
}

TEST(MetadataStateTest, EmptyStateRoundTrips) {
  MetadataState empty;
  Result<MetadataState> decoded = MetadataState::DecodeSnapshot(empty.EncodeSnapshot());
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->EncodeSnapshot(), empty.EncodeSnapshot());
}

TEST(MetadataStateTest, RejectsBadSnapshots) {
  EXPECT_EQ(MetadataState::DecodeSnapshot("\xff\xff\xff").status().code(), StatusCode::kCorruption);
  EXPECT_EQ(MetadataState::DecodeSnapshot("").status().code(), StatusCode::kCorruption);

  MetadataState state = ThreeBrokers();
  MustApply(state, Create("a", {{1}}));
  MustApply(state, Create("b", {{2}}));
  internal::MetadataSnapshot good;
  ASSERT_TRUE(good.ParseFromString(state.EncodeSnapshot()));

  auto expect_corrupt = [](const internal::MetadataSnapshot& s, const char* what) {
    EXPECT_EQ(MetadataState::DecodeSnapshot(s.SerializeAsString()).status().code(),
              StatusCode::kCorruption)
        << what;
  };
  internal::MetadataSnapshot bad = good;
  bad.set_version(2);
  expect_corrupt(bad, "version");
  bad = good;
  bad.mutable_topics()->SwapElements(0, 1);
  expect_corrupt(bad, "unordered topics");
  bad = good;
  bad.mutable_topics(1)->mutable_partitions(0)->set_group(bad.topics(0).partitions(0).group());
  expect_corrupt(bad, "shared group");
  bad = good;
  bad.set_next_group_id(1);
  expect_corrupt(bad, "group counter behind");
  bad = good;
  bad.set_next_topic_id(2);
  expect_corrupt(bad, "topic counter behind");
  bad = good;
  *bad.add_brokers() = good.brokers(0);
  expect_corrupt(bad, "duplicate broker");
  bad = good;
  bad.mutable_topics(0)->mutable_partitions(0)->clear_replicas();
  expect_corrupt(bad, "no replicas");
}

}  // namespace
}  // namespace skiff::broker
