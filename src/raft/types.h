// Plain data types of the Raft core: entries, messages, persistent state, snapshots.
//
// These are plain structs with no protobuf and no I/O, so the library builds and is tested
// without a network or a disk. Hosts convert them at the edges (the gRPC transport, the RocksDB
// log). Entry::data is a shared immutable buffer, so those conversions copy headers, not payloads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/bytes.h"

namespace skiff::raft {

using Term = uint64_t;
using Index = uint64_t;
using NodeId = uint64_t;

// Node ids are never 0; 0 means "nobody" (no leader known, no vote cast).
inline constexpr NodeId kNoNode = 0;

enum class EntryType : uint8_t {
  kNormal = 0,      // application data; an empty kNormal entry is the leader's term no-op
  kConfChange = 1,  // data is an encoded ConfChange (EncodeConfChange)
};

struct Entry {
  Term term = 0;
  Index index = 0;
  EntryType type = EntryType::kNormal;
  Bytes data;

  // Bytes this entry counts for in flow control and size limits.
  uint64_t SizeBytes() const { return data.size() + 24; }
  friend bool operator==(const Entry&, const Entry&) = default;
};

// What must survive a crash besides the log (Raft paper, figure 2).
struct HardState {
  Term term = 0;
  NodeId vote = kNoNode;
  Index commit = 0;  // persisted so a restarted node need not re-learn it; may lag
  friend bool operator==(const HardState&, const HardState&) = default;
};

// The membership of a group. Single-server changes: at most one change is in flight at a time,
// so there is never a joint configuration.
struct ConfState {
  std::vector<NodeId> voters;  // sorted, unique
  std::vector<NodeId>
      learners;  // sorted, unique, disjoint from voters; receive the log, never vote
  friend bool operator==(const ConfState&, const ConfState&) = default;
};

enum class ConfChangeType : uint8_t {
  kAddVoter = 0,    // add a new voter, or promote an existing learner to voter
  kAddLearner = 1,  // add a new learner (or demote a voter to learner)
  kRemoveNode = 2,  // remove a voter or a learner
};

struct ConfChange {
  ConfChangeType type = ConfChangeType::kAddVoter;
  NodeId node = kNoNode;
  friend bool operator==(const ConfChange&, const ConfChange&) = default;
};

// Stable binary encoding of a ConfChange as stored in a kConfChange entry (9 bytes:
// type, then node id as little-endian uint64). DecodeConfChange returns nullopt on bad input.
std::string EncodeConfChange(const ConfChange& cc);
std::optional<ConfChange> DecodeConfChange(std::string_view data);

struct SnapshotMeta {
  Index index = 0;  // last index the snapshot covers
  Term term = 0;    // term of that entry
  ConfState conf;   // membership as of `index`
  friend bool operator==(const SnapshotMeta&, const SnapshotMeta&) = default;
};

struct Snapshot {
  SnapshotMeta meta;
  Bytes data;  // the application's state machine image, opaque to Raft
  bool empty() const { return meta.index == 0; }
  friend bool operator==(const Snapshot&, const Snapshot&) = default;
};

enum class MessageType : uint8_t {
  kAppend,             // leader -> follower: entries after (index, log_term); also carries commit
  kAppendResponse,     // follower -> leader: index = last matching index, or reject + hint
  kVote,               // candidate -> all: index/log_term = candidate's last entry
  kVoteResponse,       // reject = vote not granted
  kPreVote,            // like kVote, term = the term the candidate *would* use; changes no state
  kPreVoteResponse,    //
  kHeartbeat,          // leader -> follower: commit (capped at follower's match), context
  kHeartbeatResponse,  // follower -> leader: context echoed (ReadIndex confirmation);
                       // reject = "I was woken from quiescence": wakes a quiesced leader
  kSnapshot,           // leader -> follower: snapshot to install
  kTimeoutNow,         // leader -> transfer target: campaign now, skipping pre-vote
  kReadIndex,          // follower -> leader: forwarded read request (context)
  kReadIndexResponse,  // leader -> follower: index = read index for context; reject = failed
};

const char* MessageTypeName(MessageType type);

struct Message {
  MessageType type = MessageType::kAppend;
  NodeId from = kNoNode;
  NodeId to = kNoNode;
  Term term = 0;      // sender's current term (for kPreVote: the term it would campaign at)
  Term log_term = 0;  // kAppend: term at `index`; kVote/kPreVote: term of last log entry
  Index index = 0;    // kAppend: entry preceding `entries`; responses: see MessageType
  std::vector<Entry> entries;
  Index commit = 0;
  bool reject = false;
  Index reject_hint = 0;      // kAppendResponse reject: follower's last index (or conflict index)
  Term reject_hint_term = 0;  // kAppendResponse reject: follower's term at reject_hint
  uint64_t context = 0;       // ReadIndex request id; heartbeat round id; vote: 1 = transfer
  bool quiesce = false;       // kHeartbeat: the leader is going quiet; followers stop timers
  std::optional<Snapshot> snapshot;  // kSnapshot only
};

enum class Role : uint8_t { kFollower, kPreCandidate, kCandidate, kLeader };
const char* RoleName(Role role);

// Volatile state the host may want to observe (leader changes for routing, role for metrics).
struct SoftState {
  NodeId leader = kNoNode;
  Role role = Role::kFollower;
  friend bool operator==(const SoftState&, const SoftState&) = default;
};

// The answer to a ReadIndex request: once the host has applied through `index`, a read of the
// state machine reflects every write committed before the request was made (linearizable).
struct ReadState {
  uint64_t context = 0;
  Index index = 0;
};

}  // namespace skiff::raft
