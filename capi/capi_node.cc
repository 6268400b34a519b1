// The C shim of nodes: kvc_node_server_* over kvc::net::NodeServer and
// kvc_node_* over kvc::net::NodeClient. Without gRPC (KVC_NODE undefined:
// libkvc/net/CMakeLists.txt defines it) every call is KVC_ERR_UNSUPPORTED.
#include <cstddef>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <cstring>
#include <string>
#include <vector>

#include "capi_convert.h"
#include "capi_internal.h"

#if defined(KVC_NODE)
#include "net/node_client.h"
#include "net/node_server.h"

struct kvc_node_server {
  std::unique_ptr<kvc::net::NodeServer> rep;
};

struct kvc_node {
  std::unique_ptr<kvc::net::NodeClient> rep;
};

namespace kvc::capi {
namespace {

#define KVC_NODE_HAS(opts, type, field) \
  ((opts)->struct_size >= offsetof(type, field) + sizeof((opts)->field))

template <class T>
Status CheckSize(const T* o, const char* name) {
  if (o->struct_size < sizeof(uint32_t) || o->struct_size > sizeof(T))
    return InvalidArgument(std::string(name) + ".struct_size is " + std::to_string(o->struct_size) +
                           ": initialise it with the _INIT macro of this kvc.h");
  return Status::Ok();
}

// The namespace as the wire carries it, validated here first.
Result<net::NodeNamespace> NamespaceOf(const kvc_namespace_options* o) {
  KVC_REQUIRE_ARG(o, "ns");
  auto f = FieldsFromOptions(o);
  if (!f.ok()) return f.status();
  if (!f->salt.empty()) return InvalidArgument("ns.salt must be empty: a salt never travels to a node");
  if ((KVC_NODE_HAS(o, kvc_namespace_options, tenant) && o->tenant) ||
      (KVC_NODE_HAS(o, kvc_namespace_options, credential) && o->credential))
    return InvalidArgument("ns.tenant and ns.credential must be NULL: a node connection carries them (kvc_node_options)");
  if (KVC_NODE_HAS(o, kvc_namespace_options, default_ttl_ms) && o->default_ttl_ms != 0)
    return InvalidArgument("ns.default_ttl_ms must be 0: a node does not take it from a request (pass a ttl_ms with each put)");
  if (KVC_NODE_HAS(o, kvc_namespace_options, write_mode) && o->write_mode != KVC_WRITE_BACK)
    return InvalidArgument("ns.write_mode must be unset: the node's own setting (kvc serve --write-mode) decides");
  net::NodeNamespace n;
  n.hash = std::string(HashAlgoName(f->hash));
  n.model = f->model;
  n.revision = f->revision;
  n.adapter = f->adapter;
  n.dtype = f->layout.dtype;
  n.layers = f->layout.layers;
  n.kv_heads = f->layout.kv_heads;
  n.head_dim = f->layout.head_dim;
  n.block_tokens = f->layout.block_tokens;
  n.shards = f->layout.shards;
  return n;
}

// A closed connection is kept (as a tombstone) so that using it returns
// KVC_ERR_CLOSED; the oldest are freed past 65536, as capi_cache.cc does.
// The graveyard is never destroyed, so tombstones stay reachable at exit.
void Bury(kvc_node* n) {
  static std::mutex mu;
  static auto* graves = new std::deque<kvc_node*>;
  std::lock_guard<std::mutex> lk(mu);
  graves->push_back(n);
  if (graves->size() > 65536) {
    delete graves->front();
    graves->pop_front();
  }
}

Status LiveNode(kvc_node* n) {
  KVC_REQUIRE_ARG(n, "node");
  if (!n->rep) return Status(Code::kClosed, "the node connection is closed");
  return Status::Ok();
}

Status HostBuf(const kvc_buf* b, const char* name) {
  if (b->mem != KVC_MEM_HOST) return Status(Code::kUnsupported, std::string(name) + " must be host memory");
  if (b->data == nullptr && b->len) return InvalidArgument(std::string(name) + ".data is NULL");
  return Status::Ok();
}

}  // namespace
}  // namespace kvc::capi

using namespace kvc;
using namespace kvc::capi;

