#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "raft_test_util.h"

namespace skiff::raft {
namespace {

using testing::Cluster;
using testing::CountType;
using testing::MakeEntry;

TEST(ReplicationTest, ProposalsCommitAndApplyInOrderEverywhere) {
  Cluster c({1, 2, 3});
  c.Elect(1);
  for (int i = 0; i < 10; ++i) c.Propose(1, "v" + std::to_string(i));
  c.Stabilize();
  c.TickAll();
  for (NodeId id : c.ids()) {
    auto data = c.AppliedData(id);
    ASSERT_EQ(data.size(), 10u) << "node " << id;
    for (int i = 0; i < 10; ++i) EXPECT_EQ(data[i], "v" + std::to_string(i));
    EXPECT_EQ(c.CommitOf(id), 12u);
  }
}

TEST(ReplicationTest, ProposeOnFollowerFails) {
  Cluster c({1, 2, 3});
  c.Elect(1);
  auto r = c.node(2)->Propose(Bytes(std::string("x")));
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(c.node(2)->GetStatus().soft_state.leader, 1u);
}

TEST(ReplicationTest, SingleNodeCommitsOnlyAfterAdvance) {
  Cluster c({1});
  c.Elect(1);
  const Index idx = c.Propose(1, "x");
  Ready rd = c.node(1)->GetReady();
  ASSERT_EQ(rd.entries.size(), 1u);
  EXPECT_TRUE(rd.must_sync);
  EXPECT_TRUE(rd.committed_entries.empty());
  EXPECT_LT(c.CommitOf(1), idx) << "must not commit before the entry is durable";
  ASSERT_TRUE(c.peer(1).storage.Append(rd.entries).ok());
  c.node(1)->Advance(rd);
  EXPECT_EQ(c.CommitOf(1), idx);
  ASSERT_TRUE(c.node(1)->HasReady());
  Ready rd2 = c.node(1)->GetReady();
  ASSERT_EQ(rd2.committed_entries.size(), 1u);
  EXPECT_EQ(rd2.committed_entries[0].data.ToString(), "x");
  c.node(1)->Advance(rd2);
}

TEST(ReplicationTest, LeaderCountsItselfOnlyAfterAdvance) {
  Cluster c({1, 2, 3});
  c.Elect(1);
  c.Cut(1, 3);
  const Index idx = c.Propose(1, "x");
  Ready rd = c.node(1)->GetReady();
  ASSERT_EQ(CountType(rd.messages, MessageType::kAppend), 2u);  // the one to 3 gets dropped
  for (const Message& m : rd.messages) c.Deliver(m);
  auto resp = c.Drain(2);
  ASSERT_EQ(resp.size(), 1u);
  c.Deliver(resp[0]);
  EXPECT_LT(c.CommitOf(1), idx) << "follower 2 alone is not a quorum until the leader persisted";
  ASSERT_TRUE(c.peer(1).storage.Append(rd.entries).ok());
  c.node(1)->Advance(rd);
  EXPECT_EQ(c.CommitOf(1), idx);
  c.Heal();
}

TEST(ReplicationTest, AsyncWritesLeaderCountsItselfOnlyOnceDurable) {
  Cluster c({1, 2, 3}, [](Config& cfg) { cfg.async_storage_writes = true; });
  c.Elect(1);
  c.peer(1).durable_at_once = false;
  c.Cut(1, 3);
  const Index idx = c.Propose(1, "x");
  c.Stabilize();  // written and Advanced by the leader, acknowledged by follower 2
  EXPECT_EQ(c.peer(1).storage.LastIndex(), idx);
  EXPECT_LT(c.CommitOf(1), idx) << "follower 2 alone is not a quorum until the leader's write "
                                   "is durable";
  // A report for an entry of another term is not about this log.
  c.node(1)->OnDurable(idx, c.TermOf(1) + 1);
  EXPECT_LT(c.CommitOf(1), idx);
  c.MakeDurable(1);
  EXPECT_EQ(c.CommitOf(1), idx);
  c.Heal();
  c.Stabilize();
  for (NodeId id : c.ids()) EXPECT_EQ(c.AppliedData(id), std::vector<std::string>{"x"});
}

TEST(ReplicationTest, AsyncWritesNewLeaderCommitsItsNoOpOnlyOnceDurable) {
  Cluster c({1, 2, 3}, [](Config& cfg) { cfg.async_storage_writes = true; });
  c.Elect(1);
  c.Propose(1, "a");
  c.Stabilize();
  // Node 2 takes over (node 3 cut off, so node 1's acknowledgement and node 2's own make the
  // quorum); its no-op, written and Advanced, counts only once OnDurable says so.
  c.peer(2).durable_at_once = false;
  c.Isolate(3);
  ASSERT_TRUE(c.node(1)->TransferLeadership(2).ok());
  c.Stabilize();
  ASSERT_TRUE(c.node(2)->IsLeader());
  const Index noop = c.LastOf(2);
  EXPECT_LT(c.CommitOf(2), noop) << "leader 2 counted its own unreported no-op";
  c.MakeDurable(2);
  EXPECT_EQ(c.CommitOf(2), noop);
  c.Heal();
}

TEST(ReplicationTest, OnDurableIsIgnoredWithSynchronousWrites) {
  Cluster c({1});
  c.Elect(1);
  const Index idx = c.Propose(1, "x");
  c.node(1)->OnDurable(idx, c.TermOf(1));
  EXPECT_LT(c.CommitOf(1), idx) << "only Advance makes a synchronous write count";
  c.Stabilize();
  EXPECT_EQ(c.CommitOf(1), idx);
}

TEST(ReplicationTest, ProposalsAreBatchedIntoOneAppend) {
  Cluster c({1, 2, 3});
  c.Elect(1);
  c.TickAll();  // followers in replicate state
  for (int i = 0; i < 5; ++i) c.Propose(1, "p" + std::to_string(i));
  auto msgs = c.Drain(1);
  ASSERT_EQ(CountType(msgs, MessageType::kAppend), 2u);
  for (const Message& m : msgs) EXPECT_EQ(m.entries.size(), 5u);
}

size_t CountEmptyAppends(const std::vector<Message>& msgs) {
  return static_cast<size_t>(std::count_if(msgs.begin(), msgs.end(), [](const Message& m) {
    return m.type == MessageType::kAppend && m.entries.empty();
  }));
}

// Heartbeats every 5 ticks, so that a tick alone is what carries a deferred commit.
void DeferCommits(Config& c) {
  c.defer_commit_broadcast = true;
  c.heartbeat_ticks = 5;
  c.election_ticks = 20;
}

TEST(ReplicationTest, CommitIsBroadcastAtOnceByDefault) {
  Cluster c({1, 2, 3});
  c.Elect(1);
  c.TickAll();
  c.Record(true);
  const Index idx = c.Propose(1, "x");
  c.Stabilize();
  EXPECT_EQ(CountEmptyAppends(c.recorded()), 2u) << "one commit-only append per follower";
  EXPECT_EQ(c.CommitOf(2), idx);
  EXPECT_EQ(c.CommitOf(3), idx);
}

TEST(ReplicationTest, DeferredCommitTravelsWithTheNextAppend) {
  Cluster c({1, 2, 3}, DeferCommits);
  c.Elect(1);
  c.TickAll();
  c.Record(true);
  const Index first = c.Propose(1, "a");
  c.Stabilize();
  EXPECT_EQ(CountEmptyAppends(c.recorded()), 0u) << "no message round just for the commit";
  EXPECT_EQ(c.CommitOf(1), first);
  EXPECT_LT(c.CommitOf(2), first);
  EXPECT_LT(c.CommitOf(3), first);

  c.Propose(1, "b");
  auto msgs = c.Drain(1);
  ASSERT_EQ(CountType(msgs, MessageType::kAppend), 2u);
  for (const Message& m : msgs) EXPECT_EQ(m.commit, first) << "to " << m.to;
  c.Deliver(msgs);
  for (NodeId f : {2, 3}) {
    c.Drain(f);
    EXPECT_EQ(c.CommitOf(f), first) << "follower " << f;
    EXPECT_EQ(c.AppliedData(f), std::vector<std::string>{"a"}) << "follower " << f;
  }
}

TEST(ReplicationTest, DeferredCommitGoesOutOnTheNextTickAndOnlyOnce) {
  Cluster c({1, 2, 3}, DeferCommits);
  c.Elect(1);
  c.TickAll();
  const Index idx = c.Propose(1, "a");
  c.Stabilize();
  ASSERT_LT(c.CommitOf(2), idx);

  c.Tick(1);
  auto msgs = c.Drain(1);
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(CountEmptyAppends(msgs), 2u);
  for (const Message& m : msgs) EXPECT_EQ(m.commit, idx);
  c.Deliver(msgs);
  c.Stabilize();
  EXPECT_EQ(c.CommitOf(2), idx);
  EXPECT_EQ(c.CommitOf(3), idx);

  c.Tick(1);
  EXPECT_TRUE(c.Drain(1).empty()) << "followers already know the commit";
}

TEST(ReplicationTest, DeferredCommitIsResentAfterTheFollowerWasLost) {
  Cluster c({1, 2, 3}, DeferCommits);
  c.Elect(1);
  c.TickAll();
  c.Isolate(3);
  const Index idx = c.Propose(1, "a");
  c.Stabilize();
  c.TickAll(5);  // heartbeats to 3 get no answer; 2 learns the commit
  EXPECT_EQ(c.CommitOf(2), idx);
  EXPECT_LT(c.CommitOf(3), idx);
  c.Heal();
  c.TickAll(10);
  EXPECT_EQ(c.CommitOf(3), idx);
  EXPECT_EQ(c.AppliedData(3), std::vector<std::string>{"a"});
}

TEST(ReplicationTest, MaxAppendBytesSplitsMessages) {
  Cluster c({1, 2}, [](Config& cfg) { cfg.max_append_bytes = 100; });
  c.Elect(1);
  c.TickAll();
  for (int i = 0; i < 6; ++i) c.Propose(1, std::string(40, 'a' + i));  // 64 bytes each
  auto msgs = c.Drain(1);
  EXPECT_EQ(CountType(msgs, MessageType::kAppend), 6u);
  for (const Message& m : msgs) EXPECT_EQ(m.entries.size(), 1u);
  c.Deliver(msgs);
  c.Stabilize();
  EXPECT_EQ(c.AppliedData(2).size(), 6u);
}

TEST(ReplicationTest, PipeliningRespectsInflightWindow) {
  Cluster c({1, 2}, [](Config& cfg) {
    cfg.max_append_bytes = 1;  // one entry per message
    cfg.max_inflight_appends = 3;
  });
  c.Elect(1);
  c.TickAll();
  for (int i = 0; i < 10; ++i) c.Propose(1, "e" + std::to_string(i));
  auto msgs = c.Drain(1);
  EXPECT_EQ(CountType(msgs, MessageType::kAppend), 3u) << "at most 3 appends in flight";
  // Acknowledging them opens the window again; everything arrives eventually.
  c.Deliver(msgs);
  auto resp = c.Drain(2);
  ASSERT_EQ(resp.size(), 3u);
  c.Deliver(resp[0]);  // one ack frees one slot
  auto more = c.Drain(1);
  EXPECT_EQ(CountType(more, MessageType::kAppend), 1u);
  c.Deliver(resp[1]);
  c.Deliver(resp[2]);
  c.Deliver(more);
  c.Stabilize();
  EXPECT_EQ(c.AppliedData(2).size(), 10u);
}

TEST(ReplicationTest, CommitRequiresCurrentTermEntryFigure8) {
  // Raft paper figure 8. A leader must not count replicas of an entry from an earlier term.
  Cluster c({1, 2, 3, 4, 5}, [](Config& cfg) {
    cfg.pre_vote = false;
    cfg.check_quorum = false;
    cfg.max_append_bytes = 1;  // one entry per kAppend, so the no-op can be dropped on its own
  });
  c.Elect(1);
  c.TickAll();
  const Term t1 = c.TermOf(1);
  const Index base = c.CommitOf(1);  // 2: snapshot + no-op

  // (a) S1 replicates "a" (index 3) only to S2.
  c.SetDrop(
      [](const Message& m) { return !((m.from == 1 && m.to == 2) || (m.from == 2 && m.to == 1)); });
  const Index k = c.Propose(1, "a");
  c.Stabilize();
  EXPECT_EQ(c.LastOf(2), k);
  EXPECT_EQ(c.CommitOf(1), base);

  // (b) S1 crashes; S5 is elected by S3, S4, S5 and writes its no-op at index k only locally.
  c.SetDrop([](const Message& m) {
    if (m.from == 1 || m.to == 1 || m.from == 2 || m.to == 2) return true;
    return m.from == 5 && m.type == MessageType::kAppend;
  });
  c.node(5)->Campaign();
  c.Stabilize();
  ASSERT_TRUE(c.node(5)->IsLeader());
  const Term t2 = c.TermOf(5);
  EXPECT_GT(t2, t1);
  EXPECT_EQ(c.LastOf(5), k);  // S5's own term-t2 entry at index k

  // (c) S5 crashes; S1 is elected by S1..S4 and replicates "a" to S3, but its no-op is lost.
  c.SetDrop([k, &c](const Message& m) {
    if (m.from == 5 || m.to == 5) return true;
    // Lose S1's no-op (index k+1) on its way to anyone that already holds index k; probes to
    // followers lacking k get through so that they are back-filled with "a".
    if (m.type == MessageType::kAppend && c.LastOf(m.to) >= k) {
      for (const Entry& e : m.entries) {
        if (e.index > k) return true;
      }
    }
    return false;
  });
  c.Restart(1);  // S1 comes back from its durable state as a follower
  for (int i = 0; i < 5 && !c.node(1)->IsLeader(); ++i) {
    c.node(1)->Campaign();
    c.Stabilize();
  }
  ASSERT_TRUE(c.node(1)->IsLeader());
  EXPECT_GT(c.TermOf(1), t2);
  c.TickAll(3);
  EXPECT_EQ(c.LastOf(3), k);
  EXPECT_EQ(c.LastOf(4), k);
  // "a" is now on S1..S4 (a majority) but it is from an old term: not committed.
  EXPECT_EQ(c.CommitOf(1), base) << "an old-term entry must not be committed by counting";

  // (d) S1 crashes; S5 (last entry at term t2 > t1) can win and overwrite "a" — which is fine
  // precisely because it was never committed.
  c.SetDrop([](const Message& m) { return m.from == 1 || m.to == 1; });
  c.Restart(5);
  for (int i = 0; i < 5 && !c.node(5)->IsLeader(); ++i) {
    c.node(5)->Campaign();
    c.Stabilize();
  }
  ASSERT_TRUE(c.node(5)->IsLeader());
  c.Heal();
  c.TickAll(5);
  c.Propose(5, "b");
  c.Stabilize();
  c.TickAll(2);
  for (NodeId id : c.ids()) {
    EXPECT_EQ(c.AppliedData(id), std::vector<std::string>{"b"}) << "node " << id;
  }
}

// Leader log (terms): 1 1 1 4 4 5 5 6 6 6; follower: 1 1 1 2 2 2 3 3 3 3 3 (figure 7 style).
TEST(ReplicationTest, ConflictResolutionWithFastBacktracking) {
  const std::vector<Term> leader_terms = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6};
  const std::vector<Term> follower_terms = {1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3};
  auto prepare = [&](NodeId id, MemoryLogStorage& s) {
    const auto& terms = id == 2 ? follower_terms : leader_terms;
    std::vector<Entry> ents;
    for (size_t i = 0; i < terms.size(); ++i) ents.push_back(MakeEntry(i + 1, terms[i]));
    ASSERT_TRUE(s.Append(ents).ok());
    s.SetHardState(HardState{6, 0, 3});
    s.SetConfState(ConfState{{1, 2, 3}, {}});
  };
  Cluster c(
      {1, 2, 3}, [](Config& cfg) { cfg.pre_vote = false; }, false, prepare);
  c.Isolate(2);
  c.Elect(1);
  c.Heal();
  c.Record(true);
  c.TickAll(3);
  size_t rejects = 0;
  for (const Message& m : c.recorded()) {
    if (m.type == MessageType::kAppendResponse && m.from == 2 && m.reject) ++rejects;
  }
  EXPECT_LE(rejects, 2u) << "fast back-tracking skips whole terms";
  EXPECT_GE(rejects, 1u);
  ASSERT_EQ(c.LastOf(2), c.LastOf(1));
  for (Index i = 1; i <= c.LastOf(1); ++i) {
    EXPECT_EQ(*c.peer(2).storage.TermAt(i), *c.peer(1).storage.TermAt(i)) << "index " << i;
  }
  EXPECT_EQ(c.CommitOf(2), c.LastOf(1));
}

TEST(ReplicationTest, DuplicatedAndReorderedMessagesAreHarmless) {
  Cluster c({1, 2, 3});
  c.Elect(1);
  c.Record(true);
  for (int i = 0; i < 5; ++i) {
    c.Propose(1, "x" + std::to_string(i));
    c.Stabilize();
  }
  std::vector<Message> replay = c.recorded();
  c.Record(false);
  // Deliver everything again, in reverse order, twice.
  for (int rep = 0; rep < 2; ++rep) {
    for (auto it = replay.rbegin(); it != replay.rend(); ++it) c.Deliver(*it);
    c.Stabilize();
  }
  c.Propose(1, "y");
  c.Stabilize();
  c.TickAll(2);
  for (NodeId id : c.ids()) {
    EXPECT_EQ(c.AppliedData(id), (std::vector<std::string>{"x0", "x1", "x2", "x3", "x4", "y"}));
  }
  EXPECT_TRUE(c.node(1)->IsLeader());
}

TEST(ReplicationTest, MaxUncommittedBytesRefusesProposals) {
  Cluster c({1, 2, 3}, [](Config& cfg) { cfg.max_uncommitted_bytes = 100; });
  c.Elect(1);
  c.Isolate(2);
  c.Isolate(3);
  EXPECT_TRUE(c.node(1)->Propose(Bytes(std::string(60, 'a'))).ok());
  auto r = c.node(1)->Propose(Bytes(std::string(60, 'b')));
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  c.Heal();
  c.Stabilize();
  c.TickAll(2);
  EXPECT_TRUE(c.node(1)->Propose(Bytes(std::string(60, 'b'))).ok());
}

TEST(ReplicationTest, IgnoresMessagesForOthersAndRejectsMalformed) {
  Cluster c({1, 2, 3});
  c.Elect(1);
  Message m;
  m.type = MessageType::kAppend;
  m.from = 1;
  m.to = 9;
  EXPECT_TRUE(c.node(2)->Step(m).ok());  // not for us: ignored
  m.to = 2;
  m.from = 0;
  EXPECT_EQ(c.node(2)->Step(m).code(), StatusCode::kInvalidArgument);
  m.from = 1;
  m.term = c.TermOf(1);
  m.index = 2;
  m.entries = {MakeEntry(5, 1)};  // not contiguous with index 2
  EXPECT_EQ(c.node(2)->Step(m).code(), StatusCode::kInvalidArgument);
  Message s;
  s.type = MessageType::kSnapshot;
  s.from = 1;
  s.to = 2;
  EXPECT_EQ(c.node(2)->Step(s).code(), StatusCode::kInvalidArgument);
  // A response from a non-member is ignored by the leader.
  Message r;
  r.type = MessageType::kAppendResponse;
  r.from = 42;
  r.to = 1;
  r.term = c.TermOf(1);
  r.index = 100;
  EXPECT_TRUE(c.node(1)->Step(r).ok());
  EXPECT_TRUE(c.node(1)->IsLeader());
}

}  // namespace
}  // namespace skiff::raft
