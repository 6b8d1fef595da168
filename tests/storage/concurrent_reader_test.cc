// Offset lookups racing the group's writer (appends, suffix truncations, snapshot + compaction):
// an offset that stays stored for the whole lookup must always be found, whatever the writer
// does to the span rows around it. Each batch is one record, so offset o lives in entry o + 1.
//
// The reader pins the offset it is about to look up; the writer announces what it is about to
// remove and skips that step if the pin falls in it (a Dekker handshake over seq_cst atomics:
// at least one side sees the other's store), so a lookup never races the removal of its own
// offset, only changes to its neighbours. Bounded by a step count, not by time.
#include <algorithm>
#include <atomic>
#include <limits>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "storage/log_store.h"
#include "storage/partition_log.h"
#include "storage_test_util.h"

namespace skiff::storage {
namespace {

using testing::BatchPayload;
using testing::MakeEntry;

constexpr uint64_t kNone = std::numeric_limits<uint64_t>::max();

raft::Entry OneRecord(raft::Index index, raft::Term term) {
  return MakeEntry(index, term,
                   BatchPayload(1, static_cast<int64_t>(index), "r" + std::to_string(index)));
}

TEST(ConcurrentReaderTest, StoredOffsetsAreFoundWhileTheWriterTruncatesAndCompacts) {
  testing::TempDir dir;
  LogStoreOptions options;
  options.sync_policy = SyncPolicy::kNever;
  options.classifier = testing::TestClassifier;
  options.offset_index_interval_bytes = 60;  // spans of a few 12-16 byte batches
  auto opened = LogStore::Open(dir.path(), options);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::unique_ptr<LogStore> store = std::move(opened).value();
  PartitionLog* log = *store->Group(RaftGroupId(1));

  std::atomic<uint64_t> pin{kNone};          // the offset the reader is looking up
  std::atomic<uint64_t> planned_start{0};    // offsets below it are being compacted
  std::atomic<uint64_t> planned_cut{kNone};  // offsets from it on are being truncated
  std::atomic<bool> writer_done{false};
  std::atomic<uint64_t> lookups{0};
  std::atomic<bool> failed{false};
  std::string failure;  // written by the reader before it sets `failed`; read after join

  std::thread reader([&] {
    std::mt19937_64 rng(7);
    while (!writer_done.load() && !failed.load()) {
      const uint64_t start = static_cast<uint64_t>(log->LogStartOffset().value());
      const uint64_t end = static_cast<uint64_t>(log->LogEndOffset().value());
      if (end <= start) continue;
      // Near the front (where compactions cut spans) or near the end (where truncations do).
      const uint64_t near = rng() % std::min<uint64_t>(20, end - start);
      const uint64_t o = rng() % 2 ? start + near : end - 1 - near;
      pin.store(o);
      if (planned_start.load() > o || planned_cut.load() <= o) {
        pin.store(kNone);
        continue;
      }
      auto found = log->FindOffset(Offset(static_cast<int64_t>(o)));
      if (!found.ok()) {
        failure = "offset " + std::to_string(o) + ": " + found.status().ToString();
      } else if (found->index != o + 1) {
        failure = "offset " + std::to_string(o) + " found in entry " + std::to_string(found->index);
      }
      if (!failure.empty()) failed.store(true);
      pin.store(kNone);
      lookups.fetch_add(1);
    }
  });

  std::mt19937_64 rng(11);
  raft::Term term = 1;
  raft::Index last = 0;
  int truncations = 0, compactions = 0;
  for (int step = 0; step < 4000 && !failed.load(); ++step) {
    const int op = static_cast<int>(rng() % 20);
    if (op == 0 && last > log->FirstIndex() + 10) {
      // A new leader's conflicting suffix replaces the last 1-8 entries.
      const raft::Index from = last - rng() % 8;
      planned_cut.store(from - 1);
      const uint64_t p = pin.load();
      if (p == kNone || p < from - 1) {
        ++term;
        std::vector<raft::Entry> entries;
        for (raft::Index i = from; i <= last; ++i) entries.push_back(OneRecord(i, term));
        ASSERT_TRUE(log->Append(entries).ok());
        ++truncations;
      }
      planned_cut.store(kNone);
    } else if (op <= 3 && last > log->FirstIndex() + 40) {
      // Retention: snapshot and compact a few entries off the front.
      const raft::Index through = log->FirstIndex() + rng() % 6;
      const uint64_t previous = planned_start.load();
      planned_start.store(through);  // entries <= through hold offsets < through
      const uint64_t p = pin.load();
      if (p == kNone || p >= through) {
        ASSERT_TRUE(
            log->CreateSnapshot(through, raft::ConfState{{1}, {}}, Bytes(std::string("s"))).ok());
        ASSERT_TRUE(log->Compact(through).ok());
        ++compactions;
      } else {
        planned_start.store(previous);
      }
    } else {
      ASSERT_TRUE(log->Append({OneRecord(last + 1, term)}).ok());
      ++last;
    }
  }
  writer_done.store(true);
  reader.join();
  EXPECT_EQ(failure, "");
  EXPECT_GT(truncations, 50);
  EXPECT_GT(compactions, 50);
  EXPECT_GT(lookups.load(), 100u);
}

}  // namespace
}  // namespace skiff::storage
