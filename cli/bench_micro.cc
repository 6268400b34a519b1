#include "bench_micro.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <latch>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "bench_util.h"
#include "bench_workload.h"
#include "command.h"

namespace kvc::cli {
namespace {

constexpr const char* kCmd = "bench";
constexpr uint64_t kMiB = uint64_t{1} << 20;

// A failed kvc call inside a benchmark; ends the whole run.
class BenchError : public std::runtime_error {
 public:
  BenchError(const std::string& what, const kvc_error& err)
      : std::runtime_error(what + ": " + err.message + " (" + kvc_status_name(err.code) + ")") {}
  explicit BenchError(const std::string& what) : std::runtime_error(what) {}
};

void Check(int rc, const char* what, const kvc_error& err) {
  if (rc != KVC_OK) throw BenchError(what, err);
}

struct Layout {
  const char* dtype;
  uint32_t layers, kv_heads, head_dim, block_tokens;

  std::string Text() const {
    return std::string("dtype=") + dtype + ";layers=" + std::to_string(layers) +
           ";kv_heads=" + std::to_string(kv_heads) + ";head_dim=" + std::to_string(head_dim) +
           ";block_tokens=" + std::to_string(block_tokens);
  }
};

// Blocks of exactly 64 KiB, 1 MiB and 16 MiB (fp16: 2 bytes), and of 512 B
// for the index-bound benchmarks (int8).
constexpr Layout k64KiB{"fp16", 2, 8, 64, 16};
constexpr Layout k1MiB{"fp16", 32, 8, 64, 16};
constexpr Layout k16MiB{"fp16", 64, 8, 128, 64};
constexpr Layout kTiny{"int8", 1, 1, 16, 16};

// A cache with one namespace, closed on destruction.
struct Env {
  CachePtr cache;
  NamespacePtr ns;
  kvc_namespace_options nopts = KVC_NAMESPACE_OPTIONS_INIT;
  uint64_t shard_bytes = 0;

  Env(uint64_t capacity, const Layout& l, const char* hash) {
    kvc_error err{};
    kvc_cache_options copts = KVC_CACHE_OPTIONS_INIT;
    copts.host_capacity_bytes = capacity;
    kvc_cache* c = nullptr;
    Check(kvc_cache_open(&c, &copts, &err), "kvc_cache_open", err);
    cache.reset(c);
    AddNamespace(l, hash);
  }

  // Replaces the namespace (the cache and its blocks stay).
  void AddNamespace(const Layout& l, const char* hash) {
    kvc_error err{};
    nopts = KVC_NAMESPACE_OPTIONS_INIT;
    nopts.hash = hash;
    nopts.model = "kvc-bench-micro";
    nopts.revision = "1";
    nopts.dtype = l.dtype;
    nopts.layers = l.layers;
    nopts.kv_heads = l.kv_heads;
    nopts.head_dim = l.head_dim;
    nopts.block_tokens = l.block_tokens;
    kvc_namespace* n = nullptr;
    Check(kvc_namespace_open(&n, cache.get(), &nopts, &err), "kvc_namespace_open", err);
    ns.reset(n);
    kvc_namespace_info info = KVC_NAMESPACE_INFO_INIT;
    Check(kvc_namespace_info_get(ns.get(), &info, &err), "kvc_namespace_info_get", err);
    shard_bytes = info.shard_bytes;
  }

