// Crash test with a real kill -9: a writer process (storage_crash_writer) appends with fsync
// and reports each acknowledged index through a pipe; the parent SIGKILLs it at a random
// moment, reopens the store and checks that every acknowledged entry is present and intact and
// that every stored entry decodes (CRC) to exactly the expected bytes — nothing torn is visible.
// 20 rounds; each round is bounded in acks and in time.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <sstream>

#include <gtest/gtest.h>

#include "crash_common.h"
#include "storage/log_store.h"
#include "storage/partition_log.h"
#include "storage_test_util.h"

namespace skiff::storage {
namespace {

struct Child {
  pid_t pid = -1;
  int out_fd = -1;
};

// async: the writer uses WriteAsync and acknowledges from its on_durable callbacks.
Child Spawn(const std::string& dir, bool async = false) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (async) ::setenv("SKIFF_CRASH_WRITER_ASYNC", "1", 1);
    ::dup2(fds[1], 1);
    ::close(fds[0]);
    ::close(fds[1]);
    ::execl(SKIFF_CRASH_WRITER, SKIFF_CRASH_WRITER, dir.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[1]);
  return Child{pid, fds[0]};
}

// Parses complete "group index" lines out of buf into acked (keeping the max per group).
void ParseAcks(std::string& buf, std::map<uint64_t, uint64_t>& acked, int& count) {
  size_t nl;
  while ((nl = buf.find('\n')) != std::string::npos) {
    std::istringstream line(buf.substr(0, nl));
    uint64_t g = 0, i = 0;
    line >> g >> i;
    acked[g] = std::max(acked[g], i);
    ++count;
    buf.erase(0, nl + 1);
  }
}

TEST(CrashTest, AcknowledgedEntriesSurviveKill9) {
  testing::TempDir dir;
  std::mt19937_64 rng(20261123);
  std::map<uint64_t, uint64_t> acked;  // group -> highest acknowledged index, over all rounds
  for (int round = 0; round < 20; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    Child child = Spawn(dir.path());
    const int kill_after = 1 + static_cast<int>(rng() % 400);
    int count = 0;
    std::string buf;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (count < kill_after && std::chrono::steady_clock::now() < deadline) {
      pollfd p{child.out_fd, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char chunk[4096];
      const ssize_t n = ::read(child.out_fd, chunk, sizeof(chunk));
      if (n <= 0) break;  // the child died on its own: reported below
      buf.append(chunk, static_cast<size_t>(n));
      ParseAcks(buf, acked, count);
    }
    ::kill(child.pid, SIGKILL);
    int wstatus = 0;
    ASSERT_EQ(::waitpid(child.pid, &wstatus, 0), child.pid);
    ASSERT_TRUE(WIFSIGNALED(wstatus)) << "writer exited by itself, status " << wstatus;
    // Acks written before the kill are still in the pipe: they were acknowledged too.
    char chunk[4096];
    ssize_t n;
    while ((n = ::read(child.out_fd, chunk, sizeof(chunk))) > 0) {
      buf.append(chunk, static_cast<size_t>(n));
    }
    ::close(child.out_fd);
    ParseAcks(buf, acked, count);
    EXPECT_GT(count, 0);

    auto opened = LogStore::Open(dir.path(), LogStoreOptions{});
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    std::unique_ptr<LogStore> store = std::move(opened).value();
    for (int g = 0; g < crash::kGroups; ++g) {
      auto log = store->Group(RaftGroupId(static_cast<uint64_t>(g)));
      ASSERT_TRUE(log.ok()) << log.status().ToString();
      PartitionLog* pl = *log;
      const uint64_t want = acked[static_cast<uint64_t>(g)];
      ASSERT_GE(pl->LastIndex(), want) << "group " << g << " lost acknowledged entries";
      ASSERT_LE(pl->FirstIndex(), want + 1) << "group " << g;
      auto entries = pl->Entries(pl->FirstIndex(), pl->LastIndex() + 1, UINT64_MAX);
      ASSERT_TRUE(entries.ok()) << "group " << g << ": " << entries.status().ToString();
      ASSERT_EQ(entries->size(), pl->LastIndex() + 1 - pl->FirstIndex());
      for (const raft::Entry& e : *entries) {
        ASSERT_EQ(e.data.ToString(), crash::Payload(static_cast<uint64_t>(g), e.index))
            << "group " << g << " index " << e.index;
      }
      EXPECT_GE(pl->hard_state().commit, want) << "group " << g;
    }
  }
}

// Power cut: the same writer on an ext4 image mounted through a loop device. The writer is
// frozen (SIGSTOP) after a random number of acks, and the image is copied: the copy holds what
// reached the device — everything fsynced, and of the rest only what the kernel happened to
// write back — exactly what survives a power cut. The copy is checked with e2fsck, mounted,
// and must hold every acknowledged entry intact. Needs root and loop devices; skipped
// otherwise. 5 rounds, each bounded in acks and time.
int Shell(const std::string& command) {
  const int rc = std::system((command + " >/dev/null 2>&1").c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

class PowerCutTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const std::string& m : mounts_) EXPECT_EQ(Shell("umount " + m), 0) << m;
  }
  bool Mount(const std::string& image, const std::string& dir) {
    std::filesystem::create_directories(dir);
    if (Shell("mount -o loop " + image + " " + dir) != 0) return false;
    mounts_.push_back(dir);
    return true;
  }
  void Unmount(const std::string& dir) {
    ASSERT_EQ(Shell("umount " + dir), 0);
    mounts_.erase(std::find(mounts_.begin(), mounts_.end(), dir));
  }
  // Five power cuts of the writer (async: acknowledging from WriteAsync's on_durable).
  void RunPowerCuts(bool async);

  std::vector<std::string> mounts_;
  // A member, not a local of the test body: it must outlive TearDown, which unmounts what lives
  // inside it. (As a local it was removed while still mounted, leaving a directory behind.)
  testing::TempDir dir_;
};

TEST_F(PowerCutTest, AcknowledgedEntriesSurviveLosingUnsyncedWrites) { RunPowerCuts(false); }

TEST_F(PowerCutTest, AsyncWritesAcknowledgedAsDurableSurviveLosingUnsyncedWrites) {
  RunPowerCuts(true);
}

void PowerCutTest::RunPowerCuts(bool async) {
  testing::TempDir& dir = dir_;
  const std::string image = dir.path() + "/disk.img";
  const std::string live = dir.path() + "/live";
  if (Shell("truncate -s 256M " + image) != 0 || Shell("mkfs.ext4 -q -F " + image) != 0) {
    GTEST_SKIP() << "cannot make an ext4 image (truncate/mkfs.ext4 missing?)";
  }
  if (!Mount(image, live)) GTEST_SKIP() << "cannot loop-mount an ext4 image (needs root)";
  std::mt19937_64 rng(77);
  std::map<uint64_t, uint64_t> acked;
  for (int round = 0; round < 5; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    Child child = Spawn(live + "/db", async);
    const int stop_after = 20 + static_cast<int>(rng() % 400);
    int count = 0;
    std::string buf;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (count < stop_after && std::chrono::steady_clock::now() < deadline) {
      pollfd p{child.out_fd, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char chunk[4096];
      const ssize_t n = ::read(child.out_fd, chunk, sizeof(chunk));
      if (n <= 0) break;
      buf.append(chunk, static_cast<size_t>(n));
      ParseAcks(buf, acked, count);
    }
    // Freeze the writer: from here nothing more is acknowledged, and everything acknowledged
    // so far was fsynced. Take the "power cut" copy now, then kill it.
    ASSERT_EQ(::kill(child.pid, SIGSTOP), 0);
    int wstatus = 0;
    ASSERT_EQ(::waitpid(child.pid, &wstatus, WUNTRACED), child.pid);
    ::fcntl(child.out_fd, F_SETFL, O_NONBLOCK);
    char chunk[4096];
    ssize_t n;
    while ((n = ::read(child.out_fd, chunk, sizeof(chunk))) > 0) {
      buf.append(chunk, static_cast<size_t>(n));
    }
    ParseAcks(buf, acked, count);
    const std::string copy = dir.path() + "/cut.img";
    ASSERT_EQ(Shell("cp --sparse=always " + image + " " + copy), 0);
    ::kill(child.pid, SIGKILL);
    ASSERT_EQ(::waitpid(child.pid, &wstatus, 0), child.pid);
    ::close(child.out_fd);
    ASSERT_GT(count, 0);
    // e2fsck: 0 = clean, 1 = errors corrected (the journal replayed); more is a failure.
    ASSERT_LE(Shell("e2fsck -fy " + copy), 1);
    const std::string cut = dir.path() + "/cut";
    ASSERT_TRUE(Mount(copy, cut));
    {
      auto opened = LogStore::Open(cut + "/db", LogStoreOptions{});
      ASSERT_TRUE(opened.ok()) << opened.status().ToString();
      std::unique_ptr<LogStore> store = std::move(opened).value();
      // ext4, like the writer's: its flushes went through O_DIRECT.
      EXPECT_TRUE(store->direct_io_for_flush());
      for (int g = 0; g < crash::kGroups; ++g) {
        PartitionLog* pl = *store->Group(RaftGroupId(static_cast<uint64_t>(g)));
        const uint64_t want = acked[static_cast<uint64_t>(g)];
        ASSERT_GE(pl->LastIndex(), want) << "group " << g << " lost acknowledged entries";
        auto entries = pl->Entries(pl->FirstIndex(), pl->LastIndex() + 1, UINT64_MAX);
        ASSERT_TRUE(entries.ok()) << "group " << g << ": " << entries.status().ToString();
        for (const raft::Entry& e : *entries) {
          ASSERT_EQ(e.data.ToString(), crash::Payload(static_cast<uint64_t>(g), e.index))
              << "group " << g << " index " << e.index;
        }
      }
    }
    Unmount(cut);
    std::filesystem::remove(copy);
  }
}

}  // namespace
}  // namespace skiff::storage
