// NodeService: the kvc.v1.Node gRPC service (proto/kvc/v1/kvc.proto) over
// one kvc::Cache. Each call authenticates its bearer token against the
// cache's tenants, opens the request's namespace as that tenant (an
// isolated tenant's salt from its configuration, never from the wire) and
// checks every length, count and offset it is sent.
//
// Thread-safe: gRPC calls its methods from many threads at once.
#ifndef KVC_NET_NODE_SERVICE_H_
#define KVC_NET_NODE_SERVICE_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <thread>

#include "core/cache.h"
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/sync_stream.h>

#include "kvc/v1/kvc.grpc.pb.h"
#include "net/metrics.h"
#include "net/node_client.h"

namespace kvc::net {

// Limits on what a node accepts; docs/node.md lists them.
inline constexpr uint64_t kMaxChunkBytes = 1u << 20;        // data per stream message
// A batch's whole blocks packed several to a message (LoadChunk.items,
// StoreMessage.blocks): blocks of at most this many bytes, up to
// kMaxChunkBytes of data a message.
inline constexpr uint64_t kMaxPackedBlockBytes = 256u << 10;
inline constexpr int kMaxMessageBytes = 4 << 20;            // any one message
inline constexpr size_t kMaxMatchKeys = 1u << 16;           // keys per Match
inline constexpr size_t kMaxMatchTokens = 1u << 22;         // tokens per Match

// The caller of one request, after authentication.
struct Caller {
  uint32_t tenant = 0;  // 0: a node without tenants
  std::string name;
  std::string salt;     // isolated tenants only
};

// The metadata key of the admin token on tenant-admin calls (and on Stats,
// for the whole node's counters).
inline constexpr const char* kAdminTokenKey = "kvc-admin-token";
// Node-to-node calls (a drain's hand-off): act as this tenant. Accepted only
// with the right kvc-admin-token, and only on Match and Store.
inline constexpr const char* kAsTenantKey = "kvc-as-tenant";

// The server credentials of a node: TLS from PEM files when `cert` and
// `key` are given (with `client_ca`, client certificates are required and
// verified), else plaintext. The files are read and checked (a key that
// does not match its certificate is KVC_ERR_INVALID_ARGUMENT).
Result<std::shared_ptr<grpc::ServerCredentials>> ServerCredentialsFromFiles(const std::string& cert,
                                                                          const std::string& key,
                                                                          const std::string& client_ca);

// What a tenant's Stats shows: from the node's kvc_cache_stats_json object
// `node`, only `tenant`'s own row and counters (its hits and misses, its
// bytes and blocks per tier, and `traffic`, what it did through the node),
// never a node-wide counter, which would tell it its neighbours' traffic.
// "scope" is "tenant" (a node-wide object has "scope": "node").
nlohmann::json TenantStatsView(const nlohmann::json& node, uint32_t tenant, const std::string& name,
                               const TenantTraffic& traffic);

// The views that Load's replies point into: gRPC may hold a reply's slices
// after the call (until its transport has sent them), so each pin is dropped
// by the last slice's destructor. `cache` is null once the service is gone
// (its cache may be too): a pin dropped after that is left to die with it.
struct PinnedViews {
  std::shared_mutex mu;
  Cache* cache = nullptr;  // GUARDED_BY(mu)
};

// The namespace a client names on the wire (gRPC or the same-host path) as
// the cache's fields; the salt is left empty (the caller's tenant supplies
// it). KVC_ERR_INVALID_ARGUMENT / KVC_ERR_LAYOUT for a bad spec.
Result<NamespaceFields> FieldsFromWire(const NodeNamespace& n);

class NodeService final : public kvc::v1::Node::Service {
 public:
  // REQUIRES: `cache` outlives the service.
  // write_through: stores also reach the SSD tier at commit (when there is
  // one), so that a restarted node serves them.
  NodeService(Cache& cache, bool write_through);
  ~NodeService() override;

