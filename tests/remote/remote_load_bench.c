/* Loads through an embedded cache over an in-process node (remote_address,
 * gRPC or unix:): BLOCKS blocks stored on the node, then, in each of ROUNDS
 * rounds, a fresh cache (nothing local) loads them all, once with kvc_load
 * per key (what kvc_load_batch did before it batched the local misses) and
 * once with one kvc_load_batch, alternating which goes first. Prints, per
 * way, the node's Load calls per round (GET /metrics,
 * kvc_request_duration_seconds_count{rpc="Load"}) and the median GB/s of
 * block bytes loaded (promotion into host DRAM included).
 *   remote_load_bench BLOCK_KIB BLOCKS ROUNDS grpc|unix */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"
#include "kvc.h"

enum { kMaxRounds = 64 };

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static kvc_namespace_options spec(long kib) {
  /* 2 (k, v) * 2 (fp16) * layers * 8 heads * 128 dims * 16 tokens = layers * 64 KiB */
  kvc_namespace_options no = KVC_NAMESPACE_OPTIONS_INIT;
  no.model = "load-bench";
  no.revision = "r1";
  no.dtype = "fp16";
  no.layers = (uint32_t)(kib / 64);
  no.kv_heads = 8;
  no.head_dim = 128;
  no.block_tokens = 16;
  return no;
}

