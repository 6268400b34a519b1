/* The same-host path against TCP: one in-process node (kvc_node_server_start
 * with a tenants file, a loopback port and a unix_path), one scenario run
 * through "127.0.0.1:PORT" and through "unix:PATH". Each run checks its own
 * outcomes and writes a transcript (statuses, counts, tiers, sizes, bytes
 * compared, epochs); the two transcripts must be equal. Then what only the
 * unix socket has: its mode, a stale socket replaced, a live one and a
 * regular file refused, and a missing socket refused at once. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
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

enum { kTokens = 12, kBlocks = 3, kBytes = 512 };

static char transcript[2][8192];

static void note(int run, const char *fmt, ...) {
  char line[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  strncat(transcript[run], line, sizeof transcript[run] - strlen(transcript[run]) - 2);
  strcat(transcript[run], "\n");
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
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
  o.shards = 1;
  return o;
}

#define ADMIN "shm-test-admin-token"

static kvc_node *connect_admin(const char *addr, const char *tenant, const char *cred, const char *admin,
                               int *rc) {
  kvc_node_options no = KVC_NODE_OPTIONS_INIT;
  kvc_error err;
  kvc_node *n = NULL;
  no.tenant = tenant;
  no.credential = cred;
  no.admin_token = admin;
  no.connect_timeout_ms = 2000;
  no.timeout_ms = 5000;
  *rc = kvc_node_connect(&n, addr, &no, &err);
  return n;
}

static kvc_node *connect_as(const char *addr, const char *tenant, const char *cred, int *rc) {
  return connect_admin(addr, tenant, cred, NULL, rc);
}

/* The scenario; `model` differs per run so the two runs share no block. */
static void scenario(int run, const char *addr, const char *model, const char *alice, const char *bob) {
  kvc_namespace_options o = spec(model);
  kvc_error err;
  uint32_t tokens[kTokens];
  uint8_t blocks[kBlocks][kBytes], back[kBytes];
  kvc_key keys[kBlocks], again[kBlocks];
  uint8_t tiers[kBlocks];
  size_t matched = 99, len = 0;
  uint64_t epoch = 0;
  int i, j, rc;
  char *json = NULL;

  for (i = 0; i < kTokens; i++) tokens[i] = 7000u + (uint32_t)i;
  for (i = 0; i < kBlocks; i++)
    for (j = 0; j < kBytes; j++) blocks[i][j] = (uint8_t)(i * 13 + j * 5 + run);

  kvc_node *node = connect_as(addr, "alice", alice, &rc);
  CHECK(rc == KVC_OK && node != NULL);
  if (node == NULL) return;

  rc = kvc_node_match_tokens(node, &matched, tiers, keys, kBlocks, &o, tokens, kTokens, &err);
  CHECK(rc == KVC_OK && matched == 0);
  note(run, "match_tokens empty: %d %zu", rc, matched);

  for (i = 0; i < kBlocks; i++) {
    kvc_buf src = KVC_HOST_BUF(blocks[i], kBytes);
    kvc_store_options st = KVC_STORE_OPTIONS_INIT;
    st.parent = i ? &keys[i - 1] : NULL;
    rc = kvc_node_put(node, &o, &keys[i], 0, &src, &st, &err);
    CHECK(rc == KVC_OK);
    note(run, "put %d: %d", i, rc);
  }
  {
    kvc_buf src = KVC_HOST_BUF(blocks[0], kBytes);
    rc = kvc_node_put(node, &o, &keys[0], 0, &src, NULL, &err);
    CHECK(rc == KVC_ERR_EXISTS);
    note(run, "put again: %d", rc);
    kvc_buf shortbuf = KVC_HOST_BUF(blocks[0], kBytes / 2);
    rc = kvc_node_put(node, &o, &keys[0], 0, &shortbuf, NULL, &err);
    CHECK(rc == KVC_ERR_LAYOUT);
    note(run, "put short: %d", rc);
    rc = kvc_node_put(node, &o, &keys[0], 5, &src, NULL, &err);
    CHECK(rc == KVC_ERR_INVALID_ARGUMENT);
    note(run, "put shard 5: %d", rc);
  }
  rc = kvc_node_match(node, &matched, tiers, &o, keys, kBlocks, &err);
  CHECK(rc == KVC_OK && matched == kBlocks && tiers[0] == KVC_TIER_HOST && tiers[2] == KVC_TIER_HOST);
  note(run, "match: %d %zu %d %d %d", rc, matched, tiers[0], tiers[1], tiers[2]);
  rc = kvc_node_match_tokens(node, &matched, tiers, again, kBlocks, &o, tokens, kTokens, &err);
  CHECK(rc == KVC_OK && matched == kBlocks && memcmp(again, keys, sizeof keys) == 0);
  note(run, "match_tokens: %d %zu", rc, matched);
  rc = kvc_node_match_tokens(node, &matched, tiers, again, kBlocks, &o, tokens, 3, &err);
  CHECK(rc == KVC_ERR_INVALID_ARGUMENT);
  note(run, "match_tokens short: %d", rc);

  for (i = 0; i < kBlocks; i++) {
    kvc_buf dst = KVC_HOST_BUF(back, kBytes);
    memset(back, 0, sizeof back);
    rc = kvc_node_get(node, &len, &o, &keys[i], 0, &dst, &err);
    CHECK(rc == KVC_OK && len == kBytes && memcmp(back, blocks[i], kBytes) == 0);
    note(run, "get %d: %d %zu %s", i, rc, len, memcmp(back, blocks[i], kBytes) == 0 ? "same" : "differ");
  }
  len = 0;
  rc = kvc_node_get(node, &len, &o, &keys[1], 0, NULL, &err);
  CHECK(rc == KVC_OK && len == kBytes);
  note(run, "get size: %d %zu", rc, len);
  {
    kvc_buf small = KVC_HOST_BUF(back, 100);
    len = 0;
    rc = kvc_node_get(node, &len, &o, &keys[0], 0, &small, &err);
    CHECK(rc == KVC_ERR_LAYOUT && len == kBytes);
    note(run, "get small: %d %zu", rc, len);
  }
  {
    kvc_key missing;
    kvc_buf dst = KVC_HOST_BUF(back, kBytes);
    memset(&missing, 0xab, sizeof missing);
    rc = kvc_node_get(node, &len, &o, &missing, 0, &dst, &err);
    CHECK(rc == KVC_ERR_NOT_FOUND && strcmp(err.message, "not found") == 0);
    note(run, "get missing: %d %s", rc, err.message);
  }
  {
    kvc_namespace_options bad = spec(model);
    bad.head_dim = 0;
    rc = kvc_node_match(node, &matched, NULL, &bad, keys, 1, &err);
    CHECK(rc != KVC_OK);
    note(run, "bad layout: %d", rc);
  }

  /* Batches: one request for many block shards, each item its own outcome
   * as a single get or put would have had it. */
  {
    enum { kMany = 100 };
    static uint8_t many[kMany][kBytes], got[kMany][kBytes];
    static kvc_node_item items[kMany];
    kvc_key missing, fresh[kMany];
    uint8_t small[100];
    int same = 1;
    memset(&missing, 0xab, sizeof missing);
    memset(items, 0, sizeof items);
    memset(got, 0, sizeof got);
    /* get: two stored, a miss, one into too small a buffer, a size only */
    items[0].key = keys[0];
    items[0].buf = (kvc_buf)KVC_HOST_BUF(got[0], kBytes);
    items[1].key = keys[2];
    items[1].buf = (kvc_buf)KVC_HOST_BUF(got[1], kBytes);
    items[2].key = missing;
    items[2].buf = (kvc_buf)KVC_HOST_BUF(got[2], kBytes);
    items[3].key = keys[1];
    items[3].buf = (kvc_buf)KVC_HOST_BUF(small, sizeof small);
    items[4].key = keys[1];
    rc = kvc_node_get_batch(node, &o, 0, items, 5, &err);
    CHECK(rc == KVC_OK);
    CHECK(items[0].status == KVC_OK && items[0].len == kBytes && memcmp(got[0], blocks[0], kBytes) == 0);
    CHECK(items[1].status == KVC_OK && items[1].len == kBytes && memcmp(got[1], blocks[2], kBytes) == 0);
    CHECK(items[2].status == KVC_ERR_NOT_FOUND && items[2].len == 0 && got[2][0] == 0 && got[2][kBytes - 1] == 0);
    CHECK(items[3].status == KVC_ERR_LAYOUT && items[3].len == kBytes);
    CHECK(items[4].status == KVC_OK && items[4].len == kBytes);
    note(run, "get batch: %d [%d %zu %s] [%d %zu %s] [%d %zu] [%d %zu] [%d %zu]", rc, items[0].status, items[0].len,
         memcmp(got[0], blocks[0], kBytes) == 0 ? "same" : "differ", items[1].status, items[1].len,
         memcmp(got[1], blocks[2], kBytes) == 0 ? "same" : "differ", items[2].status, items[2].len,
         items[3].status, items[3].len, items[4].status, items[4].len);
    /* put: kMany new blocks (a parent chain) and one that exists */
    for (i = 0; i < kMany; i++) {
      memset(&fresh[i], 0, sizeof fresh[i]);
      fresh[i].bytes[0] = 0xf0;
      fresh[i].bytes[1] = (uint8_t)i;
      fresh[i].bytes[2] = (uint8_t)run;
      for (j = 0; j < kBytes; j++) many[i][j] = (uint8_t)(i * 7 + j * 3 + run);
    }
    memset(items, 0, sizeof items);
    for (i = 0; i < kMany; i++) {
      items[i].key = fresh[i];
      items[i].buf = (kvc_buf)KVC_HOST_BUF(many[i], kBytes);
      items[i].parent = i ? &fresh[i - 1] : NULL;
      items[i].status = 12345;
    }
    items[kMany - 1].key = keys[0]; /* exists: that item's status */
    items[kMany - 1].buf = (kvc_buf)KVC_HOST_BUF(blocks[0], kBytes);
    items[kMany - 1].parent = NULL;
    rc = kvc_node_put_batch(node, &o, 0, items, kMany, NULL, &err);
    CHECK(rc == KVC_OK);
    for (i = 0; i < kMany - 1; i++) CHECK(items[i].status == KVC_OK);
    CHECK(items[kMany - 1].status == KVC_ERR_EXISTS);
    note(run, "put batch: %d [%d ... %d] [%d]", rc, items[0].status, items[kMany - 2].status,
         items[kMany - 1].status);
    rc = kvc_node_match(node, &matched, NULL, &o, fresh, kMany - 1, &err);
    CHECK(rc == KVC_OK && matched == kMany - 1);
    note(run, "match put batch: %d %zu", rc, matched);
    /* get them back in one batch (more pins than a release batch holds) */
    memset(items, 0, sizeof items);
    for (i = 0; i < kMany - 1; i++) {
      items[i].key = fresh[i];
      items[i].buf = (kvc_buf)KVC_HOST_BUF(got[i], kBytes);
    }
    rc = kvc_node_get_batch(node, &o, 0, items, kMany - 1, &err);
    CHECK(rc == KVC_OK);
    for (i = 0; i < kMany - 1; i++) {
      CHECK(items[i].status == KVC_OK && items[i].len == kBytes);
      same = same && memcmp(got[i], many[i], kBytes) == 0;
    }
    CHECK(same);
    note(run, "get put batch: %d %s", rc, same ? "same" : "differ");
    /* the call's own failures: too many items, a shard out of range; every
     * item carries the call's status */
    rc = kvc_node_get_batch(node, &o, 0, items, KVC_NODE_MAX_BATCH + 1, &err);
    CHECK(rc == KVC_ERR_INVALID_ARGUMENT);
    note(run, "get batch too many: %d", rc);
    rc = kvc_node_get_batch(node, &o, 5, items, 2, &err);
    CHECK(rc == KVC_ERR_INVALID_ARGUMENT && items[0].status == KVC_ERR_INVALID_ARGUMENT &&
          items[1].status == KVC_ERR_INVALID_ARGUMENT);
    note(run, "get batch shard 5: %d %d", rc, items[1].status);
    items[0].buf = (kvc_buf)KVC_HOST_BUF(many[0], kBytes);
    items[1].buf = (kvc_buf)KVC_HOST_BUF(many[1], kBytes);
    items[0].key = missing;
    rc = kvc_node_put_batch(node, &o, 5, items, 2, NULL, &err);
    CHECK(rc == KVC_ERR_INVALID_ARGUMENT && items[0].status == KVC_ERR_INVALID_ARGUMENT);
    note(run, "put batch shard 5: %d %d", rc, items[0].status);
    rc = kvc_node_get_batch(node, &o, 0, items, 0, &err);
    CHECK(rc == KVC_OK);
    note(run, "get batch empty: %d", rc);
    for (i = 0; i < kMany - 1; i++) CHECK(kvc_node_delete(node, &o, &fresh[i], &err) == KVC_OK);
    CHECK(kvc_node_get(node, &len, &o, &missing, 0, NULL, &err) == KVC_ERR_NOT_FOUND);
  }

  /* bob (isolated) cannot see alice's blocks, even by their keys. */
  {
    kvc_node *b = connect_as(addr, "bob", bob, &rc);
    CHECK(rc == KVC_OK && b != NULL);
    rc = kvc_node_match(b, &matched, NULL, &o, keys, kBlocks, &err);
    CHECK(rc == KVC_OK && matched == 0);
    note(run, "bob match: %d %zu", rc, matched);
    kvc_buf dst = KVC_HOST_BUF(back, kBytes);
    rc = kvc_node_get(b, &len, &o, &keys[0], 0, &dst, &err);
    CHECK(rc == KVC_ERR_NOT_FOUND);
    note(run, "bob get: %d", rc);
    rc = kvc_node_delete(b, &o, &keys[0], &err);
    CHECK(rc == KVC_ERR_NOT_FOUND);
    note(run, "bob delete: %d", rc);
    kvc_node_close(b);
  }

  rc = kvc_node_stats_json(node, &json, &err);
  CHECK(rc == KVC_OK && json != NULL && strstr(json, "\"alice\"") != NULL && strstr(json, "\"bob\"") == NULL &&
        strstr(json, "\"scope\":\"tenant\"") != NULL && strstr(json, "\"pins\"") == NULL);
  note(run, "stats: %d", rc);
  kvc_string_free(json);
  json = NULL;

  rc = kvc_node_delete(node, &o, &keys[2], &err);
  CHECK(rc == KVC_OK);
  note(run, "delete: %d", rc);
  rc = kvc_node_delete(node, &o, &keys[2], &err);
  CHECK(rc == KVC_ERR_NOT_FOUND);
  note(run, "delete again: %d", rc);
  rc = kvc_node_match(node, &matched, NULL, &o, keys, kBlocks, &err);
  CHECK(rc == KVC_OK && matched == 2);
  note(run, "match after delete: %d %zu", rc, matched);

  rc = kvc_node_bump_revision(node, &o, &epoch, &err);
  CHECK(rc == KVC_OK && epoch == 2);
  note(run, "bump: %d %llu", rc, (unsigned long long)epoch);
  rc = kvc_node_match(node, &matched, NULL, &o, keys, kBlocks, &err);
  CHECK(rc == KVC_OK && matched == 0);
  note(run, "match after bump: %d %zu", rc, matched);
  {
    kvc_buf dst = KVC_HOST_BUF(back, kBytes);
    rc = kvc_node_get(node, &len, &o, &keys[0], 0, &dst, &err);
    CHECK(rc == KVC_ERR_NOT_FOUND);
    note(run, "get after bump: %d", rc);
    kvc_buf src = KVC_HOST_BUF(blocks[0], kBytes);
    rc = kvc_node_put(node, &o, &keys[0], 0, &src, NULL, &err);
    CHECK(rc == KVC_OK);
    note(run, "put after bump: %d", rc);
  }
  {
    char *cred = NULL;
    kvc_tenant_options t = KVC_TENANT_OPTIONS_INIT;
    t.name = "carol";
    rc = kvc_node_tenant_create(node, &cred, &t, &err);
    CHECK(rc != KVC_OK && cred == NULL);
    /* Over unix: administration is refused with a pointer to TCP; over TCP
     * it needs the admin token this client does not have. Not compared. */
  }
  kvc_node_close(node);

  /* The admin token: the whole node's stats, as over TCP; a wrong one
   * refuses stats only; alone it allows nothing else. */
  {
    kvc_node *n = connect_admin(addr, NULL, NULL, ADMIN, &rc);
    CHECK(rc == KVC_OK && n != NULL);
    rc = kvc_node_stats_json(n, &json, &err);
    CHECK(rc == KVC_OK && json && strstr(json, "\"scope\":\"node\"") && strstr(json, "\"bob\""));
    note(run, "admin stats: %d %s", rc, json && strstr(json, "\"scope\":\"node\"") ? "node" : "?");
    kvc_string_free(json);
    json = NULL;
    rc = kvc_node_match(n, &matched, NULL, &o, keys, 1, &err);
    CHECK(rc == KVC_ERR_PERMISSION);
    note(run, "admin match: %d", rc);
    kvc_node_close(n);
    n = connect_admin(addr, "alice", alice, "not-the-admin-token", &rc);
    CHECK(rc == KVC_OK && n != NULL);
    rc = kvc_node_stats_json(n, &json, &err);
    CHECK(rc == KVC_ERR_PERMISSION && json == NULL);
    note(run, "wrong admin stats: %d", rc);
    rc = kvc_node_match(n, &matched, NULL, &o, keys, 1, &err);
    CHECK(rc == KVC_OK);
    note(run, "wrong admin match: %d", rc);
    kvc_node_close(n);
  }

  /* Wrong, missing and other-tenant credentials. */
  {
    const char *who[3][2] = {{"alice", "not-the-credential"}, {NULL, NULL}, {"mallory", "x"}};
    for (i = 0; i < 3; i++) {
      kvc_node *n = connect_as(addr, who[i][0], who[i][1], &rc);
      int call = KVC_OK;
      if (n != NULL) {
        call = kvc_node_stats_json(n, &json, &err);
        CHECK(json == NULL);
        kvc_string_free(json);
        json = NULL;
        rc = kvc_node_match(n, &matched, NULL, &o, keys, 1, &err);
        CHECK(rc == KVC_ERR_PERMISSION);
        kvc_node_close(n);
      }
      CHECK((n == NULL ? rc : call) == KVC_ERR_PERMISSION);
      note(run, "refused %d: connect %s, %d", i, n ? "ok" : "failed", n == NULL ? rc : call);
    }
  }
}

