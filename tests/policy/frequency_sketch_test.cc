#include "policy/frequency_sketch.h"

#include <doctest/doctest.h>

namespace kvc {

TEST_CASE("frequency sketch: counts, saturates at 15, ages by halving") {
  FrequencySketch s(1024);
  CHECK(s.Frequency(42) == 0);
  for (int i = 0; i < 5; ++i) s.Increment(42);
  CHECK(s.Frequency(42) == 5);
  for (int i = 0; i < 50; ++i) s.Increment(42);
  CHECK(s.Frequency(42) == 15);
  CHECK(s.Frequency(43) <= 1);  // collisions may add, rarely

  // 10 x words counted increments halve every counter.
  const uint64_t resets = s.resets();
  for (uint64_t k = 1000; s.resets() == resets; ++k) s.Increment(k);
  CHECK(s.Frequency(42) == 7);
}

TEST_CASE("frequency sketch: distinguishes hot from cold keys among many") {
  FrequencySketch s(4096);
  for (int round = 0; round < 8; ++round)
    for (uint64_t k = 0; k < 100; ++k) s.Increment(k);
  for (uint64_t k = 100000; k < 102000; ++k) s.Increment(k);
  int hot_ok = 0, cold_ok = 0;
  for (uint64_t k = 0; k < 100; ++k) hot_ok += s.Frequency(k) >= 8;
  for (uint64_t k = 100000; k < 100100; ++k) cold_ok += s.Frequency(k) <= 2;
  CHECK(hot_ok == 100);
  CHECK(cold_ok >= 95);
}

TEST_CASE("frequency sketch: grows with the entries, clearing") {
  FrequencySketch s(64);
  CHECK(s.words() == 64);
  s.Increment(1);
  s.EnsureCapacity(10);
  CHECK(s.words() == 64);
  CHECK(s.Frequency(1) == 1);
  s.EnsureCapacity(1000);
  CHECK(s.words() == 1024);
  CHECK(s.Frequency(1) == 0);
}

}  // namespace kvc
