#include "broker/broker.h"

#include <glog/logging.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <algorithm>
#include <future>
#include <set>

#include "broker/partition_entry.h"
#include "broker/services.h"
#include "broker/validation.h"
#include "common/thread_name.h"
#include "skiff/internal/control.grpc.pb.h"
#include "storage/partition_log.h"

namespace skiff::broker {
namespace {

using Clock = std::chrono::steady_clock;

// Waits for a worker-thread callback, up to a deadline; the callback may fire after we gave up.
template <typename T>
class Rendezvous {
 public:
  Rendezvous() : state_(std::make_shared<State>()) {}
  std::function<void(T)> Callback() {
    return [state = state_](T value) {
      std::lock_guard lock(state->mu);
      if (state->value) return;
      state->value.emplace(std::move(value));
      state->cv.notify_all();
    };
  }
  std::optional<T> Wait(Clock::time_point deadline) {
    std::unique_lock lock(state_->mu);
    state_->cv.wait_until(lock, deadline, [&] { return state_->value.has_value(); });
    return std::move(state_->value);
  }

 private:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<T> value;
  };
  std::shared_ptr<State> state_;
};

// Leadership moved or is being settled: the command may succeed at the (new) leader.
bool IsRetriableAtLeader(const Status& s) {
  return s.code() == StatusCode::kAborted || s.code() == StatusCode::kUnavailable;
}

// gRPC sets SO_REUSEPORT on listening sockets by default, so a second broker started on a
// port already in use would listen next to the first and the kernel would split connections
// between the two. Refuse the port instead: the second broker fails to start, naming it.
void ListenExclusively(grpc::ServerBuilder& builder) {
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
}

}  // namespace

Broker::Broker(BrokerOptions options, BrokerTuning tuning)
    : options_(std::move(options)), tuning_(tuning), id_(BrokerId(options_.broker_id)) {}

Broker::~Broker() { Shutdown(std::chrono::milliseconds(0)); }

Result<std::unique_ptr<Broker>> Broker::Start(BrokerOptions options, BrokerTuning tuning) {
  std::unique_ptr<Broker> broker(new Broker(std::move(options), tuning));
  if (auto s = broker->Init(); !s.ok()) {
    broker->Shutdown(std::chrono::milliseconds(0));
    return s;
  }
  return broker;
}

Status Broker::Init() {
  storage::LogStoreOptions store_options = tuning_.storage;
  // Partition entries are record batches; the metadata group's entries hold commands and take
  // no offsets (nobody reads group 0 by offset).
  store_options.classifier = [](const raft::Entry& e) { return ClassifyPartitionEntry(e); };
  auto store = storage::LogStore::Open(options_.data_dir + "/log", store_options);
  if (!store.ok()) return store.status();
  store_ = std::move(*store);

  transport_ = std::make_unique<RaftTransport>(
      id_, TransportOptions{},
      [this](BrokerId from, std::vector<GroupMessage> messages) {
        if (host_) host_->Deliver(from, std::move(messages));
      },
      [this](BrokerId to, std::vector<GroupMessage> dropped) {
        if (host_) host_->Unreachable(to, std::move(dropped));
      });
  for (const auto& voter : options_.metadata_voters) {
    if (voter.broker_id != options_.broker_id) {
      transport_->SetPeerAddress(BrokerId(voter.broker_id), voter.raft_address);
    }
  }
  host_ = std::make_unique<RaftHost>(id_, store_.get(), transport_.get(), tuning_.host);

  // Inter-broker server first: peers may talk to us as soon as the groups start.
  {
    grpc::ServerBuilder builder;
    RaftTransport::ConfigureServerBuilder(builder);
    ListenExclusively(builder);
    builder.AddListeningPort(options_.raft_address, grpc::InsecureServerCredentials(), &raft_port_);
    builder.RegisterService(transport_->service());
    services_.push_back(MakeControlService(this));
    builder.RegisterService(services_.back().get());
    raft_server_ = builder.BuildAndStart();
    if (!raft_server_ || raft_port_ == 0) {
      return UnavailableError("cannot listen on " + options_.raft_address +
                              " (in use by another process?)");
    }
  }

  host_->Start();
  metadata_ = std::make_shared<MetadataReplica>(
      id_, [this](MetadataView view) { OnMetadataChange(std::move(view)); });
  raft::ConfState voters;
  for (const auto& v : options_.metadata_voters) voters.voters.push_back(v.broker_id);
  std::sort(voters.voters.begin(), voters.voters.end());
  Rendezvous<Status> added;
  host_->AddGroup(kMetadataGroup, metadata_->MakeStateMachine(metadata_), voters,
                  GroupTiming{.quiesce = false,
                              .defer_commit = false,
                              .election_ticks = tuning_.metadata_election_ticks,
                              .heartbeat_ticks = tuning_.metadata_heartbeat_ticks},
                  added.Callback());
  auto status = added.Wait(Clock::now() + std::chrono::seconds(60));
  if (!status) return UnavailableError("metadata group did not start within 60 s");
  if (!status->ok()) return *status;

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(kMaxFetchBytes + (1 << 20));
  builder.SetMaxSendMessageSize(kMaxFetchBytes + (1 << 20));
  ListenExclusively(builder);
  builder.AddListeningPort(options_.client_address, grpc::InsecureServerCredentials(),
                           &client_port_);
  for (auto& service : MakeClientServices(this)) {
    builder.RegisterService(service.get());
    services_.push_back(std::move(service));
  }
  client_server_ = builder.BuildAndStart();
  if (!client_server_ || client_port_ == 0) {
    return UnavailableError("cannot listen on " + options_.client_address +
                            " (in use by another process?)");
  }
  if (auto* health = client_server_->GetHealthCheckService()) {
    for (const char* service : {"skiff.v1.ProduceService", "skiff.v1.FetchService",
                                "skiff.v1.MetadataService", "skiff.v1.AdminService"}) {
      health->SetServingStatus(service, true);
    }
    // Consumer groups are not built yet.
    health->SetServingStatus("skiff.v1.GroupService", false);
  }
  maintenance_ = std::thread([this] { MaintenanceLoop(); });
  LOG(INFO) << "broker " << id_ << " serving clients on " << options_.client_address
            << ", peers on " << options_.raft_address;
  return Status();
}

