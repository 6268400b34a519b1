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
// Thread-safe: pure functions.
#ifndef KVC_CLUSTER_ETCD_LAYOUT_H_
#define KVC_CLUSTER_ETCD_LAYOUT_H_

#include <string>
#include <vector>

#include "cluster/membership.h"
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

}  // namespace kvc::cluster

#endif  // KVC_CLUSTER_ETCD_LAYOUT_H_
