#include "raft/progress.h"

#include <gtest/gtest.h>

namespace skiff::raft {
namespace {

TEST(InflightsTest, AddFreeAndFull) {
  Inflights in(3);
  EXPECT_FALSE(in.Full());
  in.Add(5);
  in.Add(7);
  in.Add(9);
  EXPECT_TRUE(in.Full());
  EXPECT_EQ(in.Count(), 3u);
  in.FreeLE(6);
  EXPECT_EQ(in.Count(), 2u);
  EXPECT_FALSE(in.Full());
  in.FreeLE(4);  // nothing at or below 4 left
  EXPECT_EQ(in.Count(), 2u);
  in.FreeFirstOne();
  EXPECT_EQ(in.Count(), 1u);
  in.FreeLE(100);
  EXPECT_EQ(in.Count(), 0u);
  in.FreeFirstOne();  // on empty: no-op
  EXPECT_EQ(in.Count(), 0u);
}

TEST(ProgressTest, MaybeUpdate) {
  Progress pr(5, 4);
  pr.match = 3;
  EXPECT_FALSE(pr.MaybeUpdate(2));
  EXPECT_EQ(pr.match, 3u);
  EXPECT_EQ(pr.next, 5u);
  EXPECT_TRUE(pr.MaybeUpdate(6));
  EXPECT_EQ(pr.match, 6u);
  EXPECT_EQ(pr.next, 7u);
}

TEST(ProgressTest, MaybeDecrToProbe) {
  Progress pr(10, 4);
  pr.match = 2;
  // Stale rejection of something other than the last probe.
  EXPECT_FALSE(pr.MaybeDecrTo(5, 4));
  EXPECT_EQ(pr.next, 10u);
  // Rejection of prev index 9 with a hint 4: next goes to 5.
  EXPECT_TRUE(pr.MaybeDecrTo(9, 4));
  EXPECT_EQ(pr.next, 5u);
  // Hint below match is clamped to match+1.
  EXPECT_TRUE(pr.MaybeDecrTo(4, 0));
  EXPECT_EQ(pr.next, 3u);
}

TEST(ProgressTest, MaybeDecrToReplicate) {
  Progress pr(1, 4);
  pr.match = 5;
  pr.BecomeReplicate();
  pr.OptimisticUpdate(9);
  EXPECT_EQ(pr.next, 10u);
  EXPECT_FALSE(pr.MaybeDecrTo(5, 5));  // rejects what we know matches: stale
  EXPECT_FALSE(pr.MaybeDecrTo(3, 3));
  EXPECT_TRUE(pr.MaybeDecrTo(7, 6));
  EXPECT_EQ(pr.next, 6u);
}

TEST(ProgressTest, PausedByState) {
  Progress pr(1, 2);
  EXPECT_FALSE(pr.IsPaused());
  pr.probe_sent = true;
  EXPECT_TRUE(pr.IsPaused());
  pr.BecomeReplicate();
  EXPECT_FALSE(pr.IsPaused());
  pr.inflights.Add(1);
  pr.inflights.Add(2);
  EXPECT_TRUE(pr.IsPaused());
  pr.BecomeSnapshot(10);
  EXPECT_TRUE(pr.IsPaused());
  EXPECT_EQ(pr.inflights.Count(), 0u);
  pr.BecomeProbe();
  EXPECT_EQ(pr.next, 11u);  // resumes after the snapshot
  EXPECT_FALSE(pr.IsPaused());
}

}  // namespace
}  // namespace skiff::raft
