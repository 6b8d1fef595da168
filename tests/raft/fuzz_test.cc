// A small randomized fault test over the in-test cluster: random delivery order, drops,
// duplicates, partitions, restarts, log compaction and proposals; checks the safety properties
// after every step and liveness at the end. Deterministic per seed. (The full simulator lives
// in tests/sim; this one exists to catch core bugs close to the code.)
#include <gtest/gtest.h>

#include <map>

#include "raft_test_util.h"

namespace skiff::raft {
namespace {

using testing::Cluster;

class Rng {
 public:
  explicit Rng(uint64_t seed) : x_(seed * 0x9e3779b97f4a7c15ULL + 1) {}
  uint64_t Next() {
    x_ ^= x_ << 13;
    x_ ^= x_ >> 7;
    x_ ^= x_ << 17;
    return x_;
  }
  bool OneIn(uint64_t n) { return Next() % n == 0; }

 private:
  uint64_t x_;
};

// Records the first safety violation instead of failing, so that the same checker can also be
// shown to catch a deliberately broken Raft (UnsafeTestingKnobs).
struct Checker {
  std::map<Index, std::pair<Term, std::string>> committed;  // index -> what was applied there
  std::map<Term, NodeId> leaders;                           // term -> the leader of that term
  std::map<NodeId, Term> last_term;
  std::string violation;

  void Fail(const std::string& what) {
    if (violation.empty()) violation = what;
  }

