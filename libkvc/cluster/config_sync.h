// ConfigSync: a cluster node's copy of its cluster's configuration in etcd
// (etcd_layout.h, docs/cluster.md "Cluster configuration"): the tenants,
// the namespaces' revision counts and the deletes this node missed (hints).
//
// Start lists /kvc/<cluster>/tenants/, .../revisions/ and
// .../hints/<node_id>/ and applies all of it, in that order, before it
// returns: a node calls it before it registers (registration.h), so it
// serves no client (clients route only to registered nodes) before it took
// up every tenant, every revision bump and every delete that happened while
// it was away. Then a thread watches the three prefixes from the listing's
// revision + 1 and applies each change as it comes; when the watch ends
// (etcd restarted, the revision compacted away) it lists and applies again.
// While etcd is unreachable the node keeps what it has and retries with a
// backoff of 100 ms to 1 s.
//
//  - tenants: each listing or change calls apply_tenants with the whole
//    current list (TenantRegistry::SyncCluster semantics).
//  - revisions: each record calls apply_bump(tenant, ns, count); the node
//    applies a count once (NodeService::ApplyClusterBump keeps the counts it
//    applied, persisted with the node's SSD tier), so a record seen again
//    after a re-list bumps nothing. A record whose tenant is unknown here
//    is skipped (its tenant's blocks are gone with it).
//  - hints: each calls apply_delete(tenant, ns, key); once it returned OK
//    or NOT_FOUND the hint is deleted from etcd (if its mod_revision is
//    unchanged). A hint that fails otherwise stays, and is retried at the
//    next listing.
// A record that does not parse is logged and skipped; it never stops the
// others.
//
// Thread-safe: Stop and the destructor from any thread; the hooks are
// called on Start's thread and then on the sync's own thread, one at a
// time.
#ifndef KVC_CLUSTER_CONFIG_SYNC_H_
#define KVC_CLUSTER_CONFIG_SYNC_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cluster/etcd_layout.h"
#include "util/status.h"

namespace kvc::cluster {

class EtcdClient;
class EtcdWatch;
struct EtcdKv;
struct EtcdEvent;

struct ConfigSyncOptions {
  std::string cluster;  // "etcd://HOST:PORT[,...]/CLUSTER"
  std::string node_id;  // whose hints to apply
  uint32_t timeout_ms = 5000;  // Start's wait for etcd
  std::function<Status(const std::vector<TenantConfig>&)> apply_tenants;
  std::function<Status(const std::string& tenant, const net::NodeNamespace& ns, uint64_t count)> apply_bump;
  std::function<Status(const std::string& tenant, const net::NodeNamespace& ns, const BlockKey& key)> apply_delete;
  // Log lines ("kvc serve" prints them); default: stderr.
  std::function<void(const std::string&)> log;
};

struct ConfigSyncStats {
  uint64_t listings = 0;          // full listings applied (1 after Start)
  uint64_t tenant_syncs = 0;      // apply_tenants calls
  uint64_t bumps_seen = 0;        // apply_bump calls
  uint64_t hints_applied = 0;     // hints applied and removed
  uint64_t errors = 0;            // hooks that failed, records that did not parse
  int64_t revision = 0;           // the etcd revision applied up to
};

class ConfigSync {
 public:
  // KVC_ERR_UNAVAILABLE when etcd cannot be reached within timeout_ms;
  // an error of a hook during the first listing is logged, not returned.
  static Result<std::unique_ptr<ConfigSync>> Start(const ConfigSyncOptions& options);
  ~ConfigSync();  // Stop()

  ConfigSyncStats stats() const;
  // Ends the watch thread. Idempotent.
  void Stop();

 private:
  ConfigSync() = default;
  Status ListAndApply(uint32_t timeout_ms);
  void Run();
  void Log(const std::string& m) const;
  // The hooks' side (one thread at a time, see above).
  void TenantRecord(const std::string& name, const std::string& json);
  void ApplyTenants();
  void ApplyRevision(const std::string& key, const std::string& json);
  void ApplyHint(const EtcdKv& kv);
  void ApplyEvents(const std::vector<EtcdEvent>& events, int64_t revision);
  void Count(uint64_t ConfigSyncStats::*field);
  bool Pause(uint32_t ms);  // false when stopped

  ConfigSyncOptions opts_;
  EtcdAddress addr_;
  std::unique_ptr<EtcdClient> etcd_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;           // GUARDED_BY(mu_)
  ConfigSyncStats stats_;       // GUARDED_BY(mu_)
  std::unique_ptr<EtcdWatch> watch_;  // GUARDED_BY(mu_): Stop cancels it
  std::thread thread_;
  // The cluster's tenant records as last read (a record that stopped
  // parsing keeps its last good value). Used by the hooks' thread only.
  std::map<std::string, TenantConfig> tenants_;
  // The etcd revisions of the last listing of tenants, revisions, hints:
  // events at or below them were in it. Used by the hooks' thread only.
  int64_t listed_[3] = {0, 0, 0};
};

}  // namespace kvc::cluster

#endif  // KVC_CLUSTER_CONFIG_SYNC_H_
