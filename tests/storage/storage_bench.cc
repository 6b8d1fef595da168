// storage_bench: synced append throughput of the partition log against the disk's own limit,
// and write amplification with retention. Never asserts a timing; run by ./skiff.sh bench.
//
//   BM_AppendThreads/G      G threads, each appending 1 KiB entries to its own group, one
//                           synced LogStore::Write per entry; RocksDB's write group joins the
//                           concurrent writers into one WAL append + one fdatasync.
//   BM_AppendBatched/G      one caller, each Write() carries one 1 KiB entry for each of G
//                           groups (what a host that batches the Ready of G groups does).
//   BM_FileFdatasync/K      the disk's limit: append K KiB to a plain file, fdatasync, repeat.
//                           Compare BM_Append*/G with BM_FileFdatasync/G (same bytes per sync).
//   BM_FileOverwriteFdatasync/K  the same over a fully pre-written file (no metadata to sync):
//                           the device's best case.
//   BM_StoreVsDisk/groups:G/writers:W/depth:D  the store (W = 0: a thread per group; W > 0: W
//                           batched writers, skiffd's shape with W Raft workers; D > 1: each
//                           writer keeps up to D rounds in flight with WriteAsync, counting
//                           bytes when on_durable reports them, the shape of a host driving
//                           Raft's async storage writes) and both file baselines in
//                           alternating phases of one run; reports the ratios.
//   BM_WriteAmplification   64 groups, 1 KiB entries, batched synced writes, size retention
//                           (snapshot + compact) keeping 2 MiB per group; reports device bytes
//                           written (/proc/self/io write_bytes) / payload bytes appended.
//
// Data lives in $SKIFF_BENCH_DIR (default ./storage_bench_data.<pid> under the working dir:
// run it from the repository on a real disk, not a tmpfs) and is removed afterwards.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>

#include "storage/log_store.h"
#include "storage/partition_log.h"

namespace skiff::storage {
namespace {

constexpr size_t kRecordBytes = 1024;

std::string BenchDir(const std::string& name) {
  const char* env = std::getenv("SKIFF_BENCH_DIR");
  std::filesystem::path base = env ? std::filesystem::path(env) : std::filesystem::current_path();
  return (base / ("storage_bench_data." + std::to_string(::getpid()) + "." + name)).string();
}

// Fields of /proc/self/io.
uint64_t ProcIo(const std::string& field) {
  std::ifstream in("/proc/self/io");
  std::string key;
  uint64_t value = 0;
  while (in >> key >> value) {
    if (key == field + ":") return value;
  }
  return 0;
}

uint64_t DirBytes(const std::string& dir) {
  uint64_t total = 0;
  for (const auto& f : std::filesystem::recursive_directory_iterator(dir)) {
    if (f.is_regular_file()) total += f.file_size();
  }
  return total;
}

// Payloads are made once: the store's cost, not the benchmark's data generation, is measured
// (the plain-file benchmarks write a prepared buffer too).
const std::vector<Bytes>& Payloads() {
  static const std::vector<Bytes> payloads = [] {
    std::vector<Bytes> out;
    for (size_t n = 0; n < 1024; ++n) {
      std::string data(kRecordBytes, '\0');
      for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((n * 131 + i) & 0xff);
      out.emplace_back(std::move(data));
    }
    return out;
  }();
  return payloads;
}

raft::Entry Record(raft::Index index) {
  raft::Entry e;
  e.term = 1;
  e.index = index;
  e.data = Payloads()[index % Payloads().size()];
  return e;
}

// One store shared by the threads of a BM_AppendThreads run.
std::unique_ptr<LogStore> g_store;
std::string g_dir;

std::unique_ptr<LogStore> OpenFresh(const std::string& dir) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto opened = LogStore::Open(dir, LogStoreOptions{});
  if (!opened.ok()) {
    std::fprintf(stderr, "open %s: %s\n", dir.c_str(), opened.status().ToString().c_str());
    std::abort();
  }
  return std::move(opened).value();
}

void BM_AppendThreads(benchmark::State& state) {
  if (state.thread_index() == 0) {
    g_dir = BenchDir("threads");
    g_store = OpenFresh(g_dir);
  }
  // (All threads wait here for thread 0's setup: the loop starts with a barrier.)
  raft::Index next = 1;
  PartitionLog* log = nullptr;
  for (auto _ : state) {
    if (log == nullptr) log = *g_store->Group(RaftGroupId(state.thread_index() + 1));
    GroupWrite gw;
    gw.group = log->group();
    gw.entries.push_back(Record(next));
    Status s = g_store->Write({&gw, 1});
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
    ++next;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kRecordBytes));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  if (state.thread_index() == 0) {
    g_store.reset();
    std::filesystem::remove_all(g_dir);
  }
}
BENCHMARK(BM_AppendThreads)
    ->Threads(1)
    ->Threads(8)
    ->Threads(64)
    ->Threads(512)
    ->UseRealTime()
    ->MinTime(2);

