/* The kvc_node_* C calls against an in-process node (kvc_node_server_start
 * on a free loopback port and a unix socket, no tenants), compared with the
 * same operations on an embedded cache: equal keys, byte-exact blocks, equal
 * statuses; batches through TCP and through the same-host path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* Batches (kvc_node_get_batch / kvc_node_put_batch) through `addr`: every
 * item's status, len and bytes as the per-item kvc_node_get / kvc_node_put
 * give them and as the embedded cache has them; bad arguments refused with
 * a clear message before anything is sent. `model` keeps each transport's
 * blocks apart. */
enum { kBatch = 6, kBatchBytes = 512 };

static kvc_key batch_key(int tag, int i) {
  kvc_key k;
  memset(&k, 0, sizeof k);
  k.bytes[0] = (uint8_t)tag;
  k.bytes[1] = (uint8_t)i;
  k.bytes[15] = 0x5a;
  return k;
}

static void fill(uint8_t *p, int tag, int i) {
  int j;
  for (j = 0; j < kBatchBytes; j++) p[j] = (uint8_t)(tag * 13 + i * 31 + j * 7);
}

static int node_has(kvc_node *node, const kvc_namespace_options *o, const kvc_key *k) {
  size_t len = 0;
  kvc_error err;
  return kvc_node_get(node, &len, o, k, 0, NULL, &err) == KVC_OK;
}

