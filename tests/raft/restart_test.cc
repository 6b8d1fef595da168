#include <gtest/gtest.h>

#include "raft_test_util.h"

namespace skiff::raft {
namespace {

using testing::Cluster;

TEST(RestartTest, HardStateAndLogSurviveRestart) {
  Cluster c({1, 2, 3});
  c.Elect(1);
  for (int i = 0; i < 3; ++i) c.Propose(1, "v" + std::to_string(i));
  c.Stabilize();
  c.TickAll();
  const HardState before = c.node(2)->GetStatus().hard_state;
  const Index last = c.LastOf(2);
  c.Restart(2);
  const NodeStatus s = c.node(2)->GetStatus();
  EXPECT_EQ(s.hard_state, before);
  EXPECT_EQ(s.last_index, last);
  EXPECT_EQ(s.applied, c.peer(2).applied_index);
  EXPECT_EQ(s.conf, (ConfState{{1, 2, 3}, {}}));
  EXPECT_FALSE(c.node(2)->HasReady()) << "nothing to re-apply or re-persist";
  c.Propose(1, "after");
  c.Stabilize();
  c.TickAll();
  EXPECT_EQ(c.AppliedData(2), (std::vector<std::string>{"v0", "v1", "v2", "after"}));
}

TEST(RestartTest, VoteIsRememberedAcrossRestart) {
  Cluster c({1, 2, 3}, [](Config& cfg) {
    cfg.pre_vote = false;
    cfg.check_quorum = false;
  });
  c.Cut(1, 3);
  c.node(1)->Campaign();
  c.Stabilize();  // 2 votes for 1
  ASSERT_TRUE(c.node(1)->IsLeader());
  const Term term = c.TermOf(2);
  c.Restart(2);
  EXPECT_EQ(c.node(2)->GetStatus().hard_state.vote, 1u);
  // A competing candidate in the same term is refused after the restart.
  Message m;
  m.type = MessageType::kVote;
  m.from = 3;
  m.to = 2;
  m.term = term;
  m.index = 100;
  m.log_term = term;
  ASSERT_TRUE(c.node(2)->Step(m).ok());
  auto out = c.Drain(2);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].reject);
}

TEST(RestartTest, AppliedZeroReplaysCommittedEntries) {
  Cluster c({1});
  c.Elect(1);
  c.Propose(1, "a");
  c.Propose(1, "b");
  c.Stabilize();
  ASSERT_EQ(c.AppliedData(1), (std::vector<std::string>{"a", "b"}));
  c.peer(1).applied.clear();
  c.peer(1).applied_index = 1;  // the state machine only holds the bootstrap snapshot
  c.Restart(1);
  c.Stabilize();
  EXPECT_EQ(c.AppliedData(1), (std::vector<std::string>{"a", "b"}));
}

TEST(RestartTest, RestoresFromStorageWithSnapshot) {
  Cluster c({1, 2, 3});
  c.Elect(1);
  for (int i = 0; i < 5; ++i) c.Propose(1, "v" + std::to_string(i));
  c.Stabilize();
  c.TickAll();
  auto& p = c.peer(2);
  const Index at = p.applied_index;
  ASSERT_TRUE(p.storage.CreateSnapshot(at, ConfState{{1, 2, 3}, {}}, Bytes(std::string("s"))).ok());
  ASSERT_TRUE(p.storage.Compact(at).ok());
  c.Restart(2);
  EXPECT_EQ(c.node(2)->GetStatus().applied, at);
  EXPECT_EQ(c.node(2)->GetStatus().hard_state.commit, at);
  // The restarted follower can still win an election and lead with a compacted log.
  c.Isolate(1);
  for (int i = 0; i < 100 && !c.node(2)->IsLeader(); ++i) c.TickAll();
  if (!c.node(2)->IsLeader()) {
    c.node(2)->Campaign();
    c.Stabilize();
  }
  ASSERT_TRUE(c.node(2)->IsLeader() || c.node(3)->IsLeader());
  const NodeId lead = c.node(2)->IsLeader() ? 2 : 3;
  c.Propose(lead, "new");
  c.Stabilize();
  c.TickAll();
  EXPECT_EQ(c.AppliedData(3).back(), "new");
}

TEST(RestartTest, WholeClusterRestartKeepsCommittedData) {
  Cluster c({1, 2, 3});
  c.Elect(1);
  for (int i = 0; i < 4; ++i) c.Propose(1, "d" + std::to_string(i));
  c.Stabilize();
  c.TickAll();
  for (NodeId id : c.ids()) c.Restart(id);
  for (int i = 0; i < 100; ++i) {
    c.TickAll();
    if (c.node(1)->IsLeader() || c.node(2)->IsLeader() || c.node(3)->IsLeader()) break;
  }
  NodeId lead = kNoNode;
  for (NodeId id : c.ids()) {
    if (c.node(id)->IsLeader()) lead = id;
  }
  ASSERT_NE(lead, kNoNode);
  c.Propose(lead, "d4");
  c.Stabilize();
  c.TickAll();
  for (NodeId id : c.ids()) {
    EXPECT_EQ(c.AppliedData(id), (std::vector<std::string>{"d0", "d1", "d2", "d3", "d4"}));
  }
}

TEST(RestartTest, LaggingPersistedCommitIsRaisedToApplied) {
  Cluster c({1, 2, 3});
  c.Elect(1);
  c.Propose(1, "a");
  c.Stabilize();
  c.TickAll();
  // The last commit-only hard state update was not synced and got lost in the crash.
  HardState hs = c.peer(2).storage.hard_state();
  const Index applied = c.peer(2).applied_index;
  hs.commit = 1;
  c.peer(2).storage.SetHardState(hs);
  c.Restart(2);
  EXPECT_EQ(c.CommitOf(2), applied);
  EXPECT_EQ(c.node(2)->GetStatus().applied, applied);
}

TEST(RestartTest, BootstrapRefusesNonEmptyLog) {
  Cluster c({1});
  c.Elect(1);
  c.Restart(1);
  EXPECT_EQ(c.node(1)->Bootstrap(ConfState{{1}, {}}).code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace skiff::raft