KVC_EXPORT int kvc_node_server_start(kvc_node_server** out, const kvc_node_server_options* opts, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_REQUIRE_ARG(out, "out");
    *out = nullptr;
    net::NodeServerOptions o;
    const kvc_cache_options* cache = nullptr;
    if (opts) {
      KVC_RETURN_IF_ERROR(CheckSize(opts, "kvc_node_server_options"));
      if (KVC_NODE_HAS(opts, kvc_node_server_options, listen) && opts->listen) o.listen = opts->listen;
      if (KVC_NODE_HAS(opts, kvc_node_server_options, cache)) cache = opts->cache;
      if (KVC_NODE_HAS(opts, kvc_node_server_options, write_mode)) {
        if (opts->write_mode > KVC_WRITE_THROUGH)
          return InvalidArgument("write_mode must be KVC_WRITE_BACK (0) or KVC_WRITE_THROUGH (1)");
        o.write_through = opts->write_mode == KVC_WRITE_THROUGH;
      }
      auto str = [](const char* p) { return p ? std::string(p) : std::string(); };
      if (KVC_NODE_HAS(opts, kvc_node_server_options, unix_path)) o.unix_path = str(opts->unix_path);
      if (KVC_NODE_HAS(opts, kvc_node_server_options, tls_cert_path)) o.tls_cert_path = str(opts->tls_cert_path);
      if (KVC_NODE_HAS(opts, kvc_node_server_options, tls_key_path)) o.tls_key_path = str(opts->tls_key_path);
      if (KVC_NODE_HAS(opts, kvc_node_server_options, tls_client_ca_path))
        o.tls_client_ca_path = str(opts->tls_client_ca_path);
      if (KVC_NODE_HAS(opts, kvc_node_server_options, admin_token)) o.admin_token = str(opts->admin_token);
      if (KVC_NODE_HAS(opts, kvc_node_server_options, metrics_listen)) o.metrics_listen = str(opts->metrics_listen);
      if (KVC_NODE_HAS(opts, kvc_node_server_options, cluster)) o.cluster = str(opts->cluster);
      if (KVC_NODE_HAS(opts, kvc_node_server_options, node_id)) o.node_id = str(opts->node_id);
      if (KVC_NODE_HAS(opts, kvc_node_server_options, zone)) o.zone = str(opts->zone);
      if (KVC_NODE_HAS(opts, kvc_node_server_options, advertise)) o.advertise = str(opts->advertise);
      if (KVC_NODE_HAS(opts, kvc_node_server_options, store_idle_timeout_ms))
        o.store_idle_timeout_ms = opts->store_idle_timeout_ms;
      if (KVC_NODE_HAS(opts, kvc_node_server_options, metrics_token)) o.metrics_token = str(opts->metrics_token);
    }
    if (o.tls_cert_path.empty() != o.tls_key_path.empty())
      return InvalidArgument("tls_cert_path and tls_key_path go together: give both or neither");
    if (!o.tls_client_ca_path.empty() && o.tls_cert_path.empty())
      return InvalidArgument("tls_client_ca_path needs tls_cert_path and tls_key_path (client certificates need TLS)");
    auto co = CacheOptionsFromC(cache);
    if (!co.ok()) return co.status();
    o.cache = *co;
    auto s = net::NodeServer::Start(o);
    if (!s.ok()) return s.status();
    *out = new kvc_node_server{std::move(s).value()};
    return Status::Ok();
  });
}

KVC_EXPORT const char* kvc_node_server_address(const kvc_node_server* server) {
  return server ? server->rep->address().c_str() : "";
}

KVC_EXPORT const char* kvc_node_server_metrics_address(const kvc_node_server* server) {
  return server ? server->rep->metrics_address().c_str() : "";
}

KVC_EXPORT int kvc_node_server_stop(kvc_node_server* server, uint32_t grace_ms) {
  return Guard(nullptr, [&]() -> Status {
    if (server == nullptr) return Status::Ok();
    server->rep->Shutdown(grace_ms);
    delete server;
    return Status::Ok();
  });
}

