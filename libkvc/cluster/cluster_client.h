// ClusterClient: a whole cluster as one NodeClient (docs/cluster.md,
// "Replication"). kvc_node_connect("peers:..." or "etcd://...") and the
// CLI's --node commands reach it through net::ConnectCluster.
//
// It follows a MembershipSource (a new view is used at once) and holds one
// NodeClient per node, connected lazily and dropped on a transport failure
// (the node is then skipped for down_ms and reconnected on its next use).
// - Put: the key's R write replicas in parallel, each store sent under the
//   view's epoch; OK once write_quorum replicas acknowledged (EXISTS counts).
//   KVC_ERR_FENCED from a replica: refresh the view and retry, within the
//   deadline. Returns when every replica answered (the caller's buffer is
//   read until then).
// - Get: the replicas one after another (the local node first, nodes
//   marked down last), then the owners of the previous view for
//   kPreviousViewMs after a change; a miss or a failure moves to the next.
// - GetBatch: the items grouped by the node each is to be read from (as
//   Get's order), one batch per node, the nodes in parallel; an item a node
//   lacked or could not answer goes, with the others of its group, to its
//   next candidate, until each is found or every candidate was asked.
// - PutBatch: the items grouped by write replica, one batch per node, the
//   nodes in parallel; each item committed as Put commits it (write_quorum
//   of its R replicas; fenced items placed again in a refreshed view).
// - Match: the keys grouped per owner, asked in parallel; a key one owner
//   lacks is asked of its next owner.
// - Delete: static peers: every node that may hold the key; etcd: every
//   node of the view (and the previous view's owners of the key), then a
//   hint in etcd for every node of the roster that did not answer.
//   BumpRevision, tenant administration: every node. They fail when one
//   node (of the view) could not be done.
// - With an etcd cluster (ClusterClientOptions::etcd_address), the cluster
//   configuration in etcd (etcd_layout.h) backs these: BumpRevision first
//   counts the bump in etcd and sends the count to every node (a node that
//   missed it applies it before it serves again); a Delete leaves a hint in
//   etcd for each node of the roster (every node that ever registered,
//   etcd_layout.h) it did not reach, in the view or not, and fails
//   KVC_ERR_UNAVAILABLE when etcd cannot take them; tenant administration
//   reads and writes the cluster's tenants in etcd instead of asking the
//   nodes.
// Every call keeps within timeout_ms (NodeClientOptions).
//
// Thread-safe: calls may run from any thread at once.
#ifndef KVC_CLUSTER_CLUSTER_CLIENT_H_
#define KVC_CLUSTER_CLUSTER_CLIENT_H_

#include <memory>
#include <string>

#include "cluster/membership.h"
#include "net/node_client.h"

namespace kvc::cluster {

struct ClusterClientOptions {
  net::NodeClientOptions node;  // for every node; timeout_ms is the call's deadline
  // The node to prefer for reads (an id or an address). Empty: the nodes
  // whose address names this host (loopback, the host name, one of its
  // interface addresses). Environment: KVC_CLUSTER_LOCAL_NODE.
  std::string local_node;
  // How long a node that failed is skipped. Default: 1000 ms.
  uint32_t down_ms = 1000;
  // The "etcd://..." address the membership comes from (ConnectCluster sets
  // it): revision counts, delete hints and tenants go there. Empty (static
  // peers, tests): the nodes alone, no cluster configuration.
  std::string etcd_address;
};

// The owners of the previous view stay readable this long after a
// membership change (a joining node fills lazily).
constexpr int64_t kPreviousViewMs = 60000;

Result<std::unique_ptr<net::NodeClient>> OpenClusterClient(std::unique_ptr<MembershipSource> source,
                                                           const ClusterClientOptions& options);

}  // namespace kvc::cluster

#endif  // KVC_CLUSTER_CLUSTER_CLIENT_H_
