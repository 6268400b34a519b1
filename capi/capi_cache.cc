// The C shim over kvc::Cache: handles, options, store/load/match/view/delete,
// revisions and stats. Each handle struct is one pointer deep plus the state
// the ABI promises (closed flag, per-handle defaults).
#include <cstddef>
#include <cstring>
#include <deque>
#include <mutex>
#include <vector>

#include "capi_convert.h"
#include "capi_internal.h"
#include "core/cache.h"
#if defined(KVC_NODE)
#include "net/remote_tier.h"
#endif

struct kvc_namespace;

struct kvc_cache {
  std::atomic<bool> closed{false};
  std::unique_ptr<kvc::Cache> rep;
  std::mutex mu;
  std::vector<kvc_namespace*> open_namespaces;  // GUARDED_BY(mu)
};

struct kvc_namespace {
  std::atomic<bool> closed{false};
  kvc_cache* cache = nullptr;
  kvc::NamespaceState* rep = nullptr;
  uint64_t default_ttl_ms = 0;
  uint32_t tenant = 0;  // 0: none
  bool write_through = false;
};

struct kvc_reservation {
  kvc_cache* cache = nullptr;
  kvc::Reservation r;
  // Arena memory is reused: a reservation's buffer holds some earlier
  // block's bytes (maybe another tenant's) until written. It is zeroed when
  // handed out, and a commit with nothing written is refused.
  bool written = false;
};

