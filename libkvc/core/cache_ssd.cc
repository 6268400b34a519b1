// Cache: the part of the tier chain below host DRAM. A host miss falls
// through to the SSD tier; an SSD hit is served straight into the caller's
// buffer (checksum verified by the tier) and promoted into DRAM; blocks
// evicted from DRAM are demoted (write-back), or written at commit
// (write-through).
#include <chrono>
#include <cstdio>

#include "core/cache.h"

namespace kvc {
namespace {

int64_t UnixNowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// A steady-clock expiry as unix ms (0 stays 0).
int64_t ToUnix(int64_t steady_expiry) {
  return steady_expiry == 0 ? 0 : UnixNowMs() + (steady_expiry - NowMs());
}

}  // namespace

SsdBlockId Cache::SsdIdOf(const NamespaceState& ns, const BlockKey& key, uint32_t shard) const {
  return SsdBlockId{ns.hasher.seed(), key, shard};
}

NamespaceState* Cache::NamespaceAt(uint32_t index) {
  std::lock_guard<std::mutex> lk(ns_mu_);
  return index < ns_by_index_.size() ? ns_by_index_[index] : nullptr;
}

bool Cache::SsdHas(NamespaceState& ns, const BlockKey& key, uint32_t shard, Miss* why, SsdMeta* out) {
  SsdMeta local;
  SsdMeta& meta = out ? *out : local;
  const SsdBlockId id = SsdIdOf(ns, key, shard);
  if (!ssd_->Lookup(id, &meta)) return false;
  if (meta.epoch != ns.epoch.load(std::memory_order_acquire)) {
    *why = Miss::kStale;
    (void)ssd_->Erase(id);
    return false;
  }
  if (meta.expires_at_unix_ms != 0 && UnixNowMs() >= meta.expires_at_unix_ms) {
    *why = Miss::kExpired;
    (void)ssd_->Erase(id);
    c_.expirations.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

Status Cache::LoadFromSsd(NamespaceState& ns, const BlockKey& key, uint32_t shard, void* dst, Miss* why) {
  SsdMeta meta;
  if (!SsdHas(ns, key, shard, why, &meta)) return NotFound();
  const SsdBlockId id = SsdIdOf(ns, key, shard);
  Status s = ssd_->Read(id, dst, ns.shard_bytes);
  if (s.code() == Code::kCorrupt) {
    *why = Miss::kCorrupt;
    return NotFound();
  }
  if (s.code() == Code::kNotFound) return NotFound();
  if (!s.ok()) {  // an I/O error: the engine recomputes
    std::fprintf(stderr, "kvc: SSD tier read failed: %s\n", s.ToString().c_str());
    *why = Miss::kCorrupt;
    return NotFound();
  }
  c_.ssd_hits.fetch_add(1, std::memory_order_relaxed);
  if (options_.promote_on_hit) Promote(ns, key, shard, dst, meta);
  return Status::Ok();
}

namespace {

// The store parameters of a promotion of an SSD block: its tenant and what
// is left of its TTL. false when it has expired meanwhile.
bool PromotionParams(const SsdMeta& meta, StoreParams* p) {
  p->tenant = meta.tenant;
  p->from_ssd = true;
  if (meta.expires_at_unix_ms == 0) return true;
  const int64_t left = meta.expires_at_unix_ms - UnixNowMs();
  if (left <= 0) return false;
  p->ttl_ms = static_cast<uint64_t>(left);
  return true;
}

}  // namespace

void Cache::Promote(NamespaceState& ns, const BlockKey& key, uint32_t shard, const void* data,
                    const SsdMeta& meta) {
  StoreParams p;
  if (!PromotionParams(meta, &p)) return;
  Reservation r;
  if (!BeginStore(ns, key, shard, p, &r).ok()) return;  // present, pending or no room: fine
  std::memcpy(r.data, data, r.size);
  if (Commit(r).ok()) c_.promotions.fetch_add(1, std::memory_order_relaxed);
}

bool Cache::PromoteForView(NamespaceState& ns, const BlockKey& key, uint32_t shard, Miss* why) {
  SsdMeta meta;
  if (!SsdHas(ns, key, shard, why, &meta)) return false;
  const SsdBlockId id = SsdIdOf(ns, key, shard);
  StoreParams p;
  if (!PromotionParams(meta, &p)) return false;
  Reservation r;
  Status s = BeginStore(ns, key, shard, p, &r);
  if (s.code() == Code::kExists) return true;  // promoted meanwhile
  if (!s.ok()) return false;
  s = ssd_->Read(id, r.data, r.size);  // straight into host memory, verified
  if (!s.ok()) {
    if (s.code() == Code::kCorrupt) *why = Miss::kCorrupt;
    Abort(r);
    return false;
  }
  c_.ssd_hits.fetch_add(1, std::memory_order_relaxed);
  if (!Commit(r).ok()) return false;
  c_.promotions.fetch_add(1, std::memory_order_relaxed);
  return true;
}

Status Cache::WriteThrough(const Reservation& r, const Entry& e, uint64_t checksum) {
  SsdMeta meta;
  meta.epoch = e.epoch;
  meta.tenant = e.tenant;
  meta.len = r.size;
  meta.checksum = checksum;
  meta.expires_at_unix_ms = r.ttl_ms ? UnixNowMs() + static_cast<int64_t>(r.ttl_ms) : 0;
  return ssd_->Put(SsdIdOf(*r.ns, e.key, e.shard), meta, r.data, r.durable);
}

void Cache::Demote(const Entry& e, const uint8_t* data) {
  if (!e.write_back || e.on_ssd) return;
  NamespaceState* ns = NamespaceAt(e.ns);
  if (ns == nullptr || e.epoch != ns->epoch.load(std::memory_order_acquire)) return;
  if (e.expires_at != 0 && NowMs() >= e.expires_at) return;
  SsdMeta meta;
  meta.epoch = e.epoch;
  meta.tenant = e.tenant;
  meta.len = e.size;
  meta.checksum = e.checksum;
  meta.expires_at_unix_ms = ToUnix(e.expires_at);
  demoter_->Stage(SsdIdOf(*ns, e.key, e.shard), meta, data);
}

Status Cache::Flush() {
  Status st = Status::Ok();
  if (ssd_) {
    demoter_->Drain();
    st = ssd_->Flush();
  }
  if (remote_) {  // the stores queued for the node: sent, or given up
    Status r = remote_->Flush();
    if (st.ok()) st = r;
  }
  return st;
}

}  // namespace kvc
