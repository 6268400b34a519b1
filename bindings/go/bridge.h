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

/* ---- Node client -------------------------------------------------------- */

static inline void kvcgo_node_options_init(kvc_node_options *o) {
  kvc_node_options d = KVC_NODE_OPTIONS_INIT;
  *o = d;
}

static inline void kvcgo_node_server_options_init(kvc_node_server_options *o) {
  kvc_node_server_options d = KVC_NODE_SERVER_OPTIONS_INIT;
  *o = d;
}

static inline int kvcgo_node_get(kvc_node *node, size_t *out_len, const kvc_namespace_options *ns,
                                 const kvc_key *key, uint32_t shard, void *data, size_t len,
                                 kvc_error *err) {
  kvc_buf b = KVC_HOST_BUF(data, len);
  return kvc_node_get(node, out_len, ns, key, shard, data ? &b : NULL, err);
}

static inline int kvcgo_node_put(kvc_node *node, const kvc_namespace_options *ns,
                                 const kvc_key *key, uint32_t shard, void *data, size_t len,
                                 kvcgo_store_args a, const kvc_key *parent, kvc_error *err) {
  kvc_buf b = KVC_HOST_BUF(data, len);
  kvc_store_options o = kvcgo_store_options(a, parent);
  return kvc_node_put(node, ns, key, shard, &b, a.has ? &o : NULL, err);
}

/* One item of a node batch as Go describes it: no pointers (so an array of
 * them in Go memory may be passed to C), its buffer an offset into the one
 * batch buffer passed with the call. */
typedef struct {
  kvc_key key;
  kvc_key parent;
  size_t off;     /* into the batch buffer */
  size_t cap;     /* bytes at off */
  size_t len;     /* out (get) */
  int32_t status; /* out */
  uint8_t has_buf;
  uint8_t has_parent;
} kvcgo_node_item;

/* kvc_node_get_batch (put == 0) or kvc_node_put_batch over `n` Go items
 * whose buffers lie in base[0..) (Go memory passed for this call only): the
 * kvc_node_item array, which holds pointers into it, lives in C memory and is
 * freed before the return, so no Go pointer outlives the call. */
static inline int kvcgo_node_batch(kvc_node *node, int put, const kvc_namespace_options *ns,
                                   uint32_t shard, kvcgo_node_item *gi, size_t n, uint8_t *base,
                                   kvcgo_store_args a, kvc_error *err) {
  size_t i;
  int rc;
  kvc_store_options o = kvcgo_store_options(a, NULL);
  kvc_node_item *items = NULL;
  if (n > 0) {
    items = (kvc_node_item *)calloc(n, sizeof(kvc_node_item));
    if (items == NULL) {
      err->code = KVC_ERR_NO_MEMORY;
      snprintf(err->message, sizeof err->message, "out of memory for %zu batch items", n);
      return KVC_ERR_NO_MEMORY;
    }
  }
  for (i = 0; i < n; ++i) {
    items[i].key = gi[i].key;
    items[i].buf.data = gi[i].has_buf ? base + gi[i].off : NULL;
    items[i].buf.len = gi[i].has_buf ? gi[i].cap : 0;
    items[i].buf.mem = KVC_MEM_HOST;
    items[i].buf.device = 0;
    items[i].parent = gi[i].has_parent ? &gi[i].parent : NULL;
    items[i].len = gi[i].len;
    items[i].status = gi[i].status;
  }
  if (put) {
    rc = kvc_node_put_batch(node, ns, shard, items, n, a.has ? &o : NULL, err);
  } else {
    rc = kvc_node_get_batch(node, ns, shard, items, n, err);
  }
  for (i = 0; i < n; ++i) {
    gi[i].len = items[i].len;
    gi[i].status = items[i].status;
  }
  free(items);
  return rc;
}

#endif /* KVC_GO_BRIDGE_H */
