// Node: one Raft group member as a pure, deterministic state machine.
//
// No threads, clocks, sockets or files live in here. The host owns all of those and drives the
// node through four kinds of input:
//
//   Tick()                     one unit of logical time (the host decides how long a tick is)
//   Step(message)              a message received from a peer
//   Propose / ProposeConfChange / TransferLeadership / ReadIndex / Campaign   local requests
//   Advance(ready)             "I have durably done what that Ready asked"
//
// and reads its output as one batch, Ready, obtained by GetReady() whenever HasReady():
//
//   loop:
//     tick / step / propose ...
//     if node.HasReady():
//       rd = node.GetReady()
//       1. persist rd.snapshot (if any), then rd.entries (truncating any conflicting stored
//          suffix), then rd.hard_state (if any) — atomically, and synced to disk when
//          rd.must_sync
//       2. send rd.messages
//       3. apply rd.committed_entries to the state machine, in order (a kConfChange entry is
//          applied by calling ApplyConfChange(cc, entry.index)), and serve rd.read_states once
//          applied through their index
//       4. node.Advance(rd)
//
// Between GetReady and Advance the host may keep feeding the node (Step, Tick, local requests,
// e.g. while a slow fsync runs). The node may then install a newer snapshot before the host
// applies rd.committed_entries; use the two-argument ApplyConfChange, which ignores conf changes
// the snapshot already covers. Never call GetReady again before Advance.
//
// DURABILITY CONTRACT (what must be on disk before which message may leave):
//   * Every message in rd.messages may be sent only after step 1 has completed for the same
//     Ready. A vote response promises the vote and term are durable; an append response
//     promises the entries are durable; a leader counts its own entries towards the commit
//     quorum only after Advance, i.e. after they are durable.
//     The one exception: a leader's kAppend, kHeartbeat and kSnapshot messages promise
//     nothing about the leader's own disk, so a host may send them before step 1, letting the
//     followers persist in parallel with the leader (Raft thesis 10.2.1). The leader's term
//     and vote were made durable before its vote requests went out, in an earlier Ready.
//   * Persisted state may be lost only if it was never synced; a host that runs with sync off
//     gives up the guarantee that acknowledged entries survive a correlated crash of a quorum.
//   * rd.committed_entries are durable on a quorum; applying them before step 1 finishes is
//     allowed (they are already durable elsewhere) but this host keeps the simple order above.
//
// ASYNC STORAGE WRITES (Config.async_storage_writes), so that a host can overlap one Ready's
// fsync with the next Readies' writes instead of waiting for it:
//   * Advance(rd) may be called once rd's writes are issued, in order, and readable through
//     LogStorage, before they are durable. Writes must become durable in the order issued.
//   * Every message of rd other than the leader's early kAppend/kHeartbeat/kSnapshot is held
//     until rd's writes and every earlier write are durable, then sent in order. This holds for
//     a Ready that writes nothing too: its acknowledgements may speak of entries an earlier,
//     still unsynced Ready wrote (a follower re-acknowledging a retransmitted append).
//   * When a write that stored entries becomes durable, the host calls OnDurable(index, term)
//     of its last entry. Only then does a leader count those entries towards the commit
//     quorum; a new leader counts none of its log until OnDurable reaches its term's no-op.
//
// Thread-safety: none. One thread drives one node at a time (the host may move a node between
// threads across calls, with a happens-before edge). Thousands of nodes per process are
// expected: an idle node holds no timers, only counters, and a quiesced one sends nothing.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "common/status.h"
#include "raft/log_storage.h"
#include "raft/types.h"

namespace skiff::raft {

// Deliberately broken behaviours, used only to prove that the simulator's checker catches an
// unsafe Raft. Never set in production: Node::Create refuses them unless allow_unsafe_testing.
struct UnsafeTestingKnobs {
  bool allow_unsafe_testing = false;
  bool commit_on_minority = false;  // leader commits when any one follower has the entry
  bool vote_ignores_log = false;    // grant votes without the up-to-date log check
  bool vote_ignores_term = false;   // grant votes for a lower term / twice in a term
};

struct Config {
  NodeId id = kNoNode;  // must be nonzero

  // The host persisted state (hard state, log, snapshot) lives here. Not owned; must outlive
  // the node. The host writes to it between GetReady and Advance.
  const LogStorage* storage = nullptr;

  // Index of the last entry the host has applied (0 on a fresh group). After a restart the
  // node resumes handing out committed entries after this index.
  Index applied = 0;

  // A follower that hears nothing from a leader for a randomized timeout in
  // [election_ticks, 2*election_ticks) starts an election. Must be > heartbeat_ticks.
  int election_ticks = 10;
  int heartbeat_ticks = 1;

  bool pre_vote = true;      // campaign first with a non-disruptive pre-vote round
  bool check_quorum = true;  // a leader that has not heard from a quorum within an election
                             // timeout steps down; followers that have heard from a leader
                             // recently ignore (pre-)vote requests (leader stickiness)

  // Flow control towards each follower.
  uint64_t max_append_bytes = 1 << 20;  // bytes of entries per kAppend message
  int max_inflight_appends = 64;        // kAppend messages in flight per follower (pipelining)
  // Proposals are refused with kResourceExhausted while this many bytes are uncommitted
  // (0 = unlimited), so a slow quorum cannot make the leader buffer without bound.
  uint64_t max_uncommitted_bytes = 0;

  // Quiescence: a leader whose followers are all caught up and which has had no proposals,
  // reads or membership work for this many ticks sends one kHeartbeat with quiesce=true and
  // then stops heartbeating; followers that receive it stop their election timers. Any message,
  // proposal or Wake() resumes normal operation. 0 disables quiescence.
  int quiesce_after_ticks = 0;

