#include "cli_args.h"

#include <charconv>
#include <cstdlib>

namespace skiff::cli {
namespace {

bool ParseInt64(std::string_view s, int64_t& out) {
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

// Options of the top-level app; subcommands fall through to them, so they may come before or
// after the command (`skiff --brokers X topic list` and `skiff topic list --brokers X`).
void AddCommon(CLI::App* app, CliArgs& args) {
  app->add_option("--brokers", args.brokers,
                  "Comma-separated host:port list (default: $SKIFF_BROKERS, else " +
                      std::string(kDefaultBrokers) + ")");
  app->add_option("--format", args.format, "Output format")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
}

}  // namespace

std::unique_ptr<CLI::App> MakeApp(CliArgs& args) {
  auto app = std::make_unique<CLI::App>("skiff: command-line tool for Skiff clusters");
  app->require_subcommand(1);
  AddCommon(app.get(), args);

  CLI::App* version = app->add_subcommand("version", "Print the version");
  version->fallthrough();

  CLI::App* health = app->add_subcommand("health", "Check each broker's gRPC health");
  health->fallthrough();
  health->add_option("--timeout-ms", args.timeout_ms, "Per-broker deadline")->capture_default_str();

  CLI::App* topic = app->add_subcommand("topic", "Create, list, describe and delete topics");
  topic->require_subcommand(1);
  topic->fallthrough();
  CLI::App* create = topic->add_subcommand("create", "Create a topic");
  create->fallthrough();
  create->add_option("name", args.topic, "Topic name")->required();
  create->add_option("--partitions", args.partitions, "Number of partitions")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  create->add_option("--replication-factor", args.replication_factor, "Replicas per partition")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  create->add_option("--config", args.configs,
                     "k=v: retention_ms, retention_bytes, max_message_bytes, "
                     "min_insync_replicas (repeatable)");
  CLI::App* list = topic->add_subcommand("list", "List topics");
  list->fallthrough();
  list->add_flag("--internal", args.include_internal, "Include internal topics");
  CLI::App* describe = topic->add_subcommand("describe", "Describe a topic");
  describe->fallthrough();
  describe->add_option("name", args.topic, "Topic name")->required();
  CLI::App* del = topic->add_subcommand("delete", "Delete a topic");
  del->fallthrough();
  del->add_option("name", args.topic, "Topic name")->required();

  CLI::App* cluster = app->add_subcommand("cluster", "Cluster-wide information");
  cluster->require_subcommand(1);
  cluster->fallthrough();
  CLI::App* info = cluster->add_subcommand("info", "Brokers, controller and partition health");
  info->fallthrough();

  CLI::App* produce = app->add_subcommand("produce", "Produce stdin lines, one record each");
  produce->fallthrough();
  produce->add_option("topic", args.topic, "Topic")->required();
  produce->add_option("--partition", args.partition, "Partition (default: by key/round-robin)")
      ->check(CLI::Range(0, 1 << 30));
  produce->add_option("--key", args.key, "Key for every record");
  produce->add_option("--acks", args.acks, "all | leader | none")
      ->check(CLI::IsMember({"all", "leader", "none"}))
      ->capture_default_str();

  CLI::App* consume = app->add_subcommand("consume", "Print a partition's records");
  consume->fallthrough();
  consume->add_option("topic", args.topic, "Topic")->required();
  consume->add_option("--partition", args.partition, "Partition")
      ->required()
      ->check(CLI::Range(0, 1 << 30));
  consume->add_option("--offset", args.offset, "N | earliest | latest")->capture_default_str();
  consume->add_flag("--follow", args.follow, "Keep waiting for new records");
  consume->add_option("--max-records", args.max_records, "Stop after this many records")
      ->check(CLI::Range(int64_t{1}, INT64_MAX));

  CLI::App* bench = app->add_subcommand("bench", "Produce for a while, read it all back");
  bench->fallthrough();
  bench->add_option("--topic", args.topic, "Topic")->required();
  bench->add_option("--producers", args.producers, "Producer threads")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  bench->add_option("--partitions", args.partitions, "Partitions (with --create)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  bench
      ->add_option("--replication-factor", args.replication_factor,
                   "Replicas per partition (with --create)")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  bench->add_option("--record-size", args.record_size, "Value bytes per record")
      ->check(CLI::Range(1, 16 << 20))
      ->capture_default_str();
  bench->add_option("--acks", args.acks, "all | leader | none")
      ->check(CLI::IsMember({"all", "leader", "none"}))
      ->capture_default_str();
  bench->add_option("--window", args.window, "Batches in flight per partition")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  bench
      ->add_option("--outstanding", args.outstanding,
                   "Records each producer thread keeps in flight (1: one at a time, for "
                   "latency)")
      ->check(CLI::Range(int64_t{1}, int64_t{1000000}))
      ->capture_default_str();
  bench->add_option("--linger-ms", args.linger_ms, "How long a partial batch waits to fill")
      ->check(CLI::Range(0, 10000))
      ->capture_default_str();
  bench->add_option("--batch-kib", args.batch_kib, "Largest batch, in KiB")
      ->check(CLI::Range(1, 16384))
      ->capture_default_str();
  bench->add_option("--seconds", args.seconds, "How long to produce")
      ->check(CLI::Range(1, 600))
      ->capture_default_str();
  bench->add_flag("--create", args.create, "Create the topic first");
  return app;
}

void ResolveCommand(const CLI::App& app, CliArgs& args) {
  args.has_key = false;
  auto sub = [&app](const char* name) { return app.get_subcommand(name); };
  if (sub("version")->parsed()) {
    args.command = Command::kVersion;
  } else if (sub("health")->parsed()) {
    args.command = Command::kHealth;
  } else if (CLI::App* topic = sub("topic"); topic->parsed()) {
    if (topic->get_subcommand("create")->parsed()) args.command = Command::kTopicCreate;
    if (topic->get_subcommand("list")->parsed()) args.command = Command::kTopicList;
    if (topic->get_subcommand("describe")->parsed()) args.command = Command::kTopicDescribe;
    if (topic->get_subcommand("delete")->parsed()) args.command = Command::kTopicDelete;
  } else if (sub("cluster")->parsed()) {
    args.command = Command::kClusterInfo;
  } else if (CLI::App* produce = sub("produce"); produce->parsed()) {
    args.command = Command::kProduce;
    args.has_key = produce->get_option("--key")->count() > 0;
  } else if (sub("consume")->parsed()) {
    args.command = Command::kConsume;
  } else if (sub("bench")->parsed()) {
    args.command = Command::kBench;
  }
  if (args.brokers.empty()) {
    const char* env = std::getenv("SKIFF_BROKERS");
    args.brokers = env != nullptr && *env != '\0' ? env : kDefaultBrokers;
  }
}

std::optional<int> ParseCommandLine(int argc, const char* const* argv, CliArgs& args) {
  std::unique_ptr<CLI::App> app = MakeApp(args);
  try {
    app->parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app->exit(e);  // prints help or the error
    return code == 0 ? kExitOk : kExitUsage;
  }
  ResolveCommand(*app, args);
  return std::nullopt;
}

Result<v1::Acks> ParseAcks(const std::string& acks) {
  if (acks == "all") return v1::ACKS_ALL;
  if (acks == "leader") return v1::ACKS_LEADER;
  if (acks == "none") return v1::ACKS_NONE;
  return InvalidArgumentError("--acks must be all, leader or none, not '" + acks + "'");
}

Result<v1::TopicConfig> ParseTopicConfigs(const std::vector<std::string>& configs) {
  v1::TopicConfig config;
  for (const std::string& kv : configs) {
    const size_t eq = kv.find('=');
    int64_t value = 0;
    if (eq == std::string::npos || !ParseInt64(std::string_view(kv).substr(eq + 1), value)) {
      return InvalidArgumentError("--config '" + kv + "' is not key=<integer>");
    }
    const std::string key = kv.substr(0, eq);
    if (key == "retention_ms") {
      config.set_retention_ms(value);
    } else if (key == "retention_bytes") {
      config.set_retention_bytes(value);
    } else if (key == "max_message_bytes" || key == "min_insync_replicas") {
      if (value < 0 || value > INT32_MAX) {
        return InvalidArgumentError("--config " + key + " is out of range");
      }
      if (key == "max_message_bytes") {
        config.set_max_message_bytes(static_cast<int32_t>(value));
      } else {
        config.set_min_insync_replicas(static_cast<int32_t>(value));
      }
    } else {
      return InvalidArgumentError("unknown topic config '" + key +
                                  "' (retention_ms, retention_bytes, max_message_bytes, "
                                  "min_insync_replicas)");
    }
  }
  return config;
}

Result<StartOffset> ParseStartOffset(const std::string& text) {
  StartOffset start;
  if (text == "earliest") return start;
  if (text == "latest") {
    start.kind = StartOffset::Kind::kLatest;
    return start;
  }
  if (!ParseInt64(text, start.offset) || start.offset < 0) {
    return InvalidArgumentError("--offset must be a number >= 0, earliest or latest, not '" + text +
                                "'");
  }
  start.kind = StartOffset::Kind::kExact;
  return start;
}

}  // namespace skiff::cli
