// kvc cluster init|nodes|status|drain|forget|tenant|revision|up|down:
// administer a kvc cluster (docs/cluster.md) through the C ABI: the
// kvc_cluster_* calls for what lives in etcd (config, drain marks, the
// roster, tenants), the kvc_node_* calls
// on each registered node for stats, and a cluster connection
// (kvc_node_connect on the cluster address) for revision bumps. `up` and
// `down` start and stop a local cluster (etcd and N `kvc serve` processes on
// loopback).
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_config.h"
#include "command.h"
#include "node_conn.h"

namespace kvc::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct ClusterArgs {
  std::string cluster;
  uint32_t timeout_ms = 5000;
  Output out = Output::kTable;
  NodeConnFlags conn;
  std::string tenant, credential;
  // init
  uint32_t replication = 2, write_quorum = 1;
  bool overwrite = false;
  // drain
  std::string node_id;
  bool undo = false;
  uint32_t wait_s = 0;  // --wait: seconds to wait for the hand-off; 0: do not wait
  // tenant
  std::string name, host_quota, ssd_quota, borrow_set, isolation = "isolated";
  // revision
  NamespaceFlags ns;
  // up/down
  std::string dir, name_of_cluster = "local", host_capacity = "256MiB", zones, etcd_bin;
  uint32_t nodes = 3, grace_ms = 5000;
  int32_t up_replication = 0;
};

void AddCluster(CLI::App* app, ClusterArgs* a) {
  app->add_option("--cluster", a->cluster, "Cluster address etcd://HOST:PORT[,...]/NAME")
      ->required()
      ->envname("KVC_CLUSTER");
  app->add_option("--timeout-ms", a->timeout_ms, "How long to wait for etcd and for each node (default 5000)");
}

// The membership JSON of the cluster (kvc_cluster_nodes_json).
bool Members(const char* cmd, const ClusterArgs& a, json* out, int* rc) {
  char* s = nullptr;
  kvc_error err{};
  if (kvc_cluster_nodes_json(&s, a.cluster.c_str(), a.timeout_ms, &err) != KVC_OK) {
    *rc = FailStatus(cmd, "cluster " + a.cluster, err);
    return false;
  }
  *out = json::parse(s);
  kvc_string_free(s);
  return true;
}

