#include "latency_histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace skiff::cli {
namespace {

constexpr int kSubBits = 6;  // 64 exact values, then 32 buckets per power of two
constexpr size_t kExact = size_t{1} << kSubBits;
constexpr size_t kHalf = kExact / 2;
constexpr size_t kBuckets = kExact + (64 - kSubBits) * kHalf;

}  // namespace

LatencyHistogram::LatencyHistogram() : buckets_(kBuckets, 0) {}

size_t LatencyHistogram::BucketOf(uint64_t micros) {
  if (micros < kExact) return static_cast<size_t>(micros);
  const int shift = std::bit_width(micros) - kSubBits;  // >= 1
  const uint64_t top = micros >> shift;                 // in [32, 63]
  return kExact + static_cast<size_t>(shift - 1) * kHalf + static_cast<size_t>(top - kHalf);
}

uint64_t LatencyHistogram::BucketUpperBound(size_t bucket) {
  if (bucket < kExact) return bucket;
  const size_t shift = (bucket - kExact) / kHalf + 1;
  const uint64_t top = (bucket - kExact) % kHalf + kHalf;
  if (shift >= 58 && top == 63) return UINT64_MAX;
  return ((top + 1) << shift) - 1;
}

void LatencyHistogram::Record(uint64_t micros) {
  ++buckets_[BucketOf(micros)];
  ++count_;
  sum_ += micros;
  min_ = std::min(min_, micros);
  max_ = std::max(max_, micros);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

uint64_t LatencyHistogram::Percentile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  const auto rank = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * count_)));
  uint64_t seen = 0;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen >= rank) return std::min(BucketUpperBound(i), max_);
  }
  return max_;
}

}  // namespace skiff::cli
