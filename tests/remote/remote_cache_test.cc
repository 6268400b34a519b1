// The engine's side of the remote tier (libkvc/core/cache_remote.cc) against
// an in-memory RemoteTier: no gRPC, so it runs in every build. What the
// cache asks the tier, with which tenant, and what it makes of the answers;
// a batch load asks it once, for the keys the local tiers miss.
#include <doctest/doctest.h>

#include <cstring>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "core/cache.h"
#include "core/remote_tier.h"

namespace kvc {
namespace {

// A node in memory: blocks by (namespace seed, key, shard); `down` makes
// every call kUnavailable; every call is logged with its tenant.
class FakeRemote final : public RemoteTier {
 public:
  using Id = std::tuple<std::string, std::string, uint32_t>;
  std::mutex mu;
  std::map<Id, std::vector<uint8_t>> blocks;
  std::vector<std::string> calls;
  bool down = false;
  uint64_t wrong_size = 0;  // Get hands back blocks of this size when non-zero

  static std::string S(const BlockKey& k) { return std::string(k.bytes.begin(), k.bytes.end()); }
  static Id IdOf(const NamespaceState& ns, const BlockKey& k, uint32_t shard) {
    return {S(ns.hasher.seed()), S(k), shard};
  }
  void Log(const char* what, uint32_t tenant) { calls.push_back(std::string(what) + "@" + std::to_string(tenant)); }

  void SetIdentity(uint32_t tenant, const std::string& name, const std::string&) override {
    std::lock_guard<std::mutex> lk(mu);
    calls.push_back("identity " + name + "@" + std::to_string(tenant));
  }
  Result<size_t> Match(const NamespaceState& ns, uint32_t tenant, std::span<const BlockKey> keys) override {
    std::lock_guard<std::mutex> lk(mu);
    Log("match", tenant);
    if (down) return Status(Code::kUnavailable, "down");
    size_t n = 0;
    while (n < keys.size() && blocks.count(IdOf(ns, keys[n], 0))) ++n;
    return n;
  }
  Status Get(const NamespaceState& ns, uint32_t tenant, const BlockKey& key, uint32_t shard, void* dst,
             uint64_t len) override {
    std::lock_guard<std::mutex> lk(mu);
    Log("get", tenant);
    if (down) return Status(Code::kUnavailable, "down");
    auto it = blocks.find(IdOf(ns, key, shard));
    if (it == blocks.end()) return NotFound();
    if (wrong_size) return Status(Code::kCorrupt, "size");
    std::memcpy(dst, it->second.data(), std::min<uint64_t>(len, it->second.size()));
    return Status::Ok();
  }
  // Logged as one call, then RemoteTier's own: one Get per item.
  void GetBatch(const NamespaceState& ns, uint32_t tenant, uint32_t shard, uint64_t len,
                std::span<RemoteGetItem> items) override {
    {
      std::lock_guard<std::mutex> lk(mu);
      calls.push_back("batch of " + std::to_string(items.size()) + "@" + std::to_string(tenant));
    }
    RemoteTier::GetBatch(ns, tenant, shard, len, items);
  }
  void Put(const NamespaceState& ns, uint32_t tenant, uint64_t, const BlockKey& key, uint32_t shard,
           std::vector<uint8_t> bytes, uint64_t) override {
    std::lock_guard<std::mutex> lk(mu);
    Log("put", tenant);
    blocks[IdOf(ns, key, shard)] = std::move(bytes);
  }
  Status Delete(const NamespaceState& ns, uint32_t tenant, const BlockKey& key) override {
    std::lock_guard<std::mutex> lk(mu);
    Log("delete", tenant);
    if (down) return Status(Code::kUnavailable, "down");
    return blocks.erase(IdOf(ns, key, 0)) ? Status::Ok() : NotFound();
  }
  Status BumpRevision(const NamespaceState& ns, uint32_t tenant) override {
    std::lock_guard<std::mutex> lk(mu);
    Log("bump", tenant);
    const std::string seed = S(ns.hasher.seed());
    std::erase_if(blocks, [&](const auto& kv) { return std::get<0>(kv.first) == seed; });
    return Status::Ok();
  }
  Status Flush() override { return Status::Ok(); }
  RemoteStats Stats() override { return RemoteStats{}; }
  std::string address() const override { return "fake:1"; }

