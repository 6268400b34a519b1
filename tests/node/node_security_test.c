/* Node auth, tenant administration and retries through the kvc_node_* C
 * calls, against in-process nodes on free loopback ports:
 * - the admin calls work with the admin token and apply at once (a created
 *   tenant authenticates, a deleted one is refused, quotas show);
 * - wrong, missing and other tenants' credentials are refused by every call,
 *   the admin calls included, and a tenant credential cannot administer;
 * - a node without an admin token refuses admin calls, a node without a
 *   tenants file answers them KVC_ERR_UNSUPPORTED;
 * - idempotent calls are retried across a node restart on the same port,
 *   stores never. */
#include <pthread.h>
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

enum { kBytes = 512 };

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms) {
  struct timespec ts;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (ms % 1000) * 1000000L;
  nanosleep(&ts, NULL);
}

static kvc_namespace_options spec(void) {
  kvc_namespace_options o = KVC_NAMESPACE_OPTIONS_INIT;
  o.model = "sec-model";
  o.revision = "r1";
  o.dtype = "fp16";
  o.layers = 2;
  o.kv_heads = 2;
  o.head_dim = 8;
  o.block_tokens = 4;
  return o;
}

static kvc_node *connect_as(const char *addr, const char *tenant, const char *cred, const char *admin) {
  kvc_node_options o = KVC_NODE_OPTIONS_INIT;
  kvc_node *n = NULL;
  kvc_error err;
  o.tenant = tenant;
  o.credential = cred;
  o.admin_token = admin;
  o.timeout_ms = 3000;
  o.max_retries = KVC_NODE_NO_RETRIES;
  if (kvc_node_connect(&n, addr, &o, &err) != KVC_OK) {
    fprintf(stderr, "connect %s: %s\n", addr, err.message);
    failures++;
  }
  return n;
}

