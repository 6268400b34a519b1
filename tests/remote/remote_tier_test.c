/* The remote tier (kvc_cache_options.remote_address), from C: two embedded
 * caches above one node share blocks through it; tenants stay isolated
 * through it; deletes and revision bumps reach it; a node that is stopped,
 * killed (SIGKILL, a `kvc serve` process) or never started makes lookups miss
 * with KVC_MISS_NODE_DOWN within remote_timeout_ms while stores still succeed
 * locally; a restarted node is used again. kvc_load_batch gives the statuses,
 * bytes and stats JSON of kvc_load per key on a twin cache. Without gRPC, a cache with a
 * remote_address is refused with KVC_ERR_UNSUPPORTED. */
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kvc.h"

extern char **environ;

static int failures = 0;

#define CHECK(cond)                                                    \
  do {                                                                 \
    if (!(cond)) {                                                     \
      fprintf(stderr, "%s:%d: CHECK(%s) failed: %s\n", __FILE__,       \
              __LINE__, #cond, kvc_error_last());                      \
      failures++;                                                      \
    }                                                                  \
  } while (0)

enum { kBlocks = 4, kTokens = 16, kBytes = 512, kTimeoutMs = 400 };

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

static uint8_t blocks[kBlocks][kBytes];

static kvc_cache *open_cache(const char *addr, const char *tenants, const char *rtenant, const char *rcred) {
  kvc_cache_options co = KVC_CACHE_OPTIONS_INIT;
  kvc_cache *c = NULL;
  kvc_error err;
  co.host_capacity_bytes = 1u << 20;
  co.tenants_path = tenants;
  co.remote_address = addr;
  co.remote_tenant = rtenant;
  co.remote_credential = rcred;
  co.remote_timeout_ms = kTimeoutMs;
  CHECK(kvc_cache_open(&c, &co, &err) == KVC_OK);
  return c;
}

static kvc_namespace *open_ns(kvc_cache *c, const char *model, const char *tenant, const char *cred) {
  kvc_namespace_options o = spec(model);
  kvc_namespace *ns = NULL;
  kvc_error err;
  o.tenant = tenant;
  o.credential = cred;
  if (c == NULL) return NULL;
  CHECK(kvc_namespace_open(&ns, c, &o, &err) == KVC_OK);
  return ns;
}

static void keys_of(kvc_namespace *ns, kvc_key *keys, uint32_t base) {
  uint32_t tokens[kTokens];
  size_t n = 0;
  int i;
  kvc_error err;
  for (i = 0; i < kTokens; i++) tokens[i] = base + (uint32_t)i;
  CHECK(kvc_keys_compute(ns, keys, kBlocks, &n, tokens, kTokens, &err) == KVC_OK && n == kBlocks);
}

static void store_all(kvc_namespace *ns, const kvc_key *keys, int n) {
  int i;
  kvc_error err;
  for (i = 0; i < n; i++) {
    kvc_buf src = KVC_HOST_BUF(blocks[i], kBytes);
    CHECK(kvc_store(ns, &keys[i], 0, &src, NULL, &err) == KVC_OK);
  }
}

static size_t match(kvc_namespace *ns, const kvc_key *keys, uint8_t *tiers) {
  size_t m = 99;
  kvc_error err;
  CHECK(kvc_match(ns, &m, tiers, keys, kBlocks, &err) == KVC_OK);
  return m;
}

static kvc_stats stats_of(kvc_cache *c) {
  kvc_stats s = KVC_STATS_INIT;
  kvc_error err;
  CHECK(kvc_cache_stats(c, &s, &err) == KVC_OK);
  return s;
}

/* The value of "remote": {... "name": N ...} in the cache's stats JSON; -1 if absent. */
static long remote_stat(kvc_cache *c, const char *name) {
  char *json = NULL, pat[64];
  const char *r, *p;
  long v = -1;
  kvc_error err;
  if (kvc_cache_stats_json(c, &json, &err) != KVC_OK) return -1;
  r = strstr(json, "\"remote\":{");
  snprintf(pat, sizeof pat, "\"%s\":", name);
  if (r && (p = strstr(r, pat)) != NULL) v = strtol(p + strlen(pat), NULL, 10);
  kvc_string_free(json);
  return v;
}

static kvc_node_server *start_node(const char *listen, const char *tenants) {
  kvc_cache_options co = KVC_CACHE_OPTIONS_INIT;
  kvc_node_server_options so = KVC_NODE_SERVER_OPTIONS_INIT;
  kvc_node_server *s = NULL;
  kvc_error err;
  co.host_capacity_bytes = 4u << 20;
  co.tenants_path = tenants;
  so.listen = listen;
  so.cache = &co;
  CHECK(kvc_node_server_start(&s, &so, &err) == KVC_OK);
  return s;
}

/* Two caches above one node: what one stores the other matches (REMOTE),
 * loads byte for byte, views, and then holds in its own DRAM. */
static void test_sharing(const char *addr) {
  kvc_cache *a = open_cache(addr, NULL, NULL, NULL), *b = open_cache(addr, NULL, NULL, NULL);
  kvc_namespace *na = open_ns(a, "share", NULL, NULL), *nb = open_ns(b, "share", NULL, NULL);
  kvc_key keys[kBlocks];
  uint8_t tiers[kBlocks], back[kBytes];
  kvc_error err;
  int i;
  if (!na || !nb) return;
  keys_of(na, keys, 100);
  CHECK(match(nb, keys, tiers) == 0 && tiers[0] == KVC_TIER_NONE);
  store_all(na, keys, 3);
  CHECK(kvc_cache_flush(a, &err) == KVC_OK);
  CHECK(remote_stat(a, "sends") == 3 && remote_stat(a, "sends_dropped") == 0);
  CHECK(match(na, keys, tiers) == 3 && tiers[0] == KVC_TIER_HOST);
  CHECK(match(nb, keys, tiers) == 3);
  for (i = 0; i < 3; i++) CHECK(tiers[i] == KVC_TIER_REMOTE);
  CHECK(tiers[3] == KVC_TIER_NONE);
  for (i = 0; i < 2; i++) {
    kvc_buf dst = KVC_HOST_BUF(back, kBytes);
    memset(back, 0, sizeof back);
    CHECK(kvc_load(nb, &keys[i], 0, &dst, &err) == KVC_OK);
    CHECK(memcmp(back, blocks[i], kBytes) == 0);
  }
  {
    kvc_view v;
    CHECK(kvc_view_acquire(nb, &v, &keys[2], 0, 0, &err) == KVC_OK);
    CHECK(v.len == kBytes && v.data && memcmp(v.data, blocks[2], kBytes) == 0);
    CHECK(kvc_view_release(nb, &v, &err) == KVC_OK);
  }
  /* Promoted into b's DRAM: now a local hit, and not sent back. */
  CHECK(match(nb, keys, tiers) == 3 && tiers[0] == KVC_TIER_HOST && tiers[2] == KVC_TIER_HOST);
  CHECK(remote_stat(b, "promotions") == 3 && remote_stat(b, "hits") >= 6);
  CHECK(remote_stat(b, "bytes_loaded") == 3 * kBytes);
  CHECK(kvc_cache_flush(b, &err) == KVC_OK);
  CHECK(remote_stat(b, "sends") == 0);
  {
    kvc_buf dst = KVC_HOST_BUF(back, kBytes);
    CHECK(kvc_load(nb, &keys[3], 0, &dst, &err) == KVC_ERR_NOT_FOUND);
    CHECK(remote_stat(b, "misses") >= 1 && remote_stat(b, "node_down") == 0);
  }
  /* Deletes and bumps through a reach the node: b, which holds nothing of
   * this chain locally, stops seeing it. */
  {
    kvc_key k2[kBlocks];
    keys_of(na, k2, 5000);
    store_all(na, k2, 2);
    CHECK(kvc_cache_flush(a, &err) == KVC_OK);
    CHECK(match(nb, k2, tiers) == 2 && tiers[1] == KVC_TIER_REMOTE);
    CHECK(kvc_delete(na, &k2[1], &err) == KVC_OK);
    CHECK(match(nb, k2, tiers) == 1);
    CHECK(kvc_delete(na, &k2[1], &err) == KVC_ERR_NOT_FOUND);
    /* a stores and at once deletes: the queued send is dropped, not resurrected. */
    store_all(na, k2 + 1, 1);
    CHECK(kvc_delete(na, &k2[1], &err) == KVC_OK);
    CHECK(kvc_cache_flush(a, &err) == KVC_OK);
    CHECK(match(nb, k2, tiers) == 1);
    /* A revision bump through a: b no longer sees the node's older blocks. */
    CHECK(kvc_namespace_bump_revision(na, NULL, &err) == KVC_OK);
    CHECK(match(nb, k2, tiers) == 0);
    CHECK(match(na, k2, tiers) == 0);
  }
  CHECK(stats_of(b).misses_by_reason[KVC_MISS_NODE_DOWN] == 0);
  kvc_namespace_close(na);
  kvc_namespace_close(nb);
  kvc_cache_close(a);
  kvc_cache_close(b);
}

/* Tenants: each cache makes a namespace's requests as its tenant; an
 * isolated tenant's blocks cannot be seen by another through the node; a
 * cache whose default identity is refused only misses. */
static void test_tenants(const char *tenants) {
  char *cred1 = NULL, *cred2 = NULL;
  kvc_tenant_options to = KVC_TENANT_OPTIONS_INIT;
  kvc_error err;
  kvc_node_server *server;
  kvc_key keys[kBlocks];
  uint8_t tiers[kBlocks], back[kBytes];
  to.name = "t1";
  CHECK(kvc_tenant_create(&cred1, tenants, &to, &err) == KVC_OK);
  to.name = "t2";
  CHECK(kvc_tenant_create(&cred2, tenants, &to, &err) == KVC_OK);
  server = start_node("127.0.0.1:0", tenants);
  if (!server || !cred1 || !cred2) return;
  {
    const char *addr = kvc_node_server_address(server);
    kvc_cache *a = open_cache(addr, tenants, NULL, NULL), *b = open_cache(addr, tenants, NULL, NULL);
    kvc_namespace *a1 = open_ns(a, "ten", "t1", cred1), *b1 = open_ns(b, "ten", "t1", cred1);
    kvc_namespace *b2 = open_ns(b, "ten", "t2", cred2);
    if (a1 && b1 && b2) {
      keys_of(a1, keys, 7);
      store_all(a1, keys, 2);
      CHECK(kvc_cache_flush(a, &err) == KVC_OK);
      CHECK(remote_stat(a, "sends") == 2);
      CHECK(match(b1, keys, tiers) == 2 && tiers[0] == KVC_TIER_REMOTE);
      /* t2 asks for t1's very keys: the node keeps them apart. */
      CHECK(match(b2, keys, tiers) == 0);
      {
        kvc_buf dst = KVC_HOST_BUF(back, kBytes);
        CHECK(kvc_load(b2, &keys[0], 0, &dst, &err) == KVC_ERR_NOT_FOUND);
        CHECK(kvc_load(b1, &keys[0], 0, &dst, &err) == KVC_OK && memcmp(back, blocks[0], kBytes) == 0);
      }
    }
    kvc_cache_close(a);
    kvc_cache_close(b);
    /* A cache without tenants of its own, acting as t1 by default, and one
     * with a wrong default credential: refused, a miss, never a hang. */
    {
      kvc_cache *c = open_cache(addr, NULL, "t1", cred1), *w = open_cache(addr, NULL, "t1", "wrong");
      kvc_namespace *nc = open_ns(c, "ten", NULL, NULL), *nw = open_ns(w, "ten", NULL, NULL);
      if (nc && nw) {
        CHECK(match(nc, keys, tiers) == 2 && tiers[1] == KVC_TIER_REMOTE);
        CHECK(match(nw, keys, tiers) == 0);
        CHECK(remote_stat(w, "refused") >= 1 && remote_stat(w, "node_down") == 0);
        store_all(nw, keys, 1);
        CHECK(kvc_cache_flush(w, &err) == KVC_OK);
        CHECK(remote_stat(w, "send_failures") == 1 && remote_stat(w, "sends") == 0);
      }
      kvc_cache_close(c);
      kvc_cache_close(w);
    }
  }
  kvc_node_server_stop(server, 1000);
  kvc_string_free(cred1);
  kvc_string_free(cred2);
}

/* Two processes: a child (this program, --writer ADDR) stores through its
 * own cache and exits; this process's cache then finds the blocks. */
static int writer_main(const char *addr) {
  kvc_cache *a = open_cache(addr, NULL, NULL, NULL);
  kvc_namespace *na = open_ns(a, "procs", NULL, NULL);
  kvc_key keys[kBlocks];
  kvc_error err;
  if (!na) return 1;
  keys_of(na, keys, 7000);
  store_all(na, keys, 3);
  CHECK(kvc_cache_flush(a, &err) == KVC_OK);
  CHECK(remote_stat(a, "sends") == 3);
  kvc_namespace_close(na);
  kvc_cache_close(a);
  return failures ? 1 : 0;
}

static void test_processes(const char *addr) {
  char *argv[] = {"/proc/self/exe", "--writer", (char *)addr, NULL};
  pid_t pid = 0;
  int status = -1, i;
  kvc_key keys[kBlocks];
  uint8_t tiers[kBlocks], back[kBytes];
  kvc_error err;
  kvc_cache *b;
  kvc_namespace *nb;
  CHECK(posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, environ) == 0);
  CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
  b = open_cache(addr, NULL, NULL, NULL);
  nb = open_ns(b, "procs", NULL, NULL);
  if (nb) {
    keys_of(nb, keys, 7000);
    CHECK(match(nb, keys, tiers) == 3 && tiers[0] == KVC_TIER_REMOTE && tiers[2] == KVC_TIER_REMOTE);
    for (i = 0; i < 3; i++) {
      kvc_buf dst = KVC_HOST_BUF(back, kBytes);
      memset(back, 0, sizeof back);
      CHECK(kvc_load(nb, &keys[i], 0, &dst, &err) == KVC_OK && memcmp(back, blocks[i], kBytes) == 0);
    }
  }
  kvc_namespace_close(nb);
  kvc_cache_close(b);
}