static void batch_scenario(const char *addr, int tag, const kvc_cache_options *co) {
  kvc_namespace_options o = spec();
  kvc_node *node = NULL;
  kvc_cache *cache = NULL;
  kvc_namespace *ns = NULL;
  kvc_node_item items[kBatch + 2];
  kvc_key keys[kBatch + 1];
  static uint8_t src[kBatch][kBatchBytes], dst[kBatch + 2][kBatchBytes], one[kBatchBytes], local[kBatchBytes];
  kvc_error err;
  size_t len = 0;
  int i;

  o.model = tag == 1 ? "capi-batch-tcp" : "capi-batch-unix";
  CHECK(kvc_node_connect(&node, addr, NULL, &err) == KVC_OK);
  if (node == NULL) return;
  CHECK(kvc_cache_open(&cache, co, &err) == KVC_OK);
  CHECK(kvc_namespace_open(&ns, cache, &o, &err) == KVC_OK);
  for (i = 0; i <= kBatch; i++) keys[i] = batch_key(tag, i);
  for (i = 0; i < kBatch; i++) fill(src[i], tag, i);

  /* An empty batch is a no-op. */
  CHECK(kvc_node_put_batch(node, &o, 0, NULL, 0, NULL, &err) == KVC_OK);
  CHECK(kvc_node_get_batch(node, &o, 0, NULL, 0, &err) == KVC_OK);

  /* Put blocks 0..3 as one batch (a parent chain), then 0 again with 4
   * and 5: 0 exists, the others are stored; the call itself is OK. */
  memset(items, 0, sizeof items);
  for (i = 0; i < 4; i++) {
    kvc_buf b = KVC_HOST_BUF(src[i], kBatchBytes);
    items[i].key = keys[i];
    items[i].buf = b;
    items[i].parent = i ? &keys[i - 1] : NULL;
    items[i].status = 12345;
  }
  CHECK(kvc_node_put_batch(node, &o, 0, items, 4, NULL, &err) == KVC_OK);
  for (i = 0; i < 4; i++) {
    kvc_buf b = KVC_HOST_BUF(src[i], kBatchBytes);
    kvc_store_options st = KVC_STORE_OPTIONS_INIT;
    st.parent = i ? &keys[i - 1] : NULL;
    CHECK(items[i].status == KVC_OK);
    CHECK(kvc_store(ns, &keys[i], 0, &b, &st, &err) == KVC_OK);
  }
  {
    kvc_node_item again[3];
    kvc_buf b0 = KVC_HOST_BUF(src[0], kBatchBytes), b4 = KVC_HOST_BUF(src[4], kBatchBytes),
            b5 = KVC_HOST_BUF(src[5], kBatchBytes);
    memset(again, 0, sizeof again);
    again[0].key = keys[0];
    again[0].buf = b0;
    again[1].key = keys[4];
    again[1].buf = b4;
    again[2].key = keys[5];
    again[2].buf = b5;
    CHECK(kvc_node_put_batch(node, &o, 0, again, 3, NULL, &err) == KVC_OK);
    CHECK(again[0].status == KVC_ERR_EXISTS && again[1].status == KVC_OK && again[2].status == KVC_OK);
    CHECK(again[0].len == 0 && again[1].len == 0); /* as the caller left them */
    /* The same answers one at a time, and from the embedded cache. */
    CHECK(kvc_node_put(node, &o, &keys[0], 0, &b0, NULL, &err) == KVC_ERR_EXISTS);
    CHECK(kvc_node_put(node, &o, &keys[4], 0, &b4, NULL, &err) == KVC_ERR_EXISTS);
    CHECK(kvc_store(ns, &keys[0], 0, &b0, NULL, &err) == KVC_ERR_EXISTS);
    CHECK(kvc_store(ns, &keys[4], 0, &b4, NULL, &err) == KVC_OK);
    CHECK(kvc_store(ns, &keys[5], 0, &b5, NULL, &err) == KVC_OK);
  }

  /* Get every block, one missing key, one too-small buffer and one size
   * query in one batch. */
  memset(items, 0, sizeof items);
  memset(dst, 0xEE, sizeof dst);
  for (i = 0; i <= kBatch; i++) {
    kvc_buf b = KVC_HOST_BUF(dst[i], kBatchBytes);
    items[i].key = keys[i];
    items[i].buf = b;
    items[i].len = 777;
  }
  {
    kvc_buf small = KVC_HOST_BUF(dst[kBatch + 1], 100), none = {NULL, 0, KVC_MEM_HOST, 0};
    items[kBatch + 1].key = keys[1];
    items[kBatch + 1].buf = small;
    items[2].buf = none; /* the size only */
  }
  CHECK(kvc_node_get_batch(node, &o, 0, items, kBatch + 2, &err) == KVC_OK);
  for (i = 0; i < kBatch + 2; i++) {
    const int k = i == kBatch + 1 ? 1 : i;
    kvc_buf b = KVC_HOST_BUF(one, i == kBatch + 1 ? 100 : kBatchBytes), lb = KVC_HOST_BUF(local, kBatchBytes);
    const int lrc = k < kBatch ? kvc_load(ns, &keys[k], 0, &lb, &err) : KVC_ERR_NOT_FOUND;
    const int rc = kvc_node_get(node, &len, &o, &keys[k], 0, i == 2 ? NULL : &b, &err);
    if (items[i].status != rc || items[i].len != len)
      fprintf(stderr, "item %d: batch %d/%zu, alone %d/%zu\n", i, items[i].status, items[i].len, rc, len);
    CHECK(items[i].status == rc && items[i].len == len);
    if (i == kBatch) {
      CHECK(rc == KVC_ERR_NOT_FOUND && lrc == KVC_ERR_NOT_FOUND && items[i].len == 0);
      CHECK(dst[i][0] == 0xEE && dst[i][kBatchBytes - 1] == 0xEE); /* left as it was */
    } else if (i == kBatch + 1) {
      CHECK(rc == KVC_ERR_LAYOUT && items[i].len == kBatchBytes);
    } else if (i == 2) {
      CHECK(rc == KVC_OK && items[i].len == kBatchBytes && dst[i][0] == 0xEE);
    } else {
      CHECK(rc == KVC_OK && lrc == KVC_OK);
      CHECK(memcmp(dst[i], src[i], kBatchBytes) == 0 && memcmp(dst[i], local, kBatchBytes) == 0);
      CHECK(memcmp(one, dst[i], kBatchBytes) == 0);
    }
  }

  /* Bad arguments: KVC_ERR_INVALID_ARGUMENT, a message naming the fault,
   * and nothing stored (keys[kBatch] stays absent). */
  {
    kvc_buf good = KVC_HOST_BUF(src[0], kBatchBytes), shortb = KVC_HOST_BUF(src[0], kBatchBytes - 1);
    kvc_node_item bad[2];
    memset(bad, 0, sizeof bad);
    bad[0].key = keys[kBatch];
    bad[0].buf = good;
    bad[1].key = batch_key(tag, 99);
    bad[1].buf = shortb;
    bad[0].len = 4242; /* a put writes only the status */
    CHECK(kvc_node_put_batch(node, &o, 0, bad, 2, NULL, &err) == KVC_ERR_INVALID_ARGUMENT);
    CHECK(bad[0].len == 4242);
    CHECK(strstr(err.message, "items[1].buf") != NULL && strstr(err.message, "shard_bytes") != NULL);
    CHECK(bad[0].status == KVC_ERR_INVALID_ARGUMENT && bad[1].status == KVC_ERR_INVALID_ARGUMENT);
    CHECK(!node_has(node, &o, &keys[kBatch]) && !node_has(node, &o, &bad[1].key));

    bad[1].buf = good;
    bad[1].buf.mem = KVC_MEM_CUDA_DEVICE;
    CHECK(kvc_node_put_batch(node, &o, 0, bad, 2, NULL, &err) == KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "items[1].buf") != NULL && strstr(err.message, "host memory") != NULL);
    CHECK(kvc_node_get_batch(node, &o, 0, bad, 2, &err) == KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "host memory") != NULL);
    CHECK(!node_has(node, &o, &keys[kBatch]));

    bad[1].buf = good;
    bad[1].buf.data = NULL;
    CHECK(kvc_node_get_batch(node, &o, 0, bad, 2, &err) == KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "items[1].buf.data is NULL") != NULL);
    CHECK(kvc_node_put_batch(node, &o, 0, bad, 2, NULL, &err) == KVC_ERR_INVALID_ARGUMENT);
    CHECK(!node_has(node, &o, &keys[kBatch]));

    CHECK(kvc_node_put_batch(node, &o, 0, NULL, 2, NULL, &err) == KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "items is NULL") != NULL);
    CHECK(kvc_node_get_batch(node, &o, 0, NULL, 2, &err) == KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "items is NULL") != NULL);

    bad[1].buf = good;
    bad[0].status = 12345;
    CHECK(kvc_node_put_batch(node, &o, 0, bad, KVC_NODE_MAX_BATCH + 1, NULL, &err) == KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "KVC_NODE_MAX_BATCH") != NULL && bad[0].status == 12345); /* not touched */
    CHECK(kvc_node_get_batch(node, &o, 0, bad, KVC_NODE_MAX_BATCH + 1, &err) == KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "KVC_NODE_MAX_BATCH") != NULL && bad[0].status == 12345);

    CHECK(kvc_node_put_batch(node, &o, 1, bad, 1, NULL, &err) == KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "shard 1") != NULL);
    CHECK(kvc_node_put_batch(node, NULL, 0, bad, 1, NULL, &err) == KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "ns is NULL") != NULL);
    CHECK(kvc_node_put_batch(NULL, &o, 0, bad, 1, NULL, &err) == KVC_ERR_INVALID_ARGUMENT);
    CHECK(!node_has(node, &o, &keys[kBatch]));
    /* The blocks stored before are all still there, whole. */
    for (i = 0; i < kBatch; i++) {
      kvc_buf b = KVC_HOST_BUF(one, kBatchBytes);
      CHECK(kvc_node_get(node, &len, &o, &keys[i], 0, &b, &err) == KVC_OK && memcmp(one, src[i], kBatchBytes) == 0);
    }
  }
  CHECK(kvc_node_close(node) == KVC_OK);
  {
    kvc_node_item it;
    memset(&it, 0, sizeof it);
    CHECK(kvc_node_get_batch(node, &o, 0, &it, 1, &err) == KVC_ERR_CLOSED && it.status == KVC_ERR_CLOSED);
  }
  kvc_namespace_close(ns);
  kvc_cache_close(cache);
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
    {
      kvc_node_item it;
      memset(&it, 0, sizeof it);
      CHECK(kvc_node_get_batch(NULL, &o, 0, &it, 1, &err) == KVC_ERR_UNSUPPORTED && it.status == KVC_ERR_UNSUPPORTED);
      CHECK(kvc_node_put_batch(NULL, &o, 0, &it, 1, NULL, &err) == KVC_ERR_UNSUPPORTED);
    }
    CHECK(kvc_node_close(NULL) == KVC_OK && kvc_node_server_stop(NULL, 0) == KVC_OK);
    if (failures) fprintf(stderr, "%d failure(s)\n", failures);
    return failures ? 1 : 0;
  }
  char dir[] = "/tmp/kvc-capi-test-XXXXXX", sock[256], unix_addr[300];
  if (mkdtemp(dir) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  snprintf(sock, sizeof sock, "%s/node.sock", dir);
  snprintf(unix_addr, sizeof unix_addr, "unix:%s", sock);
  so.unix_path = sock;
  CHECK(kvc_node_server_start(&server, &so, &err) == KVC_OK);
  if (server == NULL) return 1;
  const char *addr = kvc_node_server_address(server);
  CHECK(strncmp(addr, "127.0.0.1:", 10) == 0 && strcmp(addr, "127.0.0.1:0") != 0);

  batch_scenario(addr, 1, &co);
  batch_scenario(unix_addr, 2, &co);

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
    /* The node's own settings, not a request's: refused, not ignored. */
    kvc_namespace_options ttl = spec();
    ttl.default_ttl_ms = 1000;
    kvc_buf one = KVC_HOST_BUF(blocks[0], kBytes);
    CHECK(kvc_node_put(node, &ttl, &node_keys[1], 0, &one, NULL, &err) == KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "default_ttl_ms") != NULL);
    kvc_namespace_options through = spec();
    through.write_mode = KVC_WRITE_THROUGH;
    CHECK(kvc_node_put(node, &through, &node_keys[1], 0, &one, NULL, &err) == KVC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "write_mode") != NULL);
    CHECK(kvc_node_get(node, &len, &o, &node_keys[1], 0, NULL, &err) == KVC_ERR_NOT_FOUND);
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
  unlink(sock);
  rmdir(dir);
  kvc_namespace_close(ns);
  kvc_cache_close(cache);
  if (failures) fprintf(stderr, "%d failure(s)\n", failures);
  return failures ? 1 : 0;
}
