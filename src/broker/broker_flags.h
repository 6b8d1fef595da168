// skiffd's command-line configuration, parsed once at start-up and checked as a whole, so a bad
// flag is a one-line error and a non-zero exit rather than a half-started broker.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace skiff::broker {

struct MetadataVoter {
  int64_t broker_id = 0;
  std::string raft_address;  // host:port of its inter-broker listener
  friend bool operator==(const MetadataVoter&, const MetadataVoter&) = default;
};

struct BrokerOptions {
  int64_t broker_id = 0;
  std::string client_address;  // host:port for clients
  std::string raft_address;    // host:port for other brokers
  std::string data_dir;
  std::string rack;
  std::vector<MetadataVoter> metadata_voters;
};

// "1@127.0.0.1:9101,2@127.0.0.1:9102" -> voters. kInvalidArgument on any malformed part.
Result<std::vector<MetadataVoter>> ParseMetadataVoters(std::string_view spec);

// "host:port" with a port in 1..65535.
Status ValidateListenAddress(std::string_view flag_name, std::string_view address);

// Checks the options as a whole (ids positive, addresses valid and distinct, this broker's
// place among the voters consistent).
Status ValidateBrokerOptions(const BrokerOptions& options);

// Creates the data directory if needed and checks it is a writable directory.
Status PrepareDataDir(const std::string& data_dir);

}  // namespace skiff::broker
