// RaftHost: runs every Raft group of a broker (the metadata group and thousands of partitions)
// on a fixed number of worker threads.
//
// Each group is owned by exactly one worker (chosen by hashing its id), so a group's node,
// storage writer and state machine are only ever touched from that thread: no lock on the hot
// path. A worker loop:
//
//   1. take the inbox (messages from peers, tasks from gRPC handlers) and feed it to the groups
//   2. tick every awake group when a tick is due
//   3. collect the Ready of every group that has one and persist them ALL with one
//      LogStore::Write (group commit: one WriteBatch, one fsync for the whole worker)
//   4. send the Ready's messages (grouped per peer broker), tell state machines what became
//      durable, apply committed entries, Advance
//
// With async storage writes (the default, RaftHostOptions::async_storage_writes) step 3 issues
// the write and its fsync runs on the store's durability thread while the worker goes on; the
// messages that must follow the fsync wait in the worker's outbox, which the durability thread
// releases, and a leader counts its own entries only once they are durable. A worker that was
// idle syncs the write itself instead (nothing to overlap).
//
// If the write fails (disk full, I/O error) the Readies are kept and retried on the next loop;
// nothing that promises durability is sent until the write is durable, so no promise is made
// that the disk did not keep. Raft node ids are broker ids.
//
// Thread-safety: public methods are thread-safe. Callbacks into a GroupStateMachine run on the
// owning worker thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "broker/raft_message_codec.h"
#include "common/ids.h"
#include "common/status.h"
#include "raft/node.h"
#include "storage/log_store.h"

namespace skiff::broker {

class RaftTransport;
struct GroupHandle;

// The replicated state of one group, driven by its worker thread.
class GroupStateMachine {
 public:
  virtual ~GroupStateMachine() = default;
  // Replaces the state with a snapshot's image (an empty snapshot: the initial state). Called
  // before the node starts and whenever the node installs a snapshot from the leader.
  virtual Status Restore(const raft::Snapshot& snapshot) = 0;
  // A committed entry, in index order (kNormal and kConfChange alike).
  virtual void Apply(const raft::Entry& entry) = 0;
  // The committed entries of one Ready were all applied (a point to publish state).
  virtual void OnAppliedBatch() {}
  // Entries through `index` (of term `term`) are durable in the local log.
  virtual void OnPersisted(raft::Index /*index*/, raft::Term /*term*/) {}
  // The node's role or known leader changed; `term` is its current term.
  virtual void OnSoftState(const raft::SoftState& /*soft*/, raft::Term /*term*/) {}
  // The local log failed to persist (disk full / I/O error) or recovered (Ok).
  virtual void OnStorageStatus(const Status& /*status*/) {}
  // ReadIndex answers (the group's committed entries of the same Ready are applied first).
  virtual void OnReadStates(GroupHandle* /*handle*/,
                            const std::vector<raft::ReadState>& /*states*/) {}
  // The partition offset following a snapshot's last entry (storage keeps the offset index).
  virtual uint64_t NextOffsetAfter(const raft::Snapshot& /*snapshot*/) const { return 0; }
  // The group is leaving this broker (or the broker stops): fail whatever waits on it.
  virtual void OnStop() {}
};

// The GroupStateMachine the host owns, for a replica object that others (services reading
// its watermarks) share: forwards every callback the replica defines.
template <typename Replica>
class SharedStateMachine final : public GroupStateMachine {
 public:
  explicit SharedStateMachine(std::shared_ptr<Replica> replica) : replica_(std::move(replica)) {}
  Status Restore(const raft::Snapshot& s) override { return replica_->Restore(s); }
  void Apply(const raft::Entry& e) override { replica_->Apply(e); }
  void OnAppliedBatch() override {
    if constexpr (requires { replica_->OnAppliedBatch(); }) replica_->OnAppliedBatch();
  }
  void OnPersisted(raft::Index i, raft::Term t) override { replica_->OnPersisted(i, t); }
  void OnSoftState(const raft::SoftState& s, raft::Term t) override { replica_->OnSoftState(s, t); }
  void OnStorageStatus(const Status& s) override {
    if constexpr (requires { replica_->OnStorageStatus(s); }) replica_->OnStorageStatus(s);
  }
  void OnReadStates(GroupHandle* h, const std::vector<raft::ReadState>& states) override {
    if constexpr (requires { replica_->OnReadStates(h, states); }) {
      replica_->OnReadStates(h, states);
    }
  }
  uint64_t NextOffsetAfter(const raft::Snapshot& s) const override {
    if constexpr (requires { replica_->NextOffsetAfter(s); }) {
      return replica_->NextOffsetAfter(s);
    } else {
      return 0;
    }
  }
  void OnStop() override { replica_->OnStop(); }
  Replica& replica() { return *replica_; }

