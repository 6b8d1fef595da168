#include <gtest/gtest.h>

#include "raft_test_util.h"

namespace skiff::raft {
namespace {

using testing::Cluster;
using testing::CountType;

std::vector<NodeId> Leaders(Cluster& c) {
  std::vector<NodeId> out;
  for (NodeId id : c.ids()) {
    if (c.node(id)->IsLeader()) out.push_back(id);
  }
  return out;
}

TEST(ElectionTest, TicksElectExactlyOneLeaderAndCommitNoop) {
  Cluster c({1, 2, 3});
  for (int i = 0; i < 40 && Leaders(c).empty(); ++i) c.TickAll();
  auto leaders = Leaders(c);
  ASSERT_EQ(leaders.size(), 1u);
  const NodeId lead = leaders[0];
  c.TickAll(2);
  for (NodeId id : c.ids()) {
    EXPECT_EQ(c.node(id)->Leader(), lead);
    EXPECT_EQ(c.TermOf(id), 2u);  // bootstrap puts everyone at term 1
    // Index 1 is the bootstrap snapshot, index 2 the leader's no-op.
    EXPECT_EQ(c.CommitOf(id), 2u);
    ASSERT_EQ(c.peer(id).applied.size(), 1u);
    EXPECT_TRUE(c.peer(id).applied[0].data.empty());
  }
}

TEST(ElectionTest, RandomizedTimeoutWithinOneToTwoElectionTimeouts) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    Cluster c({1}, [seed](Config& cfg) { cfg.seed = seed; });
    int ticks = 0;
    while (!c.node(1)->IsLeader() && ticks < 100) {
      c.Tick(1);
      ++ticks;
    }
    EXPECT_GE(ticks, 10) << "seed " << seed;
    EXPECT_LT(ticks, 20) << "seed " << seed;
  }
}

TEST(ElectionTest, SameSeedSameBehaviour) {
  auto run = [](uint64_t seed) {
    Cluster c({1}, [seed](Config& cfg) { cfg.seed = seed; });
    int ticks = 0;
    while (!c.node(1)->IsLeader()) {
      c.Tick(1);
      ++ticks;
    }
    return ticks;
  };
  EXPECT_EQ(run(42), run(42));
}

TEST(ElectionTest, VoteIsPersistedInTheSameReadyAsTheResponse) {
  Cluster c({1, 2, 3}, [](Config& cfg) { cfg.pre_vote = false; });
  c.node(1)->Campaign();
  auto votes = c.Drain(1);
  ASSERT_EQ(CountType(votes, MessageType::kVote), 2u);
  for (const Message& m : votes) {
    if (m.to == 2) {
      ASSERT_TRUE(c.node(2)->Step(m).ok());
    }
  }
  Ready rd = c.node(2)->GetReady();
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->vote, 1u);
  EXPECT_EQ(rd.hard_state->term, 2u);
  EXPECT_TRUE(rd.must_sync);
  ASSERT_EQ(CountType(rd.messages, MessageType::kVoteResponse), 1u);
  EXPECT_FALSE(rd.messages[0].reject);
  c.node(2)->Advance(rd);
}

TEST(ElectionTest, NoSecondVoteInATerm) {
  Cluster c({1, 2, 3}, [](Config& cfg) {
    cfg.pre_vote = false;
    cfg.check_quorum = false;
  });
  c.node(1)->Campaign();
  c.node(2)->Campaign();  // both candidates at term 2
  auto from1 = c.Drain(1);
  auto from2 = c.Drain(2);
  // Node 3 hears node 1 first, then node 2.
  for (const Message& m : from1) {
    if (m.to == 3) c.Deliver(m);
  }
  for (const Message& m : from2) {
    if (m.to == 3) c.Deliver(m);
  }
  auto resp = c.Drain(3);
  ASSERT_EQ(resp.size(), 2u);
  EXPECT_EQ(resp[0].to, 1u);
  EXPECT_FALSE(resp[0].reject);
  EXPECT_EQ(resp[1].to, 2u);
  EXPECT_TRUE(resp[1].reject);
}

