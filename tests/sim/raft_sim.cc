// raft_sim: runs the deterministic Raft simulator from the command line.
//
//   raft_sim --seed=1234 --steps=5000 --nodes=5          replay one seed (add --trace to see it)
//   raft_sim --seed=1 --seeds=100000                     seeds 1..100000
//   raft_sim --seed=1 --time_limit_s=3600                a soak: seeds from 1 until the time is up
//   raft_sim --unsafe=vote_ignores_log --seeds=200       a deliberately broken Raft (must fail)
//
// Flags: --seed (first seed, default 1), --seeds (count; default 1, or unbounded with
// --time_limit_s), --steps (default 5000), --nodes (3, 5, or 0 = chosen per seed; default 0),
// --time_limit_s, --unsafe=<commit_on_minority|vote_ignores_log|vote_ignores_term|lying_disk|
// async_acks_before_sync|async_hold_only_writing_readies|none>, --async_writes=<-1|0|1> (Raft async
// storage writes; -1: per seed), --defer_commit=<-1|0|1> (Raft's deferred commit broadcast;
// -1: per seed),
// --liveness=<true|false>, --trace, --max_failures (stop after this many; default 20).
//
// Prints every failing seed with a one-line replay command, then a summary: seeds run,
// wall time, seeds/s, steps, failures. Exit status 0 iff no seed failed. The wall clock is only
// read to stop a soak; it never influences a run.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "simulator.h"

namespace {

bool FlagValue(const char* arg, const char* name, std::string* value) {
  const size_t n = std::strlen(name);
  if (std::strncmp(arg, name, n) != 0) return false;
  if (arg[n] == '\0') {
    *value = "true";
    return true;
  }
  if (arg[n] != '=') return false;
  *value = arg + n + 1;
  return true;
}

uint64_t ParseU64(const std::string& s, const char* flag) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0') {
    std::fprintf(stderr, "bad value for %s: %s\n", flag, s.c_str());
    std::exit(2);
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  skiff::sim::SimOptions options;
  options.nodes = 0;
  uint64_t seeds = 0;
  bool seeds_given = false;
  uint64_t time_limit_s = 0;
  uint64_t max_failures = 20;
  for (int i = 1; i < argc; i++) {
    std::string v;
    if (FlagValue(argv[i], "--seeds", &v)) {
      seeds = ParseU64(v, "--seeds");
      seeds_given = true;
    } else if (FlagValue(argv[i], "--seed", &v)) {
      options.seed = ParseU64(v, "--seed");
    } else if (FlagValue(argv[i], "--steps", &v)) {
      options.steps = ParseU64(v, "--steps");
    } else if (FlagValue(argv[i], "--nodes", &v)) {
      options.nodes = static_cast<int>(ParseU64(v, "--nodes"));
      if (options.nodes != 0 && options.nodes != 3 && options.nodes != 5) {
        std::fprintf(stderr, "--nodes must be 3, 5 or 0 (per seed)\n");
        return 2;
      }
    } else if (FlagValue(argv[i], "--time_limit_s", &v)) {
      time_limit_s = ParseU64(v, "--time_limit_s");
    } else if (FlagValue(argv[i], "--max_failures", &v)) {
      max_failures = ParseU64(v, "--max_failures");
    } else if (FlagValue(argv[i], "--unsafe", &v)) {
      if (!skiff::sim::ParseUnsafeKnob(v, &options)) {
        std::fprintf(stderr, "unknown --unsafe knob: %s\n", v.c_str());
        return 2;
      }
    } else if (FlagValue(argv[i], "--async_writes", &v)) {
      if (v != "-1" && v != "0" && v != "1") {
        std::fprintf(stderr, "--async_writes must be -1, 0 or 1\n");
        return 2;
      }
      options.async_writes = std::stoi(v);
    } else if (FlagValue(argv[i], "--defer_commit", &v)) {
      if (v != "-1" && v != "0" && v != "1") {
        std::fprintf(stderr, "--defer_commit must be -1, 0 or 1\n");
        return 2;
      }
      options.defer_commit = std::stoi(v);
    } else if (FlagValue(argv[i], "--liveness", &v)) {
      options.liveness = v != "false" && v != "0";
    } else if (FlagValue(argv[i], "--trace", &v)) {
      options.trace = v != "false" && v != "0";
    } else {
      std::fprintf(stderr, "unknown flag: %s (see the comment at the top of raft_sim.cc)\n",
                   argv[i]);
      return 2;
    }
  }
  if (!seeds_given) seeds = time_limit_s > 0 ? UINT64_MAX : 1;

