// ShardedIndex: maps (namespace, shard, key) to the entry that holds it,
// split into lock stripes so that many threads look up and insert at once.
//
// The index only maps; callers lock a stripe with Lock(id) and then read or
// change both the map and the entries it names (see Entry for which lock
// guards which field). Thread-safe under that discipline; never hold two
// stripes at once.
#ifndef KVC_CORE_SHARDED_INDEX_H_
#define KVC_CORE_SHARDED_INDEX_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include <absl/container/flat_hash_map.h>

#include "core/block_key.h"
#include "core/entry.h"

namespace kvc {

struct BlockId {
  uint32_t ns = 0;
  uint32_t shard = 0;
  BlockKey key;
  bool operator==(const BlockId& o) const { return ns == o.ns && shard == o.shard && key == o.key; }
  template <typename H>
  friend H AbslHashValue(H h, const BlockId& b) {
    return H::combine(std::move(h), b.key.Low64(), b.ns, b.shard);
  }
  // Keys are hash outputs; mix in the namespace and shard.
  uint64_t Mix() const {
    uint64_t x = key.Low64() ^ (uint64_t{ns} << 32 | shard) * 0x9E3779B97F4A7C15ull;
    x ^= x >> 29;
    return x * 0xBF58476D1CE4E5B9ull;
  }
};

class ShardedIndex {
 public:
  struct Stripe {
    std::mutex mu;
    absl::flat_hash_map<BlockId, EntryId> map;  // GUARDED_BY(mu)
  };

  // REQUIRES: stripes is a power of two.
  explicit ShardedIndex(uint32_t stripes);

  Stripe& StripeOf(const BlockId& id) { return *stripes_[(id.Mix() >> 40) & mask_]; }
  uint32_t stripe_count() const { return mask_ + 1; }
  Stripe& stripe(uint32_t i) { return *stripes_[i]; }

 private:
  std::vector<std::unique_ptr<Stripe>> stripes_;
  uint32_t mask_;
};

}  // namespace kvc

#endif  // KVC_CORE_SHARDED_INDEX_H_
