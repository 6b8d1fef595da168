// PartitionReplica: this broker's replica of one partition — the state machine its Raft group
// applies, the leader's produce path, and the read side Fetch uses.
//
// Produce (leader, on the group's worker thread):
//   refuse unless this replica leads AND has applied the first entry of its own term (so its
//   producer-sequence state includes everything earlier leaders wrote: a retry of a batch the
//   previous leader appended is recognised as a duplicate, not written twice), then check the
//   producer sequence, propose, and answer:
//     acks=NONE   at once;
//     acks=LEADER once the entry is durable in the local log;
//     acks=ALL    once the entry is applied, i.e. committed by a quorum (durable on each of
//                 them under the default sync policy) — with the offset the log gave it.
//   A waiter is answered with success only if the entry applied at its index has the term it
//   was proposed in; a different term there means a new leader overwrote it (NOT_LEADER: the
//   client retries; idempotence makes the retry safe).
//
// Read side (any thread): the high watermark is the offset after the last APPLIED record, so a
// reader never sees an entry that could still be rolled back, on the leader or a follower.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "broker/partition_state.h"
#include "broker/raft_host.h"
#include "skiff/v1/errors.pb.h"
#include "skiff/v1/produce.pb.h"
#include "skiff/v1/records.pb.h"
#include "storage/partition_log.h"

namespace skiff::broker {

struct ProduceOutcome {
  v1::ErrorCode error = v1::ERROR_NONE;
  std::string message;
  int64_t base_offset = -1;
  int64_t log_start_offset = 0;
  int64_t append_time_ms = -1;
  int64_t leader_hint = -1;  // broker id, with NOT_LEADER
};
using ProduceCallback = std::function<void(const ProduceOutcome&)>;

class PartitionReplica {
 public:
  PartitionReplica(std::string topic, int32_t partition, RaftGroupId group, BrokerId self,
                   storage::PartitionLog* log);

  const std::string& topic() const { return topic_; }
  int32_t partition() const { return partition_; }
  RaftGroupId group() const { return group_; }
  storage::PartitionLog* log() const { return log_; }

  // Worker thread (RaftHost::Run). `batch` passed ValidateRecordBatchForAppend. `done` is
  // called exactly once, from the worker thread.
  void Produce(GroupHandle* handle, v1::RecordBatch batch, v1::Acks acks, ProduceCallback done);

  // Worker thread. Retention: drops the prefix the topic's retention allows (whole batches,
  // committed and applied), after recording a Raft snapshot of this replica's state at its
  // applied index, so a follower that needs the dropped prefix gets the snapshot instead.
  // Returns the payload bytes freed.
  Result<uint64_t> ApplyRetention(GroupHandle* handle, int64_t now_ms);

  // Worker thread, on the leader: recomputes the in-sync replicas — those whose log holds
  // everything that was committed at the previous check (so a follower that keeps up with a
  // steady stream of writes stays in sync, and one that stopped drops out within two checks).
  // Returns whether the set changed.
  bool UpdateInSync(GroupHandle* handle);
  // Any thread: the last in-sync set computed while this replica led (empty otherwise).
  std::vector<int64_t> in_sync() const;

  // Any thread. The topic's retention (from its effective config; -1 = unlimited).
  void SetRetention(int64_t retention_ms, int64_t retention_bytes);

  // Any thread.
  int64_t high_watermark() const { return high_watermark_.load(); }
  raft::Index applied_index() const { return applied_index_.load(); }
  int64_t leader() const { return leader_.load(); }  // broker id, -1 unknown
  bool is_leader() const { return leader_.load() == static_cast<int64_t>(self_.value()); }
  // Leads and has applied the first entry of its term: its high watermark is current.
  bool is_serving_leader() const { return is_leader() && serving_.load(); }
  uint64_t leader_term() const { return term_.load(); }
  // Blocks until the high watermark exceeds `offset`, the deadline passes or Close(); returns
  // the high watermark.
  int64_t WaitForData(int64_t offset, std::chrono::steady_clock::time_point deadline);
  // Wakes every waiting reader for good (the replica is going away).
  void Close();
  bool closed() {
    std::lock_guard lock(data_mu_);
    return closed_;
  }

  // The GroupStateMachine the host drives (forwards to this replica).
  std::unique_ptr<GroupStateMachine> MakeStateMachine(std::shared_ptr<PartitionReplica> self);

  // GroupStateMachine callbacks (worker thread).
  Status Restore(const raft::Snapshot& snapshot);
  void Apply(const raft::Entry& entry);
  void OnPersisted(raft::Index index, raft::Term term);
  void OnSoftState(const raft::SoftState& soft, raft::Term term);
  void OnStorageStatus(const Status& status);
  // Leadership confirmations (ReadIndex) this replica asked for: see Produce.
  void OnReadStates(GroupHandle* handle, const std::vector<raft::ReadState>& states);
  uint64_t NextOffsetAfter(const raft::Snapshot& snapshot) const;
  void OnStop();

 private:
  // A request answered from the producer table only once this leader has confirmed, with a
  // heartbeat round (ReadIndex), that no newer leader exists: a deposed leader that has not
  // noticed yet (say, one resumed after a pause) holds a stale table.
  struct Unconfirmed {
    v1::RecordBatch batch;
    v1::Acks acks = v1::ACKS_ALL;
    ProduceCallback done;
  };
  void ProduceChecked(GroupHandle* handle, v1::RecordBatch batch, v1::Acks acks,
                      ProduceCallback done, bool leadership_confirmed);

  struct Waiter {
    raft::Term term = 0;
    v1::Acks acks = v1::ACKS_ALL;
    int64_t base_offset = -1;
    int64_t append_time_ms = -1;
    ProduceCallback done;
  };
  void Answer(Waiter& w, ProduceOutcome outcome);
  ProduceOutcome Failure(v1::ErrorCode code, std::string message) const;
  void PublishHighWatermark();

  const std::string topic_;
  const int32_t partition_;
  const RaftGroupId group_;
  const BrokerId self_;
  storage::PartitionLog* const log_;

  // Worker thread only.
  PartitionState state_;
  std::multimap<raft::Index, Waiter> acks_all_;     // answered on apply
  std::multimap<raft::Index, Waiter> acks_leader_;  // answered when locally durable
  std::map<uint64_t, Unconfirmed> unconfirmed_;     // by ReadIndex context
  uint64_t next_read_context_ = 1;
  bool leading_ = false;
  bool leader_ready_ = false;  // applied an entry of its own term
  raft::Term leading_term_ = 0;
  int64_t proposed_end_offset_ = 0;
  // The offset after the last applied entry (the log's offsets; the state's own end offset may
  // be ahead right after a snapshot whose image is newer than its index).
  int64_t applied_end_offset_ = 0;
  Status storage_status_;

  std::atomic<int64_t> high_watermark_{0};
  std::atomic<raft::Index> applied_index_{0};
  std::atomic<int64_t> leader_{-1};
  std::atomic<bool> serving_{false};  // leader_ready_, for other threads
  std::atomic<uint64_t> term_{0};
  raft::Index previous_commit_ = 0;  // worker thread only
  mutable std::mutex in_sync_mu_;
  std::vector<int64_t> in_sync_;  // guarded by in_sync_mu_

  std::mutex retention_mu_;
  storage::RetentionPolicy retention_;  // guarded by retention_mu_

  std::mutex data_mu_;
  std::condition_variable data_cv_;
  bool closed_ = false;  // guarded by data_mu_
};

}  // namespace skiff::broker
