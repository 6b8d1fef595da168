// skiffd: the Skiff broker process. Configuration comes from flags (or --flagfile); a bad flag
// or an unusable data directory is a one-line error and exit code 2. SIGTERM/SIGINT hand the
// broker's leaderships to other replicas, then stop it.
#include <absl/synchronization/mutex.h>
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <csignal>
#include <cstdio>
#include <memory>
#include <thread>

#include "broker/broker.h"
#include "broker/broker_flags.h"

DEFINE_int64(broker_id, 0, "This broker's id (>= 1), unique in the cluster");
DEFINE_string(listen, "127.0.0.1:9092", "host:port for client gRPC traffic");
DEFINE_string(raft_listen, "127.0.0.1:9192", "host:port for inter-broker Raft traffic");
DEFINE_string(data_dir, "", "Directory for this broker's data (created if missing)");
DEFINE_string(rack, "", "Rack (or zone) of this broker, for rack-aware replica placement");
DEFINE_string(metadata_voters, "",
              "Initial metadata group voters: id@raft_host:port,... (empty: this broker alone)");
DEFINE_string(sync, "every_commit",
              "When appends are fsynced: every_commit (acknowledged = on disk on a quorum), "
              "interval (every --sync_interval_ms; a correlated power loss can lose the last "
              "interval), never (the OS decides; for tests and benchmarks)");
DEFINE_int32(sync_interval_ms, 10, "fsync interval for --sync=interval");
DEFINE_int32(tick_ms, 20, "Raft tick length");
DEFINE_int32(election_ticks, 15, "Election timeout in ticks (randomized up to twice this)");
DEFINE_int32(heartbeat_ticks, 3, "Leader heartbeat interval in ticks");
DEFINE_int32(metadata_election_ticks, 50,
             "Election timeout of the metadata group in ticks (it never quiesces, so it "
             "heartbeats less often than partitions)");
DEFINE_int32(metadata_heartbeat_ticks, 10, "Metadata group leader heartbeat interval in ticks");
DEFINE_int32(workers, 2, "Raft worker threads (each owns a share of the groups)");
DEFINE_bool(async_storage_writes, true,
            "Raft workers issue their next writes while earlier ones fsync, acknowledging "
            "each only once durable (same guarantees; more throughput under load, and an idle "
            "worker still syncs in place). false: every write is synced before the worker "
            "goes on");
DEFINE_bool(defer_commit_broadcast, true,
            "A partition leader tells followers a new commit index with its next append or "
            "tick (<= one tick later) instead of sending each follower an extra message per "
            "write; false: at once");
DEFINE_bool(direct_io_for_flush, true,
            "Write flushed and compacted files with O_DIRECT where the file system allows it "
            "(saves the page-cache copy of every payload's second write)");
DEFINE_int64(storage_min_free_mb, 64,
             "Refuse appends (STORAGE_FULL) while the data dir has less free space than this");
DEFINE_int32(retention_check_ms, 30000,
             "How often each partition replica deletes what its topic's retention allows");
DEFINE_int32(leader_rebalance_ms, 30000,
             "How often a broker hands partitions back to their alive preferred leader (0: never)");
DEFINE_int32(shutdown_transfer_ms, 3000,
             "On SIGTERM, how long to wait for leaderships to move to other brokers");

