// RaftTransport: carries Raft messages of every group between brokers over gRPC.
//
//   broker 1 (sending side)                                 broker 2 (receiving side)
//
//   Send(2, msgs) ─▶ queue for 2 ─▶ PumpWrites ════ MessageBatch ══▶ Service::Stream
//   (any thread)     (bounded)      (the caller,      frames           │ decode, check CRCs
//                                    if idle)                          │
//                    OnReadDone ◀══════════════════ BatchAck ══════════┤
//   on_unreachable ◀─ monitor ◀─ drops, stalled                         ▼
//                     thread     streams                       on_receive(1, msgs)
//
// Every Raft group on a broker has node id == broker id. All messages bound for one peer share
// one long-lived client stream (gRPC's callback API): a frame (MessageBatch) carries everything
// queued when a write starts, cut at about max_frame_bytes, with the heartbeats of groups that
// have nothing else in the frame coalesced into GroupHeartbeat rows. One frame is written at a
// time: the thread that finds the stream idle (the Raft worker calling Send, for small
// messages; the peer's sender thread, for bulky ones) writes it without blocking, and the
// completion of each write starts the next. The receiver acknowledges frames in groups
// (TransportOptions::ack_every_frames).
//
// Ordering: messages of one Send call, and of successive Send calls to the same peer, are
// delivered in order (or dropped). Within a frame, a group's messages keep their order: a group
// with any non-heartbeat message in the frame has its heartbeats sent as full messages.
//
// Failure: Raft retransmits on its own, so nothing is retried. When a peer is unknown or
// unreachable, its queue is full, a message is too large for a frame, or its stream breaks
// (error, peer restart, or frames unacknowledged for ack_timeout, e.g. a SIGSTOPped peer), the
// messages queued and those sent but not yet acknowledged are handed to on_unreachable, so the
// host can call ReportUnreachable / ReportSnapshot(false). Reconnects back off exponentially
// between reconnect_backoff_min and _max. A dead or slow peer never blocks Send or other peers.
//
// Threads: one sender thread per peer (opens and tears down its streams, writes bulky frames,
// sends keepalives, backs off), gRPC's callback threads (write completions, small frames,
// incoming frames and acknowledgements), and one monitor thread
// (stall detection, delivery of on_unreachable). on_unreachable runs only on the monitor
// thread, never inside Send, so a host may call Send while holding its own locks. on_receive
// runs on gRPC's callback threads, concurrently for different peers; it must not block for
// long (it holds up other streams' reactions).
//
// Lifecycle: construct, register service() on the broker's inter-broker gRPC server (configured
// with ConfigureServerBuilder), SetPeerAddress for each peer, then Send. Stop() (or the
// destructor) closes all streams, in both directions, waits for in-progress on_receive calls,
// and joins all threads, within a bounded time even if a peer is frozen. No handler is called
// after Stop() returns. The gRPC server that serves service() must be shut down before this
// object is destroyed (Stop() alone makes its handlers return promptly).
//
// Thread-safety: all public methods are thread-safe.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "broker/raft_message_codec.h"
#include "common/ids.h"

namespace skiff::broker {

struct TransportOptions {
  size_t max_queued_messages_per_peer = 65536;  // beyond this Send drops (and reports) messages
  size_t max_frame_bytes = 4 << 20;             // a frame is cut at about this size
  std::chrono::milliseconds reconnect_backoff_min{20}, reconnect_backoff_max{1000};
  int max_message_bytes = 256 << 20;  // gRPC max send/receive message size
  // A stream whose oldest unacknowledged frame waited this long is presumed dead and broken.
  std::chrono::milliseconds ack_timeout{3000};
  // An idle stream sends an empty frame this often (so LastReceived stays fresh at the peer
  // and a frozen peer is noticed without traffic); also the gRPC keepalive ping interval.
  std::chrono::milliseconds keepalive_time{1000};
  // The receiver acknowledges frames in groups, each acknowledgement being a write and a
  // wake-up on both sides: after this many frames, or with the first frame after ack_delay
  // since the last acknowledgement; an empty keepalive frame at once. So no frame waits much
  // longer than keepalive_time + ack_delay, which must stay well inside ack_timeout.
  uint64_t ack_every_frames = 16;
  std::chrono::milliseconds ack_delay{500};
  // Send() writes a frame itself when the stream is idle (no thread hand-off: the latency
  // path), unless its messages exceed this many bytes: those are encoded and written by the
  // peer's sender thread, so the calling Raft worker is not held up copying them (measured:
  // writing 1 MiB appends inline cost the 16-partition bench about 15% of its throughput).
  size_t max_inline_write_bytes = 64 << 10;
};

class RaftTransport {
 public:
  using ReceiveHandler = std::function<void(BrokerId from, std::vector<GroupMessage> messages)>;
  using UnreachableHandler = std::function<void(BrokerId to, std::vector<GroupMessage> dropped)>;

