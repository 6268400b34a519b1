/* bench_load.c -- the C side of bench.py: the rate of kvc_load of 1 MiB
 * block shards into one host buffer (GB/s), and the time of one
 * kvc_match_tokens call, measured exactly as bench.py measures the Python
 * binding. Prints one JSON object.
 *
 * usage: kvc_py_bench_load [SECONDS [BLOCKS [MATCH_TOKENS]]]
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvc.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int fail(const char *what, const kvc_error *err) {
  fprintf(stderr, "kvc_py_bench_load: %s: %s (%s)\n", what, err->message,
          kvc_status_name(err->code));
  return 1;
}

int main(int argc, char **argv) {
  const double seconds = argc > 1 ? atof(argv[1]) : 1.0;
  const size_t n_blocks = argc > 2 ? (size_t)atol(argv[2]) : 64;
  const size_t match_tokens = argc > 3 ? (size_t)atol(argv[3]) : 16;
  kvc_cache_options copts = KVC_CACHE_OPTIONS_INIT;
  kvc_namespace_options nopts = KVC_NAMESPACE_OPTIONS_INIT;
  kvc_namespace_info info = KVC_NAMESPACE_INFO_INIT;
  kvc_cache *cache = NULL;
  kvc_namespace *ns = NULL;
  kvc_error err;
  kvc_key *keys;
  unsigned char *src, *dst;
  uint32_t *tokens;
  size_t i, loads = 0, matches = 0, matched = 0;
  double t0, load_s, match_s;

  /* 1 MiB block shards: fp16, 32 layers, K and V, 16 tokens, 8 heads of 64. */
  nopts.model = "kvc-py-bench";
  nopts.revision = "1";
  nopts.dtype = "fp16";
  nopts.layers = 32;
  nopts.kv_heads = 8;
  nopts.head_dim = 64;
  nopts.block_tokens = 16;
  copts.host_capacity_bytes = (uint64_t)(n_blocks + 16) << 20;
  if (kvc_cache_open(&cache, &copts, &err) != KVC_OK) return fail("kvc_cache_open", &err);
  if (kvc_namespace_open(&ns, cache, &nopts, &err) != KVC_OK) return fail("kvc_namespace_open", &err);
  if (kvc_namespace_info_get(ns, &info, &err) != KVC_OK) return fail("kvc_namespace_info_get", &err);

  keys = calloc(n_blocks, sizeof *keys);
  src = malloc(info.shard_bytes);
  dst = malloc(info.shard_bytes);
  tokens = malloc(sizeof *tokens * (match_tokens > 0 ? match_tokens : 1));
  if (!keys || !src || !dst || !tokens) return 1;
  memset(src, 0x5a, info.shard_bytes);
  memset(dst, 0, info.shard_bytes);
  for (i = 0; i < n_blocks; ++i) {
    kvc_buf b = KVC_HOST_BUF(src, info.shard_bytes);
    memcpy(keys[i].bytes, &i, sizeof i);
    keys[i].bytes[15] = 0xb1;
    if (kvc_store(ns, &keys[i], 0, &b, NULL, &err) != KVC_OK) return fail("kvc_store", &err);
  }

  t0 = now_s();
  do {
    kvc_buf d = KVC_HOST_BUF(dst, info.shard_bytes);
    if (kvc_load(ns, &keys[loads % n_blocks], 0, &d, &err) != KVC_OK) return fail("kvc_load", &err);
    ++loads;
    load_s = now_s() - t0;
  } while (load_s < seconds);

  for (i = 0; i < match_tokens; ++i) tokens[i] = (uint32_t)(i * 7 + 3);
  t0 = now_s();
  do {
    size_t k;
    for (k = 0; k < 256; ++k) {
      if (kvc_match_tokens(ns, &matched, NULL, NULL, 0, tokens, match_tokens, &err) != KVC_OK)
        return fail("kvc_match_tokens", &err);
    }
    matches += 256;
    match_s = now_s() - t0;
  } while (match_s < seconds / 4);

  printf("{\"block_bytes\": %llu, \"loads\": %zu, \"load_seconds\": %.6f, \"load_gbps\": %.4f, "
         "\"match_tokens\": %zu, \"matches\": %zu, \"match_ns\": %.1f}\n",
         (unsigned long long)info.shard_bytes, loads, load_s,
         (double)loads * (double)info.shard_bytes / load_s / 1e9, match_tokens, matches,
         match_s / (double)matches * 1e9);
  free(keys);
  free(src);
  free(dst);
  free(tokens);
  kvc_namespace_close(ns);
  kvc_cache_close(cache);
  return 0;
}
