// The harness against the real skiffd: start, health, kill, stop, restart, clean-up.
#include "cluster_harness.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>

#include "grpc/health/v1/health.grpc.pb.h"

namespace skiff::testing {
namespace {

bool Serving(const std::string& address) {
  auto stub = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  return stub->Check(&ctx, request, &response).ok() &&
         response.status() == grpc::health::v1::HealthCheckResponse::SERVING;
}

TEST(ClusterHarness, StartsKillsStopsRestartsAndCleansUp) {
  std::string root;
  {
    ClusterOptions options;
    options.skiffd_path = SKIFFD_PATH;
    options.brokers = 3;
    options.racks = {"a", "b", "c"};
    Result<std::unique_ptr<ClusterHarness>> started = ClusterHarness::Start(options);
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    ClusterHarness& cluster = **started;
    root = cluster.root_dir();
    ASSERT_EQ(cluster.size(), 3);
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(Serving(cluster.ClientAddress(i))) << i;
    EXPECT_EQ(cluster.BootstrapList(), cluster.ClientAddress(0) + "," + cluster.ClientAddress(1) +
                                           "," + cluster.ClientAddress(2));

    ASSERT_TRUE(cluster.Kill(1).ok());
    EXPECT_FALSE(cluster.IsRunning(1));
    EXPECT_FALSE(Serving(cluster.ClientAddress(1)));
    EXPECT_FALSE(cluster.Kill(1).ok());  // not running any more

    Status restarted = cluster.Restart(1);
    ASSERT_TRUE(restarted.ok()) << restarted.ToString();
    EXPECT_TRUE(Serving(cluster.ClientAddress(1)));

    Status stopped = cluster.Stop(2);
    EXPECT_TRUE(stopped.ok()) << stopped.ToString();  // skiffd exits 0 on SIGTERM
    EXPECT_FALSE(cluster.IsRunning(2));
    EXPECT_FALSE(cluster.LogTail(0).empty());
  }
  EXPECT_FALSE(std::filesystem::exists(root)) << root;
}

TEST(ClusterHarness, ReportsABrokerThatCannotStart) {
  ClusterOptions options;
  options.skiffd_path = SKIFFD_PATH;
  options.brokers = 1;
  options.extra_flags = {"--broker_id=0"};  // overrides the harness's id: invalid
  Result<std::unique_ptr<ClusterHarness>> started = ClusterHarness::Start(options);
  ASSERT_FALSE(started.ok());
  EXPECT_NE(started.status().message().find("exited"), std::string::npos)
      << started.status().ToString();
}

}  // namespace
}  // namespace skiff::testing
