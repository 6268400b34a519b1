/* The kvc_node_* C calls against an in-process node (kvc_node_server_start
 * on a free loopback port, no tenants), compared with the same operations on
 * an embedded cache: equal keys, byte-exact blocks, equal statuses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvc.h"

static int failures = 0;

#define CHECK(cond)                                                    \
  do {                                                                 \
    if (!(cond)) {                                                     \
      fprintf(stderr, "%s:%d: CHECK(%s) failed: %s\n", __FILE__,       \
              __LINE__, #cond, kvc_error_last());                      \
      failures++;                                                      \
    }                                                                  \
  } while (0)

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static kvc_namespace_options spec(void) {
  kvc_namespace_options o = KVC_NAMESPACE_OPTIONS_INIT;
  o.model = "capi-model";
  o.revision = "r1";
  o.dtype = "fp16";
  o.layers = 2;
  o.kv_heads = 2;
  o.head_dim = 8;
  o.block_tokens = 4;
  return o;
}

int main(void) {
  enum { kTokens = 12, kBlocks = 3, kBytes = 512 };
  uint32_t tokens[kTokens];
  uint8_t blocks[kBlocks][kBytes], back[kBytes], local[kBytes];
  kvc_key node_keys[kBlocks], local_keys[kBlocks];
  uint8_t tiers[kBlocks];
  size_t n = 0, matched = 99, len = 0;
  int i, j;
  kvc_error err;
  kvc_namespace_options o = spec();

  for (i = 0; i < kTokens; i++) tokens[i] = 1000u + (uint32_t)i;
  for (i = 0; i < kBlocks; i++)
    for (j = 0; j < kBytes; j++) blocks[i][j] = (uint8_t)(i * 31 + j * 7);

  kvc_cache_options co = KVC_CACHE_OPTIONS_INIT;
  co.host_capacity_bytes = 4u << 20;
  kvc_node_server_options so = KVC_NODE_SERVER_OPTIONS_INIT;
  so.listen = "127.0.0.1:0";
  so.cache = &co;
  kvc_node_server *server = NULL;
  if (!(kvc_features() & KVC_FEATURE_GRPC)) {
    kvc_node *none = NULL;
    char *json = NULL;
    CHECK(kvc_node_server_start(&server, &so, &err) == KVC_ERR_UNSUPPORTED && server == NULL);
    CHECK(strstr(err.message, "built without gRPC") != NULL);
    CHECK(kvc_node_connect(&none, "127.0.0.1:1", NULL, &err) == KVC_ERR_UNSUPPORTED && none == NULL);
    CHECK(kvc_node_stats_json(NULL, &json, &err) == KVC_ERR_UNSUPPORTED && json == NULL);
    CHECK(kvc_node_match(NULL, &matched, NULL, &o, NULL, 0, &err) == KVC_ERR_UNSUPPORTED && matched == 0);
    CHECK(kvc_node_close(NULL) == KVC_OK && kvc_node_server_stop(NULL, 0) == KVC_OK);
    if (failures) fprintf(stderr, "%d failure(s)\n", failures);
    return failures ? 1 : 0;
  }
  CHECK(kvc_node_server_start(&server, &so, &err) == KVC_OK);
  if (server == NULL) return 1;
  const char *addr = kvc_node_server_address(server);
  CHECK(strncmp(addr, "127.0.0.1:", 10) == 0 && strcmp(addr, "127.0.0.1:0") != 0);

  kvc_node *node = NULL;
  CHECK(kvc_node_connect(&node, addr, NULL, &err) == KVC_OK);

  /* The embedded cache, for comparison. */
  kvc_cache *cache = NULL;
  kvc_namespace *ns = NULL;
  CHECK(kvc_cache_open(&cache, &co, &err) == KVC_OK);
  CHECK(kvc_namespace_open(&ns, cache, &o, &err) == KVC_OK);
  CHECK(kvc_keys_compute(ns, local_keys, kBlocks, &n, tokens, kTokens, &err) == KVC_OK && n == kBlocks);

  CHECK(kvc_node_match_tokens(node, &matched, tiers, node_keys, kBlocks, &o, tokens, kTokens, &err) == KVC_OK);
  CHECK(matched == 0);
  CHECK(memcmp(node_keys, local_keys, sizeof node_keys) == 0);

  for (i = 0; i < kBlocks; i++) {
    kvc_buf src = KVC_HOST_BUF(blocks[i], kBytes);
    kvc_store_options st = KVC_STORE_OPTIONS_INIT;
    st.parent = i ? &local_keys[i - 1] : NULL;
    CHECK(kvc_node_put(node, &o, &node_keys[i], 0, &src, &st, &err) == KVC_OK);
    CHECK(kvc_store(ns, &local_keys[i], 0, &src, &st, &err) == KVC_OK);
  }
  {
    kvc_buf src = KVC_HOST_BUF(blocks[0], kBytes);
    CHECK(kvc_node_put(node, &o, &node_keys[0], 0, &src, NULL, &err) == KVC_ERR_EXISTS);
    CHECK(kvc_store(ns, &local_keys[0], 0, &src, NULL, &err) == KVC_ERR_EXISTS);
  }
  {
    size_t local_matched = 0;
    uint8_t local_tiers[kBlocks];
    CHECK(kvc_node_match(node, &matched, tiers, &o, node_keys, kBlocks, &err) == KVC_OK);
    CHECK(kvc_match(ns, &local_matched, local_tiers, local_keys, kBlocks, &err) == KVC_OK);
    CHECK(matched == kBlocks && matched == local_matched);
    CHECK(memcmp(tiers, local_tiers, kBlocks) == 0);
  }
  for (i = 0; i < kBlocks; i++) {
    kvc_buf dst = KVC_HOST_BUF(back, kBytes), ldst = KVC_HOST_BUF(local, kBytes);
    CHECK(kvc_node_get(node, &len, &o, &node_keys[i], 0, NULL, &err) == KVC_OK && len == kBytes);
    memset(back, 0, sizeof back);
    CHECK(kvc_node_get(node, &len, &o, &node_keys[i], 0, &dst, &err) == KVC_OK && len == kBytes);
    CHECK(kvc_load(ns, &local_keys[i], 0, &ldst, &err) == KVC_OK);
    CHECK(memcmp(back, blocks[i], kBytes) == 0 && memcmp(back, local, kBytes) == 0);
  }
  {
    kvc_buf small = KVC_HOST_BUF(back, 100);
    CHECK(kvc_node_get(node, &len, &o, &node_keys[0], 0, &small, &err) == KVC_ERR_LAYOUT && len == kBytes);
  }
  CHECK(kvc_node_delete(node, &o, &node_keys[1], &err) == KVC_OK);
  CHECK(kvc_delete(ns, &local_keys[1], &err) == KVC_OK);
  CHECK(kvc_node_delete(node, &o, &node_keys[1], &err) == KVC_ERR_NOT_FOUND);
  CHECK(kvc_delete(ns, &local_keys[1], &err) == KVC_ERR_NOT_FOUND);
  {
    kvc_buf dst = KVC_HOST_BUF(back, kBytes);
    CHECK(kvc_node_get(node, &len, &o, &node_keys[1], 0, &dst, &err) == KVC_ERR_NOT_FOUND);
    CHECK(strcmp(err.message, "not found") == 0);
  }
  CHECK(kvc_node_match(node, &matched, NULL, &o, node_keys, kBlocks, &err) == KVC_OK && matched == 1);
  {
    char *json = NULL;
    CHECK(kvc_node_stats_json(node, &json, &err) == KVC_OK && json && strstr(json, "\"stores\""));
    kvc_string_free(json);
  }
  /* Inputs the client refuses before sending anything. */
  {
    kvc_namespace_options salted = spec();
    const uint8_t salt[2] = {1, 2};
    salted.salt = salt;
    salted.salt_len = 2;
    CHECK(kvc_node_match(node, &matched, NULL, &salted, node_keys, 1, &err) == KVC_ERR_INVALID_ARGUMENT);
    kvc_namespace_options bad = spec();
    bad.dtype = "fp7";
    CHECK(kvc_node_match(node, &matched, NULL, &bad, node_keys, 1, &err) == KVC_ERR_LAYOUT);
    kvc_buf src = KVC_HOST_BUF(blocks[0], kBytes - 1);
    CHECK(kvc_node_put(node, &o, &node_keys[1], 0, &src, NULL, &err) == KVC_ERR_LAYOUT);
    CHECK(kvc_node_match(node, NULL, NULL, &o, node_keys, 1, &err) == KVC_ERR_INVALID_ARGUMENT);
  }
  CHECK(kvc_node_close(node) == KVC_OK);
  CHECK(kvc_node_match(node, &matched, NULL, &o, node_keys, 1, &err) == KVC_ERR_CLOSED);
  CHECK(kvc_node_close(node) == KVC_ERR_CLOSED);
  CHECK(kvc_node_close(NULL) == KVC_OK);

  /* A stopped node is unreachable, quickly. */
  {
    char stopped[64];
    double t;
    kvc_node_options no = KVC_NODE_OPTIONS_INIT;
    no.connect_timeout_ms = 500;
    snprintf(stopped, sizeof stopped, "%s", addr);
    CHECK(kvc_node_server_stop(server, 1000) == KVC_OK);
    t = now_s();
    node = NULL;
    CHECK(kvc_node_connect(&node, stopped, &no, &err) == KVC_ERR_UNAVAILABLE && node == NULL);
    CHECK(now_s() - t < 5.0);
    CHECK(strstr(err.message, stopped) != NULL);
  }
  CHECK(kvc_node_server_stop(NULL, 0) == KVC_OK);
  kvc_namespace_close(ns);
  kvc_cache_close(cache);
  if (failures) fprintf(stderr, "%d failure(s)\n", failures);
  return failures ? 1 : 0;
}