void Broker::Shutdown(std::chrono::milliseconds transfer_budget) {
  if (stopping_.exchange(true)) return;
  const auto deadline = Clock::now() + transfer_budget;
  if (host_ && transfer_budget.count() > 0) {
    // Hand every leadership to the most caught-up other replica, so clients fail over in one
    // round trip instead of an election timeout.
    const std::vector<RaftGroupId> led = host_->LedGroups();
    auto visited = std::make_shared<std::atomic<size_t>>(0);
    auto transferring = std::make_shared<std::atomic<size_t>>(0);
    for (RaftGroupId group : led) {
      host_->Run(group, [self = id_, visited, transferring](GroupHandle* g) {
        if (g != nullptr && g->node->IsLeader()) {
          raft::NodeStatus status = g->node->GetStatus();
          raft::NodeId best = raft::kNoNode;
          raft::Index best_match = 0;
          for (auto [node, match] : status.match) {
            if (node == self.value()) continue;
            if (best == raft::kNoNode || match > best_match) {
              best = node;
              best_match = match;
            }
          }
          if (best != raft::kNoNode && g->node->TransferLeadership(best).ok()) {
            transferring->fetch_add(1);
          }
        }
        visited->fetch_add(1);
      });
    }
    while (Clock::now() < deadline && visited->load() < led.size()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    // Counted among the groups led at the start: brokers stopping at the same time may hand
    // theirs to this one meanwhile, which it does not wait for.
    auto still_led = [&] {
      const std::vector<RaftGroupId> now = host_->LedGroups();
      const std::set<RaftGroupId> now_set(now.begin(), now.end());
      size_t n = 0;
      for (RaftGroupId group : led) n += now_set.count(group);
      return n;
    };
    // Groups with no other replica keep their (only) leader; wait for the others to move.
    const size_t stay = led.size() - transferring->load();
    while (Clock::now() < deadline && still_led() > stay) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    LOG(INFO) << "broker " << id_ << ": handed over " << led.size() - still_led() << " of "
              << led.size() << " leaderships before stopping";
  }
  {
    std::lock_guard lock(stop_mu_);
    stop_cv_.notify_all();
  }
  if (maintenance_.joinable()) maintenance_.join();
  // Stop the groups first: every waiting produce is answered (NOT_LEADER, retriable) and every
  // long poll wakes, so the client server's shutdown does not wait out request timeouts.
  if (host_) host_->Stop();
  {
    std::shared_lock lock(partitions_mu_);
    for (auto& [id, p] : partitions_) p->Close();
  }
  const auto grace = std::chrono::system_clock::now() + std::chrono::milliseconds(500);
  if (client_server_) client_server_->Shutdown(grace);
  if (raft_server_)
    raft_server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
  if (transport_) transport_->Stop();
  LOG(INFO) << "broker " << id_ << " stopped";
}

void Broker::OnMetadataChange(MetadataView view) {
  // Runs on the metadata group's worker: start the groups of partitions placed here, drop the
  // groups of partitions that are gone (a topic deleted). Groups only appear through applied
  // metadata, so during a restart's replay nothing is dropped that the log still holds.
  std::set<RaftGroupId> desired;
  std::vector<HostedPartition> hosted = view->PartitionsOf(id_.value());
  std::vector<std::shared_ptr<PartitionReplica>> removed;
  {
    std::unique_lock lock(partitions_mu_);
    for (const auto& p : hosted) {
      desired.insert(p.group);
      if (auto it = partitions_.find(p.group); it != partitions_.end()) {
        it->second->SetRetention(p.config.retention_ms(), p.config.retention_bytes());
        continue;
      }
      auto log = store_->Group(p.group);
      if (!log.ok()) {
        LOG(ERROR) << "partition " << p.topic << "/" << p.partition
                   << ": cannot open its log: " << log.status().ToString();
        continue;
      }
      auto replica = std::make_shared<PartitionReplica>(p.topic, p.partition, p.group, id_, *log);
      replica->SetRetention(p.config.retention_ms(), p.config.retention_bytes());
      raft::ConfState conf;
      conf.voters.assign(p.replicas.begin(), p.replicas.end());
      std::sort(conf.voters.begin(), conf.voters.end());
      host_->AddGroup(p.group, replica->MakeStateMachine(replica), conf);
      if (!p.replicas.empty() && p.replicas.front() == options_.broker_id) {
        // The preferred leader (placement spreads them evenly) of a brand-new partition
        // campaigns at once instead of leaving it to whichever replica times out first.
        host_->Run(p.group, [](GroupHandle* g) {
          if (g != nullptr && g->log->LastIndex() <= 1 && !g->node->IsLeader()) {
            g->node->Campaign();
          }
        });
      }
      partitions_.emplace(p.group, replica);
    }
    for (auto it = partitions_.begin(); it != partitions_.end();) {
      if (desired.count(it->first)) {
        ++it;
        continue;
      }
      removed.push_back(it->second);
      host_->RemoveGroup(it->first);
      it = partitions_.erase(it);
    }
  }
  for (auto& r : removed) r->Close();
  for (const auto& b : view->brokers()) {
    if (b.id != options_.broker_id && !b.raft_address.empty()) {
      transport_->SetPeerAddress(BrokerId(b.id), b.raft_address);
    }
  }
}

Result<PartitionRef> Broker::FindPartition(std::string_view topic, int32_t partition) const {
  MetadataView view = metadata_->view();
  const TopicRecord* t = view->topic(topic);
  if (t == nullptr) return NotFoundError("unknown topic '" + std::string(topic) + "'");
  if (partition < 0 || partition >= static_cast<int32_t>(t->partitions.size())) {
    return NotFoundError("topic '" + std::string(topic) + "' has " +
                         std::to_string(t->partitions.size()) + " partitions; no partition " +
                         std::to_string(partition));
  }
  const PartitionRecord& p = t->partitions[partition];
  PartitionRef ref;
  ref.group = p.group;
  ref.replicas = p.replicas;
  ref.config = EffectiveTopicConfig(t->config, static_cast<int32_t>(p.replicas.size()));
  ref.reported_leader = p.leader;
  ref.reported_leader_term = p.leader_term;
  std::shared_lock lock(partitions_mu_);
  if (auto it = partitions_.find(p.group); it != partitions_.end()) ref.replica = it->second;
  return ref;
}

int64_t Broker::PartitionLeader(RaftGroupId group, uint64_t* term) const {
  auto l = host_->LeaderOf(group);
  if (!l) return -1;
  if (term) *term = l->term;
  return l->leader.value() == 0 ? -1 : static_cast<int64_t>(l->leader.value());
}

int64_t Broker::ReportedLeader(RaftGroupId group, int64_t leader, uint64_t leader_term,
                               uint64_t* term) const {
  if (host_->LeaderOf(group)) return PartitionLeader(group, term);
  if (leader <= 0) return -1;
  MetadataView view = metadata_->view();
  const BrokerRecord* b = view->broker(leader);
  if (b == nullptr || !b->alive) return -1;
  if (term) *term = leader_term;
  return leader;
}

int64_t Broker::PartitionLeader(const PartitionRecord& partition, uint64_t* term) const {
  return ReportedLeader(partition.group, partition.leader, partition.leader_term, term);
}

int64_t Broker::PartitionLeader(const PartitionRef& partition, uint64_t* term) const {
  return ReportedLeader(partition.group, partition.reported_leader, partition.reported_leader_term,
                        term);
}

void Broker::SnapshotMetadata() {
  host_->Run(kMetadataGroup, [this](GroupHandle* g) {
    if (g == nullptr) return;
    auto taken = metadata_->MaybeSnapshot(g, tuning_.metadata_snapshot_entries,
                                          tuning_.metadata_log_keep_entries);
    if (!taken.ok()) {
      LOG_EVERY_N(WARNING, 20) << "broker " << id_
                               << ": metadata snapshot: " << taken.status().ToString();
    }
  });
}

std::vector<int64_t> Broker::PartitionInSync(const PartitionRecord& partition) const {
  std::shared_ptr<PartitionReplica> replica;
  {
    std::shared_lock lock(partitions_mu_);
    if (auto it = partitions_.find(partition.group); it != partitions_.end()) replica = it->second;
  }
  if (replica && replica->is_leader()) return replica->in_sync();
  const int64_t leader = PartitionLeader(partition);
  if (leader > 0 && leader == partition.leader) return partition.in_sync;
  return {};
}

void Broker::ReportLeaderships(const MetadataView& view) {
  // Reports are hints and are repeated until recorded: with no metadata leader known, wait for
  // one rather than hold the maintenance thread (liveness, learners) on a proposal timeout.
  if (metadata_->leader() <= 0) return;
  // A scan reads every partition's leadership; with thousands of idle partitions it is most
  // of an idle broker's CPU. Skip it while nothing it reads has changed since a scan that had
  // nothing (more) to report, but rescan now and then in case a report was lost.
  const ReportInputs inputs{view, host_->LeadershipGeneration(),
                            in_sync_generation_.load(std::memory_order_acquire)};
  const auto now = Clock::now();
  if (inputs == last_report_inputs_ && now < next_forced_report_) return;
  next_forced_report_ = now + tuning_.leadership_rescan_interval;
  last_report_inputs_ = {};
  internal::MetadataCommand command;
  auto* report = command.mutable_report_leaders();
  report->set_broker_id(options_.broker_id);
  for (const TopicRecord* t : view->topics()) {
    for (const PartitionRecord& p : t->partitions) {
      uint64_t term = 0;
      if (PartitionLeader(p.group, &term) != options_.broker_id || term < p.leader_term ||
          (term == p.leader_term && p.leader != options_.broker_id)) {
        continue;
      }
      std::vector<int64_t> in_sync;
      {
        std::shared_lock lock(partitions_mu_);
        if (auto it = partitions_.find(p.group); it != partitions_.end()) {
          in_sync = it->second->in_sync();
        }
      }
      std::sort(in_sync.begin(), in_sync.end());
      // Unchanged, or not computed yet for this leadership: nothing to report.
      const bool recorded = term == p.leader_term && p.leader == options_.broker_id;
      if (recorded && (in_sync.empty() || in_sync == p.in_sync)) continue;
      auto* l = report->add_leaderships();
      l->set_group(p.group.value());
      l->set_term(term);
      for (int64_t r : in_sync) l->add_in_sync(r);
    }
  }
  if (report->leaderships().empty()) {
    last_report_inputs_ = inputs;
    return;
  }
  // Once recorded, the view changes and the next scan confirms there is nothing left.
  auto r = ProposeMetadata(command, std::chrono::milliseconds(2000));
  if (!r.ok()) {
    LOG_EVERY_N(WARNING, 10) << "broker " << id_ << ": reporting " << report->leaderships_size()
                             << " leaderships: " << r.status().ToString();
  }
}

std::string Broker::ClientAddressOf(int64_t broker) const {
  if (broker == options_.broker_id) return options_.client_address;
  MetadataView view = metadata_->view();
  const BrokerRecord* b = view->broker(broker);
  return b ? b->client_address : "";
}

std::string Broker::RaftAddressOf(int64_t broker) const {
  if (broker == options_.broker_id) return options_.raft_address;
  MetadataView view = metadata_->view();
  if (const BrokerRecord* b = view->broker(broker); b && !b->raft_address.empty()) {
    return b->raft_address;
  }
  for (const auto& v : options_.metadata_voters) {
    if (v.broker_id == broker) return v.raft_address;
  }
  return "";
}

Result<internal::MetadataResult> Broker::ProposeMetadataLocally(internal::MetadataCommand command,
                                                                std::chrono::milliseconds timeout) {
  Rendezvous<Result<internal::MetadataResult>> outcome;
  host_->Run(kMetadataGroup, [this, command = std::move(command),
                              done = outcome.Callback()](GroupHandle* g) mutable {
    if (g == nullptr) return done(UnavailableError("metadata group not running"));
    metadata_->Propose(g, std::move(command), std::move(done));
  });
  auto result = outcome.Wait(Clock::now() + timeout);
  if (!result) return UnavailableError("metadata command did not commit within the timeout");
  return std::move(*result);
}

Result<internal::MetadataResult> Broker::ProposeMetadata(internal::MetadataCommand command,
                                                         std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  Status last = UnavailableError("no metadata leader is known");
  int64_t hint = -1;
  for (int attempt = 0; attempt < 50 && Clock::now() < deadline; ++attempt) {
    int64_t leader = hint > 0 ? hint : metadata_->leader();
    hint = -1;
    if (leader <= 0) {
      // A broker that has not heard from the metadata group yet (a new learner, or during an
      // election) asks the initial voters in turn; a non-leader answers with the leader.
      const auto& voters = options_.metadata_voters;
      leader = voters[attempt % voters.size()].broker_id;
    }
    const auto remaining =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (leader == options_.broker_id) {
      auto r = ProposeMetadataLocally(command, remaining);
      if (r.ok() || !IsRetriableAtLeader(r.status())) return r;
      last = r.status();
    } else if (leader > 0) {
      const std::string address = RaftAddressOf(leader);
      if (!address.empty()) {
        auto stub = internal::BrokerControl::NewStub(ControlChannel(address));
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + remaining);
        internal::ProposeMetadataRequest request;
        *request.mutable_command() = command;
        internal::ProposeMetadataResponse response;
        grpc::Status rpc = stub->ProposeMetadata(&ctx, request, &response);
        if (rpc.ok()) {
          if (response.code() == 0) return response.result();
          Status s(static_cast<StatusCode>(response.code()), response.message());
          if (!IsRetriableAtLeader(s)) return s;
          last = s;
          hint = response.leader();
        } else {
          last = UnavailableError("metadata leader " + std::to_string(leader) + " at " + address +
                                  ": " + rpc.error_message());
        }
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(50 * (attempt + 1), 300)));
  }
  return last;
}

