#include "broker/raft_transport.h"

#include <glog/logging.h>

#include <algorithm>
#include <deque>
#include <thread>
#include <unordered_set>
#include <utility>

#include "common/assert.h"
#include "common/thread_name.h"
#include "skiff/internal/raft.grpc.pb.h"

namespace skiff::broker {

using Clock = std::chrono::steady_clock;

// One outgoing peer. Lock order: RaftTransport::mu_, then Peer::mu; never the reverse.
struct RaftTransport::Peer {
  explicit Peer(BrokerId peer_id) : id(peer_id) {}

  const BrokerId id;
  std::mutex mu;
  std::condition_variable cv;  // stream state or address changed; a write ended; stopping
  std::string address;         // guarded by mu; empty: unknown
  uint64_t address_version = 0;
  std::deque<GroupMessage> queue;     // guarded by mu; bounded by max_queued_messages_per_peer
  std::vector<GroupMessage> dropped;  // guarded by mu; awaiting on_unreachable (monitor thread)

  // The current stream, guarded by mu. `context` is set while a stream is being opened or is
  // open, so Stop() and the monitor can cancel it from another thread; `stream` while new
  // frames may be written to it.
  grpc::ClientContext* context = nullptr;
  FrameStream* stream = nullptr;
  bool stream_broken = false;
  bool writing = false;        // a frame is being written (at most one at a time)
  bool pumping = false;        // some thread is in PumpWrites' loop for this peer
  bool keepalive_due = false;  // the next pump sends a frame even if the queue is empty
  bool pump_wanted = false;    // a bulky frame waits for the sender thread to write it
  size_t queued_bytes = 0;     // ApproximateWireBytes of `queue`
  bool acked_any = false;      // the current stream acknowledged a frame
  Clock::time_point last_frame;
  uint64_t frames_sent = 0;
  uint64_t frames_acked = 0;
  // Since when the sender has been waiting on the peer (to open the stream or to acknowledge a
  // frame) without progress; nullopt while everything sent is acknowledged.
  std::optional<Clock::time_point> waiting_since;
  // Frames sent and not yet acknowledged, by sequence number, kept to report them if the
  // stream breaks (the payloads are shared, so this holds references, not copies).
  std::deque<std::pair<uint64_t, std::vector<GroupMessage>>> unacked;

  std::thread sender;  // started at creation, joined by Stop()
};

// One client stream to a peer, on gRPC's callback API: frames are written by whichever thread
// finds the stream idle (PumpWrites), so a worker's small messages leave without waking a
// sender thread, and acknowledgements are read in OnReadDone. The sender thread owns the object: it
// opens the stream, and tears it down once the stream broke (RemoveHold, then waits for OnDone).
class RaftTransport::FrameStream final
    : public grpc::ClientBidiReactor<internal::MessageBatch, internal::BatchAck> {
 public:
  FrameStream(RaftTransport* transport, Peer* peer) : transport_(transport), peer_(peer) {}

  grpc::ClientContext context;
  internal::MessageBatch out;  // the frame being written; touched only by the pump that set
                               // Peer::writing, until OnWriteDone

  void OnReadDone(bool ok) override {
    std::lock_guard<std::mutex> lock(peer_->mu);
    if (!ok) {
      read_done_ = true;
      peer_->stream_broken = true;
      peer_->cv.notify_all();
      return;
    }
    peer_->frames_acked = std::max(peer_->frames_acked, ack_.received_batches());
    while (!peer_->unacked.empty() && peer_->unacked.front().first <= peer_->frames_acked) {
      peer_->unacked.pop_front();
    }
    peer_->waiting_since = peer_->frames_acked >= peer_->frames_sent
                               ? std::nullopt
                               : std::optional<Clock::time_point>(Clock::now());
    peer_->acked_any = true;
    StartRead(&ack_);
  }

  void OnWriteDone(bool ok) override {
    {
      std::lock_guard<std::mutex> lock(peer_->mu);
      peer_->writing = false;
      if (!ok) peer_->stream_broken = true;
      // Only a broken stream or a teardown (stream unpublished) has a waiter: the sender thread
      // is not woken for every frame.
      if (!ok || peer_->stream == nullptr) peer_->cv.notify_all();
      // Not on gRPC's callback thread either, which also reads every incoming stream.
      if (ok && transport_->LeaveBulkyFramesToSender(peer_)) return;
    }
    if (ok) transport_->PumpWrites(peer_);
  }

  void OnDone(const grpc::Status& status) override {
    std::lock_guard<std::mutex> lock(peer_->mu);
    status_ = status;
    done_ = true;
    peer_->stream_broken = true;
    peer_->cv.notify_all();
  }

  void Start() {
    StartRead(&ack_);
    AddHold();  // released by the sender thread once no write can start any more
    StartCall();
  }
  // Guarded by Peer::mu.
  bool read_done() const { return read_done_; }
  bool done() const { return done_; }
  const grpc::Status& status() const { return status_; }

 private:
  RaftTransport* const transport_;
  Peer* const peer_;
  internal::BatchAck ack_;
  bool read_done_ = false;  // guarded by Peer::mu: the peer ended the stream (or it broke)
  bool done_ = false;       // guarded by Peer::mu
  grpc::Status status_;     // guarded by Peer::mu
};

// The server side: one reactor per incoming peer stream (gRPC's callback API), so a frame is
// decoded and handed to on_receive by the thread that read it, without a hand-off to a
// handler thread.
class RaftTransport::Service final : public internal::RaftTransport::CallbackService {
 public:
  explicit Service(RaftTransport* transport) : transport_(transport) {}