KVC_EXPORT int kvc_node_connect(kvc_node** out, const char* address, const kvc_node_options* opts, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_REQUIRE_ARG(out, "out");
    *out = nullptr;
    KVC_REQUIRE_ARG(address, "address");
    net::NodeClientOptions o;
    if (opts) {
      KVC_RETURN_IF_ERROR(CheckSize(opts, "kvc_node_options"));
      if (KVC_NODE_HAS(opts, kvc_node_options, tenant) && opts->tenant) o.tenant = opts->tenant;
      if (KVC_NODE_HAS(opts, kvc_node_options, credential) && opts->credential) o.credential = opts->credential;
      if (KVC_NODE_HAS(opts, kvc_node_options, connect_timeout_ms) && opts->connect_timeout_ms)
        o.connect_timeout_ms = opts->connect_timeout_ms;
      if (KVC_NODE_HAS(opts, kvc_node_options, timeout_ms) && opts->timeout_ms) o.timeout_ms = opts->timeout_ms;
      auto str = [](const char* p) { return p ? std::string(p) : std::string(); };
      if (KVC_NODE_HAS(opts, kvc_node_options, tls_ca_path)) o.tls_ca_path = str(opts->tls_ca_path);
      if (KVC_NODE_HAS(opts, kvc_node_options, tls_cert_path)) o.tls_cert_path = str(opts->tls_cert_path);
      if (KVC_NODE_HAS(opts, kvc_node_options, tls_key_path)) o.tls_key_path = str(opts->tls_key_path);
      if (KVC_NODE_HAS(opts, kvc_node_options, admin_token)) o.admin_token = str(opts->admin_token);
      if (KVC_NODE_HAS(opts, kvc_node_options, max_retries) && opts->max_retries)
        o.max_retries = opts->max_retries == KVC_NODE_NO_RETRIES ? 0 : opts->max_retries;
    }
    if (o.tls_cert_path.empty() != o.tls_key_path.empty())
      return InvalidArgument("tls_cert_path and tls_key_path go together: give both or neither");
    if (o.tenant.find(':') != std::string::npos) return InvalidArgument("a tenant name has no ':'");
    auto c = net::NodeClient::Connect(address, o);
    if (!c.ok()) return c.status();
    *out = new kvc_node{std::move(c).value()};
    return Status::Ok();
  });
}

KVC_EXPORT int kvc_node_close(kvc_node* node) {
  return Guard(nullptr, [&]() -> Status {
    if (node == nullptr) return Status::Ok();
    if (!node->rep) return Status(Code::kClosed, "the node connection is already closed");
    node->rep.reset();
    Bury(node);
    return Status::Ok();
  });
}

KVC_EXPORT int kvc_node_stats_json(kvc_node* node, char** out, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_REQUIRE_ARG(out, "out");
    *out = nullptr;
    KVC_RETURN_IF_ERROR(LiveNode(node));
    auto j = node->rep->StatsJson();
    if (!j.ok()) return j.status();
    char* p = static_cast<char*>(std::malloc(j->size() + 1));
    if (p == nullptr) return Status(Code::kNoMemory, "out of memory");
    std::memcpy(p, j->c_str(), j->size() + 1);
    *out = p;
    return Status::Ok();
  });
}

KVC_EXPORT int kvc_node_match(kvc_node* node, size_t* out_blocks, uint8_t* out_tiers, const kvc_namespace_options* ns,
                              const kvc_key* keys, size_t n_keys, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_REQUIRE_ARG(out_blocks, "out_blocks");
    *out_blocks = 0;
    KVC_RETURN_IF_ERROR(LiveNode(node));
    auto n = NamespaceOf(ns);
    if (!n.ok()) return n.status();
    if (n_keys) KVC_REQUIRE_ARG(keys, "keys");
    std::vector<BlockKey> ks(n_keys);
    for (size_t i = 0; i < n_keys; i++) ks[i] = FromC(keys[i]);
    std::vector<uint8_t> tiers;
    auto m = node->rep->Match(*n, ks, &tiers);
    if (!m.ok()) return m.status();
    *out_blocks = *m;
    if (out_tiers) std::memcpy(out_tiers, tiers.data(), tiers.size());
    return Status::Ok();
  });
}

