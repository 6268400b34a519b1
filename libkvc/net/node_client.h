// NodeClient: a client of one kvc node (proto/kvc/v1/kvc.proto, or the
// same-host path), behind the C ABI's kvc_node_* calls and the remote tier. Every call has a deadline; an unreachable
// node is KVC_ERR_UNAVAILABLE, a refused token KVC_ERR_PERMISSION.
//
// Thread-safe: calls may run from any thread at once.
#ifndef KVC_NET_NODE_CLIENT_H_
#define KVC_NET_NODE_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/block_key.h"
#include "util/status.h"

namespace kvc {
struct NamespaceFields;
}
namespace kvc::v1 {
class NamespaceSpec;
}

namespace kvc::net {

struct NodeClientOptions {
  std::string tenant;      // empty: no authorization header
  std::string credential;
  uint32_t connect_timeout_ms = 2000;
  uint32_t timeout_ms = 10000;
  // TLS (gRPC only): the CA that signed the node's certificate (empty:
  // plaintext) and this client's certificate and key (both or neither).
  std::string tls_ca_path, tls_cert_path, tls_key_path;
  std::string admin_token;  // sent on tenant-admin calls
  // Node-to-node (a drain's hand-off, gRPC only): Match and Store act as
  // this tenant, authorized by admin_token (kvc-as-tenant metadata) instead
  // of a tenant credential.
  std::string as_tenant;
  // Retries of idempotent calls (stats, match, get, delete) after
  // kUnavailable, within the call's deadline. Stores are never retried.
  uint32_t max_retries = 2;
  // Cluster clients: the membership epoch each store is sent under
  // (StoreBegin.membership_epoch). Unset: 0.
  std::function<uint64_t()> membership_epoch;
  // Cluster clients: the deadline of the call about to run on this thread,
  // when it comes before timeout_ms from now (a failover stays within the
  // caller's deadline). Unset, or a zero time point: timeout_ms. gRPC only.
  std::function<std::chrono::system_clock::time_point()> call_deadline;
};

// The namespace fields a client sends (no salt: it never travels).
struct NodeNamespace {
  std::string hash, model, revision, adapter, dtype;
  uint32_t layers = 0, kv_heads = 0, head_dim = 0, block_tokens = 0, shards = 0;
};

// A cache namespace's fields as a client sends them (the inverse of
// FieldsFromWire, net/node_service.h; the salt stays behind).
NodeNamespace NodeNamespaceOf(const NamespaceFields& f);
// A request's namespace message from the fields a client sends.
void SpecOf(const NodeNamespace& ns, v1::NamespaceSpec* s);

// A tenant to create through a node (kvc_tenant_options).
struct NodeTenantSpec {
  std::string name;
  std::string isolation;  // "isolated" (default when empty) or "shared"
  uint64_t host_quota_bytes = 0, ssd_quota_bytes = 0;
  bool borrow = false;
};

// The most block shards one batch names (KVC_NODE_MAX_BATCH).
inline constexpr size_t kMaxBatchItems = 1024;

// One block shard of a GetBatch: the caller's destination in, the size and
// the item's own outcome out (kNotFound, kLayout when cap is too small, ...).
struct GetItem {
  BlockKey key;
  void* dst = nullptr;  // nullptr: only the size
  uint64_t cap = 0;
  uint64_t size = 0;  // out: the block shard's size (also on kLayout)
  Status status = Status(Code::kInternal, "not answered");  // out
};

// One block shard of a PutBatch: exactly shard_bytes from src.
struct PutItem {
  BlockKey key;
  const void* src = nullptr;
  uint64_t len = 0;
  std::optional<BlockKey> parent;
  Status status = Status(Code::kInternal, "not answered");  // out: kOk, kExists, kPending, kQuota, ...
};

// A failure of a whole batch call (unreachable, deadline, refused caller or
// request, fenced, a broken reply), as opposed to an item's own outcome (a
// miss, EXISTS, LAYOUT, QUOTA...). Every transport and the cluster client
// judge batch outcomes with it.
bool FailsBatchCall(Code c);
// kInvalidArgument for a batch of n > kMaxBatchItems items.
Status TooManyBatchItems(size_t n);

// A connection to one node. Connect picks the transport from the address:
// "host:port" is gRPC (node_client.cc), "unix:PATH" the same-host path
// (shm_client.cc), "etcd://..." and "peers:..." a cluster (libkvc/cluster). Both give the same results for every call.
class NodeClient {
 public:
  // Connects within connect_timeout_ms; KVC_ERR_UNAVAILABLE otherwise.
  static Result<std::unique_ptr<NodeClient>> Connect(const std::string& address, const NodeClientOptions& options);
  virtual ~NodeClient() = default;

