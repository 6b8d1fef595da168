// Conversion between the Raft core's plain messages (raft::Message) and their wire form in the
// inter-broker transport (skiff.internal.RaftMessage / GroupHeartbeat, proto/skiff/internal/
// raft.proto).
//
// Contract
//   * Encoding never fails: whatever the Raft core produced is representable.
//   * Decoding is the trust boundary: the input came from a peer over the network, so every
//     field is checked (message and entry types in range, node ids non-zero, snapshot fields
//     consistent with the message type, membership lists sorted/unique/disjoint) and every
//     entry's and snapshot's CRC32C is verified (kCorruption on mismatch, kInvalidArgument for
//     anything else malformed). Garbage yields a Status, never a crash or an assertion.
//     Raft-level semantics (contiguous indices, terms) are left to raft::RaftNode::Validate.
//   * Payloads: raft::Entry::data is a shared immutable Bytes. Encoding copies it once into the
//     proto (protobuf owns its strings); decoding copies it once out of the proto.
//   * Heartbeats of all groups between two brokers are coalesced into GroupHeartbeat rows that
//     carry only what a heartbeat needs; from/to are implied by the frame (node id == broker
//     id). IsCoalescable says whether a message fits a row losslessly.
//   * Thread-safety: free functions without shared state.
#pragma once

#include "common/ids.h"
#include "common/status.h"
#include "raft/types.h"
#include "skiff/internal/raft.pb.h"

namespace skiff::broker {

// One Raft message and the group it belongs to.
struct GroupMessage {
  RaftGroupId group;
  raft::Message message;
};

void EncodeRaftMessage(RaftGroupId group, const raft::Message& message, internal::RaftMessage* out);
Result<GroupMessage> DecodeRaftMessage(const internal::RaftMessage& in);

// True if `m` is a kHeartbeat or kHeartbeatResponse whose fields all fit a GroupHeartbeat row
// (no entries, no snapshot, no log position or reject hints).
bool IsCoalescable(const raft::Message& m);
// Precondition: IsCoalescable(m).
void EncodeHeartbeat(RaftGroupId group, const raft::Message& m, internal::GroupHeartbeat* out);
// Rows have no failure modes beyond what the types allow: any row decodes to a valid heartbeat.
GroupMessage DecodeHeartbeat(const internal::GroupHeartbeat& in, BrokerId from, BrokerId to);

// Bytes a message counts for when cutting frames (payloads plus a per-message allowance).
size_t ApproximateWireBytes(const raft::Message& m);

}  // namespace skiff::broker