void BM_AppendBatched(benchmark::State& state) {
  const int groups = static_cast<int>(state.range(0));
  const std::string dir = BenchDir("batched");
  std::unique_ptr<LogStore> store = OpenFresh(dir);
  std::vector<GroupWrite> writes(static_cast<size_t>(groups));
  for (int g = 0; g < groups; ++g) writes[static_cast<size_t>(g)].group = RaftGroupId(g + 1);
  raft::Index next = 1;
  for (auto _ : state) {
    for (auto& w : writes) w.entries.assign(1, Record(next));
    Status s = store->Write(writes);
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
    ++next;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * groups *
                          static_cast<int64_t>(kRecordBytes));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * groups);
  store.reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_AppendBatched)->RangeMultiplier(8)->Range(1, 512)->UseRealTime()->MinTime(2);

void BM_FileFdatasync(benchmark::State& state) {
  const size_t batch = static_cast<size_t>(state.range(0)) * kRecordBytes;
  const std::string dir = BenchDir("file");
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/plain.log";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    state.SkipWithError("open failed");
    return;
  }
  std::string buf(batch, 'x');
  for (auto _ : state) {
    if (::write(fd, buf.data(), buf.size()) != static_cast<ssize_t>(buf.size()) ||
        ::fdatasync(fd) != 0) {
      state.SkipWithError("write/fdatasync failed");
      break;
    }
  }
  ::close(fd);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * batch));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_FileFdatasync)->RangeMultiplier(8)->Range(1, 512)->UseRealTime()->MinTime(2);

// The device's best case: overwrite a file already written in full (no allocation, no size
// change, so fdatasync flushes data only), K KiB at a time, cycling through 64 MiB.
void BM_FileOverwriteFdatasync(benchmark::State& state) {
  const size_t batch = static_cast<size_t>(state.range(0)) * kRecordBytes;
  constexpr size_t kFileBytes = 64 << 20;
  const std::string dir = BenchDir("file_overwrite");
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/plain.log";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  std::string buf(1 << 20, 'x');
  bool ok = fd >= 0;
  for (size_t off = 0; ok && off < kFileBytes; off += buf.size()) {
    ok = ::write(fd, buf.data(), buf.size()) == static_cast<ssize_t>(buf.size());
  }
  ok = ok && ::fsync(fd) == 0;
  if (!ok) {
    state.SkipWithError("preparing the file failed");
    if (fd >= 0) ::close(fd);
    return;
  }
  buf.resize(batch);
  size_t off = 0;
  for (auto _ : state) {
    if (off + batch > kFileBytes) off = 0;
    if (::pwrite(fd, buf.data(), batch, static_cast<off_t>(off)) != static_cast<ssize_t>(batch) ||
        ::fdatasync(fd) != 0) {
      state.SkipWithError("pwrite/fdatasync failed");
      break;
    }
    off += batch;
  }
  ::close(fd);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * batch));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_FileOverwriteFdatasync)->RangeMultiplier(8)->Range(1, 512)->UseRealTime()->MinTime(2);

// The store and the disk measured in alternating short phases of the same run, so the ratio
// is not skewed by other load on a shared machine drifting between separate benchmarks.
// range(0) = groups G; range(1) = writers (see StorePhase: 0 = a thread per group, W = W
// batched callers; 2 is skiffd's default number of Raft workers). Baselines: append K = G KiB +
// fdatasync to a plain file, and overwrite the same in a fully pre-written file (device best case).
struct PhaseResult {
  uint64_t bytes = 0;
  double seconds = 0;
};