  virtual Result<std::string> StatsJson() = 0;
  // Leading blocks present; `tiers` gets one kvc_tier per key.
  virtual Result<size_t> Match(const NodeNamespace& ns, const std::vector<BlockKey>& keys,
                               std::vector<uint8_t>* tiers) = 0;
  // As Match, with the node hashing `tokens`; `keys` gets their keys.
  virtual Result<size_t> MatchTokens(const NodeNamespace& ns, const std::vector<uint32_t>& tokens,
                                     std::vector<uint8_t>* tiers, std::vector<BlockKey>* keys) = 0;
  // Reads a block shard into `dst` (at most dst_cap bytes); *size gets its
  // size. dst NULL: only the size. KVC_ERR_LAYOUT when dst_cap is too small.
  virtual Status Get(const NodeNamespace& ns, const BlockKey& key, uint32_t shard, void* dst, uint64_t dst_cap,
                     uint64_t* size) = 0;
  // Stores a block shard (two-phase on the node: nothing is visible unless
  // every byte arrived).
  virtual Status Put(const NodeNamespace& ns, const BlockKey& key, uint32_t shard, const void* src, uint64_t len,
                     uint64_t ttl_ms, const BlockKey* parent) = 0;
  virtual Status Delete(const NodeNamespace& ns, const BlockKey& key) = 0;

  // Batches (kvc_node_get_batch / kvc_node_put_batch): every item of one
  // namespace and shard in one request. Ok when the node answered for every
  // item (each item's status is its own outcome: a miss or an existing
  // block is no failure of the call). Otherwise the call's failure, which
  // every item not answered then carries as its status; items answered
  // before it keep theirs (a put's committed blocks stay committed). At most
  // kMaxBatchItems items (kInvalidArgument past that, no item touched).
  // The base implementations call Get / Put once per item (what a transport
  // without a batch form does); the gRPC and same-host clients send one
  // request. Gets are retried as Get is; puts never are.
  virtual Status GetBatch(const NodeNamespace& ns, uint32_t shard, std::span<GetItem> items);
  virtual Status PutBatch(const NodeNamespace& ns, uint32_t shard, std::span<PutItem> items, uint64_t ttl_ms);
  // The namespace's new epoch.
  // cluster_count: an etcd cluster's count of the namespace's bumps
  // (BumpRevisionRequest.cluster_count); 0: a plain bump. The same-host path
  // answers KVC_ERR_UNSUPPORTED for a non-zero count.
  virtual Result<uint64_t> BumpRevision(const NodeNamespace& ns, uint64_t cluster_count = 0) = 0;

  // Tenant administration (NodeClientOptions::admin_token). The new
  // tenant's credential; the tenants as kvc_tenant_list_json writes them.
  virtual Result<std::string> TenantCreate(const NodeTenantSpec& spec) = 0;
  virtual Result<std::string> TenantListJson() = 0;
  virtual Status TenantSetQuota(const std::string& name, int64_t host_quota_bytes, int64_t ssd_quota_bytes,
                                int32_t borrow) = 0;
  virtual Status TenantDelete(const std::string& name) = 0;
};

// The transports behind NodeClient::Connect.
Result<std::unique_ptr<NodeClient>> ConnectGrpc(const std::string& address, const NodeClientOptions& options);
Result<std::unique_ptr<NodeClient>> ConnectShm(const std::string& socket_path, const NodeClientOptions& options);
// A cluster as one NodeClient (libkvc/cluster): "etcd://HOST:PORT[,HOST:PORT]/CLUSTER"
// or "peers:HOST:PORT,HOST:PORT,...".
Result<std::unique_ptr<NodeClient>> ConnectCluster(const std::string& address, const NodeClientOptions& options);

}  // namespace kvc::net

#endif  // KVC_NET_NODE_CLIENT_H_