static int open_cache(kvc_cache **c, kvc_namespace **ns, const char *addr, long kib, long blocks) {
  kvc_cache_options co = KVC_CACHE_OPTIONS_INIT;
  kvc_namespace_options no = spec(kib);
  kvc_error err;
  co.host_capacity_bytes = (uint64_t)(kib * blocks + 64 * 1024) << 10;
  co.remote_address = addr;
  co.remote_timeout_ms = 10000;
  if (kvc_cache_open(c, &co, &err) != KVC_OK || kvc_namespace_open(ns, *c, &no, &err) != KVC_OK) {
    fprintf(stderr, "cache: %s\n", err.message);
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  kvc_cache_options nco = KVC_CACHE_OPTIONS_INIT;
  kvc_node_server_options so = KVC_NODE_SERVER_OPTIONS_INIT;
  kvc_node_server *node = NULL;
  kvc_cache *cache = NULL;
  kvc_namespace *ns = NULL;
  kvc_error err;
  char sock[256], addr[300], metrics[128];
  long kib, blocks, rounds, i, r, calls[2] = {0, 0}, bad[2] = {0, 0};
  double gbps[2][kMaxRounds];
  kvc_key *keys;
  kvc_buf *dsts;
  int32_t *st;
  uint8_t *src, *dst;
  size_t bytes;
  if (argc != 5 || (rounds = atol(argv[3])) < 1 || rounds > kMaxRounds || atol(argv[1]) % 64 ||
      atol(argv[1]) < 64 || atol(argv[2]) < 1) {
    fprintf(stderr, "usage: %s BLOCK_KIB(multiple of 64) BLOCKS ROUNDS(1..%d) grpc|unix\n", argv[0], kMaxRounds);
    return 2;
  }
  kib = atol(argv[1]);
  blocks = atol(argv[2]);
  bytes = (size_t)kib << 10;
  nco.host_capacity_bytes = (uint64_t)(kib * blocks + 64 * 1024) << 10;
  so.listen = "127.0.0.1:0";
  so.metrics_listen = "127.0.0.1:0";
  so.cache = &nco;
  snprintf(sock, sizeof sock, "/tmp/kvc-rlb-%d.sock", (int)getpid());
  so.unix_path = sock;
  if (kvc_node_server_start(&node, &so, &err) != KVC_OK) {
    fprintf(stderr, "node: %s\n", err.message);
    return 1;
  }
  snprintf(metrics, sizeof metrics, "%s", kvc_node_server_metrics_address(node));
  if (strcmp(argv[4], "unix") == 0)
    snprintf(addr, sizeof addr, "unix:%s", sock);
  else
    snprintf(addr, sizeof addr, "%s", kvc_node_server_address(node));
  keys = calloc((size_t)blocks, sizeof *keys);
  dsts = calloc((size_t)blocks, sizeof *dsts);
  st = calloc((size_t)blocks, sizeof *st);
  src = malloc(bytes);
  dst = malloc(bytes * (size_t)blocks);
  /* The blocks, on the node (stored through a cache, flushed). */
  if (open_cache(&cache, &ns, addr, kib, blocks)) return 1;
  for (i = 0; i < blocks; i++) {
    kvc_buf b = KVC_HOST_BUF(src, bytes);
    size_t j;
    memcpy(keys[i].bytes, &i, sizeof i);
    for (j = 0; j < bytes; j++) src[j] = (uint8_t)(i * 131 + j * 7);
    dsts[i].data = dst + (size_t)i * bytes;
    dsts[i].len = bytes;
    dsts[i].mem = KVC_MEM_HOST;
    if (kvc_store(ns, &keys[i], 0, &b, NULL, &err) != KVC_OK) {
      fprintf(stderr, "store: %s\n", err.message);
      return 1;
    }
    /* A store that does not fit the send queue is not sent: flush often. */
    if ((i % 8 == 7 || i == blocks - 1) && kvc_cache_flush(cache, &err) != KVC_OK) return 1;
  }
  kvc_namespace_close(ns);
  kvc_cache_close(cache);
  for (r = 0; r < rounds; r++) {
    int k;
    for (k = 0; k < 2; k++) {
      const int batch = (int)((r + k) % 2); /* alternate which way goes first */
      long before, after;
      double t0;
      if (open_cache(&cache, &ns, addr, kib, blocks)) return 1;
      memset(dst, 0, bytes * (size_t)blocks);
      before = rpc_calls(metrics, "Load");
      t0 = now_s();
      if (batch) {
        size_t loaded = 0;
        if (kvc_load_batch(ns, st, &loaded, keys, (size_t)blocks, 0, dsts, &err) != KVC_OK) return 1;
        if ((long)loaded != blocks) {
          for (i = 0; i < blocks; i++)
            if (st[i] != KVC_OK) fprintf(stderr, "batch: block %ld: %s\n", i, kvc_status_str(st[i]));
          bad[1]++;
        }
      } else {
        for (i = 0; i < blocks; i++)
          if (kvc_load(ns, &keys[i], 0, &dsts[i], &err) != KVC_OK) {
            fprintf(stderr, "per key: block %ld: %s\n", i, err.message);
            bad[0]++;
          }
      }
      gbps[batch][r] = (double)bytes * (double)blocks / (now_s() - t0) / 1e9;
      after = rpc_calls(metrics, "Load");
      calls[batch] = before < 0 || after < 0 ? -1 : after - before;
      for (i = 0; i < blocks; i++) {
        size_t j;
        for (j = 0; j < bytes; j += 4093)
          if (dst[(size_t)i * bytes + j] != (uint8_t)(i * 131 + j * 7)) {
            bad[batch]++;
            break;
          }
      }
      kvc_namespace_close(ns);
      kvc_cache_close(cache);
    }
  }
  qsort(gbps[0], (size_t)rounds, sizeof(double), cmp_double);
  qsort(gbps[1], (size_t)rounds, sizeof(double), cmp_double);
  printf("{\"block_kib\":%ld,\"blocks\":%ld,\"rounds\":%ld,\"transport\":\"%s\","
         "\"per_key\":{\"load_calls\":%ld,\"gbps_median\":%.3f,\"gbps_min\":%.3f,\"gbps_max\":%.3f},"
         "\"batch\":{\"load_calls\":%ld,\"gbps_median\":%.3f,\"gbps_min\":%.3f,\"gbps_max\":%.3f}}\n",
         kib, blocks, rounds, argv[4], calls[0], gbps[0][rounds / 2], gbps[0][0], gbps[0][rounds - 1], calls[1],
         gbps[1][rounds / 2], gbps[1][0], gbps[1][rounds - 1]);
  kvc_node_server_stop(node, 1000);
  free(keys);
  free(dsts);
  free(st);
  free(src);
  free(dst);
  if (bad[0] || bad[1]) {
    fprintf(stderr, "FAILED: loads missed or not byte-exact: %ld per key, %ld batch\n", bad[0], bad[1]);
    return 1;
  }
  return 0;
}
