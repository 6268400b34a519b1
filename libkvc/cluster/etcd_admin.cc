// Compiled only into kvc_net (libkvc/cluster/CMakeLists.txt).
#ifdef KVC_NET_BUILD
#include "cluster/etcd_admin.h"

#include <openssl/rand.h>

#include <algorithm>
#include <chrono>

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

// The etcd connection for the cluster configuration: only etcd:// addresses.
Result<std::unique_ptr<EtcdClient>> ConnectConfig(const std::string& address, EtcdAddress* a) {
  if (address.rfind("peers:", 0) == 0)
    return InvalidArgument("'" + address.substr(0, 64) +
                           "' is a static peer list: it has no etcd to hold the cluster's tenants; give an "
                           "etcd://HOST:PORT/NAME address, or create tenants on each node (kvc tenant --node)");
  return Connect(address, a);
}

using Clock = std::chrono::steady_clock;

uint32_t MsLeft(Clock::time_point end) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<uint32_t>(left);
}

Status CheckTenantName(const std::string& name) {
  if (!ValidName(name)) return InvalidArgument("tenant name '" + name + "' must be 1-64 of [A-Za-z0-9_.-]");
  return Status::Ok();
}

std::string RandomHex(size_t bytes) {
  static const char* d = "0123456789abcdef";
  std::string raw(bytes, '\0'), h;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) {
    // Unique enough for a hint id without the system generator.
    const auto t = Clock::now().time_since_epoch().count();
    for (size_t i = 0; i < bytes; ++i) raw[i] = static_cast<char>(t >> (8 * (i % 8)));
  }
  for (unsigned char c : raw) {
    h.push_back(d[c >> 4]);
    h.push_back(d[c & 15]);
  }
  return h;
}

}  // namespace

// ---- Cluster tenants ----

Result<std::string> ClusterTenantCreate(EtcdClient& e, const std::string& cluster, TenantConfig spec,
                                        uint32_t timeout_ms) {
  KVC_RETURN_IF_ERROR(CheckTenantName(spec.name));
  auto credential = TenantRegistry::Mint(spec);
  if (!credential.ok()) return credential.status();
  const std::string key = TenantKey(cluster, spec.name);
  auto t = e.Txn({{key, EtcdCompare::Target::kCreateRevision, 0}}, {{key, EncodeTenant(spec), 0, false}}, timeout_ms);
  if (!t.ok()) return t.status();
  if (!t->succeeded)
    return Status(Code::kExists, "tenant '" + spec.name + "' already exists in cluster '" + cluster + "'");
  return *credential;
}

Result<std::string> ClusterTenantListJson(EtcdClient& e, const std::string& cluster, uint32_t timeout_ms) {
  const std::string prefix = TenantsPrefix(cluster);
  auto r = e.Range(prefix, true, timeout_ms);
  if (!r.ok()) return r.status();
  std::vector<TenantConfig> tenants;
  for (const auto& kv : r->kvs) {
    const std::string name = kv.key.substr(prefix.size());
    auto t = DecodeTenant(name, kv.value);
    if (!t.ok())
      return Status(Code::kCorrupt, "etcd key " + kv.key + " does not parse: " + t.status().message());
    tenants.push_back(std::move(*t));
  }
  std::sort(tenants.begin(), tenants.end(),
            [](const TenantConfig& x, const TenantConfig& y) { return x.name < y.name; });
  nlohmann::json out = nlohmann::json::array();
  for (const auto& t : tenants)
    out.push_back({{"name", t.name},
                   {"isolation", TenantRegistry::IsolationName(t.isolation)},
                   {"host_quota_bytes", t.host_quota_bytes},
                   {"ssd_quota_bytes", t.ssd_quota_bytes},
                   {"borrow", t.borrow}});
  return out.dump();
}

