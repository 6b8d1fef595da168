// Starts the real skiffd binary: a bad configuration is a one-line error and a non-zero exit;
// a good one serves gRPC health, answers UNIMPLEMENTED for the API it does not serve yet, and
// stops cleanly on SIGTERM.
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
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "common/reserved_port.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "skiff/v1/groups.grpc.pb.h"
#include "skiff/v1/produce.grpc.pb.h"

namespace {

struct Child {
  pid_t pid = -1;
  std::string stderr_path;
};

Child Spawn(const std::vector<std::string>& args, const std::string& stderr_path) {
  Child child;
  child.stderr_path = stderr_path;
  child.pid = ::fork();
  if (child.pid == 0) {
    int fd = ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 2);
    std::vector<char*> argv;
    std::string path = SKIFFD_PATH;
    argv.push_back(path.data());
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(path.c_str(), argv.data());
    _exit(127);
  }
  return child;
}

// Waits (bounded) for the child to exit; returns its exit code, or -1 if it is still running.
int WaitExit(pid_t pid, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

std::string ReadFile(const std::string& path) {
  std::string out;
  if (std::FILE* f = std::fopen(path.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
    std::fclose(f);
  }
  return out;
}

class SkiffdProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("skiffd-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    for (pid_t pid : started_) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    std::filesystem::remove_all(dir_);
  }
  Child Start(const std::vector<std::string>& args) {
    Child c = Spawn(args, (dir_ / "stderr.log").string());
    started_.push_back(c.pid);
    return c;
  }
  std::filesystem::path dir_;
  std::vector<pid_t> started_;
};

TEST_F(SkiffdProcessTest, BadFlagsAreAOneLineErrorAndNonZeroExit) {
  struct Case {
    std::vector<std::string> args;
    std::string expect;
  };
  const std::string data = "--data_dir=" + (dir_ / "d").string();
  std::vector<Case> cases = {
      {{"--broker_id=0", data}, "--broker_id"},
      {{"--broker_id=1", "--listen=nonsense", data}, "--listen"},
      {{"--broker_id=1"}, "--data_dir"},
      {{"--broker_id=1", data, "--metadata_voters=1@x"}, "--metadata_voters"},
      {{"--broker_id=1", data, "--metadata_election_ticks=10"}, "--metadata_election_ticks"},
  };
  for (const Case& c : cases) {
    Child child = Start(c.args);
    int code = WaitExit(child.pid, std::chrono::seconds(10));
    started_.pop_back();
    EXPECT_EQ(code, 2) << c.expect;
    std::string err = ReadFile(child.stderr_path);
    EXPECT_NE(err.find(c.expect), std::string::npos) << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << "one line: " << err;
  }
}

TEST_F(SkiffdProcessTest, ServesTheApiAndHealthThenStopsOnSigterm) {
  const std::string address = "127.0.0.1:" + std::to_string(skiff::testing::ReservePort());
  Child child = Start({"--broker_id=1", "--listen=" + address,
                       "--raft_listen=127.0.0.1:" + std::to_string(skiff::testing::ReservePort()),
                       "--data_dir=" + (dir_ / "data").string()});
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  ASSERT_TRUE(
      channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(20)))
      << ReadFile(child.stderr_path);

  auto health = grpc::health::v1::Health::NewStub(channel);
  {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    ASSERT_TRUE(health->Check(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  }
  {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    req.set_service("skiff.v1.ProduceService");
    grpc::health::v1::HealthCheckResponse resp;
    ASSERT_TRUE(health->Check(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  }
  {
    // Consumer groups are not built yet: NOT_SERVING in health, UNIMPLEMENTED when called.
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    req.set_service("skiff.v1.GroupService");
    grpc::health::v1::HealthCheckResponse resp;
    ASSERT_TRUE(health->Check(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  }
  {
    auto produce = skiff::v1::ProduceService::NewStub(channel);
    grpc::ClientContext ctx;
    skiff::v1::ProduceRequest req;  // no batches: malformed as a whole
    skiff::v1::ProduceResponse resp;
    EXPECT_EQ(produce->Produce(&ctx, req, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  {
    auto groups = skiff::v1::GroupService::NewStub(channel);
    grpc::ClientContext ctx;
    skiff::v1::LeaveGroupRequest req;
    skiff::v1::LeaveGroupResponse resp;
    EXPECT_EQ(groups->LeaveGroup(&ctx, req, &resp).error_code(), grpc::StatusCode::UNIMPLEMENTED);
  }
  ASSERT_EQ(::kill(child.pid, SIGTERM), 0);
  EXPECT_EQ(WaitExit(child.pid, std::chrono::seconds(15)), 0);
  started_.clear();
}

}  // namespace