  grpc::Status Health(grpc::ServerContext* ctx, const v1::HealthRequest* req, v1::HealthResponse* resp) override;
  grpc::Status Match(grpc::ServerContext* ctx, const v1::MatchRequest* req, v1::MatchResponse* resp) override;
  // Load is served by LoadRaw (registered in the constructor), not by the
  // generated Load(): its replies are kvc.v1.LoadChunk messages encoded by
  // hand, whose data is a slice of the pinned block (no copy on the node).
  using LoadStream = grpc::ServerSplitStreamer<v1::LoadRequest, grpc::ByteBuffer>;
  grpc::Status LoadRaw(grpc::ServerContext* ctx, LoadStream* stream);
  // Store is served by StoreRaw (registered in the constructor): it reads
  // kvc.v1.StoreMessage from the raw ByteBuffers, each chunk's data copied
  // once, from gRPC's slices into the reservation.
  using StoreStream = grpc::ServerReaderWriter<v1::StoreResponse, grpc::ByteBuffer>;
  grpc::Status StoreRaw(grpc::ServerContext* ctx, StoreStream* stream);
  grpc::Status Delete(grpc::ServerContext* ctx, const v1::DeleteRequest* req, v1::DeleteResponse* resp) override;
  grpc::Status BumpRevision(grpc::ServerContext* ctx, const v1::BumpRevisionRequest* req,
                            v1::BumpRevisionResponse* resp) override;
  grpc::Status Stats(grpc::ServerContext* ctx, const v1::StatsRequest* req, v1::StatsResponse* resp) override;
  grpc::Status TenantCreate(grpc::ServerContext* ctx, const v1::TenantCreateRequest* req,
                            v1::TenantCreateResponse* resp) override;
  grpc::Status TenantList(grpc::ServerContext* ctx, const v1::TenantListRequest* req,
                          v1::TenantListResponse* resp) override;
  grpc::Status TenantSetQuota(grpc::ServerContext* ctx, const v1::TenantSetQuotaRequest* req,
                              v1::TenantSetQuotaResponse* resp) override;
  grpc::Status TenantDelete(grpc::ServerContext* ctx, const v1::TenantDeleteRequest* req,
                            v1::TenantDeleteResponse* resp) override;

  // The admin token of tenant-admin calls; empty (the default): refused.
  // REQUIRES: called before the service serves.
  void set_admin_token(std::string token) { admin_token_ = std::move(token); }
  // A store stream that sends nothing for `ms` (0: 10000) is cancelled and
  // its reservation released: a watchdog thread of the service cancels
  // (ServerContext::TryCancel) a stream whose Read has waited that long, so
  // a client that stalls without a deadline holds neither its reservation
  // nor a server thread. Counted in the metrics
  // (kvc_store_idle_cancels_total). Any thread; applies to the next scan.
  void set_store_idle_timeout_ms(uint32_t ms);
  // The bearer token GET /metrics requires ("Authorization: Bearer
  // <token>", compared in constant time; anything else is 401); empty: the
  // endpoint answers anyone. REQUIRES: called before StartMetrics.
  void set_metrics_token(std::string token);
  // The "drain" object of the node's stats (cluster/handoff.h). Set before serving.
  void set_drain_stats(std::function<nlohmann::json()> f) { drain_stats_ = std::move(f); }
  // Serves GET /metrics on `listen` until the service is destroyed;
  // *address gets the bound address. REQUIRES: called once.
  Status StartMetrics(const std::string& listen, std::string* address);
  Metrics& metrics() { return metrics_; }

  // Cluster fencing (libkvc/cluster): the fence admits or refuses each
  // store, at its begin and again at its commit, given the membership epoch
  // the client sent (0: none). A refusal is the store's status (nothing is
  // published). Unset: every store is admitted. Any thread, any time.
  using WriteFence = std::function<Status(uint64_t membership_epoch)>;
  void set_write_fence(WriteFence fence);
  // Bumps the revision of every namespace of the cache (Cache::
  // BumpAllRevisions: those opened over the same-host path too), so that no
  // block stored before is served again (a cluster node that lost its lease
  // may have missed deletes and revision bumps). Any thread.
  void BumpAllRevisions();
  // The fence's verdict on a store under `membership_epoch` (OK when no
  // fence is set). The same-host path asks it too. Any thread.
  Status AdmitWrite(uint64_t membership_epoch) const;

