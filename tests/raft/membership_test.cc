#include <gtest/gtest.h>

#include "raft_test_util.h"

namespace skiff::raft {
namespace {

using testing::Cluster;

void ProposeAndSettle(Cluster& c, NodeId leader, ConfChange cc) {
  auto r = c.node(leader)->ProposeConfChange(cc);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  c.Stabilize();
  c.TickAll(2);
}

TEST(MembershipTest, AddLearnerReceivesLogButDoesNotCount) {
  Cluster c({1, 2, 3});
  c.AddNode(4);
  c.Elect(1);
  c.Propose(1, "before");
  c.Stabilize();
  ProposeAndSettle(c, 1, {ConfChangeType::kAddLearner, 4});
  for (NodeId id : c.ids()) {
    EXPECT_EQ(c.node(id)->GetStatus().conf, (ConfState{{1, 2, 3}, {4}})) << "node " << id;
  }
  c.Propose(1, "after");
  c.Stabilize();
  c.TickAll();
  // The learner got the bootstrap snapshot (index 1), then every entry after it.
  EXPECT_EQ(c.AppliedData(4), (std::vector<std::string>{"before", "after"}));
  // Leader + learner are not a quorum of {1,2,3}.
  c.Isolate(2);
  c.Isolate(3);
  const Index idx = c.Propose(1, "stuck");
  c.Stabilize();
  EXPECT_EQ(c.LastOf(4), idx);
  EXPECT_LT(c.CommitOf(1), idx);
}

TEST(MembershipTest, PromoteLearnerChangesQuorum) {
  Cluster c({1, 2, 3});
  c.AddNode(4);
  c.Elect(1);
  ProposeAndSettle(c, 1, {ConfChangeType::kAddLearner, 4});
  ProposeAndSettle(c, 1, {ConfChangeType::kAddVoter, 4});
  EXPECT_EQ(c.node(4)->GetStatus().conf, (ConfState{{1, 2, 3, 4}, {}}));
  // Now 4 voters: 1+4+2 is a quorum, 1+4 is not.
  c.Isolate(3);
  Index idx = c.Propose(1, "three-of-four");
  c.Stabilize();
  EXPECT_EQ(c.CommitOf(1), idx);
  c.Isolate(2);
  idx = c.Propose(1, "two-of-four");
  c.Stabilize();
  EXPECT_LT(c.CommitOf(1), idx);
}

TEST(MembershipTest, RemoveVoterShrinksQuorum) {
  Cluster c({1, 2, 3});
  c.Elect(1);
  ProposeAndSettle(c, 1, {ConfChangeType::kRemoveNode, 3});
  EXPECT_EQ(c.node(1)->GetStatus().conf, (ConfState{{1, 2}, {}}));
  c.Isolate(3);
  const Index idx = c.Propose(1, "x");
  c.Stabilize();
  EXPECT_EQ(c.CommitOf(1), idx);
  // Messages from the removed node are ignored by the leader.
  EXPECT_TRUE(c.node(1)->IsLeader());
}

TEST(MembershipTest, RefusesSecondPendingChange) {
  Cluster c({1, 2, 3});
  c.AddNode(4);
  c.AddNode(5);
  c.Elect(1);
  ASSERT_TRUE(c.node(1)->ProposeConfChange({ConfChangeType::kAddLearner, 4}).ok());
  auto r = c.node(1)->ProposeConfChange({ConfChangeType::kAddLearner, 5});
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  // Committed but not yet applied still counts as pending: commit it without draining node 1.
  c.Stabilize();
  c.TickAll(2);
  EXPECT_TRUE(c.node(1)->ProposeConfChange({ConfChangeType::kAddLearner, 5}).ok());
}

TEST(MembershipTest, RefusesChangeBeforeCurrentTermCommit) {
  Cluster c({1, 2, 3});
  c.SetDrop([](const Message& m) { return m.type == MessageType::kAppend; });
  c.node(1)->Campaign();
  c.Stabilize();
  ASSERT_TRUE(c.node(1)->IsLeader());
  auto r = c.node(1)->ProposeConfChange({ConfChangeType::kRemoveNode, 3});
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  c.Heal();
  c.TickAll(2);
  EXPECT_TRUE(c.node(1)->ProposeConfChange({ConfChangeType::kRemoveNode, 3}).ok());
}

TEST(MembershipTest, RejectsNonsensicalChanges) {
  Cluster c({1, 2, 3});
  c.Elect(1);
  c.TickAll();
  EXPECT_EQ(c.node(1)->ProposeConfChange({ConfChangeType::kRemoveNode, 9}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(c.node(1)->ProposeConfChange({ConfChangeType::kAddVoter, 2}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(c.node(1)->ProposeConfChange({ConfChangeType::kAddVoter, 0}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(c.node(2)->ProposeConfChange({ConfChangeType::kAddVoter, 4}).status().code(),
            StatusCode::kFailedPrecondition);
  Cluster one({1});
  one.Elect(1);
  one.TickAll();
  EXPECT_EQ(one.node(1)->ProposeConfChange({ConfChangeType::kRemoveNode, 1}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(MembershipTest, RemovedLeaderStepsDownAfterApplyingItsRemoval) {
  Cluster c({1, 2, 3});
  c.Elect(1);
  ProposeAndSettle(c, 1, {ConfChangeType::kRemoveNode, 1});
  EXPECT_FALSE(c.node(1)->IsLeader());
  c.Isolate(1);
  for (int i = 0; i < 100 && !c.node(2)->IsLeader() && !c.node(3)->IsLeader(); ++i) c.TickAll();
  const NodeId lead = c.node(2)->IsLeader() ? 2 : 3;
  ASSERT_TRUE(c.node(lead)->IsLeader());
  EXPECT_EQ(c.node(lead)->GetStatus().conf, (ConfState{{2, 3}, {}}));
  const Index idx = c.Propose(lead, "without-1");
  c.Stabilize();
  EXPECT_EQ(c.CommitOf(lead), idx);
}

}  // namespace
}  // namespace skiff::raft
