// What a draining node walks: Cache::ForEachHostBlock hottest first (the
// host policy's order), Cache::ForEachSsdOnlyBlock (the blocks only the SSD
// tier holds, in its policy's order, named only for open namespaces) and
// Cache::ReadSsdBlock.
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "core/cache.h"
#include "tier/ssd_tier.h"

namespace kvc {
namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/kvc-hottest-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

NamespaceFields Fields() {
  NamespaceFields f;
  f.model = "hot";
  f.revision = "r";
  f.layout.dtype = "fp16";
  f.layout.layers = 2;
  f.layout.kv_heads = 1;
  f.layout.head_dim = 64;
  f.layout.block_tokens = 16;
  return f;  // 8 KiB blocks
}

std::unique_ptr<Cache> Open(const std::string& ssd_dir, uint64_t host) {
  CacheOptions o;
  o.host_capacity_bytes = host;
  o.prefault = false;
  o.host_policy = "lru";
  o.ssd_policy = "lru";
  o.ssd_dir = ssd_dir;
  if (!ssd_dir.empty()) {
    o.ssd_capacity_bytes = 64ull << 20;
    o.ssd_segment_bytes = 1ull << 20;
  }
  o.promote_on_hit = false;
  o.demote_staging_bytes = 16ull << 20;  // no demotion dropped for want of staging room
  o.maintenance_interval_ms = 60000;
  auto c = Cache::Open(o);
  REQUIRE_MESSAGE(c.ok(), c.status().ToString());
  return std::move(c).value();
}

BlockKey K(uint64_t i) {
  BlockKey k;
  uint64_t x = i * 0x9E3779B97F4A7C15ull + 11;
  std::memcpy(k.bytes.data(), &x, 8);
  std::memcpy(k.bytes.data() + 8, &i, 8);
  return k;
}

uint8_t Byte(uint64_t i, uint64_t j) { return static_cast<uint8_t>((i * 131 + j * 7) >> 2); }

void Put(Cache& c, NamespaceState& ns, uint64_t i) {
  Reservation r;
  REQUIRE(c.BeginStore(ns, K(i), 0, {}, &r).ok());
  for (uint64_t j = 0; j < r.size; ++j) r.data[j] = Byte(i, j);
  REQUIRE(c.Commit(r).ok());
}

int64_t IndexOf(const BlockKey& k) {
  uint64_t i;
  std::memcpy(&i, k.bytes.data() + 8, 8);
  return static_cast<int64_t>(i);
}

std::vector<int64_t> HostOrder(Cache& c) {
  std::vector<int64_t> out;
  c.ForEachHostBlock([&](const Cache::HostBlock& b) { out.push_back(IndexOf(b.key)); });
  return out;
}

}  // namespace

TEST_CASE("ForEachHostBlock yields the host blocks hottest first (LRU: most recently used first)") {
  auto c = Open("", 1 << 20);
  auto& ns = **c->OpenNamespace(Fields());
  for (uint64_t i = 0; i < 8; ++i) Put(*c, ns, i);
  std::vector<uint8_t> buf(ns.shard_bytes);
  REQUIRE(c->Load(ns, K(2), 0, buf.data()).ok());
  REQUIRE(c->Load(ns, K(5), 0, buf.data()).ok());
  CHECK(HostOrder(*c) == std::vector<int64_t>{5, 2, 7, 6, 4, 3, 1, 0});
}

TEST_CASE("ForEachSsdOnlyBlock: the blocks only on SSD, in the SSD policy's order, readable; none of a namespace not open") {
  TempDir d;
  std::set<int64_t> ssd_only;
  {
    auto c = Open(d.path, 64 * 1024);  // 8 blocks of 8 KiB
    auto& ns = **c->OpenNamespace(Fields());
    for (uint64_t i = 0; i < 20; ++i) Put(*c, ns, i);
    REQUIRE(c->Flush().ok());
    REQUIRE(c->Stats().demotions == c->Stats().evictions);
    const auto host = HostOrder(*c);
    REQUIRE(!host.empty());
    const std::set<int64_t> on_host(host.begin(), host.end());

    // Touch one demoted block on the SSD tier: it comes first.
    c->ssd()->Touch(SsdBlockId{ns.hasher.seed(), K(3), 0});
    std::vector<Cache::HostBlock> blocks;
    Cache::SsdOnlySkips skips;
    c->ForEachSsdOnlyBlock([&](const Cache::HostBlock& b) { blocks.push_back(b); }, &skips);
    REQUIRE(!blocks.empty());
    CHECK(IndexOf(blocks[0].key) == 3);
    CHECK(skips.unknown_namespace == 0);
    CHECK(blocks.size() + on_host.size() == 20);  // every block, once, from one tier or the other
    for (const auto& b : blocks) {
      CAPTURE(IndexOf(b.key));
      CHECK(on_host.count(IndexOf(b.key)) == 0);
      CHECK(ssd_only.insert(IndexOf(b.key)).second);
      CHECK(b.ns == &ns);
      CHECK(b.size == ns.shard_bytes);
      CHECK(b.ttl_left_ms == 0);
      std::vector<uint8_t> bytes;
      REQUIRE(c->ReadSsdBlock(b, &bytes).ok());
      REQUIRE(bytes.size() == ns.shard_bytes);
      bool same = true;
      for (uint64_t j = 0; j < bytes.size(); ++j) same = same && bytes[j] == Byte(IndexOf(b.key), j);
      CHECK(same);
    }
    // Reading did not promote anything.
    CHECK(HostOrder(*c).size() == on_host.size());
  }
  // A restarted cache: the SSD tier still holds them, but their namespace
  // is not open, so they cannot be named.
  auto c = Open(d.path, 64 * 1024);
  Cache::SsdOnlySkips skips;
  size_t yielded = 0;
  c->ForEachSsdOnlyBlock([&](const Cache::HostBlock&) { ++yielded; }, &skips);
  CHECK(yielded == 0);
  CHECK(skips.unknown_namespace >= ssd_only.size());
  // Once it is opened again they are.
  auto& ns = **c->OpenNamespace(Fields());
  std::set<int64_t> again;
  c->ForEachSsdOnlyBlock([&](const Cache::HostBlock& b) {
    CHECK(b.ns == &ns);
    again.insert(IndexOf(b.key));
  });
  CHECK(again.size() >= ssd_only.size());
}

TEST_CASE("ForEachSsdOnlyBlock does nothing without an SSD tier") {
  auto c = Open("", 1 << 20);
  auto& ns = **c->OpenNamespace(Fields());
  Put(*c, ns, 1);
  size_t n = 0;
  c->ForEachSsdOnlyBlock([&](const Cache::HostBlock&) { ++n; });
  CHECK(n == 0);
  Cache::HostBlock b;
  b.ns = &ns;
  b.key = K(1);
  b.size = ns.shard_bytes;
  std::vector<uint8_t> out;
  CHECK(c->ReadSsdBlock(b, &out).code() == Code::kNotFound);
}

}  // namespace kvc
