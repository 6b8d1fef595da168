// SimNetwork: an unreliable, partitionable message network between simulated Raft nodes.
//
// Every message sent is given a delivery time (in global ticks) drawn from the current fault
// profile; it may instead be dropped or duplicated at send time. Messages are delivered in
// (delivery time, send sequence) order by TakeDue, so different delays reorder them; the
// simulator can also pull a random message out early (DeliverAnyOne) for finer interleavings.
//
// Partitions are a matrix of blocked directed links checked at *delivery* time, so a message
// in flight when a partition forms is lost, and one-way (asymmetric) cuts are expressible.
// The network never looks at node liveness: the cluster drops messages for crashed nodes.
//
// Ownership: the network owns messages in flight. Thread-safety: none.
// Limits: node ids are 1..kMaxNodeId; at most kMaxInFlight messages are kept (the oldest excess
// is dropped, as a real bounded queue would).
#pragma once

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "raft/types.h"
#include "sim_random.h"

namespace skiff::sim {

inline constexpr raft::NodeId kMaxNodeId = 8;

struct NetworkFaults {
  uint64_t drop_percent = 0;       // lost at send time
  uint64_t duplicate_percent = 0;  // delivered twice (independent delays)
  uint64_t delay_ticks_min = 1;    // >= 1 so a delivery round always terminates
  uint64_t delay_ticks_max = 3;
  uint64_t long_delay_percent = 0;  // a delay of up to long_delay_ticks_max instead
  uint64_t long_delay_ticks_max = 30;
};

class SimNetwork {
 public:
  static constexpr size_t kMaxInFlight = 20000;

  explicit SimNetwork(SimRandom* random) : random_(random) {}

  void set_faults(const NetworkFaults& faults) { faults_ = faults; }
  const NetworkFaults& faults() const { return faults_; }

  void Send(raft::Message message, uint64_t now_ticks);

  // Removes and returns the messages due at or before now, in delivery order. Messages on a
  // blocked link are dropped and returned in `blocked` (so the sender can get feedback).
  void TakeDue(uint64_t now_ticks, std::vector<raft::Message>* deliver,
               std::vector<raft::Message>* blocked);
  // Removes one random in-flight message regardless of its delay. False if none. Returns it in
  // `deliver` or, if its link is blocked, in `blocked`.
  bool DeliverAnyOne(std::vector<raft::Message>* deliver, std::vector<raft::Message>* blocked);
  bool DropAnyOne();
  bool DuplicateAnyOne(uint64_t now_ticks);

  // Partitions.
  void Block(raft::NodeId from, raft::NodeId to);
  void BlockBoth(raft::NodeId a, raft::NodeId b) {
    Block(a, b);
    Block(b, a);
  }
  void Isolate(raft::NodeId node);  // both directions to and from everyone
  void HealAll();
  bool Blocked(raft::NodeId from, raft::NodeId to) const { return blocked_[from][to]; }
  bool AnyBlocked() const;

  // Messages lost inside the network (send-time drops, DropAnyOne, queue overflow) since the
  // last call. A real transport notices when a snapshot stream breaks, so the cluster reports
  // lost kSnapshot messages to their sender (Node::ReportSnapshot(peer, false)).
  std::vector<raft::Message> TakeLost() {
    std::vector<raft::Message> lost;
    lost.swap(lost_);
    return lost;
  }

  size_t in_flight() const { return in_flight_.size(); }
  uint64_t sent_total() const { return sent_total_; }
  uint64_t delivered_total() const { return delivered_total_; }
  void CountDelivered(uint64_t n) { delivered_total_ += n; }

 private:
  // Keyed by (delivery tick, send sequence): begin() is always the next message due.
  using Key = std::pair<uint64_t, uint64_t>;
  void Enqueue(raft::Message message, uint64_t now_ticks);
  void Lose(raft::Message&& message) {
    if (message.type == raft::MessageType::kSnapshot) lost_.push_back(std::move(message));
  }
  void Route(raft::Message&& message, std::vector<raft::Message>* deliver,
             std::vector<raft::Message>* blocked);
  std::map<Key, raft::Message>::iterator RandomInFlight();

  SimRandom* random_;
  NetworkFaults faults_;
  std::map<Key, raft::Message> in_flight_;
  std::vector<raft::Message> lost_;  // only kSnapshot messages are kept here
  uint64_t next_sequence_ = 0;
  uint64_t sent_total_ = 0;
  uint64_t delivered_total_ = 0;
  bool blocked_[kMaxNodeId + 1][kMaxNodeId + 1] = {};
};

}  // namespace skiff::sim
