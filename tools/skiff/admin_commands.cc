// health, topic *, cluster info: one request each.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>

#include "command_util.h"
#include "commands.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace skiff::cli {

int ReportFailure(const std::string& what, const Status& status, bool is_usage) {
  std::fprintf(stderr, "skiff: %s: %s\n", what.c_str(), status.ToString().c_str());
  return is_usage ? kExitUsage : kExitFailed;
}

Format OutputFormat(const CliArgs& args) {
  return args.format == "json" ? Format::kJson : Format::kText;
}

std::unique_ptr<client::Client> MakeClient(const CliArgs& args) {
  Result<std::vector<std::string>> brokers = client::ParseBrokerList(args.brokers);
  if (!brokers.ok()) {
    ReportFailure("--brokers", brokers.status(), true);
    return nullptr;
  }
  client::ClientOptions options;
  options.bootstrap_brokers = *brokers;
  options.admin_deadline_ms = 15000;
  Result<std::unique_ptr<client::Client>> client = client::Client::Create(options);
  if (!client.ok()) {
    ReportFailure("client", client.status(), true);
    return nullptr;
  }
  return std::move(client).value();
}

// Exit 0 only when every broker answered SERVING.
int RunHealth(const CliArgs& args) {
  Result<std::vector<std::string>> brokers = client::ParseBrokerList(args.brokers);
  if (!brokers.ok()) return ReportFailure("--brokers", brokers.status(), true);
  int unhealthy = 0;
  for (const std::string& address : *brokers) {
    auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
    auto stub = grpc::health::v1::Health::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(args.timeout_ms));
    grpc::health::v1::HealthCheckRequest request;
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status status = stub->Check(&ctx, request, &response);
    std::string state =
        status.ok() ? grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status())
                    : "UNREACHABLE";
    const bool serving =
        status.ok() && response.status() == grpc::health::v1::HealthCheckResponse::SERVING;
    if (!serving) ++unhealthy;
    if (OutputFormat(args) == Format::kJson) {
      std::printf("{\"broker\":\"%s\",\"status\":\"%s\"}\n", address.c_str(), state.c_str());
    } else if (status.ok()) {
      std::printf("%s\t%s\n", address.c_str(), state.c_str());
    } else {
      std::printf("%s\t%s\t%s\n", address.c_str(), state.c_str(), status.error_message().c_str());
    }
  }
  return unhealthy == 0 ? kExitOk : kExitFailed;
}

int RunTopicCreate(const CliArgs& args) {
  Result<v1::TopicConfig> config = ParseTopicConfigs(args.configs);
  if (!config.ok()) return ReportFailure("--config", config.status(), true);
  auto client = MakeClient(args);
  if (!client) return kExitUsage;
  v1::CreateTopicRequest request;
  request.set_name(args.topic);
  request.set_partitions(args.partitions);
  request.set_replication_factor(args.replication_factor);
  *request.mutable_config() = *config;
  Result<v1::CreateTopicResponse> response = client->CreateTopic(request);
  if (!response.ok()) return ReportFailure("create topic " + args.topic, response.status());
  std::fputs(FormatTopic(response->topic(), nullptr, OutputFormat(args)).c_str(), stdout);
  return kExitOk;
}

int RunTopicList(const CliArgs& args) {
  auto client = MakeClient(args);
  if (!client) return kExitUsage;
  Result<v1::ListTopicsResponse> response = client->ListTopics(args.include_internal);
  if (!response.ok()) return ReportFailure("list topics", response.status());
  std::fputs(FormatTopicList(*response, OutputFormat(args)).c_str(), stdout);
  return kExitOk;
}

int RunTopicDescribe(const CliArgs& args) {
  auto client = MakeClient(args);
  if (!client) return kExitUsage;
  Result<v1::DescribeTopicResponse> response = client->DescribeTopic(args.topic);
  if (!response.ok()) return ReportFailure("describe topic " + args.topic, response.status());
  std::fputs(FormatTopic(response->topic(), &response->config(), OutputFormat(args)).c_str(),
             stdout);
  return kExitOk;
}

int RunTopicDelete(const CliArgs& args) {
  auto client = MakeClient(args);
  if (!client) return kExitUsage;
  Status status = client->DeleteTopic(args.topic);
  if (!status.ok()) return ReportFailure("delete topic " + args.topic, status);
  if (OutputFormat(args) == Format::kJson) {
    std::printf("{\"deleted\":true}\n");
  } else {
    std::printf("deleted topic %s\n", args.topic.c_str());
  }
  return kExitOk;
}

int RunClusterInfo(const CliArgs& args) {
  auto client = MakeClient(args);
  if (!client) return kExitUsage;
  Result<v1::DescribeClusterResponse> response = client->DescribeCluster();
  if (!response.ok()) return ReportFailure("cluster info", response.status());
  std::fputs(FormatCluster(*response, OutputFormat(args)).c_str(), stdout);
  return kExitOk;
}

}  // namespace skiff::cli
