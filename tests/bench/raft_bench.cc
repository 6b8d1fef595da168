// raft_bench: committed proposals per second through a 3-node in-memory Raft cluster.
//
// No faults, no network delay, no disk: MemoryLogStorage and direct message hand-off, so the
// number measures the Raft core's own CPU cost per committed entry (Ready production, log
// bookkeeping, message fan-out, commit rule). Each iteration proposes `batch` entries at the
// leader and then pumps Ready cycles (persist, send, apply, Advance) on every node until the
// leader has applied them all.
//
//   BM_CommitOnePerReady     1 proposal per Ready cycle
//   BM_CommitBatched/64      64 proposals, then one Ready cycle carries them all
//
// items_per_second = committed proposals/s. Benchmarks never assert timings.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "raft/memory_log_storage.h"
#include "raft/node.h"

namespace {

using skiff::Bytes;
using skiff::raft::ConfChange;
using skiff::raft::ConfState;
using skiff::raft::Entry;
using skiff::raft::EntryType;
using skiff::raft::Index;
using skiff::raft::MemoryLogStorage;
using skiff::raft::Message;
using skiff::raft::Node;
using skiff::raft::NodeId;
using skiff::raft::Ready;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "raft_bench: %s\n", what.c_str());
  std::abort();
}

class BenchCluster {
 public:
  static constexpr int kNodes = 3;

  BenchCluster() {
    ConfState conf;
    for (NodeId id = 1; id <= kNodes; id++) conf.voters.push_back(id);
    for (NodeId id = 1; id <= kNodes; id++) {
      Member& m = members_[id - 1];
      m.storage.SetConfState(conf);
      skiff::raft::Config c;
      c.id = id;
      c.storage = &m.storage;
      c.election_ticks = 10;
      c.heartbeat_ticks = 1;
      c.seed = id;
      auto created = Node::Create(c);
      if (!created.ok()) Die("Node::Create: " + created.status().ToString());
      m.node = std::move(created).value();
      const skiff::Status s = m.node->Bootstrap(conf);
      if (!s.ok()) Die("Bootstrap: " + s.ToString());
    }
    members_[0].node->Campaign();
    for (int i = 0; i < 1000 && !members_[0].node->IsLeader(); i++) Pump();
    if (!members_[0].node->IsLeader()) Die("no leader elected");
    // Let the leader commit its term's no-op.
    for (int i = 0; i < 100; i++) Pump();
  }

  Node& leader() { return *members_[0].node; }
  Index leader_applied() const { return members_[0].applied; }

  // One Ready cycle on every node, then delivery of every message produced. Returns whether
  // anything happened.
  bool Pump() {
    bool progress = false;
    for (Member& m : members_) {
      for (int round = 0; round < 8 && m.node->HasReady(); round++) {
        progress = true;
        Ready rd = m.node->GetReady();
        if (rd.snapshot.has_value()) {
          if (!m.storage.ApplySnapshot(*rd.snapshot).ok()) Die("ApplySnapshot");
          m.applied = rd.snapshot->meta.index;
        }
        if (!rd.entries.empty() && !m.storage.Append(rd.entries).ok()) Die("Append");
        if (rd.hard_state.has_value()) m.storage.SetHardState(*rd.hard_state);
        for (Message& msg : rd.messages) inbox_.push_back(std::move(msg));
        for (const Entry& e : rd.committed_entries) {
          if (e.type == EntryType::kConfChange) {
            auto cc = skiff::raft::DecodeConfChange(e.data.view());
            if (cc.has_value()) m.storage.SetConfState(m.node->ApplyConfChange(*cc));
          }
          m.applied = e.index;
        }
        m.node->Advance(rd);
      }
    }
    while (!inbox_.empty()) {
      Message msg = std::move(inbox_.front());
      inbox_.pop_front();
      progress = true;
      if (msg.to >= 1 && msg.to <= kNodes) {
        if (!members_[msg.to - 1].node->Step(msg).ok()) Die("Step");
      }
    }
    return progress;
  }

 private:
  struct Member {
    MemoryLogStorage storage;
    std::unique_ptr<Node> node;
    Index applied = 0;
  };
  Member members_[kNodes];
  std::deque<Message> inbox_;
};

void RunCommitBenchmark(benchmark::State& state, int batch) {
  BenchCluster cluster;
  const Bytes payload(std::string(128, 'x'));
  uint64_t committed = 0;
  for (auto _ : state) {
    Index last = 0;
    for (int i = 0; i < batch; i++) {
      auto r = cluster.leader().Propose(payload);
      if (!r.ok()) Die("Propose: " + r.status().ToString());
      last = *r;
    }
    for (int i = 0; i < 1000 && cluster.leader_applied() < last; i++) cluster.Pump();
    if (cluster.leader_applied() < last) Die("proposals did not commit");
    committed += static_cast<uint64_t>(batch);
  }
  state.SetItemsProcessed(static_cast<int64_t>(committed));
}

void BM_CommitOnePerReady(benchmark::State& state) { RunCommitBenchmark(state, 1); }
BENCHMARK(BM_CommitOnePerReady);

void BM_CommitBatched(benchmark::State& state) {
  RunCommitBenchmark(state, static_cast<int>(state.range(0)));
}
BENCHMARK(BM_CommitBatched)->Arg(64);

}  // namespace
