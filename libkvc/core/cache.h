// Cache: the embedded kvc engine. Namespaces, the sharded index, the host
// tier, the two-phase store protocol, pins and views, revisions, TTLs and
// stats. capi/ wraps it; nothing else in the product uses it directly.
//
// Thread-safe: every public method may be called from any thread at once,
// except that the destructor must not race other calls.
//
// Locking (never violated): an index stripe, then the tier lock; never two
// stripes; the tier lock is never held while waiting for a stripe (eviction
// only try-locks). Bytes are copied with no lock held, protected by a pin.
#ifndef KVC_CORE_CACHE_H_
#define KVC_CORE_CACHE_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/block_key.h"
#include "core/entry.h"
#include "core/key_hasher.h"
#include "core/remote_tier.h"
#include "core/sharded_index.h"
#include "tenant/tenant_registry.h"
#include "tier/demoter.h"
#include "tier/host_tier.h"
#include "tier/ssd_tier.h"
#include "util/status.h"

namespace kvc {

struct CacheOptions {
  uint64_t host_capacity_bytes = 1ull << 30;  // Default: 1 GiB
  std::string host_policy;                    // Default: DefaultPolicyName()
  uint32_t index_shards = 64;                 // Default: 64, a power of two
  bool prefault = true;
  uint32_t reservation_timeout_ms = 30000;
  uint32_t pin_timeout_ms = 60000;
  uint32_t maintenance_interval_ms = 100;
  // Tenants file (or a directory holding tenants.json); empty: no tenants.
  std::string tenants_path;
  // The SSD tier below host DRAM; empty dir: none.
  std::string ssd_dir;
  uint64_t ssd_capacity_bytes = 0;  // required with ssd_dir
  std::string ssd_policy;           // Default: DefaultPolicyName()
  uint64_t ssd_segment_bytes = 0;   // Default: the SSD tier's
  bool promote_on_hit = true;       // copy SSD hits into host DRAM
  uint64_t demote_staging_bytes = 0;  // Default: min(64 MiB, host capacity / 4)
  // The host arena in a memfd that a node hands to same-host clients
  // (HostArena, docs/node.md). Default: a private anonymous mapping.
  bool shared_arena = false;
  // The remote tier below the local ones (kvc_cache_options.remote_*):
  // a node address; empty: none. remote_tenant/remote_credential are the
  // identity of namespaces opened without a tenant (empty: none).
  std::string remote_address;
  std::string remote_tenant, remote_credential;
  std::string remote_tls_ca_path;      // empty: plaintext
  uint32_t remote_timeout_ms = 2000;   // deadline of each remote request
  uint32_t remote_backoff_ms = 1000;   // after a failure, lookups miss at once this long
  uint64_t remote_queue_bytes = 0;     // Default: min(64 MiB, host capacity / 4)
  // Builds the remote tier; required with remote_address (the C shim sets
  // it in gRPC builds: libkvc/net/remote_tier.h). Unset: KVC_ERR_UNSUPPORTED.
  std::function<Result<std::unique_ptr<RemoteTier>>(const CacheOptions&)> remote_factory;
  static constexpr uint64_t kMinCapacity = 64 * 1024;
};

// The shared state of one namespace; lives as long as the cache.
struct NamespaceState {
  NamespaceState(uint32_t idx, const NamespaceFields& f)
      : index(idx), fields(f), hasher(f), block_bytes(f.layout.BlockBytes()),
        shard_bytes(f.layout.ShardBytes()), shards(f.layout.shards) {}
  const uint32_t index;
  const NamespaceFields fields;
  const KeyHasher hasher;
  const uint64_t block_bytes;
  const uint64_t shard_bytes;
  const uint32_t shards;
  std::atomic<uint64_t> epoch{1};
};

// Miss reasons, in kvc_miss_reason order.
enum class Miss : uint8_t { kAbsent, kExpired, kEvicted, kStale, kPending, kQuota, kNodeDown, kCorrupt };
inline constexpr int kMissReasons = 8;

struct StoreParams {
  uint64_t ttl_ms = 0;                 // 0: never expires
  uint32_t reservation_timeout_ms = 0; // 0: the cache default
  const BlockKey* parent = nullptr;
  uint32_t tenant = 0;                 // 0: no tenant
  bool write_through = false;          // also write to the SSD tier at commit
  bool durable = false;                // write-through: wait until durable
  bool from_ssd = false;               // a promotion: already on the SSD tier
  bool from_remote = false;            // a promotion: already on the node
};

// A reservation: the right to write one block shard. A value owned by the
// writer; ends with Commit or Abort.
struct Reservation {
  NamespaceState* ns = nullptr;
  EntryId entry = kNoEntry;
  uint64_t token = 0;
  uint8_t* data = nullptr;
  uint64_t size = 0;
  uint64_t ttl_ms = 0;  // from commit; 0 = never expires
  bool write_through = false;
  bool durable = false;
  bool forward = false;  // send to the remote tier once committed
};

struct View {
  const uint8_t* data = nullptr;
  uint64_t size = 0;
  uint64_t id = 0;
};

struct CacheStats {
  uint64_t capacity_bytes = 0, used_bytes = 0, blocks = 0, pending = 0, pins = 0, namespaces = 0;
  uint64_t hits = 0, misses = 0, misses_by_reason[kMissReasons] = {};
  uint64_t stores = 0, store_exists = 0, store_pending = 0, aborts = 0;
  uint64_t reservations_expired = 0, pins_expired = 0, evictions = 0, expirations = 0;
  uint64_t deletes = 0, bytes_stored = 0, bytes_loaded = 0;
  uint64_t promotions = 0, demotions = 0, demotions_dropped = 0;
  uint64_t ssd_capacity_bytes = 0, ssd_used_bytes = 0, ssd_blocks = 0, ssd_hits = 0;
  uint64_t checksum_failures = 0;
};

class Cache {
 public:
  static Result<std::unique_ptr<Cache>> Open(const CacheOptions& options);
  ~Cache();
  Cache(const Cache&) = delete;
  Cache& operator=(const Cache&) = delete;