  RaftTransport(BrokerId self, TransportOptions options, ReceiveHandler on_receive,
                UnreachableHandler on_unreachable);
  ~RaftTransport();
  RaftTransport(const RaftTransport&) = delete;
  RaftTransport& operator=(const RaftTransport&) = delete;

  // The RaftTransport gRPC service; owned by this object.
  grpc::Service* service();
  // What the server hosting service() needs: max message sizes and a keepalive policy that
  // accepts the peers' pings. Call on the broker's inter-broker ServerBuilder.
  static void ConfigureServerBuilder(grpc::ServerBuilder& builder,
                                     const TransportOptions& options = TransportOptions());

  // Adds a peer or changes its address ("host:port"). A change breaks the current stream.
  void SetPeerAddress(BrokerId peer, std::string address);
  // Queues messages for `to` and returns at once. Every message must have from == self and
  // to == `to` (node id == broker id); others are dropped and reported.
  void Send(BrokerId to, std::vector<GroupMessage> messages);
  // When a valid frame from `peer` was last received (nullopt: never). A live peer that knows
  // this broker's address sends at least one frame every keepalive_time, so this is a liveness
  // signal even when no Raft traffic flows.
  std::optional<std::chrono::steady_clock::time_point> LastReceived(BrokerId peer) const;
  // Whether some peer this broker ever heard from has been silent for longer than `silence`.
  bool AnyPeerSilentFor(std::chrono::steady_clock::duration silence) const;
  // Idempotent; see the lifecycle above. Must not be called from either handler.
  void Stop();

 private:
  class Service;
  class FrameStream;
  struct Peer;

  void SenderLoop(Peer* peer);
  // Writes queued frames while the peer's stream is open and idle; any thread (Send, a
  // completed write, the sender's keepalive). Returns without blocking.
  void PumpWrites(Peer* peer);
  // With Peer::mu held: if the queue exceeds max_inline_write_bytes, asks the peer's sender
  // thread to write it and returns true (the caller then does not pump).
  bool LeaveBulkyFramesToSender(Peer* peer);
  void MonitorLoop();
  // Hands messages to the monitor thread for on_unreachable.
  void ReportDropped(Peer* peer, std::vector<GroupMessage> messages);
  bool stopping() const;

  // Called by the service.
  bool EnterHandler(grpc::CallbackServerContext* context);
  void ExitHandler(grpc::CallbackServerContext* context);
  void NoteReceived(BrokerId from);

  const BrokerId self_;
  const TransportOptions options_;
  const ReceiveHandler on_receive_;
  const UnreachableHandler on_unreachable_;
  std::unique_ptr<Service> service_;

  mutable std::mutex mu_;
  std::condition_variable monitor_cv_;
  std::condition_variable handlers_cv_;
  // Written under mu_; read without it where a Peer::mu is held (lock order: mu_ first).
  std::atomic<bool> stopping_{false};
  bool stopped_ = false;          // guarded by mu_: Stop() completed
  bool dropped_pending_ = false;  // guarded by mu_: some Peer::dropped awaits the monitor
  std::map<BrokerId, std::unique_ptr<Peer>> peers_;  // guarded by mu_
  std::unordered_map<BrokerId, std::chrono::steady_clock::time_point> last_received_;  // mu_
  std::vector<grpc::CallbackServerContext*> handlers_;  // guarded by mu_: open server streams
  std::thread monitor_;
};

}  // namespace skiff::broker
