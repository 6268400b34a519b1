#include "core/cache.h"

#include <xxhash.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "util/checksum.h"

namespace kvc {
namespace {

enum : uint8_t { kCancelExpired = 1, kCancelDeleted = 2, kCancelRevision = 3 };

bool IsPowerOfTwo(uint32_t x) { return x != 0 && (x & (x - 1)) == 0; }

std::string SeedString(const BlockKey& k) { return std::string(k.bytes.begin(), k.bytes.end()); }

}  // namespace

int64_t NowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

Result<std::unique_ptr<Cache>> Cache::Open(const CacheOptions& options) {
  if (options.host_capacity_bytes < CacheOptions::kMinCapacity) {
    return InvalidArgument("host_capacity_bytes " + std::to_string(options.host_capacity_bytes) +
                           " is below the minimum of 65536");
  }
  if (!IsPowerOfTwo(options.index_shards) || options.index_shards > 65536) {
    return InvalidArgument("index_shards must be a power of two up to 65536, not " +
                           std::to_string(options.index_shards));
  }
  std::unique_ptr<Cache> cache(new Cache(options));
  // The remote tier first: a refused option fails before the arena is allocated.
  if (!options.remote_address.empty()) {
    if (!options.remote_factory) {
      return Status(Code::kUnsupported, "remote_address '" + options.remote_address +
                                            "': this libkvc was built without gRPC, so it has no remote tier");
    }
    auto remote = options.remote_factory(options);
    if (!remote.ok()) return remote.status();
    cache->remote_ = std::move(remote).value();
  }
  if (!options.tenants_path.empty()) {
    auto reg = TenantRegistry::Load(options.tenants_path);
    if (!reg.ok()) return reg.status();
    cache->tenants_ = std::move(reg).value();
  }
  auto tier = HostTier::Create(options.host_capacity_bytes, options.prefault, options.host_policy,
                               &cache->index_, options.shared_arena);
  if (!tier.ok()) return tier.status();
  cache->tier_ = std::move(tier).value();
  if (!options.ssd_dir.empty()) {
    SsdOptions so;
    so.dir = options.ssd_dir;
    so.capacity_bytes = options.ssd_capacity_bytes;
    so.policy = options.ssd_policy;
    if (options.ssd_segment_bytes) so.segment_bytes = options.ssd_segment_bytes;
    auto ssd = SsdTier::Open(so);
    if (!ssd.ok()) return ssd.status();
    cache->ssd_ = std::move(ssd).value();
    for (const auto& t : cache->tenants_.tenants())
      if (t.ssd_quota_bytes) cache->ssd_->SetTenantQuota(t.id, t.ssd_quota_bytes);
    const uint64_t staging = options.demote_staging_bytes
                                 ? options.demote_staging_bytes
                                 : std::min<uint64_t>(64ull << 20, options.host_capacity_bytes / 4);
    cache->demoter_ = std::make_unique<Demoter>(cache->ssd_.get(), staging);
    Cache* c = cache.get();
    cache->tier_->SetEvictHook([c](const Entry& e, const uint8_t* data) { c->Demote(e, data); });
  }
  {
    std::vector<HostTier::TenantQuota> quotas;
    for (const auto& t : cache->tenants_.tenants()) {
      if (t.id >= kMaxTenants) return InvalidArgument("tenant id " + std::to_string(t.id) + " is too large");
      if (quotas.size() <= t.id) quotas.resize(t.id + 1);
      quotas[t.id] = HostTier::TenantQuota{t.host_quota_bytes, t.borrow};
    }
    auto lk = cache->tier_->Lock();
    cache->tier_->SetQuotasLocked(std::move(quotas));
  }
  cache->maintenance_ = std::thread([c = cache.get()] { c->MaintenanceLoop(); });
  return cache;
}

Cache::Cache(const CacheOptions& options)
    : options_(options),
      index_(options.index_shards),
      tenant_hits_(new std::atomic<uint64_t>[kMaxTenants]),
      tenant_misses_(new std::atomic<uint64_t>[kMaxTenants]) {
  for (uint32_t i = 0; i < kMaxTenants; ++i) {
    tenant_hits_[i].store(0, std::memory_order_relaxed);
    tenant_misses_[i].store(0, std::memory_order_relaxed);
  }
}

void Cache::CountHits(uint32_t tenant, uint64_t n) {
  c_.hits.fetch_add(n, std::memory_order_relaxed);
  if (tenant < kMaxTenants) tenant_hits_[tenant].fetch_add(n, std::memory_order_relaxed);
}

Cache::~Cache() {
  {
    std::lock_guard<std::mutex> lk(maint_mu_);
    stopping_ = true;
  }
  maint_cv_.notify_all();
  if (maintenance_.joinable()) maintenance_.join();
  // The remote tier is sent what is queued (each send bounded by its deadline).
  if (remote_) {
    (void)remote_->Flush();
    remote_.reset();
  }
  // Write-back owes the SSD tier what is staged: drain it, then make it durable.
  if (tier_) tier_->SetEvictHook(nullptr);
  demoter_.reset();
  if (ssd_) (void)ssd_->Flush();
}

Result<NamespaceState*> Cache::OpenNamespace(const NamespaceFields& fields) {
  KVC_RETURN_IF_ERROR(fields.layout.Validate());
  KeyHasher probe(fields);
  const std::string seed = SeedString(probe.seed());
  std::lock_guard<std::mutex> lk(ns_mu_);
  auto it = namespaces_.find(seed);
  if (it != namespaces_.end()) return it->second.get();
  const auto idx = static_cast<uint32_t>(ns_by_index_.size());
  auto st = std::make_unique<NamespaceState>(idx, fields);
  if (ssd_) {  // resume the revision epoch the SSD tier persisted
    const uint64_t e = ssd_->NamespaceEpoch(probe.seed());
    if (e > 0) st->epoch.store(e);
  }
  NamespaceState* raw = st.get();
  namespaces_.emplace(seed, std::move(st));
  ns_by_index_.push_back(raw);
  return raw;
}

Cache::Found Cache::Classify(NamespaceState& ns, const Entry& e, int64_t now) const {
  const EntryState st = e.state.load(std::memory_order_acquire);
  if (st == EntryState::kPending) {
    return e.epoch == ns.epoch.load(std::memory_order_acquire) ? Found::kPending : Found::kStale;
  }
  if (st != EntryState::kCommitted) return Found::kAbsent;
  if (e.epoch != ns.epoch.load(std::memory_order_acquire)) return Found::kStale;
  if (e.expires_at != 0 && now >= e.expires_at) return Found::kExpired;
  return Found::kHit;
}

Miss Cache::MissOf(Found f, const BlockKey& key) const {
  switch (f) {
    case Found::kExpired: return Miss::kExpired;
    case Found::kStale: return Miss::kStale;
    case Found::kPending: return Miss::kPending;
    default:
      switch (tier_->RecallGone(key)) {
        case HostTier::kGoneEvicted: return Miss::kEvicted;
        case HostTier::kGoneStale: return Miss::kStale;
        case HostTier::kGoneExpired: return Miss::kExpired;
        default: return Miss::kAbsent;
      }
  }
}

void Cache::CountMiss(Miss m, const BlockKey& key, uint32_t tenant) {
  c_.misses[static_cast<int>(m)].fetch_add(1, std::memory_order_relaxed);
  if (tenant < kMaxTenants) tenant_misses_[tenant].fetch_add(1, std::memory_order_relaxed);
  auto lk = tier_->Lock();
  tier_->RecordMissLocked(key);
}

bool Cache::UnlinkLocked(ShardedIndex::Stripe& s, const BlockId& bid, EntryId eid, EntryState to,
                         HostTier::Gone why) {
  s.map.erase(bid);
  if (why != HostTier::kGoneNone) tier_->RememberGone(bid.key, why);
  Entry& e = tier_->pool().at(eid);
  if (to == EntryState::kZombie) {  // the writer still owns the bytes
    e.state.store(EntryState::kZombie, std::memory_order_release);
    return false;
  }
  // Doomed: no block of the tier any more (stats say so at once); its
  // memory goes when the caller frees it, or, if pinned, at the last Unpin.
  e.state.store(EntryState::kDoomed, std::memory_order_release);
  {
    auto lk = tier_->Lock();
    tier_->UntrackLocked(eid);
  }
  return e.pins.load(std::memory_order_acquire) == 0;
}

void Cache::FreeEntry(EntryId eid) {
  auto lk = tier_->Lock();
  tier_->FreeEntryLocked(eid);
}

size_t Cache::Match(NamespaceState& ns, std::span<const BlockKey> keys, uint8_t* tiers, uint32_t tenant) {
  const int64_t now = NowMs();
  size_t matched = 0;
  Miss why = Miss::kAbsent;
  for (; matched < keys.size(); ++matched) {
    const BlockKey& key = keys[matched];
    Found miss = Found::kHit;
    uint8_t tier = 2;  // KVC_TIER_HOST
    for (uint32_t shard = 0; shard < ns.shards && miss == Found::kHit; ++shard) {
      BlockId bid{ns.index, shard, key};
      auto& s = index_.StripeOf(bid);
      {
        std::lock_guard<std::mutex> lk(s.mu);
        auto it = s.map.find(bid);
        miss = it == s.map.end() ? Found::kAbsent : Classify(ns, tier_->pool().at(it->second), now);
      }
      if (miss != Found::kHit && miss != Found::kPending && ssd_) {
        Miss why;
        if (SsdHas(ns, key, shard, &why)) {
          miss = Found::kHit;
          tier = 3;  // KVC_TIER_SSD
        }
      }
    }
    if (miss != Found::kHit) {
      why = MissOf(miss, key);
      break;
    }
    if (tiers != nullptr) tiers[matched] = tier;
  }
  if (tiers != nullptr)
    for (size_t i = matched; i < keys.size(); ++i) tiers[i] = 0;
  // The node, for the keys past the local prefix.
  if (matched < keys.size() && remote_) matched += MatchRemote(ns, keys, matched, tiers, tenant, &why);
  if (matched < keys.size()) CountMiss(why, keys[matched], tenant);
  CountHits(tenant, matched);
  return matched;
}

Status Cache::BeginStore(NamespaceState& ns, const BlockKey& key, uint32_t shard,
                         const StoreParams& params, Reservation* out) {
  if (shard >= ns.shards) {
    return InvalidArgument("shard " + std::to_string(shard) + " is out of range: the namespace has " +
                           std::to_string(ns.shards) + " shard(s)");
  }
  const int64_t now = NowMs();
  const uint64_t epoch = ns.epoch.load(std::memory_order_acquire);
  // The parent's entry, for prefix-aware eviction.
  EntryId parent = kNoEntry;
  uint32_t parent_gen = 0;
  if (params.parent != nullptr) {
    BlockId pb{ns.index, shard, *params.parent};
    auto& ps = index_.StripeOf(pb);
    std::lock_guard<std::mutex> lk(ps.mu);
    auto it = ps.map.find(pb);
    if (it != ps.map.end() && Classify(ns, tier_->pool().at(it->second), now) == Found::kHit) {
      parent = it->second;
      auto tl = tier_->Lock();
      parent_gen = tier_->pool().at(parent).gen;
    }
  }
  const uint32_t timeout =
      params.reservation_timeout_ms ? params.reservation_timeout_ms : options_.reservation_timeout_ms;
  BlockId bid{ns.index, shard, key};
  auto& s = index_.StripeOf(bid);
  EntryId eid;
  uint64_t token = next_token_.fetch_add(1, std::memory_order_relaxed);
  EntryId to_free = kNoEntry;
  {
    std::lock_guard<std::mutex> lk(s.mu);
    auto it = s.map.find(bid);
    if (it != s.map.end()) {
      Entry& e = tier_->pool().at(it->second);
      switch (Classify(ns, e, now)) {
        case Found::kHit:
          c_.store_exists.fetch_add(1, std::memory_order_relaxed);
          return Status(Code::kExists, "block is already stored");
        case Found::kPending:
          if (now < e.deadline) {
            c_.store_pending.fetch_add(1, std::memory_order_relaxed);
            return Status(Code::kPending, "block is being written by another writer");
          }
          e.cancelled = kCancelExpired;
          c_.reservations_expired.fetch_add(1, std::memory_order_relaxed);
          UnlinkLocked(s, bid, it->second, EntryState::kZombie);
          break;
        case Found::kStale:
          if (e.state.load() == EntryState::kPending) {
            e.cancelled = kCancelRevision;
            UnlinkLocked(s, bid, it->second, EntryState::kZombie);
          } else if (const EntryId old = it->second;
                     UnlinkLocked(s, bid, old, EntryState::kDoomed, HostTier::kGoneStale)) {
            to_free = old;
          }
          break;
        case Found::kExpired:
          c_.expirations.fetch_add(1, std::memory_order_relaxed);
          if (const EntryId old = it->second;
              UnlinkLocked(s, bid, old, EntryState::kDoomed, HostTier::kGoneExpired))
            to_free = old;
          break;
        case Found::kAbsent:
          s.map.erase(it);
          break;
      }
    }
    {
      auto tl = tier_->Lock();
      eid = tier_->NewEntryLocked();
    }
    Entry& e = tier_->pool().at(eid);
    e.key = key;
    e.ns = ns.index;
    e.shard = shard;
    e.tenant = params.tenant;
    e.write_back = true;
    e.on_ssd = params.from_ssd;
    e.size = ns.shard_bytes;
    e.epoch = epoch;
    e.expires_at = 0;
    e.deadline = now + timeout;
    e.token = token;
    e.parent = parent;
    e.parent_gen = parent_gen;
    e.cancelled = 0;
    e.state.store(EntryState::kPending, std::memory_order_release);
    s.map[bid] = eid;
  }
  if (to_free != kNoEntry) FreeEntry(to_free);
  {
    std::lock_guard<std::mutex> lk(pending_mu_);
    pending_[eid] = PendingRecord{bid, token, now + timeout};
  }
  Status alloc;
  {
    auto tl = tier_->Lock();
    alloc = tier_->AllocateLocked(eid);
  }
  if (!alloc.ok()) {
    Reservation r{&ns, eid, token, nullptr, 0, 0, false, false};
    Abort(r);
    c_.aborts.fetch_sub(1, std::memory_order_relaxed);  // not the caller's abort
    return alloc;
  }
  Entry& e = tier_->pool().at(eid);
  *out = Reservation{&ns, eid, token, tier_->data(e), ns.shard_bytes, params.ttl_ms,
                     params.write_through && ssd_ != nullptr, params.durable,
                     remote_ != nullptr && !params.from_ssd && !params.from_remote};
  return Status::Ok();
}

Status Cache::Commit(Reservation& r) {
  Entry& e = tier_->pool().at(r.entry);
  const uint64_t checksum = Checksum64(r.data, r.size);
  const int64_t now = NowMs();
  BlockId bid{e.ns, e.shard, e.key};
  auto& s = index_.StripeOf(bid);
  Status result = Status::Ok();
  bool free_it = false;
  int64_t expires_at = 0;
  // Write-through: the SSD tier gets the bytes before they become visible,
  // while the writer still owns them. A refusal leaves the block in DRAM.
  Status through = Status::Ok();
  if (r.write_through && e.state.load() == EntryState::kPending &&
      e.epoch == r.ns->epoch.load(std::memory_order_acquire)) {
    through = WriteThrough(r, e, checksum);
  }
  // The remote tier's copy, taken while the writer still owns the bytes
  // (once visible they may be evicted and reused); sent once committed.
  std::vector<uint8_t> forward;
  if (r.forward && e.state.load() == EntryState::kPending) forward.assign(r.data, r.data + r.size);
  uint32_t tenant = 0;
  uint64_t epoch = 0;
  {
    std::lock_guard<std::mutex> lk(s.mu);
    const EntryState st = e.state.load(std::memory_order_acquire);
    if (st == EntryState::kZombie || e.token != r.token) {
      free_it = true;
      result = e.cancelled == kCancelExpired
                   ? Status(Code::kTimeout, "reservation passed its deadline and was aborted")
               : e.cancelled == kCancelDeleted
                   ? NotFound("the block was deleted while being written; not stored")
                   : NotFound("the namespace revision was bumped while the block was written; not stored");
    } else if (e.epoch != r.ns->epoch.load(std::memory_order_acquire)) {
      s.map.erase(bid);
      free_it = true;
      result = NotFound("the namespace revision was bumped while the block was written; not stored");
    } else if (now >= e.deadline) {
      s.map.erase(bid);
      free_it = true;
      c_.reservations_expired.fetch_add(1, std::memory_order_relaxed);
      result = Status(Code::kTimeout, "reservation passed its deadline and was aborted");
    } else {
      e.checksum = checksum;
      e.on_ssd = e.on_ssd || (r.write_through && through.ok());
      e.expires_at = expires_at = r.ttl_ms ? now + static_cast<int64_t>(r.ttl_ms) : 0;
      tenant = e.tenant;
      epoch = e.epoch;
      e.state.store(EntryState::kCommitted, std::memory_order_release);
      auto tl = tier_->Lock();
      tier_->InsertLocked(r.entry, e.parent, e.parent_gen);
    }
  }
  {
    std::lock_guard<std::mutex> lk(pending_mu_);
    pending_.erase(r.entry);
  }
  if (free_it) {
    FreeEntry(r.entry);
  } else {
    c_.stores.fetch_add(1, std::memory_order_relaxed);
    c_.bytes_stored.fetch_add(r.size, std::memory_order_relaxed);
    // `e` may already be evicted and reused: use the copy taken under the lock.
    if (expires_at != 0) {
      int64_t cur = next_expiry_.load();
      while (expires_at < cur && !next_expiry_.compare_exchange_weak(cur, expires_at)) {
      }
    }
    if (!forward.empty()) remote_->Put(*r.ns, tenant, epoch, bid.key, bid.shard, std::move(forward), r.ttl_ms);
  }
  NotifyWaiters();
  r = Reservation{};
  if (result.ok() && !through.ok()) {
    return Status(through.code(), "stored in host memory only; the SSD tier refused it: " + through.message());
  }
  return result;
}

void Cache::Abort(Reservation& r) {
  if (r.entry == kNoEntry) return;
  Entry& e = tier_->pool().at(r.entry);
  BlockId bid{e.ns, e.shard, e.key};
  auto& s = index_.StripeOf(bid);
  {
    std::lock_guard<std::mutex> lk(s.mu);
    if (e.state.load() == EntryState::kPending && e.token == r.token) s.map.erase(bid);
  }
  {
    std::lock_guard<std::mutex> lk(pending_mu_);
    pending_.erase(r.entry);
  }
  FreeEntry(r.entry);
  c_.aborts.fetch_add(1, std::memory_order_relaxed);
  NotifyWaiters();
  r = Reservation{};
}

void Cache::NotifyWaiters() {
  if (waiters_.load(std::memory_order_acquire) == 0) return;
  {
    std::lock_guard<std::mutex> lk(wait_mu_);
    ++wait_seq_;
  }
  wait_cv_.notify_all();
}

Status Cache::WaitPending(NamespaceState& ns, const BlockKey& key, uint32_t shard,
                          uint32_t timeout_ms) {
  if (shard >= ns.shards) return InvalidArgument("shard " + std::to_string(shard) + " is out of range");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  BlockId bid{ns.index, shard, key};
  auto& s = index_.StripeOf(bid);
  waiters_.fetch_add(1);
  struct Leave {
    std::atomic<int>& w;
    ~Leave() { w.fetch_sub(1); }
  } leave{waiters_};
  for (;;) {
    uint64_t seq;
    {
      std::lock_guard<std::mutex> lk(wait_mu_);
      seq = wait_seq_;
    }
    Found f;
    {
      std::lock_guard<std::mutex> lk(s.mu);
      auto it = s.map.find(bid);
      f = it == s.map.end() ? Found::kAbsent : Classify(ns, tier_->pool().at(it->second), NowMs());
    }
    if (f == Found::kHit) return Status::Ok();
    if (f != Found::kPending) return NotFound("the block is not stored (its writer aborted, or none was pending)");
    std::unique_lock<std::mutex> lk(wait_mu_);
    if (!wait_cv_.wait_until(lk, deadline, [&] { return wait_seq_ != seq; })) {
      return Status(Code::kTimeout, "block still pending after " + std::to_string(timeout_ms) + " ms");
    }
  }
}

Status Cache::Pin(NamespaceState& ns, const BlockKey& key, uint32_t shard, EntryId* out, Miss* why) {
  if (shard >= ns.shards) {
    return InvalidArgument("shard " + std::to_string(shard) + " is out of range: the namespace has " +
                           std::to_string(ns.shards) + " shard(s)");
  }
  BlockId bid{ns.index, shard, key};
  auto& s = index_.StripeOf(bid);
  Found f;
  EntryId to_free = kNoEntry;
  {
    std::lock_guard<std::mutex> lk(s.mu);
    auto it = s.map.find(bid);
    f = it == s.map.end() ? Found::kAbsent : Classify(ns, tier_->pool().at(it->second), NowMs());
    if (f == Found::kHit) {
      Entry& e = tier_->pool().at(it->second);
      e.pins.fetch_add(1, std::memory_order_acq_rel);
      *out = it->second;
      auto tl = tier_->Lock();
      tier_->TouchLocked(it->second);
    } else if (f == Found::kExpired || (f == Found::kStale && tier_->pool().at(it->second).state.load() ==
                                                                  EntryState::kCommitted)) {
      if (f == Found::kExpired) c_.expirations.fetch_add(1, std::memory_order_relaxed);
      const auto why = f == Found::kExpired ? HostTier::kGoneExpired : HostTier::kGoneStale;
      if (const EntryId old = it->second; UnlinkLocked(s, bid, old, EntryState::kDoomed, why)) to_free = old;
    }
  }
  if (to_free != kNoEntry) FreeEntry(to_free);
  if (f != Found::kHit) {
    *why = MissOf(f, key);
    return NotFound();
  }
  return Status::Ok();
}

void Cache::Unpin(EntryId eid) {
  Entry& e = tier_->pool().at(eid);
  BlockId bid{e.ns, e.shard, e.key};
  auto& s = index_.StripeOf(bid);
  bool free_it = false;
  {
    std::lock_guard<std::mutex> lk(s.mu);
    if (e.pins.fetch_sub(1, std::memory_order_acq_rel) == 1 &&
        e.state.load(std::memory_order_acquire) == EntryState::kDoomed) {
      free_it = true;
    }
  }
  if (free_it) FreeEntry(eid);
}

Status Cache::LoadLocal(NamespaceState& ns, const BlockKey& key, uint32_t shard, void* dst, Miss* why) {
  EntryId eid;
  Status s = Pin(ns, key, shard, &eid, why);
  if (s.ok()) {
    const Entry& e = tier_->pool().at(eid);
    std::memcpy(dst, tier_->data(e), e.size);
    Unpin(eid);
  } else if (s.code() == Code::kNotFound && ssd_) {
    s = LoadFromSsd(ns, key, shard, dst, why);
  }
  return s;
}

Status Cache::CountLoad(NamespaceState& ns, const Status& s, const BlockKey& key, uint32_t tenant, Miss why) {
  if (s.code() == Code::kNotFound) {
    CountMiss(why, key, tenant);
    return NotFound();
  }
  KVC_RETURN_IF_ERROR(s);
  CountHits(tenant, 1);
  c_.bytes_loaded.fetch_add(ns.shard_bytes, std::memory_order_relaxed);
  return Status::Ok();
}

Status Cache::Load(NamespaceState& ns, const BlockKey& key, uint32_t shard, void* dst, uint32_t tenant) {
  Miss why = Miss::kAbsent;
  Status s = LoadLocal(ns, key, shard, dst, &why);
  if (s.code() == Code::kNotFound && remote_) s = LoadFromRemote(ns, key, shard, dst, tenant, &why);
  return CountLoad(ns, s, key, tenant, why);
}

void Cache::LoadBatch(NamespaceState& ns, std::span<const BlockKey> keys, uint32_t shard, std::span<void* const> dsts,
                      uint32_t tenant, std::span<Status> out) {
  // Blocks over 256 KiB are loaded one by one: each is a gRPC message of
  // its own either way, and a batch of 64 blocks of 1 MiB through a cache
  // over an in-process node ran at 0.7-0.9x the loads one by one over gRPC
  // (remote_load_bench; cause not found: glibc's malloc tunables took back
  // part of it), against 1.9x for 64 KiB blocks.
  if (!remote_ || ns.shard_bytes > kRemoteBatchMaxBlockBytes) {
    for (size_t i = 0; i < keys.size(); ++i) out[i] = Load(ns, keys[i], shard, dsts[i], tenant);
    return;
  }
  std::vector<Miss> why(keys.size(), Miss::kAbsent);
  std::vector<RemoteGetItem> missed;  // the local misses, for the remote tier
  std::vector<size_t> at;             // their indexes in keys
  std::vector<size_t> again;          // local misses of a key already missed: loaded after the batch, as Load
  std::unordered_set<BlockKey, BlockKeyHash> asked;
  for (size_t i = 0; i < keys.size(); ++i) {
    out[i] = LoadLocal(ns, keys[i], shard, dsts[i], &why[i]);
    if (out[i].code() == Code::kNotFound && remote_) {
      if (!asked.insert(keys[i]).second) {
        again.push_back(i);
        continue;
      }
      missed.push_back(RemoteGetItem{keys[i], dsts[i]});
      at.push_back(i);
      continue;
    }
    out[i] = CountLoad(ns, out[i], keys[i], tenant, why[i]);
  }
  if (missed.empty()) return;
  std::vector<Miss> remote_why(missed.size());
  for (size_t j = 0; j < missed.size(); ++j) remote_why[j] = why[at[j]];
  LoadManyFromRemote(ns, shard, tenant, missed, remote_why.data());
  for (size_t j = 0; j < missed.size(); ++j)
    out[at[j]] = CountLoad(ns, missed[j].status, keys[at[j]], tenant, remote_why[j]);
  // A key given twice: its first load promoted it (a local hit now), or the
  // node is asked again, as a second Load would.
  for (size_t i : again) out[i] = Load(ns, keys[i], shard, dsts[i], tenant);
}

Status Cache::AcquireView(NamespaceState& ns, const BlockKey& key, uint32_t shard,
                          uint32_t pin_timeout_ms, View* out, uint32_t tenant) {
  EntryId eid;
  Miss why = Miss::kAbsent;
  Status s = Pin(ns, key, shard, &eid, &why);
  // A view needs host memory: a block only on SSD is promoted first.
  if (s.code() == Code::kNotFound && ssd_ && PromoteForView(ns, key, shard, &why)) {
    s = Pin(ns, key, shard, &eid, &why);
  }
  // ... and so is a block only on the node.
  if (s.code() == Code::kNotFound && remote_ && PromoteFromRemote(ns, key, shard, tenant, &why)) {
    s = Pin(ns, key, shard, &eid, &why);
  }
  if (s.code() == Code::kNotFound) {
    CountMiss(why, key, tenant);
    return NotFound();
  }
  KVC_RETURN_IF_ERROR(s);
  CountHits(tenant, 1);
  const Entry& e = tier_->pool().at(eid);
  const uint64_t id = next_token_.fetch_add(1, std::memory_order_relaxed);
  const int64_t deadline = NowMs() + (pin_timeout_ms ? pin_timeout_ms : options_.pin_timeout_ms);
  {
    std::lock_guard<std::mutex> lk(views_mu_);
    views_.emplace(id, PinRecord{eid, deadline});
  }
  *out = View{tier_->data(e), e.size, id};
  return Status::Ok();
}

Status Cache::ReleaseView(uint64_t id) {
  EntryId eid;
  {
    std::lock_guard<std::mutex> lk(views_mu_);
    auto it = views_.find(id);
    if (it == views_.end()) {
      return InvalidArgument("view " + std::to_string(id) +
                             " is not held: it was already released, or its pin expired");
    }
    eid = it->second.entry;
    views_.erase(it);
  }
  Unpin(eid);
  return Status::Ok();
}

Status Cache::Delete(NamespaceState& ns, const BlockKey& key, uint32_t tenant) {
  bool any = false;
  for (uint32_t shard = 0; shard < ns.shards; ++shard) {
    BlockId bid{ns.index, shard, key};
    auto& s = index_.StripeOf(bid);
    EntryId to_free = kNoEntry;
    {
      std::lock_guard<std::mutex> lk(s.mu);
      auto it = s.map.find(bid);
      // Not in the host tier: it may still be in the SSD tier (below).
      if (it != s.map.end()) {
        Entry& e = tier_->pool().at(it->second);
        const EntryState st = e.state.load();
        const bool visible = Classify(ns, e, NowMs()) == Found::kHit;
        if (st == EntryState::kPending) {
          e.cancelled = kCancelDeleted;
          UnlinkLocked(s, bid, it->second, EntryState::kZombie);
        } else {
          any = any || visible;
          const EntryId victim = it->second;
          if (UnlinkLocked(s, bid, victim, EntryState::kDoomed)) to_free = victim;
        }
      }
    }
    if (to_free != kNoEntry) FreeEntry(to_free);
    if (ssd_ && ssd_->Erase(SsdIdOf(ns, key, shard)).ok()) any = true;
  }
  if (remote_) {
    Status rs = remote_->Delete(ns, tenant, key);
    if (rs.ok()) any = true;
    else if (rs.code() != Code::kNotFound && !IsNodeDown(rs))
      std::fprintf(stderr, "kvc: remote tier: a delete did not reach node %s: %s\n", remote_->address().c_str(),
                   rs.ToString().c_str());
  }
  NotifyWaiters();
  if (!any) return NotFound("no block with that key is stored");
  c_.deletes.fetch_add(1, std::memory_order_relaxed);
  return Status::Ok();
}

uint64_t Cache::BumpRevision(NamespaceState& ns, uint32_t tenant) {
  const uint64_t e = ns.epoch.fetch_add(1, std::memory_order_acq_rel) + 1;
  if (remote_) {
    Status s = remote_->BumpRevision(ns, tenant);
    if (!s.ok())
      std::fprintf(stderr, "kvc: remote tier: a revision bump did not reach node %s: %s\n",
                   remote_->address().c_str(), s.ToString().c_str());
  }
  if (ssd_) {
    Status s = ssd_->BumpNamespace(ns.hasher.seed(), e);
    if (!s.ok()) std::fprintf(stderr, "kvc: SSD tier: cannot persist a revision bump: %s\n", s.ToString().c_str());
  }
  sweep_needed_.store(true, std::memory_order_release);
  maint_cv_.notify_all();
  NotifyWaiters();
  return e;
}

void Cache::BumpAllRevisions() {
  std::vector<NamespaceState*> nss;
  {
    std::lock_guard<std::mutex> lk(ns_mu_);
    nss = ns_by_index_;
  }
  for (NamespaceState* ns : nss)
    if (ns != nullptr) (void)BumpRevision(*ns);
}

void Cache::ForEachHostBlock(const std::function<void(const HostBlock&)>& fn) {
  struct Raw {
    uint32_t ns;
    BlockKey key;
    uint32_t shard, tenant;
    uint64_t size, epoch;
    int64_t expires_at;
  };
  std::vector<Raw> raw;
  {
    auto lk = tier_->Lock();
    EntryPool& pool = tier_->pool();
    const size_t n = pool.slots();
    std::vector<uint8_t> seen(n, 0);
    auto take = [&](EntryId id) {
      if (id >= n || seen[id]) return;
      seen[id] = 1;
      const Entry& e = pool.at(id);
      if (e.state.load(std::memory_order_acquire) != EntryState::kCommitted || !e.has_memory) return;
      raw.push_back({e.ns, e.key, e.shard, e.tenant, e.size, e.epoch, e.expires_at});
    };
    // The policy's order; then, so that none is left out, any committed
    // block the policy does not track (none is expected).
    for (EntryId id : tier_->HottestFirstLocked()) take(id);
    for (size_t id = 0; id < n; ++id) take(static_cast<EntryId>(id));
  }
  std::vector<NamespaceState*> nss;
  {
    std::lock_guard<std::mutex> lk(ns_mu_);
    nss = ns_by_index_;
  }
  const int64_t now = NowMs();
  for (const Raw& r : raw) {
    NamespaceState* ns = r.ns < nss.size() ? nss[r.ns] : nullptr;
    if (ns == nullptr || r.epoch != ns->epoch.load()) continue;
    if (r.expires_at != 0 && r.expires_at <= now) continue;
    HostBlock b;
    b.ns = ns;
    b.key = r.key;
    b.shard = r.shard;
    b.tenant = r.tenant;
    b.size = r.size;
    b.ttl_left_ms = r.expires_at == 0 ? 0 : r.expires_at - now;
    fn(b);
  }
}

namespace {

struct SsdIdHash {
  size_t operator()(const SsdBlockId& id) const {
    return id.key.Low64() ^ (id.ns.Low64() * 0x9E3779B97F4A7C15ull) ^ (uint64_t{id.shard} << 47);
  }
};

int64_t UnixMsNow() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace

void Cache::ForEachSsdOnlyBlock(const std::function<void(const HostBlock&)>& fn, SsdOnlySkips* skips) {
  SsdOnlySkips local;
  SsdOnlySkips& sk = skips != nullptr ? *skips : local;
  if (!ssd_) return;
  std::vector<NamespaceState*> nss;
  {
    std::lock_guard<std::mutex> lk(ns_mu_);
    nss = ns_by_index_;
  }
  std::unordered_map<BlockKey, NamespaceState*, BlockKeyHash> by_seed;
  for (NamespaceState* ns : nss)
    if (ns != nullptr) by_seed.emplace(ns->hasher.seed(), ns);
  // What the host tier holds (any state: a pending store or a doomed block
  // is not this function's to copy either).
  std::unordered_set<SsdBlockId, SsdIdHash> on_host;
  {
    auto lk = tier_->Lock();
    EntryPool& pool = tier_->pool();
    const size_t n = pool.slots();
    for (size_t id = 0; id < n; ++id) {
      const Entry& e = pool.at(static_cast<EntryId>(id));
      if (e.state.load(std::memory_order_acquire) != EntryState::kCommitted || !e.has_memory) continue;
      if (e.ns >= nss.size() || nss[e.ns] == nullptr) continue;
      on_host.insert(SsdBlockId{nss[e.ns]->hasher.seed(), e.key, e.shard});
    }
  }
  std::vector<std::pair<SsdBlockId, SsdMeta>> blocks;
  ssd_->ForEach([&](const SsdBlockId& id, const SsdMeta& m) { blocks.emplace_back(id, m); });
  const int64_t now = UnixMsNow();
  for (const auto& [id, m] : blocks) {
    if (on_host.count(id) != 0) {
      ++sk.on_host;
      continue;
    }
    auto it = by_seed.find(id.ns);
    if (it == by_seed.end()) {
      ++sk.unknown_namespace;
      continue;
    }
    NamespaceState* ns = it->second;
    if (m.epoch != ns->epoch.load(std::memory_order_acquire)) {
      ++sk.stale;
      continue;
    }
    if (m.expires_at_unix_ms != 0 && m.expires_at_unix_ms <= now) continue;  // ForEach raced it
    HostBlock b;
    b.ns = ns;
    b.key = id.key;
    b.shard = id.shard;
    b.tenant = m.tenant;
    b.size = m.len;
    b.ttl_left_ms = m.expires_at_unix_ms == 0 ? 0 : m.expires_at_unix_ms - now;
    fn(b);
  }
}

Status Cache::ReadSsdBlock(const HostBlock& b, std::vector<uint8_t>* out) {
  if (!ssd_ || b.ns == nullptr) return NotFound("no SSD tier");
  out->resize(b.size);
  return ssd_->Read(SsdIdOf(*b.ns, b.key, b.shard), out->data(), b.size);
}

void Cache::SweepStripes(int64_t now) {
  std::vector<EntryId> to_free;
  int64_t next = INT64_MAX;
  std::vector<NamespaceState*> nss;
  {
    std::lock_guard<std::mutex> lk(ns_mu_);
    nss = ns_by_index_;
  }
  for (uint32_t i = 0; i < index_.stripe_count(); ++i) {
    auto& s = index_.stripe(i);
    std::lock_guard<std::mutex> lk(s.mu);
    for (auto it = s.map.begin(); it != s.map.end();) {
      const BlockId bid = it->first;
      const EntryId eid = it->second;
      ++it;  // UnlinkLocked erases the current element
      Entry& e = tier_->pool().at(eid);
      if (e.state.load() != EntryState::kCommitted) continue;
      const Found f = Classify(*nss[bid.ns], e, now);
      if (f == Found::kStale || f == Found::kExpired) {
        if (f == Found::kExpired) c_.expirations.fetch_add(1, std::memory_order_relaxed);
        const auto why = f == Found::kExpired ? HostTier::kGoneExpired : HostTier::kGoneStale;
        if (UnlinkLocked(s, bid, eid, EntryState::kDoomed, why)) to_free.push_back(eid);
      } else if (e.expires_at != 0 && e.expires_at < next) {
        next = e.expires_at;
      }
    }
  }
  next_expiry_.store(next);
  if (!to_free.empty()) {
    auto lk = tier_->Lock();
    for (EntryId eid : to_free) tier_->FreeEntryLocked(eid);
  }
}

void Cache::RunMaintenance() {
  // The background thread may have taken sweep_needed_ and be sweeping: wait
  // for its pass rather than return before the blocks it sweeps are gone.
  std::lock_guard<std::mutex> pass(maint_pass_mu_);
  const int64_t now = NowMs();
  // Pins past their deadline.
  std::vector<EntryId> expired_pins;
  {
    std::lock_guard<std::mutex> lk(views_mu_);
    for (auto it = views_.begin(); it != views_.end();) {
      if (it->second.deadline <= now) {
        expired_pins.push_back(it->second.entry);
        it = views_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (EntryId eid : expired_pins) Unpin(eid);
  c_.pins_expired.fetch_add(expired_pins.size(), std::memory_order_relaxed);
  // Reservations past their deadline: aborted; the writer keeps the bytes
  // until it commits or aborts (it may still be writing into them).
  std::vector<std::pair<EntryId, PendingRecord>> expired;
  {
    std::lock_guard<std::mutex> lk(pending_mu_);
    for (auto& [eid, rec] : pending_)
      if (rec.deadline <= now) expired.emplace_back(eid, rec);
  }
  for (auto& [eid, rec] : expired) {
    auto& s = index_.StripeOf(rec.bid);
    std::lock_guard<std::mutex> lk(s.mu);
    Entry& e = tier_->pool().at(eid);
    auto it = s.map.find(rec.bid);
    if (it != s.map.end() && it->second == eid && e.token == rec.token &&
        e.state.load() == EntryState::kPending) {
      e.cancelled = kCancelExpired;
      UnlinkLocked(s, rec.bid, eid, EntryState::kZombie);
      c_.reservations_expired.fetch_add(1, std::memory_order_relaxed);
    }
  }
  if (!expired.empty()) NotifyWaiters();
  if (sweep_needed_.exchange(false) || now >= next_expiry_.load()) SweepStripes(now);
}

void Cache::MaintenanceLoop() {
  std::unique_lock<std::mutex> lk(maint_mu_);
  while (!stopping_) {
    maint_cv_.wait_for(lk, std::chrono::milliseconds(options_.maintenance_interval_ms));
    if (stopping_) break;
    lk.unlock();
    RunMaintenance();
    lk.lock();
  }
}

CacheStats Cache::Stats() {
  CacheStats st;
  st.capacity_bytes = tier_->capacity();
  st.used_bytes = tier_->used_bytes();
  st.blocks = tier_->blocks();
  {
    std::lock_guard<std::mutex> lk(pending_mu_);
    st.pending = pending_.size();
  }
  {
    std::lock_guard<std::mutex> lk(views_mu_);
    st.pins = views_.size();
  }
  {
    std::lock_guard<std::mutex> lk(ns_mu_);
    st.namespaces = ns_by_index_.size();
  }
  st.hits = c_.hits.load();
  for (int i = 0; i < kMissReasons; ++i) {
    st.misses_by_reason[i] = c_.misses[i].load();
    st.misses += st.misses_by_reason[i];
  }
  st.stores = c_.stores.load();
  st.store_exists = c_.store_exists.load();
  st.store_pending = c_.store_pending.load();
  st.aborts = c_.aborts.load();
  st.reservations_expired = c_.reservations_expired.load();
  st.pins_expired = c_.pins_expired.load();
  st.evictions = tier_->evictions();
  st.expirations = c_.expirations.load();
  st.deletes = c_.deletes.load();
  st.bytes_stored = c_.bytes_stored.load();
  st.bytes_loaded = c_.bytes_loaded.load();
  st.promotions = c_.promotions.load();
  st.ssd_hits = c_.ssd_hits.load();
  if (demoter_) {
    st.demotions = demoter_->demoted();
    st.demotions_dropped = demoter_->dropped();
  }
  if (ssd_) {
    const SsdStats ss = ssd_->Stats();
    st.ssd_capacity_bytes = ss.capacity_bytes;
    st.ssd_used_bytes = ss.used_bytes;
    st.ssd_blocks = ss.blocks;
    st.checksum_failures = ss.checksum_failures;
  }
  return st;
}

nlohmann::json Cache::StatsJson() {
  const CacheStats st = Stats();
  static const char* kReasons[kMissReasons] = {"absent", "expired", "evicted", "stale",
                                               "pending", "quota", "node_down", "corrupt"};
  nlohmann::json misses;
  for (int i = 0; i < kMissReasons; ++i) misses[kReasons[i]] = st.misses_by_reason[i];
  nlohmann::json policy;
  {
    auto lk = tier_->Lock();
    policy = tier_->PolicyJsonLocked();
  }
  const uint64_t lookups = st.hits + st.misses;
  nlohmann::json tenants = nlohmann::json::array();
  for (const auto& t : tenants_.tenants()) {
    if (t.id >= kMaxTenants) continue;
    nlohmann::json j = TenantRegistry::PublicJson(t);
    j["hits"] = tenant_hits_[t.id].load();
    j["misses"] = tenant_misses_[t.id].load();
    j["host_bytes"] = tier_->TenantBytes(t.id);
    j["host_blocks"] = tier_->TenantBlocks(t.id);
    if (ssd_) {
      j["ssd_bytes"] = ssd_->TenantBytes(t.id);
      j["ssd_blocks"] = ssd_->TenantBlocks(t.id);
    }
    tenants.push_back(std::move(j));
  }
  nlohmann::json out{
      {"tenants", tenants},
      {"namespaces", st.namespaces},
      {"hits", st.hits},
      {"misses", st.misses},
      {"misses_by_reason", misses},
      {"hit_ratio", lookups ? static_cast<double>(st.hits) / lookups : 0.0},
      {"stores", st.stores},
      {"store_exists", st.store_exists},
      {"store_pending", st.store_pending},
      {"aborts", st.aborts},
      {"reservations_expired", st.reservations_expired},
      {"pins_expired", st.pins_expired},
      {"deletes", st.deletes},
      {"expirations", st.expirations},
      {"bytes_stored", st.bytes_stored},
      {"bytes_loaded", st.bytes_loaded},
      {"pending", st.pending},
      {"pins", st.pins},
      {"tiers",
       {{"host",
         {{"capacity_bytes", st.capacity_bytes},
          {"used_bytes", st.used_bytes},
          {"blocks", st.blocks},
          {"evictions", st.evictions},
          {"policy", policy}}}}},
      {"promotions", st.promotions},
      {"demotions", st.demotions},
      {"demotions_dropped", st.demotions_dropped}};
  if (ssd_) {
    out["tiers"]["ssd"] = ssd_->StatsJson();
    out["tiers"]["ssd"]["hits"] = st.ssd_hits;
  }
  if (remote_) out["remote"] = RemoteStatsJson();
  return out;
}

}  // namespace kvc
