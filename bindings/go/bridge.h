/* Helpers of the Go binding (package kvc), compiled into the package with
 * cgo. They exist for cgo's pointer rules: Go may pass a pointer to Go memory
 * (a []byte's first byte, a Key) as an argument, but not a Go struct holding
 * such a pointer, so the kvc_buf and option structs that carry them are built
 * here, on the C stack or heap, for the duration of one call. Each uses only
 * kvc.h. */
#ifndef KVC_GO_BRIDGE_H
#define KVC_GO_BRIDGE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvc.h"

static inline void kvcgo_cache_options_init(kvc_cache_options *o) {
  kvc_cache_options d = KVC_CACHE_OPTIONS_INIT;
  *o = d;
}

static inline void kvcgo_namespace_options_init(kvc_namespace_options *o) {
  kvc_namespace_options d = KVC_NAMESPACE_OPTIONS_INIT;
  *o = d;
}

static inline void kvcgo_namespace_info_init(kvc_namespace_info *o) {
  kvc_namespace_info d = KVC_NAMESPACE_INFO_INIT;
  *o = d;
}

static inline void kvcgo_stats_init(kvc_stats *o) {
  kvc_stats d = KVC_STATS_INIT;
  *o = d;
}

static inline void kvcgo_tenant_options_init(kvc_tenant_options *o) {
  kvc_tenant_options d = KVC_TENANT_OPTIONS_INIT;
  *o = d;
}

/* Store options from scalars; `parent` may point to Go memory. */
typedef struct {
  int has;
  uint64_t ttl_ms;
  uint32_t reservation_ms;
  uint32_t durable;
} kvcgo_store_args;

static inline kvc_store_options kvcgo_store_options(kvcgo_store_args a, const kvc_key *parent) {
  kvc_store_options o = KVC_STORE_OPTIONS_INIT;
  o.ttl_ms = a.ttl_ms;
  o.reservation_timeout_ms = a.reservation_ms;
  o.parent = parent;
  o.durable = a.durable;
  return o;
}

/* `n` host descriptors of `stride` bytes each, back to back from `data`;
 * NULL (and `err` filled) when out of memory. Free with free(). */
static inline kvc_buf *kvcgo_bufs(uint8_t *data, size_t stride, size_t n, kvc_error *err) {
  size_t i;
  kvc_buf *b = (kvc_buf *)malloc((n ? n : 1) * sizeof(kvc_buf));
  if (b == NULL) {
    err->code = KVC_ERR_NO_MEMORY;
    snprintf(err->message, sizeof err->message, "out of memory for %zu buffer descriptors", n);
    return NULL;
  }
  for (i = 0; i < n; ++i) {
    b[i].data = data + i * stride;
    b[i].len = stride;
    b[i].mem = KVC_MEM_HOST;
    b[i].device = 0;
  }
  return b;
}

static inline int kvcgo_store(kvc_namespace *ns, const kvc_key *key, uint32_t shard, void *data,
                              size_t len, kvcgo_store_args a, const kvc_key *parent,
                              kvc_error *err) {
  kvc_buf b = KVC_HOST_BUF(data, len);
  kvc_store_options o = kvcgo_store_options(a, parent);
  return kvc_store(ns, key, shard, &b, a.has ? &o : NULL, err);
}

static inline int kvcgo_store_batch(kvc_namespace *ns, int32_t *statuses, const kvc_key *keys,
                                    size_t n, uint32_t shard, uint8_t *data, size_t stride,
                                    kvcgo_store_args a, const kvc_key *parent, kvc_error *err) {
  int rc;
  kvc_store_options o = kvcgo_store_options(a, parent);
  kvc_buf *b = kvcgo_bufs(data, stride, n, err);
  if (b == NULL) return KVC_ERR_NO_MEMORY;
  rc = kvc_store_batch(ns, statuses, keys, n, shard, b, a.has ? &o : NULL, err);
  free(b);
  return rc;
}

static inline int kvcgo_store_begin(kvc_namespace *ns, kvc_reservation **out, const kvc_key *key,
                                    uint32_t shard, kvcgo_store_args a, const kvc_key *parent,
                                    kvc_error *err) {
  kvc_store_options o = kvcgo_store_options(a, parent);
  return kvc_store_begin(ns, out, key, shard, a.has ? &o : NULL, err);
}

static inline int kvcgo_reservation_write(kvc_reservation *res, void *data, size_t len,
                                          kvc_error *err) {
  kvc_buf b = KVC_HOST_BUF(data, len);
  return kvc_reservation_write(res, &b, err);
}

static inline int kvcgo_load(kvc_namespace *ns, const kvc_key *key, uint32_t shard, void *data,
                             size_t len, kvc_error *err) {
  kvc_buf b = KVC_HOST_BUF(data, len);
  return kvc_load(ns, key, shard, &b, err);
}

static inline int kvcgo_load_batch(kvc_namespace *ns, int32_t *statuses, size_t *out_loaded,
                                   const kvc_key *keys, size_t n, uint32_t shard, uint8_t *data,
                                   size_t stride, kvc_error *err) {
  int rc;
  kvc_buf *b = kvcgo_bufs(data, stride, n, err);
  if (b == NULL) return KVC_ERR_NO_MEMORY;
  rc = kvc_load_batch(ns, statuses, out_loaded, keys, n, shard, b, err);
  free(b);
  return rc;
}

#endif /* KVC_GO_BRIDGE_H */