static void phase(const char *name) {
  static double last = 0;
  const double t = now_s();
  if (last != 0) fprintf(stderr, "phase %s: %.3f s\n", name, t - last);
  last = t;
}

/* A lookup that found the node down, and the ones during the back-off. */
static void expect_down(kvc_cache *c, kvc_namespace *ns, const kvc_key *keys, const char *what) {
  kvc_error err;
  uint8_t back[kBytes], tiers[kBlocks];
  kvc_buf dst = KVC_HOST_BUF(back, kBytes);
  const uint64_t before = stats_of(c).misses_by_reason[KVC_MISS_NODE_DOWN];
  double t = now_s(), dt;
  CHECK(match(ns, keys, tiers) == 0);
  dt = now_s() - t;
  fprintf(stderr, "%s: first match %.3f s", what, dt);
  if (dt > kTimeoutMs / 1000.0 + 1.0) {
    fprintf(stderr, "%s: a match took %.3f s with the node down\n", what, dt);
    failures++;
  }
  t = now_s();
  CHECK(kvc_load(ns, &keys[0], 0, &dst, &err) == KVC_ERR_NOT_FOUND);
  dt = now_s() - t;
  fprintf(stderr, ", load during the back-off %.6f s\n", dt);
  if (dt > 0.1) { /* backing off: no new attempt */
    fprintf(stderr, "%s: a load during the back-off took %.3f s\n", what, dt);
    failures++;
  }
  CHECK(stats_of(c).misses_by_reason[KVC_MISS_NODE_DOWN] == before + 2);
}

