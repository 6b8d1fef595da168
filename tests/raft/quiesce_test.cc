#include <gtest/gtest.h>

#include "raft_test_util.h"

namespace skiff::raft {
namespace {

using testing::Cluster;
using testing::CountType;

Cluster::Tweak Quiescing() {
  return [](Config& cfg) { cfg.quiesce_after_ticks = 5; };
}

TEST(QuiesceTest, IdleGroupGoesQuietAndStaysQuiet) {
  Cluster c({1, 2, 3}, Quiescing());
  c.Elect(1);
  c.Record(true);
  c.TickAll(10);
  EXPECT_TRUE(c.node(1)->Quiesced());
  EXPECT_TRUE(c.node(2)->Quiesced());
  EXPECT_TRUE(c.node(3)->Quiesced());
  size_t quiesce_heartbeats = 0;
  for (const Message& m : c.recorded()) quiesce_heartbeats += m.quiesce ? 1 : 0;
  EXPECT_EQ(quiesce_heartbeats, 2u);
  const Term term = c.TermOf(1);
  c.Record(true);
  c.TickAll(200);  // far beyond any election timeout
  EXPECT_TRUE(c.recorded().empty()) << "a quiesced group sends nothing";
  EXPECT_TRUE(c.node(1)->IsLeader());
  EXPECT_EQ(c.TermOf(2), term);
  EXPECT_TRUE(c.node(1)->GetStatus().quiesced);
}

TEST(QuiesceTest, ProposalWakesTheGroup) {
  Cluster c({1, 2, 3}, Quiescing());
  c.Elect(1);
  c.TickAll(10);
  ASSERT_TRUE(c.node(1)->Quiesced());
  c.Propose(1, "wake");
  EXPECT_FALSE(c.node(1)->Quiesced());
  c.Stabilize();
  EXPECT_FALSE(c.node(2)->Quiesced());
  c.TickAll(2);
  for (NodeId id : c.ids()) EXPECT_EQ(c.AppliedData(id), std::vector<std::string>{"wake"});
  c.TickAll(10);
  EXPECT_TRUE(c.node(1)->Quiesced()) << "quiet again once idle";
  EXPECT_TRUE(c.node(3)->Quiesced());
}

TEST(QuiesceTest, WakeResumesHeartbeats) {
  Cluster c({1, 2, 3}, Quiescing());
  c.Elect(1);
  c.TickAll(10);
  ASSERT_TRUE(c.node(1)->Quiesced());
  c.node(1)->Wake();
  EXPECT_FALSE(c.node(1)->Quiesced());
  c.Tick(1);
  auto msgs = c.Drain(1);
  EXPECT_EQ(CountType(msgs, MessageType::kHeartbeat), 2u);
}

TEST(QuiesceTest, NotQuiescedWhileAFollowerLags) {
  Cluster c({1, 2, 3}, Quiescing());
  c.Elect(1);
  c.Isolate(3);
  c.Propose(1, "x");
  c.TickAll(20);
  EXPECT_FALSE(c.node(1)->Quiesced());
  c.Heal();
  c.TickAll(20);
  EXPECT_TRUE(c.node(1)->Quiesced());
}

TEST(QuiesceTest, FollowerCampaignsWhenHostSaysLeaderDied) {
  Cluster c({1, 2, 3}, Quiescing());
  c.Elect(1);
  c.TickAll(10);
  ASSERT_TRUE(c.node(2)->Quiesced());
  c.Isolate(1);
  c.node(2)->Campaign();  // e.g. the host's failure detector saw broker 1 die
  c.Stabilize();
  for (int i = 0; i < 100 && !c.node(2)->IsLeader() && !c.node(3)->IsLeader(); ++i) c.TickAll();
  EXPECT_TRUE(c.node(2)->IsLeader() || c.node(3)->IsLeader());
}

TEST(QuiesceTest, DisabledByDefault) {
  Cluster c({1, 2, 3});
  c.Elect(1);
  c.TickAll(50);
  EXPECT_FALSE(c.node(1)->Quiesced());
}

// Review F1: a follower woken by anything but its leader tells the quiesced leader, which wakes
// and resumes heartbeats (otherwise the follower's lease runs out while the leader stays mute).
TEST(QuiesceTest, WokenFollowerWakesQuiescedLeader) {
  Cluster c({1, 2, 3}, Quiescing());
  c.Elect(1);
  c.TickAll(10);
  ASSERT_TRUE(c.node(1)->Quiesced());
  c.node(2)->Wake();
  c.Stabilize();
  EXPECT_FALSE(c.node(1)->Quiesced());
  c.Record(true);
  c.Tick(1);
  c.Stabilize();
  EXPECT_GE(CountType(c.recorded(), MessageType::kHeartbeat), 1u) << "heartbeats resume";
}

// Review F1: the same for a heartbeat delayed past the quiesce heartbeat.
TEST(QuiesceTest, LateHeartbeatWakesLeaderToo) {
  Cluster c({1, 2, 3}, Quiescing());
  c.Elect(1);
  c.Tick(1);
  std::vector<Message> late;
  for (const Message& m : c.Drain(1)) {
    if (m.type == MessageType::kHeartbeat && m.to == 2) late.push_back(m);
  }
  ASSERT_EQ(late.size(), 1u);
  c.TickAll(10);
  ASSERT_TRUE(c.node(1)->Quiesced());
  ASSERT_TRUE(c.node(2)->Quiesced());
  c.Deliver(late);
  c.Stabilize();
  EXPECT_FALSE(c.node(1)->Quiesced());
}

// Review F1: a follower woken from quiescence by a peer's pre-vote is not "in lease" (it has not
// heard from the leader since it went quiet), so it does not reject the pre-vote. This is what
// lets the group recover when the quiesced leader's host died and a peer's failure detector
// calls Campaign().
TEST(QuiesceTest, WokenFollowerHasNoStaleLease) {
  Cluster c({1, 2, 3}, Quiescing());
  c.Elect(1);
  c.TickAll(10);
  ASSERT_TRUE(c.node(2)->Quiesced());
  c.Isolate(1);  // the leader's host died while everything was quiet
  c.node(3)->Campaign();
  c.Stabilize();
  EXPECT_TRUE(c.node(3)->IsLeader()) << "node 2 granted the (pre-)vote without waiting";
}

}  // namespace
}  // namespace skiff::raft
