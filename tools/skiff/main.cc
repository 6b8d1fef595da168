// skiff: the command-line tool for Skiff clusters.
//
// Status (see README): only `health` and `version` exist. Topic, produce, consume and cluster
// commands arrive with the broker's Produce/Fetch/Admin implementation; until then they are
// not offered, rather than offered and failing.
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "grpc/health/v1/health.grpc.pb.h"

namespace {

constexpr const char* kVersion = "0.1.0-dev";

std::vector<std::string> SplitBrokers(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    if (comma > start) out.push_back(list.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

// Prints each broker's health; exit code 0 only when every broker answered SERVING.
int RunHealth(const std::string& brokers, int timeout_ms) {
  int unhealthy = 0;
  for (const std::string& address : SplitBrokers(brokers)) {
    auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
    auto stub = grpc::health::v1::Health::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
    grpc::health::v1::HealthCheckRequest request;
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status status = stub->Check(&ctx, request, &response);
    if (!status.ok()) {
      std::printf("%s\tUNREACHABLE\t%s\n", address.c_str(), status.error_message().c_str());
      ++unhealthy;
      continue;
    }
    const bool serving = response.status() == grpc::health::v1::HealthCheckResponse::SERVING;
    std::printf(
        "%s\t%s\n", address.c_str(),
        grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status()).c_str());
    if (!serving) ++unhealthy;
  }
  return unhealthy == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"skiff: command-line tool for Skiff clusters"};
  app.require_subcommand(1);
  std::string brokers = "127.0.0.1:9092";
  int timeout_ms = 2000;

  CLI::App* health = app.add_subcommand("health", "Check each broker's gRPC health");
  health->add_option("--brokers", brokers, "Comma-separated host:port list")->capture_default_str();
  health->add_option("--timeout-ms", timeout_ms, "Per-broker deadline")->capture_default_str();

  app.add_subcommand("version", "Print the version");

  CLI11_PARSE(app, argc, argv);
  if (app.got_subcommand("version")) {
    std::printf("skiff %s\n", kVersion);
    return 0;
  }
  if (app.got_subcommand("health")) return RunHealth(brokers, timeout_ms);
  return 1;
}
