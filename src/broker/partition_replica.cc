#include "broker/partition_replica.h"

#include <glog/logging.h>

#include <algorithm>

#include "broker/partition_entry.h"
#include "broker/validation.h"
#include "common/coding.h"
#include "storage/partition_log.h"

namespace skiff::broker {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A partition's Raft snapshot: the offset following the snapshot's index (8 bytes, little
// endian), then PartitionState::EncodeSnapshot() (which carries its own CRC).
std::string EncodePartitionSnapshot(int64_t next_offset, const PartitionState& state) {
  std::string out;
  PutFixed64(out, static_cast<uint64_t>(next_offset));
  out += state.EncodeSnapshot();
  return out;
}

struct DecodedSnapshot {
  int64_t next_offset = 0;
  PartitionState state;
};

Result<DecodedSnapshot> DecodePartitionSnapshot(std::string_view data) {
  if (data.size() < 8) return CorruptionError("partition snapshot shorter than its header");
  const uint64_t next = GetFixed64(data.data());
  SKIFF_ASSIGN_OR_RETURN(PartitionState state, PartitionState::DecodeSnapshot(data.substr(8)));
  if (static_cast<int64_t>(next) < 0) return CorruptionError("partition snapshot: bad offset");
  return DecodedSnapshot{static_cast<int64_t>(next), std::move(state)};
}

}  // namespace

PartitionReplica::PartitionReplica(std::string topic, int32_t partition, RaftGroupId group,
                                   BrokerId self, storage::PartitionLog* log)
    : topic_(std::move(topic)), partition_(partition), group_(group), self_(self), log_(log) {}

std::unique_ptr<GroupStateMachine> PartitionReplica::MakeStateMachine(
    std::shared_ptr<PartitionReplica> self) {
  return std::make_unique<SharedStateMachine<PartitionReplica>>(std::move(self));
}

ProduceOutcome PartitionReplica::Failure(v1::ErrorCode code, std::string message) const {
  ProduceOutcome o;
  o.error = code;
  o.message = std::move(message);
  o.leader_hint = leader_.load();
  return o;
}

void PartitionReplica::Produce(GroupHandle* handle, v1::RecordBatch batch, v1::Acks acks,
                               ProduceCallback done) {
  ProduceChecked(handle, std::move(batch), acks, std::move(done), /*leadership_confirmed=*/false);
}

void PartitionReplica::OnReadStates(GroupHandle* handle,
                                    const std::vector<raft::ReadState>& states) {
  for (const raft::ReadState& rs : states) {
    auto it = unconfirmed_.find(rs.context);
    if (it == unconfirmed_.end()) continue;
    Unconfirmed u = std::move(it->second);
    unconfirmed_.erase(it);
    // Confirmed in this term: every entry since this leader's first is its own and tracked in
    // the producer table (applied or pending), so the table is current; no need to wait for
    // rs.index to apply.
    ProduceChecked(handle, std::move(u.batch), u.acks, std::move(u.done),
                   /*leadership_confirmed=*/true);
  }
}

void PartitionReplica::ProduceChecked(GroupHandle* handle, v1::RecordBatch batch, v1::Acks acks,
                                      ProduceCallback done, bool leadership_confirmed) {
  if (!handle->node->IsLeader()) {
    return done(Failure(v1::NOT_LEADER, "this broker does not lead the partition"));
  }
  if (!leader_ready_) {
    return done(Failure(v1::LEADER_NOT_AVAILABLE,
                        "the new leader is still applying earlier entries; retry shortly"));
  }
  if (!storage_status_.ok()) {
    const bool full = storage_status_.code() == StatusCode::kResourceExhausted;
    return done(Failure(full ? v1::STORAGE_FULL : v1::STORAGE_ERROR,
                        "leader storage: " + storage_status_.message()));
  }
  const int64_t append_time = NowMs();
  if (batch.max_timestamp_ms() <= 0) batch.set_max_timestamp_ms(append_time);

  std::string data = EncodeBatchEntry(batch);
  auto header = DecodeBatchEntryHeader(data);
  if (!header.ok()) return done(Failure(v1::INVALID_BATCH, header.status().message()));

  const SequenceCheck check = state_.CheckSequence(*header);
  const bool definite_refusal =
      check.verdict == SequenceVerdict::kOutOfSequence || check.verdict == SequenceVerdict::kFenced;
  if (definite_refusal && !leadership_confirmed) {
    // OUT_OF_SEQUENCE and PRODUCER_FENCED are final for the producer; give them only from a
    // table known to be current.
    const uint64_t context = next_read_context_++;
    if (!handle->node->ReadIndex(context).ok()) {
      return done(Failure(v1::NOT_LEADER, "cannot confirm leadership; retry"));
    }
    unconfirmed_.emplace(context, Unconfirmed{std::move(batch), acks, std::move(done)});
    return;
  }
  switch (check.verdict) {
    case SequenceVerdict::kAccept:
      break;
    case SequenceVerdict::kDuplicate: {
      // A retry of a batch already written: answer with the original's offset, once known.
      if (check.original.base_offset >= 0) {
        ProduceOutcome o;
        o.base_offset = check.original.base_offset;
        o.log_start_offset = log_->LogStartOffset().value();
        return done(o);
      }
      Waiter w{leading_term_, v1::ACKS_ALL, -1, append_time, std::move(done)};
      acks_all_.emplace(check.original.index, std::move(w));
      return;
    }
    case SequenceVerdict::kOutOfSequence:
      return done(Failure(v1::OUT_OF_SEQUENCE, check.message));
    case SequenceVerdict::kFenced:
      return done(Failure(v1::PRODUCER_FENCED, check.message));
  }

  auto index = handle->node->Propose(Bytes(std::move(data)));
  if (!index.ok()) {
    return done(Failure(ErrorCodeForProposeStatus(index.status()), index.status().ToString()));
  }
  state_.AddPending(*header, *index);
  const int64_t base = proposed_end_offset_;
  proposed_end_offset_ += header->record_count;

  Waiter w{leading_term_, acks, base, append_time, std::move(done)};
  switch (acks) {
    case v1::ACKS_NONE: {
      ProduceOutcome o;
      o.base_offset = -1;
      o.append_time_ms = append_time;
      return w.done(o);
    }
    case v1::ACKS_LEADER:
      acks_leader_.emplace(*index, std::move(w));
      return;
    default:
#ifdef SKIFF_CANARY_ACK_BEFORE_COMMIT
      // Deliberately broken build, for tests/chaos only (target skiffd_canary): acks=ALL is
      // answered at proposal time, before a quorum stores the batch. The chaos suite must
      // report lost writes against it, which proves the suite can fail.
      if (acks == v1::ACKS_ALL) {
        ProduceOutcome o;
        o.base_offset = base;
        return Answer(w, o);
      }
#endif
      acks_all_.emplace(*index, std::move(w));
      return;
  }
}

void PartitionReplica::Answer(Waiter& w, ProduceOutcome outcome) {
  if (outcome.error == v1::ERROR_NONE) {
    outcome.log_start_offset = log_->LogStartOffset().value();
    outcome.append_time_ms = w.append_time_ms;
  }
  if (w.done) w.done(outcome);
  w.done = nullptr;
}

Status PartitionReplica::Restore(const raft::Snapshot& snapshot) {
  if (snapshot.data.empty()) {
    state_ = PartitionState();
    applied_end_offset_ = 0;
  } else {
    auto decoded = DecodePartitionSnapshot(snapshot.data.view());
    if (!decoded.ok()) return decoded.status();
    applied_end_offset_ = decoded->next_offset;
    state_ = std::move(decoded->state);
  }
  applied_index_.store(snapshot.meta.index);
  PublishHighWatermark();
  return Status();
}

uint64_t PartitionReplica::NextOffsetAfter(const raft::Snapshot& snapshot) const {
  if (snapshot.data.empty()) return 0;
  auto decoded = DecodePartitionSnapshot(snapshot.data.view());
  if (!decoded.ok()) return 0;
  return static_cast<uint64_t>(decoded->next_offset);
}

void PartitionReplica::Apply(const raft::Entry& entry) {
  int64_t base = -1;
  if (entry.type == raft::EntryType::kNormal && !entry.data.empty()) {
    auto header = DecodeBatchEntryHeader(entry.data.view());
    if (header.ok()) {
      base = applied_end_offset_;
      applied_end_offset_ += header->record_count;
      // A snapshot's state can be ahead of its index (see ApplyRetention): entries it already
      // reflects still arrive, to keep their records, but change nothing in the state.
      if (entry.index > state_.applied_index()) {
        const int64_t state_base = state_.ApplyBatch(*header, entry.index).value();
        if (state_base != base) {
          LOG_EVERY_N(ERROR, 100) << topic_ << "/" << partition_ << ": state offset " << state_base
                                  << " != log offset " << base << " at index " << entry.index
                                  << " (bug)";
        }
      }
    } else {
      // Storage and the transport verify CRCs, so this is a bug, not damage; the classifier
      // counted it as zero records too, so offsets stay consistent with the log.
      LOG(ERROR) << topic_ << "/" << partition_ << ": undecodable entry at index " << entry.index;
      if (entry.index > state_.applied_index()) state_.ApplyNonBatch(entry.index);
    }
  } else if (entry.index > state_.applied_index()) {
    state_.ApplyNonBatch(entry.index);
  }
  if (leading_ && !leader_ready_ && entry.term == leading_term_) {
    // Everything before the first entry of our term is applied now, and nothing of ours was
    // proposed before it: the offsets we hand out continue from here.
    leader_ready_ = true;
    serving_.store(true);
    proposed_end_offset_ = applied_end_offset_;
  }
  // Answer every acks=ALL waiter at or below this index.
  while (!acks_all_.empty() && acks_all_.begin()->first <= entry.index) {
    auto node = acks_all_.extract(acks_all_.begin());
    Waiter& w = node.mapped();
    if (node.key() == entry.index && w.term == entry.term && base >= 0) {
      ProduceOutcome o;
      o.base_offset = base;
      Answer(w, o);
    } else if (node.key() < entry.index) {
      // Only a duplicate-of-pending waiter can be left below: its original applied earlier
      // (answered through the sequence table on retry) — report it as retriable.
      Answer(w, Failure(v1::NOT_LEADER, "batch outcome unknown after a leader change; retry"));
    } else {
      Answer(w,
             Failure(v1::NOT_LEADER, "a new leader replaced the batch before it committed; retry"));
    }
  }
  applied_index_.store(entry.index);
  PublishHighWatermark();
}

void PartitionReplica::OnPersisted(raft::Index index, raft::Term term) {
  while (!acks_leader_.empty() && acks_leader_.begin()->first <= index) {
    auto node = acks_leader_.extract(acks_leader_.begin());
    Waiter& w = node.mapped();
    if (w.term == term || node.key() < index) {
      ProduceOutcome o;
      o.base_offset = w.base_offset;
      Answer(w, o);
    } else {
      Answer(w, Failure(v1::NOT_LEADER, "leadership changed before the batch was stored"));
    }
  }
}

void PartitionReplica::OnSoftState(const raft::SoftState& soft, raft::Term term) {
  leader_.store(soft.leader == raft::kNoNode ? -1 : static_cast<int64_t>(soft.leader));
  term_.store(term);
  const bool leading = soft.role == raft::Role::kLeader;
  if (leading && (!leading_ || term != leading_term_)) {
    leading_term_ = term;
    leader_ready_ = false;
    serving_.store(false);
  }
  if (!leading) {
    previous_commit_ = 0;
    std::lock_guard lock(in_sync_mu_);
    in_sync_.clear();
  }
  if (!leading && leading_) {
    state_.ClearPending();
    leader_ready_ = false;
    serving_.store(false);
    // acks=LEADER waiters not yet durable here will not become so under our leadership.
    for (auto& [index, w] : acks_leader_) {
      Answer(w, Failure(v1::NOT_LEADER, "leadership moved before the batch was stored"));
    }
    acks_leader_.clear();
    // acks=ALL waiters: the new leader may still commit their batches, or replace them; this
    // replica will not know in time. Answer now rather than at the client's timeout, so the
    // producer retries at the new leader at once (an idempotent retry is not written twice;
    // it gets the original offset).
    for (auto& [index, w] : acks_all_) {
      Answer(w, Failure(v1::NOT_LEADER,
                        "leadership moved before the batch committed; its outcome is unknown, "
                        "retry at the new leader"));
    }
    acks_all_.clear();
    for (auto& [context, u] : unconfirmed_) {
      u.done(Failure(v1::NOT_LEADER, "leadership moved; retry at the new leader"));
    }
    unconfirmed_.clear();
  }
  leading_ = leading;
}

bool PartitionReplica::UpdateInSync(GroupHandle* handle) {
  if (!handle->node->IsLeader()) return false;  // OnSoftState cleared the set
  const raft::NodeStatus status = handle->node->GetStatus();
  std::vector<int64_t> in_sync;
  in_sync.push_back(static_cast<int64_t>(self_.value()));
  for (auto [node, match] : status.match) {
    if (node != self_.value() && match >= previous_commit_) {
      in_sync.push_back(static_cast<int64_t>(node));
    }
  }
  std::sort(in_sync.begin(), in_sync.end());
  previous_commit_ = status.hard_state.commit;
  std::lock_guard lock(in_sync_mu_);
  if (in_sync == in_sync_) return false;
  in_sync_ = std::move(in_sync);
  return true;
}

std::vector<int64_t> PartitionReplica::in_sync() const {
  std::lock_guard lock(in_sync_mu_);
  return in_sync_;
}

void PartitionReplica::SetRetention(int64_t retention_ms, int64_t retention_bytes) {
  std::lock_guard lock(retention_mu_);
  retention_.retention_ms = retention_ms >= 0 ? std::optional<int64_t>(retention_ms) : std::nullopt;
  retention_.retention_bytes = retention_bytes >= 0
                                   ? std::optional<uint64_t>(static_cast<uint64_t>(retention_bytes))
                                   : std::nullopt;
}

Result<uint64_t> PartitionReplica::ApplyRetention(GroupHandle* handle, int64_t now_ms) {
  storage::RetentionPolicy policy;
  {
    std::lock_guard lock(retention_mu_);
    policy = retention_;
  }
  if (!policy.retention_ms && !policy.retention_bytes) return uint64_t{0};
  SKIFF_ASSIGN_OR_RETURN(storage::RetentionCut cut, log_->ComputeRetention(policy, now_ms));
  // Only what this replica has applied can be covered by a snapshot of its state.
  if (cut.cut_through == 0 || cut.cut_through > applied_index_.load()) return uint64_t{0};
  auto current = log_->GetSnapshot();
  if (!current.ok()) return current.status();
  if (current->meta.index < cut.cut_through) {
    // The snapshot sits exactly at the cut, so a follower that installs it keeps every record
    // after the cut (retention must not drop more on a follower than on the leader). Its state
    // image is taken at the applied index, which may be later: the producer table it holds is
    // then newer than the cut, and replicas skip the state change of entries it already
    // covers. The offset after the cut travels with it.
    SKIFF_RETURN_IF_ERROR(log_->CreateSnapshot(
        cut.cut_through, handle->node->GetStatus().conf,
        Bytes(EncodePartitionSnapshot(cut.new_log_start_offset.value(), state_))));
  }
  SKIFF_RETURN_IF_ERROR(log_->Compact(cut.cut_through));
  return cut.bytes;
}

void PartitionReplica::OnStorageStatus(const Status& status) {
  // leader_ is left alone: while it believes it leads, this replica keeps serving reads of
  // what is committed (the host stops advertising it as leader to clients; see RaftHost).
  storage_status_ = status;
}

void PartitionReplica::OnStop() {
  for (auto& [context, u] : unconfirmed_) {
    u.done(Failure(v1::NOT_LEADER, "the replica is shutting down; retry"));
  }
  unconfirmed_.clear();
  for (auto* waiters : {&acks_all_, &acks_leader_}) {
    for (auto& [index, w] : *waiters) {
      Answer(w, Failure(v1::NOT_LEADER, "the replica is shutting down; retry"));
    }
    waiters->clear();
  }
  Close();
}

void PartitionReplica::PublishHighWatermark() {
  high_watermark_.store(applied_end_offset_);
  std::lock_guard lock(data_mu_);
  data_cv_.notify_all();
}

int64_t PartitionReplica::WaitForData(int64_t offset,
                                      std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(data_mu_);
  data_cv_.wait_until(lock, deadline, [&] { return closed_ || high_watermark_.load() > offset; });
  return high_watermark_.load();
}

void PartitionReplica::Close() {
  std::lock_guard lock(data_mu_);
  closed_ = true;
  data_cv_.notify_all();
}

}  // namespace skiff::broker