std::string Bytes(uint64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

// Runs `body` on a connection to each node of the membership; returns the
// per-node results {"id","address","ok",...} that body fills.
json ForEachNode(const ClusterArgs& a, const json& members,
                 const std::function<void(kvc_node*, json*)>& body, bool* all_ok) {
  json rows = json::array();
  *all_ok = true;
  std::string admin_token, error;
  kvc_node_options o = KVC_NODE_OPTIONS_INIT;
  o.tenant = a.tenant.empty() ? nullptr : a.tenant.c_str();
  o.credential = a.credential.empty() ? nullptr : a.credential.c_str();
  o.connect_timeout_ms = a.timeout_ms;
  o.timeout_ms = a.timeout_ms;
  const bool conn_ok = ApplyNodeConnFlags(a.conn, &admin_token, &o, &error);
  for (const auto& n : members["nodes"]) {
    json row{{"id", n["id"]}, {"address", n["address"]}};
    if (!conn_ok) {
      row["ok"] = false;
      row["error"] = error;
      *all_ok = false;
      rows.push_back(row);
      continue;
    }
    kvc_node* node = nullptr;
    kvc_error err{};
    const std::string addr = n["address"].get<std::string>();
    if (kvc_node_connect(&node, addr.c_str(), &o, &err) != KVC_OK) {
      row["ok"] = false;
      row["error"] = std::string(err.message) + " (" + kvc_status_name(err.code) + ")";
    } else {
      row["ok"] = true;
      body(node, &row);
      kvc_node_close(node);
    }
    if (!row["ok"].get<bool>()) *all_ok = false;
    rows.push_back(row);
  }
  return rows;
}

void Failed(json* row, const kvc_error& err) {
  (*row)["ok"] = false;
  (*row)["error"] = std::string(err.message) + " (" + kvc_status_name(err.code) + ")";
}

int RunInit(const ClusterArgs& a) {
  kvc_error err{};
  if (kvc_cluster_init(a.cluster.c_str(), a.replication, a.write_quorum, a.overwrite, a.timeout_ms, &err) != KVC_OK)
    return FailStatus("cluster init", "init", err);
  if (a.out == Output::kJson)
    std::printf("%s\n", json{{"cluster", a.cluster}, {"replication", a.replication}, {"write_quorum", a.write_quorum}}
                            .dump(2)
                            .c_str());
  else
    std::printf("cluster %s: replication %u, write quorum %u\n", a.cluster.c_str(), a.replication, a.write_quorum);
  return kExitOk;
}

int RunNodes(const ClusterArgs& a) {
  json m;
  int rc;
  if (!Members("cluster nodes", a, &m, &rc)) return rc;
  if (a.out == Output::kJson) {
    std::printf("%s\n", m.dump(2).c_str());
    return kExitOk;
  }
  std::printf("cluster %s: epoch %llu, replication %u, write quorum %u, %zu node(s)\n",
              m["cluster"].get<std::string>().c_str(), (unsigned long long)m["epoch"].get<uint64_t>(),
              m["replication"].get<uint32_t>(), m["write_quorum"].get<uint32_t>(), m["nodes"].size());
  std::printf("%-24s %-22s %-10s %-9s %12s %8s\n", "ID", "ADDRESS", "ZONE", "STATE", "CAPACITY", "EPOCH");
  for (const auto& n : m["nodes"])
    std::printf("%-24s %-22s %-10s %-9s %12s %8llu\n", n["id"].get<std::string>().c_str(),
                n["address"].get<std::string>().c_str(), n["zone"].get<std::string>().c_str(),
                n["state"].get<std::string>().c_str(), Bytes(n["capacity_bytes"].get<uint64_t>()).c_str(),
                (unsigned long long)n["registered_epoch"].get<uint64_t>());
  return kExitOk;
}

int RunStatus(const ClusterArgs& a) {
  json m;
  int rc;
  if (!Members("cluster status", a, &m, &rc)) return rc;
  bool all_ok;
  json rows = ForEachNode(a, m, [](kvc_node* node, json* row) {
    char* s = nullptr;
    kvc_error err{};
    if (kvc_node_stats_json(node, &s, &err) != KVC_OK) return Failed(row, err);
    json st = json::parse(s);
    kvc_string_free(s);
    const json& host = st["tiers"]["host"];
    (*row)["host_used_bytes"] = host.value("used_bytes", 0ull);
    (*row)["host_capacity_bytes"] = host.value("capacity_bytes", 0ull);
    if (st["tiers"].contains("ssd")) {
      (*row)["ssd_used_bytes"] = st["tiers"]["ssd"].value("used_bytes", 0ull);
      (*row)["ssd_capacity_bytes"] = st["tiers"]["ssd"].value("capacity_bytes", 0ull);
    }
    (*row)["blocks"] = host.value("blocks", 0ull);
    (*row)["hits"] = st.value("hits", 0ull);
    (*row)["misses"] = st.value("misses", 0ull);
    (*row)["hit_ratio"] = st.value("hit_ratio", 0.0);
  }, &all_ok);
  uint64_t hits = 0, misses = 0, used = 0, cap = 0, healthy = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    rows[i]["state"] = m["nodes"][i]["state"];
    rows[i]["zone"] = m["nodes"][i]["zone"];
    rows[i]["health"] = rows[i]["ok"].get<bool>() ? "ok" : "unreachable";
    if (!rows[i]["ok"].get<bool>()) continue;
    ++healthy;
    hits += rows[i]["hits"].get<uint64_t>();
    misses += rows[i]["misses"].get<uint64_t>();
    used += rows[i]["host_used_bytes"].get<uint64_t>();
    cap += rows[i]["host_capacity_bytes"].get<uint64_t>();
  }
  json total{{"nodes", rows.size()}, {"healthy", healthy}, {"host_used_bytes", used}, {"host_capacity_bytes", cap},
             {"hits", hits}, {"misses", misses},
             {"hit_ratio", hits + misses ? static_cast<double>(hits) / (hits + misses) : 0.0}};
  if (a.out == Output::kJson) {
    std::printf("%s\n", json{{"cluster", m["cluster"]}, {"epoch", m["epoch"]}, {"replication", m["replication"]},
                             {"write_quorum", m["write_quorum"]}, {"total", total}, {"nodes", rows}}
                            .dump(2)
                            .c_str());
  } else {
    std::printf("cluster %s: epoch %llu, %llu/%zu node(s) healthy, host %s of %s, hit ratio %.3f\n",
                m["cluster"].get<std::string>().c_str(), (unsigned long long)m["epoch"].get<uint64_t>(),
                (unsigned long long)healthy, rows.size(), Bytes(used).c_str(), Bytes(cap).c_str(),
                total["hit_ratio"].get<double>());
    std::printf("%-24s %-22s %-9s %-11s %21s %9s\n", "ID", "ADDRESS", "STATE", "HEALTH", "HOST USED/CAPACITY",
                "HIT RATIO");
    for (const auto& r : rows) {
      std::string usage = "-", ratio = "-";
      if (r["ok"].get<bool>()) {
        usage = Bytes(r["host_used_bytes"].get<uint64_t>()) + "/" + Bytes(r["host_capacity_bytes"].get<uint64_t>());
        char buf[16];
        std::snprintf(buf, sizeof buf, "%.3f", r["hit_ratio"].get<double>());
        ratio = buf;
      }
      std::printf("%-24s %-22s %-9s %-11s %21s %9s\n", r["id"].get<std::string>().c_str(),
                  r["address"].get<std::string>().c_str(), r["state"].get<std::string>().c_str(),
                  r["health"].get<std::string>().c_str(), usage.c_str(), ratio.c_str());
      if (!r["ok"].get<bool>()) std::printf("  %s\n", r["error"].get<std::string>().c_str());
    }
  }
  // An unreachable node is reported, not an error of the command.
  return kExitOk;
}

