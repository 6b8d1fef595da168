// sim_test: the deterministic simulator in ctest.
//
//   sim/SimSeeds.Safe/<shard>        kShards shards of kSeedsPerShard seeds x kSteps steps each,
//                                    3 and 5 nodes (chosen per seed); every seed must pass.
//                                    Shards are separate ctest cases so `ctest -j` spreads them.
//   sim/SimDeterminism.SameSeed...   a seed run twice gives the same fingerprint.
//   sim/SimScenario.*/0              scripted scenarios on the same Cluster and Checker.
//   sim/SimCheckerSelfTest.*/<knob>  Raft with a deliberately unsafe knob (or, for lying_disk,
//                                    a host that never fsyncs): the checker MUST report a
//                                    safety violation within kUnsafeSeedBudget seeds, which
//                                    proves the checker (and the crash model) can fail.
//
// Any failure message carries the replay command (build/tests/sim/raft_sim --seed=...).
// Larger runs (soaks) use raft_sim --time_limit_s; see raft_sim.cc.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "checker.h"
#include "cluster.h"
#include "simulator.h"

namespace skiff::sim {
namespace {

constexpr uint64_t kShards = 10;
constexpr uint64_t kSeedsPerShard = 800;
constexpr uint64_t kSteps = 5000;
constexpr uint64_t kUnsafeSeedBudget = 200;

class SimSeeds : public testing::TestWithParam<uint64_t> {};

TEST_P(SimSeeds, Safe) {
  const uint64_t shard = GetParam();
  uint64_t failures = 0;
  for (uint64_t i = 0; i < kSeedsPerShard; i++) {
    SimOptions options;
    options.seed = shard * kSeedsPerShard + i + 1;
    options.steps = kSteps;
    options.nodes = 0;  // 3 or 5, chosen by the seed
    const SimResult r = RunSimulation(options);
    if (!r.ok) {
      ADD_FAILURE() << "seed " << options.seed << " failed at step " << r.failed_at_step << ": "
                    << r.failure << "\n  replay: " << ReplayCommand(options) << " --trace";
      if (++failures >= 5) break;  // enough to act on; keep the log readable
    }
  }
}

INSTANTIATE_TEST_SUITE_P(sim, SimSeeds, testing::Range<uint64_t>(0, kShards));

class SimDeterminism : public testing::TestWithParam<int> {};

TEST_P(SimDeterminism, SameSeedSameRun) {
  for (uint64_t seed : {7ULL, 4242ULL, 987654321ULL}) {
    SimOptions options;
    options.seed = seed;
    options.steps = 3000;
    options.nodes = GetParam();
    const SimResult a = RunSimulation(options);
    const SimResult b = RunSimulation(options);
    EXPECT_EQ(a.fingerprint, b.fingerprint) << ReplayCommand(options);
    EXPECT_EQ(a.ok, b.ok);
    EXPECT_EQ(a.failure, b.failure);
    EXPECT_EQ(a.committed_index, b.committed_index);
    EXPECT_EQ(a.messages_sent, b.messages_sent);
    // A run that commits nothing checks nothing: make sure the workload makes progress.
    EXPECT_GT(a.committed_index, 10u) << ReplayCommand(options);
    EXPECT_GT(a.leaders_elected, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(sim, SimDeterminism, testing::Values(3, 5));

// Each knob breaks one Raft rule; the checker must notice within the seed budget.
class SimCheckerSelfTest : public testing::TestWithParam<std::string> {};

TEST_P(SimCheckerSelfTest, UnsafeRaftIsCaught) {
  uint64_t first_failure = 0;
  std::string failure;
  for (uint64_t seed = 1; seed <= kUnsafeSeedBudget && first_failure == 0; seed++) {
    SimOptions options;
    options.seed = seed;
    options.steps = kSteps;
    options.nodes = 0;
    options.liveness = false;  // count safety violations only
    ASSERT_TRUE(ParseUnsafeKnob(GetParam(), &options));
    const SimResult r = RunSimulation(options);
    if (!r.ok) {
      first_failure = seed;
      failure = r.failure;
    }
  }
  ASSERT_NE(first_failure, 0u) << "the checker did not catch --unsafe=" << GetParam() << " in "
                               << kUnsafeSeedBudget << " seeds";
  // Liveness complaints do not prove the checker sees unsafety; require a safety violation.
  EXPECT_EQ(failure.find("liveness"), std::string::npos)
      << "seed " << first_failure << " failed only on liveness: " << failure;
  std::printf("--unsafe=%s caught at seed %llu: %s\n", GetParam().c_str(),
              static_cast<unsigned long long>(first_failure), failure.c_str());
}

INSTANTIATE_TEST_SUITE_P(sim, SimCheckerSelfTest,
                         testing::Values("commit_on_minority", "vote_ignores_log",
                                         "vote_ignores_term", "lying_disk",
                                         "async_acks_before_sync"),
                         [](const testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

// --- Named scenarios on the same simulator --------------------------------------------------
//
// Scripted runs of the Cluster (no random actions): each states one promise of the library and
// checks it with the same Checker the random runs use.

struct ScenarioCluster {
  explicit ScenarioCluster(uint64_t seed, int nodes) : random(seed) {
    ClusterConfig config;
    config.seed = seed;
    config.initial_nodes = nodes;
    config.max_node_id = static_cast<raft::NodeId>(nodes);
    config.raft.election_ticks = 10;
    config.raft.heartbeat_ticks = 1;
    cluster = std::make_unique<Cluster>(config, &random, &checker);
    cluster->Start();
  }

  // Ticks until `done` or the bound; returns whether `done` held.
  template <typename Pred>
  bool TickUntil(Pred done, int max_ticks = 2000) {
    for (int i = 0; i < max_ticks; i++) {
      if (done()) return true;
      cluster->Tick();
      cluster->CheckAll();
      if (checker.failed()) return false;
    }
    return done();
  }

  raft::NodeId WaitForLeader() {
    EXPECT_TRUE(TickUntil([&] { return cluster->Leader() != raft::kNoNode; }));
    return cluster->Leader();
  }

  // Proposes at `leader` and records the proposal with the checker; returns its index.
  raft::Index Propose(raft::NodeId leader, const std::string& payload) {
    raft::Node* node = cluster->node(leader).node.get();
    raft::Entry e;
    e.data = Bytes(payload);
    Result<raft::Index> r = node->Propose(e.data);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return 0;
    e.index = *r;
    e.term = node->GetStatus().hard_state.term;
    checker.OnProposalAccepted(e.index, e.term, e);
    cluster->Drain(leader);
    return e.index;
  }

  SimRandom random;
  Checker checker;
  std::unique_ptr<Cluster> cluster;
};

// An entry applied by the leader (so acknowledged to a client) survives every node crashing at
// once and losing all unsynced writes: it was durable on a quorum before it committed.
// Parameter: how many seeds (1..N) each scenario runs. Parameterized only so that the ctest
// names start with "sim/" like the rest of this file's tests.
class SimScenario : public testing::TestWithParam<uint64_t> {};

TEST_P(SimScenario, AckedEntrySurvivesWholeClusterCrash) {
  for (uint64_t seed = 1; seed <= GetParam(); seed++) {
    ScenarioCluster s(seed, 3);
    const raft::NodeId leader = s.WaitForLeader();
    ASSERT_NE(leader, raft::kNoNode);
    const raft::Index index = s.Propose(leader, "acked-" + std::to_string(seed));
    ASSERT_NE(index, 0u);
    ASSERT_TRUE(s.TickUntil([&] { return s.cluster->node(leader).sm.applied >= index; }))
        << "seed " << seed << ": " << s.checker.failure();
    for (raft::NodeId id = 1; id <= 3; id++) s.cluster->Crash(id);
    for (raft::NodeId id = 1; id <= 3; id++) s.cluster->Restart(id);
    ASSERT_TRUE(s.TickUntil([&] {
      for (raft::NodeId id = 1; id <= 3; id++) {
        if (s.cluster->node(id).sm.applied < index) return false;
      }
      return true;
    })) << "seed "
        << seed << ": " << s.checker.failure();
    s.checker.CheckProposalsResolved();
    EXPECT_FALSE(s.checker.failed()) << "seed " << seed << ": " << s.checker.failure();
    EXPECT_EQ(s.checker.proposals_committed(), 1u) << "seed " << seed;
  }
}

// A leader cut off from its quorum may still accept a proposal, but can never commit it; the
// majority side elects a new leader whose entry replaces it at that index after the heal.
TEST_P(SimScenario, IsolatedLeaderCannotCommit) {
  for (uint64_t seed = 1; seed <= GetParam(); seed++) {
    ScenarioCluster s(seed, 5);
    const raft::NodeId old_leader = s.WaitForLeader();
    ASSERT_NE(old_leader, raft::kNoNode);
    // Let the leader commit its term's no-op first, so the proposal is the only thing at stake.
    ASSERT_TRUE(s.TickUntil([&] {
      const raft::NodeStatus st = s.cluster->node(old_leader).node->GetStatus();
      return st.hard_state.commit == st.last_index;
    }));
    s.cluster->network().Isolate(old_leader);
    const raft::Index index = s.Propose(old_leader, "doomed-" + std::to_string(seed));
    ASSERT_NE(index, 0u);
    ASSERT_TRUE(s.TickUntil([&] {
      const raft::NodeId l = s.cluster->Leader();
      return l != raft::kNoNode && l != old_leader;
    })) << "seed "
        << seed << ": no new leader on the majority side";
    EXPECT_LT(s.cluster->node(old_leader).node->GetStatus().hard_state.commit, index);
    s.cluster->network().HealAll();
    ASSERT_TRUE(s.TickUntil([&] {
      for (raft::NodeId id = 1; id <= 5; id++) {
        if (s.cluster->node(id).sm.applied < index) return false;
      }
      return true;
    })) << "seed "
        << seed << ": " << s.checker.failure();
    s.checker.CheckProposalsResolved();
    EXPECT_FALSE(s.checker.failed()) << "seed " << seed << ": " << s.checker.failure();
    EXPECT_EQ(s.checker.proposals_superseded(), 1u) << "seed " << seed;
  }
}

INSTANTIATE_TEST_SUITE_P(sim, SimScenario, testing::Values(50));

}  // namespace
}  // namespace skiff::sim
