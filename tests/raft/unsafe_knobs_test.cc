#include <gtest/gtest.h>

#include "raft_test_util.h"

namespace skiff::raft {
namespace {

using testing::Cluster;

TEST(UnsafeKnobsTest, RefusedWithoutAllowFlag) {
  MemoryLogStorage s;
  Config cfg;
  cfg.id = 1;
  cfg.storage = &s;
  cfg.unsafe.commit_on_minority = true;
  EXPECT_EQ(Node::Create(cfg).status().code(), StatusCode::kInvalidArgument);
  cfg.unsafe.allow_unsafe_testing = true;
  EXPECT_TRUE(Node::Create(cfg).ok());
}

Index ProposeWithMinority(bool knob) {
  Cluster c({1, 2, 3, 4, 5}, [knob](Config& cfg) {
    cfg.unsafe.allow_unsafe_testing = knob;
    cfg.unsafe.commit_on_minority = knob;
  });
  c.Elect(1);
  c.Isolate(3);
  c.Isolate(4);
  c.Isolate(5);
  const Index idx = c.Propose(1, "minority");
  c.Stabilize();
  return c.CommitOf(1) >= idx ? idx : 0;
}

TEST(UnsafeKnobsTest, CommitOnMinority) {
  EXPECT_EQ(ProposeWithMinority(false), 0u);
  EXPECT_NE(ProposeWithMinority(true), 0u);
}

bool StaleCandidateWins(bool knob) {
  Cluster c({1, 2, 3}, [knob](Config& cfg) {
    cfg.pre_vote = false;
    cfg.check_quorum = false;
    cfg.unsafe.allow_unsafe_testing = knob;
    cfg.unsafe.vote_ignores_log = knob;
  });
  c.Elect(1);
  c.Isolate(3);
  c.Propose(1, "x");
  c.Stabilize();
  c.Heal();
  c.Isolate(1);
  c.node(3)->Campaign();
  c.Stabilize();
  return c.node(3)->IsLeader();
}

TEST(UnsafeKnobsTest, VoteIgnoresLog) {
  EXPECT_FALSE(StaleCandidateWins(false));
  EXPECT_TRUE(StaleCandidateWins(true));
}

size_t GrantsForSecondCandidate(bool knob) {
  Cluster c({1, 2, 3}, [knob](Config& cfg) {
    cfg.pre_vote = false;
    cfg.check_quorum = false;
    cfg.unsafe.allow_unsafe_testing = knob;
    cfg.unsafe.vote_ignores_term = knob;
  });
  c.node(1)->Campaign();
  c.node(2)->Campaign();
  auto from1 = c.Drain(1);
  auto from2 = c.Drain(2);
  for (const Message& m : from1) {
    if (m.to == 3) c.Deliver(m);
  }
  for (const Message& m : from2) {
    if (m.to == 3) c.Deliver(m);
  }
  size_t grants_to_2 = 0;
  for (const Message& m : c.Drain(3)) {
    if (m.to == 2 && !m.reject) ++grants_to_2;
  }
  return grants_to_2;
}

TEST(UnsafeKnobsTest, VoteIgnoresTerm) {
  EXPECT_EQ(GrantsForSecondCandidate(false), 0u);
  EXPECT_EQ(GrantsForSecondCandidate(true), 1u);  // voted twice in one term
}

}  // namespace
}  // namespace skiff::raft
