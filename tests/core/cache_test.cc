// Cache: the engine's contracts (two-phase store, pins, deadlines, TTL,
// revisions, eviction, miss reasons) and a multi-threaded stress test.
#include "core/cache.h"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <random>
#include <thread>
#include <vector>

namespace kvc {
namespace {

NamespaceFields SmallFields(const std::string& model = "m") {
  NamespaceFields f;
  f.model = model;
  f.revision = "r";
  f.layout.dtype = "fp16";
  f.layout.layers = 1;
  f.layout.kv_heads = 1;
  f.layout.head_dim = 64;
  f.layout.block_tokens = 16;
  f.layout.shards = 1;
  return f;  // 2 * 64 * 16 * 2 = 4096 bytes a block
}

std::unique_ptr<Cache> MakeCache(uint64_t bytes, const std::string& policy = "",
                                 uint32_t maint_ms = 100) {
  CacheOptions o;
  o.host_capacity_bytes = bytes;
  o.host_policy = policy;
  o.prefault = false;
  o.maintenance_interval_ms = maint_ms;
  auto c = Cache::Open(o);
  REQUIRE(c.ok());
  return std::move(c).value();
}

BlockKey KeyOf(uint64_t i) {
  BlockKey k;
  uint64_t x = i * 0x9E3779B97F4A7C15ull + 1;
  std::memcpy(k.bytes.data(), &x, 8);
  std::memcpy(k.bytes.data() + 8, &i, 8);
  return k;
}

// The bytes a block of key i holds in these tests.
void Fill(uint8_t* p, uint64_t n, uint64_t i) {
  for (uint64_t j = 0; j < n; j += 8) {
    uint64_t v = (i << 20) ^ j;
    std::memcpy(p + j, &v, std::min<uint64_t>(8, n - j));
  }
}

bool Holds(const uint8_t* p, uint64_t n, uint64_t i) {
  std::vector<uint8_t> want(n);
  Fill(want.data(), n, i);
  return std::memcmp(p, want.data(), n) == 0;
}

Status Put(Cache& c, NamespaceState& ns, uint64_t i, uint64_t ttl_ms = 0) {
  Reservation r;
  StoreParams p;
  p.ttl_ms = ttl_ms;
  KVC_RETURN_IF_ERROR(c.BeginStore(ns, KeyOf(i), 0, p, &r));
  Fill(r.data, r.size, i);
  return c.Commit(r);
}

}  // namespace

TEST_CASE("open refuses bad options") {
  CacheOptions o;
  o.host_capacity_bytes = 100;
  CHECK(Cache::Open(o).status().code() == Code::kInvalidArgument);
  o.host_capacity_bytes = 1 << 20;
  o.index_shards = 3;
  CHECK(Cache::Open(o).status().code() == Code::kInvalidArgument);
  o.index_shards = 64;
  o.host_policy = "bogus";
  CHECK(Cache::Open(o).status().code() == Code::kInvalidArgument);
}

TEST_CASE("equal namespace fields share one namespace - different fields do not") {
  auto c = MakeCache(1 << 20);
  auto a = c->OpenNamespace(SmallFields("a"));
  auto a2 = c->OpenNamespace(SmallFields("a"));
  auto b = c->OpenNamespace(SmallFields("b"));
  REQUIRE(a.ok());
  CHECK(*a == *a2);
  CHECK(*a != *b);
  REQUIRE(Put(*c, **a, 1).ok());
  std::vector<uint8_t> buf(4096);
  CHECK(c->Load(**a2, KeyOf(1), 0, buf.data()).ok());
  CHECK(c->Load(**b, KeyOf(1), 0, buf.data()).code() == Code::kNotFound);
}

TEST_CASE("two-phase store: pending / exists / abort / wait") {
  auto c = MakeCache(1 << 20);
  auto& ns = **c->OpenNamespace(SmallFields());
  Reservation r1, r2;
  REQUIRE(c->BeginStore(ns, KeyOf(7), 0, {}, &r1).ok());
  CHECK(c->BeginStore(ns, KeyOf(7), 0, {}, &r2).code() == Code::kPending);
  CHECK(c->Match(ns, std::vector<BlockKey>{KeyOf(7)}, nullptr) == 0);

  // A waiter is woken by the commit.
  std::atomic<int> waited{99};
  std::thread t([&] { waited = static_cast<int>(c->WaitPending(ns, KeyOf(7), 0, 5000).code()); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  Fill(r1.data, r1.size, 7);
  REQUIRE(c->Commit(r1).ok());
  t.join();
  CHECK(waited == 0);
  CHECK(c->BeginStore(ns, KeyOf(7), 0, {}, &r2).code() == Code::kExists);

  // Abort frees the key for another writer and wakes waiters with NotFound.
  REQUIRE(c->BeginStore(ns, KeyOf(8), 0, {}, &r1).ok());
  std::thread t2([&] { waited = static_cast<int>(c->WaitPending(ns, KeyOf(8), 0, 5000).code()); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  c->Abort(r1);
  t2.join();
  CHECK(waited == static_cast<int>(Code::kNotFound));
  REQUIRE(c->BeginStore(ns, KeyOf(8), 0, {}, &r2).ok());
  c->Abort(r2);
  CHECK(c->Stats().pending == 0);
}

TEST_CASE("ForEachHostBlock yields committed blocks of the current epoch only, with their TTL left") {
  auto c = MakeCache(1 << 20);
  auto& a = **c->OpenNamespace(SmallFields("a"));
  auto& b = **c->OpenNamespace(SmallFields("b"));
  REQUIRE(Put(*c, a, 1).ok());
  REQUIRE(Put(*c, a, 2, 60000).ok());
  REQUIRE(Put(*c, b, 3).ok());
  Reservation pending;
  REQUIRE(c->BeginStore(a, KeyOf(4), 0, {}, &pending).ok());
  (void)c->BumpRevision(b);  // key 3 is stale now
  std::map<uint64_t, int64_t> seen;  // key index -> ttl left
  c->ForEachHostBlock([&](const Cache::HostBlock& hb) {
    CHECK(hb.ns == &a);
    CHECK(hb.size == a.shard_bytes);
    for (uint64_t i : {1, 2, 3, 4})
      if (hb.key == KeyOf(i)) seen[i] = hb.ttl_left_ms;
  });
  CHECK(seen.size() == 2);
  CHECK(seen.count(1) == 1);
  CHECK(seen[1] == 0);
  CHECK(seen.count(2) == 1);
  CHECK(seen[2] > 50000);
  CHECK(seen[2] <= 60000);
  c->Abort(pending);
}

TEST_CASE("a reservation past its deadline is aborted - its writer learns at commit") {
  auto c = MakeCache(1 << 20, "", 10);
  auto& ns = **c->OpenNamespace(SmallFields());
  StoreParams p;
  p.reservation_timeout_ms = 30;
  Reservation r;
  REQUIRE(c->BeginStore(ns, KeyOf(1), 0, p, &r).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  // Another writer may take the key now.
  Reservation r2;
  REQUIRE(c->BeginStore(ns, KeyOf(1), 0, {}, &r2).ok());
  Fill(r.data, r.size, 1);  // the late writer's bytes are still its own
  CHECK(c->Commit(r).code() == Code::kTimeout);
  Fill(r2.data, r2.size, 1);
  CHECK(c->Commit(r2).ok());
  CHECK(c->Stats().reservations_expired >= 1);
  std::vector<uint8_t> buf(4096);
  REQUIRE(c->Load(ns, KeyOf(1), 0, buf.data()).ok());
  CHECK(Holds(buf.data(), buf.size(), 1));
}

TEST_CASE("views pin blocks against eviction and expire at their deadline") {
  auto c = MakeCache(64 * 1024, "lru", 10);  // 16 blocks of 4 KiB
  auto& ns = **c->OpenNamespace(SmallFields());
  REQUIRE(Put(*c, ns, 0).ok());
  View v;
  REQUIRE(c->AcquireView(ns, KeyOf(0), 0, 0, &v).ok());
  for (uint64_t i = 1; i < 200; ++i) REQUIRE(Put(*c, ns, i).ok());
  CHECK(Holds(v.data, v.size, 0));  // never evicted, never overwritten
  CHECK(c->Match(ns, std::vector<BlockKey>{KeyOf(0)}, nullptr) == 1);
  CHECK(c->ReleaseView(v.id).ok());
  CHECK(c->ReleaseView(v.id).code() == Code::kInvalidArgument);

  View w;
  REQUIRE(c->AcquireView(ns, KeyOf(199), 0, 30, &w).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  CHECK(c->ReleaseView(w.id).code() == Code::kInvalidArgument);
  CHECK(c->Stats().pins_expired == 1);
  CHECK(c->Stats().pins == 0);
}

TEST_CASE("no space when every block is pinned - nothing stored is lost") {
  auto c = MakeCache(64 * 1024, "lru");
  auto& ns = **c->OpenNamespace(SmallFields());
  std::vector<View> views;
  uint64_t i = 0;
  for (;; ++i) {
    Status s = Put(*c, ns, i);
    if (!s.ok()) {
      CHECK(s.code() == Code::kNoSpace);
      break;
    }
    View v;
    REQUIRE(c->AcquireView(ns, KeyOf(i), 0, 0, &v).ok());
    views.push_back(v);
    REQUIRE(i < 64);
  }
  CHECK(i == 16);
  for (auto& v : views) CHECK(Holds(v.data, v.size, &v - views.data()));
  CHECK(c->Stats().pending == 0);
  for (auto& v : views) REQUIRE(c->ReleaseView(v.id).ok());
  CHECK(Put(*c, ns, 1000).ok());
}

TEST_CASE("TTL: an expired block is a miss with reason expired and is reclaimed") {
  auto c = MakeCache(1 << 20, "", 10);
  auto& ns = **c->OpenNamespace(SmallFields());
  REQUIRE(Put(*c, ns, 1, 40).ok());
  REQUIRE(Put(*c, ns, 2).ok());
  std::vector<uint8_t> buf(4096);
  CHECK(c->Load(ns, KeyOf(1), 0, buf.data()).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  CHECK(c->Load(ns, KeyOf(1), 0, buf.data()).code() == Code::kNotFound);
  CHECK(c->Load(ns, KeyOf(2), 0, buf.data()).ok());
  auto st = c->Stats();
  CHECK(st.expirations == 1);
  CHECK(st.blocks == 1);
}

TEST_CASE("revision bump hides old blocks at once and reclaims them") {
  auto c = MakeCache(1 << 20, "", 60000);  // maintenance only when the test runs it
  auto& ns = **c->OpenNamespace(SmallFields());
  for (uint64_t i = 0; i < 10; ++i) REQUIRE(Put(*c, ns, i).ok());
  View v;
  REQUIRE(c->AcquireView(ns, KeyOf(3), 0, 0, &v).ok());
  Reservation late;
  REQUIRE(c->BeginStore(ns, KeyOf(100), 0, {}, &late).ok());
  c->BumpRevision(ns);
  CHECK(c->Match(ns, std::vector<BlockKey>{KeyOf(0)}, nullptr) == 0);
  std::vector<uint8_t> buf(4096);
  CHECK(c->Load(ns, KeyOf(5), 0, buf.data()).code() == Code::kNotFound);
  CHECK(c->Stats().misses_by_reason[static_cast<int>(Miss::kStale)] >= 1);
  // A store begun before the bump is not published after it.
  Fill(late.data, late.size, 100);
  CHECK(c->Commit(late).code() == Code::kNotFound);
  CHECK(c->Match(ns, std::vector<BlockKey>{KeyOf(100)}, nullptr) == 0);
  CHECK(Holds(v.data, v.size, 3));  // the viewer keeps its bytes
  c->RunMaintenance();
  CHECK(c->Stats().blocks == 0);
  CHECK(c->ReleaseView(v.id).ok());
  REQUIRE(Put(*c, ns, 5).ok());
  CHECK(c->Load(ns, KeyOf(5), 0, buf.data()).ok());
  CHECK(Holds(buf.data(), buf.size(), 5));
}

TEST_CASE("miss reasons: absent / evicted / pending") {
  auto c = MakeCache(64 * 1024, "lru");
  auto& ns = **c->OpenNamespace(SmallFields());
  std::vector<uint8_t> buf(4096);
  CHECK(c->Load(ns, KeyOf(1), 0, buf.data()).code() == Code::kNotFound);
  for (uint64_t i = 0; i < 40; ++i) REQUIRE(Put(*c, ns, i).ok());
  CHECK(c->Load(ns, KeyOf(0), 0, buf.data()).code() == Code::kNotFound);  // evicted (LRU)
  Reservation r;
  REQUIRE(c->BeginStore(ns, KeyOf(500), 0, {}, &r).ok());
  CHECK(c->Load(ns, KeyOf(500), 0, buf.data()).code() == Code::kNotFound);
  c->Abort(r);
  auto st = c->Stats();
  CHECK(st.misses_by_reason[static_cast<int>(Miss::kAbsent)] == 1);
  CHECK(st.misses_by_reason[static_cast<int>(Miss::kEvicted)] == 1);
  CHECK(st.misses_by_reason[static_cast<int>(Miss::kPending)] == 1);
  CHECK(st.evictions == 41 - 16);  // 40 stores and one reservation
  CHECK(st.used_bytes <= st.capacity_bytes);
}

TEST_CASE("delete cancels a pending store of the key") {
  auto c = MakeCache(1 << 20);
  auto& ns = **c->OpenNamespace(SmallFields());
  Reservation r;
  REQUIRE(c->BeginStore(ns, KeyOf(9), 0, {}, &r).ok());
  CHECK(c->Delete(ns, KeyOf(9)).code() == Code::kNotFound);  // nothing visible was there
  Fill(r.data, r.size, 9);
  CHECK(c->Commit(r).code() == Code::kNotFound);
  CHECK(c->Match(ns, std::vector<BlockKey>{KeyOf(9)}, nullptr) == 0);
}

TEST_CASE("sharded namespace: a block is present only when every shard is") {
  auto f = SmallFields();
  f.layout.kv_heads = 4;
  f.layout.shards = 2;
  auto c = MakeCache(1 << 20);
  auto& ns = **c->OpenNamespace(f);
  CHECK(ns.shard_bytes == ns.block_bytes / 2);
  Reservation r;
  REQUIRE(c->BeginStore(ns, KeyOf(1), 0, {}, &r).ok());
  REQUIRE(c->Commit(r).ok());
  CHECK(c->Match(ns, std::vector<BlockKey>{KeyOf(1)}, nullptr) == 0);
  REQUIRE(c->BeginStore(ns, KeyOf(1), 1, {}, &r).ok());
  REQUIRE(c->Commit(r).ok());
  CHECK(c->Match(ns, std::vector<BlockKey>{KeyOf(1)}, nullptr) == 1);
  CHECK(c->BeginStore(ns, KeyOf(1), 2, {}, &r).code() == Code::kInvalidArgument);
}

// Many threads store, load, match, view, delete and bump revisions on
// overlapping keys in a small cache. Every byte a reader sees must be the
// bytes of the key it asked for; views stay intact until released.
TEST_CASE("stress: concurrent store / load / match / view / evict / delete / bump") {
  for (const char* policy : {"lru", "wtinylfu-prefix"}) {
    CAPTURE(policy);
    auto c = MakeCache(256 * 1024, policy, 5);  // 64 blocks
    auto& ns = **c->OpenNamespace(SmallFields());
    constexpr int kThreads = 4;
    constexpr int kOps = 4000;
    std::atomic<uint64_t> wrong{0}, loads{0}, errors{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        std::mt19937_64 rng(t + 1);
        std::vector<uint8_t> buf(4096);
        for (int op = 0; op < kOps; ++op) {
          const uint64_t i = rng() % 200;
          const int what = static_cast<int>(rng() % 100);
          if (what < 40) {
            Status s = Put(*c, ns, i, rng() % 10 == 0 ? 5 : 0);
            if (!s.ok() && s.code() != Code::kExists && s.code() != Code::kPending &&
                s.code() != Code::kNotFound && s.code() != Code::kNoSpace)
              errors.fetch_add(1);
          } else if (what < 75) {
            Status s = c->Load(ns, KeyOf(i), 0, buf.data());
            if (s.ok()) {
              loads.fetch_add(1);
              if (!Holds(buf.data(), buf.size(), i)) wrong.fetch_add(1);
            }
          } else if (what < 85) {
            std::vector<BlockKey> keys{KeyOf(i), KeyOf(i + 1), KeyOf(i + 2)};
            (void)c->Match(ns, keys, nullptr);
          } else if (what < 95) {
            View v;
            if (c->AcquireView(ns, KeyOf(i), 0, 0, &v).ok()) {
              std::this_thread::yield();
              if (!Holds(v.data, v.size, i)) wrong.fetch_add(1);
              if (!c->ReleaseView(v.id).ok()) errors.fetch_add(1);
            }
          } else if (what < 99) {
            (void)c->Delete(ns, KeyOf(i));
          } else {
            c->BumpRevision(ns);
          }
        }
      });
    }
    for (auto& th : threads) th.join();
    CHECK(wrong == 0);
    CHECK(errors == 0);
    CHECK(loads > 0);
    auto st = c->Stats();
    CHECK(st.pending == 0);
    CHECK(st.pins == 0);
    CHECK(st.used_bytes <= st.capacity_bytes);
    c->BumpRevision(ns);
    c->RunMaintenance();
    CHECK(c->Stats().blocks == 0);
    CHECK(c->Stats().used_bytes == 0);
  }
}

}  // namespace kvc
