/*
 * kvc.h -- the stable C ABI of libkvc, a tiered KV cache for LLM inference.
 *
 * This header is the only door into libkvc: the `kvc` CLI and the Go, Rust
 * and Python bindings are built on it and on nothing else. It compiles as C99
 * (-pedantic -Werror) and as C++.
 *
 * Conventions (see docs/c-api.md for the long form):
 *   - Every fallible function returns an `int` status: KVC_OK (0) or one of
 *     the stable negative KVC_ERR_* codes below. Out-parameters come first
 *     after the handle and are named `out...`.
 *   - Error detail: every fallible function takes a trailing `kvc_error *err`.
 *     When `err` is not NULL it receives the code and a one-line message that
 *     says what was wrong. The same detail is also kept per thread and read
 *     with kvc_error_last(), which never returns NULL. Bindings whose calls may
 *     hop threads (Go) pass `err`; C callers may use either.
 *   - A miss is a status (KVC_ERR_NOT_FOUND), not an error: it sets
 *     `err->code` but the message is the fixed text "not found".
 *   - Options structs start with `uint32_t struct_size` and are initialised
 *     with their _INIT macro; a zero field means "the library's default" and
 *     the defaults live in the library only. A NULL options pointer means all
 *     defaults. Structs grow only by appending fields.
 *   - `**out` handles are owned by the caller and freed by the matching
 *     close/free function, which accepts NULL. A pointer returned by a getter
 *     is borrowed from its parent.
 *   - Using a handle after it was closed returns KVC_ERR_CLOSED. (Closed
 *     handles are kept as tombstones; after 65536 more handles of that type
 *     have been closed a tombstone is reused, and using such a stale pointer
 *     is undefined, as in any C library.)
 *   - No C++ exception crosses this ABI.
 *
 * Thread safety is stated on each type.
 */
#ifndef KVC_H
#define KVC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(KVC_BUILDING_LIBRARY)
#define KVC_API __attribute__((visibility("default")))
#else
#define KVC_API
#endif

/* ------------------------------------------------------------------------ */
/* Versions                                                                 */
/* ------------------------------------------------------------------------ */

#define KVC_VERSION_MAJOR 0
#define KVC_VERSION_MINOR 1
#define KVC_VERSION_PATCH 0
#define KVC_VERSION_NUMBER \
  (KVC_VERSION_MAJOR * 10000 + KVC_VERSION_MINOR * 100 + KVC_VERSION_PATCH)

/* The library's version as "MAJOR.MINOR.PATCH"; static storage. */
KVC_API const char *kvc_version(void);
/* The library's version number as KVC_VERSION_NUMBER computes it. */
KVC_API int kvc_version_number(void);

/* Optional parts compiled in, as a bit set of kvc_feature. */
typedef enum kvc_feature {
  KVC_FEATURE_SHA256 = 1 << 0,   /* always set */
  KVC_FEATURE_XXH3 = 1 << 1,     /* always set */
  KVC_FEATURE_CUDA = 1 << 2,     /* built with CUDA */
  KVC_FEATURE_GRPC = 1 << 3,     /* built with gRPC (remote tier, node) */
  KVC_FEATURE_IO_URING = 1 << 4, /* built with liburing */
  KVC_FEATURE_SSD = 1 << 5       /* the SSD tier */
} kvc_feature;
KVC_API uint32_t kvc_features(void);

/* ------------------------------------------------------------------------ */
/* Status codes and errors                                                  */
/* ------------------------------------------------------------------------ */

/* Stable codes: values never change, new codes are only appended. */
typedef enum kvc_status {
  KVC_OK = 0,
  KVC_ERR_INVALID_ARGUMENT = -1, /* a NULL, zero, oversize or malformed input */
  KVC_ERR_NOT_FOUND = -2,        /* a miss: no visible block for that key */
  KVC_ERR_PENDING = -3,          /* another writer holds the block's reservation */
  KVC_ERR_EXISTS = -4,           /* the block is already committed */
  KVC_ERR_NO_SPACE = -5,         /* no room: every candidate is pinned or pending */
  KVC_ERR_TIMEOUT = -6,          /* a deadline passed */
  KVC_ERR_CLOSED = -7,           /* the handle was closed */
  KVC_ERR_LAYOUT = -8,           /* a buffer or layout does not fit the namespace */
  KVC_ERR_NO_MEMORY = -9,        /* the process is out of memory */
  KVC_ERR_INTERNAL = -10,        /* a bug: please report it */
  KVC_ERR_UNSUPPORTED = -11,     /* not compiled in, or not possible here */
  KVC_ERR_IO = -12,              /* an I/O error */
  KVC_ERR_PARSE = -13,           /* malformed JSON, trace or config */
  KVC_ERR_PERMISSION = -14,      /* wrong or missing credential */
  KVC_ERR_QUOTA = -15,           /* a tenant quota refuses the request */
  KVC_ERR_UNAVAILABLE = -16,     /* a node or service cannot be reached */
  KVC_ERR_CORRUPT = -17,         /* stored bytes failed their checksum */
  KVC_ERR_FENCED = -18           /* a cluster node refused a write (no lease, or a stale view) */
} kvc_status;

/* The lowest (most negative) code this header defines. */
#define KVC_STATUS_MIN KVC_ERR_FENCED

/* A short fixed description of a status code ("not found");
 * "unknown status" for a code this library does not know. Never NULL. */
KVC_API const char *kvc_status_str(int status);
/* The code's symbolic name ("KVC_ERR_NOT_FOUND"); "KVC_ERR_UNKNOWN" if unknown. */
KVC_API const char *kvc_status_name(int status);

#define KVC_ERROR_MESSAGE_MAX 256

/* Error detail of one call. Caller-owned; fill it by passing it as `err`. */
typedef struct kvc_error {
  int32_t code;                          /* the status returned */
  char message[KVC_ERROR_MESSAGE_MAX];   /* NUL-terminated one line */
} kvc_error;

/* The message of the last failed call on this thread ("" after a success of
 * a call that resets it; calls that succeed do reset it). Never NULL; valid
 * until the next kvc call on this thread. */
KVC_API const char *kvc_error_last(void);
/* The status of the last kvc call on this thread. */
KVC_API int kvc_error_last_code(void);

/* ------------------------------------------------------------------------ */
/* Keys, buffers                                                            */
/* ------------------------------------------------------------------------ */