namespace kvc::capi {
namespace {

// Closed handles are kept (as tombstones) so that using one returns
// KVC_ERR_CLOSED; the oldest are freed past kGraveyardSize per type.
constexpr size_t kGraveyardSize = 65536;

template <class T>
void Bury(T* handle) {
  // Never destroyed, so the tombstones stay reachable (no leak report) and
  // valid until the process ends.
  static auto* mu = new std::mutex;
  static auto* graves = new std::deque<T*>;
  std::lock_guard<std::mutex> lk(*mu);
  graves->push_back(handle);
  if (graves->size() > kGraveyardSize) {
    delete graves->front();
    graves->pop_front();
  }
}

// Whether a caller's options struct of `struct_size` bytes holds `field`.
#define KVC_HAS(opts, type, field) \
  ((opts)->struct_size >= offsetof(type, field) + sizeof((opts)->field))

template <class T>
Status CheckStructSize(const T* opts, const char* name) {
  if (opts->struct_size < sizeof(uint32_t)) {
    return InvalidArgument(std::string(name) + ".struct_size is " + std::to_string(opts->struct_size) +
                           ": initialise it with the _INIT macro");
  }
  if (opts->struct_size > sizeof(T)) {
    return InvalidArgument(std::string(name) + ".struct_size " + std::to_string(opts->struct_size) +
                           " is larger than this library's " + std::to_string(sizeof(T)) +
                           ": the caller was built against a newer kvc.h");
  }
  return Status::Ok();
}

Status Live(kvc_cache* c) {
  KVC_REQUIRE_ARG(c, "cache");
  if (c->closed.load(std::memory_order_acquire)) return Status(Code::kClosed, "the cache is closed");
  return Status::Ok();
}

Status Live(kvc_namespace* ns) {
  KVC_REQUIRE_ARG(ns, "namespace");
  if (ns->closed.load(std::memory_order_acquire)) return Status(Code::kClosed, "the namespace is closed");
  if (ns->cache->closed.load(std::memory_order_acquire))
    return Status(Code::kClosed, "the namespace's cache is closed");
  return Status::Ok();
}

const BlockKey& AsKey(const kvc_key* k) { return *reinterpret_cast<const BlockKey*>(k); }
const BlockKey* AsKeys(const kvc_key* k) { return reinterpret_cast<const BlockKey*>(k); }
static_assert(sizeof(kvc_key) == sizeof(BlockKey));

// A host buffer of exactly `want` bytes.
Status CheckBuf(const kvc_buf* b, uint64_t want, const char* name) {
  KVC_REQUIRE_ARG(b, name);
  if (b->mem != KVC_MEM_HOST) {
    if (b->mem == KVC_MEM_CUDA_DEVICE)
      return Status(Code::kUnsupported, std::string(name) + " is CUDA device memory: this build has no GPU tier");
    return InvalidArgument(std::string(name) + ".mem is " + std::to_string(b->mem) + ", not a kvc_mem_kind");
  }
  if (b->data == nullptr) return InvalidArgument(std::string(name) + ".data is NULL");
  if (b->len != want) {
    return Status(Code::kLayout, std::string(name) + ".len is " + std::to_string(b->len) +
                                     " bytes but a block shard of this namespace is " +
                                     std::to_string(want) + " bytes");
  }
  return Status::Ok();
}

StoreParams ParamsOf(kvc_namespace* ns, const kvc_store_options* o, Status* st) {
  StoreParams p;
  p.ttl_ms = ns->default_ttl_ms;
  p.tenant = ns->tenant;
  p.write_through = ns->write_through;
  if (o == nullptr) return p;
  *st = CheckStructSize(o, "kvc_store_options");
  if (!st->ok()) return p;
  if (KVC_HAS(o, kvc_store_options, ttl_ms) && o->ttl_ms) p.ttl_ms = o->ttl_ms;
  if (KVC_HAS(o, kvc_store_options, reservation_timeout_ms))
    p.reservation_timeout_ms = o->reservation_timeout_ms;
  if (KVC_HAS(o, kvc_store_options, parent) && o->parent) p.parent = &AsKey(o->parent);
  if (KVC_HAS(o, kvc_store_options, durable)) {
    if (o->durable > 1) {
      *st = InvalidArgument("kvc_store_options.durable must be 0 or 1");
      return p;
    }
    p.durable = o->durable == 1;
  }
  return p;
}

// At least one full block of tokens, and room for its keys.
Status CheckTokens(const NamespaceState& ns, size_t n_tokens, size_t keys_cap) {
  const uint32_t bt = ns.fields.layout.block_tokens;
  if (n_tokens < bt) {
    return InvalidArgument("need at least one block of " + std::to_string(bt) + " tokens, got " +
                           std::to_string(n_tokens));
  }
  if (keys_cap < n_tokens / bt) {
    return InvalidArgument("keys_cap " + std::to_string(keys_cap) + " is too small for " +
                           std::to_string(n_tokens / bt) + " blocks");
  }
  return Status::Ok();
}

Status StoreOne(kvc_namespace* ns, const BlockKey& key, uint32_t shard, const kvc_buf* src,
                const StoreParams& p) {
  Reservation r;
  KVC_RETURN_IF_ERROR(ns->cache->rep->BeginStore(*ns->rep, key, shard, p, &r));
  std::memcpy(r.data, src->data, r.size);
  return ns->cache->rep->Commit(r);
}

}  // namespace
}  // namespace kvc::capi

using namespace kvc;
using namespace kvc::capi;