// writers == 0: one thread per group, one entry per Write (RocksDB's write group joins them).
// writers == W > 0: W threads, each owning groups/W groups and writing one entry for each of
// them per Write: the broker's shape (each Raft worker persists its groups' Readies at once;
// skiffd runs 2 workers by default).
PhaseResult StorePhase(LogStore* store, int groups, int writers, int depth, double seconds,
                       std::vector<raft::Index>& next) {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> bytes{0};
  std::atomic<bool> failed{false};
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::duration<double>(seconds);
  const int threads = writers == 0 ? groups : std::min(writers, groups);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::vector<int> owned;
      for (int g = t; g < groups; g += threads) owned.push_back(g);
      std::vector<GroupWrite> writes(owned.size());
      for (size_t i = 0; i < owned.size(); ++i) writes[i].group = RaftGroupId(owned[i] + 1);
      // depth > 1: rounds written but not yet reported durable.
      std::mutex mu;
      std::condition_variable cv;
      int in_flight = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        for (size_t i = 0; i < owned.size(); ++i) {
          writes[i].entries.assign(1, Record(next[owned[i]]));
        }
        const uint64_t round_bytes = owned.size() * kRecordBytes;
        if (depth <= 1) {
          if (!store->Write(writes).ok()) {
            failed = true;
            return;
          }
          bytes.fetch_add(round_bytes, std::memory_order_relaxed);
        } else {
          {
            std::unique_lock lock(mu);
            cv.wait(lock, [&] { return in_flight < depth; });
            ++in_flight;
          }
          Status s = store->WriteAsync(writes, [&, round_bytes](Status durable) {
            if (durable.ok()) {
              bytes.fetch_add(round_bytes, std::memory_order_relaxed);
            } else {
              failed = true;
            }
            std::lock_guard lock(mu);
            --in_flight;
            cv.notify_all();
          });
          if (!s.ok()) {
            failed = true;
            std::lock_guard lock(mu);
            --in_flight;
            break;
          }
        }
        for (int g : owned) ++next[g];
      }
      // The callbacks use this frame: wait for every round in flight.
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return in_flight == 0; });
    });
  }
  while (std::chrono::steady_clock::now() < deadline && !failed) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  stop = true;
  for (auto& w : workers) w.join();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return PhaseResult{failed ? 0 : bytes.load(), elapsed};
}

PhaseResult FilePhase(int fd, size_t batch, bool overwrite, size_t file_bytes, double seconds) {
  std::string buf(batch, 'y');
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::duration<double>(seconds);
  uint64_t bytes = 0;
  size_t off = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (overwrite) {
      if (off + batch > file_bytes) off = 0;
      if (::pwrite(fd, buf.data(), batch, static_cast<off_t>(off)) != static_cast<ssize_t>(batch))
        break;
      off += batch;
    } else if (::write(fd, buf.data(), batch) != static_cast<ssize_t>(batch)) {
      break;
    }
    if (::fdatasync(fd) != 0) break;
    bytes += batch;
  }
  return PhaseResult{
      bytes, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()};
}