#define KVC_KEY_BYTES 16
/* A block key (docs/hash-spec.md): 16 bytes naming a whole token prefix. */
typedef struct kvc_key {
  uint8_t bytes[KVC_KEY_BYTES];
} kvc_key;

/* Writes the 32 lowercase hex digits of `key` and a NUL to `out` (33 bytes). */
KVC_API void kvc_key_to_hex(const kvc_key *key, char out[33]);
/* Parses 32 hex digits. KVC_ERR_INVALID_ARGUMENT on anything else. */
KVC_API int kvc_key_from_hex(kvc_key *out, const char *hex, kvc_error *err);

/* Where a buffer's memory lives. */
typedef enum kvc_mem_kind {
  KVC_MEM_HOST = 0,        /* ordinary or pinned host memory */
  KVC_MEM_CUDA_DEVICE = 1  /* CUDA device memory on `device` (GPU tier) */
} kvc_mem_kind;

/* A tagged buffer descriptor. For stores the library only reads `data`. */
typedef struct kvc_buf {
  void *data;
  size_t len;
  int32_t mem;    /* kvc_mem_kind */
  int32_t device; /* CUDA device ordinal for KVC_MEM_CUDA_DEVICE, else 0 */
} kvc_buf;

/* A host buffer descriptor literal. */
#define KVC_HOST_BUF(ptr, length) \
  { (void *)(ptr), (size_t)(length), KVC_MEM_HOST, 0 }

/* ------------------------------------------------------------------------ */
/* Cache                                                                    */
/* ------------------------------------------------------------------------ */

/* An embedded cache: namespaces, an index and a host-DRAM tier.
 * Thread-safe: any number of threads may use one kvc_cache at once. */
typedef struct kvc_cache kvc_cache;

typedef struct kvc_cache_options {
  uint32_t struct_size;
  /* Bytes of host DRAM for blocks, allocated once at open.
   * Default: 1 GiB. Minimum: 64 KiB. */
  uint64_t host_capacity_bytes;
  /* Eviction policy of the host tier: "lru", "wtinylfu", "ttl",
   * "lru-prefix", "wtinylfu-prefix". NULL: kvc_policy_default(). */
  const char *host_policy;
  /* Index shards (lock stripes). Default: 64. */
  uint32_t index_shards;
  /* Touch every page of the arena at open so stores do not page-fault.
   * 0: default (yes), 1: yes, 2: no. */
  uint32_t prefault;
  /* How long an uncommitted reservation lives. Default: 30000 ms. */
  uint32_t reservation_timeout_ms;
  /* How long a view's pin lives unless released. Default: 60000 ms. */
  uint32_t pin_timeout_ms;
  /* Period of the maintenance thread that aborts expired reservations,
   * releases expired pins and reclaims expired blocks. Default: 100 ms. */
  uint32_t maintenance_interval_ms;
  /* Tenants file (see kvc_tenant_create), or a directory holding
   * tenants.json. NULL: no tenants. When the file names tenants, every
   * namespace must be opened as one of them. */
  const char *tenants_path;
  /* The SSD tier below host DRAM: a directory of segment files (created if
   * missing; reopened warm after a restart) and its byte capacity (required
   * with ssd_dir). NULL: no SSD tier. A directory in use by another process,
   * or of a newer format, is refused. */
  const char *ssd_dir;
  uint64_t ssd_capacity_bytes;
  /* Eviction policy of the SSD tier; NULL: kvc_policy_default(). */
  const char *ssd_policy;
  /* The remote tier below the local ones: a kvc node, "host:port" over TCP
   * or "unix:PATH" over the same-host path (see kvc_node_connect). NULL: no
   * remote tier. A block missing locally is looked up on the node (match
   * reports KVC_TIER_REMOTE), loaded straight into the caller's buffer and
   * promoted into host DRAM; committed stores are sent to the node in the
   * background (a bounded queue: when it is full a store is not sent and is
   * counted), and kvc_cache_flush waits until they are sent. Requests are
   * made as the namespace's tenant with its credential; a namespace opened
   * without a tenant uses remote_tenant/remote_credential (NULL: none). An
   * unreachable node makes lookups miss with KVC_MISS_NODE_DOWN within
   * remote_timeout_ms; nothing waits longer. Requires a gRPC build
   * (KVC_ERR_UNSUPPORTED otherwise). The node need not be up at open. */
  const char *remote_address;
  const char *remote_tenant;
  const char *remote_credential;
  /* Deadline of each remote request. Default: 2000 ms. */
  uint32_t remote_timeout_ms;
  /* PEM file of the CA that signed the node's certificate: TLS to the node.
   * NULL: plaintext. */
  const char *remote_tls_ca_path;
} kvc_cache_options;

#define KVC_CACHE_OPTIONS_INIT \
  { (uint32_t)sizeof(kvc_cache_options), 0, NULL, 0, 0, 0, 0, 0, NULL, NULL, 0, NULL, \
    NULL, NULL, NULL, 0, NULL }

KVC_API int kvc_cache_open(kvc_cache **out, const kvc_cache_options *opts,
                           kvc_error *err);
/* Closes the cache and frees its memory. Outstanding namespaces are closed;
 * outstanding views become invalid. NULL is accepted. Returns KVC_OK, or
 * KVC_ERR_CLOSED when already closed. */
KVC_API int kvc_cache_close(kvc_cache *cache);

/* The names of the eviction policies, comma separated; static storage. */
KVC_API const char *kvc_policy_names(void);
/* The policy a tier uses when none is chosen; static storage. */
KVC_API const char *kvc_policy_default(void);

/* ------------------------------------------------------------------------ */
/* Namespaces                                                               */
/* ------------------------------------------------------------------------ */

/* A namespace: the set of blocks that are interchangeable (one model,
 * weights revision, adapter, KV layout and salt). Thread-safe. */
typedef struct kvc_namespace kvc_namespace;

