// Cache::ReloadTenants: live tenant changes (a node's tenant-admin calls).
#include <algorithm>
#include <mutex>
#include <vector>

#include "core/cache.h"

namespace kvc {

// The committed host blocks of the tenants marked in `dead` leave the tier
// (a pinned one when its last pin goes), as a sweep removes stale blocks.
void Cache::DropTenantBlocks(const std::vector<bool>& dead) {
  std::vector<EntryId> to_free;
  for (uint32_t i = 0; i < index_.stripe_count(); ++i) {
    auto& s = index_.stripe(i);
    std::lock_guard<std::mutex> lk(s.mu);
    for (auto it = s.map.begin(); it != s.map.end();) {
      const BlockId bid = it->first;
      const EntryId eid = it->second;
      ++it;  // UnlinkLocked erases the current element
      Entry& e = tier_->pool().at(eid);
      if (e.tenant >= dead.size() || !dead[e.tenant] || e.state.load() != EntryState::kCommitted) continue;
      if (UnlinkLocked(s, bid, eid, EntryState::kDoomed, HostTier::kGoneEvicted)) to_free.push_back(eid);
    }
  }
  if (!to_free.empty()) {
    auto lk = tier_->Lock();
    for (EntryId eid : to_free) tier_->FreeEntryLocked(eid);
  }
}

Status Cache::ReloadTenants() {
  if (options_.tenants_path.empty()) return Status(Code::kUnsupported, "this cache has no tenants file");
  // Reloads apply in order: two at once must not leave the older quotas.
  static std::mutex reload_mu;
  std::lock_guard<std::mutex> reload(reload_mu);
  TenantRegistry next;
  KVC_RETURN_IF_ERROR(next.Reload(options_.tenants_path));
  for (const auto& t : next.tenants())
    if (t.id == 0 || t.id >= kMaxTenants) return InvalidArgument("tenant id " + std::to_string(t.id) + " is out of range");
  const uint32_t ids = std::min(next.next_id(), kMaxTenants);
  std::vector<HostTier::TenantQuota> quotas(std::max<uint32_t>(ids, 1));
  std::vector<const TenantConfig*> live(quotas.size(), nullptr);
  const TenantList list = next.tenants();
  for (const auto& t : list) {
    if (t.id >= live.size()) continue;
    live[t.id] = &t;
    quotas[t.id] = HostTier::TenantQuota{t.host_quota_bytes, t.borrow};
  }
  // A deleted tenant (ids are never reused): a one-byte quota that others
  // may always evict, and its host blocks dropped below.
  std::vector<bool> dead(live.size(), false);
  bool any_dead = false;
  for (uint32_t id = 1; id < live.size(); ++id)
    if (live[id] == nullptr) {
      quotas[id] = HostTier::TenantQuota{1, true};
      dead[id] = any_dead = true;
    }
  tenants_ = std::move(next);
  {
    auto lk = tier_->Lock();
    tier_->SetQuotasLocked(std::move(quotas));
  }
  if (ssd_) {
    for (uint32_t id = 1; id < live.size(); ++id)
      ssd_->SetTenantQuota(id, live[id] ? live[id]->ssd_quota_bytes : 1);
  }
  if (any_dead) DropTenantBlocks(dead);
  return Status::Ok();
}

}  // namespace kvc