/* A node stopped (gracefully) and one never started. */
static void test_down(void) {
  kvc_node_server *server = start_node("127.0.0.1:0", NULL);
  char addr[64];
  kvc_key keys[kBlocks];
  kvc_error err;
  uint8_t tiers[kBlocks];
  if (!server) return;
  snprintf(addr, sizeof addr, "%s", kvc_node_server_address(server));
  {
    kvc_cache *a = open_cache(addr, NULL, NULL, NULL), *b = open_cache(addr, NULL, NULL, NULL);
    kvc_namespace *na = open_ns(a, "down", NULL, NULL), *nb = open_ns(b, "down", NULL, NULL);
    if (na && nb) {
      keys_of(na, keys, 900);
      store_all(na, keys, 2);
      CHECK(kvc_cache_flush(a, &err) == KVC_OK);
      CHECK(match(nb, keys, tiers) == 2);
      kvc_node_server_stop(server, 500);
      expect_down(b, nb, keys, "stopped node");
      /* Stores still succeed locally; the queue gives them up quickly. */
      {
        kvc_key k2[kBlocks];
        keys_of(na, k2, 990);
        store_all(na, k2, 3);
        CHECK(kvc_cache_flush(a, &err) == KVC_OK);
        CHECK(match(na, k2, tiers) == 3 && tiers[2] == KVC_TIER_HOST);
        CHECK(remote_stat(a, "send_failures") == 3);
      }
    }
    kvc_cache_close(a);
    kvc_cache_close(b);
  }
  {
    /* Never started: the open succeeds, lookups miss. */
    kvc_cache *c = open_cache(addr, NULL, NULL, NULL);
    kvc_namespace *nc = open_ns(c, "down", NULL, NULL);
    if (nc) {
      keys_of(nc, keys, 900);
      expect_down(c, nc, keys, "no node");
    }
    kvc_cache_close(c);
  }
}