  const auto start = std::chrono::steady_clock::now();
  auto elapsed_s = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  const uint64_t first_seed = options.seed;
  uint64_t run = 0;
  uint64_t failures = 0;
  uint64_t steps_total = 0;
  uint64_t ticks_total = 0;
  uint64_t committed_total = 0;
  // Coverage: how many runs exercised each kind of event at least once, and totals.
  uint64_t runs_with_crash = 0, runs_with_snapshot = 0, runs_with_confchange = 0,
           runs_with_read = 0, runs_with_unsynced = 0, runs_multi_leader = 0, runs_async = 0;
  uint64_t crashes_total = 0, snapshots_total = 0, confchanges_total = 0, reads_total = 0;
  uint64_t early_crashes_total = 0;
  double next_progress_s = 60;
  for (uint64_t i = 0; i < seeds; i++) {
    if (time_limit_s > 0 && elapsed_s() >= static_cast<double>(time_limit_s)) break;
    options.seed = first_seed + i;
    const skiff::sim::SimResult r = skiff::sim::RunSimulation(options);
    run++;
    steps_total += r.steps_run;
    ticks_total += r.ticks;
    committed_total += r.committed_index;
    runs_with_crash += r.crashes > 0;
    runs_with_snapshot += r.snapshots_installed > 0;
    runs_with_confchange += r.conf_changes_applied > 0;
    runs_with_read += r.reads_checked > 0;
    runs_with_unsynced += r.unsynced_persists > 0;
    runs_async += r.async_syncs > 0;
    runs_multi_leader += r.leaders_elected > 1;
    crashes_total += r.crashes;
    early_crashes_total += r.crashes_before_leader_write;
    snapshots_total += r.snapshots_installed;
    confchanges_total += r.conf_changes_applied;
    reads_total += r.reads_checked;
    if (seeds == 1 || !r.ok) {
      std::printf(
          "seed %llu: %s%s\n  steps=%llu ticks=%llu leaders=%llu max_term=%llu committed=%llu "
          "proposals=%llu/%llu reads=%llu crashes=%llu snapshots=%llu confchanges=%llu "
          "msgs=%llu unsynced_persists=%llu async_syncs=%llu liveness_ticks=%llu "
          "fingerprint=%016llx\n",
          static_cast<unsigned long long>(options.seed),
          r.ok ? "ok" : "FAILED: ", r.failure.c_str(), static_cast<unsigned long long>(r.steps_run),
          static_cast<unsigned long long>(r.ticks),
          static_cast<unsigned long long>(r.leaders_elected),
          static_cast<unsigned long long>(r.max_term),
          static_cast<unsigned long long>(r.committed_index),
          static_cast<unsigned long long>(r.proposals_committed),
          static_cast<unsigned long long>(r.proposals_accepted),
          static_cast<unsigned long long>(r.reads_checked),
          static_cast<unsigned long long>(r.crashes),
          static_cast<unsigned long long>(r.snapshots_installed),
          static_cast<unsigned long long>(r.conf_changes_applied),
          static_cast<unsigned long long>(r.messages_sent),
          static_cast<unsigned long long>(r.unsynced_persists),
          static_cast<unsigned long long>(r.async_syncs),
          static_cast<unsigned long long>(r.liveness_ticks),
          static_cast<unsigned long long>(r.fingerprint));
      if (!r.ok) {
        std::printf("  replay: %s --trace\n", skiff::sim::ReplayCommand(options).c_str());
      }
      std::fflush(stdout);
    }
    if (!r.ok && ++failures >= max_failures) break;
    if (elapsed_s() >= next_progress_s) {
      std::printf("progress: %llu seeds in %.0f s (%.1f seeds/s), %llu failures\n",
                  static_cast<unsigned long long>(run), elapsed_s(), run / elapsed_s(),
                  static_cast<unsigned long long>(failures));
      std::fflush(stdout);
      next_progress_s += 60;
    }
  }
  const double secs = elapsed_s();
  std::printf(
      "summary: seeds %llu..%llu (%llu run), %.1f s, %.1f seeds/s, %llu steps (%.0f steps/s), "
      "%llu ticks, %llu entries committed, failures %llu\n",
      static_cast<unsigned long long>(first_seed),
      static_cast<unsigned long long>(first_seed + (run == 0 ? 0 : run - 1)),
      static_cast<unsigned long long>(run), secs, secs > 0 ? run / secs : 0.0,
      static_cast<unsigned long long>(steps_total), secs > 0 ? steps_total / secs : 0.0,
      static_cast<unsigned long long>(ticks_total),
      static_cast<unsigned long long>(committed_total), static_cast<unsigned long long>(failures));
  if (run > 1) {
    std::printf(
        "coverage: runs with crash %llu, snapshot installed %llu, conf change %llu, read %llu, "
        "unsynced write %llu, async storage writes %llu, >1 leader %llu; totals: crashes %llu, "
        "snapshots installed %llu, conf changes applied %llu, reads checked %llu, leader crashes "
        "between sending appends and writing them %llu\n",
        static_cast<unsigned long long>(runs_with_crash),
        static_cast<unsigned long long>(runs_with_snapshot),
        static_cast<unsigned long long>(runs_with_confchange),
        static_cast<unsigned long long>(runs_with_read),
        static_cast<unsigned long long>(runs_with_unsynced),
        static_cast<unsigned long long>(runs_async),
        static_cast<unsigned long long>(runs_multi_leader),
        static_cast<unsigned long long>(crashes_total),
        static_cast<unsigned long long>(snapshots_total),
        static_cast<unsigned long long>(confchanges_total),
        static_cast<unsigned long long>(reads_total),
        static_cast<unsigned long long>(early_crashes_total));
  }
  return failures == 0 ? 0 : 1;
}
