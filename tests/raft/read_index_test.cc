#include <gtest/gtest.h>

#include "raft_test_util.h"

namespace skiff::raft {
namespace {

using testing::Cluster;

TEST(ReadIndexTest, LeaderAnswersAfterHeartbeatQuorum) {
  Cluster c({1, 2, 3});
  c.Elect(1);
  c.Propose(1, "x");
  c.Stabilize();
  ASSERT_TRUE(c.node(1)->ReadIndex(7).ok());
  auto msgs = c.Drain(1);
  EXPECT_TRUE(c.peer(1).read_states.empty()) << "not before leadership is confirmed";
  c.Deliver(msgs);
  c.Stabilize();
  ASSERT_EQ(c.peer(1).read_states.size(), 1u);
  EXPECT_EQ(c.peer(1).read_states[0].context, 7u);
  EXPECT_EQ(c.peer(1).read_states[0].index, c.CommitOf(1));
}

TEST(ReadIndexTest, PartitionedLeaderCannotServeReads) {
  Cluster c({1, 2, 3});
  c.Elect(1);
  c.Isolate(1);
  ASSERT_TRUE(c.node(1)->ReadIndex(1).ok());
  c.Stabilize();
  c.Tick(1, 3);
  c.Stabilize();
  EXPECT_TRUE(c.peer(1).read_states.empty());
}

TEST(ReadIndexTest, FollowerForwardsToLeader) {
  Cluster c({1, 2, 3});
  c.Elect(1);
  c.Propose(1, "x");
  c.Stabilize();
  ASSERT_TRUE(c.node(2)->ReadIndex(42).ok());
  c.Stabilize();
  ASSERT_EQ(c.peer(2).read_states.size(), 1u);
  EXPECT_EQ(c.peer(2).read_states[0].context, 42u);
  EXPECT_EQ(c.peer(2).read_states[0].index, c.CommitOf(1));
  EXPECT_TRUE(c.peer(1).read_states.empty());
}

TEST(ReadIndexTest, NoLeaderIsUnavailable) {
  Cluster c({1, 2, 3});
  EXPECT_EQ(c.node(2)->ReadIndex(1).code(), StatusCode::kUnavailable);
}

TEST(ReadIndexTest, SingleVoterAnswersImmediately) {
  Cluster c({1});
  c.Elect(1);
  c.Stabilize();
  ASSERT_TRUE(c.node(1)->ReadIndex(5).ok());
  c.Drain(1);
  ASSERT_EQ(c.peer(1).read_states.size(), 1u);
  EXPECT_EQ(c.peer(1).read_states[0].index, c.CommitOf(1));
}

TEST(ReadIndexTest, DeferredUntilLeaderCommitsInItsTerm) {
  Cluster c({1, 2, 3});
  c.SetDrop([](const Message& m) { return m.type == MessageType::kAppend; });
  c.node(1)->Campaign();
  c.Stabilize();
  ASSERT_TRUE(c.node(1)->IsLeader());
  const Index noop = c.LastOf(1);
  ASSERT_TRUE(c.node(1)->ReadIndex(3).ok());
  c.TickAll(2);
  EXPECT_TRUE(c.peer(1).read_states.empty());
  c.Heal();
  c.TickAll(3);
  ASSERT_EQ(c.peer(1).read_states.size(), 1u);
  EXPECT_GE(c.peer(1).read_states[0].index, noop);
}

TEST(ReadIndexTest, StaleHeartbeatAcksDoNotConfirmNewerReads) {
  Cluster c({1, 2, 3});
  c.Elect(1);
  c.TickAll();
  // A heartbeat round from before the read request...
  c.Tick(1);
  auto old_round = c.Drain(1);
  ASSERT_FALSE(old_round.empty());
  ASSERT_TRUE(c.node(1)->ReadIndex(9).ok());
  auto new_round = c.Drain(1);
  c.Isolate(1);  // ...whose new round never arrives
  c.Heal();
  for (const Message& m : old_round) c.Deliver(m);
  auto acks = c.Drain(2);
  auto acks3 = c.Drain(3);
  acks.insert(acks.end(), acks3.begin(), acks3.end());
  c.Deliver(acks);
  c.Drain(1);
  EXPECT_TRUE(c.peer(1).read_states.empty()) << "acks of an older round prove nothing";
  c.Deliver(new_round);
  c.Stabilize();
  EXPECT_EQ(c.peer(1).read_states.size(), 1u);
}

// Review F2: a ReadIndex on a quiesced follower resumes it (the README promises so).
TEST(ReadIndexTest, FollowerReadIndexWakesQuiescedFollower) {
  Cluster c({1, 2, 3}, [](Config& cfg) { cfg.quiesce_after_ticks = 5; });
  c.Elect(1);
  c.TickAll(10);
  ASSERT_TRUE(c.node(2)->Quiesced());
  ASSERT_TRUE(c.node(2)->ReadIndex(9).ok());
  EXPECT_FALSE(c.node(2)->Quiesced());
}

// Review F3: reads pending on a leader that steps down are answered with a rejection (remote
// requesters) instead of being dropped silently.
TEST(ReadIndexTest, PendingReadsAreRejectedOnStepDown) {
  Cluster c({1, 2, 3});
  c.Elect(1);
  c.Propose(1, "x");
  c.Stabilize();
  c.SetDrop([](const Message& m) { return m.type == MessageType::kHeartbeatResponse; });
  ASSERT_TRUE(c.node(2)->ReadIndex(42).ok());
  c.Stabilize();  // the leader registers the read; its confirmation round never completes
  ASSERT_TRUE(c.peer(2).read_states.empty());
  c.Isolate(1);
  c.Tick(1, 30);  // check-quorum: the leader steps down
  ASSERT_FALSE(c.node(1)->IsLeader());
  auto msgs = c.Drain(1);
  size_t rejects = 0;
  for (const Message& m : msgs) {
    if (m.type == MessageType::kReadIndexResponse && m.to == 2 && m.context == 42) {
      EXPECT_TRUE(m.reject);
      ++rejects;
    }
  }
  EXPECT_EQ(rejects, 1u);
}

}  // namespace
}  // namespace skiff::raft
