// NodeService: an etcd cluster's configuration applied to the node
// (cluster/config_sync.h): cluster tenants, counted revision bumps, missed
// deletes. Compiled only into kvc_net.
#ifdef KVC_NET_BUILD
#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "cluster/etcd_layout.h"
#include "net/node_service.h"
#include "tier/ssd_io.h"

namespace kvc::net {

namespace {

constexpr const char* kLedgerFormat = "kvc-cluster-revisions-1";

v1::NamespaceSpec SpecOfNamespace(const NodeNamespace& n) {
  v1::NamespaceSpec s;
  SpecOf(n, &s);
  return s;
}

Status WriteLedger(const std::string& path, const std::map<std::string, uint64_t>& counts) {
  const std::filesystem::path p(path);
  const std::string dir = p.parent_path().empty() ? "." : p.parent_path().string();
  return ssd::ReplaceFileAtomically(dir, p.filename().string(),
                               nlohmann::json{{"format", kLedgerFormat}, {"counts", counts}}.dump() + "\n");
}

}  // namespace

// The caller a cluster record names: "" is the no-tenant caller.
static Result<Caller> CallerOf(const Cache& cache, const std::string& tenant) {
  if (tenant.empty()) return Caller{};
  auto t = cache.tenants().Find(tenant);
  if (!t) return NotFound("no tenant named '" + tenant + "' on this node");
  Caller c;
  c.tenant = t->id;
  c.name = t->name;
  if (t->isolation == Isolation::kIsolated) c.salt = t->salt;
  return c;
}

Status NodeService::ApplyClusterTenants(const std::vector<TenantConfig>& tenants) {
  const std::string& path = cache_.options().tenants_path;
  if (path.empty()) return Status(Code::kUnsupported, "this node has no tenants file to take the cluster's tenants");
  bool changed = false;
  KVC_RETURN_IF_ERROR(TenantRegistry::SyncCluster(path, tenants, &changed));
  if (!changed) return Status::Ok();
  return cache_.ReloadTenants();
}

Result<uint64_t> NodeService::ApplyClusterBump(const std::string& tenant, const NodeNamespace& ns, uint64_t count) {
  auto caller = CallerOf(cache_, tenant);
  if (!caller.ok()) return caller.status();
  auto st = Open(*caller, SpecOfNamespace(ns));
  if (!st.ok()) return st.status();
  const std::string id = cluster::NamespaceId(tenant, ns);
  std::lock_guard<std::mutex> lk(ledger_mu_);
  uint64_t& applied = ledger_[id];
  if (count <= applied) return (*st)->epoch.load(std::memory_order_acquire);
  const uint64_t epoch = cache_.BumpRevision(**st);
  applied = count;
  if (!ledger_path_.empty()) {
    Status ws = WriteLedger(ledger_path_, ledger_);
    // The bump is applied; only its record is not: after a restart it is
    // applied again, which costs cached blocks, never correctness.
    if (!ws.ok()) std::fprintf(stderr, "kvc: cluster: %s\n", ws.ToString().c_str());
  }
  return epoch;
}

Status NodeService::ApplyClusterDelete(const std::string& tenant, const NodeNamespace& ns, const BlockKey& key) {
  auto caller = CallerOf(cache_, tenant);
  if (!caller.ok()) return caller.status();
  auto st = Open(*caller, SpecOfNamespace(ns));
  if (!st.ok()) return st.status();
  return cache_.Delete(**st, key);
}

Status NodeService::set_cluster_ledger(const std::string& path) {
  std::map<std::string, uint64_t> counts;
  std::string body;
  Status rs = path.empty() ? NotFound("") : ssd::ReadSmallFile(path, &body);
  if (rs.ok()) {
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object() || j.value("format", "") != kLedgerFormat || !j.contains("counts") ||
        !j["counts"].is_object())
      return ParseError(path + ": not a kvc cluster revisions file (want \"format\": \"" + kLedgerFormat + "\")");
    for (auto it = j["counts"].begin(); it != j["counts"].end(); ++it) {
      if (!it.value().is_number_unsigned()) return ParseError(path + ": count of " + it.key() + " is not a number");
      counts[it.key()] = it.value().get<uint64_t>();
    }
  } else if (rs.code() != Code::kNotFound) {
    return rs;
  }
  std::lock_guard<std::mutex> lk(ledger_mu_);
  ledger_path_ = path;
  ledger_ = std::move(counts);
  return Status::Ok();
}

}  // namespace kvc::net
#endif  // KVC_NET_BUILD
