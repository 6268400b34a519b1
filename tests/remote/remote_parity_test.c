/* "Every C ABI call through a node gives the same results as in process":
 * one scenario (store, EXISTS on a second store, match prefix and tiers,
 * load byte for byte, LAYOUT on a small buffer, NOT_FOUND, delete, revision
 * bump then miss, store after the bump, other tenant isolated, wrong and
 * unknown credentials refused with PERMISSION) is run against
 *   (a) an embedded cache (kvc_namespace_* calls),
 *   (b) a node, with the kvc_node_* calls,
 *   (c) an embedded cache above the node (its remote tier),
 * each run writing its outcomes to a log; the logs must be equal. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

enum { kBlocks = 4, kTokens = 16, kBytes = 512, kMaxLog = 128 };

typedef struct outcome_log {
  long v[kMaxLog];
  const char *what[kMaxLog];
  int n;
} outcome_log;

static void rec(outcome_log *l, const char *what, long v) {
  if (l->n < kMaxLog) {
    l->what[l->n] = what;
    l->v[l->n++] = v;
  }
}

/* One way of making the calls. */
typedef struct driver {
  const char *name;
  /* in process (a, c) */
  kvc_cache *cache;
  kvc_namespace *ns;
  /* through the node (b) */
  kvc_node *node;
  kvc_namespace_options spec;
} driver;

static int d_store(driver *d, const kvc_key *k, const uint8_t *data) {
  kvc_buf src = KVC_HOST_BUF(data, kBytes);
  kvc_error err;
  if (d->node) return kvc_node_put(d->node, &d->spec, k, 0, &src, NULL, &err);
  return kvc_store(d->ns, k, 0, &src, NULL, &err);
}

static int d_match(driver *d, const kvc_key *keys, size_t *out, uint8_t *tiers) {
  kvc_error err;
  if (d->node) return kvc_node_match(d->node, out, tiers, &d->spec, keys, kBlocks, &err);
  return kvc_match(d->ns, out, tiers, keys, kBlocks, &err);
}

static int d_load(driver *d, const kvc_key *k, uint8_t *dst, size_t len) {
  kvc_buf b = KVC_HOST_BUF(dst, len);
  kvc_error err;
  size_t got = 0;
  if (d->node) return kvc_node_get(d->node, &got, &d->spec, k, 0, &b, &err);
  return kvc_load(d->ns, k, 0, &b, &err);
}

static int d_delete(driver *d, const kvc_key *k) {
  kvc_error err;
  if (d->node) return kvc_node_delete(d->node, &d->spec, k, &err);
  return kvc_delete(d->ns, k, &err);
}

static int d_bump(driver *d) {
  kvc_error err;
  if (d->node) return kvc_node_bump_revision(d->node, &d->spec, NULL, &err);
  return kvc_namespace_bump_revision(d->ns, NULL, &err);
}

static void log_match(driver *d, outcome_log *l, const kvc_key *keys, const char *what) {
  size_t m = 99;
  uint8_t tiers[kBlocks];
  int i;
  memset(tiers, 0xEE, sizeof tiers);
  rec(l, what, d_match(d, keys, &m, tiers));
  rec(l, "  blocks", (long)m);
  for (i = 0; i < kBlocks; i++) rec(l, "  tier", tiers[i]);
}

static uint8_t blocks[kBlocks][kBytes];

static void scenario(driver *d, outcome_log *l, const kvc_key *keys) {
  uint8_t back[kBytes];
  int i;
  log_match(d, l, keys, "match, empty");
  for (i = 0; i < 3; i++) rec(l, "store", d_store(d, &keys[i], blocks[i]));
  rec(l, "store again", d_store(d, &keys[0], blocks[0]));
  log_match(d, l, keys, "match 3 of 4");
  memset(back, 0, sizeof back);
  rec(l, "load", d_load(d, &keys[1], back, kBytes));
  rec(l, "  bytes equal", memcmp(back, blocks[1], kBytes) == 0);
  rec(l, "load, small buffer", d_load(d, &keys[1], back, 100));
  rec(l, "load, absent", d_load(d, &keys[3], back, kBytes));
  rec(l, "delete", d_delete(d, &keys[1]));
  rec(l, "delete again", d_delete(d, &keys[1]));
  rec(l, "load, deleted", d_load(d, &keys[1], back, kBytes));
  log_match(d, l, keys, "match after delete");
  rec(l, "bump revision", d_bump(d));
  log_match(d, l, keys, "match after bump");
  rec(l, "load after bump", d_load(d, &keys[0], back, kBytes));
  rec(l, "store after bump", d_store(d, &keys[0], blocks[0]));
  log_match(d, l, keys, "match after store");
}

