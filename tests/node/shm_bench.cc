// shm_bench [--blocks N] [--rounds R] [--json]: load bandwidth of 1 MiB
// block shards through an in-process node, over the same-host path
// ("unix:") and over TCP, against plain memcpy of the same bytes in the same
// run. Built, not run by CTest (a measurement, not a test): the figure for
// docs/node.md and docs/benchmarks.md is the ratio unix-load / memcpy.
//
// Each round reads every block once into one destination buffer; the
// working set (N MiB, 256 by default) is larger than the CPU caches, so
// memcpy and loads both move bytes from DRAM.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <sys/mman.h>
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

}  // namespace

int main(int argc, char** argv) {
  size_t blocks = 256;
  int rounds = 10;
  bool json = false, unix_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--blocks" && i + 1 < argc) blocks = std::strtoul(argv[++i], nullptr, 10);
    else if (a == "--rounds" && i + 1 < argc) rounds = std::atoi(argv[++i]);
    else if (a == "--json") json = true;
    else if (a == "--unix-only") unix_only = true;  // loads over unix: only (for a profiler)
    else {
      std::fprintf(stderr, "usage: shm_bench [--blocks N] [--rounds R] [--json] [--unix-only]\n");
      return a == "--help" ? 0 : 2;
    }
  }
  if (blocks == 0 || rounds <= 0) return 2;
  constexpr size_t kBlock = 1u << 20;
  char dir[] = "/tmp/kvc-shm-bench-XXXXXX";
  if (mkdtemp(dir) == nullptr) return 1;
  const std::string sock = std::string(dir) + "/node.sock";
  kvc_error err;
  kvc_cache_options co = KVC_CACHE_OPTIONS_INIT;
  co.host_capacity_bytes = (blocks + blocks / 4 + 16) * kBlock;
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
