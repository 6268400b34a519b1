// Compiled only into kvc_net (libkvc/cluster/CMakeLists.txt).
#ifdef KVC_NET_BUILD
#include "cluster/etcd_layout.h"

#include <openssl/sha.h>

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

// ---- Cluster configuration ----

namespace {

std::string ToHex(const std::string& raw) {
  static const char* d = "0123456789abcdef";
  std::string h;
  h.reserve(raw.size() * 2);
  for (unsigned char c : raw) {
    h.push_back(d[c >> 4]);
    h.push_back(d[c & 15]);
  }
  return h;
}

Result<std::string> FromHex(const std::string& h, const char* what) {
  if (h.size() % 2 != 0) return ParseError(std::string(what) + " is not hex");
  std::string raw(h.size() / 2, '\0');
  auto v = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < raw.size(); ++i) {
    const int a = v(h[2 * i]), b = v(h[2 * i + 1]);
    if (a < 0 || b < 0) return ParseError(std::string(what) + " is not hex");
    raw[i] = static_cast<char>(a * 16 + b);
  }
  return raw;
}

nlohmann::json NsJson(const net::NodeNamespace& ns) {
  return {{"hash", ns.hash},         {"model", ns.model},       {"revision", ns.revision},
          {"adapter", ns.adapter},   {"dtype", ns.dtype},       {"layers", ns.layers},
          {"kv_heads", ns.kv_heads}, {"head_dim", ns.head_dim}, {"block_tokens", ns.block_tokens},
          {"shards", ns.shards}};
}

Result<net::NodeNamespace> NsFromJson(const nlohmann::json& j) {
  if (!j.is_object()) return ParseError("a namespace record is not a JSON object");
  net::NodeNamespace ns;
  try {
    ns.hash = j.at("hash").get<std::string>();
    ns.model = j.at("model").get<std::string>();
    ns.revision = j.at("revision").get<std::string>();
    ns.adapter = j.at("adapter").get<std::string>();
    ns.dtype = j.at("dtype").get<std::string>();
    ns.layers = j.at("layers").get<uint32_t>();
    ns.kv_heads = j.at("kv_heads").get<uint32_t>();
    ns.head_dim = j.at("head_dim").get<uint32_t>();
    ns.block_tokens = j.at("block_tokens").get<uint32_t>();
    ns.shards = j.at("shards").get<uint32_t>();
  } catch (const nlohmann::json::exception& e) {
    return ParseError(std::string("a namespace record: ") + e.what());
  }
  return ns;
}

}  // namespace

std::string TenantsPrefix(const std::string& cluster) { return ClusterPrefix(cluster) + "tenants/"; }
std::string TenantKey(const std::string& cluster, const std::string& name) { return TenantsPrefix(cluster) + name; }
std::string RevisionsPrefix(const std::string& cluster) { return ClusterPrefix(cluster) + "revisions/"; }
std::string RevisionKey(const std::string& cluster, const std::string& ns_id) {
  return RevisionsPrefix(cluster) + ns_id;
}
std::string HintsPrefix(const std::string& cluster, const std::string& node_id) {
  return ClusterPrefix(cluster) + "hints/" + node_id + "/";
}
std::string RosterPrefix(const std::string& cluster) { return ClusterPrefix(cluster) + "roster/"; }
std::string RosterKey(const std::string& cluster, const std::string& node_id) {
  return RosterPrefix(cluster) + node_id;
}

std::string EncodeRosterEntry(const RosterEntry& e) {
  return nlohmann::json{{"address", e.address}, {"first_registered", e.first_registered_ms}}.dump();
}

Result<RosterEntry> DecodeRosterEntry(const std::string& id, const std::string& json) {
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Status(Code::kCorrupt, "the roster record of node '" + id + "' is not a JSON object");
  RosterEntry e;
  e.id = id;
  if (auto it = j.find("address"); it != j.end() && it->is_string()) e.address = it->get<std::string>();
  if (auto it = j.find("first_registered"); it != j.end() && it->is_number_integer())
    e.first_registered_ms = it->get<int64_t>();
  return e;
}