  // Stores SyntheticKey(first ..) for `n` blocks; returns the keys.
  std::vector<kvc_key> StoreSynthetic(uint64_t first, size_t n) {
    kvc_error err{};
    HostBuffer src(shard_bytes);
    std::vector<kvc_key> keys;
    for (size_t i = 0; i < n; ++i) {
      keys.push_back(SyntheticKey(first + i));
      FillBlock(src.data(), shard_bytes, keys.back());
      kvc_buf b = KVC_HOST_BUF(src.data(), shard_bytes);
      Check(kvc_store(ns.get(), &keys.back(), 0, &b, nullptr, &err), "kvc_store", err);
    }
    return keys;
  }
};

// How long to measure: `rounds` alternations of kvc and limit, each of at
// least `seconds`; the best round of each side is kept (the least disturbed
// by other work on the machine).
struct Timing {
  int rounds;
  double seconds;
};

// Runs `batch` (returns the units it did) until `seconds` have passed;
// returns units per second.
template <class F>
double Rate(F&& batch, double seconds) {
  const uint64_t start = NowNs(), budget = static_cast<uint64_t>(seconds * 1e9);
  uint64_t units = 0, now = start;
  do {
    units += batch();
    now = NowNs();
  } while (now - start < budget);
  return static_cast<double>(units) * 1e9 / static_cast<double>(now - start);
}

struct Pair {
  double kvc = 0;
  double limit = 0;
};

template <class K, class L>
Pair Compare(const Timing& t, K&& kvc_batch, L&& limit_batch) {
  Pair p;
  for (int r = 0; r < t.rounds; ++r) {
    p.kvc = std::max(p.kvc, Rate(kvc_batch, t.seconds));
    p.limit = std::max(p.limit, Rate(limit_batch, t.seconds));
  }
  return p;
}

struct Row {
  std::string name;
  std::string what;
  std::string unit;  // "GB/s", "ops/s", "blocks/s"
  std::string limit_what;
  std::string layout;
  uint64_t block_bytes = 0;
  uint32_t threads = 1;
  Pair figures;
  // At most one target: a minimum ratio kvc/limit, or a minimum kvc figure.
  std::optional<double> min_ratio;
  std::optional<double> min_kvc;
  nlohmann::json extra = nlohmann::json::object();  // more fields for the row

  nlohmann::json Json() const {
    const double ratio = figures.limit > 0 ? figures.kvc / figures.limit : 0.0;
    nlohmann::json j{{"name", name},         {"what", what},
                     {"unit", unit},         {"kvc", figures.kvc},
                     {"limit", figures.limit}, {"limit_what", limit_what},
                     {"ratio", ratio},       {"layout", layout},
                     {"block_bytes", block_bytes}, {"threads", threads}};
    if (min_ratio) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "ratio >= %.2f", *min_ratio);
      j["target"] = buf;
      j["target_met"] = ratio >= *min_ratio;
    } else if (min_kvc) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "kvc >= %.3g %s", *min_kvc, unit.c_str());
      j["target"] = buf;
      j["target_met"] = figures.kvc >= *min_kvc;
    } else {
      j["target"] = nullptr;
      j["target_met"] = nullptr;
    }
    j.update(extra);
    return j;
  }
};

std::string SizeName(uint64_t bytes) {
  if (bytes >= kMiB && bytes % kMiB == 0) return std::to_string(bytes / kMiB) + "MiB";
  if (bytes >= 1024 && bytes % 1024 == 0) return std::to_string(bytes / 1024) + "KiB";
  return std::to_string(bytes) + "B";
}

// The limit of index operations: one uncontended mutex and an unordered_map
// from key to a pin count, as the simplest correct index would be.
struct KeyHash {
  size_t operator()(const kvc_key& k) const {
    uint64_t a, b;
    std::memcpy(&a, k.bytes, 8);
    std::memcpy(&b, k.bytes + 8, 8);
    return static_cast<size_t>((a ^ (b * 0x9e3779b97f4a7c15ull)) * 0xbf58476d1ce4e5b9ull);
  }
};
struct KeyEq {
  bool operator()(const kvc_key& x, const kvc_key& y) const {
    return std::memcmp(x.bytes, y.bytes, KVC_KEY_BYTES) == 0;
  }
};
struct MapIndex {
  struct Entry {
    const uint8_t* data;
    uint32_t pins;
  };
  std::mutex mu;
  std::unordered_map<kvc_key, Entry, KeyHash, KeyEq> map;  // GUARDED_BY(mu)
};

// --- host-tier load vs memcpy ------------------------------------------------

