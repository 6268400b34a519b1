// BeladySimulator: the hit ceiling of a trace, for `kvc sim --policies opt`.
//
// Belady's MIN at block level with bypass: on a miss the block is cached
// only if it is used again sooner than some resident block, which is then
// evicted (the resident block used again farthest in the future, or never).
// Hits are counted by the prefix rule of docs/sim.md (the leading blocks of
// each request that are present), which MIN does not optimise directly, so
// the result is the block-level ceiling, not a bound on every prefix policy.
//
// Thread safety: stateless; call from any thread.
#ifndef KVC_SIM_BELADY_SIMULATOR_H_
#define KVC_SIM_BELADY_SIMULATOR_H_

#include <cstdint>

#include "sim/trace.h"

namespace kvc {

class BeladySimulator {
 public:
  // The prefix-rule hits of MIN on `trace` with room for `capacity_blocks`
  // blocks. REQUIRES: capacity_blocks > 0.
  static uint64_t Hits(const Trace& trace, uint64_t capacity_blocks);
};

}  // namespace kvc

#endif  // KVC_SIM_BELADY_SIMULATOR_H_
