// HostTier: the host-DRAM tier of a cache. It owns the pre-allocated arena,
// the slab allocator that carves it, the entry pool, the eviction policy and
// a small memory of recently evicted keys (to tell "evicted" misses from
// "absent" ones).
//
// Thread safety: every method whose name ends in Locked requires the caller to
// hold the tier lock (Lock()). The tier may be locked while holding one index
// stripe (order: stripe, then tier); eviction, which runs under the tier lock,
// only try-locks the victim's stripe, so it cannot deadlock.
#ifndef KVC_TIER_HOST_TIER_H_
#define KVC_TIER_HOST_TIER_H_

#include <atomic>
#include <functional>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/entry.h"
#include "core/sharded_index.h"
#include "memory/host_arena.h"
#include "memory/slab_allocator.h"
#include "policy/eviction_policy.h"
#include "util/status.h"

namespace kvc {

class HostTier {
 public:
  // shared_arena: the arena lives in a memfd (HostArena).
  static Result<std::unique_ptr<HostTier>> Create(uint64_t capacity_bytes, bool prefault,
                                                  const std::string& policy, ShardedIndex* index,
                                                  bool shared_arena = false);

  std::unique_lock<std::mutex> Lock() { return std::unique_lock<std::mutex>(mu_); }

  EntryPool& pool() { return pool_; }
  uint8_t* data(const Entry& e) const { return arena_->at(e.offset); }
  const HostArena& arena() const { return *arena_; }
  uint64_t capacity() const { return allocator_.capacity(); }

  // A fresh entry slot. REQUIRES: tier lock.
  EntryId NewEntryLocked() { return pool_.Allocate(); }
  // Gives entry `id` (its size and tenant set) room in the arena, evicting
  // committed, unpinned blocks in policy order until it fits. Tenant quotas
  // are hard: a tenant at its quota evicts only its own blocks (KVC_ERR_QUOTA
  // if that cannot make room); a tenant below it evicts its own blocks, blocks
  // of tenants over their quota (borrowed room) and blocks of no tenant or of
  // tenants without a quota, never a block that would take another tenant
  // below its quota (KVC_ERR_NO_SPACE when nothing else is left).
  // REQUIRES: tier lock, and no index stripe held by this thread.
  Status AllocateLocked(EntryId id);

  struct TenantQuota {
    uint64_t bytes = 0;  // 0: no quota
    bool borrow = false;
  };
  // Quotas by tenant id (index 0 is "no tenant"). REQUIRES: tier lock.
  void SetQuotasLocked(std::vector<TenantQuota> quotas);
  uint64_t TenantBytes(uint32_t tenant) const;
  uint64_t TenantBlocks(uint32_t tenant) const;
  // Starts tracking a committed entry. `parent` is a resident entry or
  // kNoEntry. REQUIRES: tier lock.
  void InsertLocked(EntryId id, EntryId parent, uint32_t parent_gen);
  void TouchLocked(EntryId id);
  void RecordMissLocked(const BlockKey& key);
  // Called for each block the policy evicts, under the tier lock and the
  // block's stripe, just before its memory is freed (write-back demotion).
  using EvictHook = std::function<void(const Entry&, const uint8_t* data)>;
  void SetEvictHook(EvictHook hook) { evict_hook_ = std::move(hook); }
  // Stops tracking a doomed (removed while pinned) entry: no longer counted
  // as a block; its memory stays until FreeEntryLocked. REQUIRES: tier lock.
  void UntrackLocked(EntryId id);
  // Erases the entry from the policy, gives back its memory and its slot.
  // REQUIRES: tier lock; the entry is out of the index and unpinned.
  void FreeEntryLocked(EntryId id);

  // Why a block left recently, as far as a small lossy table recalls
  // (lock-free): kGoneNone, or the reason it was removed.
  enum Gone : uint8_t { kGoneNone = 0, kGoneEvicted = 1, kGoneStale = 2, kGoneExpired = 3 };
  void RememberGone(const BlockKey& key, Gone why);
  Gone RecallGone(const BlockKey& key) const;

  // Every block the policy tracks, hottest first (EvictionPolicy::HottestFirst).
  // REQUIRES: tier lock.
  std::vector<EntryId> HottestFirstLocked() const { return policy_->HottestFirst(); }

  uint64_t used_bytes() const { return used_bytes_.load(std::memory_order_relaxed); }
  uint64_t blocks() const { return blocks_.load(std::memory_order_relaxed); }
  uint64_t evictions() const { return evictions_.load(std::memory_order_relaxed); }
  // Policy name and gauges. REQUIRES: tier lock.
  nlohmann::json PolicyJsonLocked() const;

 private:
  HostTier(std::unique_ptr<HostArena> arena, std::unique_ptr<EvictionPolicy> policy,
           ShardedIndex* index);
  enum class Scope { kOwn, kAllowed };
  bool EvictOneLocked(uint64_t want_slot, uint32_t tenant, Scope scope, bool any_class,
                      std::vector<EntryId>* skip);
  bool MayEvictLocked(const Entry& victim, uint32_t tenant, Scope scope) const;
  uint64_t QuotaOf(uint32_t tenant) const {
    return tenant < quotas_.size() ? quotas_[tenant].bytes : 0;
  }
  void Account(uint32_t tenant, int64_t bytes, int64_t blocks);
  static constexpr uint32_t kMaxTenants = 4096;

  std::mutex mu_;
  std::unique_ptr<HostArena> arena_;
  SlabAllocator allocator_;                 // GUARDED_BY(mu_)
  std::unique_ptr<EvictionPolicy> policy_;  // GUARDED_BY(mu_)
  EntryPool pool_;                          // slots GUARDED_BY(mu_)
  ShardedIndex* index_;
  std::unique_ptr<std::atomic<uint64_t>[]> ghosts_;
  static constexpr uint64_t kGhostSlots = 1u << 16;
  std::atomic<uint64_t> used_bytes_{0};
  std::atomic<uint64_t> blocks_{0};
  std::atomic<uint64_t> evictions_{0};
  std::vector<TenantQuota> quotas_;  // GUARDED_BY(mu_)
  EvictHook evict_hook_;
  std::unique_ptr<std::atomic<uint64_t>[]> tenant_bytes_;   // written under mu_
  std::unique_ptr<std::atomic<uint64_t>[]> tenant_blocks_;  // written under mu_
};

}  // namespace kvc

#endif  // KVC_TIER_HOST_TIER_H_