namespace kvc::capi {

Result<CacheOptions> CacheOptionsFromC(const kvc_cache_options* opts) {
  CacheOptions o;
  if (opts == nullptr) return o;
  KVC_RETURN_IF_ERROR(CheckStructSize(opts, "kvc_cache_options"));
  if (KVC_HAS(opts, kvc_cache_options, host_capacity_bytes) && opts->host_capacity_bytes)
    o.host_capacity_bytes = opts->host_capacity_bytes;
  if (KVC_HAS(opts, kvc_cache_options, host_policy) && opts->host_policy) o.host_policy = opts->host_policy;
  if (KVC_HAS(opts, kvc_cache_options, index_shards) && opts->index_shards) o.index_shards = opts->index_shards;
  if (KVC_HAS(opts, kvc_cache_options, prefault) && opts->prefault) {
    if (opts->prefault > 2) return InvalidArgument("prefault must be 0, 1 or 2");
    o.prefault = opts->prefault == 1;
  }
  if (KVC_HAS(opts, kvc_cache_options, reservation_timeout_ms) && opts->reservation_timeout_ms)
    o.reservation_timeout_ms = opts->reservation_timeout_ms;
  if (KVC_HAS(opts, kvc_cache_options, pin_timeout_ms) && opts->pin_timeout_ms)
    o.pin_timeout_ms = opts->pin_timeout_ms;
  if (KVC_HAS(opts, kvc_cache_options, maintenance_interval_ms) && opts->maintenance_interval_ms)
    o.maintenance_interval_ms = opts->maintenance_interval_ms;
  if (KVC_HAS(opts, kvc_cache_options, tenants_path) && opts->tenants_path) o.tenants_path = opts->tenants_path;
  if (KVC_HAS(opts, kvc_cache_options, ssd_dir) && opts->ssd_dir) {
    o.ssd_dir = opts->ssd_dir;
    if (!KVC_HAS(opts, kvc_cache_options, ssd_capacity_bytes) || opts->ssd_capacity_bytes == 0)
      return InvalidArgument("ssd_capacity_bytes is required with ssd_dir");
    o.ssd_capacity_bytes = opts->ssd_capacity_bytes;
  }
  if (KVC_HAS(opts, kvc_cache_options, ssd_policy) && opts->ssd_policy) o.ssd_policy = opts->ssd_policy;
  if (KVC_HAS(opts, kvc_cache_options, remote_address) && opts->remote_address) {
    o.remote_address = opts->remote_address;
    if (o.remote_address.empty()) return InvalidArgument("remote_address is empty; NULL means no remote tier");
#if defined(KVC_NODE)
    o.remote_factory = net::NewRemoteTier;
#else
    return Status(Code::kUnsupported, "remote_address '" + o.remote_address +
                                          "': this libkvc was built without gRPC, so it has no remote tier");
#endif
  }
  if (KVC_HAS(opts, kvc_cache_options, remote_tenant) && opts->remote_tenant) o.remote_tenant = opts->remote_tenant;
  if (KVC_HAS(opts, kvc_cache_options, remote_credential) && opts->remote_credential)
    o.remote_credential = opts->remote_credential;
  if (KVC_HAS(opts, kvc_cache_options, remote_timeout_ms) && opts->remote_timeout_ms)
    o.remote_timeout_ms = opts->remote_timeout_ms;
  if (KVC_HAS(opts, kvc_cache_options, remote_tls_ca_path) && opts->remote_tls_ca_path)
    o.remote_tls_ca_path = opts->remote_tls_ca_path;
  if (o.remote_address.empty() && (!o.remote_tenant.empty() || !o.remote_credential.empty() ||
                                   !o.remote_tls_ca_path.empty()))
    return InvalidArgument("remote_tenant, remote_credential and remote_tls_ca_path need remote_address");
  if (!o.remote_credential.empty() && o.remote_tenant.empty())
    return InvalidArgument("remote_credential is set but remote_tenant is not");
  return o;
}

}  // namespace kvc::capi

KVC_EXPORT int kvc_cache_open(kvc_cache** out, const kvc_cache_options* opts, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_REQUIRE_ARG(out, "out");
    *out = nullptr;
    auto o = CacheOptionsFromC(opts);
    if (!o.ok()) return o.status();
    auto cache = Cache::Open(*o);
    if (!cache.ok()) return cache.status();
    auto* h = new kvc_cache;
    h->rep = std::move(cache).value();
    *out = h;
    return Status::Ok();
  });
}

KVC_EXPORT int kvc_cache_close(kvc_cache* cache) {
  return Guard(nullptr, [&]() -> Status {
    if (cache == nullptr) return Status::Ok();
    if (cache->closed.exchange(true)) return Status(Code::kClosed, "the cache is already closed");
    std::vector<kvc_namespace*> nss;
    {
      std::lock_guard<std::mutex> lk(cache->mu);
      nss.swap(cache->open_namespaces);
    }
    for (auto* ns : nss) {
      ns->closed.store(true);
      Bury(ns);
    }
    cache->rep.reset();
    Bury(cache);
    return Status::Ok();
  });
}