std::string EncodeTenant(const TenantConfig& t) {
  return nlohmann::json{{"isolation", TenantRegistry::IsolationName(t.isolation)},
                        {"host_quota_bytes", t.host_quota_bytes},
                        {"ssd_quota_bytes", t.ssd_quota_bytes},
                        {"borrow", t.borrow},
                        {"credential_sha256", t.credential_sha256},
                        {"salt", ToHex(t.salt)}}
      .dump();
}

Result<TenantConfig> DecodeTenant(const std::string& name, const std::string& json) {
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return ParseError("tenant record '" + name + "' is not a JSON object");
  TenantConfig t;
  t.name = name;
  t.cluster = true;
  try {
    auto iso = TenantRegistry::ParseIsolation(j.at("isolation").get<std::string>());
    if (!iso.ok()) return ParseError("tenant record '" + name + "': " + iso.status().message());
    t.isolation = *iso;
    t.host_quota_bytes = j.at("host_quota_bytes").get<uint64_t>();
    t.ssd_quota_bytes = j.at("ssd_quota_bytes").get<uint64_t>();
    t.borrow = j.at("borrow").get<bool>();
    t.credential_sha256 = j.at("credential_sha256").get<std::string>();
    auto salt = FromHex(j.at("salt").get<std::string>(), "the salt");
    if (!salt.ok()) return ParseError("tenant record '" + name + "': " + salt.status().message());
    t.salt = std::move(*salt);
  } catch (const nlohmann::json::exception& e) {
    return ParseError("tenant record '" + name + "': " + e.what());
  }
  if (t.credential_sha256.size() != 64) return ParseError("tenant record '" + name + "' has no credential hash");
  if (t.isolation == Isolation::kIsolated && t.salt.size() != 32)
    return ParseError("isolated tenant record '" + name + "' has no 32-byte salt");
  return t;
}

std::string NamespaceId(const std::string& tenant, const net::NodeNamespace& ns) {
  // nlohmann::json objects keep their keys sorted: one encoding per value.
  const std::string canon = nlohmann::json{{"tenant", tenant}, {"ns", NsJson(ns)}}.dump();
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(canon.data()), canon.size(), md);
  return ToHex(std::string(reinterpret_cast<const char*>(md), sizeof md));
}

std::string EncodeRevision(const RevisionRecord& r) {
  return nlohmann::json{{"count", r.count}, {"tenant", r.tenant}, {"ns", NsJson(r.ns)}}.dump();
}

Result<RevisionRecord> DecodeRevision(const std::string& json) {
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return ParseError("a revision record is not a JSON object");
  RevisionRecord r;
  if (!j.contains("count") || !j["count"].is_number_unsigned()) return ParseError("a revision record has no count");
  r.count = j["count"].get<uint64_t>();
  if (!j.contains("tenant") || !j["tenant"].is_string()) return ParseError("a revision record has no tenant");
  r.tenant = j["tenant"].get<std::string>();
  if (!j.contains("ns")) return ParseError("a revision record has no namespace");
  auto ns = NsFromJson(j["ns"]);
  if (!ns.ok()) return ns.status();
  r.ns = std::move(*ns);
  return r;
}

std::string EncodeDeleteHint(const DeleteHint& h) {
  return nlohmann::json{{"op", "delete"}, {"tenant", h.tenant}, {"ns", NsJson(h.ns)}, {"key", h.key.Hex()}}.dump();
}

Result<DeleteHint> DecodeDeleteHint(const std::string& json) {
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return ParseError("a hint is not a JSON object");
  if (j.value("op", "") != "delete") return ParseError("a hint's op is not \"delete\"");
  DeleteHint h;
  if (!j.contains("tenant") || !j["tenant"].is_string()) return ParseError("a hint has no tenant");
  h.tenant = j["tenant"].get<std::string>();
  if (!j.contains("ns")) return ParseError("a hint has no namespace");
  auto ns = NsFromJson(j["ns"]);
  if (!ns.ok()) return ns.status();
  h.ns = std::move(*ns);
  if (!j.contains("key") || !j["key"].is_string()) return ParseError("a hint has no key");
  auto key = BlockKey::FromHex(j["key"].get<std::string>());
  if (!key.ok()) return ParseError("a hint's key: " + key.status().message());
  h.key = *key;
  return h;
}

}  // namespace kvc::cluster
#endif  // KVC_NET_BUILD
