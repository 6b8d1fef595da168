// The wire form of Raft messages between brokers: every message type round-trips, heartbeats
// coalesce losslessly, and whatever a peer sends is validated (CRC, types, snapshot fields)
// without crashing.
#include "broker/raft_message_codec.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace skiff::broker {
namespace {

using raft::MessageType;

constexpr MessageType kAllTypes[] = {
    MessageType::kAppend,       MessageType::kAppendResponse,    MessageType::kVote,
    MessageType::kVoteResponse, MessageType::kPreVote,           MessageType::kPreVoteResponse,
    MessageType::kHeartbeat,    MessageType::kHeartbeatResponse, MessageType::kSnapshot,
    MessageType::kTimeoutNow,   MessageType::kReadIndex,         MessageType::kReadIndexResponse};

raft::Message FullMessage(MessageType type) {
  raft::Message m;
  m.type = type;
  m.from = 1;
  m.to = 2;
  m.term = 7;
  m.log_term = 6;
  m.index = 41;
  m.commit = 40;
  m.reject = true;
  m.reject_hint = 39;
  m.reject_hint_term = 5;
  m.context = 0xDEADBEEFCAFEull;
  m.quiesce = true;
  if (type == MessageType::kAppend) {
    m.entries.push_back({.term = 6, .index = 42, .type = raft::EntryType::kNormal, .data = {}});
    m.entries.push_back({.term = 7,
                         .index = 43,
                         .type = raft::EntryType::kNormal,
                         .data = Bytes(std::string("payload"))});
    m.entries.push_back(
        {.term = 7,
         .index = 44,
         .type = raft::EntryType::kConfChange,
         .data = Bytes(raft::EncodeConfChange({raft::ConfChangeType::kAddLearner, 4}))});
  }
  if (type == MessageType::kSnapshot) {
    raft::Snapshot s;
    s.meta.index = 100;
    s.meta.term = 6;
    s.meta.conf.voters = {1, 2, 3};
    s.meta.conf.learners = {5};
    s.data = Bytes(std::string(10000, 'x'));
    m.snapshot = s;
  }
  return m;
}

void ExpectSame(const raft::Message& a, const raft::Message& b) {
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.from, b.from);
  EXPECT_EQ(a.to, b.to);
  EXPECT_EQ(a.term, b.term);
  EXPECT_EQ(a.log_term, b.log_term);
  EXPECT_EQ(a.index, b.index);
  EXPECT_EQ(a.entries, b.entries);
  EXPECT_EQ(a.commit, b.commit);
  EXPECT_EQ(a.reject, b.reject);
  EXPECT_EQ(a.reject_hint, b.reject_hint);
  EXPECT_EQ(a.reject_hint_term, b.reject_hint_term);
  EXPECT_EQ(a.context, b.context);
  EXPECT_EQ(a.quiesce, b.quiesce);
  EXPECT_EQ(a.snapshot, b.snapshot);
}

TEST(RaftMessageCodec, EveryMessageTypeRoundTrips) {
  for (MessageType type : kAllTypes) {
    SCOPED_TRACE(raft::MessageTypeName(type));
    const raft::Message m = FullMessage(type);
    internal::RaftMessage wire;
    EncodeRaftMessage(RaftGroupId(17), m, &wire);
    // Through bytes, as a peer would see it.
    internal::RaftMessage parsed;
    ASSERT_TRUE(parsed.ParseFromString(wire.SerializeAsString()));
    Result<GroupMessage> decoded = DecodeRaftMessage(parsed);
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    EXPECT_EQ(decoded->group, RaftGroupId(17));
    ExpectSame(decoded->message, m);
  }
}

TEST(RaftMessageCodec, DefaultMessageRoundTrips) {
  raft::Message m;
  m.type = MessageType::kVote;
  m.from = 3;
  m.to = 1;
  internal::RaftMessage wire;
  EncodeRaftMessage(RaftGroupId(0), m, &wire);
  Result<GroupMessage> decoded = DecodeRaftMessage(wire);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->group, RaftGroupId(0));
  ExpectSame(decoded->message, m);
}