KVC_EXPORT int kvc_namespace_open(kvc_namespace** out, kvc_cache* cache,
                                  const kvc_namespace_options* opts, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_REQUIRE_ARG(out, "out");
    *out = nullptr;
    KVC_RETURN_IF_ERROR(Live(cache));
    KVC_REQUIRE_ARG(opts, "options");
    auto fields = FieldsFromOptions(opts);
    if (!fields.ok()) return fields.status();
    bool write_through = false;
    if (KVC_HAS(opts, kvc_namespace_options, write_mode)) {
      if (opts->write_mode > KVC_WRITE_THROUGH) {
        return InvalidArgument("write_mode must be KVC_WRITE_BACK (0) or KVC_WRITE_THROUGH (1), not " +
                               std::to_string(opts->write_mode));
      }
      write_through = opts->write_mode == KVC_WRITE_THROUGH;
    }
    uint32_t tenant_id = 0;
    const char* tenant = KVC_HAS(opts, kvc_namespace_options, tenant) ? opts->tenant : nullptr;
    const char* credential = KVC_HAS(opts, kvc_namespace_options, credential) ? opts->credential : nullptr;
    if (tenant != nullptr) {
      auto t = cache->rep->Authenticate(tenant, credential ? credential : "");
      if (!t.ok()) return t.status();
      if (t->isolation == Isolation::kIsolated) {
        if (!fields->salt.empty())
          return InvalidArgument("salt must be empty for an isolated tenant: its salt comes from the tenant's configuration");
        fields->salt = t->salt;
      }
      tenant_id = t->id;
      // The remote tier makes this tenant's requests with its credential.
      cache->rep->SetRemoteIdentity(tenant_id, tenant, credential ? credential : "");
    } else if (!cache->rep->tenants().tenants().empty()) {
      return Status(Code::kPermission, "this cache has tenants: open the namespace as a tenant with its credential");
    }
    auto st = cache->rep->OpenNamespace(*fields);
    if (!st.ok()) return st.status();
    auto* h = new kvc_namespace;
    h->cache = cache;
    h->rep = *st;
    h->tenant = tenant_id;
    h->write_through = write_through;
    if (KVC_HAS(opts, kvc_namespace_options, default_ttl_ms)) h->default_ttl_ms = opts->default_ttl_ms;
    {
      std::lock_guard<std::mutex> lk(cache->mu);
      cache->open_namespaces.push_back(h);
    }
    *out = h;
    return Status::Ok();
  });
}

KVC_EXPORT int kvc_namespace_close(kvc_namespace* ns) {
  return Guard(nullptr, [&]() -> Status {
    if (ns == nullptr) return Status::Ok();
    if (ns->closed.exchange(true)) return Status(Code::kClosed, "the namespace is already closed");
    {
      std::lock_guard<std::mutex> lk(ns->cache->mu);
      auto& v = ns->cache->open_namespaces;
      v.erase(std::remove(v.begin(), v.end(), ns), v.end());
    }
    Bury(ns);
    return Status::Ok();
  });
}

KVC_EXPORT int kvc_namespace_info_get(kvc_namespace* ns, kvc_namespace_info* out, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_RETURN_IF_ERROR(Live(ns));
    KVC_REQUIRE_ARG(out, "out");
    KVC_RETURN_IF_ERROR(CheckStructSize(out, "kvc_namespace_info"));
    kvc_namespace_info info = KVC_NAMESPACE_INFO_INIT;
    std::memcpy(info.seed.bytes, ns->rep->hasher.seed().bytes.data(), KVC_KEY_BYTES);
    info.block_bytes = ns->rep->block_bytes;
    info.shard_bytes = ns->rep->shard_bytes;
    info.block_tokens = ns->rep->fields.layout.block_tokens;
    info.shards = ns->rep->shards;
    info.epoch = ns->rep->epoch.load();
    const uint32_t n = out->struct_size;
    std::memcpy(out, &info, n);
    out->struct_size = n;
    return Status::Ok();
  });
}