  grpc::ServerBidiReactor<internal::MessageBatch, internal::BatchAck>* Stream(
      grpc::CallbackServerContext* context) override {
    return new StreamReactor(transport_, context);
  }

 private:
  // Reactions of one stream may run concurrently (a read completing during a write), so the
  // reactor's state is guarded by mu_. It deletes itself in OnDone.
  class StreamReactor final
      : public grpc::ServerBidiReactor<internal::MessageBatch, internal::BatchAck> {
   public:
    StreamReactor(RaftTransport* transport, grpc::CallbackServerContext* context)
        : transport_(transport), context_(context), last_ack_(Clock::now()) {
      entered_ = transport_->EnterHandler(context_);
      if (!entered_) {
        Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "raft transport is stopping"));
        return;
      }
      StartRead(&batch_);
    }

    void OnReadDone(bool ok) override {
      if (!ok) return FinishOnce(grpc::Status::OK);  // the peer closed, or a cancel
      const BrokerId self = transport_->self_;
      if (batch_.to_broker() != self.value()) {
        grpc::Status refused(grpc::StatusCode::FAILED_PRECONDITION,
                             "frame for broker " + std::to_string(batch_.to_broker()) +
                                 " reached broker " + std::to_string(self.value()));
        LOG_EVERY_N(WARNING, 64) << refused.error_message() << " (from " << context_->peer() << ")";
        return FinishOnce(refused);
      }
      const BrokerId from(batch_.from_broker());
      Result<std::vector<GroupMessage>> messages = Decode(batch_, from, self);
      if (messages.ok()) {
        transport_->NoteReceived(from);
        if (!messages->empty()) transport_->on_receive_(from, std::move(messages).value());
      } else {
        LOG_EVERY_N(WARNING, 64) << "raft transport: dropped a frame from broker " << from << " ("
                                 << context_->peer() << "): " << messages.status().ToString();
      }
      // Acknowledgements are coalesced (TransportOptions::ack_every_frames, ack_delay).
      const TransportOptions& options = transport_->options_;
      const bool keepalive = batch_.messages().empty() && batch_.heartbeats().empty();
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++received_;
        const auto now = Clock::now();
        if (keepalive || received_ - acked_ >= options.ack_every_frames ||
            now - last_ack_ >= options.ack_delay) {
          acked_ = received_;
          last_ack_ = now;
          ack_due_ = true;
          MaybeWriteAckLocked();
        }
      }
      StartRead(&batch_);
    }

    void OnWriteDone(bool ok) override {
      std::lock_guard<std::mutex> lock(mu_);
      writing_ = false;
      if (!ok) {
        FinishLocked(grpc::Status::OK);  // the peer is gone; the pending read ends too
        return;
      }
      if (finish_status_) {
        FinishLocked(*finish_status_);
        return;
      }
      MaybeWriteAckLocked();
    }

    void OnDone() override {
      if (entered_) transport_->ExitHandler(context_);
      delete this;
    }

   private:
    void MaybeWriteAckLocked() {
      if (!ack_due_ || writing_ || finished_ || finish_status_) return;
      ack_.set_received_batches(acked_);
      ack_due_ = false;
      writing_ = true;
      StartWrite(&ack_);
    }
    void FinishOnce(const grpc::Status& status) {
      std::lock_guard<std::mutex> lock(mu_);
      FinishLocked(status);
    }
    // Finish is not started while an acknowledgement is being written: it follows the write.
    void FinishLocked(const grpc::Status& status) {
      if (finished_) return;
      if (writing_) {
        if (!finish_status_) finish_status_ = status;
        return;
      }
      finished_ = true;
      Finish(status);
    }

    RaftTransport* const transport_;
    grpc::CallbackServerContext* const context_;
    bool entered_ = false;
    internal::MessageBatch batch_;  // touched by the one read in flight only
    std::mutex mu_;
    internal::BatchAck ack_;  // guarded by mu_ (and stable while writing_)
    uint64_t received_ = 0;   // guarded by mu_
    uint64_t acked_ = 0;      // guarded by mu_: frames counted in the latest acknowledgement
    Clock::time_point last_ack_;
    bool ack_due_ = false;
    bool writing_ = false;
    bool finished_ = false;
    std::optional<grpc::Status> finish_status_;  // Finish waits for the write in flight
  };

  // All or nothing: a frame with one bad message is dropped whole.
  static Result<std::vector<GroupMessage>> Decode(const internal::MessageBatch& batch,
                                                  BrokerId from, BrokerId self) {
    if (from.value() == raft::kNoNode || from == self) {
      return InvalidArgumentError("bad from_broker " + std::to_string(from.value()));
    }
    std::vector<GroupMessage> out;
    out.reserve(batch.messages_size() + batch.heartbeats_size());
    for (const internal::RaftMessage& pm : batch.messages()) {
      SKIFF_ASSIGN_OR_RETURN(GroupMessage gm, DecodeRaftMessage(pm));
      // Node id == broker id: a message inside a frame speaks for the frame's brokers.
      if (gm.message.from != from.value() || gm.message.to != self.value()) {
        return InvalidArgumentError("message from/to disagree with the frame's brokers");
      }
      out.push_back(std::move(gm));
    }
    for (const internal::GroupHeartbeat& hb : batch.heartbeats()) {
      out.push_back(DecodeHeartbeat(hb, from, self));
    }
    return out;
  }

  RaftTransport* const transport_;
};