Row LoadRow(const Layout& layout, uint64_t working_set, const Timing& t) {
  const uint64_t size = uint64_t{2} * layout.layers * layout.kv_heads * layout.head_dim *
                        layout.block_tokens * 2;
  const size_t n = std::max<size_t>(2, working_set / size);
  Env env(2 * n * size + 4 * kMiB, layout, nullptr);
  if (env.shard_bytes != size)
    throw BenchError("layout " + layout.Text() + " gives " + std::to_string(env.shard_bytes) +
                     " bytes, not " + std::to_string(size));
  const auto keys = env.StoreSynthetic(0, n);
  HostBuffer dst(size), src(n * size);
  for (size_t i = 0; i < n; ++i) FillBlock(src.data() + i * size, size, keys[i]);
  kvc_buf d = KVC_HOST_BUF(dst.data(), size);
  kvc_error err{};
  Row row;
  row.figures = Compare(
      t,
      [&] {
        for (size_t i = 0; i < n; ++i)
          Check(kvc_load(env.ns.get(), &keys[i], 0, &d, &err), "kvc_load", err);
        return n * size;
      },
      [&] {
        for (size_t i = 0; i < n; ++i) std::memcpy(dst.data(), src.data() + i * size, size);
        return n * size;
      });
  row.figures.kvc /= 1e9;
  row.figures.limit /= 1e9;
  Check(kvc_load(env.ns.get(), &keys[0], 0, &d, &err), "kvc_load", err);
  if (!CheckBlock(dst.data(), size, keys[0], true))
    throw BenchError("kvc_load copied bytes that differ from the stored block");
  row.name = "load_" + SizeName(size);
  row.what = "kvc_load (host tier, copy out) of " + SizeName(size) + " blocks, " +
             std::to_string(n) + " blocks round robin into one warm buffer";
  row.unit = "GB/s";
  row.limit_what = "memcpy of the same sizes from a same-size source into the same buffer";
  row.layout = layout.Text();
  row.block_bytes = size;
  if (size >= kMiB) row.min_ratio = 0.80;
  return row;
}

// --- zero-copy views ----------------------------------------------------------

Row ViewRow(const Timing& t, size_t n) {
  Env env(64 * kMiB, kTiny, nullptr);
  const auto keys = env.StoreSynthetic(0, n);
  MapIndex index;
  std::vector<uint8_t> bytes(env.shard_bytes * n);
  for (size_t i = 0; i < n; ++i) index.map[keys[i]] = {bytes.data() + i * env.shard_bytes, 0};
  kvc_error err{};
  volatile uint8_t sink = 0;
  Row row;
  row.figures = Compare(
      t,
      [&] {
        for (size_t i = 0; i < n; ++i) {
          kvc_view v;
          Check(kvc_view_acquire(env.ns.get(), &v, &keys[i], 0, 0, &err), "kvc_view_acquire",
                err);
          sink = static_cast<const uint8_t*>(v.data)[0];
          Check(kvc_view_release(env.ns.get(), &v, &err), "kvc_view_release", err);
        }
        return n;
      },
      [&] {
        for (size_t i = 0; i < n; ++i) {
          const uint8_t* data;
          {
            std::lock_guard<std::mutex> lock(index.mu);
            auto& e = index.map.find(keys[i])->second;
            ++e.pins;
            data = e.data;
          }
          sink = data[0];
          std::lock_guard<std::mutex> lock(index.mu);
          --index.map.find(keys[i])->second.pins;
        }
        return n;
      });
  (void)sink;
  row.name = "view_acquire_release";
  row.what = "kvc_view_acquire + read 1 byte + kvc_view_release, " + std::to_string(n) +
             " keys round robin";
  row.unit = "ops/s";
  row.limit_what =
      "lock + unordered_map find + pin++ + unlock, read 1 byte, lock + find + pin-- + unlock";
  row.layout = kTiny.Text();
  row.block_bytes = env.shard_bytes;
  return row;
}

// --- match --------------------------------------------------------------------

