#include "cluster_harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/reserved_port.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace skiff::testing {
namespace {

using Clock = std::chrono::steady_clock;

// A port reserved for this process (common/reserved_port.h).
Result<int> FreePort() {
  const int port = ReservePort();
  if (port < 0) return IoError("cannot reserve a free port on 127.0.0.1");
  return port;
}

// Reaps `pid` if it has exited; returns its wait status, or nullopt while it runs.
std::optional<int> TryReap(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, WNOHANG) == pid) return status;
  return std::nullopt;
}

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

}  // namespace

Result<std::unique_ptr<ClusterHarness>> ClusterHarness::Start(ClusterOptions options) {
  if (options.brokers < 1) return InvalidArgumentError("a cluster needs at least one broker");
  if (::access(options.skiffd_path.c_str(), X_OK) != 0) {
    return InvalidArgumentError("skiffd is not executable at '" + options.skiffd_path + "'");
  }
  std::unique_ptr<ClusterHarness> cluster(new ClusterHarness(std::move(options)));
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/skiff-cluster-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) return IoError("mkdtemp(" + pattern + ") failed");
  cluster->root_ = pattern;
  cluster->brokers_.resize(static_cast<size_t>(cluster->options_.brokers));
  for (int i = 0; i < cluster->size(); ++i) {
    Broker& b = cluster->brokers_[static_cast<size_t>(i)];
    SKIFF_ASSIGN_OR_RETURN(b.client_port, FreePort());
    SKIFF_ASSIGN_OR_RETURN(b.raft_port, FreePort());
    b.data_dir = cluster->root_ + "/broker-" + std::to_string(i + 1);
  }
  for (int i = 0; i < cluster->size(); ++i) SKIFF_RETURN_IF_ERROR(cluster->Spawn(i));
  // Brokers need each other (the metadata quorum), so wait only once all are started.
  for (int i = 0; i < cluster->size(); ++i) SKIFF_RETURN_IF_ERROR(cluster->WaitServing(i));
  return cluster;
}

