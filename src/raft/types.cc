#include "raft/types.h"

namespace skiff::raft {

std::string EncodeConfChange(const ConfChange& cc) {
  std::string out(9, '\0');
  out[0] = static_cast<char>(cc.type);
  for (int i = 0; i < 8; ++i) out[1 + i] = static_cast<char>((cc.node >> (8 * i)) & 0xff);
  return out;
}

std::optional<ConfChange> DecodeConfChange(std::string_view data) {
  if (data.size() != 9) return std::nullopt;
  const auto type = static_cast<uint8_t>(data[0]);
  if (type > static_cast<uint8_t>(ConfChangeType::kRemoveNode)) return std::nullopt;
  ConfChange cc;
  cc.type = static_cast<ConfChangeType>(type);
  for (int i = 0; i < 8; ++i) {
    cc.node |= static_cast<uint64_t>(static_cast<uint8_t>(data[1 + i])) << (8 * i);
  }
  if (cc.node == kNoNode) return std::nullopt;
  return cc;
}

const char* MessageTypeName(MessageType type) {
  switch (type) {
    case MessageType::kAppend:
      return "Append";
    case MessageType::kAppendResponse:
      return "AppendResponse";
    case MessageType::kVote:
      return "Vote";
    case MessageType::kVoteResponse:
      return "VoteResponse";
    case MessageType::kPreVote:
      return "PreVote";
    case MessageType::kPreVoteResponse:
      return "PreVoteResponse";
    case MessageType::kHeartbeat:
      return "Heartbeat";
    case MessageType::kHeartbeatResponse:
      return "HeartbeatResponse";
    case MessageType::kSnapshot:
      return "Snapshot";
    case MessageType::kTimeoutNow:
      return "TimeoutNow";
    case MessageType::kReadIndex:
      return "ReadIndex";
    case MessageType::kReadIndexResponse:
      return "ReadIndexResponse";
  }
  return "Unknown";
}

const char* RoleName(Role role) {
  switch (role) {
    case Role::kFollower:
      return "Follower";
    case Role::kPreCandidate:
      return "PreCandidate";
    case Role::kCandidate:
      return "Candidate";
    case Role::kLeader:
      return "Leader";
  }
  return "Unknown";
}

}  // namespace skiff::raft
