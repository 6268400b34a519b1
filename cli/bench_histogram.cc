#include "bench_histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace kvc::cli {

// Values v < 2^kSubBits land in bucket v. Above, with e = msb(v) - kSubBits
// + 1 >= 1, m = v >> e lies in [kHalf, 2 * kHalf) and the bucket is
// e * kHalf + m: contiguous with the exact range, 64 buckets per octave.
int LatencyHistogram::Index(uint64_t v) {
  if (v < (uint64_t{1} << kSubBits)) return static_cast<int>(v);
  const int msb = 63 - std::countl_zero(v);
  const int e = msb - kSubBits + 1;
  return e * kHalf + static_cast<int>(v >> e);
}

uint64_t LatencyHistogram::BucketLow(int index) {
  if (index < (1 << kSubBits)) return static_cast<uint64_t>(index);
  const int e = index / kHalf - 1;
  const uint64_t m = static_cast<uint64_t>(index - e * kHalf);
  return m << e;
}

uint64_t LatencyHistogram::BucketWidth(int index) {
  if (index < (1 << kSubBits)) return 1;
  return uint64_t{1} << (index / kHalf - 1);
}

void LatencyHistogram::Record(uint64_t ns) {
  ++counts_[Index(ns)];
  ++count_;
  sum_ += ns;
  min_ = std::min(min_, ns);
  max_ = std::max(max_, ns);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (int i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

double LatencyHistogram::Quantile(double q) const {
  if (count_ == 0) return 0.0;
  q = std::clamp(q, 0.0, 1.0);
  const uint64_t rank =
      std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_))));
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      const double mid = static_cast<double>(BucketLow(i)) +
                         static_cast<double>(BucketWidth(i) - 1) / 2.0;
      return std::clamp(mid, static_cast<double>(min_), static_cast<double>(max_));
    }
  }
  return static_cast<double>(max_);
}

}  // namespace kvc::cli
