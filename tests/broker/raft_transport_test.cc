// The inter-broker Raft transport over real gRPC on 127.0.0.1: messages of many groups arrive in
// order; unknown, down, frozen and restarted peers never block the caller or Stop(), and what
// could not be delivered is reported; frames for another broker or with a bad message are
// refused. Every wait is bounded; nothing asserts a timing.
#include "broker/raft_transport.h"

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "skiff/internal/raft.grpc.pb.h"

namespace skiff::broker {
namespace {

using namespace std::chrono_literals;

// Polls `pred` until it holds or `timeout` passes; true if it held.
template <typename Pred>
bool WaitFor(Pred pred, std::chrono::milliseconds timeout = 20s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// What a transport's handlers were given.
class Recorder {
 public:
  void OnReceive(BrokerId from, std::vector<GroupMessage> messages) {
    std::lock_guard<std::mutex> lock(mu_);
    for (GroupMessage& gm : messages) received_.emplace_back(from, std::move(gm));
  }
  void OnUnreachable(BrokerId to, std::vector<GroupMessage> dropped) {
    std::lock_guard<std::mutex> lock(mu_);
    for (GroupMessage& gm : dropped) dropped_.emplace_back(to, std::move(gm));
  }
  size_t received_count() const {
    std::lock_guard<std::mutex> lock(mu_);
    return received_.size();
  }
  size_t dropped_count() const {
    std::lock_guard<std::mutex> lock(mu_);
    return dropped_.size();
  }
  std::vector<std::pair<BrokerId, GroupMessage>> received() const {
    std::lock_guard<std::mutex> lock(mu_);
    return received_;
  }
  std::vector<std::pair<BrokerId, GroupMessage>> dropped() const {
    std::lock_guard<std::mutex> lock(mu_);
    return dropped_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::pair<BrokerId, GroupMessage>> received_;
  std::vector<std::pair<BrokerId, GroupMessage>> dropped_;
};

TransportOptions FastOptions() {
  TransportOptions o;
  o.reconnect_backoff_min = 10ms;
  o.reconnect_backoff_max = 200ms;
  // Generous: under sanitizers a healthy stream may pause for a while. Tests about stalls
  // set their own.
  o.ack_timeout = 5000ms;
  o.keepalive_time = 500ms;
  return o;
}

// A broker's transport and the gRPC server that serves it.
struct Node {
  Node(uint64_t id, int listen_port = 0, TransportOptions options = FastOptions())
      : self(id),
        transport(
            self, options,
            [this](BrokerId from, std::vector<GroupMessage> m) {
              recorder.OnReceive(from, std::move(m));
            },
            [this](BrokerId to, std::vector<GroupMessage> d) {
              recorder.OnUnreachable(to, std::move(d));
            }) {
    grpc::ServerBuilder builder;
    RaftTransport::ConfigureServerBuilder(builder, options);
    builder.AddListeningPort("127.0.0.1:" + std::to_string(listen_port),
                             grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(transport.service());
    server = builder.BuildAndStart();
    EXPECT_NE(server, nullptr);
    EXPECT_GT(port, 0);
  }
  ~Node() { Shutdown(); }
  void Shutdown() {
    if (!server) return;
    transport.Stop();
    server->Shutdown(std::chrono::system_clock::now() + 2s);
    server->Wait();
    server.reset();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }

  BrokerId self;
  Recorder recorder;
  RaftTransport transport;
  int port = 0;
  std::unique_ptr<grpc::Server> server;
};

GroupMessage Append(uint64_t group, uint64_t from, uint64_t to, uint64_t seq) {
  GroupMessage gm;
  gm.group = RaftGroupId(group);
  raft::Message& m = gm.message;
  m.type = raft::MessageType::kAppend;
  m.from = from;
  m.to = to;
  m.term = 3;
  m.log_term = 3;
  m.index = seq;
  m.context = seq;
  m.entries.push_back({.term = 3,
                       .index = seq + 1,
                       .type = raft::EntryType::kNormal,
                       .data = Bytes("entry-" + std::to_string(seq))});
  return gm;
}

GroupMessage Heartbeat(uint64_t group, uint64_t from, uint64_t to, uint64_t seq) {
  GroupMessage gm;
  gm.group = RaftGroupId(group);
  gm.message.type = raft::MessageType::kHeartbeat;
  gm.message.from = from;
  gm.message.to = to;
  gm.message.term = 3;
  gm.message.context = seq;
  return gm;
}

// A port with nothing listening on it (bound and released; nobody else takes it meanwhile in
// practice, and if someone did the test would only see more failures, which it tolerates).
int UnusedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// A "frozen" peer: the kernel completes TCP handshakes into the backlog, but nobody ever
// accepts or reads, like a SIGSTOPped broker.
class FrozenListener {
 public:
  FrozenListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(fd_, 64), 0);
    socklen_t len = sizeof(addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~FrozenListener() { ::close(fd_); }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// A live gRPC server whose handler takes the stream and never reads from it.
class StuckService final : public internal::RaftTransport::Service {
 public:
  grpc::Status Stream(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<internal::BatchAck, internal::MessageBatch>*) override {
    streams_.fetch_add(1);
    // Bounded: returns when the client cancels, the server shuts down, or after 60 s.
    WaitFor([&] { return context->IsCancelled() || released_.load(); }, 60s);
    return grpc::Status::OK;
  }
  void Release() { released_ = true; }
  int streams() const { return streams_.load(); }

 private:
  std::atomic<int> streams_{0};
  std::atomic<bool> released_{false};
};

// Runs `f` on another thread and reports whether it finished within `timeout`. On a hang the
// test fails loudly instead of waiting for the ctest timeout.
template <typename F>
void ExpectReturnsWithin(F f, std::chrono::seconds timeout, const char* what) {
  auto done = std::async(std::launch::async, std::move(f));
  if (done.wait_for(timeout) != std::future_status::ready) {
    ADD_FAILURE() << what << " did not return within " << timeout.count() << " s";
    std::fflush(nullptr);
    std::abort();  // the hung call cannot be abandoned safely
  }
}

TEST(RaftTransport, ExchangesThousandsOfMessagesAcrossGroupsInOrder) {
  Node a(1), b(2);
  a.transport.SetPeerAddress(BrokerId(2), b.address());
  b.transport.SetPeerAddress(BrokerId(1), a.address());
  constexpr uint64_t kGroups = 200;
  constexpr uint64_t kMessages = 10000;
  std::thread b_sender([&] {
    for (uint64_t seq = 0; seq < kMessages; seq += 100) {
      std::vector<GroupMessage> batch;
      for (uint64_t i = seq; i < seq + 100; ++i) batch.push_back(Heartbeat(i % kGroups, 2, 1, i));
      b.transport.Send(BrokerId(1), std::move(batch));
    }
  });
  uint64_t seq = 0;
  while (seq < kMessages) {
    std::vector<GroupMessage> batch;
    const uint64_t n = 1 + seq % 97;
    for (uint64_t i = 0; i < n && seq < kMessages; ++i, ++seq) {
      // A mix: groups with only heartbeats are coalesced, others travel as full messages.
      batch.push_back(seq % 3 == 0 ? Heartbeat(seq % kGroups, 1, 2, seq)
                                   : Append(seq % kGroups, 1, 2, seq));
    }
    a.transport.Send(BrokerId(2), std::move(batch));
  }
  b_sender.join();
  ASSERT_TRUE(WaitFor([&] { return b.recorder.received_count() >= kMessages; }, 60s))
      << b.recorder.received_count();
  ASSERT_TRUE(WaitFor([&] { return a.recorder.received_count() >= kMessages; }, 60s))
      << a.recorder.received_count();
  EXPECT_EQ(a.recorder.dropped_count(), 0u);
  EXPECT_EQ(b.recorder.dropped_count(), 0u);

  // Each group's messages arrive in the order sent; non-heartbeats also keep the global order.
  std::map<RaftGroupId, uint64_t> next_in_group;
  int64_t last_append = -1;
  for (const auto& [from, gm] : b.recorder.received()) {
    EXPECT_EQ(from, BrokerId(1));
    EXPECT_EQ(gm.message.from, 1u);
    EXPECT_EQ(gm.message.to, 2u);
    const uint64_t s = gm.message.context;
    EXPECT_EQ(gm.group, RaftGroupId(s % kGroups));
    auto [it, inserted] = next_in_group.try_emplace(gm.group, 0);
    EXPECT_GE(s, it->second) << "group " << gm.group;
    it->second = s + 1;
    if (gm.message.type == raft::MessageType::kAppend) {
      EXPECT_GT(static_cast<int64_t>(s), last_append);
      last_append = static_cast<int64_t>(s);
      ASSERT_EQ(gm.message.entries.size(), 1u);
      EXPECT_EQ(gm.message.entries[0].data.view(), "entry-" + std::to_string(s));
    } else {
      EXPECT_EQ(gm.message.type, raft::MessageType::kHeartbeat);
      EXPECT_EQ(s % 3, 0u);
    }
  }
  uint64_t expect = 0;
  for (const auto& [from, gm] : a.recorder.received()) {
    EXPECT_EQ(from, BrokerId(2));
    EXPECT_EQ(gm.message.context, expect++);  // heartbeats only: one list, fully ordered
  }
  EXPECT_TRUE(b.transport.LastReceived(BrokerId(1)).has_value());
  EXPECT_TRUE(a.transport.LastReceived(BrokerId(2)).has_value());
  EXPECT_FALSE(a.transport.LastReceived(BrokerId(3)).has_value());
}

TEST(RaftTransport, IdleStreamKeepsLastReceivedFresh) {
  Node a(1), b(2);
  a.transport.SetPeerAddress(BrokerId(2), b.address());
  ASSERT_TRUE(WaitFor([&] { return b.transport.LastReceived(BrokerId(1)).has_value(); }));
  const auto first = *b.transport.LastReceived(BrokerId(1));
  ASSERT_TRUE(WaitFor([&] { return *b.transport.LastReceived(BrokerId(1)) > first; }));
  EXPECT_EQ(b.recorder.received_count(), 0u);  // empty frames are not handed to the host
  EXPECT_EQ(a.recorder.dropped_count(), 0u);
}

TEST(RaftTransport, LargeMessagesAreSplitIntoFrames) {
  TransportOptions options = FastOptions();
  options.max_frame_bytes = 64 << 10;
  Node a(1, 0, options), b(2, 0, options);
  a.transport.SetPeerAddress(BrokerId(2), b.address());
  std::vector<GroupMessage> batch;
  for (uint64_t i = 0; i < 64; ++i) {
    GroupMessage gm = Append(i % 4, 1, 2, i);
    gm.message.entries[0].data = Bytes(std::string(40 << 10, static_cast<char>('a' + i % 26)));
    batch.push_back(std::move(gm));
  }
  a.transport.Send(BrokerId(2), std::move(batch));
  ASSERT_TRUE(WaitFor([&] { return b.recorder.received_count() >= 64; }));
  const auto received = b.recorder.received();
  for (uint64_t i = 0; i < received.size(); ++i) {
    EXPECT_EQ(received[i].second.message.context, i);
    EXPECT_EQ(received[i].second.message.entries[0].data.size(), 40u << 10);
  }
}

TEST(RaftTransport, UnknownPeerMessagesAreReportedDropped) {
  Node a(1);
  a.transport.Send(BrokerId(9), {Append(1, 1, 9, 0), Heartbeat(2, 1, 9, 1)});
  ASSERT_TRUE(WaitFor([&] { return a.recorder.dropped_count() == 2; }));
  for (const auto& [to, gm] : a.recorder.dropped()) EXPECT_EQ(to, BrokerId(9));
}

TEST(RaftTransport, DownPeerMessagesAreReportedAndNothingBlocks) {
  Node a(1), c(3);
  a.transport.SetPeerAddress(BrokerId(2), "127.0.0.1:" + std::to_string(UnusedPort()));
  a.transport.SetPeerAddress(BrokerId(3), c.address());
  constexpr int kRounds = 50;
  for (int round = 0; round < kRounds; ++round) {
    a.transport.Send(BrokerId(2), {Append(1, 1, 2, round)});
    a.transport.Send(BrokerId(3), {Append(1, 1, 3, round)});
  }
  // The live peer gets everything even though the other is down.
  ASSERT_TRUE(WaitFor([&] { return c.recorder.received_count() == kRounds; }));
  ASSERT_TRUE(WaitFor([&] { return a.recorder.dropped_count() == kRounds; }));
  for (const auto& [to, gm] : a.recorder.dropped()) EXPECT_EQ(to, BrokerId(2));
}

TEST(RaftTransport, FullQueueDropsAndReports) {
  TransportOptions options = FastOptions();
  options.max_queued_messages_per_peer = 10;
  options.ack_timeout = 500ms;
  Node a(1, 0, options);
  FrozenListener frozen;
  a.transport.SetPeerAddress(BrokerId(2), frozen.address());
  std::vector<GroupMessage> batch;
  for (uint64_t i = 0; i < 100; ++i) batch.push_back(Append(1, 1, 2, i));
  a.transport.Send(BrokerId(2), std::move(batch));
  // At least the 90 beyond the bound at once; eventually all (the peer never answers).
  ASSERT_TRUE(WaitFor([&] { return a.recorder.dropped_count() >= 90; }));
  ASSERT_TRUE(WaitFor([&] { return a.recorder.dropped_count() == 100; }, 30s));
}

TEST(RaftTransport, MisaddressedMessagesAreDroppedAndReported) {
  Node a(1), b(2);
  a.transport.SetPeerAddress(BrokerId(2), b.address());
  a.transport.Send(BrokerId(2), {Append(1, 5, 2, 0), Append(1, 1, 3, 1), Append(1, 1, 2, 2)});
  ASSERT_TRUE(WaitFor([&] { return b.recorder.received_count() == 1; }));
  ASSERT_TRUE(WaitFor([&] { return a.recorder.dropped_count() == 2; }));
  EXPECT_EQ(b.recorder.received()[0].second.message.context, 2u);
}

TEST(RaftTransport, RestartedPeerReceivesAgainAfterReconnect) {
  Node a(1);
  auto b = std::make_unique<Node>(2);
  const int port = b->port;
  a.transport.SetPeerAddress(BrokerId(2), b->address());
  a.transport.Send(BrokerId(2), {Append(1, 1, 2, 0)});
  ASSERT_TRUE(WaitFor([&] { return b->recorder.received_count() == 1; }));

  b.reset();  // the peer goes down
  a.transport.Send(BrokerId(2), {Append(1, 1, 2, 1)});
  ASSERT_TRUE(WaitFor([&] { return a.recorder.dropped_count() >= 1; }));

  b = std::make_unique<Node>(2, port);  // and comes back on the same address
  ASSERT_EQ(b->port, port);
  uint64_t seq = 2;
  ASSERT_TRUE(WaitFor(
      [&] {
        a.transport.Send(BrokerId(2), {Append(1, 1, 2, seq++)});
        std::this_thread::sleep_for(10ms);  // pacing of the retries, not a wait for a condition
        return b->recorder.received_count() > 0;
      },
      30s));
  EXPECT_GE(b->recorder.received()[0].second.message.context, 2u);
}

TEST(RaftTransport, FrozenPeerIsDetectedAndStopReturns) {
  TransportOptions options = FastOptions();
  options.ack_timeout = 500ms;
  auto a = std::make_unique<Node>(1, 0, options);
  FrozenListener frozen;
  a->transport.SetPeerAddress(BrokerId(2), frozen.address());
  // Enough to fill socket buffers and HTTP/2 windows, so the sender blocks in a write.
  constexpr int kMessages = 64;
  for (int i = 0; i < kMessages; ++i) {
    GroupMessage gm = Append(1, 1, 2, i);
    gm.message.entries[0].data = Bytes(std::string(256 << 10, 'z'));
    a->transport.Send(BrokerId(2), {std::move(gm)});
  }
  // The stalled stream is broken and everything reported, without the peer ever answering.
  ASSERT_TRUE(WaitFor([&] { return a->recorder.dropped_count() == kMessages; }, 30s))
      << a->recorder.dropped_count();
  a->transport.Send(BrokerId(2), {Append(1, 1, 2, kMessages)});
  ExpectReturnsWithin([&] { a.reset(); }, 20s, "Stop with a frozen peer");
}

TEST(RaftTransport, PeerThatNeverReadsIsDetectedAndStopReturns) {
  TransportOptions options = FastOptions();
  options.ack_timeout = 500ms;
  auto a = std::make_unique<Node>(1, 0, options);
  StuckService stuck;
  int port = 0;
  grpc::ServerBuilder builder;
  RaftTransport::ConfigureServerBuilder(builder, options);
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&stuck);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  a->transport.SetPeerAddress(BrokerId(2), "127.0.0.1:" + std::to_string(port));
  constexpr int kMessages = 64;
  for (int i = 0; i < kMessages; ++i) {
    GroupMessage gm = Append(1, 1, 2, i);
    gm.message.entries[0].data = Bytes(std::string(256 << 10, 'z'));
    a->transport.Send(BrokerId(2), {std::move(gm)});
  }
  ASSERT_TRUE(WaitFor([&] { return a->recorder.dropped_count() == kMessages; }, 30s))
      << a->recorder.dropped_count();
  EXPECT_GE(stuck.streams(), 1);
  // Keep a stream open and stuck while stopping.
  a->transport.Send(BrokerId(2), {Append(1, 1, 2, kMessages)});
  ExpectReturnsWithin([&] { a.reset(); }, 20s, "Stop with a peer that never reads");
  stuck.Release();
  server->Shutdown(std::chrono::system_clock::now() + 2s);
  server->Wait();
}

TEST(RaftTransport, StopIsIdempotentAndSendAfterStopIsHarmless) {
  Node a(1), b(2);
  a.transport.SetPeerAddress(BrokerId(2), b.address());
  a.transport.Send(BrokerId(2), {Append(1, 1, 2, 0)});
  ASSERT_TRUE(WaitFor([&] { return b.recorder.received_count() == 1; }));
  a.transport.Stop();
  a.transport.Stop();
  a.transport.Send(BrokerId(2), {Append(1, 1, 2, 1)});
  a.transport.SetPeerAddress(BrokerId(3), b.address());
  EXPECT_EQ(b.recorder.received_count(), 1u);
}

// A raw client stream to a transport's server, for frames a well-behaved transport never sends.
class RawStream {
 public:
  explicit RawStream(const std::string& address)
      : stub_(internal::RaftTransport::NewStub(
            grpc::CreateChannel(address, grpc::InsecureChannelCredentials()))) {
    context_.set_deadline(std::chrono::system_clock::now() + 20s);
    stream_ = stub_->Stream(&context_);
  }
  bool Write(const internal::MessageBatch& batch) { return stream_->Write(batch); }
  bool ReadAck(uint64_t* received) {
    internal::BatchAck ack;
    if (!stream_->Read(&ack)) return false;
    *received = ack.received_batches();
    return true;
  }
  grpc::Status Finish() {
    stream_->WritesDone();
    internal::BatchAck ack;
    while (stream_->Read(&ack)) {
    }
    return stream_->Finish();
  }

 private:
  std::unique_ptr<internal::RaftTransport::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<internal::MessageBatch, internal::BatchAck>> stream_;
};

internal::MessageBatch Frame(uint64_t from, uint64_t to, std::vector<GroupMessage> messages) {
  internal::MessageBatch batch;
  batch.set_from_broker(from);
  batch.set_to_broker(to);
  for (const GroupMessage& gm : messages) {
    EncodeRaftMessage(gm.group, gm.message, batch.add_messages());
  }
  return batch;
}

TEST(RaftTransport, FrameForAnotherBrokerIsRefused) {
  Node b(2);
  RawStream raw(b.address());
  ASSERT_TRUE(raw.Write(Frame(1, 7, {Append(1, 1, 7, 0)})));
  const grpc::Status status = raw.Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  EXPECT_EQ(b.recorder.received_count(), 0u);
}

TEST(RaftTransport, MisconfiguredPeerAddressIsRefusedAndReported) {
  Node a(1), b(2);
  // Broker 3's address points at broker 2: broker 2 refuses, broker 1 reports the drops.
  a.transport.SetPeerAddress(BrokerId(3), b.address());
  a.transport.Send(BrokerId(3), {Append(1, 1, 3, 0), Append(2, 1, 3, 1)});
  ASSERT_TRUE(WaitFor([&] { return a.recorder.dropped_count() == 2; }));
  EXPECT_EQ(b.recorder.received_count(), 0u);
}

TEST(RaftTransport, FrameWithABadMessageIsDroppedWhole) {
  Node b(2);
  RawStream raw(b.address());
  internal::MessageBatch bad = Frame(1, 2, {Append(1, 1, 2, 0), Append(2, 1, 2, 1)});
  (*bad.mutable_messages(1)->mutable_entries(0)->mutable_data())[0] ^= 1;
  internal::MessageBatch good = Frame(1, 2, {Append(3, 1, 2, 2)});
  internal::GroupHeartbeat* row = good.add_heartbeats();
  row->set_group(4);
  row->set_term(3);
  row->set_response(true);
  row->set_reject(true);
  const internal::MessageBatch keepalive = Frame(1, 2, {});
  uint64_t acked = 0;
  ASSERT_TRUE(raw.Write(bad));
  ASSERT_TRUE(raw.Write(keepalive));  // answered at once, acknowledging the frame before it
  ASSERT_TRUE(raw.ReadAck(&acked));
  EXPECT_EQ(acked, 2u);
  ASSERT_TRUE(raw.Write(good));
  ASSERT_TRUE(raw.Write(keepalive));
  ASSERT_TRUE(raw.ReadAck(&acked));
  EXPECT_EQ(acked, 4u);
  EXPECT_TRUE(raw.Finish().ok());
  const auto received = b.recorder.received();
  ASSERT_EQ(received.size(), 2u);
  EXPECT_EQ(received[0].first, BrokerId(1));
  EXPECT_EQ(received[0].second.message.context, 2u);
  EXPECT_EQ(received[1].second.group, RaftGroupId(4));
  EXPECT_EQ(received[1].second.message.type, raft::MessageType::kHeartbeatResponse);
  EXPECT_TRUE(received[1].second.message.reject);
  EXPECT_EQ(received[1].second.message.from, 1u);
  EXPECT_EQ(received[1].second.message.to, 2u);
}

// Each acknowledgement costs a write and a wake-up on both sides, so they are coalesced: frames
// carrying messages are acknowledged in groups (here of 16; ack_delay is out of reach), an empty
// keepalive frame at once.
TEST(RaftTransport, AcknowledgementsAreCoalescedAndAKeepaliveIsAnsweredAtOnce) {
  TransportOptions options = FastOptions();
  options.ack_delay = std::chrono::minutes(10);
  Node b(2, 0, options);
  RawStream raw(b.address());
  uint64_t acked = 0;
  for (uint64_t i = 0; i < 3; ++i) ASSERT_TRUE(raw.Write(Frame(1, 2, {Append(1, 1, 2, i)})));
  ASSERT_TRUE(raw.Write(Frame(1, 2, {})));
  ASSERT_TRUE(raw.ReadAck(&acked));
  EXPECT_EQ(acked, 4u) << "the frames before the keepalive were acknowledged one by one";
  for (uint64_t i = 0; i < 16; ++i) ASSERT_TRUE(raw.Write(Frame(1, 2, {Append(1, 1, 2, i)})));
  ASSERT_TRUE(raw.ReadAck(&acked));
  EXPECT_EQ(acked, 20u) << "sixteen frames in a row must be acknowledged without a keepalive";
  EXPECT_TRUE(raw.Finish().ok());
  EXPECT_EQ(b.recorder.received().size(), 19u);
}

}  // namespace
}  // namespace skiff::broker