KVC_EXPORT int kvc_namespace_bump_revision(kvc_namespace* ns, uint64_t* out_epoch, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_RETURN_IF_ERROR(Live(ns));
    const uint64_t e = ns->cache->rep->BumpRevision(*ns->rep, ns->tenant);
    if (out_epoch) *out_epoch = e;
    return Status::Ok();
  });
}

KVC_EXPORT int kvc_keys_compute(kvc_namespace* ns, kvc_key* out_keys, size_t keys_cap, size_t* out_n,
                                const uint32_t* tokens, size_t n_tokens, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_RETURN_IF_ERROR(Live(ns));
    KVC_REQUIRE_ARG(out_keys, "out_keys");
    KVC_REQUIRE_ARG(tokens, "tokens");
    KVC_RETURN_IF_ERROR(CheckTokens(*ns->rep, n_tokens, keys_cap));
    size_t w = ns->rep->hasher.Keys({tokens, n_tokens}, reinterpret_cast<BlockKey*>(out_keys));
    if (out_n) *out_n = w;
    return Status::Ok();
  });
}

KVC_EXPORT int kvc_match(kvc_namespace* ns, size_t* out_blocks, uint8_t* out_tiers, const kvc_key* keys,
                         size_t n_keys, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_RETURN_IF_ERROR(Live(ns));
    KVC_REQUIRE_ARG(out_blocks, "out_blocks");
    *out_blocks = 0;
    if (n_keys == 0) return Status::Ok();
    KVC_REQUIRE_ARG(keys, "keys");
    *out_blocks = ns->cache->rep->Match(*ns->rep, {AsKeys(keys), n_keys}, out_tiers, ns->tenant);
    return Status::Ok();
  });
}

KVC_EXPORT int kvc_match_tokens(kvc_namespace* ns, size_t* out_blocks, uint8_t* out_tiers,
                                kvc_key* out_keys, size_t keys_cap, const uint32_t* tokens,
                                size_t n_tokens, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_RETURN_IF_ERROR(Live(ns));
    KVC_REQUIRE_ARG(out_blocks, "out_blocks");
    *out_blocks = 0;
    KVC_REQUIRE_ARG(tokens, "tokens");
    KVC_RETURN_IF_ERROR(CheckTokens(*ns->rep, n_tokens, out_keys != nullptr ? keys_cap : SIZE_MAX));
    const size_t n = n_tokens / ns->rep->fields.layout.block_tokens;
    BlockKey stack_keys[64];
    std::vector<BlockKey> heap_keys;
    BlockKey* keys;
    if (out_keys != nullptr) {
      keys = reinterpret_cast<BlockKey*>(out_keys);
    } else if (n <= 64) {
      keys = stack_keys;
    } else {
      heap_keys.resize(n);
      keys = heap_keys.data();
    }
    ns->rep->hasher.Keys({tokens, n_tokens}, keys);
    *out_blocks = ns->cache->rep->Match(*ns->rep, {keys, n}, out_tiers, ns->tenant);
    return Status::Ok();
  });
}

KVC_EXPORT int kvc_match_batch(kvc_namespace* ns, size_t* out_blocks, const kvc_key* keys,
                               const size_t* offsets, size_t n_lists, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_RETURN_IF_ERROR(Live(ns));
    if (n_lists == 0) return Status::Ok();
    KVC_REQUIRE_ARG(out_blocks, "out_blocks");
    KVC_REQUIRE_ARG(offsets, "offsets");
    for (size_t i = 0; i < n_lists; ++i) {
      if (offsets[i + 1] < offsets[i])
        return InvalidArgument("offsets must not decrease (offsets[" + std::to_string(i + 1) + "] < offsets[" +
                               std::to_string(i) + "])");
    }
    if (offsets[n_lists] > offsets[0]) KVC_REQUIRE_ARG(keys, "keys");
    for (size_t i = 0; i < n_lists; ++i) {
      out_blocks[i] = ns->cache->rep->Match(
          *ns->rep, {AsKeys(keys) + offsets[i], offsets[i + 1] - offsets[i]}, nullptr, ns->tenant);
    }
    return Status::Ok();
  });
}