/* Every data call as `n`; each must answer `want`. */
static void every_data_call(kvc_node *n, int want, const char *who) {
  kvc_namespace_options o = spec();
  kvc_key key;
  uint8_t buf[kBytes], tiers[3];
  uint32_t tokens[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  kvc_key keys[2];
  size_t blocks = 0, len = 0;
  uint64_t epoch = 0;
  char *json = NULL;
  kvc_error err;
  kvc_buf src = KVC_HOST_BUF(buf, kBytes), dst = KVC_HOST_BUF(buf, kBytes);
  int rc;
  memset(&key, 7, sizeof key);
  memset(buf, 1, sizeof buf);
#define EXPECT(call)                                                                   \
  do {                                                                                 \
    rc = (call);                                                                       \
    if (rc != want) {                                                                  \
      fprintf(stderr, "%s: %s gave %s, want %s\n", who, #call, kvc_status_name(rc),    \
              kvc_status_name(want));                                                  \
      failures++;                                                                      \
    }                                                                                  \
  } while (0)
  EXPECT(kvc_node_stats_json(n, &json, &err));
  kvc_string_free(json);
  EXPECT(kvc_node_match(n, &blocks, tiers, &o, &key, 1, &err));
  EXPECT(kvc_node_match_tokens(n, &blocks, tiers, keys, 2, &o, tokens, 8, &err));
  EXPECT(kvc_node_get(n, &len, &o, &key, 0, &dst, &err));
  EXPECT(kvc_node_put(n, &o, &key, 0, &src, NULL, &err));
  EXPECT(kvc_node_delete(n, &o, &key, &err));
  EXPECT(kvc_node_bump_revision(n, &o, &epoch, &err));
}

/* Every admin call as `n`; each must answer `want`. */
static void every_admin_call(kvc_node *n, int want, const char *who) {
  kvc_tenant_options t = KVC_TENANT_OPTIONS_INIT;
  char *cred = NULL, *json = NULL;
  kvc_error err;
  int rc;
  t.name = "mallory";
  EXPECT(kvc_node_tenant_create(n, &cred, &t, &err));
  CHECK(want != KVC_OK || cred != NULL);
  kvc_string_free(cred);
  EXPECT(kvc_node_tenant_list_json(n, &json, &err));
  kvc_string_free(json);
  EXPECT(kvc_node_tenant_set_quota(n, "acme", 1 << 20, -1, -1, &err));
  EXPECT(kvc_node_tenant_delete(n, "mallory", &err));
}

static kvc_node_server *start(const char *listen, const char *tenants, const char *admin) {
  static kvc_cache_options co;
  kvc_node_server_options so = KVC_NODE_SERVER_OPTIONS_INIT;
  kvc_node_server *s = NULL;
  kvc_error err;
  kvc_cache_options init = KVC_CACHE_OPTIONS_INIT;
  co = init;
  co.host_capacity_bytes = 4u << 20;
  co.tenants_path = tenants;
  so.listen = listen;
  so.cache = &co;
  so.admin_token = admin;
  if (kvc_node_server_start(&s, &so, &err) != KVC_OK) {
    fprintf(stderr, "start %s: %s\n", listen, err.message);
    failures++;
  }
  return s;
}

struct restart_arg {
  char listen[64];
  kvc_node_server *server;
};

static void *restart_later(void *p) {
  struct restart_arg *a = (struct restart_arg *)p;
  sleep_ms(300);
  a->server = start(a->listen, NULL, NULL);
  return NULL;
}

static void test_admin_and_auth(const char *dir) {
  char tenants[512], *acme_cred = NULL, *beta_cred = NULL, *carol_cred = NULL, *json = NULL;
  kvc_tenant_options t = KVC_TENANT_OPTIONS_INIT;
  kvc_error err;
  kvc_node_server *s;
  kvc_node *admin, *acme, *carol, *n;
  const char *addr;
  snprintf(tenants, sizeof tenants, "%s/tenants.json", dir);
  t.name = "acme";
  CHECK(kvc_tenant_create(&acme_cred, tenants, &t, &err) == KVC_OK);
  t.name = "beta";
  CHECK(kvc_tenant_create(&beta_cred, tenants, &t, &err) == KVC_OK);
  s = start("127.0.0.1:0", tenants, "admin-secret-1");
  if (!s) return;
  addr = kvc_node_server_address(s);

  /* The admin creates a tenant; it works at once. */
  admin = connect_as(addr, NULL, NULL, "admin-secret-1");
  t.name = "carol";
  t.isolation = "shared";
  CHECK(kvc_node_tenant_create(admin, &carol_cred, &t, &err) == KVC_OK && carol_cred != NULL);
  CHECK(kvc_node_tenant_create(admin, &json, &t, &err) == KVC_ERR_EXISTS && json == NULL);
  t.name = "bad name!";
  CHECK(kvc_node_tenant_create(admin, &json, &t, &err) == KVC_ERR_INVALID_ARGUMENT);
  carol = connect_as(addr, "carol", carol_cred, NULL);
  {
    kvc_namespace_options o = spec();
    kvc_key key;
    uint8_t buf[kBytes];
    kvc_buf src = KVC_HOST_BUF(buf, kBytes);
    size_t blocks = 0;
    memset(&key, 3, sizeof key);
    memset(buf, 9, sizeof buf);
    CHECK(kvc_node_put(carol, &o, &key, 0, &src, NULL, &err) == KVC_OK);
    CHECK(kvc_node_match(carol, &blocks, NULL, &o, &key, 1, &err) == KVC_OK && blocks == 1);
  }
  /* Its quota changes; the list shows it, and no secret. */
  CHECK(kvc_node_tenant_set_quota(admin, "carol", 1 << 20, -1, 1, &err) == KVC_OK);
  CHECK(kvc_node_tenant_set_quota(admin, "nobody", 1 << 20, -1, 1, &err) == KVC_ERR_NOT_FOUND);
  CHECK(kvc_node_tenant_set_quota(admin, "carol", -1, -1, 2, &err) == KVC_ERR_INVALID_ARGUMENT);
  CHECK(kvc_node_tenant_list_json(admin, &json, &err) == KVC_OK && json != NULL);
  if (json) {
    CHECK(strstr(json, "\"carol\"") != NULL && strstr(json, "\"acme\"") != NULL);
    CHECK(strstr(json, "1048576") != NULL);
    CHECK(strstr(json, "credential") == NULL && strstr(json, "salt") == NULL);
    CHECK(strstr(json, carol_cred) == NULL);
    kvc_string_free(json);
    json = NULL;
  }
  /* Deleted: refused from now on, on the connection it already had. */
  CHECK(kvc_node_tenant_delete(admin, "carol", &err) == KVC_OK);
  CHECK(kvc_node_tenant_delete(admin, "carol", &err) == KVC_ERR_NOT_FOUND);
  every_data_call(carol, KVC_ERR_PERMISSION, "deleted tenant");
  kvc_node_close(carol);

  /* Wrong, missing and other tenants' credentials: every call refused. */
  n = connect_as(addr, "acme", "kvc_wrong", NULL);
  every_data_call(n, KVC_ERR_PERMISSION, "wrong credential");
  every_admin_call(n, KVC_ERR_PERMISSION, "wrong credential");
  kvc_node_close(n);
  n = connect_as(addr, NULL, NULL, NULL);
  every_data_call(n, KVC_ERR_PERMISSION, "no credential");
  every_admin_call(n, KVC_ERR_PERMISSION, "no credential");
  kvc_node_close(n);
  n = connect_as(addr, "acme", beta_cred, NULL);
  every_data_call(n, KVC_ERR_PERMISSION, "other tenant's credential");
  kvc_node_close(n);
  /* A tenant cannot administer, with its credential as the admin token
   * either; a wrong admin token is refused, a right one with a tenant
   * works. */
  acme = connect_as(addr, "acme", acme_cred, NULL);
  CHECK(kvc_node_stats_json(acme, &json, &err) == KVC_OK && json && strstr(json, "\"scope\":\"tenant\""));
  kvc_string_free(json);
  json = NULL;
  kvc_node_close(acme);
  acme = connect_as(addr, "acme", acme_cred, acme_cred);
  every_admin_call(acme, KVC_ERR_PERMISSION, "tenant credential as admin token");
  kvc_node_close(acme);
  n = connect_as(addr, NULL, NULL, "admin-secret-2");
  every_admin_call(n, KVC_ERR_PERMISSION, "wrong admin token");
  kvc_node_close(n);
  n = connect_as(addr, NULL, NULL, "admin-secret-");
  every_admin_call(n, KVC_ERR_PERMISSION, "admin token prefix");
  kvc_node_close(n);
  every_admin_call(admin, KVC_OK, "admin");
  kvc_node_close(admin);
  kvc_node_server_stop(s, 0);

  /* No admin token on the node: admin calls refused whatever is sent. */
  s = start("127.0.0.1:0", tenants, NULL);
  if (s) {
    n = connect_as(kvc_node_server_address(s), NULL, NULL, "admin-secret-1");
    every_admin_call(n, KVC_ERR_PERMISSION, "node without admin token");
    kvc_node_close(n);
    kvc_node_server_stop(s, 0);
  }
  /* No tenants file: admin calls are unsupported. */
  s = start("127.0.0.1:0", NULL, "admin-secret-1");
  if (s) {
    n = connect_as(kvc_node_server_address(s), NULL, NULL, "admin-secret-1");
    every_admin_call(n, KVC_ERR_UNSUPPORTED, "node without tenants file");
    kvc_node_close(n);
    kvc_node_server_stop(s, 0);
  }
  kvc_string_free(acme_cred);
  kvc_string_free(beta_cred);
  kvc_string_free(carol_cred);
}

static void test_retries(void) {
  struct restart_arg a;
  pthread_t th;
  kvc_node_options o = KVC_NODE_OPTIONS_INIT;
  kvc_node *n = NULL, *once = NULL;
  kvc_error err;
  char *json = NULL;
  double t0;
  kvc_namespace_options ns = spec();
  kvc_key key;
  uint8_t buf[kBytes];
  kvc_buf src = KVC_HOST_BUF(buf, kBytes);
  kvc_node_server *s = start("127.0.0.1:0", NULL, NULL);
  if (!s) return;
  memset(&key, 5, sizeof key);
  memset(buf, 2, sizeof buf);
  snprintf(a.listen, sizeof a.listen, "%s", kvc_node_server_address(s));
  o.timeout_ms = 5000;
  o.max_retries = 8;
  CHECK(kvc_node_connect(&n, a.listen, &o, &err) == KVC_OK);
  o.max_retries = KVC_NODE_NO_RETRIES;
  CHECK(kvc_node_connect(&once, a.listen, &o, &err) == KVC_OK);
  if (!n || !once) return;
  CHECK(kvc_node_stats_json(n, &json, &err) == KVC_OK);
  kvc_string_free(json);

  /* Down, back 300 ms later on the same port: the stats call rides it out. */
  kvc_node_server_stop(s, 0);
  CHECK(kvc_node_stats_json(once, &json, &err) == KVC_ERR_UNAVAILABLE);
  CHECK(pthread_create(&th, NULL, restart_later, &a) == 0);
  t0 = now_s();
  CHECK(kvc_node_stats_json(n, &json, &err) == KVC_OK);
  CHECK(now_s() - t0 >= 0.2 && now_s() - t0 < 5.0);
  kvc_string_free(json);
  pthread_join(th, NULL);

  /* A store is never retried: it fails at once while the node is down. */
  kvc_node_server_stop(a.server, 0);
  CHECK(pthread_create(&th, NULL, restart_later, &a) == 0);
  t0 = now_s();
  CHECK(kvc_node_put(n, &ns, &key, 0, &src, NULL, &err) == KVC_ERR_UNAVAILABLE);
  CHECK(now_s() - t0 < 0.25);
  pthread_join(th, NULL);
  CHECK(kvc_node_stats_json(n, &json, &err) == KVC_OK);
  kvc_string_free(json);
  CHECK(kvc_node_put(n, &ns, &key, 0, &src, NULL, &err) == KVC_OK);
  kvc_node_close(n);
  kvc_node_close(once);
  kvc_node_server_stop(a.server, 0);
}

/* The metrics endpoint's bound address for port 0; a second node on that
 * port fails (the port is not shared). */
static void test_metrics_address(void) {
  kvc_cache_options co = KVC_CACHE_OPTIONS_INIT;
  kvc_node_server_options so = KVC_NODE_SERVER_OPTIONS_INIT;
  kvc_node_server *s = NULL, *t = NULL;
  kvc_error err;
  const char *m;
  char taken[64];
  co.host_capacity_bytes = 1u << 20;
  so.listen = "127.0.0.1:0";
  so.cache = &co;
  so.metrics_listen = "127.0.0.1:0";
  CHECK(kvc_node_server_start(&s, &so, &err) == KVC_OK);
  if (!s) return;
  m = kvc_node_server_metrics_address(s);
  CHECK(strncmp(m, "127.0.0.1:", 10) == 0 && strcmp(m, "127.0.0.1:0") != 0);
  snprintf(taken, sizeof taken, "%s", m);
  so.metrics_listen = taken;
  CHECK(kvc_node_server_start(&t, &so, &err) == KVC_ERR_UNAVAILABLE && t == NULL);
  so.metrics_listen = "127.0.0.1";
  CHECK(kvc_node_server_start(&t, &so, &err) == KVC_ERR_INVALID_ARGUMENT && t == NULL);
  kvc_node_server_stop(s, 0);
  so.metrics_listen = NULL;
  CHECK(kvc_node_server_start(&s, &so, &err) == KVC_OK);
  if (s) CHECK(strcmp(kvc_node_server_metrics_address(s), "") == 0);
  kvc_node_server_stop(s, 0);
}

int main(void) {
  char dir[] = "/tmp/kvc-sec-XXXXXX";
  char cmd[600];
  if ((kvc_features() & KVC_FEATURE_GRPC) == 0) {
    printf("SKIP: built without gRPC\n");
    return 77;
  }
  if (mkdtemp(dir) == NULL) return 1;
  test_admin_and_auth(dir);
  test_retries();
  test_metrics_address();
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  if (failures) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("node security: all checks passed\n");
  return 0;
}
