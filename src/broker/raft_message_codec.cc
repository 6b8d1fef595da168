#include "broker/raft_message_codec.h"

#include <string>
#include <utility>

#include "common/assert.h"
#include "common/crc32c.h"

namespace skiff::broker {
namespace {

constexpr uint32_t kMaxMessageType = static_cast<uint32_t>(raft::MessageType::kReadIndexResponse);
constexpr uint32_t kMaxEntryType = static_cast<uint32_t>(raft::EntryType::kConfChange);

// A membership list from a peer: node ids are non-zero, sorted and unique (ConfState's invariant).
Status DecodeNodeList(const google::protobuf::RepeatedField<uint64_t>& in, const char* what,
                      std::vector<raft::NodeId>* out) {
  out->reserve(in.size());
  for (uint64_t id : in) {
    if (id == raft::kNoNode) return InvalidArgumentError(std::string(what) + ": node id 0");
    if (!out->empty() && out->back() >= id) {
      return InvalidArgumentError(std::string(what) + ": not sorted and unique");
    }
    out->push_back(id);
  }
  return Status::Ok();
}

bool Disjoint(const std::vector<raft::NodeId>& a, const std::vector<raft::NodeId>& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (a[i] == b[j]) return false;
    if (a[i] < b[j]) {
      ++i;
    } else {
      ++j;
    }
  }
  return true;
}

}  // namespace

void EncodeRaftMessage(RaftGroupId group, const raft::Message& m, internal::RaftMessage* out) {
  out->Clear();
  out->set_group(group.value());
  out->set_type(static_cast<uint32_t>(m.type));
  out->set_from(m.from);
  out->set_to(m.to);
  out->set_term(m.term);
  out->set_log_term(m.log_term);
  out->set_index(m.index);
  out->mutable_entries()->Reserve(static_cast<int>(m.entries.size()));
  for (const raft::Entry& e : m.entries) {
    internal::RaftEntry* pe = out->add_entries();
    pe->set_term(e.term);
    pe->set_index(e.index);
    pe->set_type(static_cast<uint32_t>(e.type));
    pe->set_data(e.data.data(), e.data.size());
    pe->set_crc32c(Crc32c(e.data.data(), e.data.size()));
  }
  out->set_commit(m.commit);
  out->set_reject(m.reject);
  out->set_reject_hint(m.reject_hint);
  out->set_reject_hint_term(m.reject_hint_term);
  out->set_context(m.context);
  out->set_quiesce(m.quiesce);
  if (m.snapshot.has_value()) {
    const raft::Snapshot& s = *m.snapshot;
    internal::RaftSnapshotMeta* meta = out->mutable_snapshot_meta();
    meta->set_index(s.meta.index);
    meta->set_term(s.meta.term);
    meta->mutable_voters()->Add(s.meta.conf.voters.begin(), s.meta.conf.voters.end());
    meta->mutable_learners()->Add(s.meta.conf.learners.begin(), s.meta.conf.learners.end());
    out->set_snapshot_data(s.data.data(), s.data.size());
    out->set_snapshot_crc32c(Crc32c(s.data.data(), s.data.size()));
  }
}

