// RunSimulation: one seeded, deterministic run of a Raft cluster under faults.
//
// Phase 1 (safety), `steps` steps: each step picks one random action (tick with per-node clock
// skew; deliver a random message early; drop or duplicate one; propose; ReadIndex; partition
// symmetric / one-way / isolate the leader; heal; crash; restart; membership change; leadership
// transfer; snapshot + compaction; campaign; re-skew a clock; change the network's fault
// profile), then the checker runs on every node. The action weights themselves are drawn from
// the seed ("swarm testing"), so different seeds stress different mixes.
//
// Phase 2 (liveness): faults stop (network healed and reliable, clocks even, crashed members
// restarted). Within a bounded number of ticks a leader must emerge, every proposal a leader
// accepted must be committed or superseded, and every member must apply the same history up
// to the leader's last index.
//
// Same SimOptions => same run, bit for bit (SimResult::fingerprint proves it).
#pragma once

#include <cstdint>
#include <string>

#include "raft/node.h"

namespace skiff::sim {

struct SimOptions {
  uint64_t seed = 1;
  int nodes = 3;                    // initial voters: 3 or 5; 0 = chosen by the seed
  uint64_t steps = 5000;            // safety-phase steps
  bool liveness = true;             // run phase 2
  raft::UnsafeTestingKnobs unsafe;  // deliberately broken Raft (checker self-test)
  bool lying_disk = false;  // deliberately broken host: never syncs, so crashes lose acked writes
  // raft.async_storage_writes: 1 on, 0 off, -1 chosen by the seed.
  int async_writes = -1;
  // raft.defer_commit_broadcast: 1 on, 0 off, -1 chosen by the seed (without drawing from the
  // run's PRNG, so every other choice a seed makes stays as it was).
  int defer_commit = -1;
  // Deliberately broken async host: sends every message at once, before the writes it
  // acknowledges are durable.
  bool async_acks_before_sync = false;
  // Deliberately broken async host, subtler: holds back only the messages of Readies that wrote
  // something; a write-less Ready's messages go out at once, although they may acknowledge
  // entries an earlier Ready wrote that are not durable yet (node.h, ASYNC STORAGE WRITES).
  // Random seeds rarely catch it (README.md); sim/SimScenario.WritelessReackWaitsForEarlierSync
  // always does.
  bool async_hold_only_writing_readies = false;
  bool trace = false;  // print every action (for replays)
};

struct SimResult {
  bool ok = true;
  std::string failure;  // first violation, empty when ok
  uint64_t failed_at_step = 0;
  uint64_t steps_run = 0;
  uint64_t ticks = 0;
  uint64_t liveness_ticks = 0;
  uint64_t leaders_elected = 0;
  uint64_t max_term = 0;
  uint64_t committed_index = 0;
  uint64_t proposals_accepted = 0;
  uint64_t proposals_committed = 0;
  uint64_t reads_checked = 0;
  uint64_t crashes = 0;
  uint64_t crashes_before_leader_write = 0;
  uint64_t async_syncs = 0;  // > 0 only when the run used async storage writes
  uint64_t snapshots_installed = 0;
  uint64_t conf_changes_applied = 0;
  uint64_t messages_sent = 0;
  uint64_t unsynced_persists = 0;  // Readies that wrote state without must_sync (crash may lose)
  uint64_t fingerprint = 0;        // hash of the run's observable outcome (determinism check)
};

SimResult RunSimulation(const SimOptions& options);

// The number of initial voters a run uses: options.nodes, or 3 or 5 chosen from the seed.
int ResolveNodes(const SimOptions& options);

// "build/tests/sim/raft_sim --seed=N --steps=S --nodes=K [--unsafe=knob]"
std::string ReplayCommand(const SimOptions& options);

// Parses an --unsafe value into options->unsafe / options->lying_disk: commit_on_minority,
// vote_ignores_log, vote_ignores_term (raft::UnsafeTestingKnobs), lying_disk (the simulated
// host ignores Ready.must_sync), async_acks_before_sync, async_hold_only_writing_readies (broken
// async hosts, see SimOptions), or none.
bool ParseUnsafeKnob(const std::string& name, SimOptions* options);
std::string UnsafeKnobName(const SimOptions& options);

}  // namespace skiff::sim