int main(void) {
  kvc_error err;
  char dir[] = "/tmp/kvc-shm-test-XXXXXX";
  char tenants[256], sock[256], other[256], file[256], unix_addr[300];
  char *alice = NULL, *bob = NULL;
  int rc;

  if (!(kvc_features() & KVC_FEATURE_GRPC)) {
    printf("SKIP: built without gRPC: no node, no same-host path\n");
    return 77;
  }
  if (mkdtemp(dir) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  snprintf(tenants, sizeof tenants, "%s/tenants.json", dir);
  snprintf(sock, sizeof sock, "%s/node.sock", dir);
  snprintf(other, sizeof other, "%s/other.sock", dir);
  snprintf(file, sizeof file, "%s/file.sock", dir);
  snprintf(unix_addr, sizeof unix_addr, "unix:%s", sock);
  {
    kvc_tenant_options t = KVC_TENANT_OPTIONS_INIT;
    t.name = "alice";
    CHECK(kvc_tenant_create(&alice, tenants, &t, &err) == KVC_OK);
    t.name = "bob";
    CHECK(kvc_tenant_create(&bob, tenants, &t, &err) == KVC_OK);
    if (!alice || !bob) return 1;
  }

  kvc_cache_options co = KVC_CACHE_OPTIONS_INIT;
  co.host_capacity_bytes = 4u << 20;
  co.tenants_path = tenants;
  kvc_node_server_options so = KVC_NODE_SERVER_OPTIONS_INIT;
  so.listen = "127.0.0.1:0";
  so.cache = &co;
  so.unix_path = sock;
  so.admin_token = ADMIN;
  kvc_node_server *server = NULL;
  CHECK(kvc_node_server_start(&server, &so, &err) == KVC_OK);
  if (server == NULL) return 1;
  {
    struct stat st;
    CHECK(lstat(sock, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0600);
  }

  scenario(0, kvc_node_server_address(server), "shm-test-tcp", alice, bob);
  scenario(1, unix_addr, "shm-test-unix", alice, bob);
  if (strcmp(transcript[0], transcript[1]) != 0) {
    fprintf(stderr, "TCP and unix: differ.\n--- TCP\n%s--- unix:\n%s", transcript[0], transcript[1]);
    failures++;
  }

  /* Every pin the batches took was given back (the client's release rides
   * on its next request or follows within milliseconds; the node frees a
   * closed connection's pins on its own thread). */
  {
    kvc_node *admin = connect_admin(unix_addr, NULL, NULL, ADMIN, &rc);
    char *json = NULL;
    int drained = 0;
    for (int i = 0; i < 100 && admin && !drained; i++) {
      if (kvc_node_stats_json(admin, &json, &err) == KVC_OK)
        drained = strstr(json, "\"pins\":0,") != NULL && strstr(json, "\"pending\":0,") != NULL;
      kvc_string_free(json);
      json = NULL;
      if (!drained) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
      }
    }
    CHECK(drained);
    kvc_node_close(admin);
  }

  /* A tenant deleted through the admin calls loses its open unix:
   * connection as it loses TCP (the node checks it again every 100 ms). */
  {
    kvc_node *bob_unix = connect_as(unix_addr, "bob", bob, &rc), *bob_tcp;
    kvc_node *admin = connect_admin(kvc_node_server_address(server), NULL, NULL, ADMIN, &rc);
    kvc_namespace_options o = spec("shm-test-unix");
    kvc_key k;
    size_t m = 0;
    memset(&k, 1, sizeof k);
    CHECK(bob_unix && admin && kvc_node_match(bob_unix, &m, NULL, &o, &k, 1, &err) == KVC_OK);
    CHECK(kvc_node_tenant_delete(admin, "bob", &err) == KVC_OK);
    {
      struct timespec ts = {0, 250 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
    CHECK(kvc_node_match(bob_unix, &m, NULL, &o, &k, 1, &err) == KVC_ERR_PERMISSION);
    bob_tcp = connect_as(kvc_node_server_address(server), "bob", bob, &rc);
    CHECK(bob_tcp && kvc_node_match(bob_tcp, &m, NULL, &o, &k, 1, &err) == KVC_ERR_PERMISSION);
    kvc_node_close(bob_tcp);
    kvc_node_close(bob_unix);
    kvc_node_close(admin);
  }

  /* A second node on the live socket: refused; on a regular file: refused,
   * and the file is kept; on a stale socket: replaced. */
  {
    kvc_node_server *s2 = NULL;
    FILE *f = fopen(file, "w");
    CHECK(f != NULL);
    if (f) fclose(f);
    so.unix_path = sock;
    CHECK(kvc_node_server_start(&s2, &so, &err) == KVC_ERR_UNAVAILABLE && s2 == NULL);
    so.unix_path = file;
    CHECK(kvc_node_server_start(&s2, &so, &err) == KVC_ERR_INVALID_ARGUMENT && s2 == NULL);
    CHECK(strstr(err.message, "not a socket") != NULL && access(file, F_OK) == 0);

    struct sockaddr_un a;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    CHECK(strlen(other) < sizeof a.sun_path);
    memcpy(a.sun_path, other, strlen(other) + 1);
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    close(fd); /* the file stays, nobody listens: stale */
    so.unix_path = other;
    CHECK(kvc_node_server_start(&s2, &so, &err) == KVC_OK && s2 != NULL);
    if (s2) {
      char addr2[300];
      kvc_node *n;
      snprintf(addr2, sizeof addr2, "unix:%s", other);
      n = connect_as(addr2, "alice", alice, &rc);
      CHECK(rc == KVC_OK && n != NULL);
      kvc_node_close(n);
      CHECK(kvc_node_server_stop(s2, 0) == KVC_OK);
      CHECK(access(other, F_OK) != 0); /* removed at stop */
    }
  }

  /* Nobody there: KVC_ERR_UNAVAILABLE at once. */
  {
    char gone[300];
    double t0 = now_s();
    kvc_node *n;
    snprintf(gone, sizeof gone, "unix:%s/nobody.sock", dir);
    n = connect_as(gone, "alice", alice, &rc);
    CHECK(n == NULL && rc == KVC_ERR_UNAVAILABLE && now_s() - t0 < 1.0);
  }

  CHECK(kvc_node_server_stop(server, 1000) == KVC_OK);
  CHECK(access(sock, F_OK) != 0);
  kvc_string_free(alice);
  kvc_string_free(bob);
  unlink(file);
  unlink(tenants);
  {
    char lock[300];
    snprintf(lock, sizeof lock, "%s/tenants.json.lock", dir);
    unlink(lock);
  }
  if (rmdir(dir) != 0) fprintf(stderr, "note: %s left behind: %s\n", dir, strerror(errno));
  if (failures) fprintf(stderr, "%d failure(s)\n", failures);
  else printf("ok: TCP and unix: agree\n%s", transcript[1]);
  return failures ? 1 : 0;
}
