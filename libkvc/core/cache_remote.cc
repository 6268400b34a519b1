// Cache: the remote tier, below host DRAM and SSD. A block missing locally
// is looked up on the node: match reports KVC_TIER_REMOTE for it, a load
// fetches it straight into the caller's buffer and promotes it into host
// DRAM (a batch load fetches all its local misses in one request), a view
// fetches it into a fresh DRAM reservation. A node that cannot answer is a
// miss with reason node_down. Committed stores reach the node
// through RemoteTier::Put (queued, see Commit), deletes and revision bumps
// through Delete and BumpRevision (cache.cc).
#include <algorithm>
#include <cstdio>
#include <cstring>

#include "core/cache.h"

namespace kvc {
namespace {

constexpr uint8_t kTierRemote = 4;       // KVC_TIER_REMOTE
constexpr size_t kMaxRemoteMatch = 65536;  // keys per node Match (docs/node.md)
constexpr size_t kMaxRemoteGet = 1024;     // keys per node Load batch (docs/node.md)
// Block bytes per node Load batch (at least one block). One request has one
// deadline (remote_timeout_ms), so a batch is bounded in bytes as well; and
// each request's blocks are promoted before the next request, while they
// are still in the CPU's caches: with every request first and every
// promotion after, 64 blocks of 1 MiB ran at 0.7x the speed of loads one
// by one (the promotions read 64 MiB back from DRAM). 8 MiB keeps a batch
// of 1 MiB blocks at 8 a call and one of 64 KiB blocks at 128.
constexpr uint64_t kMaxRemoteGetBytes = 8ull << 20;

}  // namespace

void Cache::SetRemoteIdentity(uint32_t tenant, const std::string& name, const std::string& credential) {
  if (remote_ && tenant != 0) remote_->SetIdentity(tenant, name, credential);
}

size_t Cache::MatchRemote(NamespaceState& ns, std::span<const BlockKey> keys, size_t from, uint8_t* tiers,
                          uint32_t tenant, Miss* why) {
  const size_t n = std::min(keys.size() - from, kMaxRemoteMatch);
  auto r = remote_->Match(ns, tenant, keys.subspan(from, n));
  if (!r.ok()) {
    if (IsNodeDown(r.status())) *why = Miss::kNodeDown;
    return 0;
  }
  const size_t got = std::min(*r, n);
  if (tiers != nullptr) std::fill(tiers + from, tiers + from + got, kTierRemote);
  if (got > 0) *why = Miss::kAbsent;  // the next key: on neither the local tiers nor the node
  return got;
}

Status Cache::LoadFromRemote(NamespaceState& ns, const BlockKey& key, uint32_t shard, void* dst, uint32_t tenant,
                             Miss* why) {
  Status s = remote_->Get(ns, tenant, key, shard, dst, ns.shard_bytes);
  if (!s.ok()) {
    if (IsNodeDown(s)) *why = Miss::kNodeDown;
    else if (s.code() == Code::kCorrupt) *why = Miss::kCorrupt;
    return NotFound();
  }
  PromoteLoaded(ns, key, shard, dst, tenant);
  return Status::Ok();
}

void Cache::LoadManyFromRemote(NamespaceState& ns, uint32_t shard, uint32_t tenant, std::span<RemoteGetItem> items,
                               Miss* why) {
  const size_t per = std::clamp<uint64_t>(kMaxRemoteGetBytes / std::max<uint64_t>(ns.shard_bytes, 1), 1, kMaxRemoteGet);
  for (size_t from = 0; from < items.size(); from += per) {
    const size_t n = std::min(per, items.size() - from);
    remote_->GetBatch(ns, tenant, shard, ns.shard_bytes, items.subspan(from, n));
    for (size_t i = from; i < from + n; ++i) {
      RemoteGetItem& it = items[i];
      if (!it.status.ok()) {
        if (IsNodeDown(it.status)) why[i] = Miss::kNodeDown;
        else if (it.status.code() == Code::kCorrupt) why[i] = Miss::kCorrupt;
        it.status = NotFound();
        continue;
      }
      PromoteLoaded(ns, it.key, shard, it.dst, tenant);
    }
  }
}

void Cache::PromoteLoaded(NamespaceState& ns, const BlockKey& key, uint32_t shard, const void* dst, uint32_t tenant) {
  if (!options_.promote_on_hit) return;
  StoreParams p;
  p.tenant = tenant;
  p.from_remote = true;
  Reservation r;
  if (!BeginStore(ns, key, shard, p, &r).ok()) return;  // present, pending or no room: fine
  std::memcpy(r.data, dst, r.size);
  if (Commit(r).ok()) c_.remote_promotions.fetch_add(1, std::memory_order_relaxed);
}

bool Cache::PromoteFromRemote(NamespaceState& ns, const BlockKey& key, uint32_t shard, uint32_t tenant, Miss* why) {
  StoreParams p;
  p.tenant = tenant;
  p.from_remote = true;
  Reservation r;
  Status s = BeginStore(ns, key, shard, p, &r);
  if (s.code() == Code::kExists) return true;  // promoted meanwhile
  if (!s.ok()) return false;
  s = remote_->Get(ns, tenant, key, shard, r.data, r.size);  // straight into host memory
  if (!s.ok()) {
    if (IsNodeDown(s)) *why = Miss::kNodeDown;
    else if (s.code() == Code::kCorrupt) *why = Miss::kCorrupt;
    Abort(r);
    c_.aborts.fetch_sub(1, std::memory_order_relaxed);  // not the caller's abort
    return false;
  }
  if (!Commit(r).ok()) return false;
  c_.remote_promotions.fetch_add(1, std::memory_order_relaxed);
  return true;
}

nlohmann::json Cache::RemoteStatsJson() {
  const RemoteStats s = remote_->Stats();
  return nlohmann::json{{"address", remote_->address()},
                        {"hits", s.hits},
                        {"misses", s.misses},
                        {"node_down", s.node_down},
                        {"refused", s.refused},
                        {"bytes_loaded", s.bytes_loaded},
                        {"promotions", c_.remote_promotions.load()},
                        {"sends", s.sends},
                        {"bytes_sent", s.bytes_sent},
                        {"sends_dropped", s.sends_dropped},
                        {"send_failures", s.send_failures},
                        {"queue_bytes", s.queue_bytes},
                        {"queue_capacity_bytes", s.queue_capacity_bytes},
                        {"connects", s.connects}};
}

}  // namespace kvc