/* `kvc serve` as a process: SIGKILL it, then start it again on its port. */
static pid_t spawn_serve(const char *bin, const char *listen, const char *ready) {
  pid_t pid = 0;
  char *argv[] = {(char *)bin, "serve", "--listen", (char *)listen, "--ready-file", (char *)ready,
                  "--host-capacity", "8MiB", "--shutdown-grace-ms", "200", NULL};
  unlink(ready);
  if (posix_spawn(&pid, bin, NULL, NULL, argv, environ) != 0) return 0;
  return pid;
}

static int wait_ready(const char *ready, char *addr, size_t cap) {
  int i;
  for (i = 0; i < 200; i++) {
    FILE *f = fopen(ready, "r");
    if (f) {
      int ok = fgets(addr, (int)cap, f) != NULL;
      fclose(f);
      if (ok) {
        addr[strcspn(addr, "\n")] = 0;
        return 1;
      }
    }
    sleep_ms(50);
  }
  return 0;
}

static void test_killed(const char *bin, const char *dir) {
  char ready[512], addr[128];
  kvc_key keys[kBlocks];
  kvc_error err;
  uint8_t tiers[kBlocks];
  pid_t pid;
  int status = 0;
  snprintf(ready, sizeof ready, "%s/ready", dir);
  pid = spawn_serve(bin, "127.0.0.1:0", ready);
  CHECK(pid > 0);
  if (pid <= 0) return;
  if (!wait_ready(ready, addr, sizeof addr)) {
    fprintf(stderr, "kvc serve did not become ready\n");
    failures++;
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return;
  }
  {
    kvc_cache *a = open_cache(addr, NULL, NULL, NULL), *b = open_cache(addr, NULL, NULL, NULL);
    kvc_namespace *na = open_ns(a, "kill", NULL, NULL), *nb = open_ns(b, "kill", NULL, NULL);
    if (na && nb) {
      keys_of(na, keys, 300);
      store_all(na, keys, 2);
      CHECK(kvc_cache_flush(a, &err) == KVC_OK);
      CHECK(match(nb, keys, tiers) == 2 && tiers[0] == KVC_TIER_REMOTE);
      CHECK(kill(pid, SIGKILL) == 0);
      CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status));
      expect_down(b, nb, keys, "killed node");
      {
        kvc_key k2[kBlocks];
        keys_of(na, k2, 400);
        store_all(na, k2, 2);  /* local stores still succeed */
        CHECK(kvc_cache_flush(a, &err) == KVC_OK);
        CHECK(match(na, k2, tiers) == 2);
      }
      /* The node comes back on the same port (empty: no SSD tier). */
      pid = spawn_serve(bin, addr, ready);
      CHECK(pid > 0 && wait_ready(ready, addr, sizeof addr));
      sleep_ms(1100); /* past the back-off */
      store_all(na, keys + 2, 1);
      CHECK(kvc_cache_flush(a, &err) == KVC_OK);
      if (remote_stat(a, "sends") < 3) { /* the first send may have met the back-off: once more */
        sleep_ms(1100);
        store_all(na, keys + 3, 1);
        CHECK(kvc_cache_flush(a, &err) == KVC_OK);
      }
      {
        size_t m = 0;
        double t = now_s();
        do { /* b's back-off may still be running */
          CHECK(kvc_match(nb, &m, tiers, keys + 2, 1, &err) == KVC_OK);
          if (m == 1) break;
          sleep_ms(100);
        } while (now_s() - t < 3.0);
        CHECK(m == 1 && tiers[0] == KVC_TIER_REMOTE);
      }
      if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, &status, 0);
      }
    }
    kvc_cache_close(a);
    kvc_cache_close(b);
  }
}