TEST(RaftMessageCodec, HeartbeatsCoalesceLosslessly) {
  raft::Message hb;
  hb.type = MessageType::kHeartbeat;
  hb.from = 1;
  hb.to = 2;
  hb.term = 9;
  hb.commit = 123;
  hb.context = 77;
  hb.quiesce = true;
  raft::Message resp;
  resp.type = MessageType::kHeartbeatResponse;
  resp.from = 1;
  resp.to = 2;
  resp.term = 9;
  resp.context = 78;
  resp.reject = true;  // woken from quiescence
  for (const raft::Message& m : {hb, resp}) {
    SCOPED_TRACE(raft::MessageTypeName(m.type));
    ASSERT_TRUE(IsCoalescable(m));
    internal::GroupHeartbeat row;
    EncodeHeartbeat(RaftGroupId(5), m, &row);
    internal::GroupHeartbeat parsed;
    ASSERT_TRUE(parsed.ParseFromString(row.SerializeAsString()));
    GroupMessage decoded = DecodeHeartbeat(parsed, BrokerId(1), BrokerId(2));
    EXPECT_EQ(decoded.group, RaftGroupId(5));
    ExpectSame(decoded.message, m);
  }
}

TEST(RaftMessageCodec, OnlyPlainHeartbeatsCoalesce) {
  for (MessageType type : kAllTypes) {
    raft::Message m;
    m.type = type;
    m.from = 1;
    m.to = 2;
    EXPECT_EQ(IsCoalescable(m),
              type == MessageType::kHeartbeat || type == MessageType::kHeartbeatResponse)
        << raft::MessageTypeName(type);
  }
  raft::Message hb;
  hb.type = MessageType::kHeartbeat;
  hb.from = 1;
  hb.to = 2;
  raft::Message with_index = hb;
  with_index.index = 3;
  EXPECT_FALSE(IsCoalescable(with_index));
  raft::Message with_hint = hb;
  with_hint.reject_hint = 3;
  EXPECT_FALSE(IsCoalescable(with_hint));
  raft::Message rejecting_heartbeat = hb;  // only a response's reject has a row field
  rejecting_heartbeat.reject = true;
  EXPECT_FALSE(IsCoalescable(rejecting_heartbeat));
  raft::Message with_entry = hb;
  with_entry.entries.push_back(
      {.term = 1, .index = 1, .type = raft::EntryType::kNormal, .data = {}});
  EXPECT_FALSE(IsCoalescable(with_entry));
}

TEST(RaftMessageCodec, FlippedBitInEntryIsCorruption) {
  internal::RaftMessage wire;
  EncodeRaftMessage(RaftGroupId(1), FullMessage(MessageType::kAppend), &wire);
  const std::string& data = wire.entries(1).data();
  for (size_t byte = 0; byte < data.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      internal::RaftMessage bad = wire;
      (*bad.mutable_entries(1)->mutable_data())[byte] ^= static_cast<char>(1 << bit);
      Result<GroupMessage> decoded = DecodeRaftMessage(bad);
      ASSERT_FALSE(decoded.ok());
      EXPECT_EQ(decoded.status().code(), StatusCode::kCorruption);
    }
  }
  internal::RaftMessage bad_crc = wire;
  bad_crc.mutable_entries(0)->set_crc32c(bad_crc.entries(0).crc32c() ^ 1);
  EXPECT_EQ(DecodeRaftMessage(bad_crc).status().code(), StatusCode::kCorruption);
  internal::RaftMessage truncated = wire;
  truncated.mutable_entries(1)->mutable_data()->pop_back();
  EXPECT_EQ(DecodeRaftMessage(truncated).status().code(), StatusCode::kCorruption);
}