namespace {

// Encodes one frame. A group with any non-heartbeat message in the frame sends its heartbeats
// as full messages too, so the receiver (messages first, then rows) keeps every group's order.
void EncodeFrame(BrokerId self, BrokerId to, const std::vector<GroupMessage>& messages,
                 internal::MessageBatch* batch) {
  batch->set_from_broker(self.value());
  batch->set_to_broker(to.value());
  std::unordered_set<RaftGroupId> full_groups;
  for (const GroupMessage& gm : messages) {
    if (!IsCoalescable(gm.message)) full_groups.insert(gm.group);
  }
  for (const GroupMessage& gm : messages) {
    if (IsCoalescable(gm.message) && !full_groups.contains(gm.group)) {
      EncodeHeartbeat(gm.group, gm.message, batch->add_heartbeats());
    } else {
      EncodeRaftMessage(gm.group, gm.message, batch->add_messages());
    }
  }
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address,
                                           const TransportOptions& options) {
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(options.max_message_bytes);
  args.SetMaxReceiveMessageSize(options.max_message_bytes);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, static_cast<int>(options.keepalive_time.count()));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, static_cast<int>(options.ack_timeout.count()));
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // Keepalive pings must not be throttled while the stream is idle (default: 5 min apart).
  args.SetInt(GRPC_ARG_HTTP2_MIN_SENT_PING_INTERVAL_WITHOUT_DATA_MS,
              static_cast<int>(options.keepalive_time.count()));
  // gRPC's own reconnect backoff (1 s .. 120 s by default) would outlast ours. Careful: gRPC
  // reads the "min reconnect backoff" as the minimum *connect timeout* (time allowed for TCP +
  // HTTP/2 handshake), so it is the ack timeout, not reconnect_backoff_min.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
              static_cast<int>(options.reconnect_backoff_min.count()));
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, static_cast<int>(options.ack_timeout.count()));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
              static_cast<int>(options.reconnect_backoff_max.count()));
  // One connection per peer and transport, not shared process-wide.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

}  // namespace

