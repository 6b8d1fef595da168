#include "latency_histogram.h"

#include <gtest/gtest.h>

namespace skiff::cli {
namespace {

TEST(LatencyHistogram, SmallValuesAreExact) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 50; ++v) h.Record(v);
  EXPECT_EQ(h.Percentile(0.5), 25u);
  EXPECT_EQ(h.Percentile(1.0), 50u);
  EXPECT_EQ(h.min(), 1u);
  EXPECT_DOUBLE_EQ(h.mean(), 25.5);
}

TEST(LatencyHistogram, BucketsCoverEveryValueWithinThreePercent) {
  for (uint64_t v : {64ull, 65ull, 100ull, 1000ull, 123456ull, 1ull << 40, (1ull << 63) + 5}) {
    const size_t b = LatencyHistogram::BucketOf(v);
    const uint64_t upper = LatencyHistogram::BucketUpperBound(b);
    EXPECT_GE(upper, v);
    EXPECT_LE(static_cast<double>(upper - v), 0.032 * static_cast<double>(v)) << v;
    if (b > 0) {
      EXPECT_LT(LatencyHistogram::BucketUpperBound(b - 1), v) << v;
    }
  }
  EXPECT_EQ(LatencyHistogram::BucketUpperBound(LatencyHistogram::BucketOf(UINT64_MAX)), UINT64_MAX);
}

TEST(LatencyHistogram, PercentilesOfASpread) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 100000; ++v) h.Record(v);
  EXPECT_NEAR(static_cast<double>(h.Percentile(0.5)), 50000, 50000 * 0.032);
  EXPECT_NEAR(static_cast<double>(h.Percentile(0.99)), 99000, 99000 * 0.032);
  EXPECT_EQ(h.Percentile(0.999), std::min<uint64_t>(h.Percentile(0.999), 100000));
  EXPECT_EQ(h.Percentile(1.0), 100000u);  // capped at the max seen
}

TEST(LatencyHistogram, MergeAndEmpty) {
  LatencyHistogram a, b, empty;
  EXPECT_EQ(empty.Percentile(0.5), 0u);
  a.Record(10);
  b.Record(1000);
  b.Record(2000);
  a.Merge(b);
  a.Merge(empty);
  EXPECT_EQ(a.count(), 3u);
  EXPECT_EQ(a.min(), 10u);
  EXPECT_EQ(a.max(), 2000u);
}

}  // namespace
}  // namespace skiff::cli
