#include "bench_load.h"

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <unordered_set>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench_histogram.h"
#include "bench_util.h"
#include "bench_workload.h"
#include "command.h"

namespace kvc::cli {
namespace {

constexpr const char* kCmd = "bench";

// What one tenant's requests counted (with --tenants).
struct TenantCounts {
  uint64_t requests = 0;
  uint64_t prompt_tokens = 0;
  uint64_t prompt_blocks = 0;
  uint64_t loaded_blocks = 0;
  uint64_t ssd_loaded_blocks = 0;
  // Loaded blocks whose key this tenant never stored: blocks of another
  // tenant. 0 while tenants are isolated.
  uint64_t foreign_hits = 0;

  void Merge(const TenantCounts& o) {
    requests += o.requests;
    prompt_tokens += o.prompt_tokens;
    prompt_blocks += o.prompt_blocks;
    loaded_blocks += o.loaded_blocks;
    ssd_loaded_blocks += o.ssd_loaded_blocks;
    foreign_hits += o.foreign_hits;
  }
};

std::string KeyBytes(const kvc_key& k) {
  return std::string(reinterpret_cast<const char*>(&k), sizeof k);
}

// The keys a tenant stored, and the first blocks of its prompts (as token
// bytes): the isolation check compares them across tenants.
struct TenantKeys {
  std::mutex mu;
  std::unordered_set<std::string> stored;       // GUARDED_BY(mu)
  std::unordered_set<std::string> first_blocks;  // GUARDED_BY(mu)
};

// What one worker counted. Merged after the run.
struct WorkerStats {
  uint64_t requests = 0;
  uint64_t prompt_tokens = 0;
  uint64_t prompt_blocks = 0;  // full blocks looked up
  uint64_t matched_blocks = 0;
  uint64_t loaded_blocks = 0;
  uint64_t ssd_loaded_blocks = 0;  // loaded blocks the match found on SSD
  uint64_t stored_blocks = 0;
  uint64_t store_exists = 0;
  uint64_t store_pending = 0;
  uint64_t store_no_space = 0;
  uint64_t verify_failures = 0;
  uint64_t load_ns = 0;   // time inside kvc_load_batch
  uint64_t store_ns = 0;  // time inside kvc_store_batch
  LatencyHistogram match, load, store, request;
  std::vector<TenantCounts> tenants;

  void Merge(const WorkerStats& o) {
    requests += o.requests;
    prompt_tokens += o.prompt_tokens;
    prompt_blocks += o.prompt_blocks;
    matched_blocks += o.matched_blocks;
    loaded_blocks += o.loaded_blocks;
    ssd_loaded_blocks += o.ssd_loaded_blocks;
    if (tenants.size() < o.tenants.size()) tenants.resize(o.tenants.size());
    for (size_t i = 0; i < o.tenants.size(); ++i) tenants[i].Merge(o.tenants[i]);
    stored_blocks += o.stored_blocks;
    store_exists += o.store_exists;
    store_pending += o.store_pending;
    store_no_space += o.store_no_space;
    verify_failures += o.verify_failures;
    load_ns += o.load_ns;
    store_ns += o.store_ns;
    match.Merge(o.match);
    load.Merge(o.load);
    store.Merge(o.store);
    request.Merge(o.request);
  }
};

// State the workers share.
struct Shared {
  std::atomic<uint64_t> issued{0};
  std::atomic<uint64_t> done{0};
  std::atomic<uint64_t> blocks{0};
  std::atomic<uint64_t> hits{0};
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::string error;  // GUARDED_BY(mu): the first failure, "what: message (CODE)"
  std::condition_variable finished;  // signalled when a worker exits
  uint32_t running = 0;              // GUARDED_BY(mu)

