// shm_bench [--blocks N] [--rounds R] [--json] [--batch N]: load bandwidth
// of 1 MiB block shards through an in-process node, over the same-host path
// ("unix:") and over TCP, against plain memcpy of the same bytes in the same
// run. Built, not run by CTest (a measurement, not a test): the figure for
// docs/node.md and docs/benchmarks.md is the ratio unix-load / memcpy.
//
// Each round reads every block once into one destination buffer; the
// working set (N MiB, 256 by default) is larger than the CPU caches, so
// memcpy and loads both move bytes from DRAM.
//
// --batch N: same-host gets and puts through kvc_node_get_batch /
// kvc_node_put_batch, a batch of 1 and a batch of N blocks, each over
// memcpy of the same pattern in alternate rounds of the same run (a get
// batch copies N blocks into N destination buffers; so does its memcpy).
// Then the parts of a copy out of the arena: memcpy from a MAP_SHARED memfd
// (the arena's kind of memory) against private memory (4 KiB pages, and
// transparent huge pages where the kernel gives them), with the page faults
// a round of the memfd takes on a fresh mapping and once warm.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "kvc.h"

namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

kvc_namespace_options Space() {
  // 2 (K,V) x 8 layers x 32 tokens x 8 heads x 128 dims x 2 bytes = 1 MiB.
  kvc_namespace_options o = KVC_NAMESPACE_OPTIONS_INIT;
  o.model = "shm-bench";
  o.revision = "r1";
  o.dtype = "fp16";
  o.layers = 8;
  o.kv_heads = 8;
  o.head_dim = 128;
  o.block_tokens = 32;
  return o;
}

int Fail(const char* what, const kvc_error& err) {
  std::fprintf(stderr, "shm_bench: %s: %s\n", what, err.message);
  return 1;
}

long MinorFaults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

