// Runs tests/python/skiff_example.py — a client written only from proto/ — against a real
// 3-broker cluster started by the harness.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "cluster_harness.h"

namespace skiff::testing {
namespace {

TEST(PythonExample, ProducesAndFetchesThroughTheProtoOnlyClient) {
  ClusterOptions options;
  options.skiffd_path = SKIFFD_PATH;
  options.brokers = 3;
  Result<std::unique_ptr<ClusterHarness>> cluster = ClusterHarness::Start(options);
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();

  std::vector<std::string> args = {"/usr/bin/python3", SKIFF_EXAMPLE_SCRIPT,
                                   "--brokers",        (*cluster)->BootstrapList(),
                                   "--proto-dir",      SKIFF_PROTO_DIR};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  // Bounded: the script gives up on its own after ~30 s per step; this is the backstop.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(150);
  int status = 0;
  bool exited = false;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!exited) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    FAIL() << "skiff_example.py did not finish within 150 s";
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "skiff_example.py failed (status " << status << "); its stderr is above";
}

}  // namespace
}  // namespace skiff::testing
