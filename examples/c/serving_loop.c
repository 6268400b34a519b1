/*
 * serving_loop.c -- kvc in an inference engine's serving loop, in C.
 *
 * For each request: match the prompt against the cache, load the cached
 * prefix into the engine's KV buffer, "compute" the KV of the rest (a
 * deterministic stand-in for prefill), and store the new blocks. Three
 * requests share a system prompt; the second hits its blocks, the third (a
 * repeat of the first) hits every full block. Exits 1 if it does not.
 *
 * Build against an installed kvc:
 *   cmake -S examples/c -B build-example -DCMAKE_PREFIX_PATH=<prefix>   (find_package)
 *   make -C examples/c OUT=<dir>    (pkg-config; set PKG_CONFIG_PATH=<prefix>/lib/pkgconfig)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvc.h"

enum { BLOCK_TOKENS = 16, SYSTEM_TOKENS = 64, MAX_TOKENS = 256 };

/* Fails the program with the call's own error detail. */
static void die(const char *what, const kvc_error *err) {
  fprintf(stderr, "serving_loop: %s: %s (%s)\n", what, err->message, kvc_status_name(err->code));
  exit(1);
}

/* The engine's prefill, standing in: the KV bytes of a block are a function
 * of its key, that is of the whole token prefix the block ends. */
static void compute_block(unsigned char *out, size_t n, const kvc_key *key) {
  uint64_t s = 1469598103934665603ull;
  size_t i;
  for (i = 0; i < KVC_KEY_BYTES; ++i) s = (s ^ key->bytes[i]) * 1099511628211ull;
  for (i = 0; i < n; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    out[i] = (unsigned char)(s >> 56);
  }
}

/* Serves one request; returns the number of blocks found in the cache. */
static size_t serve(kvc_namespace *ns, size_t shard_bytes, const uint32_t *tokens, size_t n_tokens,
                    int request) {
  const size_t n_blocks = n_tokens / BLOCK_TOKENS;
  kvc_key keys[MAX_TOKENS / BLOCK_TOKENS];
  kvc_buf bufs[MAX_TOKENS / BLOCK_TOKENS];
  unsigned char *kv = malloc(n_blocks * shard_bytes); /* the engine's KV for this request */
  unsigned char *expect = malloc(shard_bytes);
  size_t hit = 0, loaded = 0, i;
  kvc_error err;

  if (kv == NULL || expect == NULL) exit(1);
  /* 1. How much of the prompt is cached? match_tokens also returns the keys. */
  if (kvc_match_tokens(ns, &hit, NULL, keys, n_blocks, tokens, n_tokens, &err) != KVC_OK)
    die("kvc_match_tokens", &err);
  for (i = 0; i < n_blocks; ++i) {
    bufs[i].data = kv + i * shard_bytes;
    bufs[i].len = shard_bytes;
    bufs[i].mem = KVC_MEM_HOST;
    bufs[i].device = 0;
  }
  /* 2. Load the cached prefix (a block evicted since the match is a miss:
   *    loaded < hit, and the engine computes it instead). */
  if (hit > 0 && kvc_load_batch(ns, NULL, &loaded, keys, hit, 0, bufs, &err) != KVC_OK)
    die("kvc_load_batch", &err);
  for (i = 0; i < loaded; ++i) {
    compute_block(expect, shard_bytes, &keys[i]);
    if (memcmp(expect, bufs[i].data, shard_bytes) != 0) {
      fprintf(stderr, "serving_loop: block %zu loaded from the cache differs\n", i);
      exit(1);
    }
  }
  /* 3. Compute the rest (the trailing partial block is computed but has no key). */
  for (i = loaded; i < n_blocks; ++i) compute_block(bufs[i].data, shard_bytes, &keys[i]);
  /* 4. Store the new blocks; blocks another request stored meanwhile count as done. */
  if (n_blocks > loaded &&
      kvc_store_batch(ns, NULL, keys + loaded, n_blocks - loaded, 0, bufs + loaded, NULL, &err) != KVC_OK)
    die("kvc_store_batch", &err);
  printf("request %d: %3zu tokens, %zu full blocks: %zu from the cache, %zu computed and stored\n",
         request, n_tokens, n_blocks, loaded, n_blocks - loaded);
  free(kv);
  free(expect);
  return loaded;
}

int main(void) {
  kvc_cache_options copts = KVC_CACHE_OPTIONS_INIT;
  kvc_namespace_options nopts = KVC_NAMESPACE_OPTIONS_INIT;
  kvc_namespace_info info = KVC_NAMESPACE_INFO_INIT;
  kvc_cache *cache = NULL;
  kvc_namespace *ns = NULL;
  kvc_error err;
  uint32_t a[MAX_TOKENS], b[MAX_TOKENS];
  size_t i, n_a = SYSTEM_TOKENS + 45, n_b = SYSTEM_TOKENS + 37, hits[3];
  int ok;

  copts.host_capacity_bytes = 64u << 20;
  if (kvc_cache_open(&cache, &copts, &err) != KVC_OK) die("kvc_cache_open", &err);
  nopts.model = "example/llama-tiny";
  nopts.revision = "v1";
  nopts.dtype = "fp16";
  nopts.layers = 4;
  nopts.kv_heads = 4;
  nopts.head_dim = 64;
  nopts.block_tokens = BLOCK_TOKENS;
  if (kvc_namespace_open(&ns, cache, &nopts, &err) != KVC_OK) die("kvc_namespace_open", &err);
  if (kvc_namespace_info_get(ns, &info, &err) != KVC_OK) die("kvc_namespace_info_get", &err);
  printf("kvc %s: namespace of %llu-byte blocks, %u tokens each\n", kvc_version(),
         (unsigned long long)info.shard_bytes, info.block_tokens);

  /* Two prompts: a shared system prompt, then different user turns. */
  for (i = 0; i < SYSTEM_TOKENS; ++i) a[i] = b[i] = (uint32_t)(1000 + i * 13);
  for (i = SYSTEM_TOKENS; i < n_a; ++i) a[i] = (uint32_t)(50000 + i * 7);
  for (i = SYSTEM_TOKENS; i < n_b; ++i) b[i] = (uint32_t)(90000 + i * 3);

  hits[0] = serve(ns, info.shard_bytes, a, n_a, 1);
  hits[1] = serve(ns, info.shard_bytes, b, n_b, 2);
  hits[2] = serve(ns, info.shard_bytes, a, n_a, 3);

  ok = hits[0] == 0 && hits[1] == SYSTEM_TOKENS / BLOCK_TOKENS && hits[2] == n_a / BLOCK_TOKENS;
  printf("%s: the second request reused %zu blocks of the system prompt, the repeat %zu of %zu\n",
         ok ? "ok" : "FAILED", hits[1], hits[2], n_a / BLOCK_TOKENS);
  kvc_namespace_close(ns);
  kvc_cache_close(cache);
  return ok ? 0 : 1;
}
