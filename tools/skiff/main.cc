// skiff: the command-line tool for Skiff clusters. Parsing lives in cli_args, each command in
// its own file; this only dispatches. Exit codes: 0 ok, 1 operation failed, 2 usage error.
#include <absl/synchronization/mutex.h>

#include <cstdio>
#include <exception>

#include "cli_args.h"
#include "commands.h"

namespace {

constexpr const char* kVersion = "0.1.0-dev";

int Dispatch(const skiff::cli::CliArgs& args) {
  using skiff::cli::Command;
  switch (args.command) {
    case Command::kVersion:
      std::printf("skiff %s\n", kVersion);
      return skiff::cli::kExitOk;
    case Command::kHealth:
      return skiff::cli::RunHealth(args);
    case Command::kTopicCreate:
      return skiff::cli::RunTopicCreate(args);
    case Command::kTopicList:
      return skiff::cli::RunTopicList(args);
    case Command::kTopicDescribe:
      return skiff::cli::RunTopicDescribe(args);
    case Command::kTopicDelete:
      return skiff::cli::RunTopicDelete(args);
    case Command::kClusterInfo:
      return skiff::cli::RunClusterInfo(args);
    case Command::kProduce:
      return skiff::cli::RunProduce(args);
    case Command::kConsume:
      return skiff::cli::RunConsume(args);
    case Command::kBench:
      return skiff::cli::RunBench(args);
    case Command::kNone:
      break;
  }
  return skiff::cli::kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  skiff::cli::CliArgs args;
  if (auto exit_code = skiff::cli::ParseCommandLine(argc, argv, args)) return *exit_code;
  // As in skiffd: Debian's abseil tracks lock order on every gRPC mutex; the bench feels it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // CLI11 and nlohmann report with exceptions; none may escape main.
  try {
    return Dispatch(args);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "skiff: %s\n", e.what());
    return skiff::cli::kExitFailed;
  }
}