// --batch: the batch figures (see the top of the file). The node holds
// `keys` in namespace `o`; puts go to a namespace of their own and are
// deleted after each round (not timed).
int BatchBench(kvc_node* node, const kvc_namespace_options& o, const std::vector<kvc_key>& keys,
               const std::vector<uint8_t>& src, size_t batch, int rounds, bool json) {
  constexpr size_t kBlock = 1u << 20;
  const size_t blocks = keys.size();
  kvc_namespace_options po = o;
  po.revision = "put";
  kvc_error err;
  std::vector<uint8_t> dst(batch * kBlock), pdst(src.size());
  std::memset(dst.data(), 1, dst.size());
  std::memset(pdst.data(), 1, pdst.size());
  std::vector<kvc_node_item> items(batch);
  int bad = 0;
  const auto gbs = [&](double t0) { return blocks * double(kBlock) / (Now() - t0) / 1e9; };
  // One round of each kind with batches of b blocks; GB/s.
  auto copy_get = [&](size_t b) {
    const double t0 = Now();
    for (size_t i = 0; i < blocks; i += b)
      for (size_t k = 0; k < b && i + k < blocks; ++k)
        std::memcpy(dst.data() + k * kBlock, src.data() + (i + k) * kBlock, kBlock);
    return gbs(t0);
  };
  auto get = [&](size_t b) {
    const double t0 = Now();
    for (size_t i = 0; i < blocks; i += b) {
      const size_t n = std::min(b, blocks - i);
      for (size_t k = 0; k < n; ++k) {
        items[k] = kvc_node_item{};
        items[k].key = keys[i + k];
        items[k].buf = KVC_HOST_BUF(dst.data() + k * kBlock, kBlock);
      }
      if (kvc_node_get_batch(node, &o, 0, items.data(), n, &err) != KVC_OK) bad++;
      for (size_t k = 0; k < n; ++k) bad += items[k].status != KVC_OK || items[k].len != kBlock;
    }
    return gbs(t0);
  };
  auto copy_put = [&](size_t) {
    const double t0 = Now();
    for (size_t i = 0; i < blocks; ++i) std::memcpy(pdst.data() + i * kBlock, src.data() + i * kBlock, kBlock);
    return gbs(t0);
  };
  auto put = [&](size_t b) {
    const double t0 = Now();
    for (size_t i = 0; i < blocks; i += b) {
      const size_t n = std::min(b, blocks - i);
      for (size_t k = 0; k < n; ++k) {
        items[k] = kvc_node_item{};
        items[k].key = keys[i + k];
        items[k].buf = KVC_HOST_BUF(const_cast<uint8_t*>(src.data()) + (i + k) * kBlock, kBlock);
      }
      if (kvc_node_put_batch(node, &po, 0, items.data(), n, nullptr, &err) != KVC_OK) bad++;
      for (size_t k = 0; k < n; ++k) bad += items[k].status != KVC_OK;
    }
    const double g = gbs(t0);
    for (const kvc_key& k : keys)
      if (kvc_node_delete(node, &po, &k, &err) != KVC_OK) bad++;
    return g;
  };
  // A peer and a path in alternate rounds (a shared machine is noisy): the
  // best round of each.
  // *faults: the path's minor page faults per round after the first.
  auto pair = [&](auto&& peer, auto&& path, size_t b, double* peer_best, double* path_best, long* faults) {
    peer(b);
    path(b);
    *peer_best = *path_best = 0;
    *faults = 0;
    for (int r = 0; r < rounds; ++r) {
      *peer_best = std::max(*peer_best, peer(b));
      const long f0 = MinorFaults();
      *path_best = std::max(*path_best, path(b));
      *faults += MinorFaults() - f0;
    }
    *faults /= rounds;
  };
  struct Row {
    size_t batch;
    double copy_get, get, copy_put, put;
    long get_faults, put_faults;
  };
  std::vector<Row> rows;
  for (size_t b : {size_t{1}, batch}) {
    if (!rows.empty() && b == rows.back().batch) break;
    Row row{b, 0, 0, 0, 0, 0, 0};
    pair(copy_get, get, b, &row.copy_get, &row.get, &row.get_faults);
    pair(copy_put, put, b, &row.copy_put, &row.put, &row.put_faults);
    rows.push_back(row);
  }
  // Copies out of a MAP_SHARED memfd (4 KiB pages: shmem huge pages are
  // off unless /sys/kernel/mm/transparent_hugepage/shmem_enabled says
  // otherwise) against private memory, same pattern as a batch-1 get; the
  // minor faults of the first (cold mapping) and later rounds.
  double shared_gbs = 0, private_gbs = 0, huge_gbs = 0;
  long shared_cold_faults = -1, shared_warm_faults = 0;
  {
    const int fd = memfd_create("shm-bench", MFD_CLOEXEC);
    void* p = MAP_FAILED;
    if (fd >= 0 && ftruncate(fd, static_cast<off_t>(src.size())) == 0)
      p = mmap(nullptr, src.size(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p != MAP_FAILED) {
      auto* m = static_cast<uint8_t*>(p);
      std::memcpy(m, src.data(), src.size());
      munmap(p, src.size());  // a second mapping, as a client's: pages there, page tables not
      p = mmap(nullptr, src.size(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    }
    if (p != MAP_FAILED) {
      auto* m = static_cast<uint8_t*>(p);
      auto from = [&](const uint8_t* base) {
        const double t0 = Now();
        for (size_t i = 0; i < blocks; ++i) std::memcpy(dst.data(), base + i * kBlock, kBlock);
        return gbs(t0);
      };
      // Private memory on transparent huge pages where the kernel gives
      // them (/sys/kernel/mm/transparent_hugepage/enabled): what 2 MiB
      // pages would be worth to the arena.
      uint8_t* huge = nullptr;
      const size_t align = 2u << 20;
      void* hp = mmap(nullptr, src.size() + align, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (hp != MAP_FAILED) {
        huge = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(hp) + align - 1) & ~(align - 1));
        madvise(huge, src.size(), MADV_HUGEPAGE);
        std::memcpy(huge, src.data(), src.size());
      }
      long f0 = MinorFaults();
      from(m);
      shared_cold_faults = MinorFaults() - f0;
      from(src.data());
      if (huge) from(huge);
      f0 = MinorFaults();
      for (int r = 0; r < rounds; ++r) {
        const long g0 = MinorFaults();
        shared_gbs = std::max(shared_gbs, from(m));
        shared_warm_faults += MinorFaults() - g0;
        private_gbs = std::max(private_gbs, from(src.data()));
        if (huge) huge_gbs = std::max(huge_gbs, from(huge));
      }
      shared_warm_faults /= rounds;
      if (hp != MAP_FAILED) munmap(hp, src.size() + align);
      munmap(p, src.size());
    }
    if (fd >= 0) close(fd);
  }
  if (bad) std::fprintf(stderr, "shm_bench: %d batch calls or items failed: %s\n", bad, err.message);
  if (json) {
    std::printf("{\"block_bytes\":%zu,\"blocks\":%zu,\"rounds\":%d,\"batches\":[", kBlock, blocks, rounds);
    for (size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      std::printf("%s{\"batch\":%zu,\"memcpy_get_gbs\":%.3f,\"get_gbs\":%.3f,\"get_over_memcpy\":%.3f,"
                  "\"memcpy_put_gbs\":%.3f,\"put_gbs\":%.3f,\"put_over_memcpy\":%.3f,\"get_round_faults\":%ld,"
                  "\"put_round_faults\":%ld}",
                  i ? "," : "", r.batch, r.copy_get, r.get, r.get / r.copy_get, r.copy_put, r.put,
                  r.put / r.copy_put, r.get_faults, r.put_faults);
    }
    std::printf("],\"memfd_memcpy_gbs\":%.3f,\"private_memcpy_gbs\":%.3f,\"memfd_over_private\":%.3f,"
                "\"private_huge_memcpy_gbs\":%.3f,\"memfd_cold_round_faults\":%ld,\"memfd_warm_round_faults\":%ld}\n",
                shared_gbs, private_gbs, shared_gbs / private_gbs, huge_gbs, shared_cold_faults, shared_warm_faults);
  } else {
    std::printf("1 MiB block shards, %zu blocks, same-host batches, best of %d alternate rounds\n", blocks, rounds);
    std::printf("  batch  memcpy-get    get      get/memcpy  memcpy-put    put      put/memcpy  faults/round get put\n");
    for (const Row& r : rows)
      std::printf("  %5zu  %7.2f GB/s %7.2f GB/s  %5.3f      %7.2f GB/s %7.2f GB/s  %5.3f       %6ld %6ld\n", r.batch,
                  r.copy_get, r.get, r.get / r.copy_get, r.copy_put, r.put, r.put / r.copy_put, r.get_faults,
                  r.put_faults);
    std::printf("  memcpy from a memfd  %7.2f GB/s, from private memory %7.2f GB/s (%.3f), on huge pages %7.2f GB/s\n",
                shared_gbs, private_gbs, shared_gbs / private_gbs, huge_gbs);
    std::printf("  minor faults of a round out of a fresh memfd mapping: %ld cold, %ld warm\n", shared_cold_faults,
                shared_warm_faults);
  }
  return bad ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  size_t blocks = 256;
  int rounds = 10;
  bool json = false, unix_only = false;
  size_t batch = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--blocks" && i + 1 < argc) blocks = std::strtoul(argv[++i], nullptr, 10);
    else if (a == "--rounds" && i + 1 < argc) rounds = std::atoi(argv[++i]);
    else if (a == "--json") json = true;
    else if (a == "--unix-only") unix_only = true;  // loads over unix: only (for a profiler)
    else if (a == "--batch" && i + 1 < argc && std::atoi(argv[i + 1]) > 0) batch = std::strtoul(argv[++i], nullptr, 10);
    else {
      std::fprintf(stderr, "usage: shm_bench [--blocks N] [--rounds R] [--json] [--unix-only] [--batch N]\n");
      return a == "--help" ? 0 : 2;
    }
  }
  if (blocks == 0 || rounds <= 0 || batch > KVC_NODE_MAX_BATCH) return 2;
  constexpr size_t kBlock = 1u << 20;
  char dir[] = "/tmp/kvc-shm-bench-XXXXXX";
  if (mkdtemp(dir) == nullptr) return 1;
  const std::string sock = std::string(dir) + "/node.sock";
  kvc_error err;
  kvc_cache_options co = KVC_CACHE_OPTIONS_INIT;
  // --batch: room for a round of puts beside the loaded blocks.
  co.host_capacity_bytes = (blocks + blocks / 4 + 16 + (batch ? blocks + batch : 0)) * kBlock;
  kvc_node_server_options so = KVC_NODE_SERVER_OPTIONS_INIT;
  so.listen = "127.0.0.1:0";
  so.cache = &co;
  so.unix_path = sock.c_str();
  kvc_node_server* server = nullptr;
  if (kvc_node_server_start(&server, &so, &err) != KVC_OK) return Fail("start", err);
  kvc_node *unix_node = nullptr, *tcp_node = nullptr;
  if (kvc_node_connect(&unix_node, ("unix:" + sock).c_str(), nullptr, &err) != KVC_OK) return Fail("unix", err);
  if (kvc_node_connect(&tcp_node, kvc_node_server_address(server), nullptr, &err) != KVC_OK) return Fail("tcp", err);

  const kvc_namespace_options o = Space();
  std::vector<uint8_t> src(blocks * kBlock), dst(kBlock);
  for (size_t i = 0; i < src.size(); i += 64) src[i] = static_cast<uint8_t>(i >> 6);
  std::vector<kvc_key> keys(blocks);
  for (size_t b = 0; b < blocks; ++b) {
    std::memset(keys[b].bytes, 0, sizeof keys[b].bytes);
    std::memcpy(keys[b].bytes, &b, sizeof b);
    kvc_buf s = KVC_HOST_BUF(src.data() + b * kBlock, kBlock);
    if (kvc_node_put(unix_node, &o, &keys[b], 0, &s, nullptr, &err) != KVC_OK) return Fail("put", err);
  }
  if (batch) {
    const int rc = BatchBench(unix_node, o, keys, src, batch, rounds, json);
    kvc_node_close(unix_node);
    kvc_node_close(tcp_node);
    kvc_node_server_stop(server, 1000);
    rmdir(dir);
    return rc;
  }
  // Stores through the arena, for the record (one memcpy each, plus two
  // round trips): timed over a second namespace.
  kvc_namespace_options o2 = o;
  o2.revision = "r2";
  double t = Now();
  for (size_t b = 0; b < blocks / 4; ++b) {
    kvc_buf s = KVC_HOST_BUF(src.data() + b * kBlock, kBlock);
    if (kvc_node_put(unix_node, &o2, &keys[b], 0, &s, nullptr, &err) != KVC_OK) return Fail("put", err);
  }
  const double store_gbs = (blocks / 4) * double(kBlock) / (Now() - t) / 1e9;

  // One round: every block once; GB/s.
  auto round = [&](auto&& one) {
    const double t0 = Now();
    for (size_t b = 0; b < blocks; ++b) one(b);
    return blocks * double(kBlock) / (Now() - t0) / 1e9;
  };
  auto run = [&](auto&& one) {
    round(one);  // warm: page tables, caches of the path
    double best = 0;
    for (int r = 0; r < rounds; ++r) best = std::max(best, round(one));
    return best;
  };
  int bad = 0;
  auto copy = [&](size_t b) { std::memcpy(dst.data(), src.data() + b * kBlock, kBlock); };
  auto load = [&](kvc_node* n) {
    return [&, n](size_t b) {
      size_t len = 0;
      kvc_buf d = KVC_HOST_BUF(dst.data(), kBlock);
      if (kvc_node_get(n, &len, &o, &keys[b], 0, &d, &err) != KVC_OK || len != kBlock) bad++;
    };
  };
  if (unix_only) {
    const double g = run(load(unix_node));
    std::printf("load unix: %.2f GB/s\n", g);
    return bad ? 1 : 0;
  }
  // memcpy and unix: loads in alternate rounds, so that both see the same
  // machine (a shared one is noisy); the best round of each.
  double base = 0, unix_gbs = 0;
  round(copy);
  round(load(unix_node));
  for (int r = 0; r < rounds; ++r) {
    base = std::max(base, round(copy));
    unix_gbs = std::max(unix_gbs, round(load(unix_node)));
  }
  const double tcp_gbs = run(load(tcp_node));
  // The parts of a load: a round trip alone (a size-only get pins nothing
  // and copies nothing), and memcpy out of a MAP_SHARED memfd like the arena.
  const double t_rt0 = Now();
  for (size_t b = 0; b < blocks; ++b) {
    size_t len = 0;
    if (kvc_node_get(unix_node, &len, &o, &keys[b], 0, nullptr, &err) != KVC_OK) bad++;
  }
  const double rt_us = (Now() - t_rt0) / blocks * 1e6;
  double shmem_gbs = 0;
  {
    const int fd = memfd_create("shm-bench", MFD_CLOEXEC);
    void* p = MAP_FAILED;
    if (fd >= 0 && ftruncate(fd, static_cast<off_t>(src.size())) == 0)
      p = mmap(nullptr, src.size(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p != MAP_FAILED) {
      auto* m = static_cast<uint8_t*>(p);
      std::memcpy(m, src.data(), src.size());
      shmem_gbs = run([&](size_t b) { std::memcpy(dst.data(), m + b * kBlock, kBlock); });
      munmap(p, src.size());
    }
    if (fd >= 0) close(fd);
  }
  if (bad) std::fprintf(stderr, "shm_bench: %d loads failed: %s\n", bad, err.message);
  if (json) {
    std::printf("{\"block_bytes\":%zu,\"blocks\":%zu,\"rounds\":%d,\"memcpy_gbs\":%.3f,\"unix_load_gbs\":%.3f,"
                "\"tcp_load_gbs\":%.3f,\"unix_store_gbs\":%.3f,\"unix_over_memcpy\":%.3f,\"tcp_over_memcpy\":%.3f,"
                "\"memfd_memcpy_gbs\":%.3f,\"unix_round_trip_us\":%.1f}\n",
                kBlock, blocks, rounds, base, unix_gbs, tcp_gbs, store_gbs, unix_gbs / base, tcp_gbs / base, shmem_gbs,
                rt_us);
  } else {
    std::printf("1 MiB block shards, %zu blocks, best of %d alternate rounds\n", blocks, rounds);
    std::printf("  memcpy            %7.2f GB/s\n", base);
    std::printf("  load unix:        %7.2f GB/s  %5.1f%% of memcpy\n", unix_gbs, 100 * unix_gbs / base);
    std::printf("  load TCP          %7.2f GB/s  %5.1f%% of memcpy\n", tcp_gbs, 100 * tcp_gbs / base);
    std::printf("  store unix:       %7.2f GB/s\n", store_gbs);
    std::printf("  memcpy from memfd %7.2f GB/s\n", shmem_gbs);
    std::printf("  unix: round trip  %7.1f us (size-only get)\n", rt_us);
  }
  kvc_node_close(unix_node);
  kvc_node_close(tcp_node);
  kvc_node_server_stop(server, 1000);
  rmdir(dir);
  return bad ? 1 : 0;
}