static kvc_namespace_options spec(const char *model) {
  kvc_namespace_options o = KVC_NAMESPACE_OPTIONS_INIT;
  o.model = model;
  o.revision = "r1";
  o.dtype = "fp16";
  o.layers = 2;
  o.kv_heads = 2;
  o.head_dim = 8;
  o.block_tokens = 4;
  return o;
}

static void keys_of(const char *model, kvc_key *keys) {
  uint32_t tokens[kTokens];
  kvc_key seed;
  size_t n = 0;
  int i;
  kvc_error err;
  kvc_namespace_options o = spec(model);
  for (i = 0; i < kTokens; i++) tokens[i] = 42u + (uint32_t)i;
  CHECK(kvc_hash_keys(&seed, keys, kBlocks, &n, &o, tokens, kTokens, &err) == KVC_OK && n == kBlocks);
}

/* In process (optionally above the node at `remote`): the scenario as
 * tenant t1, then t2 on t1's keys, then a wrong and an unknown credential. */
static void run_embedded(outcome_log *l, const char *model, const char *tenants, const char *remote,
                         const char *cred1, const char *cred2) {
  kvc_cache_options co = KVC_CACHE_OPTIONS_INIT;
  kvc_namespace_options o = spec(model);
  driver d;
  kvc_key keys[kBlocks];
  kvc_error err;
  memset(&d, 0, sizeof d);
  keys_of(model, keys);
  co.host_capacity_bytes = 1u << 20;
  co.tenants_path = tenants;
  co.remote_address = remote;
  co.remote_timeout_ms = 1000;
  CHECK(kvc_cache_open(&d.cache, &co, &err) == KVC_OK);
  if (!d.cache) return;
  o.tenant = "t1";
  o.credential = cred1;
  CHECK(kvc_namespace_open(&d.ns, d.cache, &o, &err) == KVC_OK);
  if (!d.ns) return;
  scenario(&d, l, keys);
  kvc_namespace_close(d.ns);
  o.tenant = "t2";
  o.credential = cred2;
  CHECK(kvc_namespace_open(&d.ns, d.cache, &o, &err) == KVC_OK);
  if (d.ns) log_match(&d, l, keys, "other tenant");
  kvc_namespace_close(d.ns);
  {
    size_t m = 0;
    int rc;
    o.tenant = "t1";
    o.credential = "wrong";
    d.ns = NULL;
    rc = kvc_namespace_open(&d.ns, d.cache, &o, &err);
    if (rc == KVC_OK) rc = kvc_match(d.ns, &m, NULL, keys, kBlocks, &err);
    rec(l, "wrong credential", rc);
    kvc_namespace_close(d.ns);
    o.tenant = "nobody";
    d.ns = NULL;
    rc = kvc_namespace_open(&d.ns, d.cache, &o, &err);
    if (rc == KVC_OK) rc = kvc_match(d.ns, &m, NULL, keys, kBlocks, &err);
    rec(l, "unknown tenant", rc);
    kvc_namespace_close(d.ns);
  }
  CHECK(kvc_cache_flush(d.cache, &err) == KVC_OK);
  kvc_cache_close(d.cache);
}

static void run_node(outcome_log *l, const char *model, const char *addr, const char *cred1, const char *cred2) {
  kvc_node_options no = KVC_NODE_OPTIONS_INIT;
  driver d;
  kvc_key keys[kBlocks];
  kvc_error err;
  memset(&d, 0, sizeof d);
  keys_of(model, keys);
  d.spec = spec(model);
  no.tenant = "t1";
  no.credential = cred1;
  CHECK(kvc_node_connect(&d.node, addr, &no, &err) == KVC_OK);
  if (!d.node) return;
  scenario(&d, l, keys);
  kvc_node_close(d.node);
  no.tenant = "t2";
  no.credential = cred2;
  CHECK(kvc_node_connect(&d.node, addr, &no, &err) == KVC_OK);
  if (d.node) log_match(&d, l, keys, "other tenant");
  kvc_node_close(d.node);
  {
    size_t m = 0;
    int rc;
    no.tenant = "t1";
    no.credential = "wrong";
    d.node = NULL;
    rc = kvc_node_connect(&d.node, addr, &no, &err);
    if (rc == KVC_OK) rc = kvc_node_match(d.node, &m, NULL, &d.spec, keys, kBlocks, &err);
    rec(l, "wrong credential", rc);
    kvc_node_close(d.node);
    no.tenant = "nobody";
    d.node = NULL;
    rc = kvc_node_connect(&d.node, addr, &no, &err);
    if (rc == KVC_OK) rc = kvc_node_match(d.node, &m, NULL, &d.spec, keys, kBlocks, &err);
    rec(l, "unknown tenant", rc);
    kvc_node_close(d.node);
  }
}