std::vector<Row> MatchRows(const Timing& t, size_t blocks) {
  std::vector<Row> rows;
  WorkloadConfig wc;
  Rng rng(42);
  std::vector<uint32_t> tokens(blocks * kTiny.block_tokens);
  for (auto& tok : tokens) tok = static_cast<uint32_t>(rng.Next() % wc.vocab);
  Env env(16 * kMiB, kTiny, "sha256");
  kvc_error err{};
  for (const char* hash : {"sha256", "xxh3-128"}) {
    env.AddNamespace(kTiny, hash);
    std::vector<kvc_key> keys(blocks);
    size_t nk = 0;
    Check(kvc_keys_compute(env.ns.get(), keys.data(), keys.size(), &nk, tokens.data(),
                           tokens.size(), &err),
          "kvc_keys_compute", err);
    HostBuffer src(blocks * env.shard_bytes);
    std::vector<kvc_buf> srcs(blocks);
    for (size_t i = 0; i < blocks; ++i) {
      FillBlock(src.data() + i * env.shard_bytes, env.shard_bytes, keys[i]);
      srcs[i] = kvc_buf KVC_HOST_BUF(src.data() + i * env.shard_bytes, env.shard_bytes);
    }
    Check(kvc_store_batch(env.ns.get(), nullptr, keys.data(), blocks, 0, srcs.data(), nullptr,
                          &err),
          "kvc_store_batch", err);
    std::vector<kvc_key> out(blocks);
    size_t matched = 0;
    Check(kvc_match_tokens(env.ns.get(), &matched, nullptr, out.data(), out.size(),
                           tokens.data(), tokens.size(), &err),
          "kvc_match_tokens", err);
    if (matched != blocks)
      throw BenchError("kvc_match_tokens matched " + std::to_string(matched) + " of " +
                       std::to_string(blocks) + " blocks just stored");

    Row r;
    r.figures = Compare(
        t,
        [&] {
          Check(kvc_match_tokens(env.ns.get(), &matched, nullptr, out.data(), out.size(),
                                 tokens.data(), tokens.size(), &err),
                "kvc_match_tokens", err);
          return matched;
        },
        [&] {
          kvc_key seed;
          size_t n = 0;
          Check(kvc_hash_keys(&seed, out.data(), out.size(), &n, &env.nopts, tokens.data(),
                              tokens.size(), &err),
                "kvc_hash_keys", err);
          return n;
        });
    r.name = std::string("match_tokens_") + hash;
    r.what = std::string("kvc_match_tokens (") + hash + ", keys out) of a " +
             std::to_string(blocks) + "-block prompt, every block present";
    r.unit = "blocks/s";
    r.limit_what = "kvc_hash_keys of the same tokens: hashing alone, no index";
    r.layout = kTiny.Text();
    r.block_bytes = env.shard_bytes;
    if (std::string(hash) == "sha256") r.min_kvc = 2e6;
    rows.push_back(r);

    if (std::string(hash) != "sha256") continue;
    MapIndex index;
    for (const auto& k : keys) index.map[k] = {nullptr, 0};
    Row k;
    k.figures = Compare(
        t,
        [&] {
          Check(kvc_match(env.ns.get(), &matched, nullptr, keys.data(), keys.size(), &err),
                "kvc_match", err);
          return matched;
        },
        [&] {
          size_t m = 0;
          for (; m < keys.size(); ++m) {
            std::lock_guard<std::mutex> lock(index.mu);
            if (index.map.find(keys[m]) == index.map.end()) break;
          }
          return m;
        });
    k.name = "match_keys";
    k.what = "kvc_match of " + std::to_string(blocks) + " precomputed keys, every block present";
    k.unit = "blocks/s";
    k.limit_what = "per key: lock + unordered_map find + unlock";
    k.layout = kTiny.Text();
    k.block_bytes = env.shard_bytes;
    k.min_kvc = 5e6;
    rows.push_back(k);
  }
  return rows;
}

// --- store + commit -----------------------------------------------------------

