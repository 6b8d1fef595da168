#include <gtest/gtest.h>

#include "raft_test_util.h"

namespace skiff::raft {
namespace {

using testing::Cluster;
using testing::CountType;

TEST(NodeTest, CreateValidatesConfig) {
  MemoryLogStorage s;
  Config cfg;
  EXPECT_EQ(Node::Create(cfg).status().code(), StatusCode::kInvalidArgument);  // id 0
  cfg.id = 1;
  EXPECT_EQ(Node::Create(cfg).status().code(), StatusCode::kInvalidArgument);  // no storage
  cfg.storage = &s;
  cfg.election_ticks = 1;
  EXPECT_EQ(Node::Create(cfg).status().code(), StatusCode::kInvalidArgument);
  cfg.election_ticks = 10;
  cfg.applied = 5;  // beyond the (empty) log
  EXPECT_EQ(Node::Create(cfg).status().code(), StatusCode::kInvalidArgument);
  cfg.applied = 0;
  EXPECT_TRUE(Node::Create(cfg).ok());
}

TEST(NodeTest, StatusAndSoftStateReportLeadership) {
  Cluster c({1, 2, 3});
  c.Elect(1);
  c.TickAll();
  NodeStatus s = c.node(1)->GetStatus();
  EXPECT_EQ(s.id, 1u);
  EXPECT_EQ(s.soft_state.role, Role::kLeader);
  EXPECT_EQ(s.soft_state.leader, 1u);
  ASSERT_EQ(s.match.size(), 3u);
  for (const auto& [id, match] : s.match) EXPECT_EQ(match, s.last_index) << "peer " << id;
  EXPECT_TRUE(c.node(2)->GetStatus().match.empty());
  // The host saw the leader change through Ready.soft_state.
  ASSERT_FALSE(c.peer(2).soft_states.empty());
  EXPECT_EQ(c.peer(2).soft_states.back().leader, 1u);
}

TEST(NodeTest, ReadyMustSyncOnlyWhenDurableStateChanges) {
  Cluster c({1, 2, 3});
  c.Elect(1);
  c.TickAll();
  c.Tick(1);
  Ready rd = c.node(1)->GetReady();  // heartbeats only
  EXPECT_FALSE(rd.must_sync);
  EXPECT_TRUE(rd.entries.empty());
  c.node(1)->Advance(rd);
}

TEST(NodeTest, ReportUnreachableFallsBackToProbing) {
  Cluster c({1, 2}, [](Config& cfg) { cfg.max_append_bytes = 1; });
  c.Elect(1);
  c.TickAll();
  c.Propose(1, "a");
  c.Propose(1, "b");
  auto msgs = c.Drain(1);
  ASSERT_EQ(CountType(msgs, MessageType::kAppend), 2u);  // pipelined in replicate state
  c.node(1)->ReportUnreachable(2);                       // both lost
  c.Propose(1, "c");
  msgs = c.Drain(1);
  // Probe state: one append, starting again from the last acknowledged index.
  ASSERT_EQ(CountType(msgs, MessageType::kAppend), 1u);
  EXPECT_EQ(msgs[0].entries.front().data.ToString(), "a");
  c.Deliver(msgs);
  c.Stabilize();
  c.TickAll();
  EXPECT_EQ(c.AppliedData(2), (std::vector<std::string>{"a", "b", "c"}));
}

TEST(NodeTest, RandomizedRunConvergesAndNeverDiverges) {
  // A small deterministic fuzz: random drops and isolations, then heal; all nodes must apply
  // identical sequences (checked prefix-wise while running).
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    Cluster c({1, 2, 3, 4, 5}, [seed](Config& cfg) { cfg.seed = seed * 1000 + cfg.id; });
    uint64_t x = seed;
    auto rnd = [&x]() {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      return x;
    };
    c.SetDrop([&rnd](const Message&) { return rnd() % 5 == 0; });
    int proposed = 0;
    for (int step = 0; step < 400; ++step) {
      if (rnd() % 50 == 0) {
        c.Heal();
        c.SetDrop([&rnd](const Message&) { return rnd() % 5 == 0; });
        c.Isolate(1 + rnd() % 5);
      }
      c.TickAll();
      for (NodeId id : c.ids()) {
        if (c.node(id)->IsLeader() && rnd() % 3 == 0) {
          auto r = c.node(id)->Propose(Bytes("p" + std::to_string(proposed)));
          if (r.ok()) ++proposed;
        }
      }
      // Safety: applied sequences are prefixes of each other.
      for (NodeId a : c.ids()) {
        for (NodeId b : c.ids()) {
          const auto& ea = c.peer(a).applied;
          const auto& eb = c.peer(b).applied;
          const size_t n = std::min(ea.size(), eb.size());
          for (size_t i = 0; i < n; ++i) {
            ASSERT_EQ(ea[i].index, eb[i].index);
            ASSERT_EQ(ea[i].term, eb[i].term) << "seed " << seed << " index " << ea[i].index;
            ASSERT_EQ(ea[i].data, eb[i].data);
          }
        }
      }
    }
    c.Heal();
    c.TickAll(100);
    const Index commit = c.CommitOf(1);
    for (NodeId id : c.ids()) EXPECT_EQ(c.CommitOf(id), commit) << "seed " << seed;
    EXPECT_GT(commit, 2u);
  }
}

}  // namespace
}  // namespace skiff::raft
