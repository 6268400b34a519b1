// Compiled only into kvc_net (libkvc/cluster/CMakeLists.txt).
#ifdef KVC_NET_BUILD
#include "cluster/etcd_layout.h"

#include <nlohmann/json.hpp>

namespace kvc::cluster {

bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-')) return false;
  return true;
}

Result<EtcdAddress> ParseEtcdAddress(const std::string& address) {
  const std::string scheme = "etcd://";
  if (address.compare(0, scheme.size(), scheme) != 0)
    return InvalidArgument("a cluster address is etcd://HOST:PORT[,HOST:PORT...]/CLUSTER, not '" + address + "'");
  const std::string rest = address.substr(scheme.size());
  const size_t slash = rest.find('/');
  if (slash == std::string::npos)
    return InvalidArgument("cluster address '" + address + "' names no cluster: etcd://HOST:PORT/CLUSTER");
  EtcdAddress a;
  a.cluster = rest.substr(slash + 1);
  if (!ValidName(a.cluster))
    return InvalidArgument("cluster name '" + a.cluster + "' must be 1-64 of [A-Za-z0-9_.-]");
  const std::string hosts = rest.substr(0, slash);
  size_t pos = 0;
  while (true) {
    const size_t comma = hosts.find(',', pos);
    const std::string ep = hosts.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    const size_t colon = ep.rfind(':');
    bool ok = colon != std::string::npos && colon > 0 && colon + 1 < ep.size() && ep.size() - colon - 1 <= 5;
    for (size_t i = colon + 1; ok && i < ep.size(); ++i) ok = std::isdigit(static_cast<unsigned char>(ep[i]));
    if (ok) {
      const long port = std::stol(ep.substr(colon + 1));
      ok = port >= 1 && port <= 65535;
    }
    if (!ok) return InvalidArgument("etcd endpoint '" + ep + "' in '" + address + "' is not HOST:PORT");
    a.endpoints.push_back(ep);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return a;
}

std::string ClusterPrefix(const std::string& cluster) { return "/kvc/" + cluster + "/"; }
std::string NodesPrefix(const std::string& cluster) { return ClusterPrefix(cluster) + "nodes/"; }
std::string NodeKey(const std::string& cluster, const std::string& id) { return NodesPrefix(cluster) + id; }
std::string ConfigKey(const std::string& cluster) { return ClusterPrefix(cluster) + "config"; }
std::string DrainingKey(const std::string& cluster, const std::string& id) {
  return ClusterPrefix(cluster) + "draining/" + id;
}

std::string NodeStateName(NodeState s) { return s == NodeState::kDraining ? "draining" : "up"; }

std::string EncodeNode(const NodeInfo& n, const std::string& version) {
  nlohmann::json j{{"address", n.address}, {"zone", n.zone}, {"capacity_bytes", n.capacity_bytes},
                   {"state", NodeStateName(n.state)}, {"version", version}};
  return j.dump();
}

Result<NodeInfo> DecodeNode(const std::string& id, const std::string& json) {
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return ParseError("node record '" + id + "' is not a JSON object");
  NodeInfo n;
  n.id = id;
  if (!j.contains("address") || !j["address"].is_string() || j["address"].get<std::string>().empty())
    return ParseError("node record '" + id + "' has no address");
  n.address = j["address"].get<std::string>();
  if (j.contains("zone") && j["zone"].is_string()) n.zone = j["zone"].get<std::string>();
  if (j.contains("capacity_bytes") && j["capacity_bytes"].is_number_unsigned())
    n.capacity_bytes = j["capacity_bytes"].get<uint64_t>();
  const std::string state = j.contains("state") && j["state"].is_string() ? j["state"].get<std::string>() : "up";
  if (state == "draining") n.state = NodeState::kDraining;
  else if (state == "up") n.state = NodeState::kUp;
  else return ParseError("node record '" + id + "' has unknown state '" + state + "'");
  if (j.contains("handoff") && j["handoff"].is_string()) n.handoff = j["handoff"].get<std::string>();
  if (j.contains("handed_off") && j["handed_off"].is_number_unsigned()) n.handed_off = j["handed_off"].get<uint64_t>();
  return n;
}

std::string EncodeConfig(const ClusterConfig& c) {
  return nlohmann::json{{"replication", c.replication}, {"write_quorum", c.write_quorum}}.dump();
}

Result<ClusterConfig> DecodeConfig(const std::string& json) {
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return ParseError("the cluster config is not a JSON object");
  ClusterConfig c;
  if (j.contains("replication")) {
    if (!j["replication"].is_number_unsigned() || j["replication"].get<uint64_t>() < 1 ||
        j["replication"].get<uint64_t>() > 64)
      return ParseError("the cluster config's replication must be in 1..64");
    c.replication = j["replication"].get<uint32_t>();
  }
  if (j.contains("write_quorum")) {
    if (!j["write_quorum"].is_number_unsigned() || j["write_quorum"].get<uint64_t>() < 1 ||
        j["write_quorum"].get<uint64_t>() > c.replication)
      return ParseError("the cluster config's write_quorum must be in 1..replication");
    c.write_quorum = j["write_quorum"].get<uint32_t>();
  }
  return c;
}

}  // namespace kvc::cluster
#endif  // KVC_NET_BUILD