  // ---- An etcd cluster's configuration (cluster/config_sync.h) ----
  // Makes the node's cluster tenants exactly `tenants`
  // (TenantRegistry::SyncCluster on the cache's tenants file), then reloads
  // them into the cache when anything changed (a tenant removed or replaced
  // loses its blocks). KVC_ERR_UNSUPPORTED when the cache has no tenants
  // file. Any thread.
  Status ApplyClusterTenants(const std::vector<TenantConfig>& tenants);
  // Applies the cluster's bump number `count` of namespace `ns` as `tenant`
  // ("" on a node without tenants): when `count` is above the last count
  // applied for that namespace (NamespaceId), bumps it once and records
  // `count`; otherwise bumps nothing. Returns the namespace's epoch.
  // KVC_ERR_NOT_FOUND for an unknown tenant. Both the BumpRevision RPC
  // (with cluster_count) and ConfigSync come here, so a bump a node got
  // from the client is not applied again when it comes through etcd. Any
  // thread; calls for one namespace are serialized.
  Result<uint64_t> ApplyClusterBump(const std::string& tenant, const NodeNamespace& ns, uint64_t count);
  // Deletes `key` of namespace `ns` as `tenant` (a hint: a delete this node
  // missed). KVC_ERR_NOT_FOUND when it holds no such block or no such
  // tenant.
  Status ApplyClusterDelete(const std::string& tenant, const NodeNamespace& ns, const BlockKey& key);
  // Where ApplyClusterBump keeps the counts it applied: a JSON file
  // ({"format":"kvc-cluster-revisions-1","counts":{ns-id: count}}) read
  // now (missing: none applied) and replaced atomically (write, fsync,
  // rename) after each bump it applies. Empty: in memory only (a node
  // without an SSD tier restarts empty, so it need not remember).
  // KVC_ERR_PARSE for a damaged file. REQUIRES: called before the service
  // serves.
  Status set_cluster_ledger(const std::string& path);

 private:
  // The caller named by the `authorization: Bearer <tenant>:<credential>`
  // metadata; KVC_ERR_PERMISSION for a missing or wrong token on a node with
  // tenants (one message for every failure: names cannot be probed).
  // allow_as_tenant (Match, Store): `kvc-as-tenant: <name>` with the right
  // `kvc-admin-token` acts as that tenant; without the admin token (a
  // tenant's credential is not enough), or on other calls, it is refused.
  Result<Caller> Authenticate(const grpc::ServerContext& ctx, bool allow_as_tenant = false);
  // OK when the call carries the admin token; UNAUTHENTICATED for a missing
  // or wrong one, PERMISSION_DENIED when the node has none.
  grpc::Status AuthenticateAdmin(const grpc::ServerContext& ctx);
  // Runs a tenant-file edit, then applies the file to the cache.
  Status EditTenants(const std::function<Status(const std::string& path)>& edit);
  // The namespace of `spec` as `caller`, opened once per (tenant, spec).
  Result<NamespaceState*> Open(const Caller& caller, const v1::NamespaceSpec& spec);

  // A store stream the idle watchdog looks after (StoreRaw registers it for
  // the call's lifetime).
  struct StoreWatch {
    grpc::ServerContext* ctx = nullptr;
    // steady_clock nanoseconds since the epoch at which the stream's
    // current Read began; 0 while the service is not waiting on the client.
    std::atomic<int64_t> reading_since{0};
    // The idle timeout the watchdog cancelled the call after; 0: not
    // cancelled. GUARDED_BY(watch_mu_) while watched.
    uint32_t cancelled_after_ms = 0;
  };
  void WatchStore(StoreWatch* w);
  void UnwatchStore(StoreWatch* w);
  void Watchdog();

  Cache& cache_;
  const bool write_through_;
  std::shared_ptr<PinnedViews> pins_;
  std::mutex mu_;
  std::map<std::string, NamespaceState*> namespaces_;  // GUARDED_BY(mu_)
  mutable std::mutex fence_mu_;
  std::shared_ptr<const WriteFence> fence_;  // GUARDED_BY(fence_mu_)
  std::string admin_token_;
  uint32_t store_idle_timeout_ms_ = 10000;  // GUARDED_BY(watch_mu_)
  std::mutex watch_mu_;
  std::condition_variable watch_cv_;
  std::set<StoreWatch*> watched_;  // GUARDED_BY(watch_mu_)
  bool stopping_ = false;          // GUARDED_BY(watch_mu_)
  std::thread watchdog_;
  std::string metrics_token_;
  std::function<nlohmann::json()> drain_stats_;
  Metrics metrics_;
  std::unique_ptr<MetricsEndpoint> metrics_endpoint_;
  std::mutex ledger_mu_;
  std::string ledger_path_;                       // GUARDED_BY(ledger_mu_)
  std::map<std::string, uint64_t> ledger_;        // GUARDED_BY(ledger_mu_): ns-id -> count applied
};

}  // namespace kvc::net

#endif  // KVC_NET_NODE_SERVICE_H_
