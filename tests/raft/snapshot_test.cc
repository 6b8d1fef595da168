#include <gtest/gtest.h>

#include "raft_test_util.h"

namespace skiff::raft {
namespace {

using testing::Cluster;
using testing::CountType;

// Snapshots node `id`'s storage at its applied index and compacts the log up to there.
void SnapshotAndCompact(Cluster& c, NodeId id, const std::string& image) {
  auto& p = c.peer(id);
  const Index at = p.applied_index;
  ASSERT_TRUE(p.storage.CreateSnapshot(at, c.node(id)->GetStatus().conf, Bytes(image)).ok());
  ASSERT_TRUE(p.storage.Compact(at).ok());
}

TEST(SnapshotTest, LaggingFollowerIsCaughtUpWithASnapshot) {
  Cluster c({1, 2, 3});
  c.Elect(1);
  c.Isolate(3);
  for (int i = 0; i < 10; ++i) c.Propose(1, "e" + std::to_string(i));
  c.Stabilize();
  SnapshotAndCompact(c, 1, "image@12");
  const Index snap_index = c.peer(1).storage.GetSnapshot()->meta.index;
  ASSERT_EQ(snap_index, 12u);
  c.Heal();
  c.Record(true);
  c.TickAll(3);
  ASSERT_EQ(CountType(c.recorded(), MessageType::kSnapshot), 1u);
  EXPECT_EQ(c.peer(3).storage.GetSnapshot()->meta.index, snap_index);
  EXPECT_EQ(c.peer(3).storage.GetSnapshot()->data.ToString(), "image@12");
  EXPECT_EQ(c.peer(3).storage.FirstIndex(), snap_index + 1);
  EXPECT_EQ(c.peer(3).applied_index, snap_index);
  EXPECT_EQ(c.node(3)->GetStatus().conf, (ConfState{{1, 2, 3}, {}}));
  // Replication continues normally after the snapshot.
  c.Propose(1, "after");
  c.Stabilize();
  c.TickAll();
  EXPECT_EQ(c.AppliedData(3), std::vector<std::string>{"after"});
  EXPECT_EQ(c.CommitOf(3), c.CommitOf(1));
}

TEST(SnapshotTest, FailedSnapshotIsRetried) {
  Cluster c({1, 2, 3});
  c.Elect(1);
  c.Isolate(3);
  for (int i = 0; i < 3; ++i) c.Propose(1, "e" + std::to_string(i));
  c.Stabilize();
  SnapshotAndCompact(c, 1, "img");
  c.Heal();
  // The first snapshot is lost in transit and reported as failed.
  bool dropped = false;
  c.SetDrop([&dropped](const Message& m) {
    if (m.type == MessageType::kSnapshot && !dropped) {
      dropped = true;
      return true;
    }
    return false;
  });
  c.TickAll(2);
  ASSERT_TRUE(dropped);
  c.node(1)->ReportSnapshot(3, false);
  c.TickAll(3);
  EXPECT_EQ(c.peer(3).storage.GetSnapshot()->meta.index, 5u);
  EXPECT_EQ(c.CommitOf(3), c.CommitOf(1));
}

TEST(SnapshotTest, StaleSnapshotMessageIsIgnored) {
  Cluster c({1, 2});
  c.Elect(1);
  c.Propose(1, "x");
  c.Stabilize();
  c.TickAll();
  Message m;
  m.type = MessageType::kSnapshot;
  m.from = 1;
  m.to = 2;
  m.term = c.TermOf(1);
  m.snapshot = Snapshot{};
  m.snapshot->meta = {2, 2, ConfState{{1, 2}, {}}};
  ASSERT_TRUE(c.node(2)->Step(m).ok());
  auto out = c.Drain(2);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, MessageType::kAppendResponse);
  EXPECT_EQ(out[0].index, c.CommitOf(2));
  EXPECT_EQ(c.peer(2).storage.GetSnapshot()->meta.index, 1u);  // still the bootstrap one
  EXPECT_EQ(c.AppliedData(2), std::vector<std::string>{"x"});
}

// Review F4: a follower in snapshot state whose acknowledgement shows that the log can serve it
// (match+1 >= FirstIndex) goes back to replication without waiting for the snapshot index.
TEST(SnapshotTest, SnapshotStateEndsOnceTheLogCanServeTheFollower) {
  Cluster c({1, 2, 3});
  c.Elect(1);
  c.Isolate(3);
  for (int i = 0; i < 10; ++i) c.Propose(1, "e" + std::to_string(i));
  c.Stabilize();
  auto& p = c.peer(1);
  const Index snap = p.applied_index;  // 12
  ASSERT_TRUE(
      p.storage.CreateSnapshot(snap, c.node(1)->GetStatus().conf, Bytes(std::string("img"))).ok());
  ASSERT_TRUE(p.storage.Compact(snap - 5).ok());  // keep a few entries below the snapshot
  c.Heal();
  c.SetDrop([](const Message& m) { return m.type == MessageType::kSnapshot; });
  c.TickAll(3);  // leader probes 3, finds it too far behind, sends a snapshot (dropped)
  // A late acknowledgement from 3 for an index the log can still serve from.
  Message ack;
  ack.type = MessageType::kAppendResponse;
  ack.from = 3;
  ack.to = 1;
  ack.term = c.TermOf(1);
  ack.index = snap - 4;
  ASSERT_TRUE(c.node(1)->Step(ack).ok());
  auto msgs = c.Drain(1);
  bool append_from_ack = false;
  for (const Message& m : msgs) {
    if (m.type == MessageType::kAppend && m.to == 3 && m.index == snap - 4) append_from_ack = true;
  }
  EXPECT_TRUE(append_from_ack) << "the leader resumes appends after the acknowledged index";
}

}  // namespace
}  // namespace skiff::raft