RaftTransport::RaftTransport(BrokerId self, TransportOptions options, ReceiveHandler on_receive,
                             UnreachableHandler on_unreachable)
    : self_(self),
      options_(std::move(options)),
      on_receive_(std::move(on_receive)),
      on_unreachable_(std::move(on_unreachable)),
      service_(std::make_unique<Service>(this)) {
  SKIFF_ASSERT(self_.value() != raft::kNoNode);
  SKIFF_ASSERT(on_receive_ != nullptr);
  SKIFF_ASSERT(options_.max_queued_messages_per_peer > 0);
  SKIFF_ASSERT(options_.reconnect_backoff_min.count() > 0);
  SKIFF_ASSERT(options_.reconnect_backoff_max >= options_.reconnect_backoff_min);
  SKIFF_ASSERT(options_.ack_timeout.count() > 0 && options_.keepalive_time.count() > 0);
  SKIFF_ASSERT(options_.ack_every_frames > 0);
  monitor_ = std::thread([this] { MonitorLoop(); });
}

RaftTransport::~RaftTransport() { Stop(); }

grpc::Service* RaftTransport::service() { return service_.get(); }

void RaftTransport::ConfigureServerBuilder(grpc::ServerBuilder& builder,
                                           const TransportOptions& options) {
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  // Accept the peers' keepalive pings (sent every keepalive_time, even without data).
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             static_cast<int>(options.keepalive_time.count() / 2));
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  // Detect frozen clients too, so their handler threads are freed.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS,
                             static_cast<int>(options.keepalive_time.count()));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                             static_cast<int>(options.ack_timeout.count()));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
}

void RaftTransport::SetPeerAddress(BrokerId peer, std::string address) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return;
  auto& slot = peers_[peer];
  if (!slot) {
    slot = std::make_unique<Peer>(peer);
    Peer* p = slot.get();
    p->address = std::move(address);
    p->sender = std::thread([this, p] { SenderLoop(p); });
    return;
  }
  std::lock_guard<std::mutex> peer_lock(slot->mu);
  if (slot->address == address) return;
  slot->address = std::move(address);
  ++slot->address_version;
  if (slot->context != nullptr) slot->context->TryCancel();
  slot->cv.notify_all();
}

void RaftTransport::Send(BrokerId to, std::vector<GroupMessage> messages) {
  if (messages.empty()) return;
  Peer* p = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;  // shutting down: nothing is reported any more
    auto& slot = peers_[to];
    if (!slot) {  // unknown peer: its sender reports everything unreachable until it has one
      slot = std::make_unique<Peer>(to);
      Peer* created = slot.get();
      created->sender = std::thread([this, created] { SenderLoop(created); });
    }
    p = slot.get();
  }
  std::vector<GroupMessage> rejected;
  size_t misaddressed = 0;
  bool write_here = true;
  {
    std::lock_guard<std::mutex> lock(p->mu);
    for (GroupMessage& gm : messages) {
      if (gm.message.from != self_.value() || gm.message.to != to.value()) {
        ++misaddressed;
        rejected.push_back(std::move(gm));
      } else if (p->queue.size() >= options_.max_queued_messages_per_peer) {
        rejected.push_back(std::move(gm));
      } else {
        p->queued_bytes += ApproximateWireBytes(gm.message);
        p->queue.push_back(std::move(gm));
      }
    }
    if (p->stream == nullptr) {
      // Without an open stream the sender thread deals with the queue (it may be backing off).
      p->cv.notify_all();
      write_here = false;
    } else if (!p->writing && LeaveBulkyFramesToSender(p)) {
      write_here = false;
    }
  }
  if (write_here) PumpWrites(p);
  if (misaddressed > 0) {
    LOG_EVERY_N(ERROR, 64) << "raft transport: " << misaddressed << " message(s) for broker " << to
                           << " with from/to not " << self_ << "/" << to << "; dropped";
  }
  if (rejected.size() > misaddressed) {
    LOG_EVERY_N(WARNING, 64) << "raft transport: queue for broker " << to << " full; dropped "
                             << rejected.size() - misaddressed << " message(s)";
  }
  if (!rejected.empty()) ReportDropped(p, std::move(rejected));
}

std::optional<Clock::time_point> RaftTransport::LastReceived(BrokerId peer) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = last_received_.find(peer);
  if (it == last_received_.end()) return std::nullopt;
  return it->second;
}

