/* Stores through an embedded cache over an in-process node (remote_address,
 * gRPC or unix:): rounds of kvc_store of `per_round` blocks then
 * kvc_cache_flush; prints the node's Store calls per block (GET /metrics,
 * kvc_request_duration_seconds_count{rpc="Store"}) and GB/s of blocks the
 * node took (remote bytes_sent over the time from the first store to the
 * last flush). Built against kvc.h only, so one binary measures any
 * libkvc.so (LD_LIBRARY_PATH): the remote tier before and after batches.
 *   remote_batch_bench BLOCK_KIB BLOCKS PER_ROUND grpc|unix [NODE METRICS SOCKET]
 *   remote_batch_bench serve CAPACITY_MIB SOCKET   (a node on its own: prints
 *     "NODE METRICS", serves until stdin closes; so that the node is the
 *     same library whichever client runs) */
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

static long remote_stat(kvc_cache *c, const char *name) {
  char *json = NULL, pat[64];
  const char *r, *p;
  long v = -1;
  kvc_error err;
  if (kvc_cache_stats_json(c, &json, &err) != KVC_OK) return -1;
  r = strstr(json, "\"remote\":{");
  snprintf(pat, sizeof pat, "\"%s\":", name);
  if (r && (p = strstr(r, pat)) != NULL) v = strtol(p + strlen(pat), NULL, 10);
  kvc_string_free(json);
  return v;
}

int main(int argc, char **argv) {
  kvc_cache_options nco = KVC_CACHE_OPTIONS_INIT, co = KVC_CACHE_OPTIONS_INIT;
  kvc_node_server_options so = KVC_NODE_SERVER_OPTIONS_INIT;
  kvc_namespace_options no = KVC_NAMESPACE_OPTIONS_INIT;
  kvc_node_server *node = NULL;
  kvc_cache *cache = NULL;
  kvc_namespace *ns = NULL;
  kvc_error err;
  char sock[256], addr[300], metrics[128];
  long kib, blocks, per_round, before, after, i, j;
  uint8_t *src;
  double t0, t;
  const int pid = (int)getpid();
  if (argc == 4 && strcmp(argv[1], "serve") == 0) {
    char line[8];
    nco.host_capacity_bytes = (uint64_t)atol(argv[2]) << 20;
    so.listen = "127.0.0.1:0";
    so.metrics_listen = "127.0.0.1:0";
    so.cache = &nco;
    so.unix_path = argv[3];
    if (kvc_node_server_start(&node, &so, &err) != KVC_OK) {
      fprintf(stderr, "node: %s\n", err.message);
      return 1;
    }
    printf("%s %s\n", kvc_node_server_address(node), kvc_node_server_metrics_address(node));
    fflush(stdout);
    while (fgets(line, sizeof line, stdin) != NULL) {
    }
    kvc_node_server_stop(node, 1000);
    return 0;
  }
  if (argc != 5 && argc != 8) {
    fprintf(stderr, "usage: %s BLOCK_KIB BLOCKS PER_ROUND grpc|unix [NODE METRICS SOCKET]\n", argv[0]);
    return 2;
  }
  kib = atol(argv[1]);
  blocks = atol(argv[2]);
  per_round = atol(argv[3]);
  nco.host_capacity_bytes = (uint64_t)(kib * blocks + 64 * 1024) << 10;
  so.listen = "127.0.0.1:0";
  so.metrics_listen = "127.0.0.1:0";
  so.cache = &nco;
  snprintf(sock, sizeof sock, "/tmp/kvc-rbb-%d.sock", (int)getpid());
  so.unix_path = sock;
  if (argc == 8) {
    snprintf(sock, sizeof sock, "%s", argv[7]);
    snprintf(metrics, sizeof metrics, "%s", argv[6]);
  } else if (kvc_node_server_start(&node, &so, &err) != KVC_OK) {
    fprintf(stderr, "node: %s\n", err.message);
    return 1;
  } else {
    snprintf(metrics, sizeof metrics, "%s", kvc_node_server_metrics_address(node));
  }
  if (strcmp(argv[4], "unix") == 0)
    snprintf(addr, sizeof addr, "unix:%s", sock);
  else
    snprintf(addr, sizeof addr, "%s", argc == 8 ? argv[5] : kvc_node_server_address(node));
  co.host_capacity_bytes = (uint64_t)(kib * blocks + 64 * 1024) << 10;
  co.remote_address = addr;
  co.remote_timeout_ms = 10000;
  if (kvc_cache_open(&cache, &co, &err) != KVC_OK) {
    fprintf(stderr, "cache: %s\n", err.message);
    return 1;
  }
  /* kib KiB blocks: 2 (k, v) * 2 (fp16) * layers * 8 heads * 128 dims * 16 tokens = layers * 64 KiB */
  no.model = argc == 8 ? "bench-shared-node" : "bench";
  no.revision = "r1";
  no.dtype = "fp16";
  no.layers = (uint32_t)(kib / 64);
  no.kv_heads = 8;
  no.head_dim = 128;
  no.block_tokens = 16;
  if (kib % 64 || kvc_namespace_open(&ns, cache, &no, &err) != KVC_OK) {
    fprintf(stderr, "namespace: %s\n", kib % 64 ? "BLOCK_KIB must be a multiple of 64" : err.message);
    return 1;
  }
  src = malloc((size_t)kib << 10);
  for (j = 0; j < kib << 10; j++) src[j] = (uint8_t)(j * 7);
  before = rpc_calls(metrics, "Store");
  t0 = now_s();
  for (i = 0; i < blocks;) {
    for (j = 0; j < per_round && i < blocks; j++, i++) {
      kvc_key key;
      kvc_buf b = KVC_HOST_BUF(src, (uint64_t)kib << 10);
      memset(&key, 0, sizeof key);
      memcpy(&key, &i, sizeof i);
      memcpy(key.bytes + 8, &pid, sizeof pid);  /* runs against one node store distinct blocks */
      memcpy(src, &i, sizeof i);
      if (kvc_store(ns, &key, 0, &b, NULL, &err) != KVC_OK) {
        fprintf(stderr, "store: %s\n", err.message);
        return 1;
      }
    }
    if (kvc_cache_flush(cache, &err) != KVC_OK) {
      fprintf(stderr, "flush: %s\n", err.message);
      return 1;
    }
  }
  t = now_s() - t0;
  after = rpc_calls(metrics, "Store");
  printf("{\"block_kib\":%ld,\"blocks\":%ld,\"per_round\":%ld,\"transport\":\"%s\",\"sends\":%ld,"
         "\"dropped\":%ld,\"failures\":%ld,\"store_calls\":%ld,\"calls_per_block\":%.4f,\"seconds\":%.4f,"
         "\"gbps\":%.3f}\n",
         kib, blocks, per_round, argv[4], remote_stat(cache, "sends"), remote_stat(cache, "sends_dropped"),
         remote_stat(cache, "send_failures"), after - before, (double)(after - before) / (double)blocks, t,
         (double)remote_stat(cache, "bytes_sent") / t / 1e9);
  i = remote_stat(cache, "sends");
  kvc_namespace_close(ns);
  kvc_cache_close(cache);
  kvc_node_server_stop(node, 1000);
  free(src);
  if (i != blocks || before < 0 || after < 0) {
    fprintf(stderr, "FAILED: %ld of %ld blocks sent; node Store calls %ld -> %ld (-1: /metrics unreadable)\n", i,
            blocks, before, after);
    return 1;
  }
  return 0;
}
