#include "cli_args.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace skiff::cli {
namespace {

// Parses like main() does; returns the early exit code or -1 to mean "run the command".
int Parse(std::vector<std::string> argv, CliArgs& args) {
  argv.insert(argv.begin(), "skiff");
  std::vector<const char*> raw;
  for (const std::string& a : argv) raw.push_back(a.c_str());
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  std::optional<int> code = ParseCommandLine(static_cast<int>(raw.size()), raw.data(), args);
  testing::internal::GetCapturedStdout();
  testing::internal::GetCapturedStderr();
  return code.value_or(-1);
}

TEST(CliArgs, TopicCreate) {
  CliArgs args;
  ASSERT_EQ(Parse({"topic", "create", "orders", "--partitions", "6", "--replication-factor", "3",
                   "--config", "retention_ms=1000", "--config", "min_insync_replicas=2",
                   "--brokers", "a:1,b:2", "--format", "json"},
                  args),
            -1);
  EXPECT_EQ(args.command, Command::kTopicCreate);
  EXPECT_EQ(args.topic, "orders");
  EXPECT_EQ(args.partitions, 6);
  EXPECT_EQ(args.replication_factor, 3);
  EXPECT_EQ(args.configs.size(), 2u);
  EXPECT_EQ(args.brokers, "a:1,b:2");
  EXPECT_EQ(args.format, "json");
}

TEST(CliArgs, CommonOptionsBeforeTheCommand) {
  CliArgs args;
  ASSERT_EQ(Parse({"--brokers", "x:1", "--format", "json", "cluster", "info"}, args), -1);
  EXPECT_EQ(args.command, Command::kClusterInfo);
  EXPECT_EQ(args.brokers, "x:1");
  EXPECT_EQ(args.format, "json");
}

TEST(CliArgs, BrokersDefaultFromEnvironmentThenLocalCluster) {
  ::unsetenv("SKIFF_BROKERS");
  CliArgs args;
  ASSERT_EQ(Parse({"topic", "list"}, args), -1);
  EXPECT_EQ(args.command, Command::kTopicList);
  EXPECT_EQ(args.brokers, kDefaultBrokers);
  ::setenv("SKIFF_BROKERS", "env:9", 1);
  CliArgs from_env;
  ASSERT_EQ(Parse({"cluster", "info"}, from_env), -1);
  EXPECT_EQ(from_env.command, Command::kClusterInfo);
  EXPECT_EQ(from_env.brokers, "env:9");
  ::unsetenv("SKIFF_BROKERS");
}

TEST(CliArgs, ProduceAndConsume) {
  CliArgs produce;
  ASSERT_EQ(Parse({"produce", "t", "--key", "k", "--acks", "leader"}, produce), -1);
  EXPECT_EQ(produce.command, Command::kProduce);
  EXPECT_TRUE(produce.has_key);
  EXPECT_EQ(produce.key, "k");
  EXPECT_EQ(produce.partition, -1);
  EXPECT_EQ(produce.acks, "leader");

  CliArgs consume;
  ASSERT_EQ(Parse({"consume", "t", "--partition", "2", "--offset", "latest", "--follow",
                   "--max-records", "10"},
                  consume),
            -1);
  EXPECT_EQ(consume.command, Command::kConsume);
  EXPECT_EQ(consume.partition, 2);
  EXPECT_EQ(consume.offset, "latest");
  EXPECT_TRUE(consume.follow);
  EXPECT_EQ(consume.max_records, 10);
}

TEST(CliArgs, Bench) {
  CliArgs args;
  ASSERT_EQ(
      Parse({"bench", "--topic", "b", "--producers", "4", "--partitions", "8", "--record-size",
             "512", "--acks", "all", "--window", "10", "--seconds", "30", "--create"},
            args),
      -1);
  EXPECT_EQ(args.command, Command::kBench);
  EXPECT_EQ(args.producers, 4);
  EXPECT_EQ(args.partitions, 8);
  EXPECT_EQ(args.record_size, 512);
  EXPECT_EQ(args.window, 10);
  EXPECT_EQ(args.seconds, 30);
  EXPECT_TRUE(args.create);
}

TEST(CliArgs, UsageErrorsExitTwo) {
  for (std::vector<std::string> argv : std::vector<std::vector<std::string>>{
           {},
           {"nonsense"},
           {"topic", "create"},                            // name missing
           {"consume", "t"},                               // --partition missing
           {"produce", "t", "--acks", "maybe"},            // not a choice
           {"bench", "--topic", "b", "--seconds", "601"},  // over the bound
           {"topic", "list", "--format", "xml"},
       }) {
    CliArgs args;
    EXPECT_EQ(Parse(argv, args), kExitUsage) << testing::PrintToString(argv);
  }
  CliArgs help;
  EXPECT_EQ(Parse({"--help"}, help), kExitOk);
}

TEST(CliArgs, ValueParsers) {
  EXPECT_EQ(*ParseAcks("none"), v1::ACKS_NONE);
  EXPECT_FALSE(ParseAcks("some").ok());

  Result<v1::TopicConfig> config = ParseTopicConfigs({"retention_bytes=1048576"});
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->retention_bytes(), 1048576);
  EXPECT_FALSE(config->has_retention_ms());
  EXPECT_FALSE(ParseTopicConfigs({"retention_ms"}).ok());
  EXPECT_FALSE(ParseTopicConfigs({"colour=blue"}).ok());
  EXPECT_FALSE(ParseTopicConfigs({"max_message_bytes=99999999999"}).ok());

  EXPECT_EQ(ParseStartOffset("earliest")->kind, StartOffset::Kind::kEarliest);
  EXPECT_EQ(ParseStartOffset("latest")->kind, StartOffset::Kind::kLatest);
  EXPECT_EQ(ParseStartOffset("42")->offset, 42);
  EXPECT_FALSE(ParseStartOffset("-1").ok());
  EXPECT_FALSE(ParseStartOffset("4x").ok());
}

}  // namespace
}  // namespace skiff::cli
