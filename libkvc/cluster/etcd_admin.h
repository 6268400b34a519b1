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
#include <optional>
#include <string>

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

}  // namespace kvc::cluster

#endif  // KVC_CLUSTER_ETCD_ADMIN_H_