bool RaftTransport::AnyPeerSilentFor(Clock::duration silence) const {
  const auto now = Clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [peer, heard] : last_received_) {
    if (now - heard > silence) return true;
  }
  return false;
}

void RaftTransport::Stop() {
  std::vector<Peer*> peers;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (stopping_) {
      // Another Stop() may be in progress: wait for it, so every caller returns stopped.
      handlers_cv_.wait(lock, [this] { return stopped_; });
      return;
    }
    stopping_ = true;
    for (grpc::CallbackServerContext* context : handlers_) context->TryCancel();
    for (auto& [id, peer] : peers_) {
      std::lock_guard<std::mutex> peer_lock(peer->mu);
      if (peer->context != nullptr) peer->context->TryCancel();
      peer->cv.notify_all();
      peers.push_back(peer.get());
    }
  }
  monitor_cv_.notify_all();
  for (Peer* peer : peers) peer->sender.join();
  monitor_.join();
  std::unique_lock<std::mutex> lock(mu_);
  // Cancelled handlers return as soon as their on_receive call (if any) does.
  handlers_cv_.wait(lock, [this] { return handlers_.empty(); });
  stopped_ = true;
  handlers_cv_.notify_all();
}

bool RaftTransport::stopping() const { return stopping_.load(); }

bool RaftTransport::EnterHandler(grpc::CallbackServerContext* context) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return false;
  handlers_.push_back(context);
  return true;
}

void RaftTransport::ExitHandler(grpc::CallbackServerContext* context) {
  std::lock_guard<std::mutex> lock(mu_);
  handlers_.erase(std::find(handlers_.begin(), handlers_.end(), context));
  handlers_cv_.notify_all();
}

void RaftTransport::NoteReceived(BrokerId from) {
  std::lock_guard<std::mutex> lock(mu_);
  last_received_[from] = Clock::now();
}

void RaftTransport::ReportDropped(Peer* peer, std::vector<GroupMessage> messages) {
  if (messages.empty()) return;
  {
    std::lock_guard<std::mutex> lock(peer->mu);
    for (GroupMessage& gm : messages) peer->dropped.push_back(std::move(gm));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    dropped_pending_ = true;
  }
  monitor_cv_.notify_all();
}

void RaftTransport::MonitorLoop() {
  SetThreadName("raft-monitor");
  constexpr auto kInterval = std::chrono::milliseconds(100);
  for (;;) {
    std::vector<Peer*> peers;
    {
      std::unique_lock<std::mutex> lock(mu_);
      monitor_cv_.wait_for(lock, kInterval, [this] { return stopping_ || dropped_pending_; });
      if (stopping_) return;
      dropped_pending_ = false;
      for (auto& [id, peer] : peers_) peers.push_back(peer.get());
    }
    const Clock::time_point now = Clock::now();
    for (Peer* peer : peers) {
      std::vector<GroupMessage> dropped;
      {
        std::lock_guard<std::mutex> lock(peer->mu);
        dropped.swap(peer->dropped);
        if (peer->context != nullptr && !peer->stream_broken && peer->waiting_since &&
            now - *peer->waiting_since > options_.ack_timeout) {
          LOG(WARNING) << "raft transport: broker " << peer->id << " at " << peer->address
                       << " made no progress for " << options_.ack_timeout.count()
                       << " ms; breaking the stream";
          peer->stream_broken = true;
          peer->context->TryCancel();
          peer->cv.notify_all();
        }
      }
      if (!dropped.empty() && on_unreachable_) on_unreachable_(peer->id, std::move(dropped));
    }
  }
}

bool RaftTransport::LeaveBulkyFramesToSender(Peer* peer) {
  if (peer->queued_bytes <= options_.max_inline_write_bytes) return false;
  // Encoding and writing a bulky frame is the sender thread's work, so the caller (a Raft
  // worker) goes on with its next round meanwhile.
  peer->pump_wanted = true;
  peer->cv.notify_all();
  return true;
}

