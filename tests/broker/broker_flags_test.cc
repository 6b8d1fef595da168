#include "broker/broker_flags.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

namespace skiff::broker {
namespace {

TEST(BrokerFlagsTest, ParsesMetadataVoters) {
  auto voters = ParseMetadataVoters("1@127.0.0.1:9101,2@127.0.0.1:9102,3@localhost:9103");
  ASSERT_TRUE(voters.ok()) << voters.status().ToString();
  ASSERT_EQ(voters->size(), 3u);
  EXPECT_EQ((*voters)[1], (MetadataVoter{2, "127.0.0.1:9102"}));
}

TEST(BrokerFlagsTest, RejectsMalformedVoters) {
  for (const char* bad : {"", "1", "x@127.0.0.1:1", "0@127.0.0.1:1", "1@127.0.0.1", "1@127.0.0.1:0",
                          "1@127.0.0.1:70000", "1@h:1,1@h:2", "1@:5"}) {
    auto voters = ParseMetadataVoters(bad);
    EXPECT_FALSE(voters.ok()) << bad;
    if (!voters.ok()) {
      EXPECT_EQ(voters.status().code(), StatusCode::kInvalidArgument) << bad;
    }
  }
}

BrokerOptions Good() {
  BrokerOptions o;
  o.broker_id = 1;
  o.client_address = "127.0.0.1:9092";
  o.raft_address = "127.0.0.1:9192";
  o.data_dir = "/tmp/x";
  o.metadata_voters = {{1, "127.0.0.1:9192"}, {2, "127.0.0.1:9193"}};
  return o;
}

TEST(BrokerFlagsTest, ValidatesOptionsAsAWhole) {
  EXPECT_TRUE(ValidateBrokerOptions(Good()).ok());
  auto o = Good();
  o.broker_id = 0;
  EXPECT_EQ(ValidateBrokerOptions(o).code(), StatusCode::kInvalidArgument);
  o = Good();
  o.raft_address = o.client_address;
  EXPECT_EQ(ValidateBrokerOptions(o).code(), StatusCode::kInvalidArgument);
  o = Good();
  o.data_dir.clear();
  EXPECT_EQ(ValidateBrokerOptions(o).code(), StatusCode::kInvalidArgument);
  o = Good();
  o.metadata_voters[0].raft_address = "127.0.0.1:1";  // this broker listed elsewhere
  Status s = ValidateBrokerOptions(o);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("--raft_listen"), std::string::npos) << s.message();
}

TEST(BrokerFlagsTest, DataDirIsCreatedAndMustBeWritable) {
  auto base =
      std::filesystem::temp_directory_path() / ("skiff-flags-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(base);
  EXPECT_TRUE(PrepareDataDir((base / "a" / "b").string()).ok());
  EXPECT_TRUE(std::filesystem::is_directory(base / "a" / "b"));

  // A path that is a file, not a directory.
  std::filesystem::path file = base / "file";
  {
    std::FILE* f = std::fopen(file.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fclose(f);
  }
  EXPECT_FALSE(PrepareDataDir(file.string()).ok());

  // A read-only directory (root ignores permissions, so only check when not root).
  if (::geteuid() != 0) {
    std::filesystem::path ro = base / "ro";
    std::filesystem::create_directories(ro);
    std::filesystem::permissions(
        ro, std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec);
    EXPECT_EQ(PrepareDataDir(ro.string()).code(), StatusCode::kIoError);
    std::filesystem::permissions(ro, std::filesystem::perms::owner_all);
  }
  std::filesystem::remove_all(base);
}

}  // namespace
}  // namespace skiff::broker
