// ClusterHarness: runs N real skiffd processes on 127.0.0.1 for integration tests.
//
// Each broker i (0-based; broker id i+1) gets free ports for its client and Raft listeners
// (found by binding port 0), a data directory and a log file under one temp directory, and the
// full --metadata_voters list. Start() returns once every broker answers gRPC health SERVING,
// or fails (bounded by start_timeout_ms) with the tail of the logs in the message.
//
// Ownership: the harness owns the processes it started and the temp directory. Its destructor
// SIGKILLs every broker still running (by PID) and removes the directory; when the current
// gtest test has failed, it first prints the tail of each broker's log.
//
// Thread-safety: none; use from the test's thread.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace skiff::testing {

struct ClusterOptions {
  std::string skiffd_path;  // the binary to run
  int brokers = 3;
  std::vector<std::string> racks;        // per broker; empty: none
  std::vector<std::string> extra_flags;  // passed to every broker
  int64_t start_timeout_ms = 30000;      // per Start()/Restart(), waiting for SERVING
  int64_t stop_timeout_ms = 10000;       // SIGTERM grace before SIGKILL
};

class ClusterHarness {
 public:
  static Result<std::unique_ptr<ClusterHarness>> Start(ClusterOptions options);
  ~ClusterHarness();
  ClusterHarness(const ClusterHarness&) = delete;
  ClusterHarness& operator=(const ClusterHarness&) = delete;

  int size() const { return static_cast<int>(brokers_.size()); }
  int64_t BrokerId(int i) const { return i + 1; }
  std::string ClientAddress(int i) const;
  std::string RaftAddress(int i) const;
  // "addr0,addr1,..." — the --brokers value for clients.
  std::string BootstrapList() const;
  const std::string& root_dir() const { return root_; }
  std::string LogPath(int i) const;

  bool IsRunning(int i) const { return brokers_[static_cast<size_t>(i)].pid > 0; }

  // SIGKILL and reap: a crash.
  Status Kill(int i);
  // SIGTERM, wait up to stop_timeout_ms, then SIGKILL. kAborted when SIGKILL was needed or the
  // exit code was non-zero (the broker is stopped either way).
  Status Stop(int i);
  // Starts broker i again (stopping it first if it runs) with the same ports and data, and
  // waits for SERVING.
  Status Restart(int i);

  // The last `max_bytes` of broker i's log.
  std::string LogTail(int i, size_t max_bytes = 4096) const;
  std::string AllLogTails(size_t max_bytes_each = 4096) const;

 private:
  struct Broker {
    int client_port = 0;
    int raft_port = 0;
    std::string data_dir;
    pid_t pid = -1;
  };
  explicit ClusterHarness(ClusterOptions options) : options_(std::move(options)) {}
  Status Spawn(int i);
  Status WaitServing(int i);
  std::string VotersFlag() const;

  ClusterOptions options_;
  std::string root_;
  std::vector<Broker> brokers_;
};

}  // namespace skiff::testing
