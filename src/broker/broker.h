// Broker: one skiffd — its storage, Raft host, transport, metadata replica, partition replicas
// and gRPC services, wired together.
//
//   clients ──gRPC──> Produce/Fetch/Metadata/Admin services ──> PartitionReplica / metadata
//                                                                  │ (RaftHost::Run on the
//                                                                  ▼  group's worker thread)
//   peers <──RaftTransport (gRPC streams)──> RaftHost workers ──> LogStore (group commit)
//
// Every broker follows the metadata log; applying it, a broker starts the Raft groups of the
// partitions it is a replica of (and deletes those of deleted topics). Admin calls are proposed
// to the metadata leader, forwarded there by whichever broker received them. A background loop
// keeps this broker registered (addresses, rack), feeds peer addresses to the transport and,
// on the metadata leader, marks brokers dead or alive by whether their traffic arrives.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "broker/broker_flags.h"
#include "broker/metadata_replica.h"
#include "broker/partition_replica.h"
#include "broker/raft_host.h"
#include "broker/raft_transport.h"
#include "common/status.h"
#include "skiff/internal/metadata.pb.h"
#include "storage/log_store.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc

namespace skiff::broker {

struct BrokerTuning {
  // The log store's options (sync policy, free-space reserve, buffer sizes). The classifier is
  // the broker's own (partition entries are record batches) whatever is set here.
  storage::LogStoreOptions storage;
  RaftHostOptions host;
  // The metadata leader marks a broker dead after this long without traffic from it.
  std::chrono::milliseconds liveness_timeout{6000};
  std::chrono::milliseconds maintenance_interval{200};
  // How often each replica applies its topic's retention (Kafka's
  // log.retention.check.interval.ms).
  std::chrono::milliseconds retention_check_interval{30000};
  // How often a broker hands the partitions it leads back to their preferred leader (the
  // first replica, spread evenly by placement) when that broker is alive again. 0 = never.
  std::chrono::milliseconds leader_rebalance_interval{30000};
  // The metadata group never quiesces, so its heartbeats are most of an idle cluster's
  // traffic; it heartbeats less often than partitions and so elects a new leader later
  // (1-2 s at 20 ms ticks, like Kafka's and Redpanda's controllers). Partition leaders fail
  // over on their own groups' timing, without it.
  int metadata_election_ticks = 50;
  int metadata_heartbeat_ticks = 10;
  // How often a leader recomputes its partitions' in-sync replicas (Metadata, DescribeCluster).
  std::chrono::milliseconds in_sync_check_interval{1000};
  // A broker records its leaderships and in-sync sets in the metadata group when they change;
  // it also rescans them this often in case a report was lost.
  std::chrono::milliseconds leadership_rescan_interval{10000};
  // Every replica of the metadata group snapshots its state after this many applied entries
  // and drops its log but the last metadata_log_keep_entries.
  uint64_t metadata_snapshot_entries = 1000;
  uint64_t metadata_log_keep_entries = 100;
};

// A partition as a service sees it.
struct PartitionRef {
  std::shared_ptr<PartitionReplica> replica;  // null when this broker holds no replica
  RaftGroupId group;
  std::vector<int64_t> replicas;
  v1::TopicConfig config;        // effective values
  int64_t reported_leader = -1;  // as last recorded in the metadata group (a hint)
  uint64_t reported_leader_term = 0;
};

class Broker {
 public:
  static Result<std::unique_ptr<Broker>> Start(BrokerOptions options, BrokerTuning tuning);
  ~Broker();  // Shutdown()

  // Hands leaderships to other replicas (bounded wait), then stops serving. Idempotent.
  void Shutdown(std::chrono::milliseconds transfer_budget = std::chrono::milliseconds(3000));

  BrokerId id() const { return id_; }
  const BrokerOptions& options() const { return options_; }
  int client_port() const { return client_port_; }
  int raft_port() const { return raft_port_; }

  MetadataView metadata() const { return metadata_->view(); }
  int64_t metadata_leader() const { return metadata_->leader(); }
  uint64_t metadata_term() const { return metadata_->term(); }

  // kNotFound (message names the topic or partition) if it does not exist in the local view.
  Result<PartitionRef> FindPartition(std::string_view topic, int32_t partition) const;
  // Current leader of a partition as this broker knows it (-1 unknown) and its term: from its
  // own replica when it hosts one, else the leader last reported to the metadata group, if
  // that broker is alive (a hint: a stale one is corrected by the NOT_LEADER it answers).
  int64_t PartitionLeader(const PartitionRecord& partition, uint64_t* term = nullptr) const;
  int64_t PartitionLeader(const PartitionRef& partition, uint64_t* term = nullptr) const;
  // Only what this broker's own replica knows.
  int64_t PartitionLeader(RaftGroupId group, uint64_t* term = nullptr) const;
  // The replicas in sync with the partition's leader (ascending; empty if unknown): the
  // leader's own set when this broker leads, else the set that leader last reported.
  std::vector<int64_t> PartitionInSync(const PartitionRecord& partition) const;
  // host:port of a broker's client listener ("" unknown).
  std::string ClientAddressOf(int64_t broker) const;