 private:
  std::shared_ptr<Replica> replica_;
};

struct RaftHostOptions {
  int workers = 2;
  std::chrono::milliseconds tick{20};
  int election_ticks = 15;  // election timeout 300-600 ms at 20 ms ticks
  int heartbeat_ticks = 3;
  int quiesce_after_ticks = 100;
  uint64_t max_append_bytes = 1 << 20;
  int max_inflight_appends = 64;
  uint64_t max_uncommitted_bytes = 64ull << 20;
  // A quiet follower whose leader's broker sent nothing for this long wakes up (and so
  // campaigns if the leader is really gone). Every peer sends at least a keepalive frame per
  // second (TransportOptions::keepalive_time), so this must be a few of those: a shorter
  // value wakes every quiet group on each keepalive gap and undoes quiescence.
  std::chrono::milliseconds peer_silence_wake{3000};
  // Raft's async storage writes (src/raft/node.h) over LogStore::WriteAsync: a worker issues
  // its next writes while earlier ones sync, holding each group's acknowledgements until its
  // writes are durable. Off: every write is synced before the worker goes on. Measured on the
  // 3-broker bench: ~25% more throughput at ~20% less CPU per MB, the same one-record latency.
  bool async_storage_writes = true;
  // Async storage writes: a worker that was idle syncs its write itself instead of handing
  // the fsync to the store's durability thread (see ProcessReadies). Tests turn it off to
  // exercise the hand-off.
  bool idle_sync_in_place = true;
  // raft::Config::defer_commit_broadcast for groups whose GroupTiming allows it: followers
  // learn a new commit index with the next append or tick instead of from an extra message
  // round per write (with one record in flight, a third fewer thread wake-ups per write).
  bool defer_commit_broadcast = true;
};

// How one group keeps time; a zero field takes the host's value.
struct GroupTiming {
  bool quiesce = true;  // false: the group heartbeats even while idle (the metadata group)
  // false: a new commit index goes to followers at once even under
  // RaftHostOptions::defer_commit_broadcast (the metadata group: each broker acts on what it
  // applies, e.g. creates a new partition's replica, which its preferred leader is already
  // asking to vote).
  bool defer_commit = true;
  int election_ticks = 0;
  int heartbeat_ticks = 0;
};

// What a task running on a group's worker may touch.
struct GroupHandle {
  RaftGroupId id;
  raft::Node* node = nullptr;
  GroupStateMachine* state_machine = nullptr;
  storage::PartitionLog* log = nullptr;
};

class RaftHost {
 public:
  RaftHost(BrokerId self, storage::LogStore* store, RaftTransport* transport,
           RaftHostOptions options);
  ~RaftHost();  // Stop()
  RaftHost(const RaftHost&) = delete;
  RaftHost& operator=(const RaftHost&) = delete;

  void Start();
  // Stops the workers (state machines get OnStop). Idempotent.
  void Stop();

  // Starts hosting a group. A group with no stored state is bootstrapped with `initial` when
  // this broker is one of its voters (every initial voter bootstraps with the same
  // membership); otherwise it starts empty and waits for the leader to add it (as a learner).
  // A stored group resumes from its log. Asynchronous; `done` (if set) runs on the worker with the
  // outcome.
  void AddGroup(RaftGroupId id, std::unique_ptr<GroupStateMachine> state_machine,
                raft::ConfState initial, GroupTiming timing = {},
                std::function<void(Status)> done = nullptr);
  // Stops hosting a group and deletes its stored log (the partition was deleted or moved).
  void RemoveGroup(RaftGroupId id);