typedef struct kvc_namespace_options {
  uint32_t struct_size;
  const char *hash;     /* "sha256" (default) or "xxh3-128" */
  const char *model;    /* required, non-empty */
  const char *revision; /* weights revision; required, non-empty */
  const char *adapter;  /* LoRA id and revision; NULL or "" for none */
  /* KV layout: dtype one of fp32 fp16 bf16 fp8_e4m3 fp8_e5m2 int8. */
  const char *dtype;
  uint32_t layers;
  uint32_t kv_heads;
  uint32_t head_dim;
  uint32_t block_tokens;
  uint32_t shards; /* tensor-parallel shards; kv_heads % shards == 0. Default 1 */
  const uint8_t *salt; /* may be NULL when salt_len is 0 */
  size_t salt_len;
  /* TTL of a block stored without one. Default: 0, no expiry. */
  uint64_t default_ttl_ms;
  /* The tenant to act as, and its credential; NULL for none (only in a
   * cache without tenants). An isolated tenant's namespaces are salted with
   * the tenant's secret salt from its configuration: `salt` must then be
   * empty. A wrong name or credential is KVC_ERR_PERMISSION. */
  const char *tenant;
  const char *credential;
  /* How stores reach the SSD tier (kvc_write_mode). Default: write-back. */
  uint32_t write_mode;
} kvc_namespace_options;

/* Write-back: a block evicted from host DRAM is demoted to the SSD tier.
 * Write-through: a block is written to the SSD tier at commit as well. */
typedef enum kvc_write_mode {
  KVC_WRITE_BACK = 0,
  KVC_WRITE_THROUGH = 1
} kvc_write_mode;

#define KVC_NAMESPACE_OPTIONS_INIT                                              \
  { (uint32_t)sizeof(kvc_namespace_options), NULL, NULL, NULL, NULL, NULL, 0, \
    0, 0, 0, 0, NULL, 0, 0, NULL, NULL, 0 }

/* Opens (or joins) a namespace. Opening equal options twice yields two
 * handles on one namespace (same blocks, same revision epoch).
 * KVC_ERR_LAYOUT for an invalid layout, KVC_ERR_INVALID_ARGUMENT for
 * missing fields. */
KVC_API int kvc_namespace_open(kvc_namespace **out, kvc_cache *cache,
                               const kvc_namespace_options *opts,
                               kvc_error *err);
/* Closes the handle; the namespace's blocks stay cached. NULL accepted.
 * KVC_ERR_CLOSED when already closed. */
KVC_API int kvc_namespace_close(kvc_namespace *ns);

/* Facts about an open namespace. */
typedef struct kvc_namespace_info {
  uint32_t struct_size;
  kvc_key seed;          /* hash of the namespace's canonical fields */
  uint64_t block_bytes;  /* bytes of one block, all shards */
  uint64_t shard_bytes;  /* bytes of one shard of a block: what load/store move */
  uint32_t block_tokens;
  uint32_t shards;
  uint64_t epoch;        /* revision epoch, see kvc_namespace_bump_revision */
} kvc_namespace_info;

#define KVC_NAMESPACE_INFO_INIT \
  { (uint32_t)sizeof(kvc_namespace_info), { { 0 } }, 0, 0, 0, 0, 0 }

KVC_API int kvc_namespace_info_get(kvc_namespace *ns, kvc_namespace_info *out,
                                   kvc_error *err);

/* Makes every block of the namespace stored so far invisible at once (they
 * are reclaimed in the background) and returns the new epoch. Blocks being
 * read through views stay readable by their holders until released. */
KVC_API int kvc_namespace_bump_revision(kvc_namespace *ns, uint64_t *out_epoch,
                                        kvc_error *err);

/* ------------------------------------------------------------------------ */
/* Keys from tokens                                                         */
/* ------------------------------------------------------------------------ */

/* Computes the keys of the full blocks of `tokens` (n_tokens / block_tokens
 * of them; a trailing partial block has no key). `out_keys` holds
 * `keys_cap` keys; `*out_n` receives how many were written.
 * KVC_ERR_INVALID_ARGUMENT if fewer than block_tokens tokens or keys_cap is
 * too small. */
KVC_API int kvc_keys_compute(kvc_namespace *ns, kvc_key *out_keys,
                             size_t keys_cap, size_t *out_n,
                             const uint32_t *tokens, size_t n_tokens,
                             kvc_error *err);

/* Hashes without a cache: the seed and the keys of `opts` and `tokens`,
 * exactly as a namespace with those options would. Fewer tokens than one
 * block is allowed: the seed, and 0 keys. `out_keys` may be NULL when there
 * is no full block, `tokens` NULL when n_tokens is 0. *out_n is 0 on error. */
KVC_API int kvc_hash_keys(kvc_key *out_seed, kvc_key *out_keys,
                          size_t keys_cap, size_t *out_n,
                          const kvc_namespace_options *opts,
                          const uint32_t *tokens, size_t n_tokens,
                          kvc_error *err);

/* ------------------------------------------------------------------------ */
/* Match                                                                    */
/* ------------------------------------------------------------------------ */

/* Tier ids reported by match. */
typedef enum kvc_tier {
  KVC_TIER_NONE = 0,
  KVC_TIER_GPU = 1,
  KVC_TIER_HOST = 2,
  KVC_TIER_SSD = 3,
  KVC_TIER_REMOTE = 4
} kvc_tier;

/* The longest present prefix of `keys` (a chain, key[i] following key[i-1]):
 * `*out_blocks` receives how many leading blocks are present with every shard
 * committed, not expired and of the namespace's current epoch. When
 * `out_tiers` is not NULL it holds n_keys entries and receives, for each
 * matched block, the kvc_tier that holds it (KVC_TIER_NONE past the match).
 * A miss is not an error: the status is KVC_OK and *out_blocks is 0. */
KVC_API int kvc_match(kvc_namespace *ns, size_t *out_blocks, uint8_t *out_tiers,
                      const kvc_key *keys, size_t n_keys, kvc_error *err);

/* As kvc_match, hashing `tokens` first (KVC_ERR_INVALID_ARGUMENT if fewer
 * than block_tokens). `out_keys` may be NULL; otherwise it holds keys_cap
 * keys and receives the keys of the full blocks (as kvc_keys_compute), so
 * that the caller can load and store without hashing again. */
KVC_API int kvc_match_tokens(kvc_namespace *ns, size_t *out_blocks,
                             uint8_t *out_tiers, kvc_key *out_keys,
                             size_t keys_cap, const uint32_t *tokens,
                             size_t n_tokens, kvc_error *err);

/* Matches `n_lists` key chains at once: list i is keys[offsets[i] ..
 * offsets[i+1]) (offsets has n_lists + 1 entries); out_blocks[i] receives
 * its match length. */
