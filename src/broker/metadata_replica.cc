#include "broker/metadata_replica.h"

#include <glog/logging.h>

#include "broker/placement.h"
#include "storage/partition_log.h"

namespace skiff::broker {

MetadataReplica::MetadataReplica(BrokerId self, std::function<void(MetadataView)> on_change)
    : self_(self),
      on_change_(std::move(on_change)),
      view_(std::make_shared<const MetadataState>()) {}

std::unique_ptr<GroupStateMachine> MetadataReplica::MakeStateMachine(
    std::shared_ptr<MetadataReplica> self) {
  return std::make_unique<SharedStateMachine<MetadataReplica>>(std::move(self));
}

MetadataView MetadataReplica::view() const {
  std::lock_guard lock(view_mu_);
  return view_;
}

void MetadataReplica::Propose(GroupHandle* handle, internal::MetadataCommand command,
                              MetadataDone done) {
  if (!handle->node->IsLeader()) return done(AbortedError("not the metadata leader"));
  if (!leader_ready_) {
    return done(UnavailableError("the new metadata leader is still catching up; retry"));
  }
  if (command.has_create_topic() && command.create_topic().assignment_size() == 0) {
    auto* create = command.mutable_create_topic();
    auto placement = PlaceReplicas(state_.LoadOfLiveBrokers(), create->partitions(),
                                   create->replication_factor());
    if (!placement.ok()) return done(placement.status());
    for (const auto& replicas : *placement) {
      auto* list = create->add_assignment();
      for (int64_t b : replicas) list->add_brokers(b);
    }
  }
  std::string data;
  if (!command.SerializeToString(&data)) return done(InternalError("cannot encode command"));
  auto index = handle->node->Propose(Bytes(std::move(data)));
  if (!index.ok()) {
    if (index.status().code() == StatusCode::kFailedPrecondition) {
      return done(AbortedError("not the metadata leader"));
    }
    return done(
        UnavailableError("metadata leader refused the proposal: " + index.status().ToString()));
  }
  waiters_.emplace(*index, Waiter{leading_term_, std::move(done)});
}

Result<bool> MetadataReplica::MaybeSnapshot(GroupHandle* handle, uint64_t min_entries,
                                            uint64_t keep_entries) {
  if (applied_index_ < snapshot_index_ + std::max<uint64_t>(min_entries, 1)) return false;
  // Conf changes take effect when applied, so the node's conf is the one at applied_index_. The
  // host persists an applied conf change one loop later; a snapshot taken before that (and
  // the log compacted behind it) would, after a crash in between, restart from the stored old
  // conf with the change's entry gone. So wait until the stored conf has caught up.
  const raft::ConfState conf = handle->node->GetStatus().conf;
  SKIFF_ASSIGN_OR_RETURN(raft::InitialState stored, handle->log->GetInitialState());
  if (!(stored.conf_state == conf)) return false;
  SKIFF_RETURN_IF_ERROR(
      handle->log->CreateSnapshot(applied_index_, conf, Bytes(state_.EncodeSnapshot())));
  if (applied_index_ > keep_entries) {
    SKIFF_RETURN_IF_ERROR(handle->log->Compact(applied_index_ - keep_entries));
  }
  snapshot_index_ = applied_index_;
  return true;
}

Status MetadataReplica::Restore(const raft::Snapshot& snapshot) {
  applied_index_ = snapshot.meta.index;
  snapshot_index_ = snapshot.meta.index;
  if (snapshot.data.empty()) {
    state_ = MetadataState();
  } else {
    auto decoded = MetadataState::DecodeSnapshot(snapshot.data.view());
    if (!decoded.ok()) return decoded.status();
    state_ = std::move(*decoded);
  }
  Publish();
  return Status();
}

void MetadataReplica::Apply(const raft::Entry& entry) {
  Result<internal::MetadataResult> result = InternalError("entry holds no command");
  if (entry.type == raft::EntryType::kNormal && !entry.data.empty()) {
    internal::MetadataCommand command;
    if (command.ParseFromArray(entry.data.data(), static_cast<int>(entry.data.size()))) {
      result = state_.Apply(command);
      // A failed command changes nothing; neither does a report of known leaderships.
      if (result.ok() && !result->unchanged()) dirty_ = true;
    } else {
      LOG(ERROR) << "metadata: undecodable command at index " << entry.index;
      result = CorruptionError("undecodable metadata command");
    }
  }
  applied_index_ = entry.index;
  if (leading_ && !leader_ready_ && entry.term == leading_term_) leader_ready_ = true;
  while (!waiters_.empty() && waiters_.begin()->first <= entry.index) {
    auto node = waiters_.extract(waiters_.begin());
    Waiter& w = node.mapped();
    if (node.key() == entry.index && w.term == entry.term) {
      completed_.emplace_back(std::move(w.done), result);
    } else {
      completed_.emplace_back(
          std::move(w.done),
          UnavailableError("metadata leadership changed before the command committed"));
    }
  }
}

void MetadataReplica::OnAppliedBatch() {
  // One view per applied batch, not per command (a view is a copy of the whole state), and
  // published before the proposers hear back, so what they read next includes their command.
  if (dirty_) {
    dirty_ = false;
    Publish();
  }
  for (auto& [done, result] : completed_) done(std::move(result));
  completed_.clear();
}

void MetadataReplica::Publish() {
  auto view = std::make_shared<const MetadataState>(state_);
  {
    std::lock_guard lock(view_mu_);
    view_ = view;
  }
  if (on_change_) on_change_(view);
}

void MetadataReplica::OnPersisted(raft::Index, raft::Term) {}

void MetadataReplica::OnSoftState(const raft::SoftState& soft, raft::Term term) {
  leader_.store(soft.leader == raft::kNoNode ? -1 : static_cast<int64_t>(soft.leader));
  term_.store(term);
  const bool leading = soft.role == raft::Role::kLeader;
  if (leading && (!leading_ || term != leading_term_)) {
    leading_term_ = term;
    leader_ready_ = false;
  }
  if (!leading) leader_ready_ = false;
  leading_ = leading;
}

void MetadataReplica::OnStorageStatus(const Status& status) {
  if (status.ok()) return;  // the host calls OnSoftState next, which restores both
  leader_.store(-1);
  leader_ready_ = false;
}

void MetadataReplica::OnStop() {
  for (auto& [done, result] : completed_) done(std::move(result));
  completed_.clear();
  for (auto& [index, w] : waiters_) w.done(UnavailableError("broker stopping"));
  waiters_.clear();
}

}  // namespace skiff::broker