TEST(ElectionTest, SplitVoteResolves) {
  Cluster c({1, 2, 3, 4}, [](Config& cfg) { cfg.pre_vote = false; });
  // 1 and 2 campaign at once; 1 gets 3's vote and 2 gets 4's: nobody has 3 of 4.
  c.Cut(1, 4);
  c.Cut(2, 3);
  c.node(1)->Campaign();
  c.node(2)->Campaign();
  c.Stabilize();
  EXPECT_TRUE(Leaders(c).empty());
  EXPECT_EQ(c.TermOf(1), 2u);
  c.Heal();
  for (int i = 0; i < 100 && Leaders(c).empty(); ++i) c.TickAll();
  auto leaders = Leaders(c);
  ASSERT_EQ(leaders.size(), 1u);
  EXPECT_GE(c.TermOf(leaders[0]), 3u);
}

TEST(ElectionTest, CandidateWithStaleLogLoses) {
  Cluster c({1, 2, 3}, [](Config& cfg) { cfg.pre_vote = false; });
  c.Elect(1);
  c.Isolate(3);
  c.Propose(1, "x");
  c.Stabilize();
  c.Heal();
  // Node 3 misses "x"; nodes 1 and 2 refuse it (log not up to date).
  c.Isolate(1);
  c.node(3)->Campaign();
  c.Stabilize();
  EXPECT_FALSE(c.node(3)->IsLeader());
  c.Heal();
}

TEST(ElectionTest, PreVotePreventsTermInflationOfPartitionedNode) {
  Cluster c({1, 2, 3});
  c.Elect(1);
  const Term term = c.TermOf(1);
  c.Isolate(3);
  c.TickAll(100);
  EXPECT_EQ(c.TermOf(3), term) << "pre-vote rounds must not bump the term";
  EXPECT_TRUE(c.node(1)->IsLeader());
  c.Heal();
  c.TickAll(30);
  EXPECT_TRUE(c.node(1)->IsLeader());
  EXPECT_EQ(c.TermOf(1), term);
  EXPECT_EQ(c.node(3)->Leader(), 1u);
}

TEST(ElectionTest, WithoutPreVoteAPartitionedNodeInflatesItsTerm) {
  Cluster c({1, 2, 3}, [](Config& cfg) {
    cfg.pre_vote = false;
    cfg.check_quorum = false;
  });
  c.Elect(1);
  const Term term = c.TermOf(1);
  c.Isolate(3);
  c.TickAll(100);
  EXPECT_GT(c.TermOf(3), term + 2);
  c.Heal();
  c.TickAll(50);
  // The rejoining node disrupted the group: the term moved on.
  for (NodeId id : c.ids()) EXPECT_GT(c.TermOf(id), term);
}

TEST(ElectionTest, CheckQuorumLeaderStepsDown) {
  Cluster c({1, 2, 3});
  c.Elect(1);
  c.Isolate(1);
  // Within two election timeouts without hearing from a quorum (the first window may still
  // count the responses from before the partition).
  for (int i = 0; i < 20; ++i) c.Tick(1);
  c.Stabilize();
  EXPECT_FALSE(c.node(1)->IsLeader());
  EXPECT_EQ(c.node(1)->GetStatus().soft_state.role, Role::kFollower);
}

TEST(ElectionTest, CheckQuorumLeaderStaysWithQuorum) {
  Cluster c({1, 2, 3});
  c.Elect(1);
  c.Isolate(3);
  for (int i = 0; i < 50; ++i) {
    c.Tick(1);
    c.Tick(2);
    c.Stabilize();
  }
  EXPECT_TRUE(c.node(1)->IsLeader());
}

TEST(ElectionTest, LeaderStickinessIgnoresDisruptiveVotes) {
  Cluster c({1, 2, 3}, [](Config& cfg) { cfg.pre_vote = false; });
  c.Elect(1);
  const Term term = c.TermOf(1);
  c.node(3)->Campaign();  // a node that lost contact only briefly campaigns at term+1
  c.Stabilize();
  EXPECT_TRUE(c.node(1)->IsLeader());
  EXPECT_EQ(c.TermOf(1), term);
  EXPECT_EQ(c.TermOf(2), term);
  EXPECT_EQ(c.node(2)->Leader(), 1u);
}

TEST(ElectionTest, StaleLeaderStepsDownOnHigherTermResponse) {
  Cluster c({1, 2, 3});
  c.Elect(1);
  c.Isolate(1);
  for (int i = 0; i < 200 && !c.node(2)->IsLeader() && !c.node(3)->IsLeader(); ++i) c.TickAll();
  ASSERT_FALSE(c.node(2)->IsLeader() && c.node(3)->IsLeader());
  ASSERT_TRUE(c.node(2)->IsLeader() || c.node(3)->IsLeader());
  c.Heal();
  c.TickAll(3);
  EXPECT_FALSE(c.node(1)->IsLeader());
  EXPECT_EQ(c.TermOf(1), c.TermOf(2));
}