KVC_EXPORT int kvc_node_match_tokens(kvc_node* node, size_t* out_blocks, uint8_t* out_tiers, kvc_key* out_keys,
                                     size_t keys_cap, const kvc_namespace_options* ns, const uint32_t* tokens,
                                     size_t n_tokens, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_REQUIRE_ARG(out_blocks, "out_blocks");
    *out_blocks = 0;
    KVC_RETURN_IF_ERROR(LiveNode(node));
    auto n = NamespaceOf(ns);
    if (!n.ok()) return n.status();
    KVC_REQUIRE_ARG(tokens, "tokens");
    if (n_tokens < n->block_tokens)
      return InvalidArgument("need at least one block of " + std::to_string(n->block_tokens) + " tokens, got " +
                             std::to_string(n_tokens));
    const size_t want = n_tokens / n->block_tokens;
    if (out_keys && keys_cap < want)
      return InvalidArgument("keys_cap " + std::to_string(keys_cap) + " is too small for " + std::to_string(want) +
                             " blocks");
    std::vector<uint8_t> tiers;
    std::vector<BlockKey> keys;
    auto m = node->rep->MatchTokens(*n, std::vector<uint32_t>(tokens, tokens + n_tokens), &tiers, &keys);
    if (!m.ok()) return m.status();
    if (keys.size() != want) return Status(Code::kInternal, "the node hashed a different number of blocks");
    *out_blocks = *m;
    if (out_tiers) std::memcpy(out_tiers, tiers.data(), tiers.size());
    if (out_keys)
      for (size_t i = 0; i < keys.size(); i++) out_keys[i] = ToC(keys[i]);
    return Status::Ok();
  });
}

KVC_EXPORT int kvc_node_get(kvc_node* node, size_t* out_len, const kvc_namespace_options* ns, const kvc_key* key,
                            uint32_t shard, const kvc_buf* dst, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_REQUIRE_ARG(out_len, "out_len");
    *out_len = 0;
    KVC_RETURN_IF_ERROR(LiveNode(node));
    auto n = NamespaceOf(ns);
    if (!n.ok()) return n.status();
    KVC_REQUIRE_ARG(key, "key");
    if (dst) KVC_RETURN_IF_ERROR(HostBuf(dst, "dst"));
    uint64_t size = 0;
    Status st = node->rep->Get(*n, FromC(*key), shard, dst ? dst->data : nullptr, dst ? dst->len : 0, &size);
    if (st.ok() || st.code() == Code::kLayout) *out_len = size;
    return st;
  });
}

KVC_EXPORT int kvc_node_put(kvc_node* node, const kvc_namespace_options* ns, const kvc_key* key, uint32_t shard,
                            const kvc_buf* src, const kvc_store_options* opts, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_RETURN_IF_ERROR(LiveNode(node));
    auto n = NamespaceOf(ns);
    if (!n.ok()) return n.status();
    KVC_REQUIRE_ARG(key, "key");
    KVC_REQUIRE_ARG(src, "src");
    KVC_RETURN_IF_ERROR(HostBuf(src, "src"));
    uint64_t ttl = 0;
    BlockKey parent;
    const BlockKey* pp = nullptr;
    if (opts) {
      KVC_RETURN_IF_ERROR(CheckSize(opts, "kvc_store_options"));
      if (KVC_NODE_HAS(opts, kvc_store_options, ttl_ms)) ttl = opts->ttl_ms;
      if (KVC_NODE_HAS(opts, kvc_store_options, parent) && opts->parent) {
        parent = FromC(*opts->parent);
        pp = &parent;
      }
    }
    return node->rep->Put(*n, FromC(*key), shard, src->data, src->len, ttl, pp);
  });
}

