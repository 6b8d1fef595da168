#include "checker.h"

#include <sstream>

namespace skiff::sim {

namespace {

std::string Describe(const raft::Entry& e) {
  std::ostringstream os;
  os << "(index " << e.index << ", term " << e.term << ", "
     << (e.type == raft::EntryType::kConfChange ? "confchange" : "normal") << ", " << e.data.size()
     << " bytes)";
  return os.str();
}

}  // namespace

void Checker::Fail(const std::string& what) {
  if (failure_.empty()) failure_ = what;
}

void Checker::RecordLogEntry(raft::NodeId node, raft::Index index, raft::Term term, uint64_t digest,
                             raft::Term prev_term) {
  auto [it, inserted] = log_records_.try_emplace({index, term}, LogRecord{digest, prev_term, node});
  if (inserted) return;
  LogRecord& rec = it->second;
  if (rec.digest != digest) {
    std::ostringstream os;
    os << "log matching: node " << node << " holds a different entry at (index " << index
       << ", term " << term << ") than node " << rec.first_node << " did";
    Fail(os.str());
    return;
  }
  if (prev_term == kUnknownTerm) return;
  if (rec.prev_term == kUnknownTerm) {
    rec.prev_term = prev_term;
  } else if (rec.prev_term != prev_term) {
    std::ostringstream os;
    os << "log matching: entry (index " << index << ", term " << term << ") follows term "
       << prev_term << " on node " << node << " but term " << rec.prev_term << " on node "
       << rec.first_node;
    Fail(os.str());
  }
}

void Checker::OnPersistEntries(raft::NodeId node, const raft::LogStorage& log,
                               const std::vector<raft::Entry>& entries) {
  if (entries.empty()) return;
  raft::Term prev_term = kUnknownTerm;
  const raft::Index first = entries.front().index;
  if (first == 0) {
    Fail("node " + std::to_string(node) + " persisted an entry with index 0");
    return;
  }
  if (first - 1 >= log.FirstIndex() - 1 && first - 1 <= log.LastIndex()) {
    Result<raft::Term> t = log.TermAt(first - 1);
    if (t.ok()) prev_term = *t;
  }
  raft::Index expect = first;
  for (const raft::Entry& e : entries) {
    if (e.index != expect) {
      std::ostringstream os;
      os << "node " << node << " was asked to persist non-contiguous entries: " << Describe(e)
         << " where index " << expect << " was expected";
      Fail(os.str());
      return;
    }
    if (prev_term != kUnknownTerm && e.term < prev_term) {
      std::ostringstream os;
      os << "log matching: node " << node << " log has term decreasing at " << Describe(e)
         << " after term " << prev_term;
      Fail(os.str());
      return;
    }
    RecordLogEntry(node, e.index, e.term, SimStateMachine::EntryDigest(e), prev_term);
    prev_term = e.term;
    expect++;
  }
}

void Checker::OnSnapshotInstalled(raft::NodeId node, const raft::SnapshotMeta& meta,
                                  const SimStateMachine& sm, bool empty_image) {
  std::ostringstream os;
  if (sm.applied != meta.index) {
    os << "node " << node << " received a snapshot whose meta index " << meta.index
       << " differs from its image's applied index " << sm.applied;
    Fail(os.str());
    return;
  }
  if (sm.applied_term != 0 && sm.applied_term != meta.term) {
    os << "node " << node << " received a snapshot at index " << meta.index << " with meta term "
       << meta.term << " but the image was taken at term " << sm.applied_term;
    Fail(os.str());
    return;
  }
  if (sm.conf != meta.conf) {
    os << "node " << node << " received a snapshot at index " << meta.index
       << " whose meta membership differs from the membership applied at that index";
    Fail(os.str());
    return;
  }
  if (empty_image && meta.index > 0 &&
      (meta.index >= applied_.size() || !applied_[meta.index].present)) {
    if (applied_.size() <= meta.index) applied_.resize(meta.index + 1);
    applied_[meta.index] = AppliedRecord{true, meta.term, 0, sm.chain_hash, node, meta.term};
    return;
  }
  if (meta.index < applied_.size() && applied_[meta.index].present) {
    const AppliedRecord& rec = applied_[meta.index];
    if (rec.chain != sm.chain_hash || rec.term != meta.term) {
      os << "state machine safety: node " << node << " installed a snapshot at index " << meta.index
         << " (term " << meta.term << ") that differs from what node " << rec.first_node
         << " applied through that index (term " << rec.term << ")";
      Fail(os.str());
    }
  } else if (meta.index > 0) {
    os << "node " << node << " installed a snapshot at index " << meta.index
       << " that no replica ever applied";
    Fail(os.str());
  }
}

void Checker::OnApply(raft::NodeId node, const raft::Entry& e, const SimStateMachine& sm,
                      raft::Term node_term) {
  SKIFF_ASSERT(sm.applied == e.index);
  if (applied_.size() <= e.index) applied_.resize(e.index + 1);
  AppliedRecord& rec = applied_[e.index];
  const uint64_t digest = SimStateMachine::EntryDigest(e);
  if (!rec.present) {
    rec = AppliedRecord{true, e.term, digest, sm.chain_hash, node, node_term};
  } else if (rec.term != e.term || rec.digest != digest) {
    std::ostringstream os;
    os << "state machine safety: node " << node << " applied " << Describe(e) << " but node "
       << rec.first_node << " applied a different entry (term " << rec.term << ") at that index";
    Fail(os.str());
    return;
  } else if (rec.chain != sm.chain_hash) {
    std::ostringstream os;
    os << "state machine safety: node " << node << " applied " << Describe(e)
       << " on top of a history that differs from node " << rec.first_node << "'s";
    Fail(os.str());
    return;
  }
  if (node_term < rec.commit_term_bound) rec.commit_term_bound = node_term;
  if (e.type == raft::EntryType::kNormal && !e.data.empty()) {
    auto [it, inserted] = applied_payload_index_.try_emplace(e.data.ToString(), e.index);
    if (!inserted && it->second != e.index) {
      std::ostringstream os;
      os << "duplicate apply: node " << node << " applied the same proposal at index " << e.index
         << " and at index " << it->second;
      Fail(os.str());
    }
  }
}

void Checker::OnBecameLeader(raft::NodeId node, raft::Term term, const raft::LogStorage& log) {
  auto [it, inserted] = leader_of_term_.try_emplace(term, node);
  if (!inserted && it->second != node) {
    std::ostringstream os;
    os << "election safety: nodes " << it->second << " and " << node << " both led term " << term;
    Fail(os.str());
    return;
  }
  // Leader completeness: everything applied so far and known to be committed in a term below
  // `term` must be in this leader's log.
  const raft::Index last = log.LastIndex();
  const raft::Index snapshot_index = log.FirstIndex() - 1;
  for (raft::Index i = snapshot_index > 0 ? snapshot_index : 1; i < applied_.size(); i++) {
    const AppliedRecord& rec = applied_[i];
    if (!rec.present || rec.commit_term_bound >= term) continue;
    if (i > last) {
      std::ostringstream os;
      os << "leader completeness: node " << node << " leads term " << term
         << " but its log ends at index " << last << ", missing committed index " << i << " (term "
         << rec.term << ", applied by node " << rec.first_node << ")";
      Fail(os.str());
      return;
    }
    Result<raft::Term> t = log.TermAt(i);
    if (!t.ok() || *t != rec.term) {
      std::ostringstream os;
      os << "leader completeness: node " << node << " leads term " << term << " but has term "
         << (t.ok() ? std::to_string(*t) : t.status().ToString()) << " at committed index " << i
         << " (entry term " << rec.term << ", applied by node " << rec.first_node << ")";
      Fail(os.str());
      return;
    }
  }
}

void Checker::OnStatus(const raft::NodeStatus& s) {
  const raft::NodeId node = s.id;
  const raft::Term term = s.hard_state.term;
  const raft::Index commit = s.hard_state.commit;
  if (term > max_term_) max_term_ = term;
  if (commit > s.last_index) {
    std::ostringstream os;
    os << "node " << node << " has commit " << commit << " beyond its last index " << s.last_index;
    Fail(os.str());
    return;
  }
  if (s.applied > commit) {
    std::ostringstream os;
    os << "node " << node << " reports applied " << s.applied << " beyond commit " << commit;
    Fail(os.str());
    return;
  }
  if (s.soft_state.role == raft::Role::kLeader) {
    auto [it, inserted] = leader_of_term_.try_emplace(term, node);
    if (!inserted && it->second != node) {
      std::ostringstream os;
      os << "election safety: nodes " << it->second << " and " << node << " both led term " << term;
      Fail(os.str());
      return;
    }
  }
  NodeBaseline& b = baselines_[node];
  if (b.valid) {
    if (term < b.term) {
      std::ostringstream os;
      os << "node " << node << " term went back from " << b.term << " to " << term
         << " without a crash";
      Fail(os.str());
      return;
    }
    if (commit < b.commit) {
      std::ostringstream os;
      os << "node " << node << " commit went back from " << b.commit << " to " << commit
         << " without a crash";
      Fail(os.str());
      return;
    }
  }
  b = NodeBaseline{true, term, commit};
}

void Checker::OnNodeStopped(raft::NodeId node) { baselines_[node].valid = false; }

void Checker::OnReadRequested(uint64_t context, raft::Index commit_floor) {
  read_floor_[context] = commit_floor;
}

void Checker::OnReadState(raft::NodeId node, const raft::ReadState& rs) {
  auto it = read_floor_.find(rs.context);
  if (it == read_floor_.end()) {
    Fail("node " + std::to_string(node) + " answered a read with unknown context " +
         std::to_string(rs.context));
    return;
  }
  reads_checked_++;
  if (rs.index < it->second) {
    std::ostringstream os;
    os << "linearizable read: node " << node << " answered read " << rs.context << " with index "
       << rs.index << " but index " << it->second
       << " was already committed when the read was requested";
    Fail(os.str());
  }
}

void Checker::OnProposalAccepted(raft::Index index, raft::Term term, const raft::Entry& entry) {
  proposals_.push_back(Proposal{index, term, SimStateMachine::EntryDigest(entry)});
  if (index > max_proposal_index_) max_proposal_index_ = index;
}

bool Checker::AppliedChainAt(raft::Index index, uint64_t* chain) const {
  if (index == 0) {
    *chain = 0;
    return true;
  }
  if (index >= applied_.size() || !applied_[index].present) return false;
  *chain = applied_[index].chain;
  return true;
}

void Checker::CheckProposalsResolved() {
  proposals_committed_ = 0;
  proposals_superseded_ = 0;
  for (const Proposal& p : proposals_) {
    if (p.index >= applied_.size() || !applied_[p.index].present) {
      std::ostringstream os;
      os << "liveness: proposal accepted at (index " << p.index << ", term " << p.term
         << ") was neither committed nor superseded (applied through "
         << (applied_.empty() ? 0 : applied_.size() - 1) << ")";
      Fail(os.str());
      return;
    }
    const AppliedRecord& rec = applied_[p.index];
    if (rec.term == p.term) {
      if (rec.digest != p.digest) {
        std::ostringstream os;
        os << "durability: a different entry was applied at (index " << p.index << ", term "
           << p.term << ") than the leader accepted there";
        Fail(os.str());
        return;
      }
      proposals_committed_++;
    } else {
      proposals_superseded_++;
    }
  }
}

}  // namespace skiff::sim