std::shared_ptr<grpc::Channel> Broker::ControlChannel(const std::string& address) {
  std::lock_guard lock(channels_mu_);
  auto& channel = channels_[address];
  if (!channel) {
    grpc::ChannelArguments args;
    // gRPC's default reconnect backoff grows to 120 s; a metadata leader that restarted must be
    // reachable again within about a second. (gRPC reads MIN_RECONNECT_BACKOFF as the connect
    // timeout.)
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 2000);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  }
  return channel;
}

void Broker::ReportFatalStorageError() {
  if (storage_failure_reported_) return;
  Status fatal = store_->FatalWriteError();
  if (fatal.ok()) return;
  storage_failure_reported_ = true;
  LOG(ERROR) << "broker " << id_ << ": storage refuses writes until restart: " << fatal.ToString();
  if (auto* health = client_server_->GetHealthCheckService()) health->SetServingStatus(false);
  // A broker that cannot write cannot take part in Raft (no durable vote or ack), yet its
  // keepalives would keep its peers' quiet followers from electing new leaders for the
  // partitions it leads. Going silent fences it: peers elect around it and mark it dead.
  // Reads of what it holds are still served to clients.
  transport_->Stop();
}

void Broker::MaintenanceLoop() {
  SetThreadName("maintenance");
  while (true) {
    {
      std::unique_lock lock(stop_mu_);
      stop_cv_.wait_for(lock, tuning_.maintenance_interval, [&] { return stopping_.load(); });
      if (stopping_.load()) return;
    }
    std::vector<RaftGroupId> compact;
    {
      std::lock_guard lock(compact_mu_);
      compact.swap(to_compact_);
    }
    for (RaftGroupId group : compact) store_->CompactGroupPrefix(group).IgnoreError();
    if (Clock::now() >= next_retention_) {
      next_retention_ = Clock::now() + tuning_.retention_check_interval;
      EnforceRetention();
    }
    if (Clock::now() >= next_in_sync_) {
      next_in_sync_ = Clock::now() + tuning_.in_sync_check_interval;
      UpdateInSyncReplicas();
    }
    ReportFatalStorageError();
    SnapshotMetadata();
    MetadataView view = metadata_->view();
    if (tuning_.leader_rebalance_interval.count() > 0 && Clock::now() >= next_rebalance_) {
      next_rebalance_ = Clock::now() + tuning_.leader_rebalance_interval;
      RebalanceLeaders(view);
    }
    KeepRegistered(view);
    ReportLeaderships(view);
    CheckLiveness(view);
    AddLearners(view);
  }
}