Row StoreRow(const Layout& layout, uint64_t working_set, const Timing& t) {
  Env env(working_set, layout, nullptr);
  const uint64_t size = env.shard_bytes;
  const size_t ring_blocks = std::max<size_t>(2, working_set / size);
  env.StoreSynthetic(0, ring_blocks);  // fill: from here on every store evicts
  uint64_t next = ring_blocks;
  HostBuffer src(size), ring(ring_blocks * size);
  FillBlock(src.data(), size, SyntheticKey(0));
  kvc_buf s = KVC_HOST_BUF(src.data(), size);
  kvc_error err{};
  size_t slot = 0;
  constexpr size_t kBatch = 16;
  Row row;
  row.figures = Compare(
      t,
      [&] {
        for (size_t i = 0; i < kBatch; ++i) {
          const kvc_key k = SyntheticKey(next++);
          Check(kvc_store(env.ns.get(), &k, 0, &s, nullptr, &err), "kvc_store", err);
        }
        return kBatch * size;
      },
      [&] {
        for (size_t i = 0; i < kBatch; ++i, slot = (slot + 1) % ring_blocks)
          std::memcpy(ring.data() + slot * size, src.data(), size);
        return kBatch * size;
      });
  row.figures.kvc /= 1e9;
  row.figures.limit /= 1e9;
  row.name = "store_" + SizeName(size);
  row.what = "kvc_store (reserve, copy in, checksum, commit) of " + SizeName(size) +
             " blocks with new keys into a full cache (each store evicts)";
  row.unit = "GB/s";
  row.limit_what = "memcpy of the same sizes from the same source round robin over a " +
                   SizeName(ring_blocks * size) + " ring";
  row.layout = layout.Text();
  row.block_bytes = size;
  return row;
}

// --- two threads ----------------------------------------------------------------

// Runs `op(thread, i)` (returns bytes moved) on 2 threads for `seconds`;
// returns the aggregate bytes per second.
template <class F>
double TwoThreadRate(F&& op, double seconds) {
  std::latch start(3);
  std::atomic<uint64_t> bytes{0};
  uint64_t t0 = 0;
  std::vector<std::thread> ts;
  std::atomic<bool> stop{false};
  for (int th = 0; th < 2; ++th) {
    ts.emplace_back([&, th] {
      uint64_t mine = 0;
      start.arrive_and_wait();
      for (uint64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) mine += op(th, i);
      bytes += mine;
    });
  }
  start.arrive_and_wait();
  t0 = NowNs();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& th : ts) th.join();
  return static_cast<double>(bytes.load()) / static_cast<double>(NowNs() - t0);
}