Status ClusterTenantSetQuota(EtcdClient& e, const std::string& cluster, const std::string& name,
                             std::optional<uint64_t> host, std::optional<uint64_t> ssd, std::optional<bool> borrow,
                             uint32_t timeout_ms) {
  KVC_RETURN_IF_ERROR(CheckTenantName(name));
  const auto end = Clock::now() + std::chrono::milliseconds(timeout_ms);
  const std::string key = TenantKey(cluster, name);
  for (;;) {
    auto cur = e.Range(key, false, std::max<uint32_t>(1, MsLeft(end)));
    if (!cur.ok()) return cur.status();
    if (cur->kvs.empty()) return NotFound("no tenant '" + name + "' in cluster '" + cluster + "'");
    auto t = DecodeTenant(name, cur->kvs[0].value);
    if (!t.ok()) return Status(Code::kCorrupt, "etcd key " + key + " does not parse: " + t.status().message());
    if (host) t->host_quota_bytes = *host;
    if (ssd) t->ssd_quota_bytes = *ssd;
    if (borrow) t->borrow = *borrow;
    auto r = e.Txn({{key, EtcdCompare::Target::kModRevision, cur->kvs[0].mod_revision}},
                   {{key, EncodeTenant(*t), 0, false}}, std::max<uint32_t>(1, MsLeft(end)));
    if (!r.ok()) return r.status();
    if (r->succeeded) return Status::Ok();
    if (MsLeft(end) == 0)
      return Status(Code::kTimeout, "tenant '" + name + "' kept changing in etcd for " + std::to_string(timeout_ms) +
                                        " ms; try again");
  }
}

Status ClusterTenantDelete(EtcdClient& e, const std::string& cluster, const std::string& name, uint32_t timeout_ms) {
  KVC_RETURN_IF_ERROR(CheckTenantName(name));
  auto n = e.Delete(TenantKey(cluster, name), false, timeout_ms);
  if (!n.ok()) return n.status();
  if (*n == 0) return NotFound("no tenant '" + name + "' in cluster '" + cluster + "'");
  return Status::Ok();
}

Result<std::string> ClusterTenantCreate(const std::string& address, TenantConfig spec, uint32_t timeout_ms) {
  EtcdAddress a;
  auto etcd = ConnectConfig(address, &a);
  if (!etcd.ok()) return etcd.status();
  return ClusterTenantCreate(**etcd, a.cluster, std::move(spec), timeout_ms);
}

Result<std::string> ClusterTenantListJson(const std::string& address, uint32_t timeout_ms) {
  EtcdAddress a;
  auto etcd = ConnectConfig(address, &a);
  if (!etcd.ok()) return etcd.status();
  return ClusterTenantListJson(**etcd, a.cluster, timeout_ms);
}

Status ClusterTenantSetQuota(const std::string& address, const std::string& name, std::optional<uint64_t> host,
                             std::optional<uint64_t> ssd, std::optional<bool> borrow, uint32_t timeout_ms) {
  EtcdAddress a;
  auto etcd = ConnectConfig(address, &a);
  if (!etcd.ok()) return etcd.status();
  return ClusterTenantSetQuota(**etcd, a.cluster, name, host, ssd, borrow, timeout_ms);
}

Status ClusterTenantDelete(const std::string& address, const std::string& name, uint32_t timeout_ms) {
  EtcdAddress a;
  auto etcd = ConnectConfig(address, &a);
  if (!etcd.ok()) return etcd.status();
  return ClusterTenantDelete(**etcd, a.cluster, name, timeout_ms);
}

// ---- Revision counts and delete hints ----

Result<uint64_t> CountRevisionBump(EtcdClient& e, const std::string& cluster, const std::string& tenant,
                                   const net::NodeNamespace& ns, uint32_t timeout_ms) {
  const auto end = Clock::now() + std::chrono::milliseconds(timeout_ms);
  const std::string key = RevisionKey(cluster, NamespaceId(tenant, ns));
  for (;;) {
    auto cur = e.Range(key, false, std::max<uint32_t>(1, MsLeft(end)));
    if (!cur.ok()) return cur.status();
    RevisionRecord rec;
    EtcdCompare cmp{key, EtcdCompare::Target::kCreateRevision, 0};
    if (!cur->kvs.empty()) {
      auto old = DecodeRevision(cur->kvs[0].value);
      if (!old.ok())
        return Status(Code::kCorrupt, "etcd key " + key + " does not parse: " + old.status().message());
      rec.count = old->count;
      cmp = {key, EtcdCompare::Target::kModRevision, cur->kvs[0].mod_revision};
    }
    rec.count += 1;
    rec.tenant = tenant;
    rec.ns = ns;
    auto r = e.Txn({cmp}, {{key, EncodeRevision(rec), 0, false}}, std::max<uint32_t>(1, MsLeft(end)));
    if (!r.ok()) return r.status();
    if (r->succeeded) return rec.count;
    if (MsLeft(end) == 0)
      return Status(Code::kTimeout, "the revision count in etcd kept changing for " + std::to_string(timeout_ms) +
                                        " ms; try again");
  }
}