  // Asynchronous storage writes (see ASYNC STORAGE WRITES above): Advance means "written, not
  // yet durable", and the leader counts its own entries only once OnDurable reports them.
  bool async_storage_writes = false;

  // A leader whose commit index advanced with nothing else to send does not tell its
  // followers at once (an empty kAppend each, and a response from each) but with the next
  // append, heartbeat or tick. With one write in flight that halves the messages per write;
  // followers learn a commit at most one tick later, which only delays their reads and apply.
  bool defer_commit_broadcast = false;

  // Seed of the node's private PRNG (election timeout jitter). Same seed + same inputs =>
  // same outputs; the simulator relies on this.
  uint64_t seed = 1;

  UnsafeTestingKnobs unsafe;
};

// One batch of work for the host; see the loop at the top of this file.
struct Ready {
  std::optional<SoftState> soft_state;   // set when leader or role changed
  std::optional<HardState> hard_state;   // set when it changed and must be persisted
  std::optional<Snapshot> snapshot;      // set when a snapshot must be installed and persisted
  std::vector<Entry> entries;            // to append to stable storage
  std::vector<Entry> committed_entries;  // to apply, in index order
  std::vector<Message> messages;         // to send after persisting
  std::vector<ReadState> read_states;    // linearizable reads now answerable
  bool must_sync = false;                // the persisted part must be fsynced before sending
};

// A snapshot of the node's state for observation, metrics and tests.
struct NodeStatus {
  NodeId id = kNoNode;
  HardState hard_state;
  SoftState soft_state;
  Index applied = 0;
  Index last_index = 0;
  ConfState conf;
  bool quiesced = false;
  NodeId lead_transferee = kNoNode;
  // Leader only: the replication progress of each peer (match index), by node id.
  std::vector<std::pair<NodeId, Index>> match;
};

class Node {
 public:
  // Restores from config.storage. A fresh group has an empty log; it is started by calling
  // Bootstrap on every initial member (with the same ConfState) before the first Tick.
  static Result<std::unique_ptr<Node>> Create(const Config& config);
  virtual ~Node() = default;

  // Installs the initial membership of a brand-new group (empty storage, term 0). Every initial
  // member must bootstrap with the same `conf`. kFailedPrecondition if the log is not empty.
  virtual Status Bootstrap(const ConfState& conf) = 0;

  virtual void Tick() = 0;

  // Feeds a message from a peer. Messages for another node, from unknown senders or with stale
  // terms are ignored (Ok). Returns an error only for malformed messages.
  virtual Status Step(const Message& message) = 0;

  // Appends data to the log if this node is the leader. kFailedPrecondition if not leader
  // (the host redirects to NodeStatus.soft_state.leader), kAborted during a leadership
  // transfer, kResourceExhausted past max_uncommitted_bytes. Returns the entry's index; the
  // entry is committed once it appears in committed_entries with the same index and term.
  virtual Result<Index> Propose(Bytes data) = 0;

  // Proposes a membership change. kFailedPrecondition if not leader, if another change is
  // still uncommitted or unapplied, or if the leader has not yet committed an entry of its own
  // term (the single-server-change safety fix); kInvalidArgument for a nonsensical change
  // (removing an unknown node, leaving no voters).
  virtual Result<Index> ProposeConfChange(const ConfChange& cc) = 0;

  // Applies a committed kConfChange entry. The host calls this when it applies such an entry;
  // returns the new membership, which the host persists with that applied index.
  virtual ConfState ApplyConfChange(const ConfChange& cc) = 0;
  // The same, given the index of the entry. Prefer this one: a change at or below the index of a
  // snapshot the node restored since (a host that calls Step between GetReady and Advance can
  // receive one before it applies the Ready) is ignored, and the current membership (the
  // snapshot's) is returned.
  virtual ConfState ApplyConfChange(const ConfChange& cc, Index entry_index) = 0;

  // Starts an election now (pre-vote first if enabled). For tests and for the host's failure
  // detector (e.g. when a quiesced follower learns the leader's broker died).
  virtual void Campaign() = 0;

  // Asks the leader to hand leadership to `target`: it stops accepting proposals, brings the
  // target up to date and sends it kTimeoutNow. Aborted after an election timeout.
  virtual Status TransferLeadership(NodeId target) = 0;

  // Requests a linearizable read. The answer arrives as a ReadState with the same context.
  // Served by the leader after a heartbeat round confirms it still leads (ReadIndex); a
  // follower forwards the request. kUnavailable when no leader is known.
  virtual Status ReadIndex(uint64_t context) = 0;

  // Resumes ticking and heartbeating after quiescence (e.g. the host saw a peer restart).
  virtual void Wake() = 0;

  // Transport feedback: a message to `peer` could not be delivered, or a snapshot send ended.
  virtual void ReportUnreachable(NodeId peer) = 0;
  virtual void ReportSnapshot(NodeId peer, bool succeeded) = 0;

  virtual bool HasReady() const = 0;
  virtual Ready GetReady() = 0;
  // Acknowledges that everything `ready` asked to persist is durable (with
  // Config.async_storage_writes: written and readable, durable later) and its committed entries
  // were applied. Must be called with the Ready last returned, before the next GetReady.
  virtual void Advance(const Ready& ready) = 0;
  // Config.async_storage_writes only: every write up to the one that stored entry `index` of
  // `term` is durable. Reports for entries since overwritten are ignored.
  virtual void OnDurable(Index index, Term term) = 0;

  virtual NodeStatus GetStatus() const = 0;
  virtual bool IsLeader() const = 0;
  virtual NodeId Leader() const = 0;
  virtual bool Quiesced() const = 0;
};

}  // namespace skiff::raft
