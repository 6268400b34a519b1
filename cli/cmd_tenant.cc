// kvc tenant: create, list, show, set-quota and delete the tenants of a cache
// directory or tenants file, through the C ABI's kvc_tenant_* calls.
#include <cstdio>
#include <optional>

#include <nlohmann/json.hpp>

#include "bench_config.h"
#include "command.h"

namespace kvc::cli {
namespace {

struct TenantArgs {
  std::string dir, config;
  Output out = Output::kTable;
  std::string name;
  std::string isolation = "isolated";
  std::string host_quota, ssd_quota;
  bool borrow = false;
  std::string borrow_set;  // set-quota: yes|no
};

std::string PathOf(const TenantArgs& a) { return a.config.empty() ? a.dir : a.config; }

std::optional<int64_t> SizeArg(const std::string& flag, const std::string& text, int* rc) {
  if (text.empty()) return std::nullopt;
  auto v = ParseSize(text);
  if (!v || *v > static_cast<uint64_t>(INT64_MAX)) {
    *rc = Fail("tenant", flag + ": cannot read '" + text + "' as a size (e.g. 512MiB, 2GiB, 0 for none)");
    return std::nullopt;
  }
  return static_cast<int64_t>(*v);
}

std::optional<nlohmann::json> List(const std::string& path, kvc_error* err) {
  char* out = nullptr;
  if (kvc_tenant_list_json(&out, path.c_str(), err) != KVC_OK) return std::nullopt;
  auto j = nlohmann::json::parse(out);
  kvc_string_free(out);
  return j;
}

void PrintTable(const nlohmann::json& tenants) {
  std::printf("%-20s %4s %-9s %14s %14s %s\n", "NAME", "ID", "ISOLATION", "HOST_QUOTA", "SSD_QUOTA", "BORROW");
  for (const auto& t : tenants) {
    auto q = [](uint64_t b) { return b ? FormatSize(b) : std::string("-"); };
    std::printf("%-20s %4u %-9s %14s %14s %s\n", t["name"].get<std::string>().c_str(), t["id"].get<unsigned>(),
                t["isolation"].get<std::string>().c_str(), q(t["host_quota_bytes"]).c_str(),
                q(t["ssd_quota_bytes"]).c_str(), t["borrow"].get<bool>() ? "yes" : "no");
  }
}

}  // namespace

Registration RegisterTenant(CLI::App& root) {
  auto a = std::make_shared<TenantArgs>();
  auto* app = root.add_subcommand("tenant", "Manage the tenants of a cache directory or tenants file");
  app->require_subcommand(1);
  app->fallthrough();  // --dir/--config/--json may follow the command too
  auto* where = app->add_option_group("where");
  where->add_option("--dir", a->dir, "Cache directory (its tenants.json)");
  where->add_option("--config", a->config, "Tenants file");
  where->require_option(1);
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
            const std::string path = PathOf(*a);
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
              if (kvc_tenant_create(&cred, path.c_str(), &o, &err) != KVC_OK)
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
              auto tenants = List(path, &err);
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
              if (kvc_tenant_set_quota(path.c_str(), a->name.c_str(), host.value_or(-1), ssd.value_or(-1), borrow,
                                       &err) != KVC_OK)
                return FailStatus("tenant", "set-quota " + a->name, err);
              if (json) std::printf("%s\n", nlohmann::json{{"name", a->name}, {"updated", true}}.dump().c_str());
              return kExitOk;
            }
            if (kvc_tenant_delete(path.c_str(), a->name.c_str(), &err) != KVC_OK)
              return FailStatus("tenant", "delete " + a->name, err);
            if (json) std::printf("%s\n", nlohmann::json{{"name", a->name}, {"deleted", true}}.dump().c_str());
            return kExitOk;
          }};
}

}  // namespace kvc::cli
