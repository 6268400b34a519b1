// Compiled only into kvc_net (libkvc/cluster/CMakeLists.txt).
#ifdef KVC_NET_BUILD
#include "cluster/etcd_admin.h"

#include <nlohmann/json.hpp>

#if KVC_HAVE_ETCD
#include "cluster/etcd_client.h"
#endif
#include "cluster/etcd_layout.h"

namespace kvc::cluster {

#if KVC_HAVE_ETCD

namespace {

Result<std::unique_ptr<EtcdClient>> Connect(const std::string& address, EtcdAddress* a) {
  auto parsed = ParseEtcdAddress(address);
  if (!parsed.ok()) return parsed.status();
  *a = *parsed;
  return EtcdClient::Create(a->endpoints);
}

}  // namespace

Status InitCluster(const std::string& address, const ClusterConfig& config, bool overwrite, uint32_t timeout_ms) {
  if (config.replication < 1 || config.replication > 64)
    return InvalidArgument("replication must be in 1..64, not " + std::to_string(config.replication));
  if (config.write_quorum < 1 || config.write_quorum > config.replication)
    return InvalidArgument("write_quorum must be in 1..replication (" + std::to_string(config.replication) +
                           "), not " + std::to_string(config.write_quorum));
  EtcdAddress a;
  auto etcd = Connect(address, &a);
  if (!etcd.ok()) return etcd.status();
  EtcdPut put{ConfigKey(a.cluster), EncodeConfig(config), 0, false};
  if (overwrite) {
    auto r = (*etcd)->Put(put, timeout_ms);
    return r.ok() ? Status::Ok() : r.status();
  }
  auto r = (*etcd)->Txn({{put.key, EtcdCompare::Target::kCreateRevision, 0}}, {put}, timeout_ms);
  if (!r.ok()) return r.status();
  if (!r->succeeded)
    return Status(Code::kExists, "cluster '" + a.cluster + "' already has a config (overwrite it to change it)");
  return Status::Ok();
}

Status SetNodeState(const std::string& address, const std::string& id, NodeState state, uint32_t timeout_ms) {
  if (!ValidName(id)) return InvalidArgument("node id '" + id + "' must be 1-64 of [A-Za-z0-9_.-]");
  EtcdAddress a;
  auto etcd = Connect(address, &a);
  if (!etcd.ok()) return etcd.status();
  EtcdClient& e = **etcd;
  const std::string key = NodeKey(a.cluster, id);
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto cur = e.Range(key, false, timeout_ms);
    if (!cur.ok()) return cur.status();
    if (cur->kvs.empty()) return NotFound("no node '" + id + "' is registered in cluster '" + a.cluster + "'");
    // The mark first: a node that re-registers from now on takes the state.
    if (state == NodeState::kDraining) {
      auto m = e.Put({DrainingKey(a.cluster, id), "{}", 0, false}, timeout_ms);
      if (!m.ok()) return m.status();
    } else {
      auto m = e.Delete(DrainingKey(a.cluster, id), false, timeout_ms);
      if (!m.ok()) return m.status();
    }
    auto rec = nlohmann::json::parse(cur->kvs[0].value, nullptr, false);
    if (rec.is_discarded() || !rec.is_object())
      return Status(Code::kCorrupt, "the record of node '" + id + "' is not a JSON object");
    rec["state"] = NodeStateName(state);
    auto t = e.Txn({{key, EtcdCompare::Target::kModRevision, cur->kvs[0].mod_revision}},
                   {{key, rec.dump(), 0, /*ignore_lease=*/true}}, timeout_ms);
    if (!t.ok()) return t.status();
    if (t->succeeded) return Status::Ok();
  }
  return Status(Code::kUnavailable, "node '" + id + "' kept changing; try again");
}

#else  // !KVC_HAVE_ETCD

Status InitCluster(const std::string&, const ClusterConfig&, bool, uint32_t) {
  return Status(Code::kUnsupported, "this kvc was built without etcd membership");
}
Status SetNodeState(const std::string&, const std::string&, NodeState, uint32_t) {
  return Status(Code::kUnsupported, "this kvc was built without etcd membership");
}

#endif  // KVC_HAVE_ETCD

Result<std::string> MembershipJson(const std::string& address, uint32_t timeout_ms) {
  Result<std::unique_ptr<MembershipSource>> src =
      address.rfind("peers:", 0) == 0 ? StaticMembership(address) : EtcdMembership(address, timeout_ms);
  if (!src.ok()) return src.status();
  auto v = (*src)->Current();
  nlohmann::json nodes = nlohmann::json::array();
  for (const auto& n : v->nodes)
    nodes.push_back({{"id", n.id}, {"address", n.address}, {"zone", n.zone}, {"capacity_bytes", n.capacity_bytes},
                     {"state", NodeStateName(n.state)}, {"registered_epoch", n.registered_epoch},
                     {"handoff", n.handoff}, {"handed_off", n.handed_off}});
  std::string cluster;
  if (auto a = ParseEtcdAddress(address); a.ok()) cluster = a->cluster;
  nlohmann::json j{{"cluster", cluster}, {"epoch", v->epoch}, {"replication", v->config.replication},
                   {"write_quorum", v->config.write_quorum}, {"nodes", nodes}};
  return j.dump();
}

}  // namespace kvc::cluster
#endif  // KVC_NET_BUILD
