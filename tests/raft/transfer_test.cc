#include <gtest/gtest.h>

#include "raft_test_util.h"

namespace skiff::raft {
namespace {

using testing::Cluster;
using testing::CountType;

TEST(TransferTest, HandsLeadershipToUpToDateTarget) {
  Cluster c({1, 2, 3});
  c.Elect(1);
  c.TickAll();
  const Term term = c.TermOf(1);
  c.Record(true);
  ASSERT_TRUE(c.node(1)->TransferLeadership(2).ok());
  c.Stabilize();
  EXPECT_EQ(CountType(c.recorded(), MessageType::kTimeoutNow), 1u);
  EXPECT_EQ(CountType(c.recorded(), MessageType::kPreVote), 0u) << "transfer skips pre-vote";
  EXPECT_TRUE(c.node(2)->IsLeader());
  EXPECT_FALSE(c.node(1)->IsLeader());
  EXPECT_EQ(c.TermOf(2), term + 1);
  c.TickAll(2);
  EXPECT_EQ(c.node(1)->Leader(), 2u);
  EXPECT_EQ(c.node(3)->Leader(), 2u);
}

TEST(TransferTest, LaggingTargetIsCaughtUpFirstAndProposalsAreRefused) {
  Cluster c({1, 2, 3});
  c.Elect(1);
  c.Isolate(3);
  for (int i = 0; i < 5; ++i) c.Propose(1, "e" + std::to_string(i));
  c.Stabilize();
  c.Heal();
  ASSERT_TRUE(c.node(1)->TransferLeadership(3).ok());
  EXPECT_EQ(c.node(1)->GetStatus().lead_transferee, 3u);
  EXPECT_EQ(c.node(1)->Propose(Bytes(std::string("no"))).status().code(), StatusCode::kAborted);
  c.Stabilize();
  for (int i = 0; i < 5 && !c.node(3)->IsLeader(); ++i) c.TickAll();
  ASSERT_TRUE(c.node(3)->IsLeader());
  c.Propose(3, "after");
  c.Stabilize();
  c.TickAll();
  for (NodeId id : c.ids()) {
    EXPECT_EQ(c.AppliedData(id), (std::vector<std::string>{"e0", "e1", "e2", "e3", "e4", "after"}));
  }
}

TEST(TransferTest, AbortedAfterElectionTimeout) {
  Cluster c({1, 2, 3});
  c.Elect(1);
  c.Isolate(3);
  ASSERT_TRUE(c.node(1)->TransferLeadership(3).ok());
  EXPECT_EQ(c.node(1)->Propose(Bytes(std::string("x"))).status().code(), StatusCode::kAborted);
  for (int i = 0; i < 10; ++i) {
    c.Tick(1);
    c.Tick(2);
    c.Stabilize();
  }
  EXPECT_TRUE(c.node(1)->IsLeader());
  EXPECT_EQ(c.node(1)->GetStatus().lead_transferee, kNoNode);
  EXPECT_TRUE(c.node(1)->Propose(Bytes(std::string("x"))).ok());
}

TEST(TransferTest, RejectsBadTargetsAndNonLeaders) {
  Cluster c({1, 2, 3});
  c.Elect(1);
  EXPECT_EQ(c.node(1)->TransferLeadership(9).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c.node(2)->TransferLeadership(3).code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(c.node(1)->TransferLeadership(1).ok());  // already leader: no-op
  EXPECT_EQ(c.node(1)->GetStatus().lead_transferee, kNoNode);
}

TEST(TransferTest, TimeoutNowOverridesLeaderLease) {
  // Followers ignore votes while they hear from a leader, except for a transfer's election.
  Cluster c({1, 2, 3});
  c.Elect(1);
  c.TickAll();
  ASSERT_TRUE(c.node(1)->TransferLeadership(3).ok());
  c.Stabilize();
  EXPECT_TRUE(c.node(3)->IsLeader());
}

// Review F5: a kTimeoutNow that does not come from the current leader (e.g. a late one from an
// abandoned transfer of an earlier term) does not force an election.
TEST(TransferTest, TimeoutNowFromNonLeaderIsIgnored) {
  Cluster c({1, 2, 3});
  c.Elect(1);
  c.TickAll();
  const Term term = c.TermOf(2);
  Message m;
  m.type = MessageType::kTimeoutNow;
  m.from = 3;
  m.to = 2;
  m.term = term;
  ASSERT_TRUE(c.node(2)->Step(m).ok());
  EXPECT_EQ(c.node(2)->GetStatus().soft_state.role, Role::kFollower);
  EXPECT_EQ(c.TermOf(2), term);
  m.from = 1;
  m.term = term + 1;  // a newer term we have not seen a leader for
  ASSERT_TRUE(c.node(2)->Step(m).ok());
  EXPECT_EQ(c.node(2)->GetStatus().soft_state.role, Role::kFollower);
  EXPECT_EQ(c.TermOf(2), term + 1);
}

// Review F6: transfers have their own timeout; they do not reset the leader's check-quorum
// window, so an isolated leader that keeps starting transfers still steps down.
TEST(TransferTest, TransfersDoNotPostponeCheckQuorum) {
  Cluster c({1, 2, 3});
  c.Elect(1);
  c.TickAll();
  c.Isolate(1);
  for (int i = 0; i < 6 && c.node(1)->IsLeader(); ++i) {
    c.Tick(1, 8);
    if (c.node(1)->IsLeader()) (void)c.node(1)->TransferLeadership(i % 2 == 0 ? 2 : 3);
  }
  EXPECT_FALSE(c.node(1)->IsLeader());
}

}  // namespace
}  // namespace skiff::raft
