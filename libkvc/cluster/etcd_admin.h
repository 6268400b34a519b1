// Cluster administration in etcd (`kvc cluster init|nodes|drain|tenant`,
// the kvc_cluster_* C calls): the cluster config, the drain marks and the
// cluster configuration (tenants, revision counts, delete hints), written as
// etcd_layout.h describes.
//
// Thread-safe: free functions; those given an address open their own etcd
// connection, those given an EtcdClient (the cluster client keeps one) use
// it.
#ifndef KVC_CLUSTER_ETCD_ADMIN_H_
#define KVC_CLUSTER_ETCD_ADMIN_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cluster/etcd_layout.h"
#include "cluster/membership.h"
#include "util/status.h"

namespace kvc::cluster {

class EtcdClient;

// Writes /kvc/<cluster>/config. KVC_ERR_EXISTS when there is one already
// and !overwrite.
Status InitCluster(const std::string& address, const ClusterConfig& config, bool overwrite, uint32_t timeout_ms);

// Sets node `id`'s state (kDraining or kUp) in its record, keeping its
// lease, and the drain mark it re-registers with. KVC_ERR_NOT_FOUND when no
// such node is registered.
Status SetNodeState(const std::string& address, const std::string& id, NodeState state, uint32_t timeout_ms);

// The membership of `address` (etcd:// or peers:) as JSON (kvc.h,
// kvc_cluster_nodes_json).
Result<std::string> MembershipJson(const std::string& address, uint32_t timeout_ms);

// ---- Cluster tenants (/kvc/<cluster>/tenants/<name>) ----
// `address` is etcd://...; a "peers:" list is KVC_ERR_INVALID_ARGUMENT.

// Mints the tenant's credential (and an isolated tenant's salt:
// TenantRegistry::Mint) and writes its record in a transaction that fails
// if the name is taken (KVC_ERR_EXISTS). Returns the credential.
Result<std::string> ClusterTenantCreate(const std::string& address, TenantConfig spec, uint32_t timeout_ms);
// The tenants as a JSON array sorted by name, no secrets:
// [{"name","isolation","host_quota_bytes","ssd_quota_bytes","borrow"}].
// A record that does not parse is KVC_ERR_CORRUPT, naming it.
Result<std::string> ClusterTenantListJson(const std::string& address, uint32_t timeout_ms);
// Changes the given quotas (nullopt: keep) with a transaction on the
// record's mod_revision, retried while others change it. KVC_ERR_NOT_FOUND
// for an unknown name.
Status ClusterTenantSetQuota(const std::string& address, const std::string& name, std::optional<uint64_t> host,
                             std::optional<uint64_t> ssd, std::optional<bool> borrow, uint32_t timeout_ms);
// KVC_ERR_NOT_FOUND for an unknown name.
Status ClusterTenantDelete(const std::string& address, const std::string& name, uint32_t timeout_ms);

// The same on an open client of cluster `cluster`.
Result<std::string> ClusterTenantCreate(EtcdClient& etcd, const std::string& cluster, TenantConfig spec,
                                        uint32_t timeout_ms);
Result<std::string> ClusterTenantListJson(EtcdClient& etcd, const std::string& cluster, uint32_t timeout_ms);
Status ClusterTenantSetQuota(EtcdClient& etcd, const std::string& cluster, const std::string& name,
                             std::optional<uint64_t> host, std::optional<uint64_t> ssd, std::optional<bool> borrow,
                             uint32_t timeout_ms);
Status ClusterTenantDelete(EtcdClient& etcd, const std::string& cluster, const std::string& name,
                           uint32_t timeout_ms);

// ---- Revision counts and delete hints (the cluster client) ----

// Adds one to the count of bumps of (tenant, ns) in
// /kvc/<cluster>/revisions/<NamespaceId(tenant, ns)> (a transaction on the
// record's mod_revision, or that it does not exist; retried on a conflict
// within timeout_ms) and returns the new count (1 for the first bump).
Result<uint64_t> CountRevisionBump(EtcdClient& etcd, const std::string& cluster, const std::string& tenant,
                                   const net::NodeNamespace& ns, uint32_t timeout_ms);
// Writes /kvc/<cluster>/hints/<node_id>/<random hex id> for a delete the
// node missed; returns the key written.
Result<std::string> WriteDeleteHint(EtcdClient& etcd, const std::string& cluster, const std::string& node_id,
                                    const DeleteHint& hint, uint32_t timeout_ms);
// The same hint for each of `node_ids` (valid ids), in transactions of at
// most 64 puts (etcd's default limit is 128 operations): one round trip for
// up to 64 nodes. An error means some hints may not have been written.
Status WriteDeleteHints(EtcdClient& etcd, const std::string& cluster, const std::vector<std::string>& node_ids,
                        const DeleteHint& hint, uint32_t timeout_ms);

// ---- The roster (/kvc/<cluster>/roster/<id>: every node that ever
// registered; written by cluster/registration.cc) ----

// The roster, sorted by id. A record that does not parse still names its
// node (address "", first_registered 0): a delete must reach it all the same.
Result<std::vector<RosterEntry>> ReadRoster(EtcdClient& etcd, const std::string& cluster, uint32_t timeout_ms);

// The registered nodes now (nodes/), as id -> address; records that do not
// parse are left out.
Result<std::map<std::string, std::string>> RegisteredAddresses(EtcdClient& etcd, const std::string& cluster,
                                                               uint32_t timeout_ms);

// `kvc cluster forget`: removes retired node `node_id`'s roster record and
// its pending delete hints. KVC_ERR_INVALID_ARGUMENT while the node is
// registered (stop it first) or for a bad id; KVC_ERR_NOT_FOUND when the
// cluster has neither a roster record nor hints for it. *hints_removed (may
// be null) receives how many hints were deleted. If the node registers
// while the call runs, its roster record is written back and the call fails
// with KVC_ERR_INVALID_ARGUMENT.
Status ForgetNode(const std::string& address, const std::string& node_id, uint64_t* hints_removed,
                  uint32_t timeout_ms);

}  // namespace kvc::cluster

#endif  // KVC_CLUSTER_ETCD_ADMIN_H_