KVC_EXPORT int kvc_store_begin(kvc_namespace* ns, kvc_reservation** out, const kvc_key* key,
                               uint32_t shard, const kvc_store_options* opts, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_REQUIRE_ARG(out, "out");
    *out = nullptr;
    KVC_RETURN_IF_ERROR(Live(ns));
    KVC_REQUIRE_ARG(key, "key");
    Status st;
    StoreParams p = ParamsOf(ns, opts, &st);
    KVC_RETURN_IF_ERROR(st);
    Reservation r;
    KVC_RETURN_IF_ERROR(ns->cache->rep->BeginStore(*ns->rep, AsKey(key), shard, p, &r));
    auto* h = new kvc_reservation;
    h->cache = ns->cache;
    h->r = r;
    *out = h;
    return Status::Ok();
  });
}

KVC_EXPORT int kvc_reservation_buffer(kvc_reservation* res, kvc_buf* out, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_REQUIRE_ARG(res, "reservation");
    KVC_REQUIRE_ARG(out, "out");
    KVC_RETURN_IF_ERROR(Live(res->cache));
    if (!res->written) std::memset(res->r.data, 0, res->r.size);
    res->written = true;
    *out = kvc_buf{res->r.data, static_cast<size_t>(res->r.size), KVC_MEM_HOST, 0};
    return Status::Ok();
  });
}

KVC_EXPORT int kvc_reservation_write(kvc_reservation* res, const kvc_buf* src, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_REQUIRE_ARG(res, "reservation");
    KVC_RETURN_IF_ERROR(Live(res->cache));
    KVC_RETURN_IF_ERROR(CheckBuf(src, res->r.size, "src"));
    std::memcpy(res->r.data, src->data, res->r.size);
    res->written = true;
    return Status::Ok();
  });
}

KVC_EXPORT int kvc_store_commit(kvc_reservation* res, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_REQUIRE_ARG(res, "reservation");
    std::unique_ptr<kvc_reservation> owned(res);
    KVC_RETURN_IF_ERROR(Live(res->cache));
    if (!res->written) {
      res->cache->rep->Abort(res->r);
      return InvalidArgument("nothing was written into the reservation (use kvc_reservation_write or "
                             "kvc_reservation_buffer first); it was aborted");
    }
    return res->cache->rep->Commit(res->r);
  });
}

KVC_EXPORT int kvc_store_abort(kvc_reservation* res) {
  return Guard(nullptr, [&]() -> Status {
    if (res == nullptr) return Status::Ok();
    std::unique_ptr<kvc_reservation> owned(res);
    KVC_RETURN_IF_ERROR(Live(res->cache));
    res->cache->rep->Abort(res->r);
    return Status::Ok();
  });
}

KVC_EXPORT int kvc_store(kvc_namespace* ns, const kvc_key* key, uint32_t shard, const kvc_buf* src,
                         const kvc_store_options* opts, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_RETURN_IF_ERROR(Live(ns));
    KVC_REQUIRE_ARG(key, "key");
    KVC_RETURN_IF_ERROR(CheckBuf(src, ns->rep->shard_bytes, "src"));
    Status st;
    StoreParams p = ParamsOf(ns, opts, &st);
    KVC_RETURN_IF_ERROR(st);
    return StoreOne(ns, AsKey(key), shard, src, p);
  });
}