std::vector<Row> TwoThreadRows(uint64_t working_set, const Timing& t) {
  const Layout layout = k1MiB;
  const uint64_t size = kMiB;
  const size_t n = std::max<size_t>(4, working_set / size);
  const size_t write_ring = std::max<size_t>(4, n / 4);
  Env env((n + write_ring) * size, layout, nullptr);
  if (env.shard_bytes != size) throw BenchError("the 1 MiB layout gives another size");
  const auto keys = env.StoreSynthetic(0, n);
  HostBuffer read_src(n * size);
  for (size_t i = 0; i < n; ++i) FillBlock(read_src.data() + i * size, size, keys[i]);
  HostBuffer dst[2] = {HostBuffer(size), HostBuffer(size)};
  HostBuffer src[2] = {HostBuffer(size), HostBuffer(size)};
  HostBuffer ring[2] = {HostBuffer(write_ring / 2 * size), HostBuffer(write_ring / 2 * size)};
  std::atomic<uint64_t> next_key{n};
  std::atomic<uint64_t> misses{0};
  std::mutex fail_mu;
  std::string failure;  // GUARDED_BY(fail_mu)
  auto fail = [&](const std::string& what, const kvc_error& err) {
    std::lock_guard<std::mutex> lock(fail_mu);
    if (failure.empty()) failure = BenchError(what, err).what();
    return uint64_t{0};
  };
  // Loads cycle the read set, thread 1 half a set behind thread 0.
  auto load = [&](int th, uint64_t i) -> uint64_t {
    kvc_error err{};
    kvc_buf d = KVC_HOST_BUF(dst[th].data(), size);
    const int rc = kvc_load(env.ns.get(), &keys[(i + th * n / 2) % n], 0, &d, &err);
    if (rc == KVC_ERR_NOT_FOUND) {
      ++misses;
      return 0;
    }
    return rc == KVC_OK ? size : fail("kvc_load", err);
  };
  auto load_limit = [&](int th, uint64_t i) -> uint64_t {
    std::memcpy(dst[th].data(), read_src.data() + (i + th * n / 2) % n * size, size);
    return size;
  };
  auto mixed = [&](int th, uint64_t i) -> uint64_t {
    if (i % 4 != 3) return load(th, i - i / 4);
    kvc_error err{};
    const kvc_key k = SyntheticKey(next_key++);
    kvc_buf s = KVC_HOST_BUF(src[th].data(), size);
    const int rc = kvc_store(env.ns.get(), &k, 0, &s, nullptr, &err);
    return rc == KVC_OK ? size : fail("kvc_store", err);
  };
  auto mixed_limit = [&](int th, uint64_t i) -> uint64_t {
    if (i % 4 != 3) return load_limit(th, i - i / 4);
    const size_t slots = write_ring / 2;
    std::memcpy(ring[th].data() + (i / 4) % slots * size, src[th].data(), size);
    return size;
  };
  std::vector<Row> rows;
  Row l;
  for (int r = 0; r < t.rounds; ++r) {
    l.figures.kvc = std::max(l.figures.kvc, TwoThreadRate(load, t.seconds));
    l.figures.limit = std::max(l.figures.limit, TwoThreadRate(load_limit, t.seconds));
  }
  const uint64_t load_misses = misses.exchange(0);
  Row m;
  for (int r = 0; r < t.rounds; ++r) {
    m.figures.kvc = std::max(m.figures.kvc, TwoThreadRate(mixed, t.seconds));
    m.figures.limit = std::max(m.figures.limit, TwoThreadRate(mixed_limit, t.seconds));
  }
  if (!failure.empty()) throw BenchError(failure);
  if (load_misses != 0)
    throw BenchError("2-thread load: " + std::to_string(load_misses) +
                     " loads of stored blocks missed in a cache with room for all of them");
  l.name = "load_1MiB_2threads";
  l.what = "2 threads, kvc_load of 1 MiB blocks, " + std::to_string(n) +
           " blocks round robin, each into its own warm buffer";
  l.unit = "GB/s";
  l.limit_what = "2 threads, memcpy of the same pattern";
  l.threads = 2;
  l.min_ratio = 0.80;
  m.name = "mixed_1MiB_2threads";
  m.what = "2 threads, 3 kvc_load : 1 kvc_store (new key, full cache: evicts) of 1 MiB "
           "blocks; a load that misses an evicted block moves no bytes (kvc_load_misses)";
  m.unit = "GB/s";
  m.limit_what = "2 threads, memcpy of the same pattern (stores into a ring)";
  m.threads = 2;
  m.extra["kvc_load_misses"] = misses.load();
  for (Row* r : {&l, &m}) {  // bytes per ns: GB/s already
    r->layout = layout.Text();
    r->block_bytes = size;
  }
  rows.push_back(l);
  rows.push_back(m);
  return rows;
}

}  // namespace

int RunMicroBench(const BenchConfig& config, nlohmann::json* out) {
  const bool q = config.quick;
  const Timing t = q ? Timing{1, 0.02} : Timing{5, 0.15};
  const Timing t2 = q ? Timing{1, 0.05} : Timing{3, 0.3};
  const uint64_t working_set = q ? 32 * kMiB : 128 * kMiB;
  nlohmann::json rows = nlohmann::json::array();
  try {
    for (const Layout* l : {&k64KiB, &k1MiB, &k16MiB})
      rows.push_back(LoadRow(*l, working_set, t).Json());
    rows.push_back(ViewRow(t, q ? 256 : 4096).Json());
    for (const auto& r : MatchRows(t, q ? 128 : 512)) rows.push_back(r.Json());
    for (const Layout* l : {&k64KiB, &k1MiB})
      rows.push_back(StoreRow(*l, working_set, t).Json());
    for (const auto& r : TwoThreadRows(working_set, t2)) rows.push_back(r.Json());
  } catch (const BenchError& e) {
    return Fail(kCmd, e.what());
  }
  *out = {{"bench", "micro"},
          {"quick", q},
          {"rounds", t.rounds},
          {"round_seconds", t.seconds},
          {"cpu", CpuModel()},
          {"cpus", std::thread::hardware_concurrency()},
          {"rows", rows}};
  return kExitOk;
}

}  // namespace kvc::cli
