#include "sim/belady_simulator.h"

#include <limits>
#include <set>
#include <utility>
#include <vector>

namespace kvc {

uint64_t BeladySimulator::Hits(const Trace& trace, uint64_t capacity_blocks) {
  constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();
  const auto accesses = trace.accesses();
  // next_use[p]: the position of the next access to the block accessed at p.
  std::vector<uint64_t> next_use(accesses.size());
  {
    std::vector<uint64_t> upcoming(trace.blocks(), kNever);
    for (size_t p = accesses.size(); p-- > 0;) {
      next_use[p] = upcoming[accesses[p]];
      upcoming[accesses[p]] = p;
    }
  }
  std::vector<uint64_t> resident_next(trace.blocks(), 0);  // by handle, when resident
  std::vector<uint8_t> resident(trace.blocks(), 0);
  std::set<std::pair<uint64_t, uint32_t>> by_next_use;      // (next use, handle) of residents
  uint64_t used = 0, hits = 0;
  size_t p = 0;
  for (size_t r = 0; r < trace.requests(); ++r) {
    const auto blocks = trace.request(r);
    size_t lead = 0;
    while (lead < blocks.size() && resident[blocks[lead]]) ++lead;
    hits += lead;
    for (const uint32_t h : blocks) {
      const uint64_t next = next_use[p++];
      if (resident[h]) {
        by_next_use.erase({resident_next[h], h});
      } else {
        if (next == kNever) continue;  // never used again: bypass
        if (used >= capacity_blocks) {
          auto farthest = std::prev(by_next_use.end());
          if (farthest->first <= next) continue;  // every resident is needed sooner: bypass
          resident[farthest->second] = 0;
          by_next_use.erase(farthest);
          --used;
        }
        resident[h] = 1;
        ++used;
      }
      resident_next[h] = next;
      by_next_use.emplace(next, h);
    }
  }
  return hits;
}

}  // namespace kvc
