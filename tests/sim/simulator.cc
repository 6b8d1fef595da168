#include "simulator.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "checker.h"
#include "cluster.h"
#include "sim_random.h"

namespace skiff::sim {

namespace {

enum Action : int {
  kTick,
  kDeliverEarly,
  kDropMessage,
  kDuplicateMessage,
  kPropose,
  kReadIndex,
  kPartitionSymmetric,
  kPartitionOneWay,
  kIsolateLeader,
  kHeal,
  kCrash,
  kRestart,
  kMembership,
  kTransferLeader,
  kSnapshot,
  kCampaign,
  kSkewClock,
  kNetworkProfile,
  kWake,
  kActionCount,
};

// Base weights; each seed scales every weight but kTick by 0, 1, 2 or 3 (swarm testing).
constexpr std::array<uint64_t, kActionCount> kBaseWeights = {
    100,  // kTick
    20,   // kDeliverEarly
    3,    // kDropMessage
    3,    // kDuplicateMessage
    30,   // kPropose
    8,    // kReadIndex
    1,    // kPartitionSymmetric
    1,    // kPartitionOneWay
    1,    // kIsolateLeader
    3,    // kHeal
    2,    // kCrash
    4,    // kRestart
    3,    // kMembership
    1,    // kTransferLeader
    3,    // kSnapshot
    1,    // kCampaign
    1,    // kSkewClock
    1,    // kNetworkProfile
    1,    // kWake
};

// The replay command of the run in progress, for the crash reporter (async-signal-safe write).
char g_current_replay[512] = "";

void CrashReporter(int signal_number) {
  const char prefix[] =
      "\n*** raft_sim: process died (signal) during a simulation; replay with:\n  ";
  ssize_t ignored = write(STDERR_FILENO, prefix, sizeof(prefix) - 1);
  ignored =
      write(STDERR_FILENO, g_current_replay, strnlen(g_current_replay, sizeof(g_current_replay)));
  ignored = write(STDERR_FILENO, "\n", 1);
  (void)ignored;
  signal(signal_number, SIG_DFL);
  raise(signal_number);
}

void InstallCrashReporterOnce() {
  static bool installed = false;
  if (installed) return;
  installed = true;
  signal(SIGABRT, CrashReporter);
  signal(SIGSEGV, CrashReporter);
  signal(SIGBUS, CrashReporter);
  signal(SIGFPE, CrashReporter);
}

bool Contains(const std::vector<raft::NodeId>& ids, raft::NodeId id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

class Simulation {
 public:
  Simulation(const SimOptions& options, int nodes)
      : options_(options),
        nodes_(nodes),
        random_(options.seed),
        cluster_(MakeClusterConfig(), &random_, &checker_) {
    // Set here, not in MakeClusterConfig: election_ticks_ is initialized after cluster_.
    election_ticks_ = static_cast<uint64_t>(cluster_.config().raft.election_ticks);
    if (options_.trace) {
      cluster_.trace = [this](const std::string& line) { TraceLine(line); };
    }
    for (int a = 0; a < kActionCount; a++) {
      uint64_t scale = a == kTick ? 1 : random_.Below(4);
      // A run without writes checks little; faults that are never undone just stall it.
      if ((a == kPropose || a == kRestart || a == kHeal) && scale == 0) scale = 1;
      weights_[a] = kBaseWeights[a] * scale;
      total_weight_ += weights_[a];
    }
    RandomNetworkProfile();
  }

  SimResult Run();

 private:
  ClusterConfig MakeClusterConfig() {
    ClusterConfig c;
    c.seed = options_.seed;
    c.lying_disk = options_.lying_disk;
    c.crash_after_early_send = true;
    c.initial_nodes = nodes_;
    c.max_node_id = static_cast<raft::NodeId>(nodes_ + 2);
    raft::Config& r = c.raft;
    r.election_ticks = static_cast<int>(random_.Between(8, 20));
    r.heartbeat_ticks = static_cast<int>(random_.Between(1, 3));
    r.pre_vote = random_.Percent(80);
    r.check_quorum = random_.Percent(80);
    r.max_append_bytes = random_.OneIn(3) ? random_.Between(64, 512) : (1u << 20);
    r.max_inflight_appends = random_.OneIn(3) ? static_cast<int>(random_.Between(1, 4)) : 64;
    r.max_uncommitted_bytes = random_.OneIn(4) ? random_.Between(512, 8192) : 0;
    r.quiesce_after_ticks = random_.OneIn(4) ? static_cast<int>(random_.Between(5, 40)) : 0;
    const bool async_drawn = random_.OneIn(2);
    r.async_storage_writes = options_.async_writes < 0 ? async_drawn : options_.async_writes == 1;
    r.defer_commit_broadcast = options_.defer_commit < 0
                                   ? (Mix64(options_.seed ^ 0xdefe7ULL) & 1) != 0
                                   : options_.defer_commit == 1;
    c.async_acks_before_sync = options_.async_acks_before_sync;
    c.async_hold_only_writing_readies = options_.async_hold_only_writing_readies;
    r.unsafe = options_.unsafe;
    if (r.unsafe.commit_on_minority || r.unsafe.vote_ignores_log || r.unsafe.vote_ignores_term) {
      r.unsafe.allow_unsafe_testing = true;
    }
    return c;
  }

  void TraceLine(const std::string& line) {
    std::fprintf(stderr, "[step %llu t=%llu] %s\n", static_cast<unsigned long long>(step_),
                 static_cast<unsigned long long>(cluster_.now_ticks()), line.c_str());
  }
  void Trace(const std::string& line) {
    if (options_.trace) TraceLine(line);
  }

  void RandomNetworkProfile() {
    NetworkFaults f;
    static constexpr uint64_t kDrops[] = {0, 0, 1, 5, 10, 20};
    static constexpr uint64_t kDups[] = {0, 1, 5};
    static constexpr uint64_t kLong[] = {0, 0, 1, 5};
    f.drop_percent = kDrops[random_.Below(std::size(kDrops))];
    f.duplicate_percent = kDups[random_.Below(std::size(kDups))];
    f.delay_ticks_min = 1;
    f.delay_ticks_max = random_.Between(1, 5);
    f.long_delay_percent = kLong[random_.Below(std::size(kLong))];
    f.long_delay_ticks_max = election_ticks_ * 3;
    cluster_.network().set_faults(f);
  }

  raft::NodeId RandomUpNode() {
    std::vector<raft::NodeId> up;
    for (raft::NodeId id = 1; id <= cluster_.max_node_id(); id++) {
      if (cluster_.IsUp(id)) up.push_back(id);
    }
    return up.empty() ? raft::kNoNode : up[random_.Below(up.size())];
  }

  raft::NodeId RandomNode() { return random_.Between(1, cluster_.max_node_id()); }

  uint64_t CountCrashed() const {
    uint64_t n = 0;
    for (raft::NodeId id = 1; id <= cluster_.max_node_id(); id++) {
      if (cluster_.node(id).state == NodeState::kCrashed) n++;
    }
    return n;
  }

  Bytes NewPayload() {
    std::string s = "s" + std::to_string(options_.seed) + "p" + std::to_string(next_payload_++);
    s.append(random_.Below(48), static_cast<char>('a' + random_.Below(26)));
    return Bytes(std::move(s));
  }

  void Propose(raft::NodeId id, int count);
  void DoAction(Action a);
  void Membership();
  bool Converged(std::string* why);
  void Liveness(SimResult* result);
  void Fill(SimResult* result);

  SimOptions options_;
  int nodes_;
  SimRandom random_;
  Checker checker_;
  Cluster cluster_;
  std::array<uint64_t, kActionCount> weights_{};
  uint64_t total_weight_ = 0;
  uint64_t election_ticks_ = 10;
  uint64_t step_ = 0;
  uint64_t next_payload_ = 0;
  uint64_t next_read_context_ = 1;
  raft::Index commit_high_water_ = 0;
};

void Simulation::Propose(raft::NodeId id, int count) {
  if (id == raft::kNoNode || !cluster_.IsUp(id)) return;
  raft::Node* node = cluster_.node(id).node.get();
  for (int i = 0; i < count; i++) {
    raft::Entry e;
    e.data = NewPayload();
    Result<raft::Index> r = node->Propose(e.data);
    if (!r.ok()) {
      if (r.status().code() == StatusCode::kInternal) {
        checker_.Fail("Propose on node " + std::to_string(id) + ": " + r.status().ToString());
      }
      break;
    }
    e.term = node->GetStatus().hard_state.term;
    e.index = *r;
    checker_.OnProposalAccepted(e.index, e.term, e);
  }
  cluster_.Drain(id);
}

void Simulation::Membership() {
  const raft::NodeId leader = cluster_.Leader();
  if (leader == raft::kNoNode) return;
  raft::Node* node = cluster_.node(leader).node.get();
  const raft::NodeStatus st = node->GetStatus();
  const raft::ConfState& conf = st.conf;
  std::vector<raft::NodeId> non_members;
  for (raft::NodeId id = 1; id <= cluster_.max_node_id(); id++) {
    if (!Contains(conf.voters, id) && !Contains(conf.learners, id)) non_members.push_back(id);
  }
  // Never remove a voter below three: a two-voter group stalls on any single fault.
  const size_t min_voters = 3;
  raft::ConfChange cc;
  const uint64_t choice = random_.Below(3);
  if (choice == 0 && !conf.learners.empty()) {
    cc = {raft::ConfChangeType::kAddVoter, conf.learners[random_.Below(conf.learners.size())]};
  } else if (choice == 1 && !non_members.empty()) {
    cc = {raft::ConfChangeType::kAddLearner, non_members[random_.Below(non_members.size())]};
  } else {
    std::vector<raft::NodeId> removable = conf.learners;
    if (conf.voters.size() > min_voters) {
      removable.insert(removable.end(), conf.voters.begin(), conf.voters.end());
    }
    if (removable.empty()) return;
    cc = {raft::ConfChangeType::kRemoveNode, removable[random_.Below(removable.size())]};
  }
  Result<raft::Index> r = node->ProposeConfChange(cc);
  static constexpr const char* kNames[] = {"add voter", "add learner", "remove"};
  Trace("propose conf change: " + std::string(kNames[static_cast<int>(cc.type)]) + " " +
        std::to_string(cc.node) + " at leader " + std::to_string(leader) + " -> " +
        (r.ok() ? "index " + std::to_string(*r) : r.status().ToString()));
  if (r.ok()) {
    raft::Entry e;
    e.index = *r;
    e.term = st.hard_state.term;
    e.type = raft::EntryType::kConfChange;
    e.data = Bytes(raft::EncodeConfChange(cc));
    checker_.OnProposalAccepted(e.index, e.term, e);
  } else if (r.status().code() == StatusCode::kInternal) {
    checker_.Fail("ProposeConfChange: " + r.status().ToString());
  }
  cluster_.Drain(leader);
}

void Simulation::DoAction(Action a) {
  switch (a) {
    case kTick:
      cluster_.Tick();
      break;
    case kDeliverEarly:
      cluster_.DeliverAnyOne();
      break;
    case kDropMessage:
      cluster_.network().DropAnyOne();
      break;
    case kDuplicateMessage:
      cluster_.network().DuplicateAnyOne(cluster_.now_ticks());
      break;
    case kPropose: {
      const raft::NodeId target = random_.OneIn(10) ? RandomUpNode() : cluster_.Leader();
      Propose(target, random_.OneIn(5) ? static_cast<int>(random_.Between(2, 16)) : 1);
      if (weights_[kCrash] > 0 && target != raft::kNoNode && cluster_.IsUp(target) &&
          random_.OneIn(40)) {
        // The leader dies with its new tail on at most one follower: the Figure 8 setup.
        cluster_.DeliverAnyOne();
        cluster_.Crash(target);
      }
      break;
    }
    case kReadIndex: {
      const raft::NodeId id = RandomUpNode();
      if (id == raft::kNoNode) break;
      const uint64_t context = next_read_context_++;
      checker_.OnReadRequested(context, commit_high_water_);
      Status s = cluster_.node(id).node->ReadIndex(context);
      if (s.code() == StatusCode::kInternal) checker_.Fail("ReadIndex: " + s.ToString());
      cluster_.Drain(id);
      break;
    }
    case kPartitionSymmetric: {
      // Random two-way split; every id lands on one side.
      std::vector<raft::NodeId> side_a;
      std::vector<raft::NodeId> side_b;
      for (raft::NodeId id = 1; id <= cluster_.max_node_id(); id++) {
        (random_.OneIn(2) ? side_a : side_b).push_back(id);
      }
      for (raft::NodeId a_id : side_a) {
        for (raft::NodeId b_id : side_b) cluster_.network().BlockBoth(a_id, b_id);
      }
      Trace("partition: " + std::to_string(side_a.size()) + " | " + std::to_string(side_b.size()));
      break;
    }
    case kPartitionOneWay: {
      const raft::NodeId from = RandomNode();
      if (random_.OneIn(2)) {
        for (raft::NodeId to = 1; to <= cluster_.max_node_id(); to++) {
          if (to != from) cluster_.network().Block(from, to);
        }
        Trace("one-way: node " + std::to_string(from) + " cannot send");
      } else {
        const raft::NodeId to = RandomNode();
        if (to != from) cluster_.network().Block(from, to);
        Trace("one-way: " + std::to_string(from) + " -/-> " + std::to_string(to));
      }
      break;
    }
    case kIsolateLeader: {
      const raft::NodeId leader = cluster_.Leader();
      if (leader != raft::kNoNode) {
        cluster_.network().Isolate(leader);
        Trace("isolate leader " + std::to_string(leader));
      }
      break;
    }
    case kHeal:
      cluster_.network().HealAll();
      Trace("heal");
      break;
    case kCrash: {
      // Leaders are the interesting victims (uncommitted tails, Figure 8 of the Raft paper), so
      // half of the crashes aim at the current leader.
      const raft::NodeId leader = cluster_.Leader();
      const raft::NodeId id = leader != raft::kNoNode && random_.OneIn(2) ? leader : RandomUpNode();
      const uint64_t limit = static_cast<uint64_t>(nodes_) / 2;
      if (id != raft::kNoNode && (CountCrashed() < limit || random_.OneIn(10))) {
        cluster_.Crash(id);
        // The other hosts' failure detectors notice; quiesced peers resume their timers.
        for (raft::NodeId other = 1; other <= cluster_.max_node_id(); other++) {
          if (cluster_.IsUp(other) && cluster_.node(other).node->Quiesced()) {
            cluster_.node(other).node->Wake();
            cluster_.Drain(other);
          }
        }
      }
      break;
    }
    case kRestart: {
      // Crashed nodes, and shut-down nodes the leader counts as members again (re-added
      // before they applied their own removal).
      std::vector<raft::NodeId> crashed;
      const raft::NodeId leader = cluster_.Leader();
      raft::ConfState conf;
      if (leader != raft::kNoNode) conf = cluster_.node(leader).node->GetStatus().conf;
      for (raft::NodeId id = 1; id <= cluster_.max_node_id(); id++) {
        const NodeState state = cluster_.node(id).state;
        const bool member = Contains(conf.voters, id) || Contains(conf.learners, id);
        if (state == NodeState::kCrashed || (state == NodeState::kShutDown && member)) {
          crashed.push_back(id);
        }
      }
      if (!crashed.empty()) {
        const raft::NodeId id = crashed[random_.Below(crashed.size())];
        cluster_.Restart(id);
        for (raft::NodeId other = 1; other <= cluster_.max_node_id(); other++) {
          if (other != id && cluster_.IsUp(other) && cluster_.node(other).node->Quiesced()) {
            cluster_.node(other).node->Wake();  // the host saw a peer restart
            cluster_.Drain(other);
          }
        }
      }
      break;
    }
    case kMembership:
      Membership();
      break;
    case kTransferLeader: {
      const raft::NodeId leader = cluster_.Leader();
      if (leader == raft::kNoNode) break;
      const raft::NodeStatus st = cluster_.node(leader).node->GetStatus();
      if (st.conf.voters.size() < 2) break;
      raft::NodeId target = st.conf.voters[random_.Below(st.conf.voters.size())];
      if (target == leader) break;
      Status s = cluster_.node(leader).node->TransferLeadership(target);
      Trace("transfer leadership " + std::to_string(leader) + " -> " + std::to_string(target) +
            ": " + s.ToString());
      if (s.code() == StatusCode::kInternal) checker_.Fail("TransferLeadership: " + s.ToString());
      cluster_.Drain(leader);
      break;
    }
    case kSnapshot: {
      const raft::NodeId id = RandomUpNode();
      if (id != raft::kNoNode) {
        cluster_.SnapshotAndCompact(id, random_.OneIn(3) ? 0 : random_.Between(0, 50));
      }
      break;
    }
    case kCampaign: {
      const raft::NodeId id = RandomUpNode();
      if (id != raft::kNoNode) {
        Trace("campaign " + std::to_string(id));
        cluster_.node(id).node->Campaign();
        cluster_.Drain(id);
      }
      break;
    }
    case kSkewClock: {
      const raft::NodeId id = RandomNode();
      cluster_.node(id).rate_eighths = random_.Between(4, 12);
      break;
    }
    case kNetworkProfile:
      RandomNetworkProfile();
      break;
    case kWake: {
      const raft::NodeId id = RandomUpNode();
      if (id != raft::kNoNode) {
        cluster_.node(id).node->Wake();
        cluster_.Drain(id);
      }
      break;
    }
    case kActionCount:
      SKIFF_ASSERT(false);
  }
  cluster_.StartAddedMembers();
}

bool Simulation::Converged(std::string* why) {
  const raft::NodeId leader = cluster_.Leader();
  if (leader == raft::kNoNode) {
    *why = "no leader";
    return false;
  }
  const SimNode& l = cluster_.node(leader);
  const raft::NodeStatus st = l.node->GetStatus();
  std::ostringstream os;
  os << "leader " << leader << " term " << st.hard_state.term << " commit " << st.hard_state.commit
     << " last " << st.last_index << " applied " << l.sm.applied << "; max proposal index "
     << checker_.max_proposal_index();
  if (st.hard_state.commit != st.last_index || st.last_index < checker_.max_proposal_index() ||
      l.sm.applied != st.hard_state.commit) {
    *why = os.str();
    return false;
  }
  std::vector<raft::NodeId> members = st.conf.voters;
  members.insert(members.end(), st.conf.learners.begin(), st.conf.learners.end());
  uint64_t chain = 0;
  if (!checker_.AppliedChainAt(l.sm.applied, &chain)) {
    *why = os.str() + "; leader's applied index was never recorded";
    return false;
  }
  for (raft::NodeId m : members) {
    const SimNode& n = cluster_.node(m);
    if (n.state != NodeState::kUp || n.sm.applied != l.sm.applied || n.sm.chain_hash != chain) {
      os << "; member " << m << " state " << static_cast<int>(n.state) << " applied "
         << n.sm.applied;
      *why = os.str();
      return false;
    }
  }
  return true;
}

void Simulation::Liveness(SimResult* result) {
  Trace("=== liveness phase: faults off ===");
  cluster_.network().HealAll();
  NetworkFaults reliable;
  reliable.delay_ticks_min = 1;
  reliable.delay_ticks_max = 2;
  cluster_.network().set_faults(reliable);
  for (raft::NodeId id = 1; id <= cluster_.max_node_id(); id++) {
    SimNode& n = cluster_.node(id);
    n.rate_eighths = 8;
    if (n.state == NodeState::kCrashed) cluster_.Restart(id);
  }
  for (raft::NodeId id = 1; id <= cluster_.max_node_id(); id++) {
    if (cluster_.IsUp(id)) {
      cluster_.node(id).node->Wake();  // the hosts' failure detectors see everyone back
      cluster_.Drain(id);
    }
  }
  // 50 election timeouts, plus time to ship the backlog: with the smallest flow-control
  // settings (one small append in flight) a lagging member gains about one entry per round trip.
  const uint64_t limit_ticks =
      50 * election_ticks_ + 8 * checker_.max_applied_index() + 8 * checker_.max_proposal_index();
  std::string why;
  for (uint64_t t = 0; t < limit_ticks; t++) {
    if (checker_.failed()) return;
    if (Converged(&why)) {
      result->liveness_ticks = t;
      checker_.CheckProposalsResolved();
      return;
    }
    cluster_.Tick();
    cluster_.CheckAll();
    if (checker_.failed()) return;
    // A member some running node still counts on, but which is not running (e.g. it shut down
    // on applying its removal after it had already been re-added) is started, as a host would.
    for (raft::NodeId id = 1; id <= cluster_.max_node_id(); id++) {
      if (!cluster_.IsUp(id)) continue;
      const raft::NodeStatus st = cluster_.node(id).node->GetStatus();
      for (const auto* ids : {&st.conf.voters, &st.conf.learners}) {
        for (raft::NodeId m : *ids) {
          if (m >= 1 && m <= cluster_.max_node_id() && !cluster_.IsUp(m)) cluster_.Restart(m);
        }
      }
    }
    const raft::NodeId leader = cluster_.Leader();
    if (leader == raft::kNoNode) continue;
    const raft::NodeStatus st = cluster_.node(leader).node->GetStatus();
    // Fill the log up to the highest index a leader ever accepted, so every proposal is
    // either committed or visibly superseded.
    if (st.last_index < checker_.max_proposal_index()) {
      const raft::Index missing = checker_.max_proposal_index() - st.last_index;
      Propose(leader, static_cast<int>(std::min<raft::Index>(missing, 64)));
    }
  }
  if (!checker_.failed()) {
    checker_.Fail("liveness: no convergence within " + std::to_string(limit_ticks) +
                  " ticks of fault-free operation: " + why + cluster_.Describe());
  }
}

SimResult Simulation::Run() {
  SimResult result;
  cluster_.Start();
  for (step_ = 0; step_ < options_.steps && !checker_.failed(); step_++) {
    uint64_t pick = random_.Below(total_weight_);
    int action = 0;
    while (pick >= weights_[action]) {
      pick -= weights_[action];
      action++;
    }
    DoAction(static_cast<Action>(action));
    if (checker_.failed()) break;
    cluster_.CheckAll();
    commit_high_water_ = std::max(commit_high_water_, cluster_.MaxKnownCommit());
  }
  result.steps_run = step_;
  if (!checker_.failed() && options_.liveness) Liveness(&result);
  Fill(&result);
  return result;
}

void Simulation::Fill(SimResult* r) {
  r->ok = !checker_.failed();
  r->failure = checker_.failure();
  r->failed_at_step = r->ok ? 0 : step_;
  r->ticks = cluster_.now_ticks();
  r->leaders_elected = checker_.leaders_elected();
  r->max_term = checker_.max_term();
  r->committed_index = checker_.max_applied_index();
  r->proposals_accepted = checker_.proposals_accepted();
  r->proposals_committed = checker_.proposals_committed();
  r->reads_checked = checker_.reads_checked();
  r->crashes = cluster_.stats().crashes;
  r->crashes_before_leader_write = cluster_.stats().crashes_before_leader_write;
  r->async_syncs = cluster_.stats().async_syncs;
  r->snapshots_installed = cluster_.stats().snapshots_installed;
  r->conf_changes_applied = cluster_.stats().conf_changes_applied;
  r->messages_sent = cluster_.network().sent_total();
  r->unsynced_persists = cluster_.stats().unsynced_persists;
  uint64_t chain = 0;
  if (!checker_.AppliedChainAt(r->committed_index, &chain)) chain = 0;
  uint64_t fp = Mix64(chain);
  for (uint64_t v :
       {r->ticks, r->leaders_elected, r->max_term, r->committed_index, r->proposals_accepted,
        r->reads_checked, r->messages_sent, cluster_.stats().readies, r->steps_run}) {
    fp = Mix64(fp ^ v);
  }
  r->fingerprint = fp;
}

}  // namespace

int ResolveNodes(const SimOptions& options) {
  if (options.nodes > 0) return options.nodes;
  return (Mix64(options.seed ^ 0xa5a5a5a5ULL) & 1) ? 5 : 3;
}

SimResult RunSimulation(const SimOptions& options) {
  InstallCrashReporterOnce();
  const std::string replay = ReplayCommand(options);
  std::snprintf(g_current_replay, sizeof(g_current_replay), "%s", replay.c_str());
  Simulation sim(options, ResolveNodes(options));
  return sim.Run();
}

std::string ReplayCommand(const SimOptions& options) {
  std::ostringstream os;
  os << "build/tests/sim/raft_sim --seed=" << options.seed << " --steps=" << options.steps
     << " --nodes=" << ResolveNodes(options);
  const std::string knob = UnsafeKnobName(options);
  if (knob != "none") os << " --unsafe=" << knob;
  if (options.async_writes >= 0 && !options.async_acks_before_sync &&
      !options.async_hold_only_writing_readies) {
    os << " --async_writes=" << options.async_writes;
  }
  if (options.defer_commit >= 0) os << " --defer_commit=" << options.defer_commit;
  if (!options.liveness) os << " --liveness=false";
  return os.str();
}

bool ParseUnsafeKnob(const std::string& name, SimOptions* options) {
  raft::UnsafeTestingKnobs* knobs = &options->unsafe;
  *knobs = raft::UnsafeTestingKnobs{};
  options->lying_disk = false;
  options->async_acks_before_sync = false;
  options->async_hold_only_writing_readies = false;
  if (name == "none" || name.empty()) return true;
  if (name == "lying_disk") {
    options->lying_disk = true;
    return true;
  }
  if (name == "async_acks_before_sync") {
    options->async_acks_before_sync = true;
    options->async_writes = 1;
    return true;
  }
  if (name == "async_hold_only_writing_readies") {
    options->async_hold_only_writing_readies = true;
    options->async_writes = 1;
    return true;
  }
  knobs->allow_unsafe_testing = true;
  if (name == "commit_on_minority") {
    knobs->commit_on_minority = true;
  } else if (name == "vote_ignores_log") {
    knobs->vote_ignores_log = true;
  } else if (name == "vote_ignores_term") {
    knobs->vote_ignores_term = true;
  } else {
    *knobs = raft::UnsafeTestingKnobs{};
    return false;
  }
  return true;
}

std::string UnsafeKnobName(const SimOptions& options) {
  if (options.lying_disk) return "lying_disk";
  if (options.async_acks_before_sync) return "async_acks_before_sync";
  if (options.async_hold_only_writing_readies) return "async_hold_only_writing_readies";
  if (options.unsafe.commit_on_minority) return "commit_on_minority";
  if (options.unsafe.vote_ignores_log) return "vote_ignores_log";
  if (options.unsafe.vote_ignores_term) return "vote_ignores_term";
  return "none";
}

}  // namespace skiff::sim