/* kvc_load_batch on one cache against kvc_load per key on its twin, above
 * one node: keys only on the node, stored in the cache, and absent, mixed;
 * the same statuses, bytes and kvc_cache_stats_json. */
static void test_load_batch(const char *addr) {
  kvc_cache *w = open_cache(addr, NULL, NULL, NULL);
  kvc_cache *a = open_cache(addr, NULL, NULL, NULL), *b = open_cache(addr, NULL, NULL, NULL);
  kvc_namespace *nw = open_ns(w, "batch", NULL, NULL);
  kvc_namespace *na = open_ns(a, "batch", NULL, NULL), *nb = open_ns(b, "batch", NULL, NULL);
  kvc_key keys[kBlocks], order[kBlocks];
  kvc_buf dsts[kBlocks];
  static uint8_t got_a[kBlocks][kBytes], got_b[kBlocks][kBytes];
  const int from[kBlocks] = {2, 0, 3, 1}; /* local, node, absent, node */
  int32_t st[kBlocks];
  size_t loaded = 99;
  char *ja = NULL, *jb = NULL;
  kvc_error err;
  int i;
  if (!nw || !na || !nb) return;
  keys_of(nw, keys, 300);
  store_all(nw, keys, 2); /* keys 0 and 1: on the node only, for a and b */
  CHECK(kvc_cache_flush(w, &err) == KVC_OK);
  {
    kvc_buf src = KVC_HOST_BUF(blocks[2], kBytes);
    CHECK(kvc_store(na, &keys[2], 0, &src, NULL, &err) == KVC_OK);
    CHECK(kvc_store(nb, &keys[2], 0, &src, NULL, &err) == KVC_OK);
  }
  CHECK(kvc_cache_flush(a, &err) == KVC_OK && kvc_cache_flush(b, &err) == KVC_OK);
  for (i = 0; i < kBlocks; i++) {
    order[i] = keys[from[i]];
    dsts[i] = (kvc_buf)KVC_HOST_BUF(got_a[i], kBytes);
  }
  CHECK(kvc_load_batch(na, st, &loaded, order, kBlocks, 0, dsts, &err) == KVC_OK);
  CHECK(loaded == 2);
  for (i = 0; i < kBlocks; i++) {
    kvc_buf dst = KVC_HOST_BUF(got_b[i], kBytes);
    const int one = kvc_load(nb, &order[i], 0, &dst, &err);
    CHECK(st[i] == one);
    CHECK(st[i] == (from[i] == 3 ? KVC_ERR_NOT_FOUND : KVC_OK));
    if (st[i] == KVC_OK)
      CHECK(memcmp(got_a[i], blocks[from[i]], kBytes) == 0 && memcmp(got_b[i], got_a[i], kBytes) == 0);
  }
  CHECK(remote_stat(a, "hits") == 2 && remote_stat(a, "promotions") == 2);
  CHECK(kvc_cache_stats_json(a, &ja, &err) == KVC_OK && kvc_cache_stats_json(b, &jb, &err) == KVC_OK);
  CHECK(ja && jb && strcmp(ja, jb) == 0);
  if (ja && jb && strcmp(ja, jb) != 0) fprintf(stderr, "batch: %s\none by one: %s\n", ja, jb);
  kvc_string_free(ja);
  kvc_string_free(jb);
  kvc_namespace_close(nw);
  kvc_namespace_close(na);
  kvc_namespace_close(nb);
  kvc_cache_close(w);
  kvc_cache_close(a);
  kvc_cache_close(b);
}

