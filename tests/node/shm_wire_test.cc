// Bad peers and dead peers on the same-host path. An in-process node (C
// API, tenants file, unix_path) faces:
//  - a client killed with SIGKILL while it holds a pin and a half-written
//    reservation (shm_holder): the node releases both at once, not after
//    the 30 s reservation deadline;
//  - raw frames the real client never sends: garbage, a request before
//    hello, a wrong credential, oversized lengths, unknown ops, malformed
//    bodies, unopened namespaces, commits and releases of ids it does not
//    hold, a second hello, a truncated frame, a disconnect mid-store;
//  - the batch ops (kLoadBatch, kStoreBatch*): answers equal to single
//    loads', bad batch frames, the per-connection caps on pins and
//    reservations item by item, and a SIGKILLed client holding batch pins
//    and batch reservations;
//  - clients facing a node that does not answer: kvc_node_connect and calls
//    end within their deadlines.
// Throughout, nothing partial becomes visible and the node keeps serving.
// Usage: shm_wire_test PATH_OF_SHM_HOLDER
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "kvc.h"
#include "shm_raw.h"

extern char** environ;

namespace {

int failures = 0;

#define CHECK(cond)                                                                                    \
  do {                                                                                                 \
    if (!(cond)) {                                                                                     \
      std::fprintf(stderr, "%s:%d: CHECK(%s) failed (last kvc error: %s)\n", __FILE__, __LINE__, #cond, \
                   kvc_error_last());                                                                  \
      failures++;                                                                                      \
    }                                                                                                  \
  } while (0)

using shmtest::RawConn;
using shmtest::Reply;
using shmtest::Writer;
namespace shm = kvc::net::shm;

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

kvc_namespace_options Space() {
  kvc_namespace_options o = KVC_NAMESPACE_OPTIONS_INIT;
  o.model = "shm-wire";
  o.revision = "r1";
  o.dtype = "fp16";
  o.layers = 2;
  o.kv_heads = 2;
  o.head_dim = 8;
  o.block_tokens = 4;
  return o;
}

kvc_key KeyOf(uint8_t fill) {
  kvc_key k;
  std::memset(k.bytes, fill, sizeof k.bytes);
  return k;
}

// A top-level counter of the node's stats ("pins", "pending"), or -1.
long long Stat(kvc_node* n, const char* name) {
  char* json = nullptr;
  kvc_error err;
  if (kvc_node_stats_json(n, &json, &err) != KVC_OK) return -1;
  const auto j = nlohmann::json::parse(json, nullptr, false);
  kvc_string_free(json);
  return j.is_object() && j.contains(name) && j[name].is_number() ? j[name].get<long long>() : -1;
}

// Any number of the node's stats by JSON pointer ("/tiers/host/used_bytes"),
// or -1.
long long StatAt(kvc_node* n, const char* pointer) {
  char* json = nullptr;
  kvc_error err;
  if (kvc_node_stats_json(n, &json, &err) != KVC_OK) return -1;
  const auto j = nlohmann::json::parse(json, nullptr, false);
  kvc_string_free(json);
  const nlohmann::json::json_pointer p(pointer);
  return j.is_object() && j.contains(p) && j[p].is_number() ? j[p].get<long long>() : -1;
}

// Waits (up to 3 s) until the node holds no pin and no reservation.
bool Drained(kvc_node* n) {
  for (int i = 0; i < 300; ++i) {
    if (Stat(n, "pins") == 0 && Stat(n, "pending") == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

int Put(kvc_node* n, uint8_t key, uint8_t fill) {
  uint8_t b[shmtest::kShardBytes];
  std::memset(b, fill, sizeof b);
  kvc_namespace_options o = Space();
  kvc_key k = KeyOf(key);
  kvc_buf src = KVC_HOST_BUF(b, sizeof b);
  kvc_error err;
  return kvc_node_put(n, &o, &k, 0, &src, nullptr, &err);
}

// Whether block `key` reads back whole and filled with `fill`.
bool Holds(kvc_node* n, uint8_t key, uint8_t fill) {
  uint8_t b[shmtest::kShardBytes];
  size_t len = 0;
  kvc_namespace_options o = Space();
  kvc_key k = KeyOf(key);
  kvc_buf dst = KVC_HOST_BUF(b, sizeof b);
  kvc_error err;
  if (kvc_node_get(n, &len, &o, &k, 0, &dst, &err) != KVC_OK || len != sizeof b) return false;
  for (uint8_t c : b)
    if (c != fill) return false;
  return true;
}

size_t Matched(kvc_node* n, uint8_t key) {
  size_t m = 99;
  kvc_namespace_options o = Space();
  kvc_key k = KeyOf(key);
  kvc_error err;
  if (kvc_node_match(n, &m, nullptr, &o, &k, 1, &err) != KVC_OK) return 99;
  return m;
}

void KilledHolder(const char* holder, const std::string& sock, const char* cred, kvc_node* n) {
  CHECK(Put(n, 0x11, 0x11) == KVC_OK);
  int out[2];
  CHECK(pipe(out) == 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_addclose(&fa, out[0]);
  std::string s = sock, t = "alice", c = cred;
  char* argv[] = {const_cast<char*>(holder), s.data(), t.data(), c.data(), nullptr};
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, holder, &fa, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  CHECK(rc == 0);
  if (rc != 0) return;
  char line[128] = {};
  pollfd p{out[0], POLLIN, 0};
  const bool ready = poll(&p, 1, 5000) > 0 && read(out[0], line, sizeof line - 1) > 0 && std::strncmp(line, "ready", 5) == 0;
  CHECK(ready);
  close(out[0]);
  if (ready) {
    // It holds them: a pin, and the reservation that makes a second writer
    // of 0x22 wait.
    CHECK(Stat(n, "pins") >= 1);
    CHECK(Stat(n, "pending") >= 1);
    CHECK(Put(n, 0x22, 0x77) == KVC_ERR_PENDING);
    CHECK(Matched(n, 0x22) == 0);
  }
  const double t0 = Now();
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  // Released with the connection, long before the 30 s deadline.
  CHECK(Drained(n));
  CHECK(Put(n, 0x22, 0x77) == KVC_OK);
  CHECK(Now() - t0 < 5.0);
  CHECK(Holds(n, 0x22, 0x77));  // the new writer's bytes, not the dead one's half
  kvc_error err;
  kvc_namespace_options o = Space();
  kvc_key a = KeyOf(0x11);
  CHECK(kvc_node_delete(n, &o, &a, &err) == KVC_OK);
  CHECK(Matched(n, 0x11) == 0);
}

// The same with the batch ops: a client that pinned two blocks with one
// kLoadBatch and reserved two with one kStoreBatchBegin (half written) is
// SIGKILLed; the node gives everything back at once: the reserved keys take
// a new writer, and the host tier's bytes are what they were before it came.
void KilledBatchHolder(const char* holder, const std::string& sock, const char* cred, kvc_node* n) {
  kvc_error err;
  kvc_namespace_options o = Space();
  for (uint8_t k : {0x22, 0x24}) {  // left by KilledHolder, or none
    kvc_key key = KeyOf(k);
    (void)kvc_node_delete(n, &o, &key, &err);
  }
  CHECK(Put(n, 0x11, 0x11) == KVC_OK && Put(n, 0x13, 0x13) == KVC_OK);
  CHECK(Drained(n));
  const long long used0 = StatAt(n, "/tiers/host/used_bytes"), blocks0 = StatAt(n, "/tiers/host/blocks");
  CHECK(used0 > 0 && blocks0 > 0);
  int out[2];
  CHECK(pipe(out) == 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_addclose(&fa, out[0]);
  std::string s = sock, t = "alice", c = cred, mode = "batch";
  char* argv[] = {const_cast<char*>(holder), s.data(), t.data(), c.data(), mode.data(), nullptr};
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, holder, &fa, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  CHECK(rc == 0);
  if (rc != 0) return;
  char line[128] = {};
  pollfd p{out[0], POLLIN, 0};
  const bool ready = poll(&p, 1, 5000) > 0 && read(out[0], line, sizeof line - 1) > 0 && std::strncmp(line, "ready", 5) == 0;
  CHECK(ready);
  close(out[0]);
  if (ready) {
    CHECK(Stat(n, "pins") == 2);
    CHECK(Stat(n, "pending") == 2);
    CHECK(StatAt(n, "/tiers/host/used_bytes") > used0);  // the reservations' bytes
    CHECK(Put(n, 0x22, 0x77) == KVC_ERR_PENDING);
    CHECK(Put(n, 0x24, 0x78) == KVC_ERR_PENDING);
    CHECK(Matched(n, 0x22) == 0);
  }
  const double t0 = Now();
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  CHECK(Drained(n));
  CHECK(StatAt(n, "/tiers/host/used_bytes") == used0);
  CHECK(StatAt(n, "/tiers/host/blocks") == blocks0);
  CHECK(Put(n, 0x22, 0x77) == KVC_OK && Put(n, 0x24, 0x78) == KVC_OK);
  CHECK(Now() - t0 < 5.0);
  CHECK(Holds(n, 0x22, 0x77) && Holds(n, 0x24, 0x78));
  for (uint8_t k : {0x11, 0x13, 0x22, 0x24}) {
    kvc_key key = KeyOf(k);
    CHECK(kvc_node_delete(n, &o, &key, &err) == KVC_OK);
  }
}

// A kLoadBatch / kStoreBatchBegin body of `keys` (16 bytes each) after the
// fixed fields, with n as given (which need not be keys' count).
Writer LoadBatchBody(uint32_t ns, uint32_t shard, uint32_t n, const std::vector<std::array<uint8_t, 16>>& keys) {
  Writer w;
  w.u32(ns);
  w.u32(shard);
  w.u32(0);
  w.u32(n);
  for (const auto& k : keys) w.raw(k.data(), 16);
  return w;
}

std::array<uint8_t, 16> KeyN(uint32_t i, uint8_t tag) {
  std::array<uint8_t, 16> k{};
  k[0] = tag;
  std::memcpy(k.data() + 1, &i, 4);
  return k;
}

// The batch ops over raw frames: answers equal single kLoad's; bad frames
// get a clear status and the connection goes on; the per-connection caps on
// pins and reservations hold item by item.
void Batches(const std::string& sock, const char* cred, kvc_node* n) {
  RawConn c;
  CHECK(c.Connect(sock) && c.Hello("alice", cred) == 0);
  const uint32_t ns = c.Open();
  CHECK(ns != UINT32_MAX);
  for (uint8_t k : {0xa1, 0xa2, 0xa3}) CHECK(Put(n, k, k) == KVC_OK);
  {  // a batch answers as single loads do, item by item, in order
    const std::vector<uint8_t> keys = {0xa1, 0x99, 0xa2, 0xa3, 0xa1};
    const auto b = c.LoadBatch(ns, keys);
    CHECK(b.code == 0 && b.items.size() == keys.size());
    std::vector<uint64_t> pins;
    for (size_t i = 0; i < b.items.size() && i < keys.size(); ++i) {
      const auto& it = b.items[i];
      int32_t code = 0;
      uint64_t pin = 0, off = 0, size = 0;
      c.Load(ns, keys[i], &code, &pin, &off, &size);
      CHECK(it.code == code);
      if (code != 0) {
        CHECK(code == KVC_ERR_NOT_FOUND && it.id == 0 && it.size == 0);
        continue;
      }
      CHECK(it.id != 0 && it.id != pin && it.size == size && it.off == off && size == shmtest::kShardBytes);
      CHECK(it.off + it.size <= c.size() && c.base()[it.off] == keys[i] && c.base()[it.off + it.size - 1] == keys[i]);
      pins.push_back(it.id);
      pins.push_back(pin);
    }
    CHECK(pins.size() == 8);
    CHECK(Stat(n, "pins") == 8);
    CHECK(c.Release(pins));
    CHECK(c.Call(shm::kStats, Writer()).code == 0);
    CHECK(Stat(n, "pins") == 0);
    const auto z = c.LoadBatch(ns, keys, shm::kLoadSizeOnly);  // sizes only: no pins
    CHECK(z.code == 0 && z.items.size() == keys.size());
    for (size_t i = 0; i < z.items.size(); ++i)
      CHECK(z.items[i].id == 0 && z.items[i].code == (keys[i] == 0x99 ? KVC_ERR_NOT_FOUND : 0) &&
            z.items[i].size == (keys[i] == 0x99 ? 0 : shmtest::kShardBytes));
    CHECK(Stat(n, "pins") == 0);
    const auto e = c.LoadBatch(ns, {});  // an empty batch
    CHECK(e.code == 0 && e.items.empty());
  }
  // Bad batch frames: each a clear status, and the connection serves on.
  const std::vector<std::array<uint8_t, 16>> two = {KeyN(0, 0xa1), KeyN(1, 0xa1)};
  auto bad = [&](uint32_t op, const Writer& w, const char* says) {
    Reply r = c.Call(op, w);
    CHECK(r.ok && r.code == KVC_ERR_INVALID_ARGUMENT);
    if (r.message.find(says) == std::string::npos) {
      std::fprintf(stderr, "op %u said '%s', not '%s'\n", op, r.message.c_str(), says);
      failures++;
    }
    CHECK(c.Call(shm::kStats, Writer()).code == 0);
  };
  bad(shm::kLoadBatch, LoadBatchBody(ns, 0, 3, two), "do not fill");  // says 3, carries 2
  bad(shm::kLoadBatch, LoadBatchBody(ns, 0, 1, two), "do not fill");  // says 1, carries 2
  {
    std::vector<std::array<uint8_t, 16>> many(1025, KeyN(0, 0xa1));
    bad(shm::kLoadBatch, LoadBatchBody(ns, 0, 1025, many), "at most 1024");
  }
  bad(shm::kLoadBatch, LoadBatchBody(ns, 0, 1u << 31, two), "at most 1024");
  bad(shm::kLoadBatch, LoadBatchBody(ns, 1, 2, two), "out of range");  // one shard only
  bad(shm::kLoadBatch, LoadBatchBody(77, 0, 2, two), "not opened");
  {
    Writer w;  // fixed fields cut short
    w.u32(ns);
    w.u32(0);
    bad(shm::kLoadBatch, w, "malformed");
  }
  {
    Writer w;  // a store batch whose n is one more than it carries
    w.u32(ns);
    w.u32(0);
    w.u64(0);
    w.u32(2);
    const auto k = KeyN(0, 0xb9);
    const uint8_t none[16] = {};
    w.raw(k.data(), 16);
    w.u64(shmtest::kShardBytes);
    w.u32(0);
    w.raw(none, 16);
    bad(shm::kStoreBatchBegin, w, "do not fill");
    Writer p;  // has_parent 2: nothing of the batch is reserved
    p.u32(ns);
    p.u32(0);
    p.u64(0);
    p.u32(2);
    for (uint32_t hp : {0u, 2u}) {
      const auto kk = KeyN(hp, 0xb9);
      p.raw(kk.data(), 16);
      p.u64(shmtest::kShardBytes);
      p.u32(hp);
      p.raw(none, 16);
    }
    bad(shm::kStoreBatchBegin, p, "has_parent");
    CHECK(Stat(n, "pending") == 0);
    Writer cm;  // a commit whose n is over what it carries
    cm.u32(3);
    cm.u64(1);
    bad(shm::kStoreBatchCommit, cm, "do not fill");
    Writer ab;
    ab.u32(5000);
    bad(shm::kStoreBatchAbort, ab, "at most 1024");
  }
  {  // store batches: begin, write, commit each on its own
    const auto b = c.StoreBatchBegin(ns, {0xb1, 0xb2});
    CHECK(b.code == 0 && b.items.size() == 2);
    const auto l = c.StoreBatchBegin(ns, {0xb3}, shmtest::kShardBytes + 1);  // the wrong size: that item's LAYOUT
    CHECK(l.code == 0 && l.items.size() == 1 && l.items[0].code == KVC_ERR_LAYOUT && l.items[0].id == 0);
    std::vector<uint64_t> ids;
    for (size_t i = 0; i < b.items.size(); ++i) {
      const auto& it = b.items[i];
      CHECK(it.code == 0 && it.id != 0 && it.size == shmtest::kShardBytes && it.off + it.size <= c.size());
      if (it.code != 0 || it.off + it.size > c.size()) continue;
      std::memset(c.base() + it.off, i == 0 ? 0xb1 : 0xb2, it.size);
      ids.push_back(it.id);
    }
    CHECK(ids.size() == 2);
    CHECK(Matched(n, 0xb1) == 0);  // nothing visible before the commit
    std::vector<int32_t> codes;
    if (ids.size() == 2) {
      // An unknown reservation in the middle: that item's INVALID_ARGUMENT,
      // the others committed.
      CHECK(c.FinishBatch(shm::kStoreBatchCommit, {ids[0], 999999, ids[1]}, &codes) == 0);
      CHECK(codes == std::vector<int32_t>({0, KVC_ERR_INVALID_ARGUMENT, 0}));
      CHECK(c.FinishBatch(shm::kStoreBatchCommit, {ids[0]}, &codes) == 0);  // a second commit
      CHECK(codes == std::vector<int32_t>({KVC_ERR_INVALID_ARGUMENT}));
    }
    CHECK(Holds(n, 0xb1, 0xb1) && Holds(n, 0xb2, 0xb2));
    const auto again = c.StoreBatchBegin(ns, {0xb1, 0xb4});  // an existing block and a new one
    CHECK(again.code == 0 && again.items.size() == 2 && again.items[0].code == KVC_ERR_EXISTS &&
          again.items[1].code == 0);
    if (again.items.size() == 2) {
      std::memset(c.base() + again.items[1].off, 0x44, shmtest::kShardBytes);
      CHECK(c.FinishBatch(shm::kStoreBatchAbort, {again.items[1].id}, &codes) == 0);
      CHECK(codes == std::vector<int32_t>({0}));
    }
    CHECK(Matched(n, 0xb4) == 0);
    CHECK(Put(n, 0xb4, 0xb4) == KVC_OK);
    CHECK(Stat(n, "pending") == 0);
  }
  {  // pins past the cap: items past it are NO_SPACE, nothing else changes
    std::vector<uint64_t> pins;
    bool ok = true;
    for (uint32_t round = 0; round < 4 && ok; ++round) {
      const std::vector<uint8_t> keys(round < 3 ? 1024 : 1000, 0xa1);
      const auto b = c.LoadBatch(ns, keys);
      ok = b.code == 0 && b.items.size() == keys.size();
      for (const auto& it : b.items) {
        ok = ok && it.code == 0 && it.id != 0;
        pins.push_back(it.id);
      }
    }
    CHECK(ok && pins.size() == shm::kMaxPinsPerConnection - 24);
    const auto b = c.LoadBatch(ns, std::vector<uint8_t>(30, 0xa2));
    CHECK(b.code == 0 && b.items.size() == 30);
    for (size_t i = 0; i < b.items.size(); ++i) {
      const auto& it = b.items[i];
      if (i < 24) {
        CHECK(it.code == 0 && it.id != 0);
        pins.push_back(it.id);
      } else {
        CHECK(it.code == KVC_ERR_NO_SPACE && it.id == 0);
      }
    }
    CHECK(Stat(n, "pins") == static_cast<long long>(shm::kMaxPinsPerConnection));
    const auto z = c.LoadBatch(ns, {0xa2}, shm::kLoadSizeOnly);  // sizes need no pin
    CHECK(z.code == 0 && z.items.size() == 1 && z.items[0].code == 0 && z.items[0].size == shmtest::kShardBytes);
    CHECK(c.Release(pins));  // one release of all of them
    const auto after = c.LoadBatch(ns, {0xa2});
    CHECK(after.code == 0 && after.items.size() == 1 && after.items[0].code == 0);
    if (after.items.size() == 1) CHECK(c.Release({after.items[0].id}));
    CHECK(c.Call(shm::kStats, Writer()).code == 0);
    CHECK(Stat(n, "pins") == 0);
  }
  {  // reservations past the cap, likewise
    Writer w;
    w.u32(ns);
    w.u32(0);
    w.u64(0);
    w.u32(static_cast<uint32_t>(shm::kMaxReservationsPerConnection));
    const uint8_t none[16] = {};
    for (uint32_t i = 0; i < shm::kMaxReservationsPerConnection; ++i) {
      const auto k = KeyN(i, 0xc0);
      w.raw(k.data(), 16);
      w.u64(shmtest::kShardBytes);
      w.u32(0);
      w.raw(none, 16);
    }
    const auto b = RawConn::BatchOf(c.Call(shm::kStoreBatchBegin, w));
    CHECK(b.code == 0 && b.items.size() == shm::kMaxReservationsPerConnection);
    std::vector<uint64_t> ids;
    for (const auto& it : b.items)
      if (it.code == 0) ids.push_back(it.id);
    CHECK(ids.size() == shm::kMaxReservationsPerConnection);
    const auto more = c.StoreBatchBegin(ns, {0xc1, 0xc2});
    CHECK(more.code == 0 && more.items.size() == 2 && more.items[0].code == KVC_ERR_NO_SPACE &&
          more.items[1].code == KVC_ERR_NO_SPACE);
    CHECK(Stat(n, "pending") == static_cast<long long>(shm::kMaxReservationsPerConnection));
    std::vector<int32_t> codes;
    CHECK(c.FinishBatch(shm::kStoreBatchAbort, ids, &codes) == 0);
    CHECK(codes == std::vector<int32_t>(ids.size(), 0));
    CHECK(Stat(n, "pending") == 0);
    const auto now = c.StoreBatchBegin(ns, {0xc1});  // room again
    CHECK(now.code == 0 && now.items.size() == 1 && now.items[0].code == 0);
    if (now.items.size() == 1) {
      std::memset(c.base() + now.items[0].off, 0xc1, shmtest::kShardBytes);
      CHECK(c.FinishBatch(shm::kStoreBatchCommit, {now.items[0].id}, &codes) == 0 && codes == std::vector<int32_t>({0}));
    }
    CHECK(Holds(n, 0xc1, 0xc1));
  }
  c.Close();
  CHECK(Drained(n));
  kvc_error err;
  kvc_namespace_options o = Space();
  for (uint8_t k : {0xa1, 0xa2, 0xa3, 0xb1, 0xb2, 0xb4, 0xc1}) {
    kvc_key key = KeyOf(k);
    CHECK(kvc_node_delete(n, &o, &key, &err) == KVC_OK);
  }
}

void BadPeers(const std::string& sock, const char* cred, kvc_node* n) {
  const uint8_t garbage[32] = {0xde, 0xad, 0xbe, 0xef, 0x10, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8};
  {  // garbage first: an error, then the node hangs up
    RawConn c;
    CHECK(c.Connect(sock) && c.SendRaw(garbage, sizeof garbage));
    Reply r = c.Recv();
    CHECK(r.ok && r.code == KVC_ERR_INVALID_ARGUMENT);
    CHECK(c.ClosedByNode());
  }
  {  // a request before hello
    RawConn c;
    CHECK(c.Connect(sock));
    Reply r = c.Call(shm::kStats, Writer());
    CHECK(r.ok && r.code == KVC_ERR_PERMISSION);
    CHECK(c.ClosedByNode());
  }
  for (const char* bad : {"wrong", ""}) {  // a wrong or missing credential: no arena
    RawConn c;
    CHECK(c.Connect(sock));
    CHECK(c.Hello("alice", bad) == KVC_ERR_PERMISSION && !c.got_fd());
    CHECK(c.ClosedByNode());
  }
  {  // a bad magic
    RawConn c;
    Writer w;
    w.u32(0x12345678);
    w.u32(shm::kVersion);
    w.str("alice");
    w.str(cred);
    w.str("");
    CHECK(c.Connect(sock));
    Reply r = c.Call(shm::kHello, w);
    CHECK(r.ok && r.code == KVC_ERR_INVALID_ARGUMENT);
    CHECK(c.ClosedByNode());
  }
  {  // oversized length, after a good hello
    RawConn c;
    CHECK(c.Connect(sock) && c.Hello("alice", cred) == 0);
    shm::FrameHeader h{shm::kMatch, 0xfffffff0u};
    CHECK(c.SendRaw(&h, sizeof h));
    Reply r = c.Recv();
    CHECK(r.ok && r.code == KVC_ERR_INVALID_ARGUMENT && r.message.find("over the limit") != std::string::npos);
    CHECK(c.ClosedByNode());
  }
  {  // an unknown op
    RawConn c;
    CHECK(c.Connect(sock) && c.Hello("alice", cred) == 0);
    Reply r = c.Call(99, Writer());
    CHECK(r.ok && r.code == KVC_ERR_INVALID_ARGUMENT);
    CHECK(c.ClosedByNode());
  }
  {  // well framed but wrong inside: an error each, and the connection lives on
    RawConn c;
    CHECK(c.Connect(sock) && c.Hello("alice", cred) == 0);
    const uint32_t ns = c.Open();
    CHECK(ns != UINT32_MAX);
    Writer m;  // says 1000 keys, carries one
    m.u32(ns);
    m.u32(1000);
    m.raw(garbage, 16);
    Reply r = c.Call(shm::kMatch, m);
    CHECK(r.ok && r.code == KVC_ERR_INVALID_ARGUMENT);
    Writer big;  // more keys than any match takes
    big.u32(ns);
    big.u32(1u << 30);
    r = c.Call(shm::kMatch, big);
    CHECK(r.ok && r.code == KVC_ERR_INVALID_ARGUMENT);
    int32_t code = 0;
    uint64_t pin = 0, off = 0, size = 0, id = 0;
    CHECK(!c.Load(77, 0x11, &code, &pin, &off, &size) && code == KVC_ERR_INVALID_ARGUMENT);  // unopened
    CHECK(!c.Load(ns, 0x44, &code, &pin, &off, &size) && code == KVC_ERR_NOT_FOUND);
    Writer bad_ns;  // a namespace that does not validate
    bad_ns.str("sha256");
    bad_ns.str("m");
    bad_ns.str("r");
    bad_ns.str("");
    bad_ns.str("fp16");
    for (uint32_t v : {0u, 2u, 8u, 4u, 1u}) bad_ns.u32(v);
    r = c.Call(shm::kOpen, bad_ns);
    CHECK(r.ok && r.code != 0);
    Writer long_str;  // a string longer than its frame
    long_str.u32(1u << 20);
    r = c.Call(shm::kOpen, long_str);
    CHECK(r.ok && r.code == KVC_ERR_INVALID_ARGUMENT);
    CHECK(c.Finish(shm::kStoreCommit, 12345) == KVC_ERR_INVALID_ARGUMENT);  // commit without reserve
    CHECK(c.Finish(shm::kStoreAbort, 12345) == KVC_ERR_INVALID_ARGUMENT);
    CHECK(!c.StoreBegin(ns, 0x33, shmtest::kShardBytes + 1, &code, &id, &off) && code == KVC_ERR_LAYOUT);
    // A store through the arena, then a second commit of it.
    CHECK(c.StoreBegin(ns, 0x33, shmtest::kShardBytes, &code, &id, &off));
    CHECK(off + shmtest::kShardBytes <= c.size());
    std::memset(c.base() + off, 0x33, shmtest::kShardBytes);
    CHECK(c.Finish(shm::kStoreCommit, id) == 0);
    CHECK(c.Finish(shm::kStoreCommit, id) == KVC_ERR_INVALID_ARGUMENT);
    CHECK(Holds(n, 0x33, 0x33));
    CHECK(c.Call(shm::kStats, Writer()).code == 0);  // still serving this connection
    // Load hands out the arena offset of the bytes, pinned until released.
    CHECK(c.Load(ns, 0x33, &code, &pin, &off, &size) && pin != 0 && size == shmtest::kShardBytes);
    CHECK(off + size <= c.size() && c.base()[off] == 0x33 && c.base()[off + size - 1] == 0x33);
    Writer rel;
    rel.u32(1);
    rel.u64(pin);
    CHECK(c.Send(shm::kRelease, rel));
    CHECK(c.Call(shm::kStats, Writer()).code == 0);
    // A release of a pin this connection does not hold ends it.
    CHECK(c.Send(shm::kRelease, rel));
    CHECK(c.ClosedByNode());
  }
  {  // a second hello
    RawConn c;
    CHECK(c.Connect(sock) && c.Hello("alice", cred) == 0);
    CHECK(c.Hello("alice", cred) == KVC_ERR_INVALID_ARGUMENT);
    CHECK(c.ClosedByNode());
  }
  {  // a truncated frame, then gone
    RawConn c;
    CHECK(c.Connect(sock) && c.Hello("alice", cred) == 0);
    shm::FrameHeader h{shm::kMatch, 100};
    CHECK(c.SendRaw(&h, sizeof h) && c.SendRaw(garbage, 10));
  }
  {  // gone mid-store: nothing of it visible, and the key free at once
    RawConn c;
    int32_t code = 0;
    uint64_t id = 0, off = 0;
    CHECK(c.Connect(sock) && c.Hello("alice", cred) == 0);
    const uint32_t ns = c.Open();
    CHECK(c.StoreBegin(ns, 0x55, shmtest::kShardBytes, &code, &id, &off));
    std::memset(c.base() + off, 0x5a, shmtest::kShardBytes / 2);
    CHECK(Matched(n, 0x55) == 0);
    c.Close();
    CHECK(Drained(n));
    CHECK(Matched(n, 0x55) == 0);
    CHECK(Put(n, 0x55, 0x66) == KVC_OK);
    CHECK(Holds(n, 0x55, 0x66));
  }
  CHECK(Drained(n));
}

// A listener that never answers, and one that answers hello only.
void Deadlines(const std::string& dir) {
  const std::string mute = dir + "/mute.sock", half = dir + "/half.sock";
  auto listen_on = [](const std::string& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 8) != 0) return -1;
    return fd;
  };
  const int mute_fd = listen_on(mute), half_fd = listen_on(half);
  CHECK(mute_fd >= 0 && half_fd >= 0);
  kvc_node_options no = KVC_NODE_OPTIONS_INIT;
  no.connect_timeout_ms = 300;
  no.timeout_ms = 300;
  no.max_retries = KVC_NODE_NO_RETRIES;
  kvc_error err;
  kvc_node* n = nullptr;
  double t0 = Now();
  CHECK(kvc_node_connect(&n, ("unix:" + mute).c_str(), &no, &err) == KVC_ERR_UNAVAILABLE && n == nullptr);
  CHECK(Now() - t0 < 1.5);

  std::atomic<bool> stop{false};
  std::thread fake([&] {
    const int c = accept(half_fd, nullptr, nullptr);
    if (c < 0) return;
    shm::FrameHeader h{};
    std::vector<uint8_t> body;
    if (recv(c, &h, sizeof h, MSG_WAITALL) == sizeof h && h.length < 4096) {
      body.resize(h.length);
      (void)!recv(c, body.data(), body.size(), MSG_WAITALL);
      const int memfd = memfd_create("fake-arena", MFD_CLOEXEC);
      (void)!ftruncate(memfd, 4096);
      Writer w;
      w.i32(0);
      w.str("");
      w.u64(4096);
      const std::string f = w.Frame(shm::kHello);
      iovec iov{const_cast<char*>(f.data()), f.size()};
      alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))] = {};
      msghdr m{};
      m.msg_iov = &iov;
      m.msg_iovlen = 1;
      m.msg_control = cbuf;
      m.msg_controllen = sizeof cbuf;
      cmsghdr* cm = CMSG_FIRSTHDR(&m);
      cm->cmsg_level = SOL_SOCKET;
      cm->cmsg_type = SCM_RIGHTS;
      cm->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(cm), &memfd, sizeof memfd);
      (void)!sendmsg(c, &m, 0);
      close(memfd);
    }
    while (!stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(10));  // then silence
    close(c);
  });
  CHECK(kvc_node_connect(&n, ("unix:" + half).c_str(), &no, &err) == KVC_OK && n != nullptr);
  if (n) {
    char* json = nullptr;
    t0 = Now();
    CHECK(kvc_node_stats_json(n, &json, &err) == KVC_ERR_TIMEOUT && json == nullptr);
    CHECK(Now() - t0 < 1.5);
    kvc_node_close(n);
  }
  stop.store(true);
  fake.join();
  close(mute_fd);
  close(half_fd);
  unlink(mute.c_str());
  unlink(half.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: shm_wire_test PATH_OF_SHM_HOLDER\n");
    return 2;
  }
  if (!(kvc_features() & KVC_FEATURE_GRPC)) {
    std::printf("SKIP: built without gRPC: no node, no same-host path\n");
    return 77;
  }
  char dir[] = "/tmp/kvc-shm-wire-XXXXXX";
  if (mkdtemp(dir) == nullptr) return 1;
  const std::string tenants = std::string(dir) + "/tenants.json", sock = std::string(dir) + "/node.sock";
  char* cred = nullptr;
  kvc_error err;
  kvc_tenant_options t = KVC_TENANT_OPTIONS_INIT;
  t.name = "alice";
  CHECK(kvc_tenant_create(&cred, tenants.c_str(), &t, &err) == KVC_OK);
  if (cred == nullptr) return 1;

