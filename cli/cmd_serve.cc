// kvc serve: runs a node, a cache served over gRPC (docs/node.md), through
// the C ABI's kvc_node_server_* calls. Settings come from a TOML file
// (--config), then KVC_* environment variables, then flags, each overriding
// the one before; the resolution is explicit (Resolve) so that --dry-run can
// show where every value came from.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <optional>

#include <malloc.h>
#include <pthread.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include "bench_config.h"
#include "command.h"
#include "node_conn.h"

namespace kvc::cli {
namespace {

// One setting: its TOML key, its environment variable, its flag and default.
struct Setting {
  const char* key;
  const char* env;
  const char* flag;
  const char* def;
  const char* help;
};

constexpr Setting kSettings[] = {
    {"listen", "KVC_LISTEN", "--listen", "127.0.0.1:7070", "host:port to listen on (port 0: a free port)"},
    {"host_capacity", "KVC_HOST_CAPACITY", "--host-capacity", "1GiB", "Bytes of host DRAM for blocks"},
    {"host_policy", "KVC_HOST_POLICY", "--host-policy", "", "Eviction policy of the host tier (default: the library's)"},
    {"ssd_dir", "KVC_SSD_DIR", "--ssd-dir", "", "SSD tier directory (empty: no SSD tier)"},
    {"ssd_capacity", "KVC_SSD_CAPACITY", "--ssd-capacity", "", "SSD tier capacity (required with --ssd-dir)"},
    {"ssd_policy", "KVC_SSD_POLICY", "--ssd-policy", "", "Eviction policy of the SSD tier"},
    {"write_mode", "KVC_WRITE_MODE", "--write-mode", "write-back",
     "How stores reach the SSD tier: write-back or write-through (served after a restart)"},
    {"tenants_file", "KVC_TENANTS_FILE", "--tenants-file", "", "Tenants file (kvc tenant); empty: no tenants"},
    {"log_format", "KVC_LOG_FORMAT", "--log-format", "text", "Log lines on stderr: text or json"},
    {"ready_file", "KVC_READY_FILE", "--ready-file", "", "Written (atomically) with the bound address once serving"},
    {"shutdown_grace_ms", "KVC_SHUTDOWN_GRACE_MS", "--shutdown-grace-ms", "5000",
     "How long calls in flight may finish after SIGTERM/SIGINT"},
    {"unix_socket", "KVC_UNIX_SOCKET", "--unix-socket", "",
     "Unix socket of the same-host path (mode 0600; empty: none)"},
    {"tls_cert", "KVC_TLS_CERT", "--tls-cert", "", "TLS certificate chain of the node (PEM; empty: plaintext)"},
    {"tls_key", "KVC_TLS_KEY", "--tls-key", "", "TLS private key of the node (PEM)"},
    {"tls_client_ca", "KVC_TLS_CLIENT_CA", "--tls-client-ca", "",
     "CA of client certificates (PEM): clients must present one it signed"},
    {"admin_token_file", "KVC_ADMIN_TOKEN_FILE", "--admin-token-file", "",
     "File holding the admin token of tenant-admin calls (else $KVC_ADMIN_TOKEN; none: refused)"},
    {"metrics_listen", "KVC_METRICS_LISTEN", "--metrics-listen", "",
     "host:port serving GET /metrics (Prometheus; port 0: a free port; empty: none)"},
    {"metrics_token", "KVC_METRICS_TOKEN", "--metrics-token", "",
     "Bearer token GET /metrics requires (a flag's value shows in ps: prefer --metrics-token-file); empty: none"},
    {"metrics_token_file", "KVC_METRICS_TOKEN_FILE", "--metrics-token-file", "",
     "File holding the bearer token GET /metrics requires (its first line)"},
    {"store_idle_timeout_ms", "KVC_STORE_IDLE_TIMEOUT_MS", "--store-idle-timeout-ms", "10000",
     "A store stream that sends nothing for this long is cancelled and its reservation released"},
    {"cluster", "KVC_CLUSTER", "--cluster", "", "Register in etcd://HOST:PORT[,...]/NAME (docs/cluster.md); empty: standalone"},
    {"node_id", "KVC_NODE_ID", "--node-id", "", "Node id in the cluster (default: from the advertised address)"},
    {"zone", "KVC_ZONE", "--zone", "", "Zone of this node, for replica placement (empty: none)"},
    {"advertise", "KVC_ADVERTISE", "--advertise", "", "host:port clients reach this node at (default: the bound address)"},
};

// The admin token: never a flag's value (it would show in ps) and never
// printed; from admin_token_file, else $KVC_ADMIN_TOKEN.
struct AdminToken {
  std::string token;
  std::string source;  // "admin_token_file", "env" or "none"
};

bool ReadAdminTokenOf(const std::string& file, AdminToken* out, std::string* error) {
  if (!ReadAdminToken(file, &out->token, error)) return false;
  out->source = out->token.empty() ? "none" : file.empty() ? "env" : "admin_token_file";
  return true;
}

// The metrics token: from metrics_token or metrics_token_file (not both),
// printable ASCII, never printed.
bool MetricsTokenOf(const std::string& token, const std::string& file, std::string* out, std::string* error) {
  *out = token;
  if (!file.empty()) {
    if (!token.empty()) {
      *error = "give metrics_token or metrics_token_file, not both";
      return false;
    }
    std::ifstream in(file);
    if (!in) {
      *error = "cannot read the metrics token file " + file;
      return false;
    }
    std::getline(in, *out);
    while (!out->empty() && (out->back() == '\r' || out->back() == ' ' || out->back() == '\t')) out->pop_back();
    if (out->empty()) {
      *error = "the metrics token file " + file + " is empty";
      return false;
    }
  }
  for (char ch : *out)
    if (ch < 0x21 || ch > 0x7e) {
      *error = "the metrics token may hold only printable ASCII characters, no spaces";
      return false;
    }
  return true;
}

struct Value {
  std::string value;
  std::string source;  // default, file, env, flag
};

struct ServeArgs {
  std::string config;
  std::map<std::string, std::string> flags;  // key -> value, as given
  std::map<std::string, CLI::Option*> options;
  bool dry_run = false;
  Output out = Output::kTable;
};

// file < env < flags, over the defaults.
std::optional<std::map<std::string, Value>> Resolve(const ServeArgs& a, std::string* error) {
  std::map<std::string, Value> v;
  for (const auto& s : kSettings) v[s.key] = {s.def, "default"};
  if (!a.config.empty()) {
    toml::table t;
    try {
      t = toml::parse_file(a.config);
    } catch (const toml::parse_error& e) {
      *error = "--config " + a.config + ": " + std::string(e.description());
      return std::nullopt;
    }
    for (const auto& [k, node] : t) {
      const std::string key(k.str());
      if (!v.count(key)) {
        *error = "--config " + a.config + ": unknown setting '" + key + "'";
        return std::nullopt;
      }
      if (auto s = node.value<std::string>()) {
        v[key] = {*s, "file"};
      } else if (auto i = node.value<int64_t>()) {
        v[key] = {std::to_string(*i), "file"};
      } else {
        *error = "--config " + a.config + ": '" + key + "' must be a string or an integer";
        return std::nullopt;
      }
    }
  }
  for (const auto& s : kSettings)
    if (const char* e = std::getenv(s.env)) v[s.key] = {e, "env"};
  for (const auto& s : kSettings)
    if (a.options.at(s.key)->count() > 0) v[s.key] = {a.flags.at(s.key), "flag"};
  return v;
}

struct Logger {
  bool json = false;
  void Log(const char* level, const std::string& msg, const nlohmann::json& fields = nlohmann::json::object()) const {
    char ts[32];
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (json) {
      nlohmann::json j{{"ts", ts}, {"level", level}, {"msg", msg}};
      for (auto& [k, val] : fields.items()) j[k] = val;
      std::fprintf(stderr, "%s\n", j.dump().c_str());
    } else {
      std::string line = std::string(ts) + " " + level + " " + msg;
      for (auto& [k, val] : fields.items()) line += " " + k + "=" + (val.is_string() ? val.get<std::string>() : val.dump());
      std::fprintf(stderr, "%s\n", line.c_str());
    }
    std::fflush(stderr);
  }
};

bool WriteAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << text;
    f.flush();
    if (!f) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

int Run(const ServeArgs& a) {
  std::string error;
  auto v = Resolve(a, &error);
  if (!v) return Fail("serve", error);
  auto& c = *v;
  AdminToken admin;
  if (!ReadAdminTokenOf(c["admin_token_file"].value, &admin, &error)) return Fail("serve", error);
  for (char ch : admin.token)
    if (ch < 0x20 || ch > 0x7e) return Fail("serve", "the admin token may hold only printable ASCII characters");
  std::string metrics_token;
  if (!MetricsTokenOf(c["metrics_token"].value, c["metrics_token_file"].value, &metrics_token, &error))
    return Fail("serve", error);
  if (a.dry_run) {
    // The tokens themselves are never shown: only whether there is one.
    const std::string shown = admin.token.empty() ? "" : "(set)";
    if (!c["metrics_token"].value.empty()) c["metrics_token"].value = "(set)";
    if (a.out == Output::kJson) {
      nlohmann::json j = nlohmann::json::object(), src = nlohmann::json::object();
      for (auto& [k, val] : c) {
        j[k] = val.value;
        src[k] = val.source;
      }
      j["admin_token"] = shown;
      src["admin_token"] = admin.source;
      std::printf("%s\n", nlohmann::json{{"config", j}, {"sources", src}}.dump().c_str());
    } else {
      for (auto& [k, val] : c) std::printf("%-21s = %-24s (%s)\n", k.c_str(), val.value.c_str(), val.source.c_str());
      std::printf("%-21s = %-24s (%s)\n", "admin_token", shown.c_str(), admin.source.c_str());
    }
    return kExitOk;
  }
  if (c["log_format"].value != "text" && c["log_format"].value != "json")
    return Fail("serve", "log_format must be text or json, not '" + c["log_format"].value + "'");
  if (c["write_mode"].value != "write-back" && c["write_mode"].value != "write-through")
    return Fail("serve", "write_mode must be write-back or write-through, not '" + c["write_mode"].value + "'");
  Logger log{c["log_format"].value == "json"};
  // A node allocates and frees block-sized buffers on every call (gRPC's
  // slices of a 1 MiB chunk as it arrives and is parsed). Above glibc's
  // mmap threshold (128 KiB at first, adapting up to 32 MiB) each one is a
  // fresh mmap: page faults and zeroing on every call, then munmap. Serving
  // them from the heap, and not trimming the heap back after each free, made
  // 1 MiB puts and gets through a node 1.1-1.5x faster (docs/benchmarks.md,
  // "Node over loopback"). The cost: freed memory stays mapped for reuse (a
  // few MiB per busy thread). A value glibc refuses leaves its default: a
  // speed setting only.
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  auto size = [&](const char* key, uint64_t* out) {
    if (c[key].value.empty()) return true;
    auto s = ParseSize(c[key].value);
    if (!s) return false;
    *out = *s;
    return true;
  };
  kvc_cache_options co = KVC_CACHE_OPTIONS_INIT;
  uint32_t grace_ms = 0;
  if (!size("host_capacity", &co.host_capacity_bytes))
    return Fail("serve", "host_capacity: cannot read '" + c["host_capacity"].value + "' as a size");
  if (!size("ssd_capacity", &co.ssd_capacity_bytes))
    return Fail("serve", "ssd_capacity: cannot read '" + c["ssd_capacity"].value + "' as a size");
  try {
    size_t used = 0;
    const unsigned long g = std::stoul(c["shutdown_grace_ms"].value, &used);
    if (used != c["shutdown_grace_ms"].value.size() || g > 600000) throw std::out_of_range("grace");
    grace_ms = static_cast<uint32_t>(g);
  } catch (const std::exception&) {
    return Fail("serve", "shutdown_grace_ms must be a number of milliseconds up to 600000");
  }
  uint32_t idle_ms = 0;
  try {
    size_t used = 0;
    const unsigned long t = std::stoul(c["store_idle_timeout_ms"].value, &used);
    if (used != c["store_idle_timeout_ms"].value.size() || t < 1 || t > 3600000) throw std::out_of_range("idle");
    idle_ms = static_cast<uint32_t>(t);
  } catch (const std::exception&) {
    return Fail("serve", "store_idle_timeout_ms must be a number of milliseconds from 1 to 3600000, not '" +
                             c["store_idle_timeout_ms"].value + "'");
  }
  if (!metrics_token.empty() && c["metrics_listen"].value.empty())
    return Fail("serve", "a metrics token without metrics_listen: there is no metrics endpoint to protect");
  auto str = [&](const char* key) { return c[key].value.empty() ? nullptr : c[key].value.c_str(); };
  co.host_policy = str("host_policy");
  co.ssd_dir = str("ssd_dir");
  co.ssd_policy = str("ssd_policy");
  co.tenants_path = str("tenants_file");
  kvc_node_server_options so = KVC_NODE_SERVER_OPTIONS_INIT;
  so.listen = c["listen"].value.c_str();
  so.cache = &co;
  so.write_mode = c["write_mode"].value == "write-through" ? KVC_WRITE_THROUGH : KVC_WRITE_BACK;
  so.unix_path = str("unix_socket");
  so.tls_cert_path = str("tls_cert");
  so.tls_key_path = str("tls_key");
  so.tls_client_ca_path = str("tls_client_ca");
  so.admin_token = admin.token.empty() ? nullptr : admin.token.c_str();
  so.metrics_listen = str("metrics_listen");
  so.metrics_token = metrics_token.empty() ? nullptr : metrics_token.c_str();
  so.store_idle_timeout_ms = idle_ms;
  so.cluster = str("cluster");
  so.node_id = str("node_id");
  so.zone = str("zone");
  so.advertise = str("advertise");

  // Signals are taken by sigwait: block them before any thread starts.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  kvc_error err{};
  kvc_node_server* server = nullptr;
  if (kvc_node_server_start(&server, &so, &err) != KVC_OK) {
    log.Log("error", "cannot start", {{"error", err.message}, {"status", kvc_status_name(err.code)}});
    return FailStatus("serve", "start", err);
  }
  const std::string addr = kvc_node_server_address(server);
  if (!c["ready_file"].value.empty() && !WriteAtomically(c["ready_file"].value, addr + "\n")) {
    kvc_node_server_stop(server, 0);
    return Fail("serve", "cannot write the ready file " + c["ready_file"].value);
  }
  nlohmann::json ready{{"address", addr}};
  const std::string metrics = kvc_node_server_metrics_address(server);
  if (!metrics.empty()) {
    ready["metrics"] = metrics;
    ready["metrics_auth"] = metrics_token.empty() ? "none" : "bearer";
  }
  ready["store_idle_timeout_ms"] = idle_ms;
  ready["tls"] = so.tls_cert_path != nullptr;
  ready["client_certs"] = so.tls_client_ca_path != nullptr;
  ready["admin"] = admin.token.empty() ? "refused" : "enabled";
  if (so.unix_path) ready["unix_socket"] = so.unix_path;
  if (so.cluster) ready["cluster"] = so.cluster;
  log.Log("info", "ready", ready);
  int sig = 0;
  sigwait(&set, &sig);
  log.Log("info", "stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}, {"grace_ms", grace_ms}});
  const int rc = kvc_node_server_stop(server, grace_ms);
  if (!c["ready_file"].value.empty()) std::remove(c["ready_file"].value.c_str());
  log.Log("info", "stopped");
  return rc == KVC_OK ? kExitOk : kExitError;
}

}  // namespace

Registration RegisterServe(CLI::App& root) {
  auto a = std::make_shared<ServeArgs>();
  auto* app = root.add_subcommand("serve", "Run a kvc node: a cache served over gRPC");
  app->add_option("--config", a->config, "TOML file of settings (overridden by KVC_* variables and flags)");
  for (const auto& s : kSettings) a->options[s.key] = app->add_option(s.flag, a->flags[s.key], s.help);
  app->add_flag("--dry-run", a->dry_run, "Print the resolved settings and where each came from, then exit");
  AddOutputFlags(app, &a->out, false);
  return {app, [a]() -> int {
            if ((kvc_features() & KVC_FEATURE_GRPC) == 0 && !a->dry_run)
              return Fail("serve", "this kvc was built without gRPC: no node support");
            return Run(*a);
          }};
}

}  // namespace kvc::cli
