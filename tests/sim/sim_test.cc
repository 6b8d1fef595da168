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

#include <functional>
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
  // `adjust` may change the config (async writes, host knobs) before the cluster starts.
  ScenarioCluster(uint64_t seed, int nodes,
                  const std::function<void(ClusterConfig*)>& adjust = nullptr)
      : random(seed) {
    ClusterConfig config;
    config.seed = seed;
    config.initial_nodes = nodes;
    config.max_node_id = static_cast<raft::NodeId>(nodes);
    config.raft.election_ticks = 10;
    config.raft.heartbeat_ticks = 1;
    if (adjust) adjust(&config);
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

  // Like TickUntil, for ClusterConfig.scripted_async_syncs: after every tick, every running
  // node's disk syncs except `unsynced_node`'s (kNoNode: all of them sync).
  template <typename Pred>
  bool TickSyncingUntil(raft::NodeId unsynced_node, Pred done, int max_ticks = 2000) {
    for (int i = 0; i < max_ticks; i++) {
      if (done()) return true;
      cluster->Tick();
      for (raft::NodeId id = 1; id <= cluster->max_node_id(); id++) {
        if (id != unsynced_node) cluster->SyncAsyncWrites(id);
      }
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

// What one run of the write-less re-acknowledgement script observed.
struct ReackRun {
  bool follower_wrote_unsynced = false;  // F1 held E in its log, not on its disk
  bool leader_applied = false;           // L applied E (told the client it committed)
  bool violation = false;                // the checker reported a safety violation
  std::string failure;                   // its message
  uint64_t sent_ahead = 0;               // ClusterStats.sent_ahead_of_unsynced_writes
  uint64_t superseded = 0;               // proposals superseded (correct host: E is)
};

// The script of WritelessReackWaitsForEarlierSync for one seed, with a correct async host or
// with the broken one that sends the messages of write-less Readies at once.
ReackRun RunWritelessReackScript(uint64_t seed, bool hold_only_writing_readies) {
  ScenarioCluster s(seed, 3, [&](ClusterConfig* config) {
    config->raft.async_storage_writes = true;
    // Every sync below is the script's: F1's disk must stay unsynced while it acknowledges E.
    config->scripted_async_syncs = true;
    config->async_hold_only_writing_readies = hold_only_writing_readies;
  });
  Cluster& c = *s.cluster;
  ReackRun run;

  // 1. Elect a leader L and let its no-op reach every disk and state machine, so that E below
  //    is the only entry at stake and nothing else is unsynced anywhere.
  EXPECT_TRUE(s.TickSyncingUntil(raft::kNoNode, [&] { return c.Leader() != raft::kNoNode; }));
  const raft::NodeId leader = c.Leader();
  if (leader == raft::kNoNode) return run;
  EXPECT_TRUE(s.TickSyncingUntil(
      raft::kNoNode,
      [&] {
        if (c.Leader() != leader) return false;
        const raft::Index last = c.node(leader).node->GetStatus().last_index;
        for (raft::NodeId id = 1; id <= 3; id++) {
          if (c.node(id).sm.applied != last || c.node(id).storage.unsynced_units() > 0) {
            return false;
          }
        }
        return true;
      }))
      << "seed " << seed << ": no quiet start; " << s.checker.failure();
  if (c.Leader() != leader) return run;
  const raft::NodeId f1 = leader == 1 ? 2 : 1;
  const raft::NodeId f2 = 6 - leader - f1;  // the third of ids 1..3

  // 2. F2 is cut off, so E can only ever reach L and F1; a quorum of 3 is then {L, F1}.
  c.network().Isolate(f2);

  // 3. L appends E and sends it to F1 before its own write (the early kAppend); L's disk syncs
  //    after every tick from here on, so L counts itself towards E's quorum: only F1's
  //    acknowledgement is missing.
  const raft::Index e = s.Propose(leader, "reack-" + std::to_string(seed));
  EXPECT_NE(e, 0u) << "seed " << seed;
  if (e == 0) return run;

  // 4. F1 receives E and writes it; its disk does not sync, so the Ready that wrote E holds
  //    its acknowledgement (both hosts agree on that: this Ready wrote something).
  EXPECT_TRUE(s.TickSyncingUntil(
      f1, [&] { return c.node(f1).storage.visible()->LastIndex() >= e; },
      /*max_ticks=*/20))
      << "seed " << seed << ": F1 never received E; " << s.checker.failure();
  run.follower_wrote_unsynced = c.node(f1).storage.visible()->LastIndex() >= e &&
                                c.node(f1).storage.durable().LastIndex() < e;
  if (!run.follower_wrote_unsynced) return run;

  // 5. L heartbeats every tick. The correct host holds all of F1's replies behind the unsynced
  //    E. The broken one sends F1's heartbeat response (a write-less Ready) at once; L, whose
  //    match for F1 is below its last index, probes with an empty kAppend whose prev is E (or
  //    re-sends E), and F1 acknowledges index E in another Ready that writes nothing, which the
  //    broken host also sends at once. L now counts {L, F1} and commits and applies E. A bound
  //    of a few ticks: well within an election timeout, so L stays leader meanwhile.
  s.TickSyncingUntil(
      f1, [&] { return c.node(leader).sm.applied >= e; }, /*max_ticks=*/8);
  run.leader_applied = c.node(leader).sm.applied >= e;

  // 6. F1 crashes and loses every unsynced write: E is gone from its disk. L crashes too (its
  //    disk keeps E, but it stays down), so E now survives nowhere that can vote.
  c.Crash(f1, CrashLoss::kAllUnsynced);
  c.Crash(leader);
  EXPECT_LT(c.node(f1).storage.durable().LastIndex(), e) << "seed " << seed;

  // 7. F2 (which never had E) and the restarted F1 elect a leader of a later term. If L applied
  //    E, the checker's leader completeness fails here: that leader's log lacks index E or
  //    holds another entry there.
  c.network().HealAll();
  c.network().Isolate(leader);  // L's appends still in flight to F2 (with E) are lost with L
  c.Restart(f1);
  s.TickSyncingUntil(raft::kNoNode, [&] {
    const raft::NodeId l = c.Leader();
    return l == f1 || l == f2;
  });
  if (!s.checker.failed()) {
    // 8. Correct host only: L returns, learns that the new leader's entry replaced E at its
    //    index, and every accepted proposal is resolved (E superseded, never lost once applied).
    c.network().HealAll();
    c.Restart(leader);
    s.TickSyncingUntil(raft::kNoNode, [&] {
      for (raft::NodeId id = 1; id <= 3; id++) {
        if (c.node(id).sm.applied < e) return false;
      }
      return true;
    });
    s.checker.CheckProposalsResolved();
  }
  run.violation = s.checker.failed();
  run.failure = s.checker.failure();
  run.sent_ahead = c.stats().sent_ahead_of_unsynced_writes;
  run.superseded = s.checker.proposals_superseded();
  return run;
}

// node.h, ASYNC STORAGE WRITES: a Ready's messages wait for every earlier write to be durable,
// even when that Ready writes nothing. A follower's re-acknowledgement of a retransmitted (or
// heartbeat-probed) append is such a Ready: it speaks of entries an earlier, unsynced Ready
// wrote. The script above (3 nodes, async writes) makes the leader L and one follower F1 the
// only holders of an entry E, with E unsynced on F1; then F1 loses E in a crash and L goes down.
//   correct host:  F1's acknowledgements wait for its sync, which never comes, so L never
//                  commits E; the survivors replace E with their own entry. No violation.
//   broken host (async_hold_only_writing_readies): F1's write-less re-ack goes out at once, L
//                  commits and applies E with {L, F1}, and the new leader lacks E: the checker
//                  must report it (leader completeness). The randomized runs rarely build this
//                  history (13 of seeds 1..3000, none of 1..200: see README.md), hence a script.
TEST_P(SimScenario, WritelessReackWaitsForEarlierSync) {
  for (uint64_t seed = 1; seed <= GetParam(); seed++) {
    const ReackRun good = RunWritelessReackScript(seed, /*hold_only_writing_readies=*/false);
    ASSERT_TRUE(good.follower_wrote_unsynced) << "seed " << seed << ": script did not set up";
    EXPECT_FALSE(good.leader_applied) << "seed " << seed << ": committed E without F1's sync";
    EXPECT_FALSE(good.violation) << "seed " << seed << ": " << good.failure;
    EXPECT_EQ(good.sent_ahead, 0u) << "seed " << seed;
    EXPECT_EQ(good.superseded, 1u) << "seed " << seed;

    const ReackRun broken = RunWritelessReackScript(seed, /*hold_only_writing_readies=*/true);
    ASSERT_TRUE(broken.follower_wrote_unsynced) << "seed " << seed << ": script did not set up";
    EXPECT_GT(broken.sent_ahead, 0u) << "seed " << seed;
    EXPECT_TRUE(broken.leader_applied) << "seed " << seed << ": E was never committed";
    EXPECT_TRUE(broken.violation) << "seed " << seed << ": the lost entry went unnoticed";
    EXPECT_NE(broken.failure.find("leader completeness"), std::string::npos)
        << "seed " << seed << ": " << broken.failure;
  }
}

INSTANTIATE_TEST_SUITE_P(sim, SimScenario, testing::Values(50));

}  // namespace
}  // namespace skiff::sim
