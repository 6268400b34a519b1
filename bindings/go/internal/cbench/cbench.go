// Package cbench is the C baseline of the Go binding's load benchmark: the
// same cache, namespace and loads as BenchmarkLoad1MiB, driven by a loop
// written in C against kvc.h, so the two figures come from one process.
package cbench

// #cgo pkg-config: kvc
// #include <stdlib.h>
// #include <string.h>
// #include "kvc.h"
//
// typedef struct {
//   kvc_cache *cache;
//   kvc_namespace *ns;
//   kvc_key *keys;
//   unsigned char **dsts;
//   size_t n, shard_bytes;
//   kvc_error err;
// } bench;
//
// static void bench_free(bench *b) {
//   size_t i;
//   if (b->dsts) for (i = 0; i < b->n; ++i) free(b->dsts[i]);
//   free(b->dsts);
//   free(b->keys);
//   kvc_cache_close(b->cache);
//   free(b);
// }
//
// /* A cache with `n` blocks of a namespace whose shard is shard_bytes. */
// static int bench_open(bench **out, uint64_t capacity, uint32_t layers, uint32_t kv_heads,
//                       uint32_t head_dim, uint32_t block_tokens, size_t n, kvc_error *err) {
//   kvc_cache_options co = KVC_CACHE_OPTIONS_INIT;
//   kvc_namespace_options no = KVC_NAMESPACE_OPTIONS_INIT;
//   kvc_namespace_info info = KVC_NAMESPACE_INFO_INIT;
//   size_t i;
//   int rc;
//   bench *b = (bench *)calloc(1, sizeof *b);
//   *out = NULL;
//   if (!b) return KVC_ERR_NO_MEMORY;
//   co.host_capacity_bytes = capacity;
//   co.prefault = 1;
//   if ((rc = kvc_cache_open(&b->cache, &co, err)) != KVC_OK) { free(b); return rc; }
//   no.model = "bench"; no.revision = "r1"; no.dtype = "fp16";
//   no.layers = layers; no.kv_heads = kv_heads; no.head_dim = head_dim;
//   no.block_tokens = block_tokens; no.shards = 1;
//   if ((rc = kvc_namespace_open(&b->ns, b->cache, &no, err)) != KVC_OK ||
//       (rc = kvc_namespace_info_get(b->ns, &info, err)) != KVC_OK) { bench_free(b); return rc; }
//   b->n = n;
//   b->shard_bytes = info.shard_bytes;
//   b->keys = (kvc_key *)calloc(n, sizeof(kvc_key));
//   b->dsts = (unsigned char **)calloc(n, sizeof(unsigned char *));
//   if (!b->keys || !b->dsts) { bench_free(b); return KVC_ERR_NO_MEMORY; }
//   for (i = 0; i < n; ++i) {
//     kvc_buf src;
//     b->dsts[i] = (unsigned char *)malloc(b->shard_bytes);
//     if (!b->dsts[i]) { bench_free(b); return KVC_ERR_NO_MEMORY; }
//     memset(b->dsts[i], (int)(i & 0xff), b->shard_bytes);
//     memcpy(b->keys[i].bytes, &i, sizeof i);
//     b->keys[i].bytes[15] = 0xcb;
//     src.data = b->dsts[i]; src.len = b->shard_bytes; src.mem = KVC_MEM_HOST; src.device = 0;
//     if ((rc = kvc_store(b->ns, &b->keys[i], 0, &src, NULL, err)) != KVC_OK) { bench_free(b); return rc; }
//   }
//   *out = b;
//   return KVC_OK;
// }
//
// /* `iters` loads, block i % n into its own destination buffer. */
// static int bench_load(bench *b, size_t iters) {
//   size_t i;
//   for (i = 0; i < iters; ++i) {
//     size_t k = i % b->n;
//     kvc_buf dst;
//     int rc;
//     dst.data = b->dsts[k]; dst.len = b->shard_bytes; dst.mem = KVC_MEM_HOST; dst.device = 0;
//     if ((rc = kvc_load(b->ns, &b->keys[k], 0, &dst, &b->err)) != KVC_OK) return rc;
//   }
//   return KVC_OK;
// }
import "C"

import "fmt"

// Bench is a cache loaded with blocks for the C loop.
type Bench struct{ b *C.bench }

// Open creates a cache of `capacity` bytes holding n blocks of a namespace
// with the given layout (fp16, one shard).
func Open(capacity uint64, layers, kvHeads, headDim, blockTokens uint32, n int) (*Bench, error) {
	var b *C.bench
	var e C.kvc_error
	rc := C.bench_open(&b, C.uint64_t(capacity), C.uint32_t(layers), C.uint32_t(kvHeads),
		C.uint32_t(headDim), C.uint32_t(blockTokens), C.size_t(n), &e)
	if rc != C.KVC_OK {
		return nil, fmt.Errorf("cbench: %s (%d)", C.GoString(&e.message[0]), int(rc))
	}
	return &Bench{b}, nil
}

// ShardBytes is the size of one block shard.
func (b *Bench) ShardBytes() int { return int(b.b.shard_bytes) }

// Load runs iters loads in one C loop.
func (b *Bench) Load(iters int) error {
	if rc := C.bench_load(b.b, C.size_t(iters)); rc != C.KVC_OK {
		return fmt.Errorf("cbench: load: %s (%d)", C.GoString(&b.b.err.message[0]), int(rc))
	}
	return nil
}

// Close frees the cache and buffers.
func (b *Bench) Close() { C.bench_free(b.b) }