TEST(ElectionTest, LearnerNeverCampaigns) {
  Cluster c({1, 2});
  c.AddNode(3);
  c.Elect(1);
  ASSERT_TRUE(c.node(1)->ProposeConfChange({ConfChangeType::kAddLearner, 3}).ok());
  c.Stabilize();
  c.TickAll(2);
  ASSERT_EQ(c.node(3)->GetStatus().conf.learners, std::vector<NodeId>{3});
  c.Isolate(1);
  c.Isolate(2);
  c.TickAll(100);
  EXPECT_EQ(c.node(3)->GetStatus().soft_state.role, Role::kFollower);
  c.node(3)->Campaign();
  EXPECT_EQ(c.node(3)->GetStatus().soft_state.role, Role::kFollower);
}

// A LogStorage that counts reads of entries (to bound the work an election attempt does).
class CountingStorage : public LogStorage {
 public:
  explicit CountingStorage(const MemoryLogStorage* s) : s_(s) {}
  Result<InitialState> GetInitialState() const override { return s_->GetInitialState(); }
  Result<std::vector<Entry>> Entries(Index lo, Index hi, uint64_t max_bytes) const override {
    ++entries_calls;
    return s_->Entries(lo, hi, max_bytes);
  }
  Result<Term> TermAt(Index i) const override { return s_->TermAt(i); }
  Index FirstIndex() const override { return s_->FirstIndex(); }
  Index LastIndex() const override { return s_->LastIndex(); }
  Result<Snapshot> GetSnapshot() const override { return s_->GetSnapshot(); }
  mutable int entries_calls = 0;

 private:
  const MemoryLogStorage* s_;
};

// A restarted node whose log holds committed-but-unapplied entries; entry `conf_at` (if not 0)
// is a conf change.
std::unique_ptr<Node> RestartedWithUnapplied(MemoryLogStorage& mem, CountingStorage& counting,
                                             Index conf_at) {
  Snapshot snap;
  snap.meta.index = 1;
  snap.meta.term = 1;
  snap.meta.conf = ConfState{{1, 2, 3}, {}};
  EXPECT_TRUE(mem.ApplySnapshot(snap).ok());
  std::vector<Entry> entries;
  for (Index i = 2; i <= 50; ++i) {
    Entry e = testing::MakeEntry(i, 1, "x");
    if (i == conf_at) {
      e.type = EntryType::kConfChange;
      e.data = Bytes(EncodeConfChange(ConfChange{ConfChangeType::kAddLearner, 4}));
    }
    entries.push_back(e);
  }
  EXPECT_TRUE(mem.Append(entries).ok());
  mem.SetHardState(HardState{1, kNoNode, 50});
  Config cfg = testing::DefaultConfig(1);
  cfg.storage = &counting;
  cfg.applied = 1;
  auto n = Node::Create(cfg);
  EXPECT_TRUE(n.ok());
  return std::move(n).value();
}

// Review F8: election attempts do not re-read the whole committed-but-unapplied range each
// time to look for conf changes.
TEST(ElectionTest, UnappliedConfChangeCheckDoesNotRescanTheLog) {
  MemoryLogStorage mem;
  CountingStorage counting(&mem);
  auto node = RestartedWithUnapplied(mem, counting, /*conf_at=*/0);
  for (int i = 0; i < 5; ++i) node->Campaign();
  EXPECT_EQ(node->GetStatus().soft_state.role, Role::kPreCandidate);
  EXPECT_LE(counting.entries_calls, 1);
}

TEST(ElectionTest, NoCampaignWithCommittedUnappliedConfChange) {
  MemoryLogStorage mem;
  CountingStorage counting(&mem);
  auto node = RestartedWithUnapplied(mem, counting, /*conf_at=*/30);
  for (int i = 0; i < 3; ++i) node->Campaign();
  EXPECT_EQ(node->GetStatus().soft_state.role, Role::kFollower);
  EXPECT_FALSE(node->HasReady() && !node->GetReady().messages.empty());
}

}  // namespace
}  // namespace skiff::raft
