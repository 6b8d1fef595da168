// A tiny deterministic in-test cluster for scripted Raft scenarios: each node has a
// MemoryLogStorage, the host loop of node.h (persist, send, apply, Advance) is run by hand, and
// messages are delivered explicitly, with optional partitions and drop filters. No threads,
// clocks or sleeps.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "raft/memory_log_storage.h"
#include "raft/node.h"

namespace skiff::raft::testing {

struct Peer {
  MemoryLogStorage storage;
  Config config;
  std::unique_ptr<Node> node;
  std::vector<Entry> applied;  // committed entries applied, in order (no-ops included)
  Index applied_index = 0;
  std::vector<ReadState> read_states;
  std::vector<SoftState> soft_states;
  // Config.async_storage_writes: the last entry of each write not yet reported durable, and
  // whether Drain reports each write durable at once (as a host whose fsyncs are instant).
  std::vector<std::pair<Index, Term>> not_durable;
  bool durable_at_once = true;
};

inline Config DefaultConfig(NodeId id) {
  Config c;
  c.id = id;
  c.election_ticks = 10;
  c.heartbeat_ticks = 1;
  c.seed = id * 7919;
  return c;
}

class Cluster {
 public:
  using Tweak = std::function<void(Config&)>;

  // Creates nodes `ids` (all voters) and bootstraps them with the same membership.
  // `prepare`, if given, fills a node's storage before the node is created (and then no
  // bootstrap happens): for scenarios that start from a hand-made log.
  using Prepare = std::function<void(NodeId, MemoryLogStorage&)>;
  explicit Cluster(std::vector<NodeId> ids, const Tweak& tweak = nullptr, bool bootstrap = true,
                   const Prepare& prepare = nullptr) {
    ConfState conf;
    conf.voters = ids;
    std::sort(conf.voters.begin(), conf.voters.end());
    if (prepare) bootstrap = false;
    for (NodeId id : ids) {
      AddNode(id, tweak, prepare);
      if (bootstrap) {
        Status s = node(id)->Bootstrap(conf);
        EXPECT_TRUE(s.ok()) << s.ToString();
        peers_[id]->storage.SetConfState(conf);
      }
    }
    for (NodeId id : ids) Drain(id);
  }

  // Adds a fresh, non-bootstrapped node (to be added by a conf change).
  void AddNode(NodeId id, const Tweak& tweak = nullptr, const Prepare& prepare = nullptr) {
    auto p = std::make_unique<Peer>();
    if (prepare) prepare(id, p->storage);
    p->config = DefaultConfig(id);
    if (tweak) tweak(p->config);
    p->config.storage = &p->storage;
    auto n = Node::Create(p->config);
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    p->node = std::move(n).value();
    peers_[id] = std::move(p);
  }

  Node* node(NodeId id) { return peers_.at(id)->node.get(); }
  Peer& peer(NodeId id) { return *peers_.at(id); }
  std::vector<NodeId> ids() const {
    std::vector<NodeId> out;
    for (const auto& [id, p] : peers_) out.push_back(id);
    return out;
  }

  // Runs the host loop of node.h once per pending Ready: persists, applies, Advances. Returns
  // the messages the node wants sent (they are not delivered).
  std::vector<Message> Drain(NodeId id) {
    std::vector<Message> out;
    Peer& p = peer(id);
    while (p.node->HasReady()) {
      Ready rd = p.node->GetReady();
      if (rd.soft_state) p.soft_states.push_back(*rd.soft_state);
      if (rd.snapshot) {
        Status s = p.storage.ApplySnapshot(*rd.snapshot);
        EXPECT_TRUE(s.ok()) << s.ToString();
        p.applied_index = rd.snapshot->meta.index;
        p.applied.clear();  // state machine replaced by the snapshot image
      }
      Status s = p.storage.Append(rd.entries);
      EXPECT_TRUE(s.ok()) << s.ToString();
      if (rd.hard_state) p.storage.SetHardState(*rd.hard_state);
      if (!rd.entries.empty() || rd.snapshot || rd.hard_state) ++persist_count_;
      if (rd.must_sync) ++sync_count_;
      for (Message& m : rd.messages) out.push_back(std::move(m));
      for (const Entry& e : rd.committed_entries) {
        EXPECT_EQ(e.index, p.applied_index + 1) << "node " << id << " applies out of order";
        p.applied_index = e.index;
        p.applied.push_back(e);
        if (e.type == EntryType::kConfChange) {
          auto cc = DecodeConfChange(e.data.view());
          EXPECT_TRUE(cc.has_value());
          if (cc) p.storage.SetConfState(p.node->ApplyConfChange(*cc, e.index));
        }
      }
      for (const ReadState& rs : rd.read_states) p.read_states.push_back(rs);
      p.node->Advance(rd);
      if (p.config.async_storage_writes && !rd.entries.empty()) {
        p.not_durable.emplace_back(rd.entries.back().index, rd.entries.back().term);
        if (p.durable_at_once) MakeDurable(id);
      }
    }
    return out;
  }