KVC_API int kvc_match_batch(kvc_namespace *ns, size_t *out_blocks,
                            const kvc_key *keys, const size_t *offsets,
                            size_t n_lists, kvc_error *err);

/* ------------------------------------------------------------------------ */
/* Store                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct kvc_store_options {
  uint32_t struct_size;
  /* Time to live from commit. 0: the namespace's default_ttl_ms. */
  uint64_t ttl_ms;
  /* Deadline of the reservation. 0: the cache's reservation_timeout_ms. */
  uint32_t reservation_timeout_ms;
  /* The key of the block before this one in its chain, so prefix-aware
   * eviction can order them; NULL if unknown or first. kvc_store_batch sets
   * it itself from the chain. */
  const kvc_key *parent;
  /* Write-through namespaces: 1 to return only once the block is durable on
   * the SSD tier (written and fdatasync()ed). A durable block survives a
   * crash and is served after a restart. */
  uint32_t durable;
} kvc_store_options;

#define KVC_STORE_OPTIONS_INIT \
  { (uint32_t)sizeof(kvc_store_options), 0, 0, NULL, 0 }

/* A reservation: the right to write one block shard. One thread at a time.
 * Ends with exactly one of kvc_store_commit or kvc_store_abort, which free it. */
typedef struct kvc_reservation kvc_reservation;

/* Reserves (key, shard) for writing. Returns
 *   KVC_OK            *out is a reservation whose buffer the caller fills;
 *   KVC_ERR_EXISTS    the block is already committed (skip the write);
 *   KVC_ERR_PENDING   another writer holds it (wait with kvc_store_wait, or
 *                     skip);
 *   KVC_ERR_NO_SPACE  nothing can be evicted to make room. */
KVC_API int kvc_store_begin(kvc_namespace *ns, kvc_reservation **out,
                            const kvc_key *key, uint32_t shard,
                            const kvc_store_options *opts, kvc_error *err);
/* The reservation's writable buffer: shard_bytes of host memory, zeroed,
 * valid until commit or abort. (A reservation aborted at its deadline keeps
 * its buffer for its writer until commit or abort: a late writer never
 * writes into another block's memory.) */
KVC_API int kvc_reservation_buffer(kvc_reservation *res, kvc_buf *out,
                                   kvc_error *err);
/* Copies `src` (exactly shard_bytes) into the reservation's buffer. */
KVC_API int kvc_reservation_write(kvc_reservation *res, const kvc_buf *src,
                                  kvc_error *err);
/* Records the checksum and makes the block visible; frees `res` whatever
 * the outcome. KVC_ERR_TIMEOUT if the reservation's deadline passed (it was
 * aborted); KVC_ERR_NOT_FOUND if a delete or revision bump cancelled it;
 * KVC_ERR_INVALID_ARGUMENT if nothing was written into it (neither
 * kvc_reservation_write nor kvc_reservation_buffer was called). */
KVC_API int kvc_store_commit(kvc_reservation *res, kvc_error *err);
/* Drops the reservation; frees `res`. NULL accepted. */
KVC_API int kvc_store_abort(kvc_reservation *res);

/* One-shot store: begin, copy `src` (exactly shard_bytes), commit.
 * KVC_ERR_EXISTS and KVC_ERR_PENDING as kvc_store_begin. */
KVC_API int kvc_store(kvc_namespace *ns, const kvc_key *key, uint32_t shard,
                      const kvc_buf *src, const kvc_store_options *opts,
                      kvc_error *err);

/* Stores a chain of blocks: keys[i] with srcs[i] (one shard each).
 * out_statuses (n entries, may be NULL) receives each block's status;
 * EXISTS and PENDING count as success for the call. Returns KVC_OK when
 * every block is committed or already present, else the first other error. */
KVC_API int kvc_store_batch(kvc_namespace *ns, int32_t *out_statuses,
                            const kvc_key *keys, size_t n, uint32_t shard,
                            const kvc_buf *srcs, const kvc_store_options *opts,
                            kvc_error *err);

/* Waits until a pending (key, shard) is committed (KVC_OK) or aborted
 * (KVC_ERR_NOT_FOUND), at most timeout_ms (KVC_ERR_TIMEOUT). */
KVC_API int kvc_store_wait(kvc_namespace *ns, const kvc_key *key,
                           uint32_t shard, uint32_t timeout_ms, kvc_error *err);

/* ------------------------------------------------------------------------ */
/* Load, views, delete                                                      */
/* ------------------------------------------------------------------------ */

/* Copies the block shard into `dst` (exactly shard_bytes), pinning it for
 * the copy. KVC_ERR_NOT_FOUND on a miss. */
KVC_API int kvc_load(kvc_namespace *ns, const kvc_key *key, uint32_t shard,
                     const kvc_buf *dst, kvc_error *err);

/* Loads keys[i] into dsts[i]. out_statuses (n entries, may be NULL) receives
 * each block's status; *out_loaded (may be NULL) the number of leading
 * blocks loaded. A miss is not an error for the call: it returns KVC_OK
 * unless an input is invalid. */
KVC_API int kvc_load_batch(kvc_namespace *ns, int32_t *out_statuses,
                           size_t *out_loaded, const kvc_key *keys, size_t n,
                           uint32_t shard, const kvc_buf *dsts,
                           kvc_error *err);

/* A zero-copy view of a pinned block shard. The bytes at `data` stay valid
 * and unchanged until kvc_view_release or the pin's deadline, whichever
 * comes first. `id` names the pin; a view is a value and may be copied, but
 * it is released once. Read-only. */
typedef struct kvc_view {
  const void *data;
  size_t len;
  uint64_t id;
} kvc_view;

/* Pins (key, shard) and describes its bytes. pin_timeout_ms 0: the cache's
 * default. KVC_ERR_NOT_FOUND on a miss. */
KVC_API int kvc_view_acquire(kvc_namespace *ns, kvc_view *out,
                             const kvc_key *key, uint32_t shard,
                             uint32_t pin_timeout_ms, kvc_error *err);
/* Releases the pin and zeroes *view. KVC_ERR_INVALID_ARGUMENT when the view
 * was already released or its pin expired. */
KVC_API int kvc_view_release(kvc_namespace *ns, kvc_view *view, kvc_error *err);

/* Removes every shard of the block `key`. KVC_ERR_NOT_FOUND if none was
 * present. Readers holding views keep their bytes until release. */
KVC_API int kvc_delete(kvc_namespace *ns, const kvc_key *key, kvc_error *err);