Result<std::string> WriteDeleteHint(EtcdClient& e, const std::string& cluster, const std::string& node_id,
                                    const DeleteHint& hint, uint32_t timeout_ms) {
  if (!ValidName(node_id)) return InvalidArgument("node id '" + node_id + "' must be 1-64 of [A-Za-z0-9_.-]");
  const std::string key = HintsPrefix(cluster, node_id) + RandomHex(16);
  auto r = e.Put({key, EncodeDeleteHint(hint), 0, false}, timeout_ms);
  if (!r.ok()) return r.status();
  return key;
}

Status WriteDeleteHints(EtcdClient& e, const std::string& cluster, const std::vector<std::string>& node_ids,
                        const DeleteHint& hint, uint32_t timeout_ms) {
  const auto end = Clock::now() + std::chrono::milliseconds(timeout_ms);
  const std::string value = EncodeDeleteHint(hint);
  constexpr size_t kPerTxn = 64;
  for (size_t i = 0; i < node_ids.size(); i += kPerTxn) {
    std::vector<EtcdPut> puts;
    for (size_t j = i; j < node_ids.size() && j < i + kPerTxn; ++j) {
      if (!ValidName(node_ids[j]))
        return InvalidArgument("node id '" + node_ids[j] + "' must be 1-64 of [A-Za-z0-9_.-]");
      puts.push_back({HintsPrefix(cluster, node_ids[j]) + RandomHex(16), value, 0, false});
    }
    auto t = e.Txn({}, puts, std::max<uint32_t>(1, MsLeft(end)));
    if (!t.ok()) return t.status();
  }
  return Status::Ok();
}

Result<std::vector<RosterEntry>> ReadRoster(EtcdClient& e, const std::string& cluster, uint32_t timeout_ms) {
  const std::string prefix = RosterPrefix(cluster);
  auto r = e.Range(prefix, true, timeout_ms);
  if (!r.ok()) return r.status();
  std::vector<RosterEntry> out;
  for (const auto& kv : r->kvs) {
    const std::string id = kv.key.substr(prefix.size());
    if (!ValidName(id)) continue;  // not a node id: nothing could take a hint for it
    auto d = DecodeRosterEntry(id, kv.value);
    if (d.ok()) {
      out.push_back(std::move(*d));
    } else {
      RosterEntry bare;
      bare.id = id;
      out.push_back(std::move(bare));
    }
  }
  std::sort(out.begin(), out.end(), [](const RosterEntry& a, const RosterEntry& b) { return a.id < b.id; });
  return out;
}

Result<std::map<std::string, std::string>> RegisteredAddresses(EtcdClient& e, const std::string& cluster,
                                                               uint32_t timeout_ms) {
  const std::string prefix = NodesPrefix(cluster);
  auto r = e.Range(prefix, true, timeout_ms);
  if (!r.ok()) return r.status();
  std::map<std::string, std::string> out;
  for (const auto& kv : r->kvs) {
    const std::string id = kv.key.substr(prefix.size());
    auto n = DecodeNode(id, kv.value);
    if (n.ok() && !n->address.empty()) out[id] = n->address;
  }
  return out;
}