  const CacheOptions& options() const { return options_; }

  // The namespace of `fields` (created on first open). REQUIRES: the layout
  // is valid.
  Result<NamespaceState*> OpenNamespace(const NamespaceFields& fields);

  // The cache's tenants (loaded at open).
  const TenantRegistry& tenants() const { return tenants_; }
  // Checks a tenant's credential; KVC_ERR_PERMISSION when wrong.
  Result<TenantConfig> Authenticate(const std::string& name, const std::string& credential) const {
    return tenants_.Authenticate(name, credential);
  }
  // Reads the tenants file again and applies it at once (cache_tenants.cc):
  // new tenants authenticate, a deleted one no longer does and its blocks
  // leave the host and SSD tiers, and quotas change in both tiers.
  // KVC_ERR_UNSUPPORTED without a tenants file; on an error the old tenants
  // stay.
  Status ReloadTenants();

  // Leading blocks of `keys` present with every shard; `tiers` (may be null)
  // gets the holding tier of each matched block (kvc_tier values).
  size_t Match(NamespaceState& ns, std::span<const BlockKey> keys, uint8_t* tiers, uint32_t tenant = 0);

  // Two-phase store; see kvc_store_begin. On OK `out` is filled.
  Status BeginStore(NamespaceState& ns, const BlockKey& key, uint32_t shard,
                    const StoreParams& params, Reservation* out);
  // Publishes the reservation's bytes. Consumes `r` whatever the outcome.
  Status Commit(Reservation& r);
  // Drops the reservation. Consumes `r`.
  void Abort(Reservation& r);
  // Waits for a pending (key, shard) to resolve.
  Status WaitPending(NamespaceState& ns, const BlockKey& key, uint32_t shard, uint32_t timeout_ms);

