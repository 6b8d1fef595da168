// The skiff commands. Each returns the process exit code (see cli_args.h) and reports failures
// on stderr; output goes to stdout in the requested format.
#pragma once

#include "cli_args.h"

namespace skiff::cli {

int RunHealth(const CliArgs& args);
int RunTopicCreate(const CliArgs& args);
int RunTopicList(const CliArgs& args);
int RunTopicDescribe(const CliArgs& args);
int RunTopicDelete(const CliArgs& args);
int RunClusterInfo(const CliArgs& args);
int RunProduce(const CliArgs& args);
int RunConsume(const CliArgs& args);
int RunBench(const CliArgs& args);

}  // namespace skiff::cli