void RaftTransport::PumpWrites(Peer* peer) {
  std::unique_lock<std::mutex> lock(peer->mu);
  // One pump at a time per peer. A write that completes inline (OnWriteDone inside StartWrite,
  // on this thread) or on a gRPC thread while the pump runs finds it busy and returns; the
  // pump's loop sees `writing` cleared and goes on.
  if (peer->pumping) return;
  peer->pumping = true;
  for (;;) {
    FrameStream* stream = peer->stream;
    if (stream == nullptr || peer->writing || peer->stream_broken ||
        (peer->queue.empty() && !peer->keepalive_due)) {
      break;
    }
    std::vector<GroupMessage> frame;
    size_t bytes = 0;
    while (!peer->queue.empty()) {
      const size_t next = ApproximateWireBytes(peer->queue.front().message);
      if (!frame.empty() && bytes + next > options_.max_frame_bytes) break;
      bytes += next;
      frame.push_back(std::move(peer->queue.front()));
      peer->queue.pop_front();
    }
    peer->queued_bytes -= std::min(peer->queued_bytes, bytes);
    peer->keepalive_due = false;
    peer->writing = true;
    lock.unlock();
    // `writing` makes this thread the only one touching stream->out until OnWriteDone, and
    // keeps the sender thread from tearing the stream down meanwhile.
    stream->out.Clear();
    EncodeFrame(self_, peer->id, frame, &stream->out);
    if (stream->out.ByteSizeLong() > static_cast<size_t>(options_.max_message_bytes)) {
      LOG(ERROR) << "raft transport: a frame for broker " << peer->id << " of "
                 << stream->out.ByteSizeLong() << " bytes exceeds max_message_bytes; dropped";
      ReportDropped(peer, std::move(frame));
      lock.lock();
      peer->writing = false;
      peer->cv.notify_all();
      continue;
    }
    lock.lock();
    if (!peer->waiting_since) peer->waiting_since = Clock::now();
    peer->unacked.emplace_back(++peer->frames_sent, std::move(frame));
    peer->last_frame = Clock::now();
    lock.unlock();
    stream->StartWrite(&stream->out);
    lock.lock();
  }
  peer->pumping = false;
  // A tearing-down sender (stream unpublished) waits for the pump to let go of the stream.
  if (peer->stream == nullptr) peer->cv.notify_all();
}