void Broker::KeepRegistered(const MetadataView& view) {
  const BrokerRecord* me = view->broker(options_.broker_id);
  if (me && me->client_address == options_.client_address &&
      me->raft_address == options_.raft_address && me->rack == options_.rack && me->alive) {
    return;
  }
  internal::MetadataCommand command;
  auto* reg = command.mutable_register_broker();
  reg->set_id(options_.broker_id);
  reg->set_client_address(options_.client_address);
  reg->set_raft_address(options_.raft_address);
  reg->set_rack(options_.rack);
  auto r = ProposeMetadata(command, std::chrono::milliseconds(2000));
  if (!r.ok()) {
    LOG_EVERY_N(WARNING, 10) << "broker " << id_
                             << ": registration pending: " << r.status().ToString();
  } else {
    LOG(INFO) << "broker " << id_ << " registered (" << options_.client_address << ", rack '"
              << options_.rack << "')";
  }
}

void Broker::EnforceRetention() {
  std::vector<std::shared_ptr<PartitionReplica>> replicas;
  {
    std::shared_lock lock(partitions_mu_);
    for (auto& [id, p] : partitions_) replicas.push_back(p);
  }
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  for (auto& replica : replicas) {
    host_->Run(replica->group(), [this, replica, now_ms](GroupHandle* g) {
      if (g == nullptr) return;
      auto freed = replica->ApplyRetention(g, now_ms);
      if (!freed.ok()) {
        LOG_EVERY_N(WARNING, 20) << replica->topic() << "/" << replica->partition()
                                 << ": retention: " << freed.status().ToString();
      } else if (*freed > 0) {
        // Let RocksDB drop the deleted range's files now rather than at some later compaction,
        // on the maintenance thread: a manual compaction can take seconds, and the worker must
        // keep ticking and persisting its other groups meanwhile.
        std::lock_guard lock(compact_mu_);
        to_compact_.push_back(replica->group());
      }
    });
  }
}

