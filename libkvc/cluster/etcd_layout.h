// The layout of a kvc cluster in etcd (docs/cluster.md): cluster
// addresses, key names and the JSON of node records and the config.
//
//   /kvc/<cluster>/config          {"replication":R,"write_quorum":W}
//   /kvc/<cluster>/nodes/<id>      {"address","zone","capacity_bytes","state","version"}
//                                  under the node's lease; a draining node
//                                  adds "handoff" and "handed_off"
//   /kvc/<cluster>/draining/<id>   a drained node's mark (no lease): it
//                                  re-registers as "draining"
//
// The cluster configuration every node takes up (cluster/config_sync.h),
// none under a lease:
//   /kvc/<cluster>/tenants/<name>  {"isolation","host_quota_bytes",
//                                  "ssd_quota_bytes","borrow",
//                                  "credential_sha256" (hex),"salt" (hex;
//                                  "" for shared tenants)}
//   /kvc/<cluster>/revisions/<ns-id>
//                                  {"count":N,"tenant":"<name>"|"","ns":{...}}
//                                  N: how many bumps of that namespace the
//                                  cluster has seen; ns-id: NamespaceId()
//   /kvc/<cluster>/hints/<node-id>/<hint-id>
//                                  {"op":"delete","tenant","ns":{...},"key":hex}
//                                  a delete the node missed; it deletes the
//                                  hint once applied
//   /kvc/<cluster>/roster/<node-id>
//                                  {"address","first_registered": unix ms}
//                                  every node that ever registered (no
//                                  lease; kvc cluster forget removes it):
//                                  a delete leaves a hint for each one it
//                                  did not reach
// "ns" is a NodeNamespace as JSON: {"hash","model","revision","adapter",
// "dtype","layers","kv_heads","head_dim","block_tokens","shards"}.
//
// Thread-safe: pure functions.
#ifndef KVC_CLUSTER_ETCD_LAYOUT_H_
#define KVC_CLUSTER_ETCD_LAYOUT_H_

#include <string>
#include <vector>

#include "cluster/membership.h"
#include "core/block_key.h"
#include "net/node_client.h"
#include "tenant/tenant_registry.h"
#include "util/status.h"

namespace kvc::cluster {

struct EtcdAddress {
  std::vector<std::string> endpoints;  // host:port
  std::string cluster;
};

// "etcd://HOST:PORT[,HOST:PORT...]/CLUSTER"; CLUSTER and node ids are
// [A-Za-z0-9_.-]{1,64}.
Result<EtcdAddress> ParseEtcdAddress(const std::string& address);
bool ValidName(const std::string& name);

std::string ClusterPrefix(const std::string& cluster);  // "/kvc/<cluster>/"
std::string NodesPrefix(const std::string& cluster);    // ".../nodes/"
std::string NodeKey(const std::string& cluster, const std::string& id);
std::string ConfigKey(const std::string& cluster);
std::string DrainingKey(const std::string& cluster, const std::string& id);

std::string NodeStateName(NodeState s);  // "up", "draining"
// A node record's value; registered_epoch and id are not in it (they are
// the key's create revision and name).
std::string EncodeNode(const NodeInfo& n, const std::string& version);
Result<NodeInfo> DecodeNode(const std::string& id, const std::string& json);
std::string EncodeConfig(const ClusterConfig& c);
Result<ClusterConfig> DecodeConfig(const std::string& json);

// ---- Cluster configuration (cluster/config_sync.h) ----
std::string TenantsPrefix(const std::string& cluster);    // ".../tenants/"
std::string TenantKey(const std::string& cluster, const std::string& name);
std::string RevisionsPrefix(const std::string& cluster);  // ".../revisions/"
std::string RevisionKey(const std::string& cluster, const std::string& ns_id);
std::string HintsPrefix(const std::string& cluster, const std::string& node_id);  // ".../hints/<id>/"
std::string RosterPrefix(const std::string& cluster);  // ".../roster/"
std::string RosterKey(const std::string& cluster, const std::string& node_id);

// A roster record: the node's address when it first registered, and when
// (unix ms). `id` comes from the key.
struct RosterEntry {
  std::string id;
  std::string address;
  int64_t first_registered_ms = 0;
};
std::string EncodeRosterEntry(const RosterEntry& e);
Result<RosterEntry> DecodeRosterEntry(const std::string& id, const std::string& json);

// A tenant record: `name` comes from the key, `id` is each node's own (0
// here); credential_sha256 and salt as TenantConfig holds them (salt raw).
std::string EncodeTenant(const TenantConfig& t);
Result<TenantConfig> DecodeTenant(const std::string& name, const std::string& json);

// The id of a namespace as a tenant sees it: hex SHA-256 (64 chars) of the
// tenant name and the namespace's fields, canonically encoded. Equal for
// equal (tenant, fields) on every client and node.
std::string NamespaceId(const std::string& tenant, const net::NodeNamespace& ns);

struct RevisionRecord {
  uint64_t count = 0;      // bumps of the namespace so far, cluster-wide
  std::string tenant;      // "" for a node without tenants
  net::NodeNamespace ns;
};
std::string EncodeRevision(const RevisionRecord& r);
Result<RevisionRecord> DecodeRevision(const std::string& json);

struct DeleteHint {
  std::string tenant;
  net::NodeNamespace ns;
  BlockKey key;
};
std::string EncodeDeleteHint(const DeleteHint& h);
Result<DeleteHint> DecodeDeleteHint(const std::string& json);

}  // namespace kvc::cluster

#endif  // KVC_CLUSTER_ETCD_LAYOUT_H_
