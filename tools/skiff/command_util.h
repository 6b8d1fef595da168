// Helpers the commands share: building a Client from --brokers, and reporting a failed Status.
#pragma once

#include <memory>

#include "cli_args.h"
#include "client/client.h"
#include "output.h"

namespace skiff::cli {

// Prints "skiff: <what>: <status>" to stderr; returns kExitFailed, or kExitUsage for
// kInvalidArgument raised before contacting a broker (is_usage).
int ReportFailure(const std::string& what, const Status& status, bool is_usage = false);

Format OutputFormat(const CliArgs& args);

// nullptr after reporting a usage error (bad --brokers).
std::unique_ptr<client::Client> MakeClient(const CliArgs& args);

}  // namespace skiff::cli