int main(int argc, char **argv) {
  char dir[] = "/tmp/kvc-remote-XXXXXX";
  char tenants[600];
  int i, j;
  kvc_error err;
  for (i = 0; i < kBlocks; i++)
    for (j = 0; j < kBytes; j++) blocks[i][j] = (uint8_t)(i * 37 + j * 11 + 1);
  if (argc == 3 && strcmp(argv[1], "--writer") == 0) return writer_main(argv[2]);
  if (!(kvc_features() & KVC_FEATURE_GRPC)) {
    kvc_cache_options co = KVC_CACHE_OPTIONS_INIT;
    kvc_cache *c = NULL;
    co.host_capacity_bytes = 1u << 20;
    co.remote_address = "127.0.0.1:1";
    CHECK(kvc_cache_open(&c, &co, &err) == KVC_ERR_UNSUPPORTED && c == NULL);
    CHECK(strstr(err.message, "without gRPC") != NULL);
    if (failures) fprintf(stderr, "%d failure(s)\n", failures);
    return failures ? 1 : 0;
  }
  if (mkdtemp(dir) == NULL) return 1;
  snprintf(tenants, sizeof tenants, "%s/tenants.json", dir);
  {
    kvc_cache_options co = KVC_CACHE_OPTIONS_INIT;
    kvc_cache *c = NULL;
    co.host_capacity_bytes = 1u << 20;
    co.remote_address = "";
    CHECK(kvc_cache_open(&c, &co, &err) == KVC_ERR_INVALID_ARGUMENT && c == NULL);
    co.remote_address = NULL;
    co.remote_tenant = "t1";
    CHECK(kvc_cache_open(&c, &co, &err) == KVC_ERR_INVALID_ARGUMENT && c == NULL);
    co.remote_address = "127.0.0.1:1";
    co.remote_tenant = NULL;
    co.remote_tls_ca_path = "/nonexistent/kvc-ca.pem";
    CHECK(kvc_cache_open(&c, &co, &err) == KVC_ERR_INVALID_ARGUMENT && c == NULL);
    CHECK(strstr(err.message, "remote_tls_ca_path") != NULL);
  }
  phase("start");
  {
    kvc_node_server *server = start_node("127.0.0.1:0", NULL);
    if (server) {
      test_sharing(kvc_node_server_address(server));
      phase("sharing");
      test_load_batch(kvc_node_server_address(server));
      phase("load batch");
      test_processes(kvc_node_server_address(server));
      phase("processes");
      kvc_node_server_stop(server, 1000);
    }
  }
  phase("tenants-before");
  test_tenants(tenants);
  phase("tenants");
  test_down();
  phase("down");
  if (getenv("KVC_BIN") != NULL && getenv("KVC_BIN")[0] != 0) {
    test_killed(getenv("KVC_BIN"), dir);
    phase("killed");
  } else {
    fprintf(stderr, "SKIPPED: the kill -9 part needs KVC_BIN (the kvc CLI)\n");
  }
  {
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  }
  phase("cleanup");
  if (failures) fprintf(stderr, "%d failure(s)\n", failures);
  return failures ? 1 : 0;
}
