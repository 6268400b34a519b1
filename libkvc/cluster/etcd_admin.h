// Cluster administration in etcd (`kvc cluster init|nodes|drain`, the
// kvc_cluster_* C calls): the cluster config and the drain marks, written
// as etcd_layout.h describes.
//
// Thread-safe: free functions, each with its own etcd connection.
#ifndef KVC_CLUSTER_ETCD_ADMIN_H_
#define KVC_CLUSTER_ETCD_ADMIN_H_

#include <cstdint>
#include <string>

#include "cluster/membership.h"
#include "util/status.h"

namespace kvc::cluster {

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

}  // namespace kvc::cluster

#endif  // KVC_CLUSTER_ETCD_ADMIN_H_
