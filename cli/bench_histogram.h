// LatencyHistogram: a log-linear histogram of durations in nanoseconds for
// `kvc bench`. Values below 128 ns are exact; above, each power of two is
// split into 64 buckets, so a reported percentile is within 1.6% of the true
// value. Fixed size (about 30 KiB), no allocation after construction.
// One thread at a time: give each worker its own and Merge() them after.
#ifndef KVC_CLI_BENCH_HISTOGRAM_H_
#define KVC_CLI_BENCH_HISTOGRAM_H_

#include <array>
#include <cstdint>

namespace kvc::cli {

class LatencyHistogram {
 public:
  void Record(uint64_t ns);
  void Merge(const LatencyHistogram& other);

  uint64_t count() const { return count_; }
  // 0 when empty.
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0.0 : static_cast<double>(sum_) / count_; }
  // The value at quantile `q` in [0, 1] (0.99 for p99), in ns: the middle of
  // the bucket holding the ceil(q * count)-th smallest value, clamped to
  // [min, max]. Monotone in q. 0 when empty.
  double Quantile(double q) const;

 private:
  static constexpr int kSubBits = 7;  // 128 exact values, then 64 per octave
  static constexpr int kHalf = 1 << (kSubBits - 1);
  static constexpr int kBuckets = (64 - kSubBits + 2) * kHalf;

  static int Index(uint64_t v);
  static uint64_t BucketLow(int index);
  static uint64_t BucketWidth(int index);

  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

}  // namespace kvc::cli

#endif  // KVC_CLI_BENCH_HISTOGRAM_H_