  size_t Count(const std::string& call) {
    std::lock_guard<std::mutex> lk(mu);
    return static_cast<size_t>(std::count(calls.begin(), calls.end(), call));
  }
};

NamespaceFields Fields() {
  NamespaceFields f;
  f.model = "remote";
  f.revision = "r";
  f.layout.dtype = "fp16";
  f.layout.layers = 2;
  f.layout.kv_heads = 1;
  f.layout.head_dim = 64;
  f.layout.block_tokens = 16;
  return f;  // 8 KiB blocks
}

BlockKey K(uint64_t i) {
  BlockKey k;
  uint64_t x = i * 0x9E3779B97F4A7C15ull + 7;
  std::memcpy(k.bytes.data(), &x, 8);
  std::memcpy(k.bytes.data() + 8, &i, 8);
  return k;
}

std::vector<uint8_t> Bytes(uint64_t n, uint64_t i) {
  std::vector<uint8_t> b(n);
  for (uint64_t j = 0; j < n; ++j) b[j] = static_cast<uint8_t>(i * 29 + j * 3);
  return b;
}

struct Fixture {
  FakeRemote* remote = nullptr;
  std::unique_ptr<Cache> cache;
  NamespaceState* ns = nullptr;
  Fixture() {
    CacheOptions o;
    o.host_capacity_bytes = 1 << 20;
    o.prefault = false;
    o.maintenance_interval_ms = 60000;
    o.remote_address = "fake:1";
    o.remote_factory = [this](const CacheOptions&) -> Result<std::unique_ptr<RemoteTier>> {
      auto r = std::make_unique<FakeRemote>();
      remote = r.get();
      return std::unique_ptr<RemoteTier>(std::move(r));
    };
    auto c = Cache::Open(o);
    REQUIRE_MESSAGE(c.ok(), c.status().ToString());
    cache = std::move(c).value();
    ns = *cache->OpenNamespace(Fields());
  }
  Status Store(uint64_t i, uint32_t tenant = 0) {
    StoreParams p;
    p.tenant = tenant;
    Reservation r;
    KVC_RETURN_IF_ERROR(cache->BeginStore(*ns, K(i), 0, p, &r));
    auto b = Bytes(r.size, i);
    std::memcpy(r.data, b.data(), r.size);
    return cache->Commit(r);
  }
  void OnNode(uint64_t i) { remote->blocks[FakeRemote::IdOf(*ns, K(i), 0)] = Bytes(ns->shard_bytes, i); }
};

TEST_CASE("a cache with a remote_address and no factory (a build without gRPC) is refused") {
  CacheOptions o;
  o.host_capacity_bytes = 1 << 20;
  o.remote_address = "127.0.0.1:1";
  auto c = Cache::Open(o);
  CHECK(c.status().code() == Code::kUnsupported);
  CHECK(c.status().message().find("without gRPC") != std::string::npos);
}

TEST_CASE("match asks the node only past the local prefix and reports KVC_TIER_REMOTE") {
  Fixture f;
  REQUIRE(f.Store(0).ok());
  f.OnNode(1);
  f.OnNode(2);
  std::vector<BlockKey> keys{K(0), K(1), K(2), K(3)};
  uint8_t tiers[4];
  CHECK(f.cache->Match(*f.ns, keys, tiers) == 3);
  CHECK(tiers[0] == 2);
  CHECK(tiers[1] == 4);
  CHECK(tiers[2] == 4);
  CHECK(tiers[3] == 0);
  CHECK(f.cache->Stats().hits == 3);
  CHECK(f.cache->Stats().misses_by_reason[static_cast<int>(Miss::kAbsent)] == 1);
  // All local: the node is not asked.
  const size_t asked = f.remote->Count("match@0");
  std::vector<BlockKey> local{K(0)};
  CHECK(f.cache->Match(*f.ns, local, tiers) == 1);
  CHECK(f.remote->Count("match@0") == asked);
}

TEST_CASE("a load from the node is byte-exact and promoted and a promotion is not sent back") {
  Fixture f;
  f.OnNode(5);
  std::vector<uint8_t> dst(f.ns->shard_bytes);
  REQUIRE(f.cache->Load(*f.ns, K(5), 0, dst.data()).ok());
  CHECK(dst == Bytes(dst.size(), 5));
  CHECK(f.cache->Stats().blocks == 1);  // promoted into DRAM
  uint8_t tier = 0;
  std::vector<BlockKey> keys{K(5)};
  CHECK(f.cache->Match(*f.ns, keys, &tier) == 1);
  CHECK(tier == 2);
  CHECK(f.remote->Count("put@0") == 0);
  // A view of a block only on the node.
  f.OnNode(6);
  View v;
  REQUIRE(f.cache->AcquireView(*f.ns, K(6), 0, 0, &v).ok());
  CHECK(std::vector<uint8_t>(v.data, v.data + v.size) == Bytes(v.size, 6));
  CHECK(f.cache->ReleaseView(v.id).ok());
  CHECK(f.remote->Count("put@0") == 0);
  CHECK(f.cache->StatsJson()["remote"]["promotions"] == 2);
}

TEST_CASE("committed stores go to the node once as their tenant, and deletes and bumps follow") {
  Fixture f;
  REQUIRE(f.Store(1, 7).ok());
  CHECK(f.Store(1, 7).code() == Code::kExists);
  CHECK(f.remote->Count("put@7") == 1);
  CHECK(f.remote->blocks.size() == 1);
  CHECK(f.cache->Delete(*f.ns, K(1), 7).ok());
  CHECK(f.remote->Count("delete@7") == 1);
  CHECK(f.remote->blocks.empty());
  // Only on the node: the delete still finds it.
  f.OnNode(2);
  CHECK(f.cache->Delete(*f.ns, K(2), 7).ok());
  CHECK(f.cache->Delete(*f.ns, K(2), 7).code() == Code::kNotFound);
  f.OnNode(3);
  f.cache->BumpRevision(*f.ns, 7);
  CHECK(f.remote->Count("bump@7") == 1);
  std::vector<BlockKey> keys{K(3)};
  CHECK(f.cache->Match(*f.ns, keys, nullptr) == 0);
  f.cache->SetRemoteIdentity(7, "seven", "secret");
  CHECK(f.remote->Count("identity seven@7") == 1);
}

TEST_CASE("a node that is down is a node_down miss while local stores and hits go on") {
  Fixture f;
  f.OnNode(1);
  f.remote->down = true;
  std::vector<BlockKey> keys{K(1)};
  CHECK(f.cache->Match(*f.ns, keys, nullptr) == 0);
  std::vector<uint8_t> dst(f.ns->shard_bytes);
  CHECK(f.cache->Load(*f.ns, K(1), 0, dst.data()).code() == Code::kNotFound);
  View v;
  CHECK(f.cache->AcquireView(*f.ns, K(1), 0, 0, &v).code() == Code::kNotFound);
  CHECK(f.cache->Stats().misses_by_reason[static_cast<int>(Miss::kNodeDown)] == 3);
  CHECK(f.cache->Stats().pending == 0);  // the view's reservation was aborted
  CHECK(f.cache->Stats().aborts == 0);   // ... and not counted as the caller's
  REQUIRE(f.Store(2).ok());
  std::vector<BlockKey> mine{K(2)};
  CHECK(f.cache->Match(*f.ns, mine, nullptr) == 1);
  CHECK(f.cache->Delete(*f.ns, K(2)).ok());  // local delete stands
}

TEST_CASE("a block of the wrong size on the node is a corrupt miss and never handed out") {
  Fixture f;
  f.OnNode(1);
  f.remote->wrong_size = 100;
  std::vector<uint8_t> dst(f.ns->shard_bytes);
  CHECK(f.cache->Load(*f.ns, K(1), 0, dst.data()).code() == Code::kNotFound);
  CHECK(f.cache->Stats().misses_by_reason[static_cast<int>(Miss::kCorrupt)] == 1);
  CHECK(f.cache->Stats().blocks == 0);
}

TEST_CASE("a batch load asks the node once, for the local misses only, and counts as loads one by one") {
  Fixture f;
  for (uint64_t i = 0; i < 8; ++i) f.OnNode(i);      // only on the node
  for (uint64_t i = 8; i < 12; ++i) REQUIRE(f.Store(i, 3).ok());  // local (and on the node)
  const size_t gets = f.remote->Count("get@3");
  std::vector<BlockKey> keys;
  for (uint64_t i = 0; i < 16; ++i) keys.push_back(K(i));  // 12..15: nowhere
  std::vector<std::vector<uint8_t>> bufs(keys.size(), std::vector<uint8_t>(f.ns->shard_bytes));
  std::vector<void*> dsts;
  for (auto& b : bufs) dsts.push_back(b.data());
  std::vector<Status> st(keys.size());
  f.cache->LoadBatch(*f.ns, keys, 0, dsts, 3, st);
  CHECK(f.remote->Count("batch of 12@3") == 1);
  CHECK(f.remote->Count("get@3") - gets == 12);
  for (uint64_t i = 0; i < 16; ++i) {
    CHECK(st[i].code() == (i < 12 ? Code::kOk : Code::kNotFound));
    if (i < 12) CHECK(bufs[i] == Bytes(bufs[i].size(), i));
  }
  auto j = f.cache->StatsJson();
  CHECK(j["hits"] == 12);
  CHECK(j["misses_by_reason"]["absent"] == 4);
  CHECK(j["remote"]["promotions"] == 8);
  CHECK(j["bytes_loaded"] == 12 * f.ns->shard_bytes);
  // Promoted: the same batch again asks the node only for the 4 absent keys.
  f.cache->LoadBatch(*f.ns, keys, 0, dsts, 3, st);
  CHECK(f.remote->Count("batch of 4@3") == 1);
  // A node that is down, or holds a block of the wrong size: node_down and corrupt.
  std::vector<BlockKey> more{K(20), K(0)};
  f.OnNode(20);
  std::vector<Status> st2(2);
  std::vector<void*> two{dsts[0], dsts[1]};
  f.remote->down = true;
  f.cache->LoadBatch(*f.ns, more, 0, two, 3, st2);
  CHECK(st2[0].code() == Code::kNotFound);
  CHECK(st2[1].ok());  // local
  f.remote->down = false;
  f.remote->wrong_size = 100;
  f.cache->LoadBatch(*f.ns, more, 0, two, 3, st2);
  CHECK(st2[0].code() == Code::kNotFound);
  j = f.cache->StatsJson();
  CHECK(j["misses_by_reason"]["node_down"] == 1);
  CHECK(j["misses_by_reason"]["corrupt"] == 1);
  CHECK(f.cache->StatsJson()["remote"]["promotions"] == 8);
}

TEST_CASE("a key given twice in a batch load is fetched once and counted as two loads one by one") {
  Fixture f;
  f.OnNode(1);
  f.OnNode(2);
  std::vector<BlockKey> keys{K(1), K(9), K(1), K(2), K(9)};  // 9: nowhere
  std::vector<std::vector<uint8_t>> bufs(keys.size(), std::vector<uint8_t>(f.ns->shard_bytes));
  std::vector<void*> dsts;
  for (auto& b : bufs) dsts.push_back(b.data());
  std::vector<Status> st(keys.size());
  f.cache->LoadBatch(*f.ns, keys, 0, dsts, 0, st);
  CHECK(f.remote->Count("batch of 3@0") == 1);
  CHECK(f.remote->Count("get@0") == 4);  // 1, 9 and 2 in the batch; 9 again, as a second Load asks
  const Code want[] = {Code::kOk, Code::kNotFound, Code::kOk, Code::kOk, Code::kNotFound};
  for (size_t i = 0; i < keys.size(); ++i) CHECK(st[i].code() == want[i]);
  CHECK(bufs[2] == Bytes(bufs[2].size(), 1));
  CHECK(bufs[3] == Bytes(bufs[3].size(), 2));
  const auto j = f.cache->StatsJson();
  CHECK(j["hits"] == 3);
  CHECK(j["misses_by_reason"]["absent"] == 2);
  CHECK(j["remote"]["promotions"] == 2);
}

}  // namespace
}  // namespace kvc