  // Runs fn on the group's worker; fn gets nullptr when the group is not hosted here.
  void Run(RaftGroupId id, std::function<void(GroupHandle*)> fn);
  // Runs fn, as one task per worker, for every group this broker leads that was active since
  // the last sweep: fn sees each leader at least once after anything happened to it, including
  // once after it quiesced; quiesced leaders cost nothing after that. A periodic sweep over
  // thousands of groups would otherwise wake the workers thousands of times. fn runs on several
  // workers at once (so must be thread-safe) and must not change Raft state: the groups are
  // not asked for a Ready afterwards.
  void SweepActiveLeaders(std::function<void(GroupHandle*)> fn);

  // Inbound from the transport (any thread).
  void Deliver(BrokerId from, std::vector<GroupMessage> messages);
  void Unreachable(BrokerId to, std::vector<GroupMessage> dropped);

  // Leadership of the groups hosted here: id -> (leader broker, term). Approximate (updated by
  // the workers as roles change), for Metadata answers.
  struct Leadership {
    BrokerId leader;
    uint64_t term = 0;
  };
  std::optional<Leadership> LeaderOf(RaftGroupId id) const;
  // Grows whenever some group's leader or term changes, so that a caller can skip a scan of
  // every group's leadership when nothing changed since its last one.
  uint64_t LeadershipGeneration() const {
    return leadership_generation_.load(std::memory_order_acquire);
  }
  // Groups this broker currently leads.
  std::vector<RaftGroupId> LedGroups() const;
  size_t group_count() const { return group_count_.load(); }

 private:
  struct Group;
  struct Worker;
  struct Outbox;
  struct HeldMessage;

  size_t WorkerIndex(RaftGroupId id) const;
  Worker& WorkerFor(RaftGroupId id);
  void Post(Worker& worker, std::function<void()> task);
  void WorkerLoop(Worker& worker);
  void AddGroupOnWorker(Worker& worker, RaftGroupId id, std::unique_ptr<GroupStateMachine> sm,
                        const raft::ConfState& initial, const GroupTiming& timing,
                        std::function<void(Status)> done);
  void ProcessReadies(Worker& worker);
  // Whether messages or tasks wait for the worker's next loop.
  bool WorkQueued(Worker& worker);
  // Async storage writes: whether every ticket the worker issued is durable.
  bool AllDurable(Worker& worker);
  // Async storage writes: ticket `ticket` of `worker` (and every earlier one) is durable, or
  // failed with `status`. Reports it to the Raft nodes (Release sent the messages already).
  void OnWritesDurable(Worker& worker, uint64_t ticket, const Status& status);
  // Async storage writes: queues `add` in the worker's outbox, notes that tickets through
  // `durable` are durable (or, `failed`, that some write never will be), and sends every queued
  // message whose ticket is durable. Any thread.
  void Release(Outbox& box, std::vector<HeldMessage> add, uint64_t durable, bool failed);
  void WakeQuietFollowers(Worker& worker);
  void PublishLeadership(RaftGroupId id, const raft::SoftState& soft, uint64_t term);

  const BrokerId self_;
  storage::LogStore* const store_;
  RaftTransport* const transport_;
  const RaftHostOptions options_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<bool> started_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> group_count_{0};
  // WriteAsync calls whose on_durable has not finished: Stop() waits for them, since they
  // call back into this host.
  std::mutex async_mu_;
  std::condition_variable async_cv_;
  uint64_t async_in_flight_ = 0;  // guarded by async_mu_

  mutable std::mutex leadership_mu_;
  std::unordered_map<RaftGroupId, Leadership> leadership_;  // guarded
  std::atomic<uint64_t> leadership_generation_{0};
};

}  // namespace skiff::broker
