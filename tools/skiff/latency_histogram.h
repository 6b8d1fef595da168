// A fixed-size log-linear histogram of latencies in microseconds, for `skiff bench`
// (HdrHistogram is not packaged). Values 0..63 are exact; above that each power of two is
// split into 32 buckets, so a reported percentile is within ~3% of the true value.
//
// Thread-safety: none; give each thread its own and Merge() them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace skiff::cli {

class LatencyHistogram {
 public:
  LatencyHistogram();

  void Record(uint64_t micros);
  void Merge(const LatencyHistogram& other);

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0.0 : static_cast<double>(sum_) / count_; }
  // The value at quantile q in [0, 1]: the upper bound of the bucket holding the ceil(q*count)-th
  // smallest value, capped at max(). 0 when empty.
  uint64_t Percentile(double q) const;

  // Exposed for tests: the bucket of a value and the largest value in a bucket.
  static size_t BucketOf(uint64_t micros);
  static uint64_t BucketUpperBound(size_t bucket);

 private:
  std::vector<uint64_t> buckets_;
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

}  // namespace skiff::cli