namespace kvc::capi {
namespace {

// A batch's namespace, checked with the call's other arguments before
// anything is sent.
struct Batch {
  net::NodeNamespace ns;
  uint64_t shard_bytes = 0;
};

Result<Batch> CheckBatch(kvc_node* node, const kvc_namespace_options* ns, uint32_t shard,
                         const kvc_node_item* items, size_t n) {
  KVC_RETURN_IF_ERROR(LiveNode(node));
  if (n > KVC_NODE_MAX_BATCH)
    return InvalidArgument("a batch of " + std::to_string(n) + " items: at most KVC_NODE_MAX_BATCH (" +
                           std::to_string(KVC_NODE_MAX_BATCH) + ") a call");
  if (n > 0 && items == nullptr) return InvalidArgument("items is NULL with n = " + std::to_string(n));
  auto nsr = NamespaceOf(ns);
  if (!nsr.ok()) return nsr.status();
  Batch b;
  b.ns = std::move(*nsr);
  b.shard_bytes = FieldsFromOptions(ns)->layout.ShardBytes();  // valid: NamespaceOf read it
  if (shard >= b.ns.shards)
    return InvalidArgument("shard " + std::to_string(shard) + " of a namespace of " + std::to_string(b.ns.shards) +
                           " shard(s)");
  for (size_t i = 0; i < n; ++i) {
    const std::string name = "items[" + std::to_string(i) + "].buf";
    if (items[i].buf.mem != KVC_MEM_HOST)
      return InvalidArgument(name + " must be host memory (a batch moves host buffers)");
    if (items[i].buf.data == nullptr && items[i].buf.len != 0)
      return InvalidArgument(name + ".data is NULL with len " + std::to_string(items[i].buf.len));
  }
  return b;
}

// The call's refusal, given to every item (kvc.h: an item the node did not
// answer carries the call's failure), with len 0 for a get (a put's len is
// the caller's). Items past KVC_NODE_MAX_BATCH, or none at all, are not
// touched.
Status Refuse(kvc_node_item* items, size_t n, Status why, bool get) {
  if (items != nullptr && n <= KVC_NODE_MAX_BATCH)
    for (size_t i = 0; i < n; ++i) {
      if (get) items[i].len = 0;
      items[i].status = static_cast<int32_t>(why.code());
    }
  return why;
}

}  // namespace
}  // namespace kvc::capi

KVC_EXPORT int kvc_node_get_batch(kvc_node* node, const kvc_namespace_options* ns, uint32_t shard,
                                  kvc_node_item* items, size_t n, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    auto b = CheckBatch(node, ns, shard, items, n);
    if (!b.ok()) return Refuse(items, n, b.status(), true);
    std::vector<net::GetItem> gi(n);
    for (size_t i = 0; i < n; ++i) {
      gi[i].key = FromC(items[i].key);
      gi[i].dst = items[i].buf.data;
      gi[i].cap = items[i].buf.data ? items[i].buf.len : 0;
    }
    Status st = node->rep->GetBatch(b->ns, shard, gi);
    for (size_t i = 0; i < n; ++i) {
      const Code c = gi[i].status.code();
      items[i].status = static_cast<int32_t>(c);
      items[i].len = c == Code::kOk || c == Code::kLayout ? gi[i].size : 0;
    }
    return st;
  });
}

KVC_EXPORT int kvc_node_put_batch(kvc_node* node, const kvc_namespace_options* ns, uint32_t shard,
                                  kvc_node_item* items, size_t n, const kvc_store_options* opts, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    auto b = CheckBatch(node, ns, shard, items, n);
    if (!b.ok()) return Refuse(items, n, b.status(), false);
    uint64_t ttl = 0;
    if (opts) {
      Status s = CheckSize(opts, "kvc_store_options");
      if (!s.ok()) return Refuse(items, n, s, false);
      if (KVC_NODE_HAS(opts, kvc_store_options, ttl_ms)) ttl = opts->ttl_ms;
    }
    for (size_t i = 0; i < n; ++i)
      if (items[i].buf.len != b->shard_bytes || items[i].buf.data == nullptr)
        return Refuse(items, n,
                      InvalidArgument("items[" + std::to_string(i) + "].buf is " +
                                      (items[i].buf.data ? std::to_string(items[i].buf.len) + " bytes"
                                                         : std::string("NULL")) +
                                      ": a put stores exactly the namespace's shard_bytes (" +
                                      std::to_string(b->shard_bytes) + ")"),
                      false);
    std::vector<net::PutItem> pi(n);
    for (size_t i = 0; i < n; ++i) {
      pi[i].key = FromC(items[i].key);
      pi[i].src = items[i].buf.data;
      pi[i].len = items[i].buf.len;
      if (items[i].parent) pi[i].parent = FromC(*items[i].parent);
    }
    Status st = node->rep->PutBatch(b->ns, shard, pi, ttl);
    for (size_t i = 0; i < n; ++i) items[i].status = static_cast<int32_t>(pi[i].status.code());
    return st;
  });
}

