// The skiff command line: every command's arguments, parsed by CLI11 into plain structs so the
// parsing is unit-tested without running anything.
//
// Conventions: --brokers (default $SKIFF_BROKERS, else the local `./skiff.sh up` cluster) and
// --format text|json are accepted by every command. Exit codes: 0 ok, 1 the operation failed
// (stderr names the broker and gRPC status), 2 usage error.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "skiff/v1/admin.pb.h"
#include "skiff/v1/produce.pb.h"

namespace skiff::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

inline constexpr const char* kDefaultBrokers = "127.0.0.1:9091,127.0.0.1:9092,127.0.0.1:9093";

enum class Command {
  kNone,
  kVersion,
  kHealth,
  kTopicCreate,
  kTopicList,
  kTopicDescribe,
  kTopicDelete,
  kClusterInfo,
  kProduce,
  kConsume,
  kBench,
};

struct CliArgs {
  Command command = Command::kNone;
  std::string brokers;  // filled from the flag, $SKIFF_BROKERS, or kDefaultBrokers
  std::string format = "text";
  int timeout_ms = 2000;  // health: per broker

  // topic create / describe / delete
  std::string topic;
  int partitions = 1;
  int replication_factor = 1;
  std::vector<std::string> configs;  // k=v
  bool include_internal = false;

  // produce / consume
  int partition = -1;
  std::string key;
  bool has_key = false;
  std::string acks = "all";
  std::string offset = "earliest";
  bool follow = false;
  int64_t max_records = -1;  // -1: no limit

  // bench
  int producers = 1;
  int window = 5;
  int64_t outstanding = 10000;  // records in flight per producer thread
  int linger_ms = 5;
  int batch_kib = 256;
  int record_size = 100;
  int seconds = 10;
  bool create = false;
};

// Builds the parser; CLI11 writes results into `args` during parse. The selected command is
// filled by ResolveCommand() after parsing.
std::unique_ptr<CLI::App> MakeApp(CliArgs& args);
void ResolveCommand(const CLI::App& app, CliArgs& args);

// Parses argv into args; returns nullopt to go on, or the exit code to stop with (help: 0,
// usage error: 2 — CLI11's message already printed).
std::optional<int> ParseCommandLine(int argc, const char* const* argv, CliArgs& args);

// Value parsers shared by commands (kInvalidArgument on bad input).
Result<v1::Acks> ParseAcks(const std::string& acks);
Result<v1::TopicConfig> ParseTopicConfigs(const std::vector<std::string>& configs);

// --offset: a number, "earliest" or "latest".
struct StartOffset {
  enum class Kind { kExact, kEarliest, kLatest } kind = Kind::kEarliest;
  int64_t offset = 0;
};
Result<StartOffset> ParseStartOffset(const std::string& text);

}  // namespace skiff::cli
