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

// Review F7: a host that steps messages between GetReady and Advance can receive a newer
// snapshot before it applies the Ready's conf change; ApplyConfChange(cc, index) then ignores
// the older change instead of applying it on top of the snapshot's membership.
TEST(MembershipTest, ConfChangeBelowANewerSnapshotIsIgnored) {
  Cluster c({1, 2, 3});
  c.Elect(1);
  c.TickAll();
  c.SetDrop([](const Message& m) { return m.to == 2; });
  auto idx = c.node(1)->ProposeConfChange(ConfChange{ConfChangeType::kAddLearner, 4});
  ASSERT_TRUE(idx.ok());
  c.Stabilize();  // committed by 1 and 3; 2 hears nothing
  c.Heal();
  // Let 2 catch up to the commit of the conf change, without letting it apply it.
  std::vector<Message> to2;
  for (int i = 0; i < 30 && c.CommitOf(2) < *idx; ++i) {
    if (to2.empty()) c.Tick(1);
    for (const Message& m : c.Drain(1)) {
      if (m.to == 2) to2.push_back(m);
    }
    for (const Message& m : to2) c.Deliver(m);
    to2.clear();
    if (c.CommitOf(2) >= *idx) break;
    c.Deliver(c.Drain(2));
  }
  ASSERT_GE(c.CommitOf(2), *idx);
  Ready rd = c.node(2)->GetReady();
  std::optional<ConfChange> cc;
  for (const Entry& e : rd.committed_entries) {
    if (e.index == *idx) cc = DecodeConfChange(e.data.view());
  }
  ASSERT_TRUE(cc.has_value());
  ASSERT_TRUE(c.peer(2).storage.Append(rd.entries).ok());
  // Before the host applies rd, a newer snapshot (in which learner 4 is gone again) arrives.
  Message m;
  m.type = MessageType::kSnapshot;
  m.from = 1;
  m.to = 2;
  m.term = c.TermOf(1);
  Snapshot snap;
  snap.meta.index = c.LastOf(2) + 10;
  snap.meta.term = c.TermOf(1);
  snap.meta.conf = ConfState{{1, 2, 3}, {}};
  m.snapshot = snap;
  ASSERT_TRUE(c.node(2)->Step(m).ok());
  EXPECT_EQ(c.node(2)->ApplyConfChange(*cc, *idx), (ConfState{{1, 2, 3}, {}}));
  EXPECT_EQ(c.node(2)->GetStatus().conf, (ConfState{{1, 2, 3}, {}}));
  c.node(2)->Advance(rd);
}

}  // namespace
}  // namespace skiff::raft