KVC_EXPORT int kvc_node_delete(kvc_node* node, const kvc_namespace_options* ns, const kvc_key* key, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_RETURN_IF_ERROR(LiveNode(node));
    auto n = NamespaceOf(ns);
    if (!n.ok()) return n.status();
    KVC_REQUIRE_ARG(key, "key");
    return node->rep->Delete(*n, FromC(*key));
  });
}

KVC_EXPORT int kvc_node_bump_revision(kvc_node* node, const kvc_namespace_options* ns, uint64_t* out_epoch,
                                      kvc_error* err) {
  return Guard(err, [&]() -> Status {
    if (out_epoch) *out_epoch = 0;
    KVC_RETURN_IF_ERROR(LiveNode(node));
    auto n = NamespaceOf(ns);
    if (!n.ok()) return n.status();
    auto e = node->rep->BumpRevision(*n);
    if (!e.ok()) return e.status();
    if (out_epoch) *out_epoch = *e;
    return Status::Ok();
  });
}

namespace {
kvc::Status StringOut(const kvc::Result<std::string>& r, char** out) {
  if (!r.ok()) return r.status();
  char* p = static_cast<char*>(std::malloc(r->size() + 1));
  if (p == nullptr) return kvc::Status(kvc::Code::kNoMemory, "out of memory");
  std::memcpy(p, r->c_str(), r->size() + 1);
  *out = p;
  return kvc::Status::Ok();
}
}  // namespace

KVC_EXPORT int kvc_node_tenant_create(kvc_node* node, char** out_credential, const kvc_tenant_options* opts,
                                      kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_REQUIRE_ARG(out_credential, "out_credential");
    *out_credential = nullptr;
    KVC_RETURN_IF_ERROR(LiveNode(node));
    KVC_REQUIRE_ARG(opts, "opts");
    KVC_RETURN_IF_ERROR(CheckSize(opts, "kvc_tenant_options"));
    net::NodeTenantSpec t;
    if (KVC_NODE_HAS(opts, kvc_tenant_options, name) && opts->name) t.name = opts->name;
    if (t.name.empty()) return InvalidArgument("opts.name is required");
    if (KVC_NODE_HAS(opts, kvc_tenant_options, isolation) && opts->isolation) t.isolation = opts->isolation;
    if (KVC_NODE_HAS(opts, kvc_tenant_options, host_quota_bytes)) t.host_quota_bytes = opts->host_quota_bytes;
    if (KVC_NODE_HAS(opts, kvc_tenant_options, ssd_quota_bytes)) t.ssd_quota_bytes = opts->ssd_quota_bytes;
    if (KVC_NODE_HAS(opts, kvc_tenant_options, borrow)) {
      if (opts->borrow > 1) return InvalidArgument("opts.borrow must be 0 or 1");
      t.borrow = opts->borrow == 1;
    }
    return StringOut(node->rep->TenantCreate(t), out_credential);
  });
}

KVC_EXPORT int kvc_node_tenant_list_json(kvc_node* node, char** out, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_REQUIRE_ARG(out, "out");
    *out = nullptr;
    KVC_RETURN_IF_ERROR(LiveNode(node));
    return StringOut(node->rep->TenantListJson(), out);
  });
}

KVC_EXPORT int kvc_node_tenant_set_quota(kvc_node* node, const char* name, int64_t host_quota_bytes,
                                         int64_t ssd_quota_bytes, int32_t borrow, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_RETURN_IF_ERROR(LiveNode(node));
    KVC_REQUIRE_ARG(name, "name");
    if (borrow > 1) return InvalidArgument("borrow must be -1 (keep), 0 or 1");
    return node->rep->TenantSetQuota(name, host_quota_bytes, ssd_quota_bytes, borrow);
  });
}

KVC_EXPORT int kvc_node_tenant_delete(kvc_node* node, const char* name, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_RETURN_IF_ERROR(LiveNode(node));
    KVC_REQUIRE_ARG(name, "name");
    return node->rep->TenantDelete(name);
  });
}

#else  // !KVC_NODE

using namespace kvc;
using namespace kvc::capi;

namespace {
int Unsupported(kvc_error* err) {
  return Guard(err, [] { return Status(Code::kUnsupported, "built without gRPC: no node support"); });
}
}  // namespace