KVC_EXPORT int kvc_store_batch(kvc_namespace* ns, int32_t* out_statuses, const kvc_key* keys, size_t n,
                               uint32_t shard, const kvc_buf* srcs, const kvc_store_options* opts,
                               kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_RETURN_IF_ERROR(Live(ns));
    if (n == 0) return Status::Ok();
    KVC_REQUIRE_ARG(keys, "keys");
    KVC_REQUIRE_ARG(srcs, "srcs");
    for (size_t i = 0; i < n; ++i) {  // validate all before storing any
      Status b = CheckBuf(&srcs[i], ns->rep->shard_bytes, "srcs[i]");
      if (!b.ok()) return Status(b.code(), "block " + std::to_string(i) + ": " + b.message());
    }
    Status st;
    StoreParams base = ParamsOf(ns, opts, &st);
    KVC_RETURN_IF_ERROR(st);
    Status first = Status::Ok();
    for (size_t i = 0; i < n; ++i) {
      StoreParams p = base;
      if (i > 0) p.parent = &AsKey(&keys[i - 1]);
      Status s = StoreOne(ns, AsKey(&keys[i]), shard, &srcs[i], p);
      if (out_statuses) out_statuses[i] = static_cast<int32_t>(s.code());
      const bool fine = s.ok() || s.code() == Code::kExists || s.code() == Code::kPending;
      if (!fine && first.ok()) first = Status(s.code(), "block " + std::to_string(i) + ": " + s.message());
    }
    return first;
  });
}

KVC_EXPORT int kvc_store_wait(kvc_namespace* ns, const kvc_key* key, uint32_t shard, uint32_t timeout_ms,
                              kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_RETURN_IF_ERROR(Live(ns));
    KVC_REQUIRE_ARG(key, "key");
    return ns->cache->rep->WaitPending(*ns->rep, AsKey(key), shard, timeout_ms);
  });
}

KVC_EXPORT int kvc_load(kvc_namespace* ns, const kvc_key* key, uint32_t shard, const kvc_buf* dst,
                        kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_RETURN_IF_ERROR(Live(ns));
    KVC_REQUIRE_ARG(key, "key");
    KVC_RETURN_IF_ERROR(CheckBuf(dst, ns->rep->shard_bytes, "dst"));
    return ns->cache->rep->Load(*ns->rep, AsKey(key), shard, dst->data, ns->tenant);
  });
}

KVC_EXPORT int kvc_load_batch(kvc_namespace* ns, int32_t* out_statuses, size_t* out_loaded,
                              const kvc_key* keys, size_t n, uint32_t shard, const kvc_buf* dsts,
                              kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_RETURN_IF_ERROR(Live(ns));
    if (out_loaded) *out_loaded = 0;
    if (n == 0) return Status::Ok();
    KVC_REQUIRE_ARG(keys, "keys");
    KVC_REQUIRE_ARG(dsts, "dsts");
    for (size_t i = 0; i < n; ++i) {
      Status b = CheckBuf(&dsts[i], ns->rep->shard_bytes, "dsts[i]");
      if (!b.ok()) return Status(b.code(), "block " + std::to_string(i) + ": " + b.message());
    }
    if (shard >= ns->rep->shards) return InvalidArgument("shard " + std::to_string(shard) + " is out of range");
    std::vector<void*> ds(n);
    for (size_t i = 0; i < n; ++i) ds[i] = dsts[i].data;
    std::vector<Status> st(n);
    ns->cache->rep->LoadBatch(*ns->rep, std::span<const BlockKey>(AsKeys(keys), n), shard, ds, ns->tenant, st);
    bool leading = true;
    size_t loaded = 0;
    for (size_t i = 0; i < n; ++i) {
      if (out_statuses) out_statuses[i] = static_cast<int32_t>(st[i].code());
      if (st[i].ok() && leading) ++loaded;
      if (!st[i].ok()) leading = false;
    }
    if (out_loaded) *out_loaded = loaded;
    return Status::Ok();
  });
}