TEST(RaftMessageCodec, FlippedBitInSnapshotIsCorruption) {
  internal::RaftMessage wire;
  EncodeRaftMessage(RaftGroupId(1), FullMessage(MessageType::kSnapshot), &wire);
  (*wire.mutable_snapshot_data())[5000] ^= 0x10;
  EXPECT_EQ(DecodeRaftMessage(wire).status().code(), StatusCode::kCorruption);
}

TEST(RaftMessageCodec, GarbageValuesAreRejected) {
  internal::RaftMessage append;
  EncodeRaftMessage(RaftGroupId(1), FullMessage(MessageType::kAppend), &append);
  internal::RaftMessage snapshot;
  EncodeRaftMessage(RaftGroupId(1), FullMessage(MessageType::kSnapshot), &snapshot);

  std::vector<std::pair<std::string, internal::RaftMessage>> cases;
  auto add = [&](std::string name, const internal::RaftMessage& base, auto mutate) {
    internal::RaftMessage m = base;
    mutate(m);
    cases.emplace_back(std::move(name), std::move(m));
  };
  add("type 12", append, [](auto& m) { m.set_type(12); });
  add("type max", append, [](auto& m) { m.set_type(0xFFFFFFFF); });
  add("entry type 2", append, [](auto& m) { m.mutable_entries(0)->set_type(2); });
  add("from 0", append, [](auto& m) { m.set_from(0); });
  add("to 0", append, [](auto& m) { m.set_to(0); });
  add("snapshot meta on kAppend", append, [](auto& m) { m.mutable_snapshot_meta()->set_index(3); });
  add("snapshot data on kAppend", append, [](auto& m) { m.set_snapshot_data("x"); });
  add("kSnapshot without meta", snapshot, [](auto& m) { m.clear_snapshot_meta(); });
  add("kSnapshot index 0", snapshot, [](auto& m) { m.mutable_snapshot_meta()->set_index(0); });
  add("kSnapshot with entries", snapshot, [](auto& m) { m.add_entries(); });
  add("voters unsorted", snapshot, [](auto& m) { m.mutable_snapshot_meta()->set_voters(0, 9); });
  add("voter 0", snapshot, [](auto& m) { m.mutable_snapshot_meta()->set_voters(0, 0); });
  add("duplicate voter", snapshot,
      [](auto& m) { m.mutable_snapshot_meta()->set_voters(1, m.snapshot_meta().voters(0)); });
  add("voter is learner", snapshot, [](auto& m) { m.mutable_snapshot_meta()->set_learners(0, 2); });
  for (const auto& [name, m] : cases) {
    Result<GroupMessage> decoded = DecodeRaftMessage(m);
    EXPECT_FALSE(decoded.ok()) << name;
    EXPECT_EQ(decoded.status().code(), StatusCode::kInvalidArgument) << name;
  }
}

TEST(RaftMessageCodec, RandomBytesNeverCrash) {
  std::mt19937_64 rng(42);
  internal::RaftMessage valid;
  EncodeRaftMessage(RaftGroupId(3), FullMessage(MessageType::kSnapshot), &valid);
  internal::RaftMessage append;
  EncodeRaftMessage(RaftGroupId(3), FullMessage(MessageType::kAppend), &append);
  const std::string seeds[] = {valid.SerializeAsString(), append.SerializeAsString()};
  int parsed = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = seeds[i % 2];
    const int flips = 1 + static_cast<int>(rng() % 8);
    for (int f = 0; f < flips; ++f) bytes[rng() % bytes.size()] ^= static_cast<char>(rng());
    internal::RaftMessage m;
    if (!m.ParseFromString(bytes)) continue;
    ++parsed;
    DecodeRaftMessage(m).IgnoreError();  // any answer is fine; crashing is not
  }
  EXPECT_GT(parsed, 0);
}

}  // namespace
}  // namespace skiff::broker
