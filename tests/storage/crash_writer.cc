// storage_crash_writer DIR: appends synced entries to kGroups groups from kThreads threads,
// forever, and writes "group index\n" to stdout after each acknowledged (fsynced) write. Every
// 64 appends of a group it snapshots and compacts a prefix, so DeleteRange is crashed too.
// The crash test SIGKILLs it at random moments. Exits 2 on any storage error.
// With SKIFF_CRASH_WRITER_ASYNC set it writes with WriteAsync, up to kAsyncRounds rounds per
// thread awaiting their sync, and acknowledges a round when its on_durable reports OK.
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "crash_common.h"
#include "storage/log_store.h"
#include "storage/partition_log.h"

using namespace skiff;
using namespace skiff::storage;

namespace {

void Die(const Status& s) {
  std::fprintf(stderr, "crash_writer: %s\n", s.ToString().c_str());
  std::_Exit(2);
}

void Ack(uint64_t group, uint64_t index) {
  char line[64];
  const int n =
      std::snprintf(line, sizeof(line), "%llu %llu\n", static_cast<unsigned long long>(group),
                    static_cast<unsigned long long>(index));
  // One write() per line: atomic on a pipe (< PIPE_BUF), so threads never interleave.
  if (::write(1, line, static_cast<size_t>(n)) != n) std::_Exit(3);
}

constexpr int kAsyncRounds = 4;

// Rounds of one thread still awaiting their sync (WriteAsync mode).
class InFlight {
 public:
  void Acquire() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return count_ < kAsyncRounds; });
    ++count_;
  }
  void Release() {
    std::lock_guard lock(mu_);
    --count_;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int count_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: storage_crash_writer DIR\n");
    return 1;
  }
  LogStoreOptions options;
  // Small memtables and blob files, so the cut also lands during and after flushes: the flushed
  // files are written with O_DIRECT (ext4 allows it) and the WAL they replace gets deleted.
  options.log_write_buffer_size_bytes = 1 << 20;
  options.blob_file_size_bytes = 1 << 20;
  // Only to show the power-cut test can fail: acknowledges writes that were never fsynced.
  if (std::getenv("SKIFF_CRASH_WRITER_UNSAFE_NOSYNC") != nullptr) {
    options.sync_policy = SyncPolicy::kNever;
  }
  const bool async = std::getenv("SKIFF_CRASH_WRITER_ASYNC") != nullptr;
  auto opened = LogStore::Open(argv[1], options);
  if (!opened.ok()) Die(opened.status());
  std::unique_ptr<LogStore> store = std::move(opened).value();
  std::vector<std::thread> threads;
  for (int t = 0; t < crash::kThreads; ++t) {
    threads.emplace_back([&store, t, async] {
      InFlight in_flight;
      std::vector<PartitionLog*> logs;
      for (int g = t; g < crash::kGroups; g += crash::kThreads) {
        auto log = store->Group(RaftGroupId(static_cast<uint64_t>(g)));
        if (!log.ok()) Die(log.status());
        logs.push_back(*log);
      }
      for (uint64_t round = 0;; ++round) {
        // One group commit per round carrying 1-3 entries for each of this thread's groups.
        std::vector<GroupWrite> writes;
        for (PartitionLog* log : logs) {
          GroupWrite gw;
          gw.group = log->group();
          const uint64_t n = 1 + crash::Mix(round * 31 + log->group().value()) % 3;
          for (uint64_t k = 1; k <= n; ++k) {
            raft::Entry e;
            e.term = 1;
            e.index = log->LastIndex() + k;
            e.data = Bytes(crash::Payload(log->group().value(), e.index));
            gw.entries.push_back(std::move(e));
          }
          gw.hard_state = raft::HardState{1, 1, log->LastIndex() + n};
          writes.push_back(std::move(gw));
        }
        if (async) {
          std::vector<std::pair<uint64_t, uint64_t>> round_acks;
          for (const GroupWrite& gw : writes) {
            round_acks.emplace_back(gw.group.value(), gw.entries.back().index);
          }
          in_flight.Acquire();
          Status s = store->WriteAsync(writes, [&in_flight, round_acks](Status durable) {
            if (!durable.ok()) Die(durable);
            for (auto [group, index] : round_acks) Ack(group, index);
            in_flight.Release();
          });
          if (!s.ok()) Die(s);
        } else {
          Status s = store->Write(writes);
          if (!s.ok()) Die(s);
          for (PartitionLog* log : logs) Ack(log->group().value(), log->LastIndex());
        }
        if (round % 64 == 63) {
          for (PartitionLog* log : logs) {
            const raft::Index at = log->LastIndex() - 20;
            if (at < log->FirstIndex()) continue;
            Status cs = log->CreateSnapshot(at, raft::ConfState{{1}, {}}, Bytes(std::string("s")));
            if (!cs.ok()) Die(cs);
            Status cp = log->Compact(at);
            if (!cp.ok()) Die(cp);
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  return 0;
}
