// Entry and EntryPool: the metadata of one block shard held by a cache.
//
// Entries live in a pool of fixed-address chunks and are named by a dense
// 32-bit id, which is also the eviction policy's handle. An entry slot is
// allocated and freed only under the host tier's lock; a free bumps its
// generation so that stale ids can be recognised.
//
// Which lock guards what (see Cache):
//   - identity (ns, shard, key), epoch, checksum, expiry, offset/size and
//     state transitions: the index shard lock of the entry's key;
//   - gen, in_policy, alloc: the tier lock;
//   - `state` and `pins` are atomics so that the eviction predicate can read
//     them without the shard lock; they are only written under it.
#ifndef KVC_CORE_ENTRY_H_
#define KVC_CORE_ENTRY_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/block_key.h"

namespace kvc {

using EntryId = uint32_t;
inline constexpr EntryId kNoEntry = UINT32_MAX;

enum class EntryState : uint8_t {
  kFree = 0,
  kPending,    // reserved; the writer owns its bytes; in the index
  kCommitted,  // visible (subject to epoch and expiry); in the index
  kDoomed,     // removed from the index while pinned; freed by the last unpin
  kZombie,     // a reservation aborted at its deadline; freed by commit/abort
};

struct Entry {
  // Identity.
  BlockKey key;
  uint32_t ns = 0;
  uint32_t shard = 0;
  uint32_t tenant = 0;      // 0: no tenant
  // Data.
  uint64_t offset = 0;      // in the arena
  uint64_t size = 0;        // bytes of the value
  uint64_t checksum = 0;    // XXH3-64 of the value, set at commit
  uint64_t epoch = 0;       // namespace epoch the value belongs to
  int64_t expires_at = 0;   // ms on the cache clock; 0 = never
  int64_t deadline = 0;     // pending: reservation deadline (ms)
  uint64_t token = 0;       // pending: the reservation's id
  EntryId parent = kNoEntry;  // pending: the resident parent at begin
  uint32_t parent_gen = 0;
  uint8_t cancelled = 0;     // zombie: why (kCancel* in cache.cc)
  std::atomic<EntryState> state{EntryState::kFree};
  std::atomic<uint32_t> pins{0};
  // Tier-lock fields.
  uint32_t gen = 0;
  bool in_policy = false;
  bool has_memory = false;
  // Set under the stripe lock before commit; read by the eviction hook.
  bool write_back = false;  // demote to the SSD tier when evicted
  bool on_ssd = false;      // the SSD tier already holds these bytes
};

class EntryPool {
 public:
  EntryPool();
  // A free slot (state kFree), growing the pool by a chunk when needed.
  // REQUIRES: the tier lock.
  EntryId Allocate();
  // REQUIRES: the tier lock; the entry is out of the index and the policy.
  void Free(EntryId id);
  // Any thread: chunk addresses never change.
  Entry& at(EntryId id) const {
    return chunks_[id >> kChunkBits].load(std::memory_order_acquire)[id & (kChunkSize - 1)];
  }
  size_t allocated() const { return allocated_; }
  // Slots handed out so far, free or not (ids are below it). REQUIRES: the tier lock.
  size_t slots() const { return owned_.size() << kChunkBits; }

 private:
  static constexpr uint32_t kChunkBits = 12;
  static constexpr uint32_t kChunkSize = 1u << kChunkBits;
  static constexpr uint32_t kMaxChunks = 1u << 16;
  std::unique_ptr<std::atomic<Entry*>[]> chunks_;
  std::vector<std::unique_ptr<Entry[]>> owned_;
  std::vector<EntryId> free_;
  size_t allocated_ = 0;
};

}  // namespace kvc

#endif  // KVC_CORE_ENTRY_H_
