// SlabAllocator: slots never overlap, alignment holds, slabs return to the
// free pool when empty, and multi-slab blocks take contiguous runs.
#include "memory/slab_allocator.h"

#include <doctest/doctest.h>

#include <map>
#include <random>

namespace kvc {

TEST_CASE("slab allocator: random alloc/free never overlaps and accounts exactly") {
  SlabAllocator a(8 << 20);
  std::mt19937_64 rng(7);
  std::map<uint64_t, uint64_t> live;  // offset -> size
  const uint64_t sizes[] = {100, 4096, 5000, 65536, 300000, 3 << 20};
  for (int step = 0; step < 20000; ++step) {
    if (live.empty() || rng() % 2) {
      uint64_t sz = sizes[rng() % 6];
      auto off = a.Allocate(sz);
      if (!off) continue;
      const uint64_t align = sz >= 4096 ? 4096 : 64;
      CHECK(*off % align == 0);
      CHECK(*off + sz <= a.capacity());
      auto next = live.lower_bound(*off);
      if (next != live.end()) CHECK(*off + SlabAllocator::RoundedSize(sz) <= next->first);
      if (next != live.begin()) {
        auto prev = std::prev(next);
        CHECK(prev->first + SlabAllocator::RoundedSize(prev->second) <= *off);
      }
      live[*off] = sz;
    } else {
      auto it = live.begin();
      std::advance(it, rng() % live.size());
      a.Free(it->first, it->second);
      live.erase(it);
    }
  }
  for (auto& [off, sz] : live) a.Free(off, sz);
  CHECK(a.used_bytes() == 0);
  CHECK(a.free_slabs() * a.slab_bytes() == a.capacity());
  // Everything is free again: the largest run fits.
  auto big = a.Allocate(a.capacity());
  REQUIRE(big);
  CHECK(*big == 0);
}

TEST_CASE("slab allocator: fills to capacity with one class then refuses") {
  SlabAllocator a(1 << 20);
  int n = 0;
  while (a.Allocate(4096)) ++n;
  CHECK(n == (1 << 20) / 4096);
  CHECK(a.used_bytes() == a.capacity());
  CHECK_FALSE(a.Allocate(64));
}

}  // namespace kvc