void RaftTransport::SenderLoop(Peer* peer) {
  SetThreadName("raft-send-" + std::to_string(peer->id.value()));
  auto backoff = options_.reconnect_backoff_min;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<internal::RaftTransport::Stub> stub;
  uint64_t channel_version = 0;
  bool log_failure = true;  // log the first failure after a success, not every retry

  for (;;) {
    // 1. Know where the peer is.
    std::string address;
    uint64_t version = 0;
    {
      std::unique_lock<std::mutex> lock(peer->mu);
      if (stopping()) return;
      address = peer->address;
      version = peer->address_version;
    }
    if (address.empty()) {
      // Unknown peer: everything sent to it is unreachable until SetPeerAddress.
      std::vector<GroupMessage> dropped;
      {
        std::unique_lock<std::mutex> lock(peer->mu);
        peer->cv.wait_for(lock, options_.reconnect_backoff_max, [&] {
          return !peer->queue.empty() || !peer->address.empty() || stopping();
        });
        if (peer->address.empty()) {
          dropped.assign(std::make_move_iterator(peer->queue.begin()),
                         std::make_move_iterator(peer->queue.end()));
          peer->queue.clear();
          peer->queued_bytes = 0;
        }
      }
      if (stopping()) return;
      ReportDropped(peer, std::move(dropped));
      continue;
    }
    if (!channel || channel_version != version) {
      channel = MakeChannel(address, options_);
      stub = internal::RaftTransport::NewStub(channel);
      channel_version = version;
    }

    // 2. Open the stream. The context is published first, so Stop() and the stall monitor
    // can cancel an open that hangs (e.g. a frozen peer that accepted the TCP connection).
    auto stream = std::make_unique<FrameStream>(this, peer);
    {
      std::lock_guard<std::mutex> lock(peer->mu);
      if (stopping()) return;
      peer->context = &stream->context;
      peer->stream_broken = false;
      peer->writing = false;
      peer->keepalive_due = false;
      peer->acked_any = false;
      peer->frames_sent = 0;
      peer->frames_acked = 0;
      peer->waiting_since = Clock::now();
      peer->unacked.clear();
    }
    stub->async()->Stream(&stream->context, stream.get());
    stream->Start();
    {
      // The stream counts as open once gRPC has taken the call; frames are acknowledged.
      std::lock_guard<std::mutex> lock(peer->mu);
      if (peer->frames_sent == 0) peer->waiting_since.reset();
      peer->stream = stream.get();
      peer->last_frame = Clock::now();
    }
    PumpWrites(peer);  // what was queued while connecting

    // 3. Frames are written by PumpWrites (from Send and after each write). This thread waits
    // for the stream to break, the address to change or Stop, and sends an empty frame on an
    // idle stream every keepalive_time: the peer's acknowledgement proves it alive (the stall
    // monitor covers idle streams too) and keeps its LastReceived(self) fresh even when every
    // group between the two brokers is quiet.
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(peer->mu);
        peer->cv.wait_until(lock, peer->last_frame + options_.keepalive_time, [&] {
          return peer->stream_broken || peer->address_version != version || stopping() ||
                 peer->pump_wanted;
        });
        if (peer->stream_broken || peer->address_version != version || stopping()) break;
        if (peer->pump_wanted) {
          peer->pump_wanted = false;
          lock.unlock();
          PumpWrites(peer);
          continue;
        }
        if (Clock::now() < peer->last_frame + options_.keepalive_time) continue;
        if (peer->writing || !peer->queue.empty()) {
          peer->last_frame = Clock::now();  // traffic is flowing; look again later
          continue;
        }
        peer->keepalive_due = true;
      }
      PumpWrites(peer);
    }

    // 4. Tear down: no new writes; wait for the one in flight; report everything not
    // acknowledged. When the peer ended the stream (or a write failed because it did), its
    // status is worth keeping, so the call is cancelled only if it does not end by itself
    // within a short bound.
    grpc::Status status;
    std::vector<GroupMessage> dropped;
    bool address_changed = false;
    bool acked_any = false;
    {
      std::unique_lock<std::mutex> lock(peer->mu);
      peer->stream = nullptr;
      if (peer->address_version == version && !stopping()) {
        peer->cv.wait_for(lock, std::chrono::seconds(1),
                          [&] { return stream->read_done() || stopping(); });
      }
      if (!stream->read_done()) stream->context.TryCancel();
      // After a cancel a pending write completes at once (not ok).
      peer->cv.wait(lock, [&] { return !peer->writing && !peer->pumping; });
    }
    stream->RemoveHold();
    {
      std::unique_lock<std::mutex> lock(peer->mu);
      peer->cv.wait(lock, [&] { return stream->done(); });
      status = stream->status();
      peer->context = nullptr;
      peer->waiting_since.reset();
      address_changed = peer->address_version != version;
      acked_any = peer->acked_any;
      for (auto& [seq, messages] : peer->unacked) {
        for (GroupMessage& gm : messages) dropped.push_back(std::move(gm));
      }
      peer->unacked.clear();
      for (GroupMessage& gm : peer->queue) dropped.push_back(std::move(gm));
      peer->queue.clear();
      peer->queued_bytes = 0;
    }
    stream.reset();
    if (stopping()) return;
    if (log_failure || acked_any) {
      LOG(WARNING) << "raft transport: stream to broker " << peer->id << " at " << address
                   << " ended: " << status.error_code() << " " << status.error_message() << "; "
                   << dropped.size() << " message(s) reported unreachable";
    }
    log_failure = acked_any;
    ReportDropped(peer, std::move(dropped));

    // 5. Back off before reconnecting; meanwhile the peer is unreachable, so whatever is
    // queued is reported at once rather than held for a stream that may never come.
    backoff = (acked_any || address_changed)
                  ? options_.reconnect_backoff_min
                  : std::min(backoff * 2, options_.reconnect_backoff_max);
    const Clock::time_point retry_at = Clock::now() + backoff;
    for (;;) {
      std::vector<GroupMessage> waiting;
      {
        std::unique_lock<std::mutex> lock(peer->mu);
        peer->cv.wait_until(lock, retry_at, [&] {
          return !peer->queue.empty() || peer->address_version != version || stopping();
        });
        if (stopping()) return;
        waiting.assign(std::make_move_iterator(peer->queue.begin()),
                       std::make_move_iterator(peer->queue.end()));
        peer->queue.clear();
        peer->queued_bytes = 0;
      }
      ReportDropped(peer, std::move(waiting));
      std::lock_guard<std::mutex> lock(peer->mu);
      if (Clock::now() >= retry_at || peer->address_version != version) break;
    }
  }
}

}  // namespace skiff::broker