Status ForgetNode(const std::string& address, const std::string& node_id, uint64_t* hints_removed,
                  uint32_t timeout_ms) {
  if (hints_removed) *hints_removed = 0;
  if (!ValidName(node_id)) return InvalidArgument("node id '" + node_id + "' must be 1-64 of [A-Za-z0-9_.-]");
  if (address.rfind("peers:", 0) == 0)
    return InvalidArgument("'" + address.substr(0, 64) + "' is a static peer list: it has no roster to forget a node from");
  const auto end = Clock::now() + std::chrono::milliseconds(timeout_ms);
  auto left = [&] { return std::max<uint32_t>(1, MsLeft(end)); };
  EtcdAddress a;
  auto etcd = Connect(address, &a);
  if (!etcd.ok()) return etcd.status();
  EtcdClient& e = **etcd;
  const std::string node_key = NodeKey(a.cluster, node_id), roster_key = RosterKey(a.cluster, node_id);
  auto registered = [&]() -> Result<bool> {
    auto r = e.Range(node_key, false, left());
    if (!r.ok()) return r.status();
    return !r->kvs.empty();
  };
  auto reg = registered();
  if (!reg.ok()) return reg.status();
  if (*reg)
    return InvalidArgument("node '" + node_id + "' is registered in cluster '" + a.cluster +
                           "': only a node that has stopped can be forgotten (stop it first)");
  auto roster = e.Range(roster_key, false, left());
  if (!roster.ok()) return roster.status();
  auto removed = e.Delete(HintsPrefix(a.cluster, node_id), true, left());
  if (!removed.ok()) return removed.status();
  if (hints_removed) *hints_removed = static_cast<uint64_t>(*removed);
  if (!roster->kvs.empty()) {
    auto d = e.DeleteIf(roster_key, roster->kvs[0].mod_revision, left());
    if (!d.ok()) return d.status();
  }
  // A node that registered meanwhile wrote its roster record before its
  // registration: put it back, so that deletes keep reaching it.
  reg = registered();
  if (!reg.ok()) return reg.status();
  if (*reg) {
    if (!roster->kvs.empty())
      (void)e.Txn({{roster_key, EtcdCompare::Target::kCreateRevision, 0}},
                  {{roster_key, roster->kvs[0].value, 0, false}}, left());
    return InvalidArgument("node '" + node_id + "' registered while it was being forgotten: its roster record "
                           "was kept" + (*removed ? " (" + std::to_string(*removed) + " pending hint(s) were "
                           "already removed)" : std::string()));
  }
  if (roster->kvs.empty() && *removed == 0)
    return NotFound("cluster '" + a.cluster + "' has no roster record and no hints for node '" + node_id + "'");
  return Status::Ok();
}

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
Result<std::string> ClusterTenantCreate(const std::string&, TenantConfig, uint32_t) {
  return Status(Code::kUnsupported, "this kvc was built without etcd membership");
}
Result<std::string> ClusterTenantListJson(const std::string&, uint32_t) {
  return Status(Code::kUnsupported, "this kvc was built without etcd membership");
}
Status ClusterTenantSetQuota(const std::string&, const std::string&, std::optional<uint64_t>, std::optional<uint64_t>,
                             std::optional<bool>, uint32_t) {
  return Status(Code::kUnsupported, "this kvc was built without etcd membership");
}
Status ClusterTenantDelete(const std::string&, const std::string&, uint32_t) {
  return Status(Code::kUnsupported, "this kvc was built without etcd membership");
}
// No EtcdClient exists in such a build: the cluster client never calls these.
Result<std::string> ClusterTenantCreate(EtcdClient&, const std::string&, TenantConfig, uint32_t) {
  return Status(Code::kUnsupported, "this kvc was built without etcd membership");
}
Result<std::string> ClusterTenantListJson(EtcdClient&, const std::string&, uint32_t) {
  return Status(Code::kUnsupported, "this kvc was built without etcd membership");
}
Status ClusterTenantSetQuota(EtcdClient&, const std::string&, const std::string&, std::optional<uint64_t>,
                             std::optional<uint64_t>, std::optional<bool>, uint32_t) {
  return Status(Code::kUnsupported, "this kvc was built without etcd membership");
}
Status ClusterTenantDelete(EtcdClient&, const std::string&, const std::string&, uint32_t) {
  return Status(Code::kUnsupported, "this kvc was built without etcd membership");
}
Result<uint64_t> CountRevisionBump(EtcdClient&, const std::string&, const std::string&, const net::NodeNamespace&,
                                   uint32_t) {
  return Status(Code::kUnsupported, "this kvc was built without etcd membership");
}
Result<std::string> WriteDeleteHint(EtcdClient&, const std::string&, const std::string&, const DeleteHint&,
                                    uint32_t) {
  return Status(Code::kUnsupported, "this kvc was built without etcd membership");
}

Status WriteDeleteHints(EtcdClient&, const std::string&, const std::vector<std::string>&, const DeleteHint&,
                        uint32_t) {
  return Status(Code::kUnsupported, "this kvc was built without etcd membership");
}
Result<std::vector<RosterEntry>> ReadRoster(EtcdClient&, const std::string&, uint32_t) {
  return Status(Code::kUnsupported, "this kvc was built without etcd membership");
}
Result<std::map<std::string, std::string>> RegisteredAddresses(EtcdClient&, const std::string&, uint32_t) {
  return Status(Code::kUnsupported, "this kvc was built without etcd membership");
}
Status ForgetNode(const std::string&, const std::string&, uint64_t*, uint32_t) {
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