  void Check(Cluster& c) {
    for (NodeId id : c.ids()) {
      const NodeStatus s = c.node(id)->GetStatus();
      // What was persisted never goes back (in-memory state may be lost by a crash).
      const Term durable = c.peer(id).storage.hard_state().term;
      if (durable < last_term[id]) Fail("durable term went back on " + std::to_string(id));
      if (s.hard_state.term < durable) Fail("term below durable term");
      last_term[id] = durable;
      if (s.hard_state.commit > s.last_index) Fail("commit beyond last index");
      if (s.soft_state.role == Role::kLeader) {
        auto [it, inserted] = leaders.emplace(s.hard_state.term, id);
        if (it->second != id) Fail("two leaders in term " + std::to_string(s.hard_state.term));
      }
      for (const Entry& e : c.peer(id).applied) {
        auto [it, inserted] = committed.emplace(e.index, std::make_pair(e.term, e.data.ToString()));
        if (it->second.first != e.term || it->second.second != e.data.ToString()) {
          Fail("divergent apply at index " + std::to_string(e.index));
        }
      }
    }
  }
};

struct FuzzOptions {
  bool pre_vote = true;
  bool check_quorum = true;
  UnsafeTestingKnobs unsafe;
  bool check_liveness = true;
  bool chaos = false;  // frequent partitions of up to 3 nodes and forced campaigns
};

// Returns the first safety violation seen ("" if none).
std::string RunFuzz(uint64_t seed, const FuzzOptions& opt) {
  Rng rng(seed);
  const bool quiesce = seed % 4 == 1;
  auto tweak = [&](Config& cfg) {
    cfg.seed = seed * 31 + cfg.id;
    cfg.pre_vote = opt.pre_vote;
    cfg.check_quorum = opt.check_quorum;
    cfg.unsafe = opt.unsafe;
    cfg.max_append_bytes = 64;
    cfg.max_inflight_appends = 4;
    cfg.quiesce_after_ticks = quiesce ? 3 : 0;
  };
  Cluster c({1, 2, 3, 4, 5}, tweak);
  c.AddNode(6, tweak);
  // Membership script, attempted by whoever leads at random moments.
  const std::vector<ConfChange> script = {{ConfChangeType::kAddLearner, 6},
                                          {ConfChangeType::kAddVoter, 6},
                                          {ConfChangeType::kRemoveNode, 1 + seed % 5},
                                          {ConfChangeType::kAddLearner, 1 + seed % 5}};
  size_t next_change = 0;
  Checker checker;
  std::vector<Message> pool;
  int proposed = 0;
  for (int step = 0; step < 1500; ++step) {
    const NodeId n = 1 + rng.Next() % 6;
    switch (rng.Next() % 12) {
      case 0:
      case 1:
      case 2:
        c.Tick(n);
        break;
      case 3:
        if (c.node(n)->IsLeader()) {
          auto r = c.node(n)->Propose(Bytes("v" + std::to_string(proposed)));
          if (r.ok()) ++proposed;
        }
        break;
      case 4:
        if (rng.OneIn(20)) c.Restart(n);
        break;
      case 5:
        if (rng.OneIn(opt.chaos ? 4 : 30)) {
          c.Heal();
          const int isolate = opt.chaos ? static_cast<int>(rng.Next() % 4) : rng.OneIn(2);
          for (int k = 0; k < isolate; ++k) c.Isolate(1 + rng.Next() % 6);
        }
        break;
      case 6:
        if (rng.OneIn(15)) {
          // Compact what this node has applied.
          auto& p = c.peer(n);
          const Index at = p.applied_index;
          if (at > p.storage.FirstIndex()) {
            Status s = p.storage.CreateSnapshot(at, c.node(n)->GetStatus().conf, Bytes());
            if (s.ok()) s = p.storage.Compact(at);
            EXPECT_TRUE(s.ok()) << s.ToString();
          }
        }
        break;
      case 7:
        if (c.node(n)->IsLeader() && next_change < script.size() && rng.OneIn(10)) {
          if (c.node(n)->ProposeConfChange(script[next_change]).ok()) ++next_change;
        }
        break;
      case 8:
        if (c.node(n)->IsLeader() && rng.OneIn(20)) {
          c.node(n)->TransferLeadership(1 + rng.Next() % 6).IgnoreError();  // may be refused
        }
        break;
      case 9:
        if (rng.OneIn(5)) c.node(n)->ReadIndex(step + 1).IgnoreError();  // may be kUnavailable
        break;
      case 10:
        if (rng.OneIn(10)) c.node(n)->Wake();
        break;
      case 11:
        if (opt.chaos && rng.OneIn(3)) c.node(n)->Campaign();
        break;
      default:
        break;
    }
    for (NodeId id : c.ids()) {
      auto msgs = c.Drain(id);
      pool.insert(pool.end(), msgs.begin(), msgs.end());
    }
    // Deliver a random subset in random order; drop some, duplicate some.
    const size_t deliver = pool.empty() ? 0 : 1 + rng.Next() % pool.size();
    for (size_t i = 0; i < deliver && !pool.empty(); ++i) {
      const size_t k = rng.Next() % pool.size();
      Message m = pool[k];
      if (!rng.OneIn(4)) pool.erase(pool.begin() + static_cast<std::ptrdiff_t>(k));
      if (rng.OneIn(8)) continue;  // dropped
      c.Deliver(m);
    }
    if (pool.size() > 500) pool.erase(pool.begin(), pool.begin() + 250);
    checker.Check(c);
    if (!checker.violation.empty()) return checker.violation;
  }
  if (!opt.check_liveness) return "";
  // Liveness: heal everything and require convergence.
  c.Heal();
  pool.clear();
  c.TickAll(200);
  NodeId lead = kNoNode;
  for (NodeId id : c.ids()) {
    if (c.node(id)->IsLeader()) lead = id;
  }
  EXPECT_NE(lead, kNoNode) << "no leader after healing, seed " << seed;
  if (lead == kNoNode) return "";
  const Index idx = c.Propose(lead, "final");
  c.Stabilize();
  c.TickAll(5);
  if (getenv("FUZZ_DEBUG")) {
    for (NodeId id : c.ids()) {
      auto s = c.node(id)->GetStatus();
      fprintf(stderr,
              "node %lu role=%s term=%lu commit=%lu last=%lu applied=%lu first=%lu lead=%lu q=%d\n",
              id, RoleName(s.soft_state.role), s.hard_state.term, s.hard_state.commit, s.last_index,
              s.applied, c.peer(id).storage.FirstIndex(), s.soft_state.leader, s.quiesced);
      for (auto [p, m] : s.match) fprintf(stderr, "   match %lu=%lu\n", p, m);
    }
    c.Record(true);
    c.TickAll(1);
    for (auto& m : c.recorded())
      fprintf(stderr, "%s %lu->%lu t=%lu i=%lu lt=%lu n=%zu c=%lu rej=%d hint=%lu/%lu\n",
              MessageTypeName(m.type), m.from, m.to, m.term, m.index, m.log_term, m.entries.size(),
              m.commit, m.reject, m.reject_hint, m.reject_hint_term);
  }
  const ConfState conf = c.node(lead)->GetStatus().conf;
  for (NodeId id : c.ids()) {
    const bool member = std::count(conf.voters.begin(), conf.voters.end(), id) ||
                        std::count(conf.learners.begin(), conf.learners.end(), id);
    if (!member) continue;
    EXPECT_GE(c.CommitOf(id), idx) << "node " << id << " seed " << seed;
    EXPECT_EQ(c.peer(id).applied_index, c.CommitOf(id)) << "node " << id << " seed " << seed;
  }
  checker.Check(c);
  return checker.violation;
}

TEST(FuzzTest, SafetyAndLivenessUnderFaults) {
  const uint64_t only = getenv("FUZZ_SEED") ? strtoull(getenv("FUZZ_SEED"), nullptr, 10) : 0;
  const uint64_t seeds = getenv("FUZZ_SEEDS") ? strtoull(getenv("FUZZ_SEEDS"), nullptr, 10) : 30;
  for (uint64_t seed = 1; seed <= seeds; ++seed) {
    if (only && seed != only) continue;
    FuzzOptions opt;
    opt.pre_vote = seed % 2 == 0;
    opt.check_quorum = seed % 3 != 0;
    opt.chaos = seed % 5 < 2;
    const std::string violation = RunFuzz(seed, opt);
    ASSERT_EQ(violation, "") << "reproduce with FUZZ_SEED=" << seed;
    if (HasFailure()) return;
  }
}

// The same checker must catch each deliberately broken behaviour within a few seeds; otherwise
// passing the test above would prove little.
TEST(FuzzTest, CheckerCatchesUnsafeKnobs) {
  auto caught = [](auto set_knob) {
    for (uint64_t seed = 1; seed <= 40; ++seed) {
      FuzzOptions opt;
      opt.pre_vote = false;
      opt.check_quorum = false;
      opt.check_liveness = false;
      opt.chaos = true;
      opt.unsafe.allow_unsafe_testing = true;
      set_knob(opt.unsafe);
      if (!RunFuzz(seed, opt).empty()) return true;
    }
    return false;
  };
  EXPECT_TRUE(caught([](UnsafeTestingKnobs& u) { u.commit_on_minority = true; }));
  EXPECT_TRUE(caught([](UnsafeTestingKnobs& u) { u.vote_ignores_log = true; }));
  EXPECT_TRUE(caught([](UnsafeTestingKnobs& u) { u.vote_ignores_term = true; }));
}

}  // namespace
}  // namespace skiff::raft