namespace {

std::atomic<bool> g_stop{false};

void HandleSignal(int) { g_stop.store(true); }

int Fail(const skiff::Status& status) {
  std::fprintf(stderr, "skiffd: %s\n", status.ToString().c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage("skiffd --broker_id=N --data_dir=DIR [--listen=host:port] ...");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  // Debian's abseil is built with lock-order tracking on: every absl::Mutex lock (gRPC takes
  // many per call) then updates a global graph under a global lock, about 2.5% of a loaded
  // broker's CPU in a profile. Skiff's own locks are std::mutex; tests still run with it on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  skiff::broker::BrokerOptions options;
  options.broker_id = FLAGS_broker_id;
  options.client_address = FLAGS_listen;
  options.raft_address = FLAGS_raft_listen;
  options.data_dir = FLAGS_data_dir;
  options.rack = FLAGS_rack;
  if (!FLAGS_metadata_voters.empty()) {
    auto voters = skiff::broker::ParseMetadataVoters(FLAGS_metadata_voters);
    if (!voters.ok()) return Fail(voters.status());
    options.metadata_voters = *voters;
  } else {
    options.metadata_voters = {{options.broker_id, options.raft_address}};
  }
  if (auto s = skiff::broker::ValidateBrokerOptions(options); !s.ok()) return Fail(s);

  skiff::broker::BrokerTuning tuning;
  if (FLAGS_sync == "every_commit") {
    tuning.storage.sync_policy = skiff::storage::SyncPolicy::kEveryCommit;
  } else if (FLAGS_sync == "interval") {
    tuning.storage.sync_policy = skiff::storage::SyncPolicy::kInterval;
  } else if (FLAGS_sync == "never") {
    tuning.storage.sync_policy = skiff::storage::SyncPolicy::kNever;
  } else {
    return Fail(skiff::InvalidArgumentError("--sync must be every_commit, interval or never"));
  }
  if (FLAGS_tick_ms < 1 || FLAGS_tick_ms > 1000) {
    return Fail(skiff::InvalidArgumentError("--tick_ms must be in [1, 1000]"));
  }
  if (FLAGS_heartbeat_ticks < 1 || FLAGS_election_ticks <= FLAGS_heartbeat_ticks) {
    return Fail(skiff::InvalidArgumentError(
        "--election_ticks must exceed --heartbeat_ticks, which must be >= 1"));
  }
  if (FLAGS_metadata_heartbeat_ticks < 1 ||
      FLAGS_metadata_election_ticks <= FLAGS_metadata_heartbeat_ticks) {
    return Fail(skiff::InvalidArgumentError(
        "--metadata_election_ticks must exceed --metadata_heartbeat_ticks, which must be >= 1"));
  }
  if (FLAGS_workers < 1 || FLAGS_workers > 256) {
    return Fail(skiff::InvalidArgumentError("--workers must be in [1, 256]"));
  }
  if (FLAGS_retention_check_ms < 10) {
    return Fail(skiff::InvalidArgumentError("--retention_check_ms must be >= 10"));
  }
  tuning.retention_check_interval = std::chrono::milliseconds(FLAGS_retention_check_ms);
  if (FLAGS_leader_rebalance_ms < 0) {
    return Fail(skiff::InvalidArgumentError("--leader_rebalance_ms must be >= 0"));
  }
  tuning.leader_rebalance_interval = std::chrono::milliseconds(FLAGS_leader_rebalance_ms);
  if (FLAGS_sync_interval_ms < 1 || FLAGS_storage_min_free_mb < 0) {
    return Fail(skiff::InvalidArgumentError(
        "--sync_interval_ms must be >= 1 and --storage_min_free_mb >= 0"));
  }
  tuning.host.tick = std::chrono::milliseconds(FLAGS_tick_ms);
  tuning.host.election_ticks = FLAGS_election_ticks;
  tuning.host.heartbeat_ticks = FLAGS_heartbeat_ticks;
  tuning.host.workers = FLAGS_workers;
  tuning.metadata_election_ticks = FLAGS_metadata_election_ticks;
  tuning.metadata_heartbeat_ticks = FLAGS_metadata_heartbeat_ticks;
  tuning.host.async_storage_writes = FLAGS_async_storage_writes;
  tuning.host.defer_commit_broadcast = FLAGS_defer_commit_broadcast;
  tuning.storage.direct_io_for_flush = FLAGS_direct_io_for_flush;
  tuning.storage.min_free_bytes = static_cast<uint64_t>(FLAGS_storage_min_free_mb) << 20;
  tuning.storage.sync_interval_ms = static_cast<uint32_t>(FLAGS_sync_interval_ms);

  if (auto s = skiff::broker::PrepareDataDir(options.data_dir); !s.ok()) return Fail(s);

  std::signal(SIGTERM, HandleSignal);
  std::signal(SIGINT, HandleSignal);
  auto broker = skiff::broker::Broker::Start(options, tuning);
  if (!broker.ok()) return Fail(broker.status());

  while (!g_stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  LOG(INFO) << "skiffd broker " << options.broker_id << " stopping";
  (*broker)->Shutdown(std::chrono::milliseconds(FLAGS_shutdown_transfer_ms));
  return 0;
}