  // Copies a block shard into `dst` (exactly shard_bytes).
  Status Load(NamespaceState& ns, const BlockKey& key, uint32_t shard, void* dst, uint32_t tenant = 0);
  // Loads keys[i] into dsts[i] (each exactly shard_bytes); out[i] is what
  // Load would have returned for it, and the counters move as n Loads move
  // them. Each key is looked up on the local tiers first; the keys they miss
  // are fetched from the remote tier together (one RemoteTier::GetBatch per
  // 1024 keys or 8 MiB of blocks, each request's blocks promoted before the
  // next) and promoted as Load promotes them; a key given again is loaded
  // after them, as Load (a local hit once promoted). Namespaces whose blocks
  // are over kRemoteBatchMaxBlockBytes are loaded key by key (cache.cc).
  // REQUIRES: dsts.size() == keys.size() == out.size().
  static constexpr uint64_t kRemoteBatchMaxBlockBytes = 256 << 10;
  void LoadBatch(NamespaceState& ns, std::span<const BlockKey> keys, uint32_t shard, std::span<void* const> dsts,
                 uint32_t tenant, std::span<Status> out);
  Status AcquireView(NamespaceState& ns, const BlockKey& key, uint32_t shard,
                     uint32_t pin_timeout_ms, View* out, uint32_t tenant = 0);
  Status ReleaseView(uint64_t id);
  // Removes every shard of `key` (from the remote tier too, as `tenant`);
  // pending reservations of it are cancelled.
  Status Delete(NamespaceState& ns, const BlockKey& key, uint32_t tenant = 0);
  // Makes older blocks invisible; forwarded to the remote tier as `tenant`.
  uint64_t BumpRevision(NamespaceState& ns, uint32_t tenant = 0);
  // Bumps every namespace opened in this cache (through any door: the
  // C API, the node's gRPC service, the same-host path), so that no block
  // stored before is served again. A cluster node that lost its lease calls
  // it: it may have missed deletes and revision bumps meanwhile.
  void BumpAllRevisions();
  // A committed host block, as ForEachHostBlock yields it.
  struct HostBlock {
    NamespaceState* ns = nullptr;
    BlockKey key;
    uint32_t shard = 0;
    uint32_t tenant = 0;
    uint64_t size = 0;
    int64_t ttl_left_ms = 0;  // 0: never expires
  };
  // The committed, unexpired host blocks of the namespaces' current epochs
  // (no pending or doomed ones), collected under the tier lock and then
  // passed to `fn` outside it, hottest first in the host policy's order
  // (EvictionPolicy::HottestFirst). A block may be gone by the time `fn`
  // reads it.
  void ForEachHostBlock(const std::function<void(const HostBlock&)>& fn);
  // What ForEachSsdOnlyBlock left out.
  struct SsdOnlySkips {
    uint64_t on_host = 0;            // also on the host tier (ForEachHostBlock has it)
    uint64_t unknown_namespace = 0;  // of a namespace not opened here since the start
    uint64_t stale = 0;              // of an older epoch of its namespace
  };
  // The unexpired blocks held only by the SSD tier, hottest first in the SSD
  // policy's order, as HostBlocks (size: the shard's length). The SSD index
  // keeps a namespace's seed, not its fields, so only blocks of namespaces
  // opened in this cache (since it started) can be named; the others are
  // counted in skips->unknown_namespace. Read one with ReadSsdBlock. No-op
  // without an SSD tier. `skips` may be null.
  void ForEachSsdOnlyBlock(const std::function<void(const HostBlock&)>& fn, SsdOnlySkips* skips = nullptr);
  // Copies an SSD block ForEachSsdOnlyBlock yielded into *out, without
  // promoting it or telling the SSD policy. KVC_ERR_NOT_FOUND when it is gone
  // (or no SSD tier), else as SsdTier::Read.
  Status ReadSsdBlock(const HostBlock& b, std::vector<uint8_t>* out);
  // Makes every block owed to the SSD tier (write-back demotions, earlier
  // write-through stores) durable. OK without an SSD tier.
  Status Flush();
  SsdTier* ssd() { return ssd_.get(); }
  // The host tier's arena: View::data and Reservation::data point into it;
  // fd() is its memfd when CacheOptions::shared_arena.
  const HostArena& host_arena() const { return tier_->arena(); }
  RemoteTier* remote() { return remote_.get(); }
  // The remote tier's identity for local tenant `tenant` (the namespace's
  // tenant name and plaintext credential). No-op without a remote tier.
  void SetRemoteIdentity(uint32_t tenant, const std::string& name, const std::string& credential);

  CacheStats Stats();
  nlohmann::json StatsJson();

  // Runs one maintenance pass now (tests): expired reservations and pins,
  // stale and expired blocks. Passes are serialized: a pass the maintenance
  // thread has begun (e.g. woken by a revision bump) ends before this one
  // starts, so what it swept is gone when this returns.
  void RunMaintenance();

