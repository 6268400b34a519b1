/* The C ABI, exercised from C99: the happy paths and every bad input of the
 * foundation issue. Each failing check prints its line and the call's error. */
#define _XOPEN_SOURCE 700 /* mkstemp, close, unlink */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvc.h"

static int failures = 0;
static int checks = 0;

#define CHECK(cond)                                                        \
  do {                                                                     \
    ++checks;                                                              \
    if (!(cond)) {                                                         \
      ++failures;                                                          \
      fprintf(stderr, "%s:%d: CHECK failed: %s (last error: %s)\n", __FILE__, \
              __LINE__, #cond, kvc_error_last());                          \
    }                                                                      \
  } while (0)

#define CHECK_STATUS(call, want)                                             \
  do {                                                                       \
    int got_ = (call);                                                       \
    ++checks;                                                                \
    if (got_ != (want)) {                                                    \
      ++failures;                                                            \
      fprintf(stderr, "%s:%d: %s returned %s, want %s (%s)\n", __FILE__,     \
              __LINE__, #call, kvc_status_name(got_), kvc_status_name(want), \
              kvc_error_last());                                             \
    }                                                                        \
  } while (0)

enum { BT = 16 };

static kvc_namespace_options small_ns(void) {
  kvc_namespace_options o = KVC_NAMESPACE_OPTIONS_INIT;
  o.model = "test-model";
  o.revision = "r1";
  o.dtype = "fp16";
  o.layers = 2;
  o.kv_heads = 2;
  o.head_dim = 16;
  o.block_tokens = BT;
  o.shards = 1;
  return o;
}

static void fill(unsigned char *p, size_t n, unsigned seed) {
  size_t i;
  for (i = 0; i < n; ++i) p[i] = (unsigned char)((i * 31u + seed * 17u) & 0xff);
}

static void test_versions_and_strings(void) {
  CHECK(strcmp(kvc_version(), "0.1.0") == 0);
  CHECK(kvc_version_number() == KVC_VERSION_NUMBER);
  CHECK((kvc_features() & KVC_FEATURE_SHA256) != 0);
  CHECK(strcmp(kvc_status_name(KVC_ERR_NOT_FOUND), "KVC_ERR_NOT_FOUND") == 0);
  CHECK(strcmp(kvc_status_str(KVC_OK), "ok") == 0);
  CHECK(strcmp(kvc_status_str(12345), "unknown status") == 0);
  CHECK(strcmp(kvc_status_name(KVC_STATUS_MIN - 1), "KVC_ERR_UNKNOWN") == 0);
  CHECK(kvc_error_last() != NULL);
  CHECK(strlen(kvc_policy_names()) > 0);
  CHECK(strstr(kvc_policy_names(), kvc_policy_default()) != NULL);
}

static void test_open_errors(void) {
  kvc_cache *c = NULL;
  kvc_cache_options o = KVC_CACHE_OPTIONS_INIT;
  kvc_error err;
  CHECK_STATUS(kvc_cache_open(NULL, NULL, &err), KVC_ERR_INVALID_ARGUMENT);
  CHECK(err.code == KVC_ERR_INVALID_ARGUMENT && strstr(err.message, "out") != NULL);
  o.host_capacity_bytes = 1000; /* below the minimum */
  CHECK_STATUS(kvc_cache_open(&c, &o, &err), KVC_ERR_INVALID_ARGUMENT);
  CHECK(c == NULL);
  CHECK(strstr(err.message, "minimum") != NULL);
  o = (kvc_cache_options)KVC_CACHE_OPTIONS_INIT;
  o.host_policy = "no-such-policy";
  CHECK_STATUS(kvc_cache_open(&c, &o, &err), KVC_ERR_INVALID_ARGUMENT);
  CHECK(strstr(err.message, "lru") != NULL); /* lists the known names */
  o = (kvc_cache_options)KVC_CACHE_OPTIONS_INIT;
  o.struct_size = 0;
  CHECK_STATUS(kvc_cache_open(&c, &o, &err), KVC_ERR_INVALID_ARGUMENT);
  o.struct_size = sizeof(o) + 8; /* from a newer header */
  CHECK_STATUS(kvc_cache_open(&c, &o, &err), KVC_ERR_INVALID_ARGUMENT);
  CHECK(kvc_cache_close(NULL) == KVC_OK);
  CHECK(kvc_namespace_close(NULL) == KVC_OK);
  CHECK(kvc_store_abort(NULL) == KVC_OK);
}

static kvc_cache *open_cache(uint64_t bytes) {
  kvc_cache *c = NULL;
  kvc_cache_options o = KVC_CACHE_OPTIONS_INIT;
  o.host_capacity_bytes = bytes;
  o.prefault = 2;
  CHECK_STATUS(kvc_cache_open(&c, &o, NULL), KVC_OK);
  return c;
}

static void test_namespace_errors(kvc_cache *c) {
  kvc_namespace *ns = NULL;
  kvc_namespace_options o = small_ns();
  kvc_error err;
  o.model = NULL;
  CHECK_STATUS(kvc_namespace_open(&ns, c, &o, &err), KVC_ERR_INVALID_ARGUMENT);
  CHECK(strstr(err.message, "model") != NULL);
  o = small_ns();
  o.dtype = "fp13";
  CHECK_STATUS(kvc_namespace_open(&ns, c, &o, &err), KVC_ERR_LAYOUT);
  CHECK(strstr(err.message, "dtype") != NULL);
  o = small_ns();
  o.shards = 3; /* kv_heads 2 is not a multiple of 3 */
  CHECK_STATUS(kvc_namespace_open(&ns, c, &o, &err), KVC_ERR_LAYOUT);
  o = small_ns();
  o.layers = 0;
  CHECK_STATUS(kvc_namespace_open(&ns, c, &o, &err), KVC_ERR_LAYOUT);
  o = small_ns();
  o.hash = "md5";
  CHECK_STATUS(kvc_namespace_open(&ns, c, &o, &err), KVC_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(kvc_namespace_open(&ns, c, NULL, &err), KVC_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(kvc_namespace_open(&ns, NULL, &o, &err), KVC_ERR_INVALID_ARGUMENT);
  CHECK(ns == NULL);
}

static void test_store_match_load(kvc_cache *c) {
  kvc_namespace *ns = NULL;
  kvc_namespace_options o = small_ns();
  kvc_namespace_info info = KVC_NAMESPACE_INFO_INIT;
  uint32_t tokens[4 * BT + 5];
  kvc_key keys[8];
  size_t n = 0, matched = 99, i;
  uint8_t tiers[8];
  unsigned char *blk, *out;
  kvc_buf src, dst;
  kvc_error err;
  int32_t statuses[4];
  kvc_buf srcs[4];

  CHECK_STATUS(kvc_namespace_open(&ns, c, &o, &err), KVC_OK);
  CHECK_STATUS(kvc_namespace_info_get(ns, &info, &err), KVC_OK);
  CHECK(info.shard_bytes == 2u * 2 * 2 * 16 * BT * 2); /* K+V, layers, heads, dim, tokens, fp16 */
  CHECK(info.block_bytes == info.shard_bytes);
  CHECK(info.epoch >= 1);
  blk = malloc(info.shard_bytes);
  out = malloc(info.shard_bytes);
  for (i = 0; i < sizeof tokens / sizeof tokens[0]; ++i) tokens[i] = (uint32_t)(i * 7 + 1);

  /* Keys: 4 full blocks, the partial fifth has none. */
  CHECK_STATUS(kvc_keys_compute(ns, keys, 8, &n, tokens, sizeof tokens / sizeof tokens[0], &err), KVC_OK);
  CHECK(n == 4);
  CHECK_STATUS(kvc_keys_compute(ns, keys, 3, &n, tokens, sizeof tokens / sizeof tokens[0], &err),
               KVC_ERR_INVALID_ARGUMENT);
  /* Fewer tokens than a block: a clear error. */
  CHECK_STATUS(kvc_match_tokens(ns, &matched, NULL, NULL, 0, tokens, BT - 1, &err), KVC_ERR_INVALID_ARGUMENT);
  CHECK(strstr(err.message, "16") != NULL);

  /* Nothing stored: match 0, load misses. */
  CHECK_STATUS(kvc_match(ns, &matched, tiers, keys, 4, &err), KVC_OK);
  CHECK(matched == 0 && tiers[0] == KVC_TIER_NONE);
  fill(blk, info.shard_bytes, 1);
  src.data = blk; src.len = info.shard_bytes; src.mem = KVC_MEM_HOST; src.device = 0;
  dst.data = out; dst.len = info.shard_bytes; dst.mem = KVC_MEM_HOST; dst.device = 0;
  CHECK_STATUS(kvc_load(ns, &keys[0], 0, &dst, &err), KVC_ERR_NOT_FOUND);
  CHECK(err.code == KVC_ERR_NOT_FOUND);

  /* One-shot store, then EXISTS for a second store. */
  CHECK_STATUS(kvc_store(ns, &keys[0], 0, &src, NULL, &err), KVC_OK);
  CHECK_STATUS(kvc_store(ns, &keys[0], 0, &src, NULL, &err), KVC_ERR_EXISTS);
  memset(out, 0, info.shard_bytes);
  CHECK_STATUS(kvc_load(ns, &keys[0], 0, &dst, &err), KVC_OK);
  CHECK(memcmp(out, blk, info.shard_bytes) == 0);

  /* Wrong buffer sizes and NULLs: errors, and the block is unchanged. */
  src.len = info.shard_bytes - 1;
  CHECK_STATUS(kvc_store(ns, &keys[1], 0, &src, NULL, &err), KVC_ERR_LAYOUT);
  CHECK(strstr(err.message, "bytes") != NULL);
  src.len = 0;
  CHECK_STATUS(kvc_store(ns, &keys[1], 0, &src, NULL, &err), KVC_ERR_LAYOUT);
  src.len = (size_t)-1;
  CHECK_STATUS(kvc_store(ns, &keys[1], 0, &src, NULL, &err), KVC_ERR_LAYOUT);
  src.len = info.shard_bytes;
  src.data = NULL;
  CHECK_STATUS(kvc_store(ns, &keys[1], 0, &src, NULL, &err), KVC_ERR_INVALID_ARGUMENT);
  src.data = blk;
  src.mem = 7;
  CHECK_STATUS(kvc_store(ns, &keys[1], 0, &src, NULL, &err), KVC_ERR_INVALID_ARGUMENT);
  src.mem = KVC_MEM_HOST;
  CHECK_STATUS(kvc_store(ns, NULL, 0, &src, NULL, &err), KVC_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(kvc_store(ns, &keys[1], 5, &src, NULL, &err), KVC_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(kvc_store(ns, &keys[1], 0, NULL, NULL, &err), KVC_ERR_INVALID_ARGUMENT);
  dst.len = 3;
  CHECK_STATUS(kvc_load(ns, &keys[0], 0, &dst, &err), KVC_ERR_LAYOUT);
  dst.len = info.shard_bytes;
  CHECK_STATUS(kvc_load(ns, &keys[0], 0, &dst, &err), KVC_OK);
  CHECK(memcmp(out, blk, info.shard_bytes) == 0);

  /* Match: one block present. */
  CHECK_STATUS(kvc_match(ns, &matched, tiers, keys, 4, &err), KVC_OK);
  CHECK(matched == 1 && tiers[0] == KVC_TIER_HOST && tiers[1] == KVC_TIER_NONE);

  /* Batch store the chain, then match from tokens. */
  for (i = 0; i < 4; ++i) srcs[i] = src;
  CHECK_STATUS(kvc_store_batch(ns, statuses, keys, 4, 0, srcs, NULL, &err), KVC_OK);
  CHECK(statuses[0] == KVC_ERR_EXISTS && statuses[1] == KVC_OK && statuses[3] == KVC_OK);
  {
    kvc_key got[8];
    CHECK_STATUS(kvc_match_tokens(ns, &matched, NULL, got, 8, tokens, sizeof tokens / sizeof tokens[0], &err),
                 KVC_OK);
    CHECK(matched == 4);
    CHECK(memcmp(got, keys, sizeof(kvc_key) * 4) == 0);
  }
  {
    size_t offsets[3] = {0, 2, 4};
    size_t outb[2] = {9, 9};
    CHECK_STATUS(kvc_match_batch(ns, outb, keys, offsets, 2, &err), KVC_OK);
    /* the second list starts at keys[2], a block present */
    CHECK(outb[0] == 2 && outb[1] == 2);
  }

  /* Batch load: all four, then one bad buffer refuses the whole call. */
  {
    unsigned char *bufs = malloc(info.shard_bytes * 4);
    kvc_buf dsts[4];
    size_t loaded = 0;
    for (i = 0; i < 4; ++i) {
      dsts[i].data = bufs + i * info.shard_bytes;
      dsts[i].len = info.shard_bytes;
      dsts[i].mem = KVC_MEM_HOST;
      dsts[i].device = 0;
    }
    CHECK_STATUS(kvc_load_batch(ns, statuses, &loaded, keys, 4, 0, dsts, &err), KVC_OK);
    CHECK(loaded == 4);
    CHECK(memcmp(bufs + 3 * info.shard_bytes, blk, info.shard_bytes) == 0);
    dsts[2].len = 1;
    CHECK_STATUS(kvc_load_batch(ns, statuses, &loaded, keys, 4, 0, dsts, &err), KVC_ERR_LAYOUT);
    CHECK(strstr(err.message, "block 2") != NULL);
    free(bufs);
  }

  /* Views: zero-copy, released once. */
  {
    kvc_view v, copy;
    CHECK_STATUS(kvc_view_acquire(ns, &v, &keys[1], 0, 0, &err), KVC_OK);
    CHECK(v.len == info.shard_bytes && v.id != 0);
    CHECK(memcmp(v.data, blk, v.len) == 0);
    copy = v;
    /* Deleting a viewed block hides it at once, but the view's bytes stay. */
    CHECK_STATUS(kvc_delete(ns, &keys[1], &err), KVC_OK);
    CHECK_STATUS(kvc_load(ns, &keys[1], 0, &dst, &err), KVC_ERR_NOT_FOUND);
    CHECK(memcmp(v.data, blk, v.len) == 0);
    CHECK_STATUS(kvc_view_release(ns, &v, &err), KVC_OK);
    CHECK(v.id == 0 && v.data == NULL);
    CHECK_STATUS(kvc_view_release(ns, &v, &err), KVC_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(kvc_view_release(ns, &copy, &err), KVC_ERR_INVALID_ARGUMENT); /* double release */
    CHECK(strstr(err.message, "released") != NULL);
    CHECK_STATUS(kvc_view_acquire(ns, &v, &keys[1], 0, 0, &err), KVC_ERR_NOT_FOUND);
    CHECK_STATUS(kvc_delete(ns, &keys[1], &err), KVC_ERR_NOT_FOUND);
  }

  /* Match stops at the deleted block. */
  CHECK_STATUS(kvc_match(ns, &matched, NULL, keys, 4, &err), KVC_OK);
  CHECK(matched == 1);

  /* Two-phase store: PENDING for a second writer, abort, then commit. */
  {
    kvc_reservation *r1 = NULL, *r2 = NULL;
    kvc_buf b;
    CHECK_STATUS(kvc_store_begin(ns, &r1, &keys[1], 0, NULL, &err), KVC_OK);
    CHECK_STATUS(kvc_store_begin(ns, &r2, &keys[1], 0, NULL, &err), KVC_ERR_PENDING);
    CHECK(r2 == NULL);
    CHECK_STATUS(kvc_load(ns, &keys[1], 0, &dst, &err), KVC_ERR_NOT_FOUND); /* not visible yet */
    CHECK_STATUS(kvc_store_wait(ns, &keys[1], 0, 10, &err), KVC_ERR_TIMEOUT);
    CHECK_STATUS(kvc_store_abort(r1), KVC_OK);
    CHECK_STATUS(kvc_store_wait(ns, &keys[1], 0, 10, &err), KVC_ERR_NOT_FOUND);
    CHECK_STATUS(kvc_store_begin(ns, &r1, &keys[1], 0, NULL, &err), KVC_OK);
    CHECK_STATUS(kvc_reservation_buffer(r1, &b, &err), KVC_OK);
    CHECK(b.len == info.shard_bytes && b.data != NULL);
    src.len = 5;
    CHECK_STATUS(kvc_reservation_write(r1, &src, &err), KVC_ERR_LAYOUT);
    src.len = info.shard_bytes;
    fill(blk, info.shard_bytes, 2);
    CHECK_STATUS(kvc_reservation_write(r1, &src, &err), KVC_OK);
    CHECK_STATUS(kvc_store_commit(r1, &err), KVC_OK);
    CHECK_STATUS(kvc_store_wait(ns, &keys[1], 0, 10, &err), KVC_OK);
    CHECK_STATUS(kvc_load(ns, &keys[1], 0, &dst, &err), KVC_OK);
    CHECK(memcmp(out, blk, info.shard_bytes) == 0);
  }

  /* Revision bump: everything stored so far is invisible at once. */
  {
    uint64_t epoch = 0;
    kvc_stats st = KVC_STATS_INIT;
    CHECK_STATUS(kvc_namespace_bump_revision(ns, &epoch, &err), KVC_OK);
    CHECK(epoch == info.epoch + 1);
    CHECK_STATUS(kvc_match(ns, &matched, NULL, keys, 4, &err), KVC_OK);
    CHECK(matched == 0);
    CHECK_STATUS(kvc_load(ns, &keys[0], 0, &dst, &err), KVC_ERR_NOT_FOUND);
    CHECK_STATUS(kvc_cache_stats(c, &st, &err), KVC_OK);
    CHECK(st.misses_by_reason[KVC_MISS_STALE] >= 1);
    CHECK(st.stores >= 5);
    /* the same keys can be stored again under the new epoch */
    CHECK_STATUS(kvc_store(ns, &keys[0], 0, &src, NULL, &err), KVC_OK);
    CHECK_STATUS(kvc_match(ns, &matched, NULL, keys, 4, &err), KVC_OK);
    CHECK(matched == 1);
  }

  /* Stats as JSON. */
  {
    char *json = NULL;
    CHECK_STATUS(kvc_cache_stats_json(c, &json, &err), KVC_OK);
    CHECK(json != NULL && strstr(json, "\"misses_by_reason\"") != NULL);
    kvc_string_free(json);
  }

  /* Use after close: KVC_ERR_CLOSED, never a crash. */
  CHECK_STATUS(kvc_namespace_close(ns), KVC_OK);
  CHECK_STATUS(kvc_namespace_close(ns), KVC_ERR_CLOSED);
  CHECK_STATUS(kvc_load(ns, &keys[0], 0, &dst, &err), KVC_ERR_CLOSED);
  CHECK_STATUS(kvc_match(ns, &matched, NULL, keys, 1, &err), KVC_ERR_CLOSED);
  CHECK(strstr(err.message, "closed") != NULL);
  free(blk);
  free(out);
}

static void test_closed_cache(void) {
  kvc_cache *c = open_cache(1 << 20);
  kvc_namespace *ns = NULL;
  kvc_namespace_options o = small_ns();
  kvc_stats st = KVC_STATS_INIT;
  kvc_key k;
  kvc_error err;
  memset(&k, 1, sizeof k);
  CHECK_STATUS(kvc_namespace_open(&ns, c, &o, &err), KVC_OK);
  CHECK_STATUS(kvc_cache_close(c), KVC_OK);
  CHECK_STATUS(kvc_cache_close(c), KVC_ERR_CLOSED);
  CHECK_STATUS(kvc_cache_stats(c, &st, &err), KVC_ERR_CLOSED);
  CHECK_STATUS(kvc_delete(ns, &k, &err), KVC_ERR_CLOSED);
  CHECK_STATUS(kvc_namespace_open(&ns, c, &o, &err), KVC_ERR_CLOSED);
}

static void test_eviction_keeps_capacity(void) {
  /* A 1 MiB cache takes many 8 KiB blocks: old ones are evicted, stores
   * keep succeeding and used bytes never pass the capacity. */
  kvc_cache *c = open_cache(1 << 20);
  kvc_namespace *ns = NULL;
  kvc_namespace_options o = small_ns();
  kvc_stats st = KVC_STATS_INIT;
  kvc_namespace_info info = KVC_NAMESPACE_INFO_INIT;
  unsigned char *blk;
  kvc_buf src;
  kvc_key k;
  unsigned i;
  kvc_error err;
  CHECK_STATUS(kvc_namespace_open(&ns, c, &o, &err), KVC_OK);
  CHECK_STATUS(kvc_namespace_info_get(ns, &info, &err), KVC_OK);
  blk = malloc(info.shard_bytes);
  fill(blk, info.shard_bytes, 3);
  src.data = blk; src.len = info.shard_bytes; src.mem = KVC_MEM_HOST; src.device = 0;
  for (i = 0; i < 1000; ++i) {
    memset(&k, 0, sizeof k);
    memcpy(k.bytes, &i, sizeof i);
    k.bytes[15] = 0x5a;
    CHECK_STATUS(kvc_store(ns, &k, 0, &src, NULL, &err), KVC_OK);
  }
  CHECK_STATUS(kvc_cache_stats(c, &st, &err), KVC_OK);
  CHECK(st.evictions > 0);
  CHECK(st.used_bytes <= st.capacity_bytes);
  CHECK(st.blocks * info.shard_bytes <= st.capacity_bytes);
  CHECK(st.stores == 1000);
  free(blk);
  CHECK_STATUS(kvc_cache_close(c), KVC_OK);
}


/* Tenants: credentials, isolation by salt, hard quotas. */
static void test_tenants(void) {
  char path[] = "/tmp/kvc-capi-tenants-XXXXXX";
  char file[128];
  char *cred_a = NULL, *cred_b = NULL, *cred_s = NULL, *json = NULL;
  kvc_tenant_options t = KVC_TENANT_OPTIONS_INIT;
  kvc_cache_options co = KVC_CACHE_OPTIONS_INIT;
  kvc_namespace_options no = small_ns();
  kvc_cache *c = NULL;
  kvc_namespace *a = NULL, *a2 = NULL, *b = NULL, *anon = NULL;
  kvc_namespace_info info = KVC_NAMESPACE_INFO_INIT;
  kvc_error err;
  uint32_t tokens[BT * 8];
  kvc_key ka[8], kb[8];
  size_t n = 0, matched = 0, i, hits_a = 0, hits_cross = 0;
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  close(fd);
  unlink(path);
  snprintf(file, sizeof file, "%s", path);

  t.name = "alpha";
  t.host_quota_bytes = 64 * 8192; /* 64 blocks */
  CHECK_STATUS(kvc_tenant_create(&cred_a, file, &t, &err), KVC_OK);
  CHECK(cred_a != NULL && strlen(cred_a) > 16);
  CHECK_STATUS(kvc_tenant_create(&cred_b, file, &t, &err), KVC_ERR_EXISTS);
  t.name = "beta";
  CHECK_STATUS(kvc_tenant_create(&cred_b, file, &t, &err), KVC_OK);
  t.name = "bad name!";
  CHECK_STATUS(kvc_tenant_create(&cred_s, file, &t, &err), KVC_ERR_INVALID_ARGUMENT);
  t.name = "gamma";
  t.isolation = "sideways";
  CHECK_STATUS(kvc_tenant_create(&cred_s, file, &t, &err), KVC_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(kvc_tenant_list_json(&json, file, &err), KVC_OK);
  CHECK(json != NULL && strstr(json, "\"alpha\"") && strstr(json, "\"beta\"") && !strstr(json, "salt") &&
        !strstr(json, cred_a));
  kvc_string_free(json);
  CHECK_STATUS(kvc_tenant_set_quota(file, "nobody", 1, -1, -1, &err), KVC_ERR_NOT_FOUND);

  co.host_capacity_bytes = 4 << 20; /* 512 blocks of 8 KiB */
  co.prefault = 2;
  co.tenants_path = file;
  CHECK_STATUS(kvc_cache_open(&c, &co, &err), KVC_OK);
  /* No tenant, wrong tenant, wrong credential: refused. */
  CHECK_STATUS(kvc_namespace_open(&anon, c, &no, &err), KVC_ERR_PERMISSION);
  no.tenant = "alpha";
  no.credential = "kvc_wrong";
  CHECK_STATUS(kvc_namespace_open(&a, c, &no, &err), KVC_ERR_PERMISSION);
  no.tenant = "nobody";
  no.credential = cred_a;
  CHECK_STATUS(kvc_namespace_open(&a, c, &no, &err), KVC_ERR_PERMISSION);
  /* A caller-supplied salt is refused for an isolated tenant. */
  no.tenant = "alpha";
  no.salt = (const uint8_t *)"x";
  no.salt_len = 1;
  CHECK_STATUS(kvc_namespace_open(&a, c, &no, &err), KVC_ERR_INVALID_ARGUMENT);
  no.salt = NULL;
  no.salt_len = 0;
  CHECK_STATUS(kvc_namespace_open(&a, c, &no, &err), KVC_OK);
  CHECK_STATUS(kvc_namespace_open(&a2, c, &no, &err), KVC_OK);
  no.tenant = "beta";
  no.credential = cred_b;
  CHECK_STATUS(kvc_namespace_open(&b, c, &no, &err), KVC_OK);
  CHECK_STATUS(kvc_namespace_info_get(a, &info, &err), KVC_OK);

  /* Equal prompts, unrelated keys. */
  for (i = 0; i < sizeof tokens / sizeof tokens[0]; ++i) tokens[i] = (uint32_t)(i * 13 + 5);
  CHECK_STATUS(kvc_keys_compute(a, ka, 8, &n, tokens, BT * 8, &err), KVC_OK);
  CHECK_STATUS(kvc_keys_compute(b, kb, 8, &n, tokens, BT * 8, &err), KVC_OK);
  CHECK(memcmp(ka, kb, sizeof ka) != 0);
  {
    unsigned char *blk = malloc(info.shard_bytes);
    kvc_buf src;
    kvc_buf srcs[8];
    unsigned p;
    fill(blk, info.shard_bytes, 9);
    src.data = blk; src.len = info.shard_bytes; src.mem = KVC_MEM_HOST; src.device = 0;
    for (i = 0; i < 8; ++i) srcs[i] = src;
    CHECK_STATUS(kvc_store_batch(a, NULL, ka, 8, 0, srcs, NULL, &err), KVC_OK);
    /* 10^5 lookups of alpha's prompts by beta: 0 hits; alpha itself hits. */
    for (p = 0; p < 100000; ++p) {
      CHECK_STATUS(kvc_match_tokens(b, &matched, NULL, NULL, 0, tokens, BT * 8, &err), KVC_OK);
      hits_cross += matched;
      if (p % 1000 == 0) {
        CHECK_STATUS(kvc_match_tokens(a2, &matched, NULL, NULL, 0, tokens, BT * 8, &err), KVC_OK);
        hits_a += matched;
      }
    }
    CHECK(hits_cross == 0);
    CHECK(hits_a == 100 * 8);

    /* Quota: alpha floods the cache with 300 blocks but keeps within 64;
     * beta's 100 blocks all stay. */
    for (p = 0; p < 100; ++p) {
      kvc_key k;
      memset(&k, 0, sizeof k);
      memcpy(k.bytes, &p, sizeof p);
      k.bytes[8] = 0xbb;
      CHECK_STATUS(kvc_store(b, &k, 0, &src, NULL, &err), KVC_OK);
    }
    for (p = 0; p < 300; ++p) {
      kvc_key k;
      memset(&k, 0, sizeof k);
      memcpy(k.bytes, &p, sizeof p);
      k.bytes[8] = 0xaa;
      CHECK_STATUS(kvc_store(a, &k, 0, &src, NULL, &err), KVC_OK);
    }
    {
      size_t beta_present = 0;
      for (p = 0; p < 100; ++p) {
        kvc_key k;
        memset(&k, 0, sizeof k);
        memcpy(k.bytes, &p, sizeof p);
        k.bytes[8] = 0xbb;
        CHECK_STATUS(kvc_match(b, &matched, NULL, &k, 1, &err), KVC_OK);
        beta_present += matched;
      }
      CHECK(beta_present == 100);
    }
    CHECK_STATUS(kvc_cache_stats_json(c, &json, &err), KVC_OK);
    CHECK(json != NULL && strstr(json, "\"host_bytes\":524288") != NULL); /* alpha at exactly its quota */
    kvc_string_free(json);
    free(blk);
  }
  CHECK_STATUS(kvc_cache_close(c), KVC_OK);
  CHECK_STATUS(kvc_tenant_delete(file, "beta", &err), KVC_OK);
  CHECK_STATUS(kvc_tenant_delete(file, "beta", &err), KVC_ERR_NOT_FOUND);
  kvc_string_free(cred_a);
  kvc_string_free(cred_b);
  unlink(file);
  snprintf(file, sizeof file, "%s.lock", path);
  unlink(file);
}

/* kvc_hash_keys against the spec's worked example (tests/vectors), and the
 * option checks the CLI cannot reach. */
static void test_hash_keys(void) {
  static const uint32_t toks[40] = {
      81282, 1186, 115938, 76570, 49267, 109828, 106944, 36795, 13489, 92194,
      117461, 32015, 103698, 122709, 54059, 91712, 89405, 107755, 40360, 11943,
      99256, 40349, 83323, 2292, 121142, 121185, 33195, 93244, 84099, 79920,
      108305, 20755, 77801, 45497, 110001, 21126, 78772, 65123, 37984, 60502};
  kvc_namespace_options o = KVC_NAMESPACE_OPTIONS_INIT;
  kvc_key seed, keys[4], parsed;
  char hex[33];
  size_t n = 99;
  kvc_error err;
  o.hash = "sha256";
  o.model = "meta-llama/Llama-3.1-8B-Instruct";
  o.revision = "0e9e39f249a16976918f6564b8830bc894c89659";
  o.adapter = "";
  o.dtype = "fp16";
  o.layers = 32;
  o.kv_heads = 8;
  o.head_dim = 128;
  o.block_tokens = 16;
  o.shards = 1;
  CHECK_STATUS(kvc_hash_keys(&seed, keys, 4, &n, &o, toks, 40, &err), KVC_OK);
  CHECK(n == 2);
  kvc_key_to_hex(&seed, hex);
  CHECK(strcmp(hex, "29bd1a26d1efa6881452c40ff8be3273") == 0);
  kvc_key_to_hex(&keys[0], hex);
  CHECK(strcmp(hex, "93e47c6bfe4c84ee2dfac17c37e30458") == 0);
  kvc_key_to_hex(&keys[1], hex);
  CHECK(strcmp(hex, "977c18b3ae0594b2a6478c461b911e5f") == 0);
  CHECK_STATUS(kvc_key_from_hex(&parsed, "977C18B3AE0594B2A6478C461B911E5F", &err), KVC_OK);
  CHECK(memcmp(&parsed, &keys[1], sizeof parsed) == 0);
  CHECK_STATUS(kvc_key_from_hex(&parsed, "977c18", &err), KVC_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(kvc_key_from_hex(&parsed, "zz7c18b3ae0594b2a6478c461b911e5f", &err), KVC_ERR_INVALID_ARGUMENT);
  /* Fewer tokens than a block: the seed and no key. */
  CHECK_STATUS(kvc_hash_keys(&seed, NULL, 0, &n, &o, toks, 5, &err), KVC_OK);
  CHECK(n == 0);
  /* A NULL salt with a length, bad struct sizes. */
  o.salt_len = 4;
  CHECK_STATUS(kvc_hash_keys(&seed, keys, 4, &n, &o, toks, 40, &err), KVC_ERR_INVALID_ARGUMENT);
  CHECK(strstr(err.message, "salt") != NULL);
  o.salt_len = 0;
  o.struct_size = 2;
  CHECK_STATUS(kvc_hash_keys(&seed, keys, 4, &n, &o, toks, 40, &err), KVC_ERR_INVALID_ARGUMENT);
  o.struct_size = sizeof o + 16;
  CHECK_STATUS(kvc_hash_keys(&seed, keys, 4, &n, &o, toks, 40, &err), KVC_ERR_INVALID_ARGUMENT);
  o.struct_size = sizeof o;
  CHECK_STATUS(kvc_hash_keys(&seed, keys, 1, &n, &o, toks, 40, &err), KVC_ERR_INVALID_ARGUMENT);
}

/* A reservation must be written before it is committed; its zero-copy
 * buffer starts zeroed, never holding an earlier block's bytes. */
static void test_reservation_hygiene(void) {
  kvc_cache *c = open_cache(64 * 1024);
  kvc_namespace *ns = NULL;
  kvc_namespace_options o = small_ns();
  kvc_namespace_info info = KVC_NAMESPACE_INFO_INIT;
  kvc_reservation *r = NULL;
  kvc_buf b, src;
  kvc_key k;
  unsigned char *blk;
  size_t i, nonzero = 0;
  unsigned p;
  kvc_error err;
  CHECK_STATUS(kvc_namespace_open(&ns, c, &o, &err), KVC_OK);
  CHECK_STATUS(kvc_namespace_info_get(ns, &info, &err), KVC_OK);
  blk = malloc(info.shard_bytes);
  memset(blk, 0xab, info.shard_bytes);
  src.data = blk; src.len = info.shard_bytes; src.mem = KVC_MEM_HOST; src.device = 0;
  for (p = 0; p < 40; ++p) { /* fill and churn the arena with 0xab bytes */
    memset(&k, 0, sizeof k);
    memcpy(k.bytes, &p, sizeof p);
    CHECK_STATUS(kvc_store(ns, &k, 0, &src, NULL, &err), KVC_OK);
  }
  memset(&k, 0x77, sizeof k);
  CHECK_STATUS(kvc_store_begin(ns, &r, &k, 0, NULL, &err), KVC_OK);
  CHECK_STATUS(kvc_store_commit(r, &err), KVC_ERR_INVALID_ARGUMENT);
  CHECK(strstr(err.message, "written") != NULL);
  CHECK_STATUS(kvc_load(ns, &k, 0, &src, &err), KVC_ERR_NOT_FOUND);
  CHECK_STATUS(kvc_store_begin(ns, &r, &k, 0, NULL, &err), KVC_OK);
  CHECK_STATUS(kvc_reservation_buffer(r, &b, &err), KVC_OK);
  for (i = 0; i < b.len; ++i) nonzero += ((unsigned char *)b.data)[i] != 0;
  CHECK(nonzero == 0);
  CHECK_STATUS(kvc_store_commit(r, &err), KVC_OK);
  free(blk);
  CHECK_STATUS(kvc_cache_close(c), KVC_OK);
}

int main(void) {
  kvc_cache *c;
  test_versions_and_strings();
  test_open_errors();
  c = open_cache(8 << 20);
  test_namespace_errors(c);
  test_store_match_load(c);
  CHECK_STATUS(kvc_cache_close(c), KVC_OK);
  test_closed_cache();
  test_eviction_keeps_capacity();
  test_tenants();
  test_hash_keys();
  test_reservation_hygiene();
  printf("%d passed, %d failed\n", checks - failures, failures);
  return failures == 0 ? 0 : 1;
}