  void Fail(const std::string& what, const kvc_error& err) {
    std::lock_guard<std::mutex> lock(mu);
    if (error.empty())
      error = what + ": " + err.message + " (" + kvc_status_name(err.code) + ")";
    stop.store(true);
  }
};

struct RunPlan {
  std::vector<kvc_namespace*> ns;  // one per tenant, or the one namespace
  std::vector<double> tenant_cdf;  // with tenants: Zipf 1.0 over them
  std::vector<TenantKeys>* tenant_keys;  // with tenants
  uint64_t shard_bytes;
  uint32_t block_tokens;
  size_t max_blocks;  // full blocks of the longest prompt
  uint64_t requests;  // 0: run until deadline_ns
  uint64_t deadline_ns;
  bool verify;
  uint64_t seed;
};

void Worker(const RunPlan& plan, uint32_t thread, PromptStream* stream, HostBuffer* kv,
            Shared* shared, WorkerStats* st) {
  const bool with_tenants = !plan.tenant_cdf.empty();
  std::mt19937_64 tenant_rng(plan.seed * 0x9E3779B97F4A7C15ull + thread + 1);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  if (with_tenants) st->tenants.resize(plan.tenant_cdf.size());
  std::vector<uint8_t> tiers(plan.max_blocks + 1);
  const uint64_t sb = plan.shard_bytes;
  const uint32_t bt = plan.block_tokens;
  std::vector<kvc_key> keys(plan.max_blocks + 1);
  std::vector<int32_t> statuses(plan.max_blocks + 1);
  std::vector<kvc_buf> bufs(plan.max_blocks + 1);
  for (size_t i = 0; i < plan.max_blocks; ++i)
    bufs[i] = kvc_buf KVC_HOST_BUF(kv->data() + i * sb, sb);
  std::vector<uint32_t> tokens;
  kvc_error err{};
  kvc_store_options sopts = KVC_STORE_OPTIONS_INIT;

  while (!shared->stop.load(std::memory_order_relaxed)) {
    if (plan.requests != 0) {
      if (shared->issued.fetch_add(1, std::memory_order_relaxed) >= plan.requests) break;
    } else if (NowNs() >= plan.deadline_ns) {
      break;
    }
    stream->Next(&tokens);
    size_t tenant = 0;
    if (with_tenants) {
      const double u = uniform(tenant_rng);
      while (tenant + 1 < plan.tenant_cdf.size() && plan.tenant_cdf[tenant] < u) ++tenant;
    }
    kvc_namespace* ns = plan.ns[tenant];
    TenantKeys* tkeys = with_tenants ? &(*plan.tenant_keys)[tenant] : nullptr;
    const uint64_t t0 = NowNs();
    size_t nfull = tokens.size() / bt;
    size_t matched = 0, loaded = 0, ssd_loaded = 0, foreign = 0;
    if (nfull > 0) {
      int rc = kvc_match_tokens(ns, &matched, tiers.data(), keys.data(), keys.size(),
                                tokens.data(), tokens.size(), &err);
      const uint64_t t1 = NowNs();
      if (rc != KVC_OK) return shared->Fail("kvc_match_tokens", err);
      st->match.Record(t1 - t0);
      matched = std::min(matched, nfull);
      if (matched > 0) {
        rc = kvc_load_batch(ns, statuses.data(), &loaded, keys.data(), matched, 0,
                            bufs.data(), &err);
        const uint64_t t2 = NowNs();
        if (rc != KVC_OK) return shared->Fail("kvc_load_batch", err);
        st->load.Record(t2 - t1);
        st->load_ns += t2 - t1;
        for (size_t i = 0; i < loaded; ++i) {
          if (!CheckBlock(bufs[i].data, sb, keys[i], plan.verify)) ++st->verify_failures;
          if (tiers[i] == KVC_TIER_SSD) ++ssd_loaded;
        }
      }
      if (tkeys != nullptr) {
        // Keys are recorded before the store, so a block this tenant loads
        // is always in its own set, whichever thread stored it.
        std::lock_guard<std::mutex> lock(tkeys->mu);
        tkeys->first_blocks.insert(std::string(reinterpret_cast<const char*>(tokens.data()),
                                               bt * sizeof(uint32_t)));
        for (size_t i = 0; i < loaded; ++i)
          if (tkeys->stored.count(KeyBytes(keys[i])) == 0) ++foreign;
        for (size_t i = loaded; i < nfull; ++i) tkeys->stored.insert(KeyBytes(keys[i]));
      }
      for (size_t i = loaded; i < nfull; ++i) FillBlock(bufs[i].data, sb, keys[i]);
      if (nfull > loaded) {
        sopts.parent = loaded > 0 ? &keys[loaded - 1] : nullptr;
        const uint64_t t3 = NowNs();
        rc = kvc_store_batch(ns, statuses.data(), keys.data() + loaded, nfull - loaded, 0,
                             bufs.data() + loaded, &sopts, &err);
        const uint64_t t4 = NowNs();
        if (rc != KVC_OK && rc != KVC_ERR_NO_SPACE) return shared->Fail("kvc_store_batch", err);
        st->store.Record(t4 - t3);
        st->store_ns += t4 - t3;
        for (size_t i = 0; i < nfull - loaded; ++i) {
          switch (statuses[i]) {
            case KVC_OK: ++st->stored_blocks; break;
            case KVC_ERR_EXISTS: ++st->store_exists; break;
            case KVC_ERR_PENDING: ++st->store_pending; break;
            default: ++st->store_no_space; break;
          }
        }
      }
    }
    st->request.Record(NowNs() - t0);
    ++st->requests;
    st->prompt_tokens += tokens.size();
    st->prompt_blocks += nfull;
    st->matched_blocks += matched;
    st->loaded_blocks += loaded;
    st->ssd_loaded_blocks += ssd_loaded;
    if (with_tenants) {
      TenantCounts& tc = st->tenants[tenant];
      ++tc.requests;
      tc.prompt_tokens += tokens.size();
      tc.prompt_blocks += nfull;
      tc.loaded_blocks += loaded;
      tc.ssd_loaded_blocks += ssd_loaded;
      tc.foreign_hits += foreign;
    }
    shared->done.fetch_add(1, std::memory_order_relaxed);
    shared->blocks.fetch_add(nfull, std::memory_order_relaxed);
    shared->hits.fetch_add(loaded, std::memory_order_relaxed);
  }
}

// Per-thread memcpy speed of shard-sized copies, dsts.size() threads at once,
// each from a shared source bigger than the last-level cache into its own
// (warm) buffer: the bound on what a load or store can move.
double MemcpyGbps(std::vector<HostBuffer>& dsts, uint64_t shard_bytes, double seconds) {
  const size_t dst_blocks = dsts[0].size() / shard_bytes;
  if (dst_blocks == 0) return 0;
  const uint64_t src_bytes = std::max<uint64_t>(uint64_t{128} << 20, 4 * shard_bytes);
  HostBuffer src(src_bytes / shard_bytes * shard_bytes);
  const size_t src_blocks = src.size() / shard_bytes;
  std::vector<double> gbps(dsts.size());
  std::vector<std::thread> ts;
  for (size_t t = 0; t < dsts.size(); ++t) {
    ts.emplace_back([&, t] {
      const uint64_t start = NowNs(), end = start + static_cast<uint64_t>(seconds * 1e9);
      uint64_t bytes = 0, now = start;
      for (size_t i = t * 7; now < end; ++i) {
        std::memcpy(dsts[t].data() + (i % dst_blocks) * shard_bytes,
                    src.data() + (i % src_blocks) * shard_bytes, shard_bytes);
        bytes += shard_bytes;
        now = NowNs();
      }
      gbps[t] = static_cast<double>(bytes) / static_cast<double>(now - start);
    });
  }
  for (auto& th : ts) th.join();
  double sum = 0;
  for (double g : gbps) sum += g;
  return sum / static_cast<double>(gbps.size());
}

nlohmann::json LatencyJson(const LatencyHistogram& h) {
  auto us = [](double ns) { return ns / 1e3; };
  return {{"count", h.count()},
          {"mean", us(h.mean())},
          {"p50", us(h.Quantile(0.50))},
          {"p99", us(h.Quantile(0.99))},
          {"p999", us(h.Quantile(0.999))},
          {"max", us(static_cast<double>(h.max()))}};
}

double Ratio(double a, double b) { return b > 0 ? a / b : 0.0; }

// A temporary directory, removed with what it holds when this goes.
struct TempDir {
  std::string path;
  ~TempDir() {
    if (path.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

// Zipf 1.0 over n tenants: tenant i (0-based) weighs 1/(i+1).
std::vector<double> ZipfCdf(uint32_t n) {
  std::vector<double> cdf(n);
  double sum = 0;
  for (uint32_t i = 0; i < n; ++i) sum += 1.0 / (i + 1);
  double acc = 0;
  for (uint32_t i = 0; i < n; ++i) {
    acc += 1.0 / (i + 1) / sum;
    cdf[i] = acc;
  }
  cdf[n - 1] = 1.0;
  return cdf;
}

// Items of set i also in some other set of `sets`.
uint64_t SharedAcross(const std::vector<std::unordered_set<std::string>*>& sets) {
  uint64_t shared = 0;
  std::unordered_set<std::string> seen, counted;
  for (const auto* set : sets)
    for (const auto& x : *set)
      if (!seen.insert(x).second && counted.insert(x).second) ++shared;
  return shared;
}

uint64_t PhysicalMemory() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : 0;
}

uint64_t Field(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

// The per-tier and per-tenant parts of the report (--tiers host,ssd and
// --tenants): the run's own counts beside the library's.
void AddTiersAndTenants(const BenchConfig& config, const WorkerStats& total,
                        const nlohmann::json& lib, const kvc_stats& cs,
                        std::vector<TenantKeys>& tenant_keys, nlohmann::json* j) {
  (*j)["tiers_enabled"] = config.ssd ? "host,ssd" : "host";
  nlohmann::json tiers;
  tiers["host"] = {{"capacity_bytes", cs.capacity_bytes},
                   {"blocks", cs.blocks},
                   {"bytes", cs.used_bytes},
                   {"hits", total.loaded_blocks - total.ssd_loaded_blocks},
                   {"evictions", cs.evictions}};
  if (config.ssd) {
    const nlohmann::json ssd = lib.at("tiers").value("ssd", nlohmann::json::object());
    (*j)["write_mode"] = config.write_mode;
    (*j)["ssd_dir"] = config.ssd_dir;
    tiers["ssd"] = {{"capacity_bytes", cs.ssd_capacity_bytes},
                    {"blocks", cs.ssd_blocks},
                    {"bytes", cs.ssd_used_bytes},
                    {"hits", total.ssd_loaded_blocks},
                    {"lookup_hits", cs.ssd_hits},
                    {"promotions", cs.promotions},
                    {"demotions", cs.demotions},
                    {"demotions_dropped", cs.demotions_dropped},
                    {"checksum_failures", cs.checksum_failures},
                    {"bytes_read", Field(ssd, "bytes_read")},
                    {"bytes_written", Field(ssd, "bytes_written")}};
  }
  (*j)["tiers"] = tiers;
  (*j)["ssd_load_ratio"] = Ratio(static_cast<double>(total.ssd_loaded_blocks),
                                 static_cast<double>(total.loaded_blocks));
  if (total.tenants.empty() && config.tenants == 0) return;
  nlohmann::json rows = nlohmann::json::array();
  std::vector<TenantCounts> counts = total.tenants;
  counts.resize(config.tenants);
  for (uint32_t t = 0; t < config.tenants; ++t) {
    const std::string name = "t" + std::to_string(t);
    nlohmann::json libt = nlohmann::json::object();
    for (const auto& x : lib.value("tenants", nlohmann::json::array()))
      if (x.value("name", "") == name) libt = x;
    const TenantCounts& c = counts[t];
    rows.push_back({{"name", name},
                    {"requests", c.requests},
                    {"prompt_blocks", c.prompt_blocks},
                    {"hit_blocks", c.loaded_blocks},
                    {"ssd_hit_blocks", c.ssd_loaded_blocks},
                    {"hit_ratio_blocks", Ratio(static_cast<double>(c.loaded_blocks),
                                               static_cast<double>(c.prompt_blocks))},
                    {"tokens_saved", c.loaded_blocks * config.block_tokens},
                    {"foreign_hits", c.foreign_hits},
                    {"lookup_hits", Field(libt, "hits")},
                    {"lookup_misses", Field(libt, "misses")},
                    {"host_bytes", Field(libt, "host_bytes")},
                    {"host_blocks", Field(libt, "host_blocks")},
                    {"ssd_bytes", Field(libt, "ssd_bytes")},
                    {"ssd_blocks", Field(libt, "ssd_blocks")}});
  }
  // The isolation check: prompts' first blocks that several tenants sent
  // (the workload's shared prefixes), and keys that several tenants stored
  // (0 while each tenant's keys are salted with its own secret).
  std::vector<std::unordered_set<std::string>*> stored, first;
  for (auto& k : tenant_keys) {
    stored.push_back(&k.stored);
    first.push_back(&k.first_blocks);
  }
  (*j)["isolation"] = {{"shared_first_blocks", SharedAcross(first)},
                       {"shared_keys", SharedAcross(stored)}};
  (*j)["tenant_quota_bytes"] = config.tenant_quota_bytes;
  (*j)["tenants"] = rows;
}

}  // namespace

nlohmann::json StatsJson(const kvc_stats& s) {
  static const char* kReasons[KVC_MISS_REASONS] = {"absent",  "expired",   "evicted", "stale",
                                                   "pending", "quota",     "node_down",
                                                   "corrupt"};
  nlohmann::json by_reason = nlohmann::json::object();
  for (int i = 0; i < KVC_MISS_REASONS; ++i) by_reason[kReasons[i]] = s.misses_by_reason[i];
  return {{"capacity_bytes", s.capacity_bytes},
          {"used_bytes", s.used_bytes},
          {"blocks", s.blocks},
          {"pending", s.pending},
          {"pins", s.pins},
          {"namespaces", s.namespaces},
          {"hits", s.hits},
          {"misses", s.misses},
          {"misses_by_reason", by_reason},
          {"stores", s.stores},
          {"store_exists", s.store_exists},
          {"store_pending", s.store_pending},
          {"aborts", s.aborts},
          {"reservations_expired", s.reservations_expired},
          {"pins_expired", s.pins_expired},
          {"evictions", s.evictions},
          {"expirations", s.expirations},
          {"deletes", s.deletes},
          {"bytes_stored", s.bytes_stored},
          {"bytes_loaded", s.bytes_loaded},
          {"promotions", s.promotions},
          {"demotions", s.demotions},
          {"demotions_dropped", s.demotions_dropped},
          {"ssd_capacity_bytes", s.ssd_capacity_bytes},
          {"ssd_used_bytes", s.ssd_used_bytes},
          {"ssd_blocks", s.ssd_blocks},
          {"ssd_hits", s.ssd_hits},
          {"checksum_failures", s.checksum_failures}};
}

int RunLoadBench(const BenchConfig& config, const ModelPreset& model, uint64_t capacity_bytes,
                 nlohmann::json* out) {
  kvc_error err{};
  const uint32_t threads = config.threads;
  const uint64_t bytes_per_block = model.BytesPerToken() * config.block_tokens;
  const size_t max_blocks = config.max_context / config.block_tokens;
  const uint64_t phys = PhysicalMemory();
  const uint64_t needed = capacity_bytes + uint64_t{threads} * max_blocks * bytes_per_block;
  if (phys != 0 && needed > phys / 10 * 9)
    return Fail(kCmd, "the run needs " + FormatSize(needed) + " (capacity + " +
                          std::to_string(threads) + " threads x " +
                          std::to_string(config.max_context) + " tokens of KV) but the machine has " +
                          FormatSize(phys) + "; lower --capacity, --threads or --max-context");

  // Tenants: a tenants file in a temporary directory, one isolated tenant
  // per --tenants, each with its credential.
  TempDir tenants_dir;
  std::string tenants_path;
  std::vector<std::string> tenant_names, credentials;
  for (uint32_t t = 0; t < config.tenants; ++t) {
    if (t == 0) {
      std::string pattern =
          (std::filesystem::temp_directory_path() / "kvc-bench-tenants-XXXXXX").string();
      if (mkdtemp(pattern.data()) == nullptr)
        return Fail(kCmd, "cannot create a temporary directory for the tenants file: " +
                              std::string(std::strerror(errno)));
      tenants_dir.path = pattern;
      tenants_path = pattern + "/tenants.json";
    }
    tenant_names.push_back("t" + std::to_string(t));
    kvc_tenant_options topts = KVC_TENANT_OPTIONS_INIT;
    topts.name = tenant_names.back().c_str();
    topts.isolation = "isolated";
    topts.host_quota_bytes = config.tenant_quota_bytes;
    char* credential = nullptr;
    if (kvc_tenant_create(&credential, tenants_path.c_str(), &topts, &err) != KVC_OK)
      return FailStatus(kCmd, "kvc_tenant_create", err);
    credentials.emplace_back(credential);
    kvc_string_free(credential);
  }
  if (config.ssd) {
    std::error_code ec;
    std::filesystem::create_directories(config.ssd_dir, ec);
    if (ec) return Fail(kCmd, "cannot create --ssd-dir " + config.ssd_dir + ": " + ec.message());
  }

  kvc_cache_options copts = KVC_CACHE_OPTIONS_INIT;
  copts.host_capacity_bytes = capacity_bytes;
  copts.host_policy = config.policy.empty() ? nullptr : config.policy.c_str();
  if (!tenants_path.empty()) copts.tenants_path = tenants_path.c_str();
  if (config.ssd) {
    copts.ssd_dir = config.ssd_dir.c_str();
    copts.ssd_capacity_bytes = config.ssd_capacity_bytes;
  }
  kvc_cache* raw_cache = nullptr;
  const uint64_t open_start = NowNs();
  if (kvc_cache_open(&raw_cache, &copts, &err) != KVC_OK)
    return FailStatus(kCmd, "kvc_cache_open", err);
  CachePtr cache(raw_cache);
  const double open_s = static_cast<double>(NowNs() - open_start) / 1e9;

  kvc_namespace_options nopts = KVC_NAMESPACE_OPTIONS_INIT;
  nopts.hash = config.hash.empty() ? nullptr : config.hash.c_str();
  nopts.model = model.name.c_str();
  nopts.revision = "bench";
  nopts.dtype = model.dtype.c_str();
  nopts.layers = model.layers;
  nopts.kv_heads = model.kv_heads;
  nopts.head_dim = model.head_dim;
  nopts.block_tokens = config.block_tokens;
  nopts.write_mode = config.write_mode == "through" ? KVC_WRITE_THROUGH : KVC_WRITE_BACK;
  std::vector<NamespacePtr> namespaces;
  for (size_t t = 0; t < std::max<size_t>(1, tenant_names.size()); ++t) {
    if (!tenant_names.empty()) {
      nopts.tenant = tenant_names[t].c_str();
      nopts.credential = credentials[t].c_str();
    }
    kvc_namespace* raw_ns = nullptr;
    if (kvc_namespace_open(&raw_ns, cache.get(), &nopts, &err) != KVC_OK)
      return FailStatus(kCmd, "kvc_namespace_open", err);
    namespaces.emplace_back(raw_ns);
  }
  kvc_namespace_info info = KVC_NAMESPACE_INFO_INIT;
  if (kvc_namespace_info_get(namespaces[0].get(), &info, &err) != KVC_OK)
    return FailStatus(kCmd, "kvc_namespace_info_get", err);
  if (info.shard_bytes != bytes_per_block)
    return Fail(kCmd, "the namespace's block holds " + std::to_string(info.shard_bytes) +
                          " bytes, the model preset says " + std::to_string(bytes_per_block));

  WorkloadConfig wc;
  wc.kind = config.workload;
  wc.seed = config.seed;
  wc.max_context = config.max_context;
  const auto workload = MakeWorkload(wc);
  if (!workload) return Fail(kCmd, "unknown workload '" + config.workload + "'");

  std::vector<HostBuffer> kv;
  for (uint32_t t = 0; t < threads; ++t) kv.emplace_back(max_blocks * info.shard_bytes);
  // The limit is measured before and after the run and the better figure
  // kept, so a quiet moment on a shared machine sets it.
  const double limit_s = config.quick ? 0.05 : 0.25;
  double memcpy_gbps = max_blocks > 0 ? MemcpyGbps(kv, info.shard_bytes, limit_s) : 0.0;

  std::vector<TenantKeys> tenant_keys(tenant_names.size());
  RunPlan plan{{},         {},   &tenant_keys, info.shard_bytes, config.block_tokens,
               max_blocks, 0,    0,            config.verify,    config.seed};
  for (const auto& n : namespaces) plan.ns.push_back(n.get());
  if (!tenant_names.empty()) plan.tenant_cdf = ZipfCdf(static_cast<uint32_t>(tenant_names.size()));
  if (config.duration_s > 0)
    plan.deadline_ns = NowNs() + static_cast<uint64_t>(config.duration_s * 1e9);
  else
    plan.requests = config.requests != 0 ? config.requests : BenchConfig::kDefaultRequests;

  Shared shared;
  std::vector<WorkerStats> stats(threads);
  std::vector<std::unique_ptr<PromptStream>> streams;
  for (uint32_t t = 0; t < threads; ++t) streams.push_back(workload->NewStream(t));
  const bool tty = isatty(STDERR_FILENO) != 0;
  const bool progress = config.progress || tty;
  const uint64_t start = NowNs();
  std::vector<std::thread> workers;
  shared.running = threads;
  for (uint32_t t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      Worker(plan, t, streams[t].get(), &kv[t], &shared, &stats[t]);
      std::lock_guard<std::mutex> lock(shared.mu);
      --shared.running;
      shared.finished.notify_all();
    });
  }
  {
    std::unique_lock<std::mutex> lock(shared.mu);
    uint64_t last_done = 0, last_ns = start;
    while (!shared.finished.wait_for(lock, std::chrono::seconds(1),
                                     [&] { return shared.running == 0; })) {
      if (!progress) continue;
      const uint64_t now = NowNs(), done = shared.done.load(), blocks = shared.blocks.load();
      const double rate = static_cast<double>(done - last_done) * 1e9 /
                          static_cast<double>(std::max<uint64_t>(1, now - last_ns));
      std::fprintf(stderr, "%skvc bench: %.0f s, %llu requests, %.1f req/s, block hit ratio %.3f%s",
                   tty ? "\r\033[K" : "", static_cast<double>(now - start) / 1e9,
                   static_cast<unsigned long long>(done), rate,
                   blocks ? static_cast<double>(shared.hits.load()) / static_cast<double>(blocks)
                          : 0.0,
                   tty ? "" : "\n");
      std::fflush(stderr);
      last_done = done;
      last_ns = now;
    }
  }
  for (auto& w : workers) w.join();
  const double seconds = static_cast<double>(NowNs() - start) / 1e9;
  if (progress && tty) std::fprintf(stderr, "\r\033[K");
  if (!shared.error.empty()) return Fail(kCmd, shared.error);
  if (max_blocks > 0)
    memcpy_gbps = std::max(memcpy_gbps, MemcpyGbps(kv, info.shard_bytes, limit_s));