void Broker::UpdateInSyncReplicas() {
  host_->SweepActiveLeaders([this](GroupHandle* g) {
    auto* partition = dynamic_cast<SharedStateMachine<PartitionReplica>*>(g->state_machine);
    if (partition != nullptr && partition->replica().UpdateInSync(g)) {
      in_sync_generation_.fetch_add(1, std::memory_order_release);
    }
  });
}

void Broker::RebalanceLeaders(const MetadataView& view) {
  for (const HostedPartition& p : view->PartitionsOf(options_.broker_id)) {
    if (p.replicas.empty() || p.replicas.front() == options_.broker_id) continue;
    if (PartitionLeader(p.group) != options_.broker_id) continue;
    const BrokerRecord* preferred = view->broker(p.replicas.front());
    if (preferred == nullptr || !preferred->alive) continue;
    const raft::NodeId target = static_cast<raft::NodeId>(p.replicas.front());
    // The Raft core brings the target up to date first and gives up after an election
    // timeout if it cannot, so a lagging or half-dead preferred leader costs nothing.
    host_->Run(p.group, [target](GroupHandle* g) {
      if (g != nullptr && g->node->IsLeader()) g->node->TransferLeadership(target).IgnoreError();
    });
  }
}

Result<int64_t> Broker::TransferPartitionLeadership(std::string_view topic, int32_t partition,
                                                    int64_t target,
                                                    std::chrono::milliseconds timeout,
                                                    int64_t* leader_hint) {
  SKIFF_ASSIGN_OR_RETURN(PartitionRef ref, FindPartition(topic, partition));
  if (target < 0 && !ref.replicas.empty()) target = ref.replicas.front();
  if (std::find(ref.replicas.begin(), ref.replicas.end(), target) == ref.replicas.end()) {
    return InvalidArgumentError("broker " + std::to_string(target) + " holds no replica of " +
                                std::string(topic) + "/" + std::to_string(partition));
  }
  *leader_hint = PartitionLeader(ref.group);
  if (!ref.replica || !ref.replica->is_leader()) {
    return AbortedError("this broker does not lead the partition");
  }
  if (target == options_.broker_id) return target;
  Rendezvous<Status> started;
  host_->Run(ref.group, [target, done = started.Callback()](GroupHandle* g) {
    if (g == nullptr) return done(UnavailableError("partition not hosted here"));
    done(g->node->TransferLeadership(static_cast<raft::NodeId>(target)));
  });
  const auto deadline = Clock::now() + timeout;
  auto s = started.Wait(deadline);
  if (!s) return UnavailableError("the transfer did not start in time");
  if (!s->ok()) return *s;
  while (Clock::now() < deadline) {
    if (ref.replica->leader() == target) return target;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  *leader_hint = ref.replica->leader();
  return UnavailableError("broker " + std::to_string(target) +
                          " did not take over in time (is it caught up and alive?)");
}

void Broker::AddLearners(const MetadataView& view) {
  if (metadata_->leader() != options_.broker_id) return;
  std::vector<int64_t> registered;
  for (const auto& b : view->brokers()) registered.push_back(b.id);
  // Every registered broker follows the metadata log; those that are not voters join as
  // learners, one membership change at a time (the Raft core refuses a second pending one).
  host_->Run(kMetadataGroup, [registered](GroupHandle* g) {
    if (g == nullptr || !g->node->IsLeader()) return;
    const raft::ConfState conf = g->node->GetStatus().conf;
    auto member = [&](int64_t id) {
      const auto n = static_cast<raft::NodeId>(id);
      return std::find(conf.voters.begin(), conf.voters.end(), n) != conf.voters.end() ||
             std::find(conf.learners.begin(), conf.learners.end(), n) != conf.learners.end();
    };
    for (int64_t id : registered) {
      if (member(id)) continue;
      auto proposed = g->node->ProposeConfChange(
          raft::ConfChange{raft::ConfChangeType::kAddLearner, static_cast<raft::NodeId>(id)});
      if (proposed.ok()) LOG(INFO) << "metadata group: adding broker " << id << " as a learner";
      return;
    }
  });
}

void Broker::CheckLiveness(const MetadataView& view) {
  const auto now = Clock::now();
  if (metadata_->leader() != options_.broker_id) {
    leading_metadata_since_ = {};
    first_seen_.clear();
    return;
  }
  if (leading_metadata_since_ == Clock::time_point{}) leading_metadata_since_ = now;
  // A new leader has not heard from anyone yet; give every broker a full timeout first.
  if (now - leading_metadata_since_ < tuning_.liveness_timeout) return;
  for (const auto& b : view->brokers()) {
    if (b.id == options_.broker_id) continue;
    // A broker that just registered may not have sent us anything yet (it is still being
    // added to the metadata group): it too gets a full timeout before it can be judged.
    auto [seen, inserted] = first_seen_.try_emplace(b.id, now);
    auto heard = transport_->LastReceived(BrokerId(b.id));
    if (!heard && now - seen->second < tuning_.liveness_timeout) continue;
    const bool recent = heard && now - *heard < tuning_.liveness_timeout;
    if (recent == b.alive) continue;
    internal::MetadataCommand command;
    command.mutable_set_broker_alive()->set_id(b.id);
    command.mutable_set_broker_alive()->set_alive(recent);
    auto r = ProposeMetadataLocally(command, std::chrono::milliseconds(2000));
    LOG(INFO) << "broker " << b.id << " is " << (recent ? "alive again" : "not responding")
              << (r.ok() ? "" : " (not recorded: " + r.status().ToString() + ")");
  }
}

}  // namespace skiff::broker
