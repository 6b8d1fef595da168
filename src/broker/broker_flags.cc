#include "broker/broker_flags.h"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

namespace skiff::broker {
namespace {

bool ParseInt64(std::string_view s, int64_t& out) {
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

}  // namespace

Status ValidateListenAddress(std::string_view flag_name, std::string_view address) {
  size_t colon = address.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return InvalidArgumentError("--" + std::string(flag_name) + "='" + std::string(address) +
                                "' is not host:port");
  }
  int64_t port = 0;
  if (!ParseInt64(address.substr(colon + 1), port) || port < 1 || port > 65535) {
    return InvalidArgumentError("--" + std::string(flag_name) + "='" + std::string(address) +
                                "' has no valid port (1-65535)");
  }
  return Status::Ok();
}

Result<std::vector<MetadataVoter>> ParseMetadataVoters(std::string_view spec) {
  std::vector<MetadataVoter> voters;
  std::set<int64_t> seen;
  while (!spec.empty()) {
    size_t comma = spec.find(',');
    std::string_view part = spec.substr(0, comma);
    spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
    size_t at = part.find('@');
    MetadataVoter voter;
    if (at == std::string_view::npos || !ParseInt64(part.substr(0, at), voter.broker_id) ||
        voter.broker_id < 1) {
      return InvalidArgumentError("--metadata_voters entry '" + std::string(part) +
                                  "' is not <broker id >= 1>@<host:port>");
    }
    voter.raft_address = std::string(part.substr(at + 1));
    SKIFF_RETURN_IF_ERROR(ValidateListenAddress("metadata_voters", voter.raft_address));
    if (!seen.insert(voter.broker_id).second) {
      return InvalidArgumentError("--metadata_voters names broker " +
                                  std::to_string(voter.broker_id) + " twice");
    }
    voters.push_back(std::move(voter));
  }
  if (voters.empty()) return InvalidArgumentError("--metadata_voters is empty");
  return voters;
}

Status ValidateBrokerOptions(const BrokerOptions& options) {
  if (options.broker_id < 1) {
    return InvalidArgumentError("--broker_id must be >= 1, got " +
                                std::to_string(options.broker_id));
  }
  SKIFF_RETURN_IF_ERROR(ValidateListenAddress("listen", options.client_address));
  SKIFF_RETURN_IF_ERROR(ValidateListenAddress("raft_listen", options.raft_address));
  if (options.client_address == options.raft_address) {
    return InvalidArgumentError("--listen and --raft_listen must differ");
  }
  if (options.data_dir.empty()) return InvalidArgumentError("--data_dir is required");
  for (const MetadataVoter& v : options.metadata_voters) {
    if (v.broker_id == options.broker_id && v.raft_address != options.raft_address) {
      return InvalidArgumentError("--metadata_voters lists this broker at " + v.raft_address +
                                  " but --raft_listen is " + options.raft_address);
    }
  }
  return Status::Ok();
}

Status PrepareDataDir(const std::string& data_dir) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return IoError("cannot create --data_dir " + data_dir + ": " + ec.message());
  if (!std::filesystem::is_directory(data_dir, ec)) {
    return InvalidArgumentError("--data_dir " + data_dir + " is not a directory");
  }
  std::filesystem::path probe = std::filesystem::path(data_dir) / ".skiff-write-probe";
  {
    std::ofstream out(probe);
    out << "probe";
    if (!out.good()) {
      return IoError("--data_dir " + data_dir + " is not writable: " + std::strerror(errno));
    }
  }
  std::filesystem::remove(probe, ec);
  return Status::Ok();
}

}  // namespace skiff::broker