  kvc_cache_options co = KVC_CACHE_OPTIONS_INIT;
  co.host_capacity_bytes = 4u << 20;
  co.tenants_path = tenants.c_str();
  kvc_node_server_options so = KVC_NODE_SERVER_OPTIONS_INIT;
  so.listen = "127.0.0.1:0";
  so.cache = &co;
  so.unix_path = sock.c_str();
  so.admin_token = "shm-wire-admin";  // Stat() reads the whole node's counters
  kvc_node_server* server = nullptr;
  CHECK(kvc_node_server_start(&server, &so, &err) == KVC_OK);
  if (server == nullptr) return 1;
  kvc_node_options no = KVC_NODE_OPTIONS_INIT;
  no.tenant = "alice";
  no.credential = cred;
  no.admin_token = "shm-wire-admin";
  kvc_node* n = nullptr;
  CHECK(kvc_node_connect(&n, ("unix:" + sock).c_str(), &no, &err) == KVC_OK);
  if (n == nullptr) return 1;

  KilledHolder(argv[1], sock, cred, n);
  KilledBatchHolder(argv[1], sock, cred, n);
  Batches(sock, cred, n);
  BadPeers(sock, cred, n);
  Deadlines(dir);

  // Still up, over both transports, and holding nothing.
  kvc_node* tcp = nullptr;
  CHECK(kvc_node_connect(&tcp, kvc_node_server_address(server), &no, &err) == KVC_OK);
  CHECK(Put(n, 0x66, 0x66) == KVC_OK && Holds(n, 0x66, 0x66) && tcp && Holds(tcp, 0x66, 0x66));
  // The node frees a broken connection's pins and reservations on its own
  // thread: give it a moment (slow under the sanitizers), not forever.
  for (int i = 0; i < 200 && (Stat(n, "pins") != 0 || Stat(n, "pending") != 0); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(Stat(n, "pins") == 0 && Stat(n, "pending") == 0);
  kvc_node_close(tcp);
  kvc_node_close(n);
  CHECK(kvc_node_server_stop(server, 1000) == KVC_OK);
  kvc_string_free(cred);
  std::string rm = std::string("rm -rf ") + dir;
  if (std::system(rm.c_str()) != 0) std::fprintf(stderr, "note: %s left behind\n", dir);
  if (failures) std::fprintf(stderr, "%d failure(s)\n", failures);
  else std::printf("ok\n");
  return failures ? 1 : 0;
}
