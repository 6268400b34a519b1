#include "policy/frequency_sketch.h"

#include <algorithm>
#include <bit>

namespace kvc {
namespace {

constexpr uint64_t kSeeds[4] = {0xc3a5c85c97cb3127ULL, 0xb492b66fbe98f273ULL,
                                0x9ae16a3b2f90404fULL, 0xcbf29ce484222325ULL};
constexpr uint64_t kResetMask = 0x7777777777777777ULL;  // keeps each nibble's low 3 bits
constexpr size_t kMinWords = 64;

// Re-mixes a caller's hash so that weak hashes (small integers) spread.
uint64_t Spread(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

}  // namespace

FrequencySketch::FrequencySketch(size_t expected_entries) {
  EnsureCapacity(std::max(expected_entries, kMinWords));
}

void FrequencySketch::EnsureCapacity(size_t entries) {
  const size_t words = std::bit_ceil(std::max(entries, kMinWords));
  if (words <= table_.size()) return;
  table_.assign(words, 0);
  mask_ = words - 1;
  sample_size_ = 10 * static_cast<uint64_t>(words);
  additions_ = 0;
}

size_t FrequencySketch::IndexOf(uint64_t hash, int row) const {
  uint64_t h = (hash + kSeeds[row]) * kSeeds[row];
  h += h >> 32;
  return static_cast<size_t>(h & mask_);
}

void FrequencySketch::Increment(uint64_t key_hash) {
  const uint64_t hash = Spread(key_hash);
  // Each row uses a different nibble group of its word: counters
  // (start + row), where start picks one of four groups of four.
  const int start = static_cast<int>((hash & 3) << 2);
  bool added = false;
  for (int row = 0; row < 4; ++row) {
    uint64_t& word = table_[IndexOf(hash, row)];
    const int offset = (start + row) << 2;
    const uint64_t nibble = 0xFULL << offset;
    if ((word & nibble) != nibble) {
      word += 1ULL << offset;
      added = true;
    }
  }
  if (added && ++additions_ >= sample_size_) Reset();
}

uint32_t FrequencySketch::Frequency(uint64_t key_hash) const {
  const uint64_t hash = Spread(key_hash);
  const int start = static_cast<int>((hash & 3) << 2);
  uint32_t freq = 15;
  for (int row = 0; row < 4; ++row) {
    const int offset = (start + row) << 2;
    const uint32_t count = static_cast<uint32_t>((table_[IndexOf(hash, row)] >> offset) & 0xF);
    freq = std::min(freq, count);
  }
  return freq;
}

void FrequencySketch::Reset() {
  for (uint64_t& word : table_) word = (word >> 1) & kResetMask;
  additions_ /= 2;
  ++resets_;
}

}  // namespace kvc