  // Config.async_storage_writes: reports every write of node `id` durable, in order.
  void MakeDurable(NodeId id) {
    Peer& p = peer(id);
    for (auto [index, term] : p.not_durable) p.node->OnDurable(index, term);
    p.not_durable.clear();
  }

  bool Blocked(const Message& m) const {
    if (isolated_.count(m.from) || isolated_.count(m.to)) return true;
    if (cut_.count({m.from, m.to})) return true;
    if (drop_ && drop_(m)) return true;
    return !peers_.count(m.to);
  }

  // Delivers one message (respecting partitions). Returns true if delivered.
  bool Deliver(const Message& m) {
    if (Blocked(m)) return false;
    Status s = node(m.to)->Step(m);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return true;
  }
  void Deliver(const std::vector<Message>& msgs) {
    for (const Message& m : msgs) Deliver(m);
  }

  // Drains every node and delivers messages until the network is quiet.
  void Stabilize(int max_rounds = 10000) {
    for (int round = 0; round < max_rounds; ++round) {
      std::vector<Message> all;
      for (NodeId id : ids()) {
        auto msgs = Drain(id);
        all.insert(all.end(), msgs.begin(), msgs.end());
      }
      if (all.empty()) return;
      for (const Message& m : all) {
        if (record_) recorded_.push_back(m);
        Deliver(m);
      }
    }
    ADD_FAILURE() << "network did not stabilize";
  }

  void Tick(NodeId id, int n = 1) {
    for (int i = 0; i < n; ++i) node(id)->Tick();
  }
  // Ticks every node once and stabilizes; repeated n times.
  void TickAll(int n = 1) {
    for (int i = 0; i < n; ++i) {
      for (NodeId id : ids()) node(id)->Tick();
      Stabilize();
    }
  }

  void Elect(NodeId id) {
    node(id)->Campaign();
    Stabilize();
    ASSERT_TRUE(node(id)->IsLeader()) << "node " << id << " failed to become leader";
  }

  Index Propose(NodeId id, const std::string& data) {
    auto r = node(id)->Propose(Bytes(data));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : 0;
  }

  // Payloads of applied normal entries (no-ops skipped).
  std::vector<std::string> AppliedData(NodeId id) {
    std::vector<std::string> out;
    for (const Entry& e : peer(id).applied) {
      if (e.type == EntryType::kNormal && !e.data.empty()) out.push_back(e.data.ToString());
    }
    return out;
  }

  // Simulates a crash and restart: the node is rebuilt from its storage (everything it was
  // told to persist), resuming after the entries it applied.
  void Restart(NodeId id, const Tweak& tweak = nullptr) {
    Peer& p = peer(id);
    if (tweak) tweak(p.config);
    p.config.applied = p.applied_index;
    auto n = Node::Create(p.config);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    p.node = std::move(n).value();
  }

  void Isolate(NodeId id) { isolated_.insert(id); }
  void Cut(NodeId a, NodeId b) {
    cut_.insert({a, b});
    cut_.insert({b, a});
  }
  void Heal() {
    isolated_.clear();
    cut_.clear();
    drop_ = nullptr;
  }
  void SetDrop(std::function<bool(const Message&)> drop) { drop_ = std::move(drop); }
  void Record(bool on) {
    record_ = on;
    recorded_.clear();
  }
  const std::vector<Message>& recorded() const { return recorded_; }
  int sync_count() const { return sync_count_; }

  Term TermOf(NodeId id) { return node(id)->GetStatus().hard_state.term; }
  Index CommitOf(NodeId id) { return node(id)->GetStatus().hard_state.commit; }
  Index LastOf(NodeId id) { return node(id)->GetStatus().last_index; }

 private:
  std::map<NodeId, std::unique_ptr<Peer>> peers_;
  std::set<NodeId> isolated_;
  std::set<std::pair<NodeId, NodeId>> cut_;
  std::function<bool(const Message&)> drop_;
  bool record_ = false;
  std::vector<Message> recorded_;
  int persist_count_ = 0;
  int sync_count_ = 0;
};

inline size_t CountType(const std::vector<Message>& msgs, MessageType t) {
  return static_cast<size_t>(
      std::count_if(msgs.begin(), msgs.end(), [t](const Message& m) { return m.type == t; }));
}

inline Entry MakeEntry(Index index, Term term, std::string data = "") {
  Entry e;
  e.index = index;
  e.term = term;
  if (!data.empty()) e.data = Bytes(data);
  return e;
}

}  // namespace skiff::raft::testing