KVC_EXPORT int kvc_node_server_start(kvc_node_server** out, const kvc_node_server_options*, kvc_error* err) {
  if (out) *out = nullptr;
  return Unsupported(err);
}
KVC_EXPORT const char* kvc_node_server_address(const kvc_node_server*) { return ""; }
KVC_EXPORT int kvc_node_server_stop(kvc_node_server* server, uint32_t) {
  return server == nullptr ? KVC_OK : Unsupported(nullptr);
}
KVC_EXPORT int kvc_node_connect(kvc_node** out, const char*, const kvc_node_options*, kvc_error* err) {
  if (out) *out = nullptr;
  return Unsupported(err);
}
KVC_EXPORT int kvc_node_close(kvc_node* node) { return node == nullptr ? KVC_OK : Unsupported(nullptr); }
KVC_EXPORT int kvc_node_stats_json(kvc_node*, char** out, kvc_error* err) {
  if (out) *out = nullptr;
  return Unsupported(err);
}
KVC_EXPORT int kvc_node_match(kvc_node*, size_t* out_blocks, uint8_t*, const kvc_namespace_options*, const kvc_key*,
                              size_t, kvc_error* err) {
  if (out_blocks) *out_blocks = 0;
  return Unsupported(err);
}
KVC_EXPORT int kvc_node_match_tokens(kvc_node*, size_t* out_blocks, uint8_t*, kvc_key*, size_t,
                                     const kvc_namespace_options*, const uint32_t*, size_t, kvc_error* err) {
  if (out_blocks) *out_blocks = 0;
  return Unsupported(err);
}
KVC_EXPORT int kvc_node_get(kvc_node*, size_t* out_len, const kvc_namespace_options*, const kvc_key*, uint32_t,
                            const kvc_buf*, kvc_error* err) {
  if (out_len) *out_len = 0;
  return Unsupported(err);
}
KVC_EXPORT int kvc_node_put(kvc_node*, const kvc_namespace_options*, const kvc_key*, uint32_t, const kvc_buf*,
                            const kvc_store_options*, kvc_error* err) {
  return Unsupported(err);
}
KVC_EXPORT int kvc_node_delete(kvc_node*, const kvc_namespace_options*, const kvc_key*, kvc_error* err) {
  return Unsupported(err);
}
KVC_EXPORT int kvc_node_get_batch(kvc_node*, const kvc_namespace_options*, uint32_t, kvc_node_item* items, size_t n,
                                  kvc_error* err) {
  const int rc = Unsupported(err);
  if (items != nullptr && n <= KVC_NODE_MAX_BATCH)
    for (size_t i = 0; i < n; ++i) {
      items[i].len = 0;
      items[i].status = rc;
    }
  return rc;
}
KVC_EXPORT int kvc_node_put_batch(kvc_node*, const kvc_namespace_options*, uint32_t, kvc_node_item* items, size_t n,
                                  const kvc_store_options*, kvc_error* err) {
  const int rc = Unsupported(err);
  if (items != nullptr && n <= KVC_NODE_MAX_BATCH)
    for (size_t i = 0; i < n; ++i) items[i].status = rc;
  return rc;
}

KVC_EXPORT const char* kvc_node_server_metrics_address(const kvc_node_server*) { return ""; }
KVC_EXPORT int kvc_node_bump_revision(kvc_node*, const kvc_namespace_options*, uint64_t* out_epoch,
                                      kvc_error* err) {
  if (out_epoch) *out_epoch = 0;
  return Unsupported(err);
}
KVC_EXPORT int kvc_node_tenant_create(kvc_node*, char** out_credential, const kvc_tenant_options*,
                                      kvc_error* err) {
  if (out_credential) *out_credential = nullptr;
  return Unsupported(err);
}
KVC_EXPORT int kvc_node_tenant_list_json(kvc_node*, char** out, kvc_error* err) {
  if (out) *out = nullptr;
  return Unsupported(err);
}
KVC_EXPORT int kvc_node_tenant_set_quota(kvc_node*, const char*, int64_t, int64_t, int32_t, kvc_error* err) {
  return Unsupported(err);
}
KVC_EXPORT int kvc_node_tenant_delete(kvc_node*, const char*, kvc_error* err) { return Unsupported(err); }

#endif  // KVC_NODE