/* ------------------------------------------------------------------------ */
/* Stats                                                                    */
/* ------------------------------------------------------------------------ */

/* Why a lookup missed. */
typedef enum kvc_miss_reason {
  KVC_MISS_ABSENT = 0,  /* never stored, or deleted */
  KVC_MISS_EXPIRED = 1, /* its TTL passed */
  KVC_MISS_EVICTED = 2, /* stored, then evicted (as far as the cache recalls) */
  KVC_MISS_STALE = 3,   /* stored under an older revision epoch */
  KVC_MISS_PENDING = 4, /* being written */
  KVC_MISS_QUOTA = 5,   /* refused by a tenant quota */
  KVC_MISS_NODE_DOWN = 6,
  KVC_MISS_CORRUPT = 7, /* failed its checksum */
  KVC_MISS_REASONS = 8
} kvc_miss_reason;

typedef struct kvc_stats {
  uint32_t struct_size;
  uint64_t capacity_bytes;  /* host tier */
  uint64_t used_bytes;      /* host tier, allocated to blocks */
  uint64_t blocks;          /* committed block shards resident */
  uint64_t pending;         /* reservations outstanding */
  uint64_t pins;            /* view pins outstanding */
  uint64_t namespaces;
  uint64_t hits;            /* lookups (load, view, match per block) that hit */
  uint64_t misses;          /* sum of misses_by_reason */
  uint64_t misses_by_reason[KVC_MISS_REASONS];
  uint64_t stores;          /* commits */
  uint64_t store_exists;    /* begins answered EXISTS */
  uint64_t store_pending;   /* begins answered PENDING */
  uint64_t aborts;          /* explicit aborts */
  uint64_t reservations_expired;
  uint64_t pins_expired;
  uint64_t evictions;
  uint64_t expirations;     /* blocks reclaimed after their TTL */
  uint64_t deletes;
  uint64_t bytes_stored;
  uint64_t bytes_loaded;
  uint64_t promotions;        /* SSD hits copied up into host DRAM */
  uint64_t demotions;         /* host evictions written to the SSD tier */
  uint64_t demotions_dropped; /* evictions not demoted (staging full) */
  uint64_t ssd_capacity_bytes;
  uint64_t ssd_used_bytes;
  uint64_t ssd_blocks;
  uint64_t ssd_hits;
  uint64_t checksum_failures; /* reads below host memory that failed */
} kvc_stats;