KVC_EXPORT int kvc_view_acquire(kvc_namespace* ns, kvc_view* out, const kvc_key* key, uint32_t shard,
                                uint32_t pin_timeout_ms, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_REQUIRE_ARG(out, "out");
    *out = kvc_view{nullptr, 0, 0};
    KVC_RETURN_IF_ERROR(Live(ns));
    KVC_REQUIRE_ARG(key, "key");
    View v;
    KVC_RETURN_IF_ERROR(ns->cache->rep->AcquireView(*ns->rep, AsKey(key), shard, pin_timeout_ms, &v, ns->tenant));
    *out = kvc_view{v.data, static_cast<size_t>(v.size), v.id};
    return Status::Ok();
  });
}

KVC_EXPORT int kvc_view_release(kvc_namespace* ns, kvc_view* view, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_RETURN_IF_ERROR(Live(ns));
    KVC_REQUIRE_ARG(view, "view");
    if (view->id == 0) return InvalidArgument("view is not held (id 0): already released, or never acquired");
    Status s = ns->cache->rep->ReleaseView(view->id);
    *view = kvc_view{nullptr, 0, 0};
    return s;
  });
}

KVC_EXPORT int kvc_delete(kvc_namespace* ns, const kvc_key* key, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_RETURN_IF_ERROR(Live(ns));
    KVC_REQUIRE_ARG(key, "key");
    return ns->cache->rep->Delete(*ns->rep, AsKey(key), ns->tenant);
  });
}

KVC_EXPORT int kvc_cache_stats(kvc_cache* cache, kvc_stats* out, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_RETURN_IF_ERROR(Live(cache));
    KVC_REQUIRE_ARG(out, "out");
    KVC_RETURN_IF_ERROR(CheckStructSize(out, "kvc_stats"));
    const CacheStats s = cache->rep->Stats();
    kvc_stats r{};
    r.struct_size = sizeof(kvc_stats);
    r.capacity_bytes = s.capacity_bytes;
    r.used_bytes = s.used_bytes;
    r.blocks = s.blocks;
    r.pending = s.pending;
    r.pins = s.pins;
    r.namespaces = s.namespaces;
    r.hits = s.hits;
    r.misses = s.misses;
    for (int i = 0; i < KVC_MISS_REASONS; ++i) r.misses_by_reason[i] = s.misses_by_reason[i];
    r.stores = s.stores;
    r.store_exists = s.store_exists;
    r.store_pending = s.store_pending;
    r.aborts = s.aborts;
    r.reservations_expired = s.reservations_expired;
    r.pins_expired = s.pins_expired;
    r.evictions = s.evictions;
    r.expirations = s.expirations;
    r.deletes = s.deletes;
    r.bytes_stored = s.bytes_stored;
    r.bytes_loaded = s.bytes_loaded;
    r.promotions = s.promotions;
    r.demotions = s.demotions;
    r.demotions_dropped = s.demotions_dropped;
    r.ssd_capacity_bytes = s.ssd_capacity_bytes;
    r.ssd_used_bytes = s.ssd_used_bytes;
    r.ssd_blocks = s.ssd_blocks;
    r.ssd_hits = s.ssd_hits;
    r.checksum_failures = s.checksum_failures;
    const uint32_t n = out->struct_size;
    std::memcpy(out, &r, n);
    out->struct_size = n;
    return Status::Ok();
  });
}

KVC_EXPORT int kvc_cache_stats_json(kvc_cache* cache, char** out, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_REQUIRE_ARG(out, "out");
    *out = nullptr;
    KVC_RETURN_IF_ERROR(Live(cache));
    const std::string s = cache->rep->StatsJson().dump();
    char* p = static_cast<char*>(std::malloc(s.size() + 1));
    if (p == nullptr) return Status(Code::kNoMemory, "out of memory");
    std::memcpy(p, s.c_str(), s.size() + 1);
    *out = p;
    return Status::Ok();
  });
}

KVC_EXPORT int kvc_cache_flush(kvc_cache* cache, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_RETURN_IF_ERROR(Live(cache));
    return cache->rep->Flush();
  });
}