Result<GroupMessage> DecodeRaftMessage(const internal::RaftMessage& in) {
  if (in.type() > kMaxMessageType) {
    return InvalidArgumentError("raft message: unknown type " + std::to_string(in.type()));
  }
  if (in.from() == raft::kNoNode || in.to() == raft::kNoNode) {
    return InvalidArgumentError("raft message: from/to must be non-zero");
  }
  GroupMessage gm;
  gm.group = RaftGroupId(in.group());
  raft::Message& m = gm.message;
  m.type = static_cast<raft::MessageType>(in.type());
  m.from = in.from();
  m.to = in.to();
  m.term = in.term();
  m.log_term = in.log_term();
  m.index = in.index();
  m.commit = in.commit();
  m.reject = in.reject();
  m.reject_hint = in.reject_hint();
  m.reject_hint_term = in.reject_hint_term();
  m.context = in.context();
  m.quiesce = in.quiesce();

  m.entries.reserve(in.entries_size());
  for (const internal::RaftEntry& pe : in.entries()) {
    if (pe.type() > kMaxEntryType) {
      return InvalidArgumentError("raft entry: unknown type " + std::to_string(pe.type()));
    }
    if (Crc32c(pe.data()) != pe.crc32c()) {
      return CorruptionError("raft entry " + std::to_string(pe.index()) + ": CRC32C mismatch");
    }
    raft::Entry& e = m.entries.emplace_back();
    e.term = pe.term();
    e.index = pe.index();
    e.type = static_cast<raft::EntryType>(pe.type());
    e.data = Bytes(std::string(pe.data()));
  }

  const bool is_snapshot = m.type == raft::MessageType::kSnapshot;
  if (in.has_snapshot_meta() != is_snapshot) {
    return InvalidArgumentError(is_snapshot ? "kSnapshot without a snapshot"
                                            : "snapshot on a message that is not kSnapshot");
  }
  if (!is_snapshot && (!in.snapshot_data().empty() || in.snapshot_crc32c() != 0)) {
    return InvalidArgumentError("snapshot data on a message that is not kSnapshot");
  }
  if (is_snapshot) {
    const internal::RaftSnapshotMeta& meta = in.snapshot_meta();
    if (meta.index() == 0) return InvalidArgumentError("kSnapshot: snapshot index 0");
    if (!m.entries.empty()) return InvalidArgumentError("kSnapshot: carries entries");
    if (Crc32c(in.snapshot_data()) != in.snapshot_crc32c()) {
      return CorruptionError("snapshot at index " + std::to_string(meta.index()) +
                             ": CRC32C mismatch");
    }
    raft::Snapshot s;
    s.meta.index = meta.index();
    s.meta.term = meta.term();
    SKIFF_RETURN_IF_ERROR(DecodeNodeList(meta.voters(), "snapshot voters", &s.meta.conf.voters));
    SKIFF_RETURN_IF_ERROR(
        DecodeNodeList(meta.learners(), "snapshot learners", &s.meta.conf.learners));
    if (!Disjoint(s.meta.conf.voters, s.meta.conf.learners)) {
      return InvalidArgumentError("snapshot: a node is both voter and learner");
    }
    s.data = Bytes(std::string(in.snapshot_data()));
    m.snapshot = std::move(s);
  }
  return gm;
}

bool IsCoalescable(const raft::Message& m) {
  const bool heartbeat = m.type == raft::MessageType::kHeartbeat;
  const bool response = m.type == raft::MessageType::kHeartbeatResponse;
  if (!heartbeat && !response) return false;
  // A row has no room for these; a heartbeat that uses them travels as a full message.
  return m.entries.empty() && !m.snapshot.has_value() && m.log_term == 0 && m.index == 0 &&
         m.reject_hint == 0 && m.reject_hint_term == 0 && (response || !m.reject) &&
         m.from != raft::kNoNode && m.to != raft::kNoNode;
}

void EncodeHeartbeat(RaftGroupId group, const raft::Message& m, internal::GroupHeartbeat* out) {
  SKIFF_ASSERT(IsCoalescable(m));
  out->Clear();
  out->set_group(group.value());
  out->set_term(m.term);
  out->set_commit(m.commit);
  out->set_context(m.context);
  out->set_quiesce(m.quiesce);
  out->set_response(m.type == raft::MessageType::kHeartbeatResponse);
  out->set_reject(m.reject);
}

GroupMessage DecodeHeartbeat(const internal::GroupHeartbeat& in, BrokerId from, BrokerId to) {
  GroupMessage gm;
  gm.group = RaftGroupId(in.group());
  raft::Message& m = gm.message;
  m.type = in.response() ? raft::MessageType::kHeartbeatResponse : raft::MessageType::kHeartbeat;
  m.from = from.value();
  m.to = to.value();
  m.term = in.term();
  m.commit = in.commit();
  m.context = in.context();
  m.quiesce = in.quiesce();
  // Only a response can reject; a reject bit on a leader's heartbeat is meaningless, ignore it.
  m.reject = in.response() && in.reject();
  return gm;
}

size_t ApproximateWireBytes(const raft::Message& m) {
  size_t bytes = 96;
  for (const raft::Entry& e : m.entries) bytes += e.data.size() + 32;
  if (m.snapshot.has_value()) {
    bytes += m.snapshot->data.size() +
             16 * (m.snapshot->meta.conf.voters.size() + m.snapshot->meta.conf.learners.size() + 2);
  }
  return bytes;
}

}  // namespace skiff::broker