void BM_StoreVsDisk(benchmark::State& state) {
  const int groups = static_cast<int>(state.range(0));
  const int writers = static_cast<int>(state.range(1));
  const int depth = static_cast<int>(state.range(2));
  constexpr int kRounds = 5;
  constexpr double kPhaseSeconds = 0.4;
  constexpr size_t kOverwriteFileBytes = 64 << 20;
  const size_t batch = static_cast<size_t>(groups) * kRecordBytes;
  const std::string dir = BenchDir("vs_disk");
  for (auto _ : state) {
    std::unique_ptr<LogStore> store = OpenFresh(dir + "/db");
    const int append_fd = ::open((dir + "/append.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int over_fd = ::open((dir + "/overwrite.log").c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
    std::string fill(1 << 20, 'z');
    for (size_t off = 0; off < kOverwriteFileBytes; off += fill.size()) {
      if (::write(over_fd, fill.data(), fill.size()) < 0) break;
    }
    if (append_fd < 0 || over_fd < 0 || ::fsync(over_fd) != 0) {
      state.SkipWithError("preparing the baseline files failed");
      return;
    }
    std::vector<raft::Index> next(static_cast<size_t>(groups), 1);
    PhaseResult st, ap, ow;
    for (int r = 0; r < kRounds; ++r) {
      PhaseResult a = StorePhase(store.get(), groups, writers, depth, kPhaseSeconds, next);
      PhaseResult b = FilePhase(append_fd, batch, false, 0, kPhaseSeconds);
      PhaseResult c = FilePhase(over_fd, batch, true, kOverwriteFileBytes, kPhaseSeconds);
      st.bytes += a.bytes, st.seconds += a.seconds;
      ap.bytes += b.bytes, ap.seconds += b.seconds;
      ow.bytes += c.bytes, ow.seconds += c.seconds;
    }
    ::close(append_fd);
    ::close(over_fd);
    store.reset();
    const double mib = 1 << 20;
    const double store_rate = static_cast<double>(st.bytes) / st.seconds;
    const double append_rate = static_cast<double>(ap.bytes) / ap.seconds;
    const double over_rate = static_cast<double>(ow.bytes) / ow.seconds;
    state.counters["store_MiBps"] = store_rate / mib;
    state.counters["file_append_MiBps"] = append_rate / mib;
    state.counters["file_overwrite_MiBps"] = over_rate / mib;
    state.counters["ratio_vs_append"] = store_rate / append_rate;
    state.counters["ratio_vs_overwrite"] = store_rate / over_rate;
  }
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_StoreVsDisk)
    ->ArgsProduct({{1, 8, 64, 512}, {0, 1, 2}, {1}})
    ->ArgsProduct({{1, 8, 64, 512}, {1, 2}, {4}})
    ->ArgNames({"groups", "writers", "depth"})
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kSecond);

void BM_WriteAmplification(benchmark::State& state) {
  constexpr int kGroups = 64;
  constexpr uint64_t kRetainBytesPerGroup = 2 << 20;
  const uint64_t total_bytes = static_cast<uint64_t>(state.range(0)) << 20;
  const std::string dir = BenchDir("wa");
  for (auto _ : state) {
    std::unique_ptr<LogStore> store = OpenFresh(dir);
    std::vector<PartitionLog*> logs;
    for (int g = 0; g < kGroups; ++g) logs.push_back(*store->Group(RaftGroupId(g + 1)));
    const uint64_t written_before = ProcIo("write_bytes");
    const uint64_t cancelled_before = ProcIo("cancelled_write_bytes");
    uint64_t appended = 0;
    std::vector<GroupWrite> writes(kGroups);
    for (raft::Index next = 1; appended < total_bytes; ++next) {
      for (int g = 0; g < kGroups; ++g) {
        writes[g].group = RaftGroupId(g + 1);
        writes[g].entries.assign(1, Record(next));
        writes[g].hard_state = raft::HardState{1, 1, next};  // committed: retention may cut
      }
      Status s = store->Write(writes);
      if (!s.ok()) {
        state.SkipWithError(s.ToString().c_str());
        return;
      }
      appended += kGroups * kRecordBytes;
      if (next % 512 == 0) {
        RetentionPolicy policy{std::nullopt, kRetainBytesPerGroup};
        for (PartitionLog* log : logs) {
          auto cut = log->ComputeRetention(policy, 0);
          if (!cut.ok() || cut->cut_through == 0) continue;
          Status a = log->CreateSnapshot(cut->cut_through, raft::ConfState{{1}, {}}, Bytes());
          Status b = a.ok() ? log->Compact(cut->cut_through) : a;
          if (!b.ok()) {
            state.SkipWithError(b.ToString().c_str());
            return;
          }
        }
      }
    }
    Status f = store->FlushAll();
    if (!f.ok()) state.SkipWithError(f.ToString().c_str());
    const uint64_t written = ProcIo("write_bytes") - written_before;
    const uint64_t cancelled = ProcIo("cancelled_write_bytes") - cancelled_before;
    state.counters["appended_MiB"] = static_cast<double>(appended) / (1 << 20);
    state.counters["device_written_MiB"] = static_cast<double>(written) / (1 << 20);
    state.counters["write_amp"] = static_cast<double>(written) / static_cast<double>(appended);
    state.counters["write_amp_net_cancelled"] =
        static_cast<double>(written - std::min(written, cancelled)) / static_cast<double>(appended);
    state.counters["dir_MiB_at_end"] = static_cast<double>(DirBytes(dir)) / (1 << 20);
    state.counters["retained_MiB"] =
        static_cast<double>(kGroups * kRetainBytesPerGroup) / (1 << 20);
    state.SetBytesProcessed(static_cast<int64_t>(appended));
    store.reset();
    std::filesystem::remove_all(dir);
  }
}
BENCHMARK(BM_WriteAmplification)->Arg(1024)->Iterations(1)->UseRealTime()->Unit(benchmark::kSecond);

}  // namespace
}  // namespace skiff::storage
