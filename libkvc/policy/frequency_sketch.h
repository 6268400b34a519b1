// FrequencySketch: an approximate, aging access counter for W-TinyLFU's
// admission filter (as in Caffeine's FrequencySketch).
//
// A count-min sketch of depth 4 with 4-bit saturating counters (0..15),
// sixteen counters packed in each 64-bit word, one word per expected entry.
// Aging: after `10 * words` counted increments every counter is halved, so
// the sketch estimates recent frequency and old popularity fades. Sized for
// an expected number of entries; EnsureCapacity() grows it (and clears it,
// which only happens while a cache is still filling).
//
// Thread safety: none (a value type owned by one policy).
#ifndef KVC_POLICY_FREQUENCY_SKETCH_H_
#define KVC_POLICY_FREQUENCY_SKETCH_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kvc {

class FrequencySketch {
 public:
  // Sized for `expected_entries` (rounded up to a power of two, at least 64).
  explicit FrequencySketch(size_t expected_entries);

  // Grows the table to fit `entries` if it is smaller; growing clears it.
  void EnsureCapacity(size_t entries);

  // Counts one access of the key whose hash is `key_hash`.
  void Increment(uint64_t key_hash);
  // The estimated recent accesses of `key_hash`, 0..15.
  uint32_t Frequency(uint64_t key_hash) const;

  // How many times the counters were halved (aging), for gauges and tests.
  uint64_t resets() const { return resets_; }
  size_t words() const { return table_.size(); }

 private:
  void Reset();
  size_t IndexOf(uint64_t hash, int row) const;

  std::vector<uint64_t> table_;
  uint64_t mask_ = 0;         // table_.size() - 1
  uint64_t sample_size_ = 0;  // increments between resets
  uint64_t additions_ = 0;    // increments since the last reset
  uint64_t resets_ = 0;
};

}  // namespace kvc

#endif  // KVC_POLICY_FREQUENCY_SKETCH_H_
