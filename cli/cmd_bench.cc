// kvc bench: the load test and the micro-benchmarks of the embedded cache,
// and the block traffic of --node/--cluster/--redis targets side by side.
// Flags and output fields: man/kvc-bench.1 and docs/benchmarks.md.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>

#include "bench_config.h"
#include "bench_load.h"
#include "bench_micro.h"
#include "bench_remote.h"
#include "bench_report.h"
#include "bench_workload.h"
#include "command.h"
#include "kvc.h"

namespace kvc::cli {
namespace {

constexpr const char* kCmd = "bench";

// A value the flags' types accept but the bench cannot run with.
int Usage(const std::string& message) {
  Fail(kCmd, message);
  return kExitUsage;
}

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

std::vector<std::string> PolicyNames() {
  std::vector<std::string> names;
  std::stringstream in(kvc_policy_names());
  for (std::string name; std::getline(in, name, ',');) {
    name.erase(0, name.find_first_not_of(' '));
    if (!name.empty()) names.push_back(name);
  }
  return names;
}

template <class T>
bool Contains(const std::vector<T>& v, const T& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

struct Flags {
  BenchConfig config;
  Output output = Output::kTable;
  CLI::App* app = nullptr;
  // remote targets
  std::vector<std::string> nodes, clusters, redis;
  std::string block_bytes = "1MiB";
  uint32_t blocks = 64;
  uint32_t passes = 4;
  uint32_t rounds = 3;
  uint32_t batch = 1;
  std::string tenant, credential;
  uint32_t timeout_ms = 0;
};

// The flags of the embedded cache's runs, refused beside remote targets.
constexpr const char* kEmbeddedOnly[] = {
    "--workload", "--model",   "--dtype",    "--layers",      "--kv-heads",     "--head-dim",
    "--block-tokens", "--capacity", "--requests", "--duration", "--policy",       "--hash",
    "--max-context", "--verify", "--tiers",    "--ssd-dir",     "--ssd-capacity", "--write-mode",
    "--tenants",  "--tenant-quota", "--micro", "--quick", "--seed"};
constexpr const char* kRemoteOnly[] = {"--block-bytes", "--blocks", "--passes", "--rounds",
                                       "--timeout-ms", "--batch"};

int RunRemote(Flags& f) {
  for (const char* flag : kEmbeddedOnly)
    if (f.app->count(flag))
      return Usage(std::string(flag) + " is for the embedded cache; with --node, --cluster or "
                                       "--redis use --block-bytes, --blocks, --batch, --passes, --threads");
  RemoteConfig rc;
  for (const auto& a : f.nodes) rc.targets.push_back({"node", a});
  for (const auto& a : f.clusters) rc.targets.push_back({"cluster", a});
  for (const auto& a : f.redis) rc.targets.push_back({"redis", a});
  for (const auto& t : rc.targets)
    if (t.address.empty()) return Usage("--" + t.kind + " needs an address");
  const auto bb = ParseSize(f.block_bytes);
  if (!bb) return Usage("--block-bytes: cannot read '" + f.block_bytes + "' as a size (e.g. 64KiB, 1MiB)");
  if (*bb < 2 || *bb % 2 != 0 || *bb > (uint64_t{1} << 30))
    return Usage("--block-bytes must be even, from 2 B to 1 GiB");
  rc.block_bytes = *bb;
  if (f.blocks == 0 || f.blocks > (1u << 20)) return Usage("--blocks must be between 1 and 1048576");
  if (f.passes == 0) return Usage("--passes must be at least 1");
  if (f.rounds == 0 || f.rounds > 100) return Usage("--rounds must be between 1 and 100");
  if (f.batch == 0 || f.batch > KVC_NODE_MAX_BATCH)
    return Usage("--batch must be between 1 and " + std::to_string(KVC_NODE_MAX_BATCH) + " (KVC_NODE_MAX_BATCH)");
  BenchConfig& c = f.config;
  if (f.app->count("--threads") && (c.threads == 0 || c.threads > 256))
    return Usage("--threads must be between 1 and 256");
  rc.threads = c.threads != 0 ? c.threads : std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
  rc.blocks = f.blocks;
  rc.passes = f.passes;
  rc.rounds = f.rounds;
  rc.batch = f.batch;
  rc.tenant = f.tenant;
  rc.credential = f.credential;
  rc.timeout_ms = f.timeout_ms;
  rc.progress = c.progress;
  nlohmann::json report;
  const int code = RunRemoteBench(rc, &report);
  PrintRemoteReport(report, f.output);
  return code;
}

int Run(Flags& f) {
  if (!f.nodes.empty() || !f.clusters.empty() || !f.redis.empty()) return RunRemote(f);
  for (const char* flag : kRemoteOnly)
    if (f.app->count(flag)) return Usage(std::string(flag) + " needs --node, --cluster or --redis");
  BenchConfig& c = f.config;
  if (c.micro) {
    nlohmann::json report;
    const int rc = RunMicroBench(c, &report);
    if (rc == kExitOk) PrintMicroReport(report, f.output);
    return rc;
  }
  if (!Contains(WorkloadKinds(), c.workload))
    return Usage("unknown workload '" + c.workload + "' (" + Join(WorkloadKinds()) + ")");
  const ModelPreset* preset = FindModel(c.model);
  if (preset == nullptr) {
    std::vector<std::string> names;
    for (const auto& p : ModelPresets()) names.push_back(p.name);
    return Usage("unknown model '" + c.model + "' (" + Join(names) + ")");
  }
  ModelPreset model = *preset;
  if (!c.dtype.empty()) {
    model.dtype = c.dtype;
    model.dtype_bytes = DtypeBytes(c.dtype);
    if (model.dtype_bytes == 0)
      return Usage("unknown dtype '" + c.dtype + "' (fp32, fp16, bf16, fp8_e4m3, fp8_e5m2, int8)");
  }
  for (auto [flag, value, field] :
       {std::tuple{"--layers", c.layers, &model.layers},
        std::tuple{"--kv-heads", c.kv_heads, &model.kv_heads},
        std::tuple{"--head-dim", c.head_dim, &model.head_dim}}) {
    if (f.app->count(flag) && value == 0) return Usage(std::string(flag) + " must be at least 1");
    if (value != 0) *field = value;
  }
  const auto capacity = ParseSize(c.capacity);
  if (!capacity)
    return Usage("--capacity: cannot read '" + c.capacity + "' as a size (e.g. 512MiB, 2GiB)");
  if (*capacity == 0) return Usage("--capacity must be more than 0");
  if (c.block_tokens == 0) return Usage("--block-tokens must be at least 1");
  if (c.max_context == 0) return Usage("--max-context must be at least 1");
  if (f.app->count("--threads") && (c.threads == 0 || c.threads > 256))
    return Usage("--threads must be between 1 and 256");
  if (c.threads == 0) c.threads = std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
  if (f.app->count("--requests") && c.requests == 0)
    return Usage("--requests must be at least 1");
  if (f.app->count("--duration") && !(c.duration_s > 0))
    return Usage("--duration must be more than 0 seconds");
  if (!c.hash.empty() && c.hash != "sha256" && c.hash != "xxh3-128")
    return Usage("unknown hash '" + c.hash + "' (sha256, xxh3-128)");
  if (!c.policy.empty()) {
    const auto policies = PolicyNames();
    if (!Contains(policies, c.policy))
      return Usage("unknown policy '" + c.policy + "' (" + Join(policies) + ")");
  }
  if (c.tiers == "host,ssd" || c.tiers == "ssd,host") {
    c.ssd = true;
  } else if (c.tiers != "host") {
    return Usage("unknown --tiers '" + c.tiers + "' (host, host,ssd)");
  }
  if (c.ssd && c.ssd_dir.empty()) return Usage("--tiers host,ssd needs --ssd-dir");
  if (!c.ssd && (f.app->count("--ssd-dir") || f.app->count("--ssd-capacity") ||
                 f.app->count("--write-mode")))
    return Usage("--ssd-dir, --ssd-capacity and --write-mode need --tiers host,ssd");
  if (c.ssd) {
    if (!c.ssd_capacity.empty()) {
      const auto ssd_capacity = ParseSize(c.ssd_capacity);
      if (!ssd_capacity)
        return Usage("--ssd-capacity: cannot read '" + c.ssd_capacity + "' as a size");
      if (*ssd_capacity == 0) return Usage("--ssd-capacity must be more than 0");
      c.ssd_capacity_bytes = *ssd_capacity;
    } else {
      if (*capacity > UINT64_MAX / 4) return Usage("--capacity too large for a 4x SSD tier");
      c.ssd_capacity_bytes = 4 * *capacity;
    }
    if (c.write_mode != "back" && c.write_mode != "through")
      return Usage("unknown --write-mode '" + c.write_mode + "' (back, through)");
  }
  if (f.app->count("--tenants") && (c.tenants == 0 || c.tenants > BenchConfig::kMaxTenants))
    return Usage("--tenants must be between 1 and " + std::to_string(BenchConfig::kMaxTenants));
  if (f.app->count("--tenant-quota")) {
    if (c.tenants == 0) return Usage("--tenant-quota needs --tenants");
    const auto quota = ParseSize(c.tenant_quota);
    if (!quota) return Usage("--tenant-quota: cannot read '" + c.tenant_quota + "' as a size");
    if (*quota == 0) return Usage("--tenant-quota must be more than 0");
    c.tenant_quota_bytes = *quota;
  }
  nlohmann::json report;
  const int rc = RunLoadBench(c, model, *capacity, &report);
  if (rc != kExitOk) return rc;
  PrintLoadReport(report, f.output);
  const uint64_t bad = report.at("verify_failures").get<uint64_t>();
  if (bad != 0)
    return Fail(kCmd, std::to_string(bad) + " loaded blocks did not hold the bytes stored under "
                                            "their keys");
  return kExitOk;
}

}  // namespace

Registration RegisterBench(CLI::App& root) {
  auto* app = root.add_subcommand(
      "bench",
      "Load-test the embedded cache under a synthetic workload, run micro-benchmarks, or measure "
      "nodes and Redis side by side (--node, --cluster, --redis)");
  auto f = std::make_shared<Flags>();
  f->app = app;
  BenchConfig& c = f->config;
  app->add_option("--workload", c.workload, "chat, rag or random")->capture_default_str();
  app->add_option("--model", c.model, "KV layout preset: llama-3-8b, llama-3-70b, qwen2.5-7b")
      ->capture_default_str();
  app->add_option("--dtype", c.dtype, "Override the preset's dtype");
  app->add_option("--layers", c.layers, "Override the preset's layer count");
  app->add_option("--kv-heads", c.kv_heads, "Override the preset's KV heads");
  app->add_option("--head-dim", c.head_dim, "Override the preset's head dimension");
  app->add_option("--block-tokens", c.block_tokens, "Tokens per block")->capture_default_str();
  app->add_option("--capacity", c.capacity, "Host tier bytes (512MiB, 2GiB, ...)")
      ->capture_default_str();
  app->add_option("--threads", c.threads, "Worker threads (default: CPUs, at most 4)");
  auto* req = app->add_option("--requests", c.requests,
                              "Requests to run (default " +
                                  std::to_string(BenchConfig::kDefaultRequests) + ")");
  auto* dur = app->add_option("--duration", c.duration_s, "Run for this many seconds instead");
  req->excludes(dur);
  dur->excludes(req);
  app->add_option("--seed", c.seed, "Workload seed")->capture_default_str();
  app->add_option("--policy", c.policy, "Host-tier eviction policy (default: the library's)");
  app->add_option("--hash", c.hash, "Key hash: sha256 or xxh3-128 (default: the library's)");
  app->add_option("--max-context", c.max_context, "Longest prompt, in tokens")
      ->capture_default_str();
  app->add_flag("--progress", c.progress, "Print progress to stderr every second, tty or not");
  app->add_flag("--verify", c.verify, "Check every byte of every loaded block");
  app->add_option("--tiers", c.tiers, "Cache tiers: host, or host,ssd")->capture_default_str();
  app->add_option("--ssd-dir", c.ssd_dir, "SSD tier directory (created if missing)");
  app->add_option("--ssd-capacity", c.ssd_capacity,
                  "SSD tier bytes (default: 4x --capacity)");
  app->add_option("--write-mode", c.write_mode, "How stores reach the SSD tier: back or through")
      ->capture_default_str();
  app->add_option("--tenants", c.tenants,
                  "Isolated tenants sharing the cache, requests spread over them by Zipf 1.0");
  app->add_option("--tenant-quota", c.tenant_quota, "Host-tier quota of each tenant");
  app->add_flag("--micro", c.micro, "Run the micro-benchmarks instead of the load test");
  app->add_flag("--quick", c.quick, "Shorter measurements (rough figures; for tests)");
  app->add_option("--node", f->nodes,
                  "Measure a kvc node: host:port (TCP) or unix:PATH (same host); repeatable")
      ->allow_extra_args(false);
  app->add_option("--cluster", f->clusters,
                  "Measure a cluster address as kvc_node_connect takes it; repeatable")
      ->allow_extra_args(false);
  app->add_option("--redis", f->redis, "Measure a Redis server: host:port or unix:PATH; repeatable")
      ->allow_extra_args(false);
  app->add_option("--block-bytes", f->block_bytes, "Block size of the remote targets' traffic")
      ->capture_default_str();
  app->add_option("--blocks", f->blocks, "Blocks each thread puts (remote targets)")
      ->capture_default_str();
  app->add_option("--passes", f->passes, "Times each thread matches and gets its blocks")
      ->capture_default_str();
  app->add_option("--batch", f->batch,
                  "Blocks a call on the remote targets: kvc_node_put_batch/get_batch on --node and "
                  "--cluster, that many SETs/GETs pipelined on --redis")
      ->capture_default_str();
  app->add_option("--rounds", f->rounds,
                  "Times every target is measured, alternating; the best round of each phase is kept")
      ->capture_default_str();
  app->add_option("--tenant", f->tenant, "Tenant to act as on --node/--cluster")->envname("KVC_TENANT");
  app->add_option("--credential", f->credential, "The tenant's credential")
      ->envname("KVC_CREDENTIAL");
  app->add_option("--timeout-ms", f->timeout_ms, "Deadline of each node call (default 10000)");
  AddOutputFlags(app, &f->output, true);
  return {app, [f] { return Run(*f); }};
}

}  // namespace kvc::cli