int RunDrain(const ClusterArgs& a) {
  kvc_error err{};
  if (kvc_cluster_drain(a.cluster.c_str(), a.node_id.c_str(), a.undo, a.timeout_ms, &err) != KVC_OK)
    return FailStatus("cluster drain", "node " + a.node_id, err);
  const char* state = a.undo ? "up" : "draining";
  json out{{"id", a.node_id}, {"state", state}};
  if (!a.undo && a.wait_s > 0) {
    // The node copies its blocks to their new owners, hottest first, and
    // writes the outcome into its record ("handoff": done, failed,
    // no-admin-token, or stopped under the test-only KVC_HANDOFF_MAX_BLOCKS).
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(a.wait_s);
    std::string handoff;
    uint64_t handed_off = 0;
    while (true) {
      json m;
      int rc = kExitOk;
      if (!Members("cluster drain", a, &m, &rc)) return rc;
      bool found = false;
      for (const auto& n : m["nodes"])
        if (n.value("id", "") == a.node_id) {
          found = true;
          handoff = n.value("handoff", "");
          handed_off = n.value("handed_off", uint64_t{0});
        }
      if (!found) return Fail("cluster drain", "node " + a.node_id + " left the cluster before its hand-off ended");
      if (!handoff.empty() && handoff != "running") break;
      if (std::chrono::steady_clock::now() >= until)
        return Fail("cluster drain", "node " + a.node_id + "'s hand-off did not end within " +
                                         std::to_string(a.wait_s) + " s (state: " +
                                         (handoff.empty() ? "not started" : handoff) + ")");
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    out["handoff"] = handoff;
    out["handed_off"] = handed_off;
    if (a.out == Output::kJson)
      std::printf("%s\n", out.dump(2).c_str());
    else
      std::printf("node %s: %s, hand-off %s (%llu block shards copied)\n", a.node_id.c_str(), state,
                  handoff.c_str(), static_cast<unsigned long long>(handed_off));
    if (handoff != "done") return Fail("cluster drain", "node " + a.node_id + "'s hand-off ended " + handoff);
    return kExitOk;
  }
  if (a.out == Output::kJson)
    std::printf("%s\n", out.dump(2).c_str());
  else
    std::printf("node %s: %s\n", a.node_id.c_str(), state);
  return kExitOk;
}

int RunForget(const ClusterArgs& a) {
  kvc_error err{};
  if (kvc_cluster_forget(a.cluster.c_str(), a.node_id.c_str(), a.timeout_ms, &err) != KVC_OK)
    return FailStatus("cluster forget", "node " + a.node_id, err);
  if (a.out == Output::kJson)
    std::printf("%s\n", json{{"id", a.node_id}, {"forgotten", true}}.dump(2).c_str());
  else
    std::printf("node %s: forgotten (roster record and pending delete hints removed)\n", a.node_id.c_str());
  return kExitOk;
}

// ---- tenant (in etcd) and revision (through the cluster client) ----

bool Quota(const std::string& text, int64_t* out, std::string* error) {
  if (text.empty()) {
    *out = -1;
    return true;
  }
  auto v = ParseSize(text);
  if (!v) {
    *error = "'" + text + "' is not a size (e.g. 4GiB, 0: none)";
    return false;
  }
  *out = static_cast<int64_t>(*v);
  return true;
}

int RunTenantCreate(const ClusterArgs& a) {
  const char* cmd = "cluster tenant create";
  int64_t hq, sq;
  std::string error;
  if (!Quota(a.host_quota, &hq, &error) || !Quota(a.ssd_quota, &sq, &error)) return Fail(cmd, error);
  kvc_tenant_options o = KVC_TENANT_OPTIONS_INIT;
  o.name = a.name.c_str();
  o.isolation = a.isolation.c_str();
  o.host_quota_bytes = hq < 0 ? 0 : static_cast<uint64_t>(hq);
  o.ssd_quota_bytes = sq < 0 ? 0 : static_cast<uint64_t>(sq);
  o.borrow = a.borrow_set == "yes" ? 1 : 0;
  char* cred = nullptr;
  kvc_error err{};
  if (kvc_cluster_tenant_create(a.cluster.c_str(), &o, &cred, a.timeout_ms, &err) != KVC_OK)
    return FailStatus(cmd, "tenant " + a.name, err);
  if (a.out == Output::kJson)
    std::printf("%s\n", json{{"name", a.name}, {"credential", cred}}.dump(2).c_str());
  else
    std::printf("tenant %s created in cluster %s; its credential (shown only now):\n%s\n", a.name.c_str(),
                a.cluster.c_str(), cred);
  kvc_string_free(cred);
  return kExitOk;
}

int RunTenantList(const ClusterArgs& a) {
  char* s = nullptr;
  kvc_error err{};
  if (kvc_cluster_tenant_list_json(a.cluster.c_str(), &s, a.timeout_ms, &err) != KVC_OK)
    return FailStatus("cluster tenant list", "cluster " + a.cluster, err);
  json tenants = json::parse(s);
  kvc_string_free(s);
  if (a.out == Output::kJson) {
    std::printf("%s\n", tenants.dump(2).c_str());
    return kExitOk;
  }
  std::printf("%-20s %-9s %14s %14s %s\n", "NAME", "ISOLATION", "HOST_QUOTA", "SSD_QUOTA", "BORROW");
  auto quota = [](uint64_t b) { return b == 0 ? std::string("none") : Bytes(b); };
  for (const auto& t : tenants)
    std::printf("%-20s %-9s %14s %14s %s\n", t["name"].get<std::string>().c_str(),
                t["isolation"].get<std::string>().c_str(), quota(t["host_quota_bytes"].get<uint64_t>()).c_str(),
                quota(t["ssd_quota_bytes"].get<uint64_t>()).c_str(), t["borrow"].get<bool>() ? "yes" : "no");
  return kExitOk;
}

int RunTenantSetQuota(const ClusterArgs& a) {
  const char* cmd = "cluster tenant set-quota";
  int64_t hq, sq;
  std::string error;
  if (!Quota(a.host_quota, &hq, &error) || !Quota(a.ssd_quota, &sq, &error)) return Fail(cmd, error);
  const int32_t borrow = a.borrow_set.empty() ? -1 : a.borrow_set == "yes" ? 1 : 0;
  kvc_error err{};
  if (kvc_cluster_tenant_set_quota(a.cluster.c_str(), a.name.c_str(), hq, sq, borrow, a.timeout_ms, &err) != KVC_OK)
    return FailStatus(cmd, "tenant " + a.name, err);
  if (a.out == Output::kJson)
    std::printf("%s\n", json{{"name", a.name}, {"updated", true}}.dump(2).c_str());
  else
    std::printf("tenant %s: quota set in cluster %s\n", a.name.c_str(), a.cluster.c_str());
  return kExitOk;
}

int RunTenantDelete(const ClusterArgs& a) {
  kvc_error err{};
  if (kvc_cluster_tenant_delete(a.cluster.c_str(), a.name.c_str(), a.timeout_ms, &err) != KVC_OK)
    return FailStatus("cluster tenant delete", "tenant " + a.name, err);
  if (a.out == Output::kJson)
    std::printf("%s\n", json{{"name", a.name}, {"deleted", true}}.dump(2).c_str());
  else
    std::printf("tenant %s deleted from cluster %s\n", a.name.c_str(), a.cluster.c_str());
  return kExitOk;
}

// Through the cluster client: an etcd cluster counts the bump in etcd and
// sends the count to every node; a peers: list asks every peer.
int RunRevisionBump(const ClusterArgs& a) {
  const char* cmd = "cluster revision bump";
  kvc_namespace_options ns = NamespaceOptionsOf(a.ns);
  std::string admin_token, error;
  kvc_node_options o = KVC_NODE_OPTIONS_INIT;
  o.tenant = a.tenant.empty() ? nullptr : a.tenant.c_str();
  o.credential = a.credential.empty() ? nullptr : a.credential.c_str();
  o.connect_timeout_ms = a.timeout_ms;
  o.timeout_ms = a.timeout_ms;
  if (!ApplyNodeConnFlags(a.conn, &admin_token, &o, &error)) return Fail(cmd, error);
  kvc_node* node = nullptr;
  kvc_error err{};
  if (kvc_node_connect(&node, a.cluster.c_str(), &o, &err) != KVC_OK)
    return FailStatus(cmd, "cluster " + a.cluster, err);
  uint64_t epoch = 0;
  const int rc = kvc_node_bump_revision(node, &ns, &epoch, &err);
  kvc_node_close(node);
  if (rc != KVC_OK) return FailStatus(cmd, "namespace " + a.ns.model + "@" + a.ns.revision, err);
  if (a.out == Output::kJson)
    std::printf("%s\n", json{{"cluster", a.cluster}, {"ok", true}, {"namespace_epoch", epoch}}.dump(2).c_str());
  else
    std::printf("bumped on every node of cluster %s; namespace epoch %llu\n", a.cluster.c_str(),
                static_cast<unsigned long long>(epoch));
  return kExitOk;
}

// ---- up / down: a local cluster ----

uint16_t FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  uint16_t port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0)
    port = ntohs(sa.sin_port);
  close(fd);
  return port;
}

