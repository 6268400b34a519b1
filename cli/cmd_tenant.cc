// kvc tenant: create, list, show, set-quota and delete the tenants of a cache
// directory or tenants file, through the C ABI's kvc_tenant_* calls, or of a
// live node (--node ADDR, with its admin token) through kvc_node_tenant_*.
#include <cstdio>
#include <optional>

#include <nlohmann/json.hpp>

#include "bench_config.h"
#include "command.h"
#include "node_conn.h"

namespace kvc::cli {
namespace {

struct TenantArgs {
  std::string dir, config, node;
  uint32_t timeout_ms = 0;
  NodeConnFlags conn;
  Output out = Output::kTable;
  std::string name;
  std::string isolation = "isolated";
  std::string host_quota, ssd_quota;
  bool borrow = false;
  std::string borrow_set;  // set-quota: yes|no
};

std::string PathOf(const TenantArgs& a) {
  if (!a.node.empty()) return "node " + a.node;
  return a.config.empty() ? a.dir : a.config;
}

// Where the tenants are: a file, or a live node.
class Target {
 public:
  ~Target() { kvc_node_close(node_); }
  // Connects when --node was given. A failure is printed; returns its exit code.
  int Open(const TenantArgs& a) {
    path_ = PathOf(a);
    if (a.node.empty()) return kExitOk;
    kvc_node_options o = KVC_NODE_OPTIONS_INIT;
    o.timeout_ms = a.timeout_ms;
    std::string error;
    if (!ApplyNodeConnFlags(a.conn, &admin_token_, &o, &error)) return Fail("tenant", error);
    // An etcd:// cluster's tenants are records in etcd (docs/cluster.md):
    // no node checks an admin token there, so none is asked for.
    if (admin_token_.empty() && a.node.rfind("etcd://", 0) != 0)
      return Fail("tenant", "--node needs the node's admin token: --admin-token-file FILE or KVC_ADMIN_TOKEN");
    kvc_error err{};
    if (kvc_node_connect(&node_, a.node.c_str(), &o, &err) != KVC_OK)
      return FailStatus("tenant", "connect " + a.node, err);
    return kExitOk;
  }
  int Create(char** cred, const kvc_tenant_options* o, kvc_error* err) {
    return node_ ? kvc_node_tenant_create(node_, cred, o, err) : kvc_tenant_create(cred, path_.c_str(), o, err);
  }
  int ListJson(char** out, kvc_error* err) {
    return node_ ? kvc_node_tenant_list_json(node_, out, err) : kvc_tenant_list_json(out, path_.c_str(), err);
  }
  int SetQuota(const char* name, int64_t host, int64_t ssd, int32_t borrow, kvc_error* err) {
    return node_ ? kvc_node_tenant_set_quota(node_, name, host, ssd, borrow, err)
                 : kvc_tenant_set_quota(path_.c_str(), name, host, ssd, borrow, err);
  }
  int Delete(const char* name, kvc_error* err) {
    return node_ ? kvc_node_tenant_delete(node_, name, err) : kvc_tenant_delete(path_.c_str(), name, err);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_, admin_token_;
  kvc_node* node_ = nullptr;
};

std::optional<int64_t> SizeArg(const std::string& flag, const std::string& text, int* rc) {
  if (text.empty()) return std::nullopt;
  auto v = ParseSize(text);
  if (!v || *v > static_cast<uint64_t>(INT64_MAX)) {
    *rc = Fail("tenant", flag + ": cannot read '" + text + "' as a size (e.g. 512MiB, 2GiB, 0 for none)");
    return std::nullopt;
  }
  return static_cast<int64_t>(*v);
}

std::optional<nlohmann::json> List(Target& t, kvc_error* err) {
  char* out = nullptr;
  if (t.ListJson(&out, err) != KVC_OK) return std::nullopt;
  auto j = nlohmann::json::parse(out);
  kvc_string_free(out);
  return j;
}

void PrintTable(const nlohmann::json& tenants) {
  std::printf("%-20s %4s %-9s %14s %14s %s\n", "NAME", "ID", "ISOLATION", "HOST_QUOTA", "SSD_QUOTA", "BORROW");
  for (const auto& t : tenants) {
    auto q = [](uint64_t b) { return b ? FormatSize(b) : std::string("-"); };
    // A cluster address lists the cluster's tenants from etcd: no node's ids.
    const std::string id = t.contains("id") ? std::to_string(t["id"].get<unsigned>()) : "-";
    std::printf("%-20s %4s %-9s %14s %14s %s\n", t["name"].get<std::string>().c_str(), id.c_str(),
                t["isolation"].get<std::string>().c_str(), q(t["host_quota_bytes"]).c_str(),
                q(t["ssd_quota_bytes"]).c_str(), t["borrow"].get<bool>() ? "yes" : "no");
  }
}

}  // namespace

Registration RegisterTenant(CLI::App& root) {
  auto a = std::make_shared<TenantArgs>();
  auto* app = root.add_subcommand("tenant", "Manage the tenants of a cache directory, tenants file or live node");
  app->require_subcommand(1);
  app->fallthrough();  // --dir/--config/--json may follow the command too
  auto* where = app->add_option_group("where");
  where->add_option("--dir", a->dir, "Cache directory (its tenants.json)");
  where->add_option("--config", a->config, "Tenants file");
  where->add_option("--node", a->node, "A live node (host:port): it edits its tenants file and applies the change");
  where->require_option(1);
  app->add_option("--timeout-ms", a->timeout_ms, "With --node: deadline of the call (default 10000)");
  AddNodeConnFlags(app, &a->conn);
  AddOutputFlags(app, &a->out, false);

  auto* create = app->add_subcommand("create", "Add a tenant and print its new credential (shown once)");
  create->add_option("name", a->name, "Tenant name")->required();
  create->add_option("--isolation", a->isolation, "isolated (salted keys) or shared")
      ->check(CLI::IsMember({"isolated", "shared"}));
  create->add_option("--host-quota", a->host_quota, "Host tier quota (e.g. 4GiB; 0: none)");
  create->add_option("--ssd-quota", a->ssd_quota, "SSD tier quota (e.g. 100GiB; 0: none)");
  create->add_flag("--borrow", a->borrow, "May exceed the quota while a tier has free room");
  auto* list = app->add_subcommand("list", "List the tenants");
  auto* show = app->add_subcommand("show", "Show one tenant");
  show->add_option("name", a->name, "Tenant name")->required();
  auto* setq = app->add_subcommand("set-quota", "Change a tenant's quotas");
  setq->add_option("name", a->name, "Tenant name")->required();
  setq->add_option("--host-quota", a->host_quota, "Host tier quota (0: none)");
  setq->add_option("--ssd-quota", a->ssd_quota, "SSD tier quota (0: none)");
  setq->add_option("--borrow", a->borrow_set, "yes or no")->check(CLI::IsMember({"yes", "no"}));
  auto* del = app->add_subcommand("delete", "Remove a tenant");
  del->add_option("name", a->name, "Tenant name")->required();

  return {app, [=]() -> int {
            Target target;
            if (int rc = target.Open(*a); rc != kExitOk) return rc;
            const std::string& path = target.path();
            kvc_error err{};
            const bool json = a->out == Output::kJson;
            if (create->parsed()) {
              int rc = kExitOk;
              auto host = SizeArg("--host-quota", a->host_quota, &rc);
              auto ssd = SizeArg("--ssd-quota", a->ssd_quota, &rc);
              if (rc != kExitOk) return rc;
              kvc_tenant_options o = KVC_TENANT_OPTIONS_INIT;
              o.name = a->name.c_str();
              o.isolation = a->isolation.c_str();
              o.host_quota_bytes = static_cast<uint64_t>(host.value_or(0));
              o.ssd_quota_bytes = static_cast<uint64_t>(ssd.value_or(0));
              o.borrow = a->borrow ? 1 : 0;
              char* cred = nullptr;
              if (target.Create(&cred, &o, &err) != KVC_OK)
                return FailStatus("tenant", "create " + a->name, err);
              if (json) {
                std::printf("%s\n", nlohmann::json{{"name", a->name}, {"credential", cred}}.dump().c_str());
              } else {
                std::printf("tenant %s created; its credential (shown only now):\n%s\n", a->name.c_str(), cred);
              }
              kvc_string_free(cred);
              return kExitOk;
            }
            if (list->parsed() || show->parsed()) {
              auto tenants = List(target, &err);
              if (!tenants) return FailStatus("tenant", "read " + path, err);
              nlohmann::json sel = *tenants;
              if (show->parsed()) {
                sel = nlohmann::json::array();
                for (auto& t : *tenants)
                  if (t["name"] == a->name) sel.push_back(t);
                if (sel.empty()) return Fail("tenant", "no tenant named '" + a->name + "' in " + path);
                if (json) {
                  std::printf("%s\n", sel[0].dump().c_str());
                  return kExitOk;
                }
              }
              if (json) {
                std::printf("%s\n", sel.dump().c_str());
              } else {
                PrintTable(sel);
              }
              return kExitOk;
            }
            if (setq->parsed()) {
              int rc = kExitOk;
              auto host = SizeArg("--host-quota", a->host_quota, &rc);
              auto ssd = SizeArg("--ssd-quota", a->ssd_quota, &rc);
              if (rc != kExitOk) return rc;
              if (!host && !ssd && a->borrow_set.empty())
                return Fail("tenant", "set-quota: give --host-quota, --ssd-quota or --borrow");
              const int32_t borrow = a->borrow_set.empty() ? -1 : a->borrow_set == "yes" ? 1 : 0;
              if (target.SetQuota(a->name.c_str(), host.value_or(-1), ssd.value_or(-1), borrow, &err) != KVC_OK)
                return FailStatus("tenant", "set-quota " + a->name, err);
              if (json) std::printf("%s\n", nlohmann::json{{"name", a->name}, {"updated", true}}.dump().c_str());
              return kExitOk;
            }
            if (target.Delete(a->name.c_str(), &err) != KVC_OK)
              return FailStatus("tenant", "delete " + a->name, err);
            if (json) std::printf("%s\n", nlohmann::json{{"name", a->name}, {"deleted", true}}.dump().c_str());
            return kExitOk;
          }};
}

}  // namespace kvc::cli
