#include <algorithm>
#include <string>

#include "common/assert.h"
#include "raft/raft_node.h"

namespace skiff::raft {

namespace {

// Committed entries handed to the host per Ready, in bytes (at least one entry).
uint64_t MaxCommittedBytes(const Config& c) {
  return std::max<uint64_t>(c.max_append_bytes, 1) * 4;
}

Status ValidateConfig(const Config& c) {
  if (c.id == kNoNode) return InvalidArgumentError("config: id must be nonzero");
  if (c.storage == nullptr) return InvalidArgumentError("config: storage is required");
  if (c.heartbeat_ticks <= 0) return InvalidArgumentError("config: heartbeat_ticks must be > 0");
  if (c.election_ticks <= c.heartbeat_ticks) {
    return InvalidArgumentError("config: election_ticks must be > heartbeat_ticks");
  }
  if (c.max_inflight_appends <= 0) {
    return InvalidArgumentError("config: max_inflight_appends must be > 0");
  }
  if (c.max_append_bytes == 0) return InvalidArgumentError("config: max_append_bytes must be > 0");
  if (c.quiesce_after_ticks < 0) return InvalidArgumentError("config: quiesce_after_ticks < 0");
  const UnsafeTestingKnobs& u = c.unsafe;
  if (!u.allow_unsafe_testing &&
      (u.commit_on_minority || u.vote_ignores_log || u.vote_ignores_term)) {
    return InvalidArgumentError("config: unsafe testing knobs set without allow_unsafe_testing");
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Node>> Node::Create(const Config& config) {
  SKIFF_RETURN_IF_ERROR(ValidateConfig(config));
  auto node = std::make_unique<RaftNode>(config);
  SKIFF_RETURN_IF_ERROR(node->Init());
  return std::unique_ptr<Node>(std::move(node));
}

RaftNode::RaftNode(const Config& config)
    : config_(config), log_(config.storage), rng_(config.seed) {
  if (!config_.unsafe.allow_unsafe_testing) config_.unsafe = UnsafeTestingKnobs{};
  const UnsafeTestingKnobs& u = config_.unsafe;
  log_.set_tolerate_divergence(u.commit_on_minority || u.vote_ignores_log || u.vote_ignores_term);
}

Status RaftNode::Init() {
  auto initial = config_.storage->GetInitialState();
  if (!initial.ok()) return initial.status();
  const HardState& hs = initial->hard_state;
  const Index first = config_.storage->FirstIndex();
  const Index last = config_.storage->LastIndex();
  if (first == 0 || last + 1 < first) return CorruptionError("storage: bad index range");
  // A commit index beyond the stored log can only come from a torn unsynced write; what is
  // stored is what we can vouch for.
  if (config_.applied > last) {
    return InvalidArgumentError("config.applied " + std::to_string(config_.applied) +
                                " is beyond the stored log");
  }
  // Entries the host applied were committed, even if the commit index persisted lags (it is
  // written without sync when nothing else changed).
  const Index commit = std::max(std::min(hs.commit, last), config_.applied);
  log_.Restore(commit, config_.applied);
  term_ = hs.term;
  vote_ = hs.vote;
  ConfState conf = initial->conf_state;
  if (conf.voters.empty() && conf.learners.empty()) {
    auto snap = config_.storage->GetSnapshot();
    if (snap.ok() && !snap->empty()) conf = snap->meta.conf;
  }
  SetConf(conf);
  // Conservative: the unapplied tail may hold conf changes; the first election attempt that
  // needs to know scans it once.
  last_conf_index_ = config_.applied < last ? last : 0;
  BecomeFollower(term_, kNoNode);
  prev_hard_ = CurrentHardState();
  prev_soft_ = CurrentSoftState();
  CheckInvariants();
  return Status::Ok();
}

// --- Role transitions --------------------------------------------------------------------------

void RaftNode::Reset(Term term) {
  SKIFF_ASSERT_MSG(term >= term_, "term never decreases");
  // Before the term changes, so the rejections carry the term the reads were made in.
  RejectPendingReads();
  if (term != term_) {
    term_ = term;
    vote_ = kNoNode;
  }
  lead_ = kNoNode;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  ResetRandomizedElectionTimeout();
  AbortTransfer();
  votes_.clear();
  acked_round_.clear();
  read_round_ = 0;
  uncommitted_.clear();
  uncommitted_bytes_ = 0;
  pending_broadcast_ = false;
  pending_commit_broadcast_ = false;
  quiesced_ = false;
  idle_ticks_ = 0;
  lease_suspended_ = false;
  const Index next = log_.LastIndex() + 1;
  for (auto& [id, pr] : progress_) {
    const bool learner = pr.is_learner;
    pr = Progress(next, static_cast<size_t>(config_.max_inflight_appends));
    pr.is_learner = learner;
    pr.recent_active = (id == config_.id);
  }
}

void RaftNode::BecomeFollower(Term term, NodeId lead) {
  Reset(term);
  role_ = Role::kFollower;
  lead_ = lead;
}

void RaftNode::BecomePreCandidate() {
  SKIFF_ASSERT_MSG(role_ != Role::kLeader, "a leader cannot become pre-candidate");
  // Changes neither term nor vote: a pre-vote round is invisible unless it succeeds.
  votes_.clear();
  lead_ = kNoNode;
  role_ = Role::kPreCandidate;
  quiesced_ = false;
}

void RaftNode::BecomeCandidate() {
  SKIFF_ASSERT_MSG(role_ != Role::kLeader, "a leader cannot become candidate");
  Reset(term_ + 1);
  vote_ = config_.id;
  role_ = Role::kCandidate;
}

void RaftNode::BecomeLeader() {
  SKIFF_ASSERT_MSG(role_ == Role::kCandidate, "only a candidate becomes leader");
  Reset(term_);
  lead_ = config_.id;
  role_ = Role::kLeader;
  auto self = progress_.find(config_.id);
  SKIFF_ASSERT(self != progress_.end());
  // With async writes what was written may not be durable yet: OnDurable says what is.
  self->second.match = config_.async_storage_writes ? 0 : log_.StableLastIndex();
  self->second.next = log_.LastIndex() + 1;
  // Conservatively treat any conf change in the uncommitted tail as pending.
  pending_conf_index_ = log_.LastIndex();
  // The term's no-op: committing it commits every earlier entry (commit rule, paper §5.4.2).
  AppendLocal(EntryType::kNormal, Bytes());
}

void RaftNode::ResetRandomizedElectionTimeout() {
  const auto n = static_cast<uint64_t>(config_.election_ticks);
  randomized_election_timeout_ = config_.election_ticks + static_cast<int>(rng_.Uniform(n));
}

void RaftNode::Send(Message m) {
  m.from = config_.id;
  if (m.term == 0) m.term = term_;
  msgs_.push_back(std::move(m));
}

bool RaftNode::IsVoter(NodeId id) const {
  return std::binary_search(voters_.begin(), voters_.end(), id);
}

void RaftNode::CheckInvariants() {
  SKIFF_ASSERT_MSG(term_ >= checked_term_, "term never decreases");
  SKIFF_ASSERT_MSG(log_.committed() >= checked_commit_, "commit never decreases");
  SKIFF_ASSERT_MSG(log_.committed() <= log_.LastIndex(), "commit within the log");
  SKIFF_ASSERT_MSG(log_.applied() <= log_.applying() && log_.applying() <= log_.committed(),
                   "applied <= applying <= committed");
  switch (role_) {
    case Role::kLeader:
      SKIFF_ASSERT_MSG(lead_ == config_.id && vote_ == config_.id, "a leader voted for itself");
      SKIFF_ASSERT_MSG(progress_.count(config_.id) == 1, "a leader tracks itself");
      break;
    case Role::kCandidate:
      SKIFF_ASSERT_MSG(vote_ == config_.id, "a candidate votes for itself");
      break;
    case Role::kPreCandidate:
    case Role::kFollower:
      break;
  }
  SKIFF_ASSERT_MSG(role_ == Role::kLeader || lead_transferee_ == kNoNode,
                   "only a leader transfers leadership");
  checked_term_ = term_;
  checked_commit_ = log_.committed();
}

// --- Time --------------------------------------------------------------------------------------

void RaftNode::Tick() {
  if (quiesced_) return;
  if (role_ == Role::kLeader) {
    TickHeartbeat();
  } else {
    TickElection();
  }
  CheckInvariants();
}

void RaftNode::TickElection() {
  ++election_elapsed_;
  if (Promotable() && election_elapsed_ >= randomized_election_timeout_) {
    election_elapsed_ = 0;
    Hup(/*transfer=*/false);
  }
}

void RaftNode::TickHeartbeat() {
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (election_elapsed_ >= config_.election_ticks) {
    election_elapsed_ = 0;
    if (config_.check_quorum) {
      if (!QuorumActive()) {
        BecomeFollower(term_, kNoNode);
        return;
      }
      for (auto& [id, pr] : progress_) pr.recent_active = (id == config_.id);
    }
  }
  // A transfer that did not complete within an election timeout is abandoned. It has its own
  // counter so that starting transfers never postpones check-quorum.
  if (lead_transferee_ != kNoNode && ++transfer_elapsed_ >= config_.election_ticks) {
    AbortTransfer();
  }
  // A snapshot that was neither acknowledged nor reported within an election timeout is
  // presumed lost (the transport may never call ReportSnapshot): probe again.
  for (auto& [id, pr] : progress_) {
    if (pr.state == ProgressState::kSnapshot && ++pr.snapshot_ticks >= config_.election_ticks) {
      pr.pending_snapshot = 0;
      pr.BecomeProbe();
    }
  }
  if (config_.defer_commit_broadcast) SendDeferredCommits();
  MaybeQuiesce();
  if (quiesced_) return;
  if (heartbeat_elapsed_ >= config_.heartbeat_ticks) {
    heartbeat_elapsed_ = 0;
    BroadcastHeartbeat(read_round_, /*quiesce=*/false);
  }
}

// --- Messages ----------------------------------------------------------------------------------

Status RaftNode::Validate(const Message& m) const {
  if (m.from == kNoNode) return InvalidArgumentError("message without sender");
  if (m.type == MessageType::kSnapshot && (!m.snapshot.has_value() || m.snapshot->empty())) {
    return InvalidArgumentError("kSnapshot without a snapshot");
  }
  if (m.type == MessageType::kAppend) {
    Term prev_term = m.log_term;
    for (size_t i = 0; i < m.entries.size(); ++i) {
      const Entry& e = m.entries[i];
      if (e.index != m.index + 1 + i) return InvalidArgumentError("kAppend: non-contiguous");
      if (e.term < prev_term || e.term > m.term) return InvalidArgumentError("kAppend: bad term");
      prev_term = e.term;
    }
  }
  return Status::Ok();
}

Status RaftNode::Step(const Message& m) {
  if (m.to != config_.id || m.from == config_.id) return Status::Ok();
  SKIFF_RETURN_IF_ERROR(Validate(m));

  // Any traffic resumes a quiesced node, except the quiesce heartbeat itself and the
  // acknowledgements a quiesced leader gets for it (a response with reject set is a woken
  // follower's request to wake up, see Unquiesce).
  const bool quiet_msg = (m.type == MessageType::kHeartbeat && m.quiesce) ||
                         (role_ == Role::kLeader && m.type == MessageType::kHeartbeatResponse &&
                          m.term == term_ && !m.reject);
  if (quiesced_ && !quiet_msg) Unquiesce();

  if (m.term > term_) {
    if (m.type == MessageType::kVote || m.type == MessageType::kPreVote) {
      const bool forced = m.type == MessageType::kVote && m.context == kTransferContext;
      if (!forced && InLease()) return Status::Ok();  // leader stickiness
    }
    if (m.type == MessageType::kPreVote) {
      // Never changes our term.
    } else if (m.type == MessageType::kPreVoteResponse && !m.reject) {
      // A granted pre-vote carries the term we would campaign at; handled below.
    } else if (m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat ||
               m.type == MessageType::kSnapshot) {
      BecomeFollower(m.term, m.from);
    } else {
      BecomeFollower(m.term, kNoNode);
    }
  } else if (m.term < term_) {
    switch (m.type) {
      case MessageType::kAppend:
      case MessageType::kHeartbeat:
        // A stale leader: tell it our term so it steps down.
        Send(MakeMessage(MessageType::kAppendResponse, m.from));
        break;
      case MessageType::kPreVote: {
        Message r = MakeMessage(MessageType::kPreVoteResponse, m.from);
        r.reject = true;
        Send(std::move(r));
        break;
      }
      case MessageType::kVote:
        if (config_.unsafe.vote_ignores_term) HandleVoteRequest(m);
        break;
      default:
        break;  // stale: ignore
    }
    return Status::Ok();
  }

  if (m.type == MessageType::kVote || m.type == MessageType::kPreVote) {
    HandleVoteRequest(m);
    return Status::Ok();
  }
  switch (role_) {
    case Role::kLeader:
      StepLeader(m);
      break;
    case Role::kCandidate:
    case Role::kPreCandidate:
      StepCandidate(m);
      break;
    case Role::kFollower:
      StepFollower(m);
      break;
  }
  CheckInvariants();
  return Status::Ok();
}

void RaftNode::StepLeader(const Message& m) {
  auto it = progress_.find(m.from);
  if (it == progress_.end()) return;  // not a member (any more): ignore
  Progress& pr = it->second;
  switch (m.type) {
    case MessageType::kAppendResponse:
      HandleAppendResponse(m, pr);
      break;
    case MessageType::kHeartbeatResponse:
      HandleHeartbeatResponse(m, pr);
      break;
    case MessageType::kReadIndex:
      HandleReadRequest(m.from, m.context);
      break;
    default:
      break;  // nothing else is meaningful to a leader in its own term
  }
}

void RaftNode::StepCandidate(const Message& m) {
  switch (m.type) {
    case MessageType::kAppend:
      BecomeFollower(m.term, m.from);
      HandleAppend(m);
      break;
    case MessageType::kHeartbeat:
      BecomeFollower(m.term, m.from);
      HandleHeartbeat(m);
      break;
    case MessageType::kSnapshot:
      BecomeFollower(m.term, m.from);
      HandleSnapshot(m);
      break;
    case MessageType::kVoteResponse:
    case MessageType::kPreVoteResponse:
      HandleVoteResponse(m);
      break;
    case MessageType::kReadIndex: {
      Message r = MakeMessage(MessageType::kReadIndexResponse, m.from);
      r.context = m.context;
      r.reject = true;
      Send(std::move(r));
      break;
    }
    default:
      break;
  }
}

// Appends, heartbeats and snapshots come only from the leader of our term: they restart the
// election timer and renew the lease that makes this follower ignore disruptive (pre-)votes.
void RaftNode::HeardFromLeader(NodeId leader) {
  election_elapsed_ = 0;
  lease_suspended_ = false;
  lead_ = leader;
}

void RaftNode::StepFollower(const Message& m) {
  switch (m.type) {
    case MessageType::kAppend:
      HeardFromLeader(m.from);
      HandleAppend(m);
      break;
    case MessageType::kHeartbeat:
      HeardFromLeader(m.from);
      HandleHeartbeat(m);
      break;
    case MessageType::kSnapshot:
      HeardFromLeader(m.from);
      HandleSnapshot(m);
      break;
    case MessageType::kTimeoutNow:
      // The leader hands over: campaign at once, skipping pre-vote and others' leases. Only
      // from the leader of our term: a late one from an earlier term's abandoned transfer
      // (we then know no leader yet) must not force an election.
      if (m.from == lead_ && Promotable()) Hup(/*transfer=*/true);
      break;
    case MessageType::kReadIndex: {
      // Misrouted: we are not the leader.
      Message r = MakeMessage(MessageType::kReadIndexResponse, m.from);
      r.context = m.context;
      r.reject = true;
      Send(std::move(r));
      break;
    }
    case MessageType::kReadIndexResponse:
      if (!m.reject) read_states_.push_back(ReadState{m.context, m.index});
      break;
    default:
      break;
  }
}

// --- Ready / Advance ---------------------------------------------------------------------------

bool RaftNode::HasReady() const {
  if (CurrentSoftState() != prev_soft_) return true;
  if (CurrentHardState() != prev_hard_) return true;
  if (log_.UnstableSnapshot().has_value() || !log_.UnstableEntries().empty()) return true;
  if (!msgs_.empty() || !read_states_.empty()) return true;
  if (role_ == Role::kLeader && (pending_broadcast_ || pending_commit_broadcast_)) return true;
  return log_.HasNextCommittedEntries();
}

Ready RaftNode::GetReady() {
  FlushBroadcast();
  Ready rd;
  const SoftState ss = CurrentSoftState();
  if (ss != prev_soft_) {
    rd.soft_state = ss;
    prev_soft_ = ss;
  }
  const HardState hs = CurrentHardState();
  bool must_sync = false;
  if (hs != prev_hard_) {
    rd.hard_state = hs;
    must_sync = hs.term != prev_hard_.term || hs.vote != prev_hard_.vote;
    prev_hard_ = hs;
  }
  rd.snapshot = log_.UnstableSnapshot();
  rd.entries = log_.UnstableEntries();
  rd.committed_entries = log_.NextCommittedEntries(MaxCommittedBytes(config_));
  if (!rd.committed_entries.empty()) log_.AcceptApplying(rd.committed_entries.back().index);
  rd.messages = std::move(msgs_);
  msgs_.clear();
  rd.read_states = std::move(read_states_);
  read_states_.clear();
  rd.must_sync = must_sync || rd.snapshot.has_value() || !rd.entries.empty();
  return rd;
}

void RaftNode::Advance(const Ready& rd) {
  if (rd.snapshot.has_value()) {
    log_.StableSnapTo(rd.snapshot->meta.index);
    log_.AppliedTo(rd.snapshot->meta.index);
  }
  if (!rd.entries.empty()) log_.StableTo(rd.entries.back().index, rd.entries.back().term);
  if (!rd.committed_entries.empty()) log_.AppliedTo(rd.committed_entries.back().index);
  SKIFF_ASSERT(log_.applied() <= log_.committed());
  if (role_ == Role::kLeader && !config_.async_storage_writes) {
    // Our own entries count towards the quorum only now that they are durable.
    auto self = progress_.find(config_.id);
    if (self != progress_.end() && self->second.MaybeUpdate(log_.StableLastIndex())) {
      if (MaybeCommit()) NoteCommitAdvanced();
    }
  }
  CheckInvariants();
}

void RaftNode::OnDurable(Index index, Term term) {
  if (!config_.async_storage_writes || role_ != Role::kLeader) return;
  // Only entries handed to storage can be durable, and only the ones still in our log count.
  if (index > log_.StableLastIndex() || !log_.MatchTerm(index, term)) return;
  auto self = progress_.find(config_.id);
  if (self != progress_.end() && self->second.MaybeUpdate(index)) {
    if (MaybeCommit()) NoteCommitAdvanced();
  }
  CheckInvariants();
}

NodeStatus RaftNode::GetStatus() const {
  NodeStatus s;
  s.id = config_.id;
  s.hard_state = CurrentHardState();
  s.soft_state = CurrentSoftState();
  s.applied = log_.applied();
  s.last_index = log_.LastIndex();
  s.conf = CurrentConf();
  s.quiesced = quiesced_;
  s.lead_transferee = lead_transferee_;
  if (role_ == Role::kLeader) {
    for (const auto& [id, pr] : progress_) s.match.emplace_back(id, pr.match);
  }
  return s;
}

}  // namespace skiff::raft