 private:
  explicit Cache(const CacheOptions& options);
  enum class Found { kHit, kAbsent, kPending, kStale, kExpired };
  Found Classify(NamespaceState& ns, const Entry& e, int64_t now) const;
  // Takes `eid` out of its stripe's map (REQUIRES: stripe locked). Returns
  // true when the caller must FreeEntry it after unlocking the stripe.
  bool UnlinkLocked(ShardedIndex::Stripe& s, const BlockId& bid, EntryId eid, EntryState to,
                    HostTier::Gone why = HostTier::kGoneNone);
  void FreeEntry(EntryId eid);
  // Pins a visible host block; on a miss, NotFound with the reason in *why
  // (not counted: the caller counts once, after trying lower tiers).
  Status Pin(NamespaceState& ns, const BlockKey& key, uint32_t shard, EntryId* out, Miss* why);
  // The SSD tier part of the chain (cache_ssd.cc).
  SsdBlockId SsdIdOf(const NamespaceState& ns, const BlockKey& key, uint32_t shard) const;
  // Whether the SSD tier holds a visible copy; its metadata in *meta (may be null).
  bool SsdHas(NamespaceState& ns, const BlockKey& key, uint32_t shard, Miss* why, SsdMeta* meta = nullptr);
  Status LoadFromSsd(NamespaceState& ns, const BlockKey& key, uint32_t shard, void* dst, Miss* why);
  void Promote(NamespaceState& ns, const BlockKey& key, uint32_t shard, const void* data, const SsdMeta& meta);
  bool PromoteForView(NamespaceState& ns, const BlockKey& key, uint32_t shard, Miss* why);
  Status WriteThrough(const Reservation& r, const Entry& e, uint64_t checksum);
  void Demote(const Entry& e, const uint8_t* data);
  // The remote tier part of the chain (cache_remote.cc).
  Status LoadFromRemote(NamespaceState& ns, const BlockKey& key, uint32_t shard, void* dst, uint32_t tenant,
                        Miss* why);
  bool PromoteFromRemote(NamespaceState& ns, const BlockKey& key, uint32_t shard, uint32_t tenant, Miss* why);
  // LoadFromRemote for many local misses: items[i].status becomes Ok or
  // NotFound (with why[i] set), each found block promoted.
  void LoadManyFromRemote(NamespaceState& ns, uint32_t shard, uint32_t tenant, std::span<RemoteGetItem> items,
                          Miss* why);
  // Copies a block the remote tier just wrote into `dst` into host DRAM
  // (options_.promote_on_hit).
  void PromoteLoaded(NamespaceState& ns, const BlockKey& key, uint32_t shard, const void* dst, uint32_t tenant);
  // Load's lookup on the host and SSD tiers, not counted.
  Status LoadLocal(NamespaceState& ns, const BlockKey& key, uint32_t shard, void* dst, Miss* why);
  // Counts a load's outcome `s` (a hit, or a miss for reason `why`); what Load returns.
  Status CountLoad(NamespaceState& ns, const Status& s, const BlockKey& key, uint32_t tenant, Miss why);
  // Blocks of keys[from..] on the node; marks them in `tiers`. *why becomes
  // kNodeDown when the node could not answer.
  size_t MatchRemote(NamespaceState& ns, std::span<const BlockKey> keys, size_t from, uint8_t* tiers,
                     uint32_t tenant, Miss* why);
  nlohmann::json RemoteStatsJson();
  NamespaceState* NamespaceAt(uint32_t index);
  void Unpin(EntryId eid);
  void CountMiss(Miss m, const BlockKey& key, uint32_t tenant);
  void CountHits(uint32_t tenant, uint64_t n);
  Miss MissOf(Found f, const BlockKey& key) const;
  void NotifyWaiters();
  void MaintenanceLoop();
  void SweepStripes(int64_t now);
  // Removes the host blocks of deleted tenants (cache_tenants.cc).
  void DropTenantBlocks(const std::vector<bool>& dead);

  CacheOptions options_;
  TenantRegistry tenants_;
  ShardedIndex index_;
  std::unique_ptr<HostTier> tier_;
  std::unique_ptr<SsdTier> ssd_;
  std::unique_ptr<Demoter> demoter_;
  std::unique_ptr<RemoteTier> remote_;

  std::mutex ns_mu_;
  std::map<std::string, std::unique_ptr<NamespaceState>> namespaces_;  // GUARDED_BY(ns_mu_)
  std::vector<NamespaceState*> ns_by_index_;                          // GUARDED_BY(ns_mu_)

  std::atomic<uint64_t> next_token_{1};

  struct PinRecord { EntryId entry; int64_t deadline; };
  std::mutex views_mu_;
  std::unordered_map<uint64_t, PinRecord> views_;  // GUARDED_BY(views_mu_)

  struct PendingRecord { BlockId bid; uint64_t token; int64_t deadline; };
  std::mutex pending_mu_;
  std::unordered_map<EntryId, PendingRecord> pending_;  // GUARDED_BY(pending_mu_)

  std::mutex wait_mu_;
  std::condition_variable wait_cv_;
  uint64_t wait_seq_ = 0;  // GUARDED_BY(wait_mu_)
  std::atomic<int> waiters_{0};

  std::atomic<bool> sweep_needed_{false};
  std::mutex maint_pass_mu_;  // one maintenance pass at a time (RunMaintenance)
  std::atomic<int64_t> next_expiry_{INT64_MAX};
  std::mutex maint_mu_;
  std::condition_variable maint_cv_;
  bool stopping_ = false;  // GUARDED_BY(maint_mu_)
  std::thread maintenance_;

  struct Counters {
    std::atomic<uint64_t> hits{0}, misses[kMissReasons]{}, stores{0}, store_exists{0},
        store_pending{0}, aborts{0}, reservations_expired{0}, pins_expired{0}, expirations{0},
        deletes{0}, bytes_stored{0}, bytes_loaded{0}, promotions{0}, ssd_hits{0}, remote_promotions{0};
  } c_;
  static constexpr uint32_t kMaxTenants = 4096;
  std::unique_ptr<std::atomic<uint64_t>[]> tenant_hits_, tenant_misses_;
};

int64_t NowMs();

}  // namespace kvc

#endif  // KVC_CORE_CACHE_H_