  // Proposes a metadata command through the metadata leader (here or forwarded) and waits for
  // it to apply, up to `timeout`. kUnavailable when no leader answers in time.
  Result<internal::MetadataResult> ProposeMetadata(internal::MetadataCommand command,
                                                   std::chrono::milliseconds timeout);
  // The local half: propose if this broker leads the metadata group; kAborted if it does not
  // (the caller retries at the leader). Blocks up to timeout.
  Result<internal::MetadataResult> ProposeMetadataLocally(internal::MetadataCommand command,
                                                          std::chrono::milliseconds timeout);

  // Moves a partition's leadership to `target` (-1: its preferred leader) and waits, up to
  // timeout, until the target leads. Must run on the current leader (kAborted otherwise, with
  // the leader's id in *leader_hint). kInvalidArgument if target is not a replica.
  Result<int64_t> TransferPartitionLeadership(std::string_view topic, int32_t partition,
                                              int64_t target, std::chrono::milliseconds timeout,
                                              int64_t* leader_hint);

  RaftHost& host() { return *host_; }

 private:
  Broker(BrokerOptions options, BrokerTuning tuning);
  Status Init();
  void OnMetadataChange(MetadataView view);
  void MaintenanceLoop();
  void KeepRegistered(const MetadataView& view);
  void CheckLiveness(const MetadataView& view);
  void AddLearners(const MetadataView& view);
  void EnforceRetention();
  void RebalanceLeaders(const MetadataView& view);
  void UpdateInSyncReplicas();
  // Once the store refuses writes until a restart, says NOT_SERVING on the health service so
  // that an orchestrator restarts the broker (reads keep being served meanwhile).
  void ReportFatalStorageError();
  // Records in the metadata group the partitions this broker leads whose leadership (term) is
  // not recorded yet, so brokers without a replica can point clients to the leader.
  void ReportLeaderships(const MetadataView& view);
  void SnapshotMetadata();
  int64_t ReportedLeader(RaftGroupId group, int64_t leader, uint64_t leader_term,
                         uint64_t* term) const;
  std::string RaftAddressOf(int64_t broker) const;
  // A channel to another broker's inter-broker (control) address, kept for reuse: forwarded
  // metadata proposals come every few seconds, and a fresh channel costs a TCP and HTTP/2
  // handshake each time.
  std::shared_ptr<grpc::Channel> ControlChannel(const std::string& address);

  const BrokerOptions options_;
  const BrokerTuning tuning_;
  const BrokerId id_;

  std::unique_ptr<storage::LogStore> store_;
  std::unique_ptr<RaftTransport> transport_;
  std::unique_ptr<RaftHost> host_;
  std::shared_ptr<MetadataReplica> metadata_;

  mutable std::shared_mutex partitions_mu_;
  std::unordered_map<RaftGroupId, std::shared_ptr<PartitionReplica>> partitions_;  // guarded

  std::vector<std::unique_ptr<grpc::Service>> services_;
  std::unique_ptr<grpc::Server> client_server_;
  std::unique_ptr<grpc::Server> raft_server_;
  int client_port_ = 0;
  int raft_port_ = 0;

  std::atomic<bool> stopping_{false};
  bool storage_failure_reported_ = false;  // maintenance thread only
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  std::thread maintenance_;
  std::chrono::steady_clock::time_point leading_metadata_since_{};
  std::chrono::steady_clock::time_point next_retention_{};  // maintenance thread only
  std::chrono::steady_clock::time_point next_rebalance_{};  // maintenance thread only
  std::chrono::steady_clock::time_point next_in_sync_{};    // maintenance thread only
  // What ReportLeaderships read at its last scan that had nothing to report (maintenance
  // thread only): the metadata view and the generations of leaderships and in-sync sets.
  struct ReportInputs {
    MetadataView view;
    uint64_t leadership_generation = 0;
    uint64_t in_sync_generation = 0;
    bool operator==(const ReportInputs&) const = default;
  };
  ReportInputs last_report_inputs_;
  std::chrono::steady_clock::time_point next_forced_report_{};
  std::atomic<uint64_t> in_sync_generation_{0};  // grows when a replica's in-sync set changes
  std::mutex channels_mu_;
  std::unordered_map<std::string, std::shared_ptr<grpc::Channel>> channels_;  // guarded
  std::mutex compact_mu_;
  std::vector<RaftGroupId> to_compact_;  // guarded by compact_mu_: retention freed a prefix
  // Metadata leader: when each broker was first seen registered (maintenance thread only).
  std::unordered_map<int64_t, std::chrono::steady_clock::time_point> first_seen_;
};

}  // namespace skiff::broker