  WorkerStats total;
  for (const auto& s : stats) total.Merge(s);
  kvc_stats cs = KVC_STATS_INIT;
  if (kvc_cache_stats(cache.get(), &cs, &err) != KVC_OK)
    return FailStatus(kCmd, "kvc_cache_stats", err);

  const uint64_t sb = info.shard_bytes;
  const double bytes_loaded = static_cast<double>(total.loaded_blocks * sb);
  const double bytes_stored = static_cast<double>(total.stored_blocks * sb);
  const double load_gbps = Ratio(bytes_loaded, static_cast<double>(total.load_ns));
  const double store_gbps = Ratio(bytes_stored, static_cast<double>(total.store_ns));
  const uint64_t tokens_saved = total.loaded_blocks * config.block_tokens;
  char layout[160];
  std::snprintf(layout, sizeof layout,
                "dtype=%s;layers=%u;kv_heads=%u;head_dim=%u;block_tokens=%u;shards=1",
                model.dtype.c_str(), model.layers, model.kv_heads, model.head_dim,
                config.block_tokens);

  nlohmann::json j;
  j["bench"] = "load";
  j["workload"] = config.workload;
  j["workload_detail"] = workload->Describe();
  j["model"] = model.name;
  j["layout"] = layout;
  j["block_tokens"] = config.block_tokens;
  j["bytes_per_token"] = model.BytesPerToken();
  j["block_bytes"] = sb;
  j["capacity_bytes"] = capacity_bytes;
  j["policy"] = config.policy.empty() ? std::string(kvc_policy_default()) : config.policy;
  j["hash"] = config.hash.empty() ? std::string("default") : config.hash;
  j["threads"] = threads;
  j["seed"] = config.seed;
  j["max_context"] = config.max_context;
  j["open_seconds"] = open_s;
  j["requests"] = total.requests;
  j["seconds"] = seconds;
  j["ops_per_s"] = Ratio(static_cast<double>(total.requests), seconds);
  j["prompt_tokens"] = total.prompt_tokens;
  j["prompt_blocks"] = total.prompt_blocks;
  j["matched_blocks"] = total.matched_blocks;
  j["hit_blocks"] = total.loaded_blocks;
  j["load_misses"] = total.matched_blocks - total.loaded_blocks;
  j["hit_ratio_blocks"] =
      Ratio(static_cast<double>(total.loaded_blocks), static_cast<double>(total.prompt_blocks));
  j["hit_ratio_tokens"] =
      Ratio(static_cast<double>(tokens_saved), static_cast<double>(total.prompt_tokens));
  j["tokens_saved"] = tokens_saved;
  j["tokens_computed"] = total.prompt_tokens - tokens_saved;
  j["stored_blocks"] = total.stored_blocks;
  j["store_exists"] = total.store_exists;
  j["store_pending"] = total.store_pending;
  j["store_no_space"] = total.store_no_space;
  j["bytes_loaded"] = total.loaded_blocks * sb;
  j["bytes_stored"] = total.stored_blocks * sb;
  j["load_gbps"] = load_gbps;
  j["store_gbps"] = store_gbps;
  j["load_gbps_wall"] = Ratio(bytes_loaded / 1e9, seconds);
  j["store_gbps_wall"] = Ratio(bytes_stored / 1e9, seconds);
  j["memcpy_gbps"] = memcpy_gbps;
  j["load_vs_memcpy"] = Ratio(load_gbps, memcpy_gbps);
  j["store_vs_memcpy"] = Ratio(store_gbps, memcpy_gbps);
  j["verify"] = config.verify ? "full" : "edges";
  j["verify_failures"] = total.verify_failures;
  j["latency_us"] = {{"match", LatencyJson(total.match)},
                     {"load", LatencyJson(total.load)},
                     {"store", LatencyJson(total.store)},
                     {"request", LatencyJson(total.request)}};
  j["cache"] = StatsJson(cs);
  if (config.ssd || !tenant_names.empty()) {
    char* text = nullptr;
    if (kvc_cache_stats_json(cache.get(), &text, &err) != KVC_OK)
      return FailStatus(kCmd, "kvc_cache_stats_json", err);
    const nlohmann::json lib = nlohmann::json::parse(text, nullptr, false);
    kvc_string_free(text);
    if (lib.is_discarded()) return Fail(kCmd, "kvc_cache_stats_json returned malformed JSON");
    AddTiersAndTenants(config, total, lib, cs, tenant_keys, &j);
  }
  *out = std::move(j);
  return kExitOk;
}

}  // namespace kvc::cli