#define KVC_STATS_INIT                                                      \
  { (uint32_t)sizeof(kvc_stats), 0, 0, 0, 0, 0, 0, 0, 0, { 0 }, 0, 0, 0, 0, 0, \
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

KVC_API int kvc_cache_stats(kvc_cache *cache, kvc_stats *out, kvc_error *err);
/* The same stats (and more: per policy) as a JSON object. *out is owned by
 * the caller: free it with kvc_string_free. */
KVC_API int kvc_cache_stats_json(kvc_cache *cache, char **out, kvc_error *err);
/* Makes every block the cache owes its SSD tier durable: write-back
 * demotions staged so far and earlier write-through stores are written and
 * fdatasync()ed. KVC_OK at once without an SSD tier. Closing a cache flushes
 * too. */
KVC_API int kvc_cache_flush(kvc_cache *cache, kvc_error *err);

/* What an SSD cache directory holds (format, segments, blocks and bytes per
 * namespace and tenant, recovery counters) as JSON; *out is freed with
 * kvc_string_free. The directory must not be open in another process. */
KVC_API int kvc_ssd_inspect_json(char **out, const char *dir, kvc_error *err);

/* Frees a string the library returned. NULL accepted. */
KVC_API void kvc_string_free(char *s);

/* ------------------------------------------------------------------------ */
/* Tenants                                                                  */
/* ------------------------------------------------------------------------ */

/* A tenant's configuration, for kvc_tenant_create. */
typedef struct kvc_tenant_options {
  uint32_t struct_size;
  const char *name;      /* 1-64 of [A-Za-z0-9_.-] */
  const char *isolation; /* "isolated" (default: keys salted with a secret of
                            the tenant) or "shared" (one pool with every other
                            shared tenant) */
  uint64_t host_quota_bytes; /* hard limit in the host tier; 0: none */
  uint64_t ssd_quota_bytes;  /* hard limit in the SSD tier; 0: none */
  uint32_t borrow;           /* 1: may exceed the quota while the tier has free room */
} kvc_tenant_options;

#define KVC_TENANT_OPTIONS_INIT \
  { (uint32_t)sizeof(kvc_tenant_options), NULL, NULL, 0, 0, 0 }

/* Tenants live in a file (`path`, or `path`/tenants.json for a directory),
 * edited under a lock and replaced atomically; a cache reads it at open.
 * The file keeps a hash of each credential, never the credential. */

/* Adds a tenant; *out_credential (free with kvc_string_free) is its new
 * credential, shown this once. KVC_ERR_EXISTS if the name is taken. */
KVC_API int kvc_tenant_create(char **out_credential, const char *path,
                              const kvc_tenant_options *opts, kvc_error *err);
/* The tenants of `path` as a JSON array (no secrets); free with
 * kvc_string_free. */
KVC_API int kvc_tenant_list_json(char **out, const char *path, kvc_error *err);
/* Changes quotas; a field < 0 is left as is (borrow: -1 keep, 0 no, 1 yes).
 * KVC_ERR_NOT_FOUND for an unknown name. */
KVC_API int kvc_tenant_set_quota(const char *path, const char *name,
                                 int64_t host_quota_bytes,
                                 int64_t ssd_quota_bytes, int32_t borrow,
                                 kvc_error *err);
KVC_API int kvc_tenant_delete(const char *path, const char *name,
                              kvc_error *err);

/* ------------------------------------------------------------------------ */
/* Trace simulation (kvc sim)                                               */
/* ------------------------------------------------------------------------ */

/* Runs the prefix-mode trace simulation of docs/sim.md over a Mooncake-format
 * JSONL trace for each policy in the comma-separated `policies` (NULL: every
 * policy, plus "opt") and each of the `n_caps` capacities (in blocks), and
 * returns a JSON array of rows {"policy","capacity_blocks","hits",
 * "lookups","hit_ratio","default"} in *out (free with kvc_string_free).
 * KVC_ERR_PARSE for a malformed or empty trace, KVC_ERR_IO if unreadable. */
KVC_API int kvc_sim_run(char **out, const char *trace_path,
                        const char *policies, const uint64_t *capacities,
                        size_t n_caps, kvc_error *err);

/* ------------------------------------------------------------------------ */
/* Nodes (kvc serve) and node clients                                       */
/* ------------------------------------------------------------------------ */

/* A node serves one cache over gRPC (proto/kvc/v1/kvc.proto, docs/node.md).
 * In a build without gRPC every kvc_node_* call returns KVC_ERR_UNSUPPORTED
 * ("built without gRPC"); kvc_features() says which build this is. */

/* A running node. kvc_node_server_stop may be called from any thread, once;
 * the other calls one thread at a time. */
typedef struct kvc_node_server kvc_node_server;

typedef struct kvc_node_server_options {
  uint32_t struct_size;
  /* "host:port" to listen on; port 0 picks a free port.
   * Default: "127.0.0.1:7070". */
  const char *listen;
  /* The cache the node serves (its tiers and tenants file). NULL: the
   * defaults of kvc_cache_open. */
  const kvc_cache_options *cache;
  /* How the node's stores reach its SSD tier (kvc_write_mode), for every
   * namespace. Write-back blocks still in host DRAM at stop are not on the
   * SSD tier, so a restarted node serves only write-through blocks and
   * write-back blocks demoted before the stop. Default: write-back. */
  uint32_t write_mode;
  /* The same-host path: a Unix domain socket at this path (created; an
   * existing socket file is replaced, any other file refused) over which
   * clients on this machine receive the node's host arena (a memfd) and
   * move block bytes with one memcpy. The socket is created mode 0600 (the
   * arena holds every tenant's blocks, so only processes of the node's user
   * may map it); requests are still authenticated per tenant. NULL: none. */
  const char *unix_path;
  /* TLS on `listen`: the node's certificate chain and private key (PEM).
   * Both or neither. tls_client_ca_path (PEM) additionally requires and
   * verifies client certificates. NULL: plaintext. */
  const char *tls_cert_path;
  const char *tls_key_path;
  const char *tls_client_ca_path;
  /* The credential of admin calls (tenant administration). NULL: admin
   * calls are refused. */
  const char *admin_token;
  /* "host:port" serving GET /metrics (Prometheus text format); port 0 picks
   * a free port. NULL: no metrics endpoint. */
  const char *metrics_listen;
  /* Cluster membership (docs/cluster.md): "etcd://HOST:PORT[,...]/CLUSTER"
   * registers this node under /kvc/CLUSTER/nodes/<node_id> with a lease
   * and fences writes while it holds none. NULL: a standalone node. */
  const char *cluster;
  /* This node's id in the cluster ([A-Za-z0-9_.-], 1-64; default: the
   * advertised address), its zone (NULL: none), and the address clients
   * reach it at (default: the bound listen address). */
  const char *node_id;
  const char *zone;
  const char *advertise;
  /* A store stream that sends nothing for this long is cancelled and its
   * reservation released (a client that stalls without a deadline). 0:
   * 10000 ms. */
  uint32_t store_idle_timeout_ms;
  /* The bearer token GET /metrics requires ("Authorization: Bearer
   * TOKEN"); NULL: the endpoint answers anyone who reaches it. */
  const char *metrics_token;
} kvc_node_server_options;

#define KVC_NODE_SERVER_OPTIONS_INIT \
  { (uint32_t)sizeof(kvc_node_server_options), NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, \
    NULL, NULL, NULL, NULL, 0, NULL }

/* Opens the cache and starts serving. KVC_ERR_UNAVAILABLE when the address
 * cannot be bound. */
KVC_API int kvc_node_server_start(kvc_node_server **out,
                                  const kvc_node_server_options *opts,
                                  kvc_error *err);
/* The address the node listens on, with the port it picked for port 0.
 * Borrowed from the server; "" for NULL. */
KVC_API const char *kvc_node_server_address(const kvc_node_server *server);
/* The metrics endpoint's address ("host:port"), "" when there is none.
 * Borrowed from the server. */
KVC_API const char *kvc_node_server_metrics_address(const kvc_node_server *server);
/* Stops accepting calls, lets calls in flight finish for up to grace_ms
 * (then cancels them), closes the cache (flushing write-back blocks to the
 * SSD tier) and frees `server`. NULL accepted. */
KVC_API int kvc_node_server_stop(kvc_node_server *server, uint32_t grace_ms);

/* A connection to a node. Thread-safe. */
typedef struct kvc_node kvc_node;

typedef struct kvc_node_options {
  uint32_t struct_size;
  /* The tenant to act as and its credential; NULL on a node without
   * tenants. Sent as `authorization: Bearer <tenant>:<credential>`. */
  const char *tenant;
  const char *credential;
  /* How long kvc_node_connect waits for the node. Default: 2000 ms. */
  uint32_t connect_timeout_ms;
  /* The deadline of every call. Default: 10000 ms. */
  uint32_t timeout_ms;
  /* TLS: PEM file of the CA that signed the node's certificate (NULL:
   * plaintext), and this client's certificate and key when the node asks
   * for one (both or neither). Not used over "unix:". */
  const char *tls_ca_path;
  const char *tls_cert_path;
  const char *tls_key_path;
  /* The node's admin token, for the kvc_node_tenant_* calls. */
  const char *admin_token;
  /* How many times an idempotent call (stats, match, get, delete) is retried
   * after KVC_ERR_UNAVAILABLE, within its deadline. Stores are never
   * retried. Default: 2; KVC_NODE_NO_RETRIES for none. */
  uint32_t max_retries;
} kvc_node_options;

#define KVC_NODE_NO_RETRIES 0xFFFFFFFFu

#define KVC_NODE_OPTIONS_INIT \
  { (uint32_t)sizeof(kvc_node_options), NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, 0 }

/* Connects to the node at `address`: "host:port" (gRPC over TCP) or
 * "unix:PATH" (the same-host path: the node's kvc_node_server_options
 * unix_path; block bytes move with one memcpy between the node's shared
 * arena and the caller's buffer, and the pins and reservations this
 * connection holds are released by the node when the connection closes or
 * the process dies). Both give the same results for every call.
 * A cluster is one address too (docs/cluster.md): "peers:HOST:PORT,...
 * [?replication=R&write_quorum=W]" (a static list) or "etcd://HOST:PORT
 * [,HOST:PORT...]/CLUSTER" (membership watched in etcd); each block goes to
 * its R owners by weighted rendezvous hashing, reads fail over between them
 * within the call's deadline, and the node on this host (or the one named
 * by the KVC_CLUSTER_LOCAL_NODE environment variable) is read first.
 * KVC_ERR_UNAVAILABLE when it cannot be reached within connect_timeout_ms. */
KVC_API int kvc_node_connect(kvc_node **out, const char *address,
                             const kvc_node_options *opts, kvc_error *err);
/* Closes the connection. NULL accepted. */
KVC_API int kvc_node_close(kvc_node *node);

/* In the calls below `ns` names the namespace as kvc_namespace_open takes
 * it; its tenant, credential, salt, default_ttl_ms and write_mode fields
 * must be unset (the node's tenants file supplies an isolated tenant's
 * salt). A refused credential is KVC_ERR_PERMISSION, a node that stopped
 * answering KVC_ERR_UNAVAILABLE or KVC_ERR_TIMEOUT. */

/* The node's stats as kvc_cache_stats_json writes them, with "scope":
 * "tenant" when the connection acts as a tenant (every counter is that
 * tenant's own: no tenant learns another's traffic), "node" with the admin
 * token or on a node without tenants. Free *out with kvc_string_free. */
KVC_API int kvc_node_stats_json(kvc_node *node, char **out, kvc_error *err);
/* As kvc_match, on the node. */
KVC_API int kvc_node_match(kvc_node *node, size_t *out_blocks,
                           uint8_t *out_tiers,
                           const kvc_namespace_options *ns,
                           const kvc_key *keys, size_t n_keys,
                           kvc_error *err);
/* As kvc_match_tokens, on the node (which hashes the tokens). */
KVC_API int kvc_node_match_tokens(kvc_node *node, size_t *out_blocks,
                                  uint8_t *out_tiers, kvc_key *out_keys,
                                  size_t keys_cap,
                                  const kvc_namespace_options *ns,
                                  const uint32_t *tokens, size_t n_tokens,
                                  kvc_error *err);
/* Copies the block shard (key, shard) into `dst` (a host buffer of at least
 * its size); *out_len receives its size. `dst` NULL asks for the size only.
 * KVC_ERR_NOT_FOUND on a miss; KVC_ERR_LAYOUT when dst is too small. */
KVC_API int kvc_node_get(kvc_node *node, size_t *out_len,
                         const kvc_namespace_options *ns, const kvc_key *key,
                         uint32_t shard, const kvc_buf *dst, kvc_error *err);
/* Stores the block shard (key, shard) from `src` (exactly shard_bytes), as
 * kvc_store: KVC_ERR_EXISTS, KVC_ERR_PENDING, KVC_ERR_NO_SPACE and
 * KVC_ERR_QUOTA as there. `opts` may be NULL; its ttl_ms and parent are
 * used. */
KVC_API int kvc_node_put(kvc_node *node, const kvc_namespace_options *ns,
                         const kvc_key *key, uint32_t shard,
                         const kvc_buf *src, const kvc_store_options *opts,
                         kvc_error *err);
/* ---- Batches: many block shards of one namespace and shard in one call ---
 *
 * An engine loads a prompt's matched prefix, and stores the blocks it
 * computed, a batch at a time: one request carries every block (over gRPC one
 * stream, on the same-host path one round trip for a get and two for a put,
 * however many blocks), so the per-call cost is paid once per batch. */
#define KVC_NODE_MAX_BATCH 1024

/* One block shard of a batch. The caller owns every field and the memory
 * they point to; the library writes only `len` (get) and `status`. */
typedef struct kvc_node_item {
  kvc_key key;
  /* get: the destination (a host buffer; data NULL asks for the size only);
   * put: the source, exactly the namespace's shard_bytes. */
  kvc_buf buf;
  /* put: the block's parent (prefix-aware eviction), or NULL. */
  const kvc_key *parent;
  /* get, out: the block shard's size (also on KVC_ERR_LAYOUT). */
  size_t len;
  /* out: this item's outcome, as kvc_node_get / kvc_node_put would have
   * returned it alone: KVC_OK, KVC_ERR_NOT_FOUND, KVC_ERR_LAYOUT (buffer too
   * small), KVC_ERR_EXISTS, KVC_ERR_PENDING, KVC_ERR_QUOTA, ... */
  int32_t status;
} kvc_node_item;

/* Gets items[0..n) (n <= KVC_NODE_MAX_BATCH) of namespace `ns`, shard
 * `shard`, in one request. Returns KVC_OK when the node answered for every
 * item: each item's status then says whether it was found (misses are not
 * an error of the call). Any other return is the call's own failure
 * (KVC_ERR_INVALID_ARGUMENT for a bad namespace or n, KVC_ERR_PERMISSION,
 * KVC_ERR_UNAVAILABLE, KVC_ERR_TIMEOUT, ...): every item the node did not
 * answer has that status, and `err` says which. A destination an item was
 * not found for is left as it was; one that was found is written whole. */
KVC_API int kvc_node_get_batch(kvc_node *node,
                               const kvc_namespace_options *ns,
                               uint32_t shard, kvc_node_item *items, size_t n,
                               kvc_error *err);
/* Stores items[0..n) (n <= KVC_NODE_MAX_BATCH) in one request, each one
 * two-phase on its own as kvc_node_put: a block is visible once all of its
 * bytes arrived, one that did not arrive is not. `opts` (may be NULL) gives
 * every item's ttl_ms; its parent field is not used (each item has its
 * own). The return is as kvc_node_get_batch's: KVC_OK when the node
 * answered for every item (KVC_ERR_EXISTS of an item is its status, not a
 * failure of the call); otherwise the call's failure, with the items stored
 * before it kept and marked KVC_OK. Stores are not retried. */
KVC_API int kvc_node_put_batch(kvc_node *node,
                               const kvc_namespace_options *ns,
                               uint32_t shard, kvc_node_item *items, size_t n,
                               const kvc_store_options *opts, kvc_error *err);

/* As kvc_delete, on the node. Through an "etcd://" cluster address, a
 * node that holds the key but could not be reached is sent the delete as a
 * hint in etcd (/kvc/NAME/hints/NODE/), which it applies before it serves
 * again; the call still fails, naming the nodes it did not reach. */
KVC_API int kvc_node_delete(kvc_node *node, const kvc_namespace_options *ns,
                            const kvc_key *key, kvc_error *err);
/* As kvc_namespace_bump_revision, on the node; *out_epoch (may be NULL)
 * receives the namespace's new epoch. Through an "etcd://" cluster address
 * the bump is first counted in etcd (/kvc/NAME/revisions/), then sent to
 * every node with its count: a node applies each count once, and one that
 * missed it (down, partitioned) applies it before it serves again; the call
 * still fails, naming the nodes it did not reach. */
KVC_API int kvc_node_bump_revision(kvc_node *node,
                                   const kvc_namespace_options *ns,
                                   uint64_t *out_epoch, kvc_error *err);

/* Tenant administration on a live node, as the kvc_tenant_* calls do on a
 * file: the node edits its tenants file and applies the change at once
 * (a deleted tenant's requests are refused from then on; its blocks become
 * unreachable and are reclaimed). Made with kvc_node_options.admin_token:
 * KVC_ERR_PERMISSION without the right one, KVC_ERR_UNSUPPORTED on a node
 * without a tenants file. */
KVC_API int kvc_node_tenant_create(kvc_node *node, char **out_credential,
                                   const kvc_tenant_options *opts,
                                   kvc_error *err);
KVC_API int kvc_node_tenant_list_json(kvc_node *node, char **out,
                                      kvc_error *err);
KVC_API int kvc_node_tenant_set_quota(kvc_node *node, const char *name,
                                      int64_t host_quota_bytes,
                                      int64_t ssd_quota_bytes, int32_t borrow,
                                      kvc_error *err);
KVC_API int kvc_node_tenant_delete(kvc_node *node, const char *name,
                                   kvc_error *err);

/* ---- Cluster administration (docs/cluster.md) ---------------------------
 *
 * `address` names a cluster: "etcd://HOST:PORT[,HOST:PORT...]/NAME" (its
 * nodes register under /kvc/NAME/ in etcd) or, for kvc_cluster_nodes_json
 * only, a static "peers:HOST:PORT,...[?replication=R&write_quorum=W]" list.
 * timeout_ms bounds each call's wait for etcd (0: 5000 ms); an etcd that
 * cannot be reached in it is KVC_ERR_UNAVAILABLE. Without gRPC or without
 * etcd support in the build: KVC_ERR_UNSUPPORTED. Thread-safe. */

/* Writes the cluster config: `replication` nodes per block (1..64) and the
 * `write_quorum` acknowledgements that commit a store (1..replication).
 * KVC_ERR_EXISTS when the cluster already has a config and `overwrite` is
 * 0. Nodes and clients watching the cluster follow the change at once. */
KVC_API int kvc_cluster_init(const char *address, uint32_t replication,
                             uint32_t write_quorum, int overwrite,
                             uint32_t timeout_ms, kvc_error *err);
/* The cluster's current membership as JSON in *out (free with
 * kvc_string_free): {"cluster","epoch","replication","write_quorum",
 * "nodes":[{"id","address","zone","capacity_bytes","state",
 * "registered_epoch"}]}, nodes sorted by id, state "up" or "draining". */
KVC_API int kvc_cluster_nodes_json(char **out, const char *address,
                                   uint32_t timeout_ms, kvc_error *err);
/* Marks the registered node `node_id` draining (`undo` 0) or up again
 * (`undo` 1): a draining node serves reads and placement gives it no new
 * blocks; the mark survives the node's re-registration.
 * KVC_ERR_NOT_FOUND when no node of that id is registered. */
KVC_API int kvc_cluster_drain(const char *address, const char *node_id,
                              int undo, uint32_t timeout_ms, kvc_error *err);
/* Forgets the retired node `node_id`: removes its roster record (every
 * node that ever registered is in the roster, and a delete leaves a hint
 * for each one it did not reach) and its pending delete hints. Forget only
 * a node that will not come back with its old SSD tier: one that does
 * serves the blocks deleted meanwhile. KVC_ERR_INVALID_ARGUMENT while the
 * node is registered (stop it first), or for a "peers:" address;
 * KVC_ERR_NOT_FOUND when the cluster has neither a roster record nor hints
 * for it. */
KVC_API int kvc_cluster_forget(const char *address, const char *node_id,
                               uint32_t timeout_ms, kvc_error *err);

/* ---- Cluster tenants (docs/cluster.md, "Cluster configuration") ---------
 *
 * An etcd cluster's tenants live in etcd under /kvc/NAME/tenants/ (no
 * lease): every node of the cluster, and every node that joins later, takes
 * them up into its tenants file at once (a node keeps its own tenants of
 * other names). The credential is minted by the caller and only its
 * SHA-256 is written; an isolated tenant's secret salt is minted once and
 * shared by every node, so a tenant's keys are the same on all of them.
 * Only "etcd://" addresses; a "peers:" list is KVC_ERR_INVALID_ARGUMENT. */

/* Creates the tenant; *out_credential (free with kvc_string_free) is its
 * credential, shown this once. KVC_ERR_EXISTS if the cluster has one of
 * that name; KVC_ERR_INVALID_ARGUMENT for a bad name or isolation. */
KVC_API int kvc_cluster_tenant_create(const char *address,
                                      const kvc_tenant_options *opts,
                                      char **out_credential,
                                      uint32_t timeout_ms, kvc_error *err);
/* The cluster's tenants as a JSON array, sorted by name (no secrets):
 * [{"name","isolation","host_quota_bytes","ssd_quota_bytes","borrow"}]. */
KVC_API int kvc_cluster_tenant_list_json(const char *address, char **out,
                                         uint32_t timeout_ms, kvc_error *err);
/* As kvc_tenant_set_quota, in the cluster's configuration.
 * KVC_ERR_NOT_FOUND for an unknown name. */
KVC_API int kvc_cluster_tenant_set_quota(const char *address, const char *name,
                                         int64_t host_quota_bytes,
                                         int64_t ssd_quota_bytes,
                                         int32_t borrow, uint32_t timeout_ms,
                                         kvc_error *err);
/* Removes the tenant from the cluster: every node refuses its credential
 * and drops its blocks as it takes the change up. KVC_ERR_NOT_FOUND for an
 * unknown name. */
KVC_API int kvc_cluster_tenant_delete(const char *address, const char *name,
                                      uint32_t timeout_ms, kvc_error *err);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* KVC_H */
