#include "broker/raft_host.h"

#include <glog/logging.h>

#include <algorithm>
#include <deque>
#include <unordered_map>

#include "broker/raft_transport.h"
#include "common/thread_name.h"
#include "storage/partition_log.h"

namespace skiff::broker {

using Clock = std::chrono::steady_clock;

// Async storage writes: a worker that slept at least this long before a round syncs that
// round's write itself (see ProcessReadies).
constexpr auto kRestBeforeSyncInPlace = std::chrono::microseconds(500);

struct RaftHost::Group {
  RaftGroupId id;
  storage::PartitionLog* log = nullptr;
  std::unique_ptr<raft::Node> node;
  std::unique_ptr<GroupStateMachine> sm;
  raft::SoftState soft;
  uint64_t term = 0;
  // A Ready obtained but not yet durable (its write failed): retried before anything else.
  std::optional<raft::Ready> unpersisted;
  std::optional<raft::ConfState> conf_to_persist;
  bool storage_failed = false;
  GroupHandle handle;
  bool dirty = false;    // in Worker::dirty: may have a Ready this loop
  bool awake = false;    // in Worker::awake: not quiesced, so ticked
  bool unswept = false;  // in Worker::unswept
  // Async storage writes: the last entry of each write not yet reported durable, in ticket
  // order. (Its messages wait in the worker's Outbox.)
  std::deque<std::tuple<uint64_t, raft::Index, raft::Term>> not_durable;
  uint64_t last_ticket = 0;  // the last write ticket that carried this group's writes
  bool waiting = false;      // in Worker::waiting
};

// A message waiting in an Outbox.
struct RaftHost::HeldMessage {
  uint64_t ticket;  // sent once every ticket up to this one is durable
  uint64_t to;
  GroupMessage message;
};

// Async storage writes: a worker's messages waiting for a write ticket to be durable. Shared
// with the store's durability thread, which sends them as soon as the fsync returns, so an
// acknowledgement leaves without a hand-off to the worker and back.
struct RaftHost::Outbox {
  std::mutex mu;
  uint64_t durable = 0;               // guarded by mu
  bool failed = false;                // guarded by mu: a write never became durable
  std::vector<HeldMessage> messages;  // guarded by mu; in the order the worker made them
};

struct RaftHost::Worker {
  int index = 0;
  std::thread thread;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<BrokerId, std::vector<GroupMessage>>> inbox;  // guarded by mu
  std::vector<std::function<void()>> tasks;                           // guarded by mu
  bool drained = false;  // guarded by mu: stopped; Post runs tasks in the caller
  // Worker-thread only. A broker hosts thousands of mostly idle groups, so a loop touches only
  // the groups that can have work: `awake` ones are ticked, `dirty` ones (stepped, ticked, given
  // a task, or with a Ready still to persist) are asked for a Ready. Quiesced groups cost
  // nothing until a message or a task wakes them.
  std::unordered_map<RaftGroupId, std::unique_ptr<Group>> groups;
  std::vector<Group*> awake;
  std::vector<Group*> dirty;
  std::vector<Group*> retry;  // their Ready failed to persist; retried at the next tick
  // Groups touched since SweepActiveLeaders last saw them quiesced (or not leading).
  std::vector<Group*> unswept;
  // Async storage writes: tickets of this worker's WriteAsync calls (durable ones reported in
  // order), and the groups with durability reports waiting for one.
  uint64_t issued = 0;
  uint64_t durable = 0;
  std::vector<Group*> waiting;
  Outbox outbox;
  bool rested = false;  // the worker slept kRestBeforeSyncInPlace or longer before this round
  void Touch(Group* g) {
    if (!g->unswept) {
      g->unswept = true;
      unswept.push_back(g);
    }
    if (!g->dirty) {
      g->dirty = true;
      dirty.push_back(g);
    }
    if (!g->awake && !g->node->Quiesced()) {
      g->awake = true;
      awake.push_back(g);
    }
  }
  void Forget(Group* g) {
    std::erase(awake, g);
    std::erase(dirty, g);
    std::erase(retry, g);
    std::erase(waiting, g);
    std::erase(unswept, g);
  }
  void Wait(Group* g) {
    if (!g->waiting) {
      g->waiting = true;
      waiting.push_back(g);
    }
  }
  Clock::time_point next_tick;
  Clock::time_point next_wake_check;
  uint64_t wake_checks = 0;
};

RaftHost::RaftHost(BrokerId self, storage::LogStore* store, RaftTransport* transport,
                   RaftHostOptions options)
    : self_(self), store_(store), transport_(transport), options_(options) {
  const int n = std::max(1, options_.workers);
  for (int i = 0; i < n; ++i) {
    workers_.push_back(std::make_unique<Worker>());
    workers_.back()->index = i;
  }
}

RaftHost::~RaftHost() { Stop(); }

void RaftHost::Start() {
  if (started_.exchange(true)) return;
  for (auto& w : workers_) {
    Worker* worker = w.get();
    worker->next_tick = Clock::now() + options_.tick;
    worker->next_wake_check = Clock::now() + options_.peer_silence_wake;
    worker->thread = std::thread([this, worker] { WorkerLoop(*worker); });
  }
}

void RaftHost::Stop() {
  if (stopping_.exchange(true)) return;
  for (auto& w : workers_) {
    std::lock_guard lock(w->mu);
    w->cv.notify_all();
  }
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
  {
    // The store answers every WriteAsync (its durability thread syncs what is queued).
    std::unique_lock lock(async_mu_);
    async_cv_.wait(lock, [&] { return async_in_flight_ == 0; });
  }
  for (auto& w : workers_) {
    for (auto& [id, g] : w->groups) g->sm->OnStop();
    w->awake.clear();
    w->dirty.clear();
    w->retry.clear();
    w->waiting.clear();
    w->groups.clear();
    std::vector<std::function<void()>> left;
    {
      std::lock_guard lock(w->mu);
      w->drained = true;
      left.swap(w->tasks);
    }
    for (auto& task : left) task();
  }
}

size_t RaftHost::WorkerIndex(RaftGroupId id) const {
  return std::hash<uint64_t>()(id.value()) % workers_.size();
}

RaftHost::Worker& RaftHost::WorkerFor(RaftGroupId id) { return *workers_[WorkerIndex(id)]; }

void RaftHost::Post(Worker& worker, std::function<void()> task) {
  {
    std::lock_guard lock(worker.mu);
    if (!worker.drained) {
      worker.tasks.push_back(std::move(task));
      worker.cv.notify_one();
      return;
    }
  }
  task();  // the worker is gone: run here; it finds no groups and answers accordingly
}

void RaftHost::AddGroup(RaftGroupId id, std::unique_ptr<GroupStateMachine> state_machine,
                        raft::ConfState initial, GroupTiming timing,
                        std::function<void(Status)> done) {
  Worker& worker = WorkerFor(id);
  // std::function needs a copyable callable; the state machine rides in a shared_ptr.
  auto sm = std::make_shared<std::unique_ptr<GroupStateMachine>>(std::move(state_machine));
  Post(worker,
       [this, &worker, id, sm, initial = std::move(initial), timing, done = std::move(done)] {
         AddGroupOnWorker(worker, id, std::move(*sm), initial, timing, done);
       });
}

void RaftHost::AddGroupOnWorker(Worker& worker, RaftGroupId id,
                                std::unique_ptr<GroupStateMachine> sm,
                                const raft::ConfState& initial, const GroupTiming& timing,
                                std::function<void(Status)> done) {
  auto finish = [&](Status s) {
    if (!s.ok()) LOG(ERROR) << "group " << id << ": cannot start: " << s.ToString();
    if (done) done(s);
  };
  if (stopping_.load()) return finish(UnavailableError("the Raft host is stopping"));
  if (worker.groups.count(id)) return finish(Status());
  auto log = store_->Group(id);
  if (!log.ok()) return finish(log.status());
  auto g = std::make_unique<Group>();
  g->id = id;
  g->log = *log;
  g->sm = std::move(sm);
  g->term = g->log->hard_state().term;
  const bool fresh = g->log->LastIndex() == 0 && g->log->FirstIndex() == 1;

  // The state machine is rebuilt from the latest snapshot plus the committed log that follows
  // (the node re-delivers committed entries after `applied`), so it never depends on an
  // applied index persisted separately from its image.
  auto snapshot = g->log->GetSnapshot();
  if (!snapshot.ok()) return finish(snapshot.status());
  if (auto s = g->sm->Restore(*snapshot); !s.ok()) return finish(s);

  raft::Config config;
  config.id = self_.value();
  config.storage = g->log;
  config.applied = snapshot->meta.index;
  config.election_ticks =
      timing.election_ticks > 0 ? timing.election_ticks : options_.election_ticks;
  config.heartbeat_ticks =
      timing.heartbeat_ticks > 0 ? timing.heartbeat_ticks : options_.heartbeat_ticks;
  config.quiesce_after_ticks = timing.quiesce ? options_.quiesce_after_ticks : 0;
  config.max_append_bytes = options_.max_append_bytes;
  config.max_inflight_appends = options_.max_inflight_appends;
  config.max_uncommitted_bytes = options_.max_uncommitted_bytes;
  config.async_storage_writes = options_.async_storage_writes;
  config.defer_commit_broadcast = options_.defer_commit_broadcast && timing.defer_commit;
  config.seed = (self_.value() << 32) ^ id.value() ^
                static_cast<uint64_t>(Clock::now().time_since_epoch().count());
  auto node = raft::Node::Create(config);
  if (!node.ok()) return finish(node.status());
  g->node = std::move(*node);
  // Only an initial voter bootstraps. Any other replica starts empty and is brought in by the
  // leader (a learner added by a membership change receives the log from it).
  const bool initial_voter = std::find(initial.voters.begin(), initial.voters.end(),
                                       self_.value()) != initial.voters.end();
  if (fresh && initial_voter) {
    if (auto s = g->node->Bootstrap(initial); !s.ok()) return finish(s);
  }
  g->handle = GroupHandle{id, g->node.get(), g->sm.get(), g->log};
  Group* added = g.get();
  worker.groups.emplace(id, std::move(g));
  worker.Touch(added);
  group_count_.fetch_add(1);
  finish(Status());
}

void RaftHost::RemoveGroup(RaftGroupId id) {
  Worker& worker = WorkerFor(id);
  Post(worker, [this, &worker, id] {
    auto it = worker.groups.find(id);
    if (it == worker.groups.end()) return;
    it->second->sm->OnStop();
    worker.Forget(it->second.get());
    worker.groups.erase(it);
    group_count_.fetch_sub(1);
    {
      std::lock_guard lock(leadership_mu_);
      if (leadership_.erase(id) > 0) {
        leadership_generation_.fetch_add(1, std::memory_order_release);
      }
    }
    if (auto s = store_->DropGroup(id); !s.ok()) {
      LOG(ERROR) << "group " << id << ": cannot delete its log: " << s.ToString();
    }
  });
}

void RaftHost::Run(RaftGroupId id, std::function<void(GroupHandle*)> fn) {
  Worker& worker = WorkerFor(id);
  Post(worker, [&worker, id, fn = std::move(fn)] {
    auto it = worker.groups.find(id);
    if (it == worker.groups.end()) return fn(nullptr);
    fn(&it->second->handle);
    // The task may have proposed, campaigned or woken the group; it is checked this loop.
    worker.Touch(it->second.get());
  });
}

void RaftHost::SweepActiveLeaders(std::function<void(GroupHandle*)> fn) {
  auto shared_fn = std::make_shared<std::function<void(GroupHandle*)>>(std::move(fn));
  for (auto& w : workers_) {
    Worker& worker = *w;
    Post(worker, [&worker, shared_fn] {
      std::erase_if(worker.unswept, [&](Group* g) {
        const bool leading = g->soft.role == raft::Role::kLeader;
        if (leading) (*shared_fn)(&g->handle);
        // Seen quiesced: nothing changes until a message or task touches it again.
        const bool done = !leading || g->node->Quiesced();
        if (done) g->unswept = false;
        return done;
      });
    });
  }
}

void RaftHost::Deliver(BrokerId from, std::vector<GroupMessage> messages) {
  if (workers_.size() == 1) {
    Worker& w = *workers_[0];
    std::lock_guard lock(w.mu);
    w.inbox.emplace_back(from, std::move(messages));
    w.cv.notify_one();
    return;
  }
  std::vector<std::vector<GroupMessage>> per_worker(workers_.size());
  for (auto& m : messages) {
    per_worker[std::hash<uint64_t>()(m.group.value()) % workers_.size()].push_back(std::move(m));
  }
  for (size_t i = 0; i < workers_.size(); ++i) {
    if (per_worker[i].empty()) continue;
    std::lock_guard lock(workers_[i]->mu);
    workers_[i]->inbox.emplace_back(from, std::move(per_worker[i]));
    workers_[i]->cv.notify_one();
  }
}

void RaftHost::Unreachable(BrokerId to, std::vector<GroupMessage> dropped) {
  for (auto& m : dropped) {
    const bool snapshot = m.message.type == raft::MessageType::kSnapshot;
    Run(m.group, [to, snapshot](GroupHandle* g) {
      if (g == nullptr) return;
      g->node->ReportUnreachable(to.value());
      if (snapshot) g->node->ReportSnapshot(to.value(), false);
    });
  }
}

std::optional<RaftHost::Leadership> RaftHost::LeaderOf(RaftGroupId id) const {
  std::lock_guard lock(leadership_mu_);
  auto it = leadership_.find(id);
  if (it == leadership_.end()) return std::nullopt;
  return it->second;
}

std::vector<RaftGroupId> RaftHost::LedGroups() const {
  std::lock_guard lock(leadership_mu_);
  std::vector<RaftGroupId> out;
  for (const auto& [id, l] : leadership_) {
    if (l.leader == self_) out.push_back(id);
  }
  return out;
}

void RaftHost::PublishLeadership(RaftGroupId id, const raft::SoftState& soft, uint64_t term) {
  std::lock_guard lock(leadership_mu_);
  const Leadership now{BrokerId(soft.leader), term};
  auto [it, inserted] = leadership_.try_emplace(id, now);
  if (!inserted && it->second.leader == now.leader && it->second.term == now.term) return;
  it->second = now;
  leadership_generation_.fetch_add(1, std::memory_order_release);
}

void RaftHost::WorkerLoop(Worker& worker) {
  SetThreadName("raft-worker-" + std::to_string(worker.index));
  std::vector<std::pair<BrokerId, std::vector<GroupMessage>>> inbox;
  std::vector<std::function<void()>> tasks;
  while (!stopping_.load()) {
    {
      // With every group quiet there is nothing to tick: sleep until the next check for
      // silent leaders (or until work arrives) instead of waking at every tick.
      const bool idle = worker.awake.empty() && worker.retry.empty();
      const auto wait_start = Clock::now();
      std::unique_lock lock(worker.mu);
      worker.cv.wait_until(lock, idle ? worker.next_wake_check : worker.next_tick, [&] {
        return stopping_.load() || !worker.inbox.empty() || !worker.tasks.empty() ||
               !worker.dirty.empty();
      });
      worker.rested = Clock::now() - wait_start >= kRestBeforeSyncInPlace;
      if (stopping_.load()) break;  // leave the tasks queued: Stop() runs them with no groups
      inbox.swap(worker.inbox);
      tasks.swap(worker.tasks);
    }
    for (auto& [from, messages] : inbox) {
      for (auto& gm : messages) {
        auto it = worker.groups.find(gm.group);
        // A group this broker does not host (yet): the metadata that creates it may still be
        // on its way. Dropping is safe; the leader retransmits.
        if (it == worker.groups.end()) continue;
        const Status stepped = it->second->node->Step(gm.message);
        // After Step: a message may have woken a quiesced group, which must now be ticked.
        worker.Touch(it->second.get());
        if (auto s = stepped; !s.ok()) {
          LOG_EVERY_N(WARNING, 100) << "group " << gm.group << ": bad message from broker " << from
                                    << ": " << s.ToString();
        }
      }
    }
    inbox.clear();
    for (auto& task : tasks) task();
    tasks.clear();

    const auto now = Clock::now();
    if (now >= worker.next_tick) {
      // Drop the groups that went quiet since the last tick, tick the rest.
      std::erase_if(worker.awake, [](Group* g) {
        if (!g->node->Quiesced()) return false;
        g->awake = false;
        return true;
      });
      for (Group* g : worker.retry) {
        if (!g->dirty) {
          g->dirty = true;
          worker.dirty.push_back(g);
        }
      }
      worker.retry.clear();
      for (Group* g : worker.awake) {
        g->node->Tick();
        if (!g->dirty) {
          g->dirty = true;
          worker.dirty.push_back(g);
        }
      }
      worker.next_tick = now + options_.tick;
    }
    if (now >= worker.next_wake_check) {
      WakeQuietFollowers(worker);
      worker.next_wake_check = now + options_.peer_silence_wake / 2;
    }
    ProcessReadies(worker);
  }
}

void RaftHost::WakeQuietFollowers(Worker& worker) {
  // A follower quiesces only on a heartbeat from its leader, so its leader's broker is one the
  // transport heard from: while none of those is silent, no quiet follower needs waking and
  // the scan over every group is skipped. Every tenth check scans anyway, in case a group's
  // leader was never heard by the transport.
  if (++worker.wake_checks % 10 != 0 && !transport_->AnyPeerSilentFor(options_.peer_silence_wake)) {
    return;
  }
  const auto now = Clock::now();
  // Whether each leader broker went silent, asked of the transport once per broker (not once
  // per group: thousands of quiet groups share a handful of leaders).
  std::unordered_map<raft::NodeId, bool> silent;
  for (auto& [id, g] : worker.groups) {
    if (!g->node->Quiesced() || g->soft.role == raft::Role::kLeader) continue;
    const raft::NodeId leader = g->node->Leader();
    if (leader == raft::kNoNode) {
      g->node->Wake();
      worker.Touch(g.get());
      continue;
    }
    auto [known, inserted] = silent.try_emplace(leader, false);
    if (inserted) {
      auto heard = transport_->LastReceived(BrokerId(leader));
      known->second = !heard || now - *heard > options_.peer_silence_wake;
    }
    if (known->second) {
      g->node->Wake();
      worker.Touch(g.get());
    }
  }
}

void RaftHost::ProcessReadies(Worker& worker) {
  struct Pending {
    Group* group;
    raft::Ready ready;
  };
  std::vector<Pending> pending;
  std::vector<storage::GroupWrite> writes;
  std::vector<Group*> candidates;
  candidates.swap(worker.dirty);
  for (Group* group : candidates) {
    group->dirty = false;
    const RaftGroupId id = group->id;
    if (!group->unpersisted) {
      if (!group->node->HasReady() && !group->conf_to_persist) continue;
      group->unpersisted = group->node->HasReady() ? group->node->GetReady() : raft::Ready{};
    }
    raft::Ready& rd = *group->unpersisted;
    storage::GroupWrite w;
    w.group = id;
    if (rd.snapshot) {
      w.snapshot = storage::SnapshotWrite{*rd.snapshot, group->sm->NextOffsetAfter(*rd.snapshot)};
    }
    w.entries = rd.entries;
    w.hard_state = rd.hard_state;
    w.conf_state = group->conf_to_persist;
    w.must_sync = rd.must_sync;
    writes.push_back(std::move(w));
    pending.push_back(Pending{group, std::move(rd)});
    group->unpersisted.reset();
  }
  if (pending.empty()) return;

  // A leader's replication traffic goes out BEFORE its own write (Raft thesis 10.2.1): it
  // promises nothing about the leader's disk, and the node counts the leader's own entries
  // towards the commit quorum only after Advance. So the followers' fsyncs overlap the
  // leader's instead of following it. Every other message (votes, acknowledgements) still
  // waits for the write, as node.h requires.
  {
    std::unordered_map<uint64_t, std::vector<GroupMessage>> early;
    for (auto& p : pending) {
      // A Ready that changes the term (a lone voter elects itself in one Ready) must make the
      // new term durable before anything of that term leaves.
      if (p.ready.hard_state && p.ready.hard_state->term != p.group->term) continue;
      auto& messages = p.ready.messages;
      auto late = std::stable_partition(messages.begin(), messages.end(), [](const auto& m) {
        return m.type == raft::MessageType::kAppend || m.type == raft::MessageType::kHeartbeat ||
               m.type == raft::MessageType::kSnapshot;
      });
      for (auto it = messages.begin(); it != late; ++it) {
        early[it->to].push_back(GroupMessage{p.group->id, std::move(*it)});
      }
      messages.erase(messages.begin(), late);
    }
    for (auto& [to, messages] : early) transport_->Send(BrokerId(to), std::move(messages));
  }

  // Async storage writes: the groups whose write must be durable before their messages go
  // (new entries, a vote, a snapshot: Ready::must_sync) take this round's ticket; every group's
  // messages then wait for its last ticket to be durable (node.h). A round that only records
  // commit indexes and the like is written without a ticket or an fsync: it promises nothing.
  const bool async = options_.async_storage_writes;
  std::vector<bool> wrote(pending.size(), false);  // took this round's ticket
  uint64_t ticket = 0;
  uint64_t synced_through = 0;  // async: every ticket through this one is durable now
  Status written;
  if (!async) {
    written = store_->Write(writes);
  } else {
    std::vector<storage::GroupWrite> to_write;
    bool needs_sync = false;
    for (size_t i = 0; i < writes.size(); ++i) {
      const storage::GroupWrite& w = writes[i];
      if (!w.snapshot && w.entries.empty() && !w.hard_state && !w.conf_state) continue;
      wrote[i] = w.must_sync;
      needs_sync = needs_sync || w.must_sync;
      to_write.push_back(std::move(writes[i]));
    }
    // A worker under light load has nothing to overlap an fsync with: syncing in place saves
    // the hand-off to the store's durability thread and back, most of what async writes add
    // to one record's round trip. A synced write makes every earlier write of the WAL durable,
    // so it settles the earlier tickets too. Under load (the worker did not rest, work is
    // queued, or an fsync is in flight) the worker goes on and the fsync overlaps its work:
    // measured, syncing in place whenever nothing was queued cost a fifth of the throughput.
    const bool sync_in_place = needs_sync && options_.idle_sync_in_place && worker.rested &&
                               !WorkQueued(worker) && AllDurable(worker);
    if (to_write.empty()) {
      // Nothing to persist: the messages wait only for earlier tickets.
    } else if (!needs_sync || sync_in_place) {
      written = store_->Write(to_write);  // synced iff needs_sync
      if (written.ok() && sync_in_place) {
        ticket = ++worker.issued;
        synced_through = ticket;
      }
    } else {
      ticket = worker.issued + 1;
      {
        std::lock_guard lock(async_mu_);
        ++async_in_flight_;
      }
      written = store_->WriteAsync(to_write, [this, &worker, ticket](Status durable) {
        Release(worker.outbox, {}, durable.ok() ? ticket : 0, !durable.ok());
        Post(worker,
             [this, &worker, ticket, durable] { OnWritesDurable(worker, ticket, durable); });
        std::lock_guard lock(async_mu_);
        if (--async_in_flight_ == 0) async_cv_.notify_all();
      });
      if (written.ok()) {
        worker.issued = ticket;
      } else {
        std::lock_guard lock(async_mu_);
        if (--async_in_flight_ == 0) async_cv_.notify_all();
      }
    }
  }
  if (!written.ok()) {
    LOG_EVERY_N(ERROR, 50) << "worker " << worker.index << ": persisting " << pending.size()
                           << " groups failed: " << written.ToString();
    for (auto& p : pending) {
      if (!p.group->storage_failed) {
        p.group->sm->OnStorageStatus(written);
        // Until it can write again this replica takes no part in its group (its votes, acks
        // and heartbeats wait on the write), so it must not keep advertising a leadership it
        // has most likely lost, or a leader it can no longer follow.
        PublishLeadership(p.group->id, raft::SoftState{}, p.group->term);
      }
      p.group->storage_failed = true;
      p.group->unpersisted = std::move(p.ready);
      // Retried at the next tick, not in a busy loop against a full disk.
      worker.retry.push_back(p.group);
    }
    return;
  }

  std::unordered_map<uint64_t, std::vector<GroupMessage>> outbound;
  std::vector<HeldMessage> held;
  for (auto& p : pending) {
    Group* g = p.group;
    raft::Ready& rd = p.ready;
    g->conf_to_persist.reset();
    if (g->storage_failed) {
      g->storage_failed = false;
      g->sm->OnStorageStatus(Status());
      PublishLeadership(g->id, g->soft, g->term);
      g->sm->OnSoftState(g->soft, g->term);
    }
    if (rd.hard_state) g->term = rd.hard_state->term;
    if (rd.soft_state && !rd.hard_state) g->term = g->node->GetStatus().hard_state.term;
    if (rd.soft_state) {
      g->soft = *rd.soft_state;
      PublishLeadership(g->id, g->soft, g->term);
      g->sm->OnSoftState(g->soft, g->term);
    } else if (rd.hard_state) {
      PublishLeadership(g->id, g->soft, g->term);
    }
    const size_t i = static_cast<size_t>(&p - pending.data());
    if (wrote[i]) g->last_ticket = ticket;
    if (async) {
      // Even a Ready that wrote nothing waits for this group's last write: its
      // acknowledgements may speak of entries that write holds (node.h).
      for (auto& m : rd.messages) {
        held.push_back({g->last_ticket, m.to, GroupMessage{g->id, std::move(m)}});
      }
    } else {
      for (auto& m : rd.messages) {
        outbound[m.to].push_back(GroupMessage{g->id, std::move(m)});
      }
    }
    if (!rd.entries.empty()) {
      if (async) {
        g->not_durable.emplace_back(ticket, rd.entries.back().index, rd.entries.back().term);
        worker.Wait(g);
      } else {
        g->sm->OnPersisted(rd.entries.back().index, rd.entries.back().term);
      }
    }
    if (rd.snapshot) {
      if (auto s = g->sm->Restore(*rd.snapshot); !s.ok()) {
        LOG(FATAL) << "group " << g->id << ": cannot restore snapshot: " << s.ToString();
      }
    }
    for (const auto& e : rd.committed_entries) {
      if (e.type == raft::EntryType::kConfChange) {
        if (auto cc = raft::DecodeConfChange(e.data.view())) {
          g->conf_to_persist = g->node->ApplyConfChange(*cc, e.index);
        }
      }
      g->sm->Apply(e);
    }
    if (!rd.committed_entries.empty()) g->sm->OnAppliedBatch();
    g->node->Advance(rd);
    // After Advance: answering a read state may propose (a confirmed produce).
    if (!rd.read_states.empty()) g->sm->OnReadStates(&g->handle, rd.read_states);
    // More may be ready at once (e.g. committed entries beyond the last batch's size limit).
    if (g->node->HasReady() || g->conf_to_persist) worker.Touch(g);
  }
  for (auto& [to, messages] : outbound) {
    transport_->Send(BrokerId(to), std::move(messages));
  }
  if (!held.empty() || synced_through > 0) {
    Release(worker.outbox, std::move(held), synced_through, false);
  }
  if (synced_through > 0) OnWritesDurable(worker, synced_through, Status());
}

bool RaftHost::WorkQueued(Worker& worker) {
  std::lock_guard lock(worker.mu);
  return !worker.inbox.empty() || !worker.tasks.empty();
}

bool RaftHost::AllDurable(Worker& worker) {
  std::lock_guard lock(worker.outbox.mu);
  return worker.outbox.durable >= worker.issued;
}

void RaftHost::Release(Outbox& box, std::vector<HeldMessage> add, uint64_t durable, bool failed) {
  std::unordered_map<uint64_t, std::vector<GroupMessage>> outbound;
  std::lock_guard lock(box.mu);
  box.durable = std::max(box.durable, durable);
  box.failed = box.failed || failed;
  for (auto& e : add) box.messages.push_back(std::move(e));
  size_t kept = 0;
  for (auto& e : box.messages) {
    if (e.ticket <= box.durable) {
      outbound[e.to].push_back(std::move(e.message));
    } else if (!box.failed) {
      // Per group, tickets never decrease in insertion order, so skipping the entries that must
      // wait never lets a group's later message overtake an earlier one.
      if (&box.messages[kept] != &e) box.messages[kept] = std::move(e);
      ++kept;
    }
    // else: it waits for a write that will never be durable (the broker fences itself).
  }
  box.messages.resize(kept);
  // Sent under the lock: the worker and the durability thread may both release, and each
  // group's messages must reach the transport in order.
  for (auto& [to, messages] : outbound) transport_->Send(BrokerId(to), std::move(messages));
}

void RaftHost::OnWritesDurable(Worker& worker, uint64_t ticket, const Status& status) {
  if (!status.ok()) {
    // The store refuses writes until a restart: what waited for this write will never be
    // durable. Drop it; the broker fences itself (Broker::ReportFatalStorageError).
    LOG_EVERY_N(ERROR, 50) << "worker " << worker.index
                           << ": a write did not become durable: " << status.ToString();
    for (Group* g : worker.waiting) {
      g->not_durable.clear();
      g->waiting = false;
      if (!g->storage_failed) {
        g->storage_failed = true;
        g->sm->OnStorageStatus(status);
        PublishLeadership(g->id, raft::SoftState{}, g->term);
      }
    }
    worker.waiting.clear();
    return;
  }
  worker.durable = std::max(worker.durable, ticket);
  std::erase_if(worker.waiting, [&](Group* g) {
    bool reported = false;
    while (!g->not_durable.empty() && std::get<0>(g->not_durable.front()) <= worker.durable) {
      const auto [t, index, term] = g->not_durable.front();
      g->node->OnDurable(index, term);
      g->sm->OnPersisted(index, term);
      g->not_durable.pop_front();
      reported = true;
    }
    // A leader may commit now that its own entries count.
    if (reported) worker.Touch(g);
    g->waiting = !g->not_durable.empty();
    return !g->waiting;
  });
}

}  // namespace skiff::broker