static int compare(const outcome_log *a, const char *an, const outcome_log *b, const char *bn) {
  int i, bad = 0;
  if (a->n != b->n) {
    fprintf(stderr, "%s logged %d outcomes, %s %d\n", an, a->n, bn, b->n);
    return 1;
  }
  for (i = 0; i < a->n; i++) {
    if (a->v[i] != b->v[i]) {
      fprintf(stderr, "outcome %d (%s): %s gave %ld, %s gave %ld\n", i, a->what[i], an, a->v[i], bn, b->v[i]);
      bad = 1;
    }
  }
  return bad;
}

int main(void) {
  char dir[] = "/tmp/kvc-parity-XXXXXX";
  char tenants[600];
  char *cred1 = NULL, *cred2 = NULL;
  kvc_tenant_options to = KVC_TENANT_OPTIONS_INIT;
  kvc_cache_options nco = KVC_CACHE_OPTIONS_INIT;
  kvc_node_server_options so = KVC_NODE_SERVER_OPTIONS_INIT;
  kvc_node_server *server = NULL;
  kvc_error err;
  static outcome_log la, lb, lc;
  int i, j;
  if (!(kvc_features() & KVC_FEATURE_GRPC)) {
    fprintf(stderr, "SKIPPED: built without gRPC, there is no node to compare with\n");
    return 77;
  }
  for (i = 0; i < kBlocks; i++)
    for (j = 0; j < kBytes; j++) blocks[i][j] = (uint8_t)(i * 13 + j * 5 + 3);
  if (mkdtemp(dir) == NULL) return 1;
  snprintf(tenants, sizeof tenants, "%s/tenants.json", dir);
  to.name = "t1";
  CHECK(kvc_tenant_create(&cred1, tenants, &to, &err) == KVC_OK);
  to.name = "t2";
  CHECK(kvc_tenant_create(&cred2, tenants, &to, &err) == KVC_OK);
  nco.host_capacity_bytes = 4u << 20;
  nco.tenants_path = tenants;
  so.listen = "127.0.0.1:0";
  so.cache = &nco;
  CHECK(kvc_node_server_start(&server, &so, &err) == KVC_OK);
  if (server == NULL || cred1 == NULL || cred2 == NULL) return 1;

  run_embedded(&la, "parity-a", tenants, NULL, cred1, cred2);
  run_node(&lb, "parity-b", kvc_node_server_address(server), cred1, cred2);
  run_embedded(&lc, "parity-c", tenants, kvc_node_server_address(server), cred1, cred2);

  /* The scenario must have exercised what it claims, in process. */
  CHECK(la.n > 40);
  for (i = 0; i < la.n; i++) {
    if (strcmp(la.what[i], "store again") == 0) CHECK(la.v[i] == KVC_ERR_EXISTS);
    if (strcmp(la.what[i], "load, small buffer") == 0) CHECK(la.v[i] == KVC_ERR_LAYOUT);
    if (strcmp(la.what[i], "load, absent") == 0) CHECK(la.v[i] == KVC_ERR_NOT_FOUND);
    if (strcmp(la.what[i], "wrong credential") == 0) CHECK(la.v[i] == KVC_ERR_PERMISSION);
    if (strcmp(la.what[i], "unknown tenant") == 0) CHECK(la.v[i] == KVC_ERR_PERMISSION);
  }
  if (compare(&la, "in process", &lb, "kvc_node_*")) failures++;
  if (compare(&la, "in process", &lc, "above the node")) failures++;

  kvc_node_server_stop(server, 1000);
  kvc_string_free(cred1);
  kvc_string_free(cred2);
  unlink(tenants);
  {
    char lock[700];
    snprintf(lock, sizeof lock, "%s.lock", tenants);
    unlink(lock);
  }
  if (rmdir(dir) != 0) fprintf(stderr, "note: %s not removed\n", dir);
  if (failures) fprintf(stderr, "%d failure(s)\n", failures);
  return failures ? 1 : 0;
}