// Starts argv in its own session with stdout and stderr to `log`; the pid
// or -1 (errno set).
pid_t Spawn(const std::vector<std::string>& argv, const std::string& log) {
  const pid_t pid = fork();
  if (pid != 0) return pid;
  setsid();
  const int out = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  const int in = open("/dev/null", O_RDONLY);
  if (out >= 0) {
    dup2(out, 1);
    dup2(out, 2);
  }
  if (in >= 0) dup2(in, 0);
  std::vector<char*> args;
  for (const auto& s : argv) args.push_back(const_cast<char*>(s.c_str()));
  args.push_back(nullptr);
  execvp(args[0], args.data());
  std::fprintf(stderr, "cannot run %s: %s\n", args[0], std::strerror(errno));
  _exit(127);
}

// A process started by `up` for this directory: its command line names the
// directory (so a recycled pid is never signalled).
bool Ours(pid_t pid, const std::string& dir) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  if (!f) return false;
  std::string cmd((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return cmd.find(dir) != std::string::npos;
}

bool Alive(pid_t pid) {
  int st;
  if (waitpid(pid, &st, WNOHANG) == pid) return false;  // our child, reaped
  if (kill(pid, 0) != 0) return false;
  // A zombie is not alive.
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s;
  std::getline(f, s);
  const size_t p = s.rfind(')');
  return !(p != std::string::npos && p + 2 < s.size() && s[p + 2] == 'Z');
}

// SIGTERM to every pid of ours, then SIGKILL to those alive after grace_ms.
void Stop(const std::vector<pid_t>& pids, const std::string& dir, uint32_t grace_ms) {
  std::vector<pid_t> live;
  for (pid_t p : pids)
    if (p > 0 && Ours(p, dir) && Alive(p)) {
      kill(p, SIGTERM);
      live.push_back(p);
    }
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
  while (!live.empty() && std::chrono::steady_clock::now() < end) {
    std::erase_if(live, [](pid_t p) { return !Alive(p); });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (pid_t p : live) {
    kill(p, SIGKILL);
    for (int i = 0; i < 100 && Alive(p); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string SelfExe() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? "kvc" : p.string();
}

int RunUp(const ClusterArgs& a) {
  const char* cmd = "cluster up";
  if (a.nodes < 1 || a.nodes > 64) return Fail(cmd, "--nodes must be in 1..64");
  std::string dir = a.dir;
  if (dir.empty()) {
    char tmpl[] = "/tmp/kvc-cluster-XXXXXX";
    if (!mkdtemp(tmpl)) return Fail(cmd, std::string("cannot create a temporary directory: ") + std::strerror(errno));
    dir = tmpl;
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Fail(cmd, "cannot create " + dir + ": " + ec.message());
  dir = fs::canonical(dir).string();
  if (fs::exists(dir + "/cluster.json"))
    return Fail(cmd, dir + "/cluster.json exists: a cluster runs there already (kvc cluster down --dir " + dir + ")");
  if (!ParseSize(a.host_capacity)) return Fail(cmd, "--host-capacity '" + a.host_capacity + "' is not a size");
  const uint32_t replication = a.up_replication > 0 ? a.up_replication : std::min<uint32_t>(2, a.nodes);
  if (replication > a.nodes) return Fail(cmd, "--replication exceeds --nodes");
  std::string etcd = a.etcd_bin;
  if (etcd.empty()) etcd = std::getenv("KVC_ETCD_BIN") ? std::getenv("KVC_ETCD_BIN") : "etcd";

  const uint16_t client = FreePort(), peer = FreePort();
  if (client == 0 || peer == 0) return Fail(cmd, "cannot find free loopback ports");
  const std::string curl = "http://127.0.0.1:" + std::to_string(client);
  const std::string purl = "http://127.0.0.1:" + std::to_string(peer);
  const std::string address = "etcd://127.0.0.1:" + std::to_string(client) + "/" + a.name_of_cluster;
  std::vector<pid_t> pids;
  json state{{"address", address}, {"dir", dir}};
  const pid_t etcd_pid =
      Spawn({etcd, "--name", "kvc", "--data-dir", dir + "/etcd", "--listen-client-urls", curl,
             "--advertise-client-urls", curl, "--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl,
             "--initial-cluster", "kvc=" + purl, "--log-level", "warn"},
            dir + "/etcd.log");
  if (etcd_pid < 0) return Fail(cmd, std::string("cannot start etcd: ") + std::strerror(errno));
  pids.push_back(etcd_pid);
  state["etcd"] = {{"pid", etcd_pid}, {"client_url", curl}, {"log", dir + "/etcd.log"}};
  auto give_up = [&](const std::string& why) {
    Stop(pids, dir, 2000);
    return Fail(cmd, why + " (logs in " + dir + ")");
  };
  // etcd is up once it takes the config.
  kvc_error err{};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(a.timeout_ms + 10000);
  while (kvc_cluster_init(address.c_str(), replication, a.write_quorum, 1, 1000, &err) != KVC_OK) {
    if (!Alive(etcd_pid)) return give_up("etcd exited (is '" + etcd + "' installed? Debian: etcd-server)");
    if (std::chrono::steady_clock::now() > deadline)
      return give_up(std::string("etcd did not answer: ") + err.message);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::vector<std::string> zones;
  std::stringstream zs(a.zones);
  for (std::string z; std::getline(zs, z, ',');)
    if (!z.empty()) zones.push_back(z);
  const std::string self = SelfExe();
  state["nodes"] = json::array();
  for (uint32_t i = 0; i < a.nodes; ++i) {
    const std::string id = "node-" + std::to_string(i + 1);
    std::vector<std::string> argv{self, "serve", "--listen", "127.0.0.1:0", "--cluster", address, "--node-id", id,
                                  "--host-capacity", a.host_capacity, "--ready-file", dir + "/" + id + ".addr"};
    if (!zones.empty()) {
      argv.push_back("--zone");
      argv.push_back(zones[i % zones.size()]);
    }
    const pid_t pid = Spawn(argv, dir + "/" + id + ".log");
    if (pid < 0) return give_up(std::string("cannot start a node: ") + std::strerror(errno));
    pids.push_back(pid);
    state["nodes"].push_back({{"id", id}, {"pid", pid}, {"log", dir + "/" + id + ".log"}});
  }
  // Written now, so that `down` can stop what started even if we fail below.
  auto write_state = [&] {
    std::ofstream(dir + "/cluster.json.tmp") << state.dump(2) << "\n";
    fs::rename(dir + "/cluster.json.tmp", dir + "/cluster.json");
  };
  write_state();
  ClusterArgs q = a;
  q.cluster = address;
  q.timeout_ms = 2000;
  while (true) {
    char* s = nullptr;
    size_t registered = 0;
    if (kvc_cluster_nodes_json(&s, address.c_str(), 2000, &err) == KVC_OK) {
      json m = json::parse(s);
      kvc_string_free(s);
      registered = m["nodes"].size();
      if (registered >= a.nodes) {
        for (auto& n : state["nodes"])
          for (const auto& r : m["nodes"])
            if (r["id"] == n["id"]) n["address"] = r["address"];
        break;
      }
    }
    for (size_t i = 1; i < pids.size(); ++i)
      if (!Alive(pids[i])) {
        fs::remove(dir + "/cluster.json");
        return give_up("node " + state["nodes"][i - 1]["id"].get<std::string>() + " exited");
      }
    if (std::chrono::steady_clock::now() > deadline) {
      fs::remove(dir + "/cluster.json");
      return give_up(std::to_string(registered) + " of " + std::to_string(a.nodes) + " nodes registered in time");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  write_state();
  if (a.out == Output::kJson)
    std::printf("%s\n", state.dump(2).c_str());
  else
    std::printf("%s\n", address.c_str());
  std::fprintf(stderr, "kvc cluster up: %u node(s) and etcd running; files in %s; stop with: kvc cluster down --dir %s\n",
               a.nodes, dir.c_str(), dir.c_str());
  return kExitOk;
}

int RunDown(const ClusterArgs& a) {
  const char* cmd = "cluster down";
  const std::string file = a.dir + "/cluster.json";
  std::ifstream f(file);
  if (!f) return Fail(cmd, "no cluster state in " + file + " (was it started with kvc cluster up --dir " + a.dir + "?)");
  json state = json::parse(f, nullptr, false);
  if (state.is_discarded() || !state.contains("etcd") || !state.contains("dir"))
    return Fail(cmd, file + " is not a cluster state file");
  const std::string dir = state["dir"].get<std::string>();
  // The nodes first (they revoke their leases), then etcd.
  std::vector<pid_t> nodes;
  for (const auto& n : state["nodes"]) nodes.push_back(n["pid"].get<pid_t>());
  Stop(nodes, dir, a.grace_ms);
  Stop({state["etcd"]["pid"].get<pid_t>()}, dir, a.grace_ms);
  fs::remove(file);
  if (a.out == Output::kJson)
    std::printf("%s\n", json{{"stopped", nodes.size() + 1}, {"dir", dir}}.dump(2).c_str());
  else
    std::printf("stopped %zu node(s) and etcd\n", nodes.size());
  return kExitOk;
}

}  // namespace

Registration RegisterCluster(CLI::App& root) {
  auto a = std::make_shared<ClusterArgs>();
  auto* app = root.add_subcommand("cluster", "Administer a kvc cluster (etcd membership; docs/cluster.md)");
  app->require_subcommand(1);
  auto run = std::make_shared<RunFn>();

  auto* init = app->add_subcommand("init", "Write the cluster config (replication, write quorum) to etcd");
  AddCluster(init, a.get());
  init->add_option("--replication", a->replication, "Nodes per block, 1..64 (default 2)");
  init->add_option("--write-quorum", a->write_quorum, "Acknowledgements that commit a store, 1..R (default 1)");
  init->add_flag("--overwrite", a->overwrite, "Replace an existing config");
  AddOutputFlags(init, &a->out, false);
  init->callback([=] { *run = [=] { return RunInit(*a); }; });

  auto* nodes = app->add_subcommand("nodes", "List the registered nodes (membership, epoch, config)");
  AddCluster(nodes, a.get());
  AddOutputFlags(nodes, &a->out, false);
  nodes->callback([=] { *run = [=] { return RunNodes(*a); }; });

  auto* status = app->add_subcommand("status", "Nodes, health, capacity, usage and hit ratios (asks each node)");
  AddCluster(status, a.get());
  status->add_option("--tenant", a->tenant, "Tenant to ask as (else the admin token)")->envname("KVC_TENANT");
  status->add_option("--credential", a->credential, "The tenant's credential")->envname("KVC_CREDENTIAL");
  AddNodeConnFlags(status, &a->conn);
  AddOutputFlags(status, &a->out, false);
  status->callback([=] { *run = [=] { return RunStatus(*a); }; });

  auto* drain = app->add_subcommand("drain", "Mark a node draining (reads only; no new blocks; it hands its blocks off), or up with --undo");
  AddCluster(drain, a.get());
  drain->add_option("node_id", a->node_id, "The node's id")->required();
  drain->add_flag("--undo", a->undo, "Mark the node up again");
  drain->add_option("--wait", a->wait_s,
                    "Wait up to SECONDS for the node to hand its blocks off to their new owners; fails unless "
                    "the hand-off ends done");
  AddOutputFlags(drain, &a->out, false);
  drain->callback([=] { *run = [=] { return RunDrain(*a); }; });

  auto* forget = app->add_subcommand(
      "forget", "Forget a retired node: remove its roster record and pending delete hints (refused while registered)");
  AddCluster(forget, a.get());
  forget->add_option("node_id", a->node_id, "The node's id")->required();
  AddOutputFlags(forget, &a->out, false);
  forget->callback([=] { *run = [=] { return RunForget(*a); }; });

  auto* tenant = app->add_subcommand("tenant", "The cluster's tenants, in etcd (every node takes them up)");
  tenant->require_subcommand(1);
  auto* tcreate = tenant->add_subcommand("create", "Create a tenant in the cluster; prints its credential once");
  tcreate->add_option("name", a->name, "Tenant name (1-64 of [A-Za-z0-9_.-])")->required();
  tcreate->add_option("--isolation", a->isolation, "isolated (default) or shared")
      ->check(CLI::IsMember({"isolated", "shared"}));
  tcreate->add_option("--host-quota", a->host_quota, "Host tier quota per node (default 0: none)");
  tcreate->add_option("--ssd-quota", a->ssd_quota, "SSD tier quota per node (default 0: none)");
  tcreate->add_option("--borrow", a->borrow_set, "yes or no (default no)")->check(CLI::IsMember({"yes", "no"}));
  auto* tlist = tenant->add_subcommand("list", "List the cluster's tenants (no secrets)");
  auto* tquota = tenant->add_subcommand("set-quota", "Change a tenant's quotas in the cluster");
  tquota->add_option("name", a->name, "Tenant name")->required();
  tquota->add_option("--host-quota", a->host_quota, "Host tier quota per node (0: none)");
  tquota->add_option("--ssd-quota", a->ssd_quota, "SSD tier quota per node (0: none)");
  tquota->add_option("--borrow", a->borrow_set, "yes or no")->check(CLI::IsMember({"yes", "no"}));
  auto* tdel = tenant->add_subcommand("delete", "Remove a tenant from the cluster (every node drops its blocks)");
  tdel->add_option("name", a->name, "Tenant name")->required();
  for (auto* t : {tcreate, tlist, tquota, tdel}) {
    AddCluster(t, a.get());
    AddOutputFlags(t, &a->out, false);
  }
  tcreate->callback([=] { *run = [=] { return RunTenantCreate(*a); }; });
  tlist->callback([=] { *run = [=] { return RunTenantList(*a); }; });
  tquota->callback([=] { *run = [=] { return RunTenantSetQuota(*a); }; });
  tdel->callback([=] { *run = [=] { return RunTenantDelete(*a); }; });

  auto* revision = app->add_subcommand("revision", "Namespace revisions across the cluster");
  revision->require_subcommand(1);
  auto* bump = revision->add_subcommand(
      "bump", "Bump a namespace's revision on every node (older blocks vanish); etcd clusters count it in etcd");
  AddCluster(bump, a.get());
  bump->add_option("--tenant", a->tenant, "Tenant to act as")->envname("KVC_TENANT");
  bump->add_option("--credential", a->credential, "The tenant's credential")->envname("KVC_CREDENTIAL");
  AddNodeConnFlags(bump, &a->conn);
  AddOutputFlags(bump, &a->out, false);
  AddNamespaceFlags(bump, &a->ns);
  bump->callback([=] { *run = [=] { return RunRevisionBump(*a); }; });

  auto* up = app->add_subcommand("up", "Start etcd and N kvc serve processes on loopback, in the background");
  up->add_option("--nodes", a->nodes, "Number of nodes (default 3)");
  up->add_option("--dir", a->dir, "Directory of the data, logs and state file (default: a new /tmp/kvc-cluster-*)");
  up->add_option("--name", a->name_of_cluster, "Cluster name (default local)");
  up->add_option("--host-capacity", a->host_capacity, "Host DRAM per node (default 256MiB)");
  up->add_option("--zones", a->zones, "Comma-separated zones, given to the nodes in turn");
  up->add_option("--replication", a->up_replication, "Replication (default min(2, nodes))");
  up->add_option("--write-quorum", a->write_quorum, "Write quorum (default 1)");
  up->add_option("--etcd", a->etcd_bin, "The etcd binary (default $KVC_ETCD_BIN, else etcd on PATH)");
  up->add_option("--timeout-ms", a->timeout_ms, "Extra time to wait for etcd and the nodes (default 5000)");
  AddOutputFlags(up, &a->out, false);
  up->callback([=] { *run = [=] { return RunUp(*a); }; });

  auto* down = app->add_subcommand("down", "Stop a cluster started by kvc cluster up (SIGTERM, then SIGKILL)");
  down->add_option("--dir", a->dir, "The directory given to (or printed by) kvc cluster up")->required();
  down->add_option("--grace-ms", a->grace_ms, "Time between SIGTERM and SIGKILL (default 5000)");
  AddOutputFlags(down, &a->out, false);
  down->callback([=] { *run = [=] { return RunDown(*a); }; });

  return {app, [run] { return *run ? (*run)() : kExitUsage; }};
}

}  // namespace kvc::cli