ClusterHarness::~ClusterHarness() {
  if (::testing::Test::HasFailure() && !brokers_.empty()) {
    std::fprintf(stderr, "=== skiffd logs (cluster in %s) ===\n%s", root_.c_str(),
                 AllLogTails().c_str());
  }
  for (int i = 0; i < size(); ++i) {
    // Best effort: the processes die regardless, and there is no one left to report to.
    if (IsRunning(i)) Kill(i).IgnoreError();
  }
  if (!root_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
}

std::string ClusterHarness::ClientAddress(int i) const {
  return "127.0.0.1:" + std::to_string(brokers_[static_cast<size_t>(i)].client_port);
}

std::string ClusterHarness::RaftAddress(int i) const {
  return "127.0.0.1:" + std::to_string(brokers_[static_cast<size_t>(i)].raft_port);
}

std::string ClusterHarness::BootstrapList() const {
  std::string out;
  for (int i = 0; i < size(); ++i) out += (i == 0 ? "" : ",") + ClientAddress(i);
  return out;
}

std::string ClusterHarness::LogPath(int i) const {
  return root_ + "/broker-" + std::to_string(i + 1) + ".log";
}

std::string ClusterHarness::VotersFlag() const {
  std::string out;
  for (int i = 0; i < size(); ++i) {
    out += (i == 0 ? "" : ",") + std::to_string(BrokerId(i)) + "@" + RaftAddress(i);
  }
  return out;
}

Status ClusterHarness::Spawn(int i) {
  Broker& b = brokers_[static_cast<size_t>(i)];
  std::vector<std::string> args = {
      options_.skiffd_path,           "--broker_id=" + std::to_string(BrokerId(i)),
      "--listen=" + ClientAddress(i), "--raft_listen=" + RaftAddress(i),
      "--data_dir=" + b.data_dir,     "--metadata_voters=" + VotersFlag(),
  };
  if (static_cast<size_t>(i) < options_.racks.size() &&
      !options_.racks[static_cast<size_t>(i)].empty()) {
    args.push_back("--rack=" + options_.racks[static_cast<size_t>(i)]);
  }
  for (const std::string& flag : options_.extra_flags) args.push_back(flag);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string log_path = LogPath(i);
  // Opened before fork: the child may only make async-signal-safe calls.
  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return IoError("cannot open " + log_path);
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    return IoError("fork failed");
  }
  if (pid == 0) {
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  ::close(log_fd);
  b.pid = pid;
  return Status::Ok();
}

Status ClusterHarness::WaitServing(int i) {
  Broker& b = brokers_[static_cast<size_t>(i)];
  const auto deadline = Clock::now() + std::chrono::milliseconds(options_.start_timeout_ms);
  auto stub = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(ClientAddress(i), grpc::InsecureChannelCredentials()));
  std::string last = "no answer";
  // Bounded by the deadline; each probe waits at most 500 ms.
  while (Clock::now() < deadline) {
    if (std::optional<int> status = TryReap(b.pid)) {
      b.pid = -1;
      return UnavailableError("broker " + std::to_string(BrokerId(i)) + " exited (" +
                              DescribeExit(*status) + ") while starting; log:\n" + LogTail(i));
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
    grpc::health::v1::HealthCheckRequest request;
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status status = stub->Check(&ctx, request, &response);
    if (status.ok() && response.status() == grpc::health::v1::HealthCheckResponse::SERVING) {
      return Status::Ok();
    }
    last = status.ok()
               ? grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status())
               : status.error_message();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return UnavailableError("broker " + std::to_string(BrokerId(i)) + " at " + ClientAddress(i) +
                          " not SERVING after " + std::to_string(options_.start_timeout_ms) +
                          " ms (" + last + "); log:\n" + LogTail(i));
}

Status ClusterHarness::Kill(int i) {
  Broker& b = brokers_[static_cast<size_t>(i)];
  if (b.pid <= 0)
    return FailedPreconditionError("broker " + std::to_string(BrokerId(i)) + " is not running");
  ::kill(b.pid, SIGKILL);
  ::waitpid(b.pid, nullptr, 0);  // SIGKILL cannot be ignored: this returns promptly
  b.pid = -1;
  return Status::Ok();
}

Status ClusterHarness::Stop(int i) {
  Broker& b = brokers_[static_cast<size_t>(i)];
  if (b.pid <= 0)
    return FailedPreconditionError("broker " + std::to_string(BrokerId(i)) + " is not running");
  ::kill(b.pid, SIGTERM);
  const auto deadline = Clock::now() + std::chrono::milliseconds(options_.stop_timeout_ms);
  while (Clock::now() < deadline) {
    if (std::optional<int> status = TryReap(b.pid)) {
      b.pid = -1;
      if (WIFEXITED(*status) && WEXITSTATUS(*status) == 0) return Status::Ok();
      return AbortedError("broker " + std::to_string(BrokerId(i)) + " stopped with " +
                          DescribeExit(*status));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  SKIFF_RETURN_IF_ERROR(Kill(i));
  return AbortedError("broker " + std::to_string(BrokerId(i)) + " ignored SIGTERM for " +
                      std::to_string(options_.stop_timeout_ms) + " ms; killed");
}

Status ClusterHarness::Restart(int i) {
  // Whether the stop was clean is not the question here; the restart is.
  if (IsRunning(i)) Stop(i).IgnoreError();
  SKIFF_RETURN_IF_ERROR(Spawn(i));
  return WaitServing(i);
}

std::string ClusterHarness::LogTail(int i, size_t max_bytes) const {
  std::ifstream in(LogPath(i), std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  if (text.size() > max_bytes) text = "...\n" + text.substr(text.size() - max_bytes);
  return text;
}

std::string ClusterHarness::AllLogTails(size_t max_bytes_each) const {
  std::string out;
  for (int i = 0; i < size(); ++i) {
    out += "--- broker " + std::to_string(BrokerId(i)) + " (" + LogPath(i) + ") ---\n" +
           LogTail(i, max_bytes_each) + "\n";
  }
  return out;
}

}  // namespace skiff::testing
