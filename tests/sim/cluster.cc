#include "cluster.h"

#include <algorithm>
#include <sstream>
#include <utility>

namespace skiff::sim {

namespace {

// A node must not loop forever producing Ready batches from one input. Pages of committed
// entries (bounded by max_append_bytes) can legitimately take many rounds.
constexpr int kMaxReadyRoundsPerInput = 10000;  // committed entries come in pages
// Bounds the deliveries per global tick (a message storm is a bug, not a reason to hang).
constexpr size_t kMaxDeliveriesPerTick = 100000;

bool Contains(const std::vector<raft::NodeId>& ids, raft::NodeId id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

}  // namespace

Cluster::Cluster(const ClusterConfig& config, SimRandom* random, Checker* checker)
    : config_(config), random_(random), checker_(checker), network_(random) {
  SKIFF_ASSERT(config_.initial_nodes >= 1);
  SKIFF_ASSERT(config_.max_node_id >= static_cast<raft::NodeId>(config_.initial_nodes));
  SKIFF_ASSERT(config_.max_node_id <= kMaxNodeId);
  nodes_.resize(config_.max_node_id + 1);
  for (raft::NodeId id = 1; id <= config_.max_node_id; id++) {
    nodes_[id].id = id;
    nodes_[id].initial_member = id <= static_cast<raft::NodeId>(config_.initial_nodes);
    if (nodes_[id].initial_member) initial_conf_.voters.push_back(id);
  }
}

SimNode& Cluster::node(raft::NodeId id) {
  SKIFF_ASSERT(id >= 1 && id <= config_.max_node_id);
  return nodes_[id];
}

const SimNode& Cluster::node(raft::NodeId id) const {
  SKIFF_ASSERT(id >= 1 && id <= config_.max_node_id);
  return nodes_[id];
}

raft::Config Cluster::RaftConfigFor(SimNode& n) const {
  raft::Config c = config_.raft;
  c.id = n.id;
  c.storage = n.storage.visible();
  c.applied = n.sm.applied;
  c.seed = Mix64(config_.seed ^ Mix64(n.id * 1000003 + n.incarnation));
  return c;
}

void Cluster::Start() {
  for (raft::NodeId id = 1; id <= config_.max_node_id; id++) {
    SimNode& n = node(id);
    if (!n.initial_member) continue;
    n.storage.SetInitialConf(initial_conf_);
    n.sm = n.storage.durable_state_machine();
    CreateNode(n, /*bootstrap=*/true);
  }
}

void Cluster::CreateNode(SimNode& n, bool bootstrap) {
  SKIFF_ASSERT(n.state != NodeState::kUp);
  n.incarnation++;
  n.tick_credit = 0;
  n.stop_after_ready = false;
  Result<std::unique_ptr<raft::Node>> created = raft::Node::Create(RaftConfigFor(n));
  if (!created.ok()) {
    checker_->Fail("Node::Create failed for node " + std::to_string(n.id) + ": " +
                   created.status().ToString());
    return;
  }
  n.node = std::move(created).value();
  n.state = NodeState::kUp;
  if (bootstrap) {
    Status s = n.node->Bootstrap(initial_conf_);
    if (!s.ok()) {
      checker_->Fail("Bootstrap failed for node " + std::to_string(n.id) + ": " + s.ToString());
      return;
    }
  }
  Trace("start node " + std::to_string(n.id) + " applied=" + std::to_string(n.sm.applied));
  HandleReady(n);
}

void Cluster::HandleReady(SimNode& n) {
  for (int round = 0; round < kMaxReadyRoundsPerInput; round++) {
    if (n.state != NodeState::kUp || !n.node->HasReady()) return;
    if (checker_->failed()) return;
    raft::Ready rd = n.node->GetReady();
    stats_.readies++;
    if (round >= kMaxReadyRoundsPerInput - 2) {
      std::ostringstream os;
      os << "node " << n.id << " Ready round " << round << ": soft " << rd.soft_state.has_value()
         << " hard " << rd.hard_state.has_value() << " snapshot " << rd.snapshot.has_value()
         << " entries " << rd.entries.size() << " committed " << rd.committed_entries.size()
         << " messages " << rd.messages.size() << " reads " << rd.read_states.size()
         << " must_sync " << rd.must_sync;
      if (!rd.messages.empty()) {
        os << " first message " << raft::MessageTypeName(rd.messages[0].type) << " to "
           << rd.messages[0].to;
      }
      last_ready_summary_ = os.str();
    }

    // 0. Like skiffd's host, send a leader's replication messages before its own write (node.h
    // allows it), and sometimes crash right after, so the write never happens: followers then
    // hold entries their leader lost, which Raft must handle. A Ready that changes the term (a
    // lone voter elects itself at once) sends nothing early: the new term must be durable first.
    if (!rd.hard_state || rd.hard_state->term == n.storage.visible()->hard_state().term) {
      auto late =
          std::stable_partition(rd.messages.begin(), rd.messages.end(), [](const raft::Message& m) {
            return m.type == raft::MessageType::kAppend ||
                   m.type == raft::MessageType::kHeartbeat ||
                   m.type == raft::MessageType::kSnapshot;
          });
      const bool sent_early = late != rd.messages.begin();
      for (auto it = rd.messages.begin(); it != late; ++it) {
        if (it->from != n.id) {
          checker_->Fail("node " + std::to_string(n.id) + " sent a message from node " +
                         std::to_string(it->from));
          return;
        }
        network_.Send(std::move(*it), now_ticks_);
      }
      rd.messages.erase(rd.messages.begin(), late);
      if (config_.crash_after_early_send && sent_early && !rd.entries.empty() &&
          random_->OneIn(64)) {
        stats_.crashes_before_leader_write++;
        Trace("crash node " + std::to_string(n.id) + " after sending appends, before its write");
        Crash(n.id);
        return;
      }
    }

    // 1. Persist: snapshot, entries, hard state, as one unit; sync if asked.
    std::optional<SimStateMachine> snapshot_sm;
    if (rd.snapshot.has_value()) {
      const bool empty_image = rd.snapshot->data.empty();
      snapshot_sm = empty_image ? SimStateMachine::FromEmptySnapshot(rd.snapshot->meta)
                                : SimStateMachine::Decode(rd.snapshot->data.view());
      if (!snapshot_sm.has_value()) {
        checker_->Fail("node " + std::to_string(n.id) + " was given a snapshot at index " +
                       std::to_string(rd.snapshot->meta.index) + " with an undecodable image");
        return;
      }
      if (rd.snapshot->meta.index < n.sm.applied) {
        checker_->Fail("node " + std::to_string(n.id) + " was asked to install a snapshot at " +
                       std::to_string(rd.snapshot->meta.index) +
                       ", rolling back its state machine from applied index " +
                       std::to_string(n.sm.applied));
        return;
      }
      checker_->OnSnapshotInstalled(n.id, rd.snapshot->meta, *snapshot_sm, empty_image);
      if (!empty_image) stats_.snapshots_installed++;  // not counting bootstrap snapshots
    }
    Status s = n.storage.PersistReady(rd.snapshot, snapshot_sm ? &*snapshot_sm : nullptr,
                                      rd.entries, rd.hard_state);
    if (!s.ok()) {
      checker_->Fail("node " + std::to_string(n.id) +
                     " could not persist its Ready: " + s.ToString());
      return;
    }
    if (snapshot_sm.has_value()) n.sm = *snapshot_sm;
    checker_->OnPersistEntries(n.id, *n.storage.visible(), rd.entries);
    if (!rd.must_sync &&
        (rd.snapshot.has_value() || !rd.entries.empty() || rd.hard_state.has_value())) {
      stats_.unsynced_persists++;
    }
    const bool async = config_.raft.async_storage_writes;
    const bool wrote = rd.snapshot.has_value() || !rd.entries.empty() || rd.hard_state.has_value();
    if (async && wrote) n.unsynced = true;
    // Like skiffd's host, a write nothing needs synced (a commit index) makes no message wait:
    // it promises nothing, so only must_sync writes hold what follows them.
    if (async && wrote && rd.must_sync) n.holding = true;
    // The broken hosts of the checker self-tests: one holds nothing back; the other holds only
    // the messages of Readies that wrote something, so a write-less Ready's acknowledgement of
    // entries an earlier Ready wrote (still unsynced) overtakes their sync.
    const bool writeless_sent_early = config_.async_hold_only_writing_readies && !wrote;
    const bool hold =
        async && !config_.async_acks_before_sync && !writeless_sent_early && n.holding;
    if (async && writeless_sent_early && n.holding) {
      stats_.sent_ahead_of_unsynced_writes += rd.messages.size();
    }
    if (rd.must_sync && !config_.lying_disk && !async) {
      s = n.storage.Sync();
      if (!s.ok()) {
        checker_->Fail("node " + std::to_string(n.id) + " sync failed: " + s.ToString());
        return;
      }
    }
    if (rd.soft_state.has_value() && rd.soft_state->role == raft::Role::kLeader) {
      const raft::Term term = n.node->GetStatus().hard_state.term;
      Trace("node " + std::to_string(n.id) + " leads term " + std::to_string(term));
      checker_->OnBecameLeader(n.id, term, *n.storage.visible());
    }

    // 2. Send (async writes: once everything written so far is durable, see node.h).
    for (raft::Message& m : rd.messages) {
      if (m.from != n.id) {
        checker_->Fail("node " + std::to_string(n.id) + " sent a message from node " +
                       std::to_string(m.from));
        return;
      }
      if (hold) {
        n.held.push_back(std::move(m));
      } else {
        network_.Send(std::move(m), now_ticks_);
      }
    }
    if (async && !rd.entries.empty()) {
      n.not_durable.emplace_back(rd.entries.back().index, rd.entries.back().term);
    }

    // 3. Apply.
    bool applied_any = false;
    const raft::Term node_term =
        rd.committed_entries.empty() ? 0 : n.node->GetStatus().hard_state.term;
    for (const raft::Entry& e : rd.committed_entries) {
      if (e.index != n.sm.applied + 1) {
        std::ostringstream os;
        os << "node " << n.id << " was asked to apply index " << e.index << " after applying "
           << n.sm.applied;
        checker_->Fail(os.str());
        return;
      }
      n.sm.Apply(e);
      applied_any = true;
      stats_.entries_applied++;
      if (e.type == raft::EntryType::kConfChange) {
        std::optional<raft::ConfChange> cc = raft::DecodeConfChange(e.data.view());
        if (!cc.has_value()) {
          checker_->Fail("node " + std::to_string(n.id) + " applied an undecodable conf change");
          return;
        }
        n.sm.conf = n.node->ApplyConfChange(*cc);
        OnConfChangeApplied(n, *cc);
      }
      checker_->OnApply(n.id, e, n.sm, node_term);
    }
    if (applied_any) n.storage.Checkpoint(n.sm);
    for (const raft::ReadState& rs : rd.read_states) checker_->OnReadState(n.id, rs);

    // 4. Advance.
    n.node->Advance(rd);

    if (n.stop_after_ready) {
      // The host stops serving a replica once it applied its own removal.
      n.held.clear();
      n.not_durable.clear();
      n.unsynced = false;
      n.holding = false;
      Status synced = n.storage.Sync();
      if (!synced.ok()) checker_->Fail("sync at shutdown failed: " + synced.ToString());
      n.node.reset();
      n.state = NodeState::kShutDown;
      n.stop_after_ready = false;
      stats_.shutdowns++;
      checker_->OnNodeStopped(n.id);
      Trace("shut down removed node " + std::to_string(n.id));
      return;
    }
  }
  if (n.state == NodeState::kUp && n.node->HasReady()) {
    checker_->Fail("node " + std::to_string(n.id) + " still had a Ready after " +
                   std::to_string(kMaxReadyRoundsPerInput) + " rounds for one input; " +
                   last_ready_summary_);
  }
}

void Cluster::OnConfChangeApplied(SimNode& n, const raft::ConfChange& cc) {
  stats_.conf_changes_applied++;
  const bool member = Contains(n.sm.conf.voters, n.id) || Contains(n.sm.conf.learners, n.id);
  if (cc.type == raft::ConfChangeType::kRemoveNode && cc.node == n.id && !member) {
    n.stop_after_ready = true;
  }
  if (cc.type != raft::ConfChangeType::kRemoveNode && cc.node >= 1 &&
      cc.node <= config_.max_node_id) {
    to_start_.push_back(cc.node);
  }
}

void Cluster::ReportLost() {
  // Bounded: feedback can cause new sends, which may be lost again.
  for (int round = 0; round < 16; round++) {
    std::vector<raft::Message> lost = network_.TakeLost();
    if (lost.empty()) return;
    for (const raft::Message& m : lost) Undeliverable(m);
  }
}

void Cluster::StartAddedMembers() {
  ReportLost();
  std::vector<raft::NodeId> ids;
  ids.swap(to_start_);
  for (raft::NodeId id : ids) {
    SimNode& n = node(id);
    if (n.state == NodeState::kNeverStarted || n.state == NodeState::kShutDown) {
      n.sm = n.storage.durable_state_machine();
      CreateNode(n, /*bootstrap=*/false);
    }
  }
}

void Cluster::Drain(raft::NodeId id) {
  SimNode& n = node(id);
  if (n.state == NodeState::kUp) HandleReady(n);
}

void Cluster::SyncAsyncWrites(SimNode& n) {
  if (n.state != NodeState::kUp || !n.unsynced) return;
  if (!config_.lying_disk) {
    Status s = n.storage.Sync();
    if (!s.ok()) {
      checker_->Fail("node " + std::to_string(n.id) + " sync failed: " + s.ToString());
      return;
    }
  }
  stats_.async_syncs++;
  n.unsynced = false;
  n.holding = false;
  std::vector<raft::Message> held;
  held.swap(n.held);
  for (raft::Message& m : held) network_.Send(std::move(m), now_ticks_);
  std::vector<std::pair<raft::Index, raft::Term>> durable;
  durable.swap(n.not_durable);
  for (auto [index, term] : durable) n.node->OnDurable(index, term);
  HandleReady(n);
}

void Cluster::Tick() {
  now_ticks_++;
  for (raft::NodeId id = 1; id <= config_.max_node_id; id++) {
    SimNode& n = node(id);
    if (n.state != NodeState::kUp) continue;
    // An fsync takes a random part of a tick or a few ticks; writes keep being issued meanwhile.
    if (n.unsynced && !config_.scripted_async_syncs && random_->OneIn(2)) SyncAsyncWrites(n);
    if (n.state != NodeState::kUp) continue;
    n.tick_credit += n.rate_eighths;
    for (int i = 0; i < 16 && n.tick_credit >= 8 && n.state == NodeState::kUp; i++) {
      n.tick_credit -= 8;
      n.node->Tick();
      HandleReady(n);
    }
  }
  std::vector<raft::Message> deliver;
  std::vector<raft::Message> blocked;
  for (size_t rounds = 0; rounds < kMaxDeliveriesPerTick; rounds++) {
    deliver.clear();
    blocked.clear();
    network_.TakeDue(now_ticks_, &deliver, &blocked);
    if (deliver.empty() && blocked.empty()) break;
    for (const raft::Message& m : blocked) Undeliverable(m);
    for (const raft::Message& m : deliver) Deliver(m);
    if (checker_->failed()) return;
  }
  StartAddedMembers();
}

void Cluster::DeliverAnyOne() {
  std::vector<raft::Message> deliver;
  std::vector<raft::Message> blocked;
  if (!network_.DeliverAnyOne(&deliver, &blocked)) return;
  for (const raft::Message& m : blocked) Undeliverable(m);
  for (const raft::Message& m : deliver) Deliver(m);
  StartAddedMembers();
}

void Cluster::Deliver(const raft::Message& m) {
  if (m.to < 1 || m.to > config_.max_node_id || !IsUp(m.to)) {
    Undeliverable(m);
    return;
  }
  network_.CountDelivered(1);
  if (trace) {
    std::ostringstream os;
    os << "deliver " << raft::MessageTypeName(m.type) << " " << m.from << "->" << m.to << " term "
       << m.term << " index " << m.index << " log_term " << m.log_term << " commit " << m.commit
       << " entries " << m.entries.size() << (m.reject ? " REJECT" : "") << " hint "
       << m.reject_hint << " ctx " << m.context;
    Trace(os.str());
  }
  SimNode& target = node(m.to);
  Status s = target.node->Step(m);
  if (!s.ok()) {
    std::ostringstream os;
    os << "node " << m.to << " rejected a well-formed " << raft::MessageTypeName(m.type)
       << " from node " << m.from << ": " << s.ToString();
    checker_->Fail(os.str());
    return;
  }
  HandleReady(target);
  if (m.type == raft::MessageType::kSnapshot && IsUp(m.from)) {
    SimNode& sender = node(m.from);
    sender.node->ReportSnapshot(m.to, true);
    HandleReady(sender);
  }
}

void Cluster::Undeliverable(const raft::Message& m) {
  if (!IsUp(m.from)) return;
  SimNode& sender = node(m.from);
  if (m.type == raft::MessageType::kSnapshot) {
    sender.node->ReportSnapshot(m.to, false);
    HandleReady(sender);
  } else if (random_->OneIn(4)) {
    sender.node->ReportUnreachable(m.to);
    HandleReady(sender);
  }
}

void Cluster::Crash(raft::NodeId id, CrashLoss loss) {
  SimNode& n = node(id);
  if (n.state != NodeState::kUp) return;
  n.node.reset();
  // Unsynced writes may be lost; the messages that waited for them were never sent.
  n.held.clear();
  n.not_durable.clear();
  n.unsynced = false;
  n.holding = false;
  Status s = loss == CrashLoss::kAllUnsynced ? n.storage.CrashLosingAllUnsynced()
                                             : n.storage.Crash(random_);
  if (!s.ok()) checker_->Fail("crash recovery of node storage failed: " + s.ToString());
  n.sm = n.storage.durable_state_machine();
  n.state = NodeState::kCrashed;
  stats_.crashes++;
  checker_->OnNodeStopped(id);
  Trace("crash node " + std::to_string(id) + " durable applied=" + std::to_string(n.sm.applied) +
        " last=" + std::to_string(n.storage.durable().LastIndex()));
}

void Cluster::Restart(raft::NodeId id) {
  SimNode& n = node(id);
  if (n.state == NodeState::kUp) return;
  n.sm = n.storage.durable_state_machine();
  const raft::MemoryLogStorage& d = n.storage.durable();
  // An initial member whose bootstrap never reached the disk bootstraps again.
  const bool bootstrap =
      n.initial_member && d.LastIndex() == 0 && d.hard_state().term == 0 && d.FirstIndex() == 1;
  stats_.restarts++;
  CreateNode(n, bootstrap);
}

void Cluster::SnapshotAndCompact(raft::NodeId id, raft::Index keep_entries) {
  SimNode& n = node(id);
  if (n.state != NodeState::kUp) return;
  if (n.sm.applied < n.storage.visible()->FirstIndex()) return;  // nothing new to snapshot
  const raft::Index compact = n.sm.applied > keep_entries ? n.sm.applied - keep_entries : 0;
  Status s = n.storage.SnapshotAndCompact(n.sm, compact);
  if (!s.ok()) {
    checker_->Fail("node " + std::to_string(id) + " snapshot/compaction failed: " + s.ToString());
    return;
  }
  stats_.snapshots_taken++;
  Trace("node " + std::to_string(id) + " snapshot at " + std::to_string(n.sm.applied) +
        " compact to " + std::to_string(compact));
}

raft::NodeId Cluster::Leader() const {
  raft::NodeId best = raft::kNoNode;
  raft::Term best_term = 0;
  for (raft::NodeId id = 1; id <= config_.max_node_id; id++) {
    const SimNode& n = node(id);
    if (n.state != NodeState::kUp || !n.node->IsLeader()) continue;
    const raft::Term t = n.node->GetStatus().hard_state.term;
    if (best == raft::kNoNode || t > best_term) {
      best = id;
      best_term = t;
    }
  }
  return best;
}

raft::Index Cluster::MaxKnownCommit() const {
  raft::Index commit = 0;
  for (raft::NodeId id = 1; id <= config_.max_node_id; id++) {
    const SimNode& n = node(id);
    if (n.state != NodeState::kUp) continue;
    commit = std::max(commit, n.node->GetStatus().hard_state.commit);
  }
  return commit;
}

void Cluster::CheckAll() {
  for (raft::NodeId id = 1; id <= config_.max_node_id; id++) {
    SimNode& n = node(id);
    if (n.state != NodeState::kUp) continue;
    raft::NodeStatus status = n.node->GetStatus();
    if (status.id != id) {
      checker_->Fail("node " + std::to_string(id) + " reports id " + std::to_string(status.id));
      return;
    }
    checker_->OnStatus(status);
    if (checker_->failed()) return;
  }
}

std::string Cluster::Describe() const {
  static constexpr const char* kStates[] = {"never-started", "up", "crashed", "shut-down"};
  std::ostringstream os;
  for (raft::NodeId id = 1; id <= config_.max_node_id; id++) {
    const SimNode& n = node(id);
    os << "\n    node " << id << ": " << kStates[static_cast<int>(n.state)];
    if (n.state != NodeState::kUp) {
      os << " durable last " << n.storage.durable().LastIndex() << " applied " << n.sm.applied;
      continue;
    }
    const raft::NodeStatus st = n.node->GetStatus();
    os << " " << raft::RoleName(st.soft_state.role) << " term " << st.hard_state.term << " vote "
       << st.hard_state.vote << " lead " << st.soft_state.leader << " commit "
       << st.hard_state.commit << " last " << st.last_index << " first "
       << n.storage.visible()->FirstIndex() << " applied " << n.sm.applied
       << (st.quiesced ? " quiesced" : "") << " voters {";
    for (raft::NodeId v : st.conf.voters) os << " " << v;
    os << " } learners {";
    for (raft::NodeId v : st.conf.learners) os << " " << v;
    os << " }";
    if (st.soft_state.role == raft::Role::kLeader) {
      os << " match {";
      for (const auto& [peer, match] : st.match) os << " " << peer << ":" << match;
      os << " }";
      if (st.lead_transferee != raft::kNoNode) os << " transferring to " << st.lead_transferee;
    }
  }
  return os.str();
}

}  // namespace skiff::sim
