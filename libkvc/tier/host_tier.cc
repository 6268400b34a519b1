#include "tier/host_tier.h"

#include <algorithm>

namespace kvc {

Result<std::unique_ptr<HostTier>> HostTier::Create(uint64_t capacity_bytes, bool prefault,
                                                   const std::string& policy_name,
                                                   ShardedIndex* index, bool shared_arena) {
  // The policy first: a bad name is refused before any memory is mapped.
  auto policy = MakePolicy(policy_name.empty() ? DefaultPolicyName() : policy_name, capacity_bytes);
  if (!policy.ok()) return policy.status();
  auto arena = HostArena::Create(capacity_bytes, prefault, shared_arena);
  if (!arena.ok()) return arena.status();
  return std::unique_ptr<HostTier>(
      new HostTier(std::move(arena).value(), std::move(policy).value(), index));
}

HostTier::HostTier(std::unique_ptr<HostArena> arena, std::unique_ptr<EvictionPolicy> policy,
                   ShardedIndex* index)
    : arena_(std::move(arena)),
      allocator_(arena_->size()),
      policy_(std::move(policy)),
      index_(index),
      ghosts_(new std::atomic<uint64_t>[kGhostSlots]),
      tenant_bytes_(new std::atomic<uint64_t>[kMaxTenants]),
      tenant_blocks_(new std::atomic<uint64_t>[kMaxTenants]) {
  for (uint64_t i = 0; i < kGhostSlots; ++i) ghosts_[i].store(0, std::memory_order_relaxed);
  for (uint32_t i = 0; i < kMaxTenants; ++i) {
    tenant_bytes_[i].store(0, std::memory_order_relaxed);
    tenant_blocks_[i].store(0, std::memory_order_relaxed);
  }
}

void HostTier::SetQuotasLocked(std::vector<TenantQuota> quotas) {
  if (quotas.size() > kMaxTenants) quotas.resize(kMaxTenants);
  quotas_ = std::move(quotas);
}

uint64_t HostTier::TenantBytes(uint32_t t) const {
  return t < kMaxTenants ? tenant_bytes_[t].load(std::memory_order_relaxed) : 0;
}

uint64_t HostTier::TenantBlocks(uint32_t t) const {
  return t < kMaxTenants ? tenant_blocks_[t].load(std::memory_order_relaxed) : 0;
}

void HostTier::Account(uint32_t t, int64_t bytes, int64_t blocks) {
  if (t >= kMaxTenants) return;
  tenant_bytes_[t].fetch_add(static_cast<uint64_t>(bytes), std::memory_order_relaxed);
  tenant_blocks_[t].fetch_add(static_cast<uint64_t>(blocks), std::memory_order_relaxed);
}

bool HostTier::MayEvictLocked(const Entry& v, uint32_t tenant, Scope scope) const {
  if (v.tenant == tenant) return true;
  if (scope == Scope::kOwn) return false;
  const uint64_t q = QuotaOf(v.tenant);
  return q == 0 || TenantBytes(v.tenant) > q;
}

Status HostTier::AllocateLocked(EntryId id) {
  Entry& e = pool_.at(id);
  const uint64_t slot = SlabAllocator::RoundedSize(e.size);
  const uint32_t t = e.tenant;
  std::vector<EntryId> skip;
  const uint64_t quota = QuotaOf(t);
  const bool borrow = t < quotas_.size() && quotas_[t].borrow;
  // At its quota (and not borrowing free room): make room among its own.
  if (quota != 0 && TenantBytes(t) + slot > quota && !(borrow && allocator_.used_bytes() + slot <= allocator_.capacity())) {
    if (slot > quota) {
      return Status(Code::kQuota, "a block of " + std::to_string(slot) + " bytes exceeds the tenant's host quota of " +
                                      std::to_string(quota) + " bytes");
    }
    while (TenantBytes(t) + slot > quota) {
      if (!EvictOneLocked(slot, t, Scope::kOwn, true, &skip)) {
        return Status(Code::kQuota, "the tenant is at its host quota of " + std::to_string(quota) +
                                        " bytes and none of its blocks can be evicted (pinned or pending)");
      }
    }
  }
  // First evict blocks whose memory the new block can reuse (same size
  // class, or the last block of a slab); only then anything allowed.
  bool any_class = false;
  for (;;) {
    if (auto off = allocator_.Allocate(e.size)) {
      e.offset = *off;
      e.has_memory = true;
      used_bytes_.store(allocator_.used_bytes(), std::memory_order_relaxed);
      Account(t, static_cast<int64_t>(slot), 0);
      return Status::Ok();
    }
    if (EvictOneLocked(slot, t, Scope::kAllowed, any_class, &skip)) continue;
    if (any_class) {
      return Status(Code::kNoSpace, "no room in the host tier (" + std::to_string(capacity()) +
                                        " bytes): every block that could make room is pinned, pending, "
                                        "or within another tenant's quota");
    }
    any_class = true;
  }
}

bool HostTier::EvictOneLocked(uint64_t want_slot, uint32_t tenant, Scope scope, bool any_class,
                              std::vector<EntryId>* skip) {
  auto evictable = [&](PolicyHandle h) {
    const Entry& v = pool_.at(h);
    if (v.state.load(std::memory_order_acquire) != EntryState::kCommitted) return false;
    if (v.pins.load(std::memory_order_acquire) != 0) return false;
    if (!MayEvictLocked(v, tenant, scope)) return false;
    if (std::find(skip->begin(), skip->end(), h) != skip->end()) return false;
    if (any_class) return true;
    return SlabAllocator::RoundedSize(v.size) == want_slot ||
           allocator_.FreeingReleasesSlab(v.offset, v.size);
  };
  for (;;) {
    auto victim = policy_->Victim(evictable);
    if (!victim) return false;
    Entry& v = pool_.at(*victim);
    BlockId bid{v.ns, v.shard, v.key};
    auto& stripe = index_->StripeOf(bid);
    std::unique_lock<std::mutex> lk(stripe.mu, std::try_to_lock);
    if (!lk.owns_lock()) {  // busy: try another victim
      skip->push_back(*victim);
      continue;
    }
    // Re-check under the stripe: a reader may have pinned it meanwhile.
    if (v.state.load() != EntryState::kCommitted || v.pins.load() != 0) {
      skip->push_back(*victim);
      continue;
    }
    stripe.map.erase(bid);
    RememberGone(v.key, kGoneEvicted);
    if (evict_hook_) evict_hook_(v, data(v));
    FreeEntryLocked(*victim);
    evictions_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
}

void HostTier::InsertLocked(EntryId id, EntryId parent, uint32_t parent_gen) {
  Entry& e = pool_.at(id);
  PolicyEntry pe;
  pe.key_hash = e.key.Low64();
  pe.weight = SlabAllocator::RoundedSize(e.size);
  pe.expires_at = e.expires_at;
  if (parent != kNoEntry) {
    const Entry& p = pool_.at(parent);
    if (p.gen == parent_gen && p.in_policy) pe.parent = parent;
  }
  policy_->Insert(id, pe);
  e.in_policy = true;
  blocks_.fetch_add(1, std::memory_order_relaxed);
  Account(e.tenant, 0, 1);
}

void HostTier::TouchLocked(EntryId id) {
  if (pool_.at(id).in_policy) policy_->Touch(id);
}

void HostTier::RecordMissLocked(const BlockKey& key) { policy_->RecordMiss(key.Low64()); }

void HostTier::UntrackLocked(EntryId id) {
  Entry& e = pool_.at(id);
  if (!e.in_policy) return;
  policy_->Erase(id);
  e.in_policy = false;
  blocks_.fetch_sub(1, std::memory_order_relaxed);
  Account(e.tenant, 0, -1);
}

void HostTier::FreeEntryLocked(EntryId id) {
  UntrackLocked(id);
  Entry& e = pool_.at(id);
  if (e.has_memory) {
    Account(e.tenant, -static_cast<int64_t>(SlabAllocator::RoundedSize(e.size)), 0);
    allocator_.Free(e.offset, e.size);
    used_bytes_.store(allocator_.used_bytes(), std::memory_order_relaxed);
  }
  pool_.Free(id);
}

void HostTier::RememberGone(const BlockKey& key, Gone why) {
  const uint64_t k = key.Low64();
  ghosts_[(k >> 2) & (kGhostSlots - 1)].store((k & ~uint64_t{3}) | why, std::memory_order_relaxed);
}

HostTier::Gone HostTier::RecallGone(const BlockKey& key) const {
  const uint64_t k = key.Low64();
  const uint64_t g = ghosts_[(k >> 2) & (kGhostSlots - 1)].load(std::memory_order_relaxed);
  return (g & ~uint64_t{3}) == (k & ~uint64_t{3}) ? static_cast<Gone>(g & 3) : kGoneNone;
}

nlohmann::json HostTier::PolicyJsonLocked() const {
  nlohmann::json j{{"name", std::string(policy_->name())}, {"tracked", policy_->size()}};
  for (auto& [k, v] : policy_->Gauges()) j[k] = v;
  j["slab_bytes"] = allocator_.slab_bytes();
  j["free_slabs"] = allocator_.free_slabs();
  return j;
}

}  // namespace kvc
