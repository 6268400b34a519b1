/* cluster_batch_tool: batches through a cluster address, from C (the
 * kvc_node_*_batch calls), for test_cluster_batch.py. Prints one line of
 * JSON.
 *
 *   cluster_batch_tool put CLUSTER NODES N SEED
 *     Stores blocks 0..N-1 (bytes drawn from SEED) with one
 *     kvc_node_put_batch through CLUSTER; then asks each node of NODES
 *     (comma-separated host:port) directly which blocks it holds.
 *     {"rc":..,"status":[..],"holders":[[node indices of block i]..]}
 *   cluster_batch_tool get CLUSTER N SEED
 *     Gets blocks 0..N (block N was never stored) with one
 *     kvc_node_get_batch, then each alone with kvc_node_get.
 *     {"rc":..,"status":[..],"len":[..],"bytes_ok":[..],"single":[..],
 *      "single_len":[..],"seconds":..}
 *   cluster_batch_tool getb CLUSTER N SEED
 *     As get, the batch alone (no single gets): {"rc":..,"status":[..]} */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvc.h"

enum { kBytes = 4096, kMax = 256 };

static kvc_namespace_options spec(void) {
  kvc_namespace_options o = KVC_NAMESPACE_OPTIONS_INIT;
  o.model = "cluster-batch";
  o.revision = "r1";
  o.dtype = "int8";
  o.layers = 1;
  o.kv_heads = 1;
  o.head_dim = kBytes / 2;
  o.block_tokens = 1;
  return o;
}

static kvc_key key_of(unsigned seed, int i) {
  kvc_key k;
  int j;
  for (j = 0; j < KVC_KEY_BYTES; j++) k.bytes[j] = (uint8_t)((seed * 131u + (unsigned)i * 7919u) >> (j % 4 * 3) ^ (unsigned)j * 29u);
  k.bytes[0] = (uint8_t)i;
  k.bytes[1] = (uint8_t)seed;
  return k;
}

static void fill(uint8_t *p, unsigned seed, int i) {
  int j;
  for (j = 0; j < kBytes; j++) p[j] = (uint8_t)(seed * 17u + (unsigned)i * 31u + (unsigned)j * 7u);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static kvc_node *connect_to(const char *addr) {
  kvc_node *n = NULL;
  kvc_node_options o = KVC_NODE_OPTIONS_INIT;
  kvc_error err;
  o.timeout_ms = 5000;
  o.connect_timeout_ms = 1000;
  if (kvc_node_connect(&n, addr, &o, &err) != KVC_OK) {
    fprintf(stderr, "connect %s: %s\n", addr, err.message);
    exit(2);
  }
  return n;
}

int main(int argc, char **argv) {
  static uint8_t src[kMax][kBytes], dst[kMax + 1][kBytes], one[kBytes];
  static kvc_node_item items[kMax + 1];
  kvc_namespace_options o = spec();
  kvc_error err;
  int i, n, rc;
  unsigned seed;
  if (argc < 5 || (strcmp(argv[1], "put") == 0 && argc < 6)) {
    fprintf(stderr, "usage: cluster_batch_tool put CLUSTER NODES N SEED | get CLUSTER N SEED\n");
    return 2;
  }
  if (strcmp(argv[1], "put") == 0) {
    char nodes[4096], *save = NULL, *a;
    kvc_node *cluster = connect_to(argv[2]), *direct[16];
    int nn = 0;
    n = atoi(argv[4]);
    seed = (unsigned)atoi(argv[5]);
    if (n < 1 || n > kMax) return 2;
    memset(items, 0, sizeof items);
    for (i = 0; i < n; i++) {
      kvc_buf b = KVC_HOST_BUF(src[i], kBytes);
      fill(src[i], seed, i);
      items[i].key = key_of(seed, i);
      items[i].buf = b;
    }
    rc = kvc_node_put_batch(cluster, &o, 0, items, (size_t)n, NULL, &err);
    snprintf(nodes, sizeof nodes, "%s", argv[3]);
    for (a = strtok_r(nodes, ",", &save); a && nn < 16; a = strtok_r(NULL, ",", &save)) direct[nn++] = connect_to(a);
    printf("{\"rc\":%d,\"error\":\"%s\",\"status\":[", rc, rc ? kvc_status_name(rc) : "");
    for (i = 0; i < n; i++) printf("%s%d", i ? "," : "", items[i].status);
    printf("],\"holders\":[");
    for (i = 0; i < n; i++) {
      int j, first = 1;
      printf("%s[", i ? "," : "");
      for (j = 0; j < nn; j++) {
        size_t len = 0;
        kvc_buf b = KVC_HOST_BUF(one, kBytes);
        if (kvc_node_get(direct[j], &len, &o, &items[i].key, 0, &b, &err) == KVC_OK && len == kBytes &&
            memcmp(one, src[i], kBytes) == 0) {
          printf("%s%d", first ? "" : ",", j);
          first = 0;
        }
      }
      printf("]");
    }
    printf("]}\n");
    for (i = 0; i < nn; i++) kvc_node_close(direct[i]);
    kvc_node_close(cluster);
    return 0;
  }
  if (strcmp(argv[1], "get") == 0 || strcmp(argv[1], "getb") == 0) {
    kvc_node *cluster = connect_to(argv[2]);
    int single[kMax + 1];
    size_t single_len[kMax + 1];
    double t;
    n = atoi(argv[3]);
    seed = (unsigned)atoi(argv[4]);
    if (n < 1 || n > kMax) return 2;
    memset(items, 0, sizeof items);
    memset(dst, 0, sizeof dst);
    for (i = 0; i <= n; i++) {
      kvc_buf b = KVC_HOST_BUF(dst[i], kBytes);
      fill(src[i], seed, i);
      items[i].key = key_of(seed, i);
      items[i].buf = b;
    }
    t = now_s();
    rc = kvc_node_get_batch(cluster, &o, 0, items, (size_t)n + 1, &err);
    t = now_s() - t;
    if (strcmp(argv[1], "getb") == 0) {
      printf("{\"rc\":%d,\"status\":[", rc);
      for (i = 0; i <= n; i++) printf("%s%d", i ? "," : "", items[i].status);
      printf("]}\n");
      kvc_node_close(cluster);
      return 0;
    }
    for (i = 0; i <= n; i++) {
      kvc_buf b = KVC_HOST_BUF(one, kBytes);
      single_len[i] = 0;
      single[i] = kvc_node_get(cluster, &single_len[i], &o, &items[i].key, 0, &b, &err);
    }
    printf("{\"rc\":%d,\"error\":\"%s\",\"seconds\":%.3f,\"status\":[", rc, rc ? kvc_status_name(rc) : "", t);
    for (i = 0; i <= n; i++) printf("%s%d", i ? "," : "", items[i].status);
    printf("],\"len\":[");
    for (i = 0; i <= n; i++) printf("%s%zu", i ? "," : "", items[i].len);
    printf("],\"bytes_ok\":[");
    for (i = 0; i <= n; i++) printf("%s%s", i ? "," : "", memcmp(dst[i], src[i], kBytes) == 0 ? "true" : "false");
    printf("],\"single\":[");
    for (i = 0; i <= n; i++) printf("%s%d", i ? "," : "", single[i]);
    printf("],\"single_len\":[");
    for (i = 0; i <= n; i++) printf("%s%zu", i ? "," : "", single_len[i]);
    printf("]}\n");
    kvc_node_close(cluster);
    return 0;
  }
  fprintf(stderr, "unknown mode %s\n", argv[1]);
  return 2;
}
