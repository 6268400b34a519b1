// The tier chain: host DRAM above an SSD tier. Write-back demotion,
// write-through, SSD hits served into the caller's buffer and promoted,
// match reporting tiers, revisions and TTLs across tiers, warm restart.
#include <doctest/doctest.h>

#include <chrono>
#include <cstring>
#include <thread>
#include <filesystem>
#include <string>
#include <vector>

#include "core/cache.h"

namespace kvc {
namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/kvc-chain-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

NamespaceFields Fields() {
  NamespaceFields f;
  f.model = "chain";
  f.revision = "r";
  f.layout.dtype = "fp16";
  f.layout.layers = 2;
  f.layout.kv_heads = 1;
  f.layout.head_dim = 64;
  f.layout.block_tokens = 16;
  return f;  // 8 KiB blocks
}

std::unique_ptr<Cache> Open(const std::string& dir, uint64_t host = 256 * 1024, bool promote = true) {
  CacheOptions o;
  o.host_capacity_bytes = host;  // 32 blocks
  o.prefault = false;
  o.host_policy = "lru";
  o.ssd_dir = dir;
  o.ssd_capacity_bytes = 64ull << 20;
  o.ssd_segment_bytes = 1ull << 20;
  o.promote_on_hit = promote;
  o.demote_staging_bytes = 16ull << 20;
  o.maintenance_interval_ms = 60000;
  auto c = Cache::Open(o);
  REQUIRE_MESSAGE(c.ok(), c.status().ToString());
  return std::move(c).value();
}

BlockKey K(uint64_t i) {
  BlockKey k;
  uint64_t x = i * 0x9E3779B97F4A7C15ull + 7;
  std::memcpy(k.bytes.data(), &x, 8);
  std::memcpy(k.bytes.data() + 8, &i, 8);
  return k;
}

void Fill(uint8_t* p, uint64_t n, uint64_t i) {
  for (uint64_t j = 0; j < n; ++j) p[j] = static_cast<uint8_t>((i * 131 + j * 7) >> 2);
}

bool Holds(const std::vector<uint8_t>& b, uint64_t i) {
  std::vector<uint8_t> w(b.size());
  Fill(w.data(), w.size(), i);
  return w == b;
}

Status Put(Cache& c, NamespaceState& ns, uint64_t i, bool through = false, bool durable = false,
           uint64_t ttl = 0) {
  StoreParams p;
  p.write_through = through;
  p.durable = durable;
  p.ttl_ms = ttl;
  Reservation r;
  KVC_RETURN_IF_ERROR(c.BeginStore(ns, K(i), 0, p, &r));
  Fill(r.data, r.size, i);
  return c.Commit(r);
}

}  // namespace

TEST_CASE("write-back: evicted blocks are demoted then served from SSD and promoted") {
  TempDir d;
  auto c = Open(d.path);
  auto& ns = **c->OpenNamespace(Fields());
  for (uint64_t i = 0; i < 100; ++i) REQUIRE(Put(*c, ns, i).ok());
  REQUIRE(c->Flush().ok());
  auto st = c->Stats();
  CHECK(st.evictions >= 68);
  CHECK(st.demotions == st.evictions);
  CHECK(st.ssd_blocks == st.demotions);

  // Block 0 left DRAM long ago: match says SSD, load serves the right bytes.
  std::vector<BlockKey> keys{K(0), K(1), K(99)};
  uint8_t tiers[3];
  CHECK(c->Match(ns, keys, tiers) == 3);
  CHECK(tiers[0] == 3);
  CHECK(tiers[2] == 2);
  std::vector<uint8_t> buf(ns.shard_bytes);
  REQUIRE(c->Load(ns, K(0), 0, buf.data()).ok());
  CHECK(Holds(buf, 0));
  CHECK(c->Stats().promotions == 1);
  CHECK(c->Match(ns, std::vector<BlockKey>{K(0)}, tiers) == 1);
  CHECK(tiers[0] == 2);  // promoted into DRAM
  // Views of SSD-only blocks promote first and pin in DRAM.
  View v;
  REQUIRE(c->AcquireView(ns, K(5), 0, 0, &v).ok());
  CHECK(std::memcmp(v.data, [&] { Fill(buf.data(), buf.size(), 5); return buf.data(); }(), v.size) == 0);
  CHECK(c->ReleaseView(v.id).ok());
}

TEST_CASE("write-through durable stores survive a restart - the index is rebuilt") {
  TempDir d;
  {
    auto c = Open(d.path);
    auto& ns = **c->OpenNamespace(Fields());
    for (uint64_t i = 0; i < 10; ++i) REQUIRE(Put(*c, ns, i, true, true).ok());
    CHECK(c->Stats().ssd_blocks == 10);
  }
  auto c = Open(d.path);
  auto& ns = **c->OpenNamespace(Fields());
  std::vector<uint8_t> buf(ns.shard_bytes);
  for (uint64_t i = 0; i < 10; ++i) {
    REQUIRE(c->Load(ns, K(i), 0, buf.data()).ok());
    CHECK(Holds(buf, i));
  }
  CHECK(c->Load(ns, K(10), 0, buf.data()).code() == Code::kNotFound);
}

TEST_CASE("a revision bump hides SSD blocks too and persists across a restart") {
  TempDir d;
  uint64_t epoch;
  {
    auto c = Open(d.path);
    auto& ns = **c->OpenNamespace(Fields());
    for (uint64_t i = 0; i < 5; ++i) REQUIRE(Put(*c, ns, i, true, true).ok());
    epoch = c->BumpRevision(ns);
    std::vector<uint8_t> buf(ns.shard_bytes);
    CHECK(c->Load(ns, K(1), 0, buf.data()).code() == Code::kNotFound);
    REQUIRE(Put(*c, ns, 7, true, true).ok());
  }
  auto c = Open(d.path);
  auto& ns = **c->OpenNamespace(Fields());
  CHECK(ns.epoch.load() == epoch);
  std::vector<uint8_t> buf(ns.shard_bytes);
  CHECK(c->Load(ns, K(1), 0, buf.data()).code() == Code::kNotFound);
  REQUIRE(c->Load(ns, K(7), 0, buf.data()).ok());
  CHECK(Holds(buf, 7));
}

TEST_CASE("an expired block is invisible in every tier") {
  TempDir d;
  auto c = Open(d.path);
  auto& ns = **c->OpenNamespace(Fields());
  REQUIRE(Put(*c, ns, 1, true, false, 30).ok());
  for (uint64_t i = 100; i < 150; ++i) REQUIRE(Put(*c, ns, i).ok());  // push 1 out of DRAM
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  std::vector<uint8_t> buf(ns.shard_bytes);
  CHECK(c->Load(ns, K(1), 0, buf.data()).code() == Code::kNotFound);
  CHECK(c->Match(ns, std::vector<BlockKey>{K(1)}, nullptr) == 0);
}

TEST_CASE("delete removes a block from every tier") {
  TempDir d;
  auto c = Open(d.path);
  auto& ns = **c->OpenNamespace(Fields());
  REQUIRE(Put(*c, ns, 3, true, true).ok());
  REQUIRE(c->Delete(ns, K(3)).ok());
  std::vector<uint8_t> buf(ns.shard_bytes);
  CHECK(c->Load(ns, K(3), 0, buf.data()).code() == Code::kNotFound);
  CHECK(c->Delete(ns, K(3)).code() == Code::kNotFound);
}

TEST_CASE("delete removes a block held only by the SSD tier (after a restart)") {
  // Cache::Delete skipped the SSD tier when the host tier had no entry of
  // the key: it answered NOT_FOUND and the block was served again.
  TempDir d;
  {
    auto c = Open(d.path);
    auto& ns = **c->OpenNamespace(Fields());
    REQUIRE(Put(*c, ns, 4, true, true).ok());
  }
  auto c = Open(d.path, 256 * 1024, /*promote=*/false);
  auto& ns = **c->OpenNamespace(Fields());
  uint8_t tier = 0;
  REQUIRE(c->Match(ns, std::vector<BlockKey>{K(4)}, &tier) == 1);
  CHECK(tier == 3);  // on the SSD tier only
  REQUIRE(c->Delete(ns, K(4)).ok());
  std::vector<uint8_t> buf(ns.shard_bytes);
  CHECK(c->Load(ns, K(4), 0, buf.data()).code() == Code::kNotFound);
  CHECK(c->Match(ns, std::vector<BlockKey>{K(4)}, nullptr) == 0);
  CHECK(c->Delete(ns, K(4)).code() == Code::kNotFound);
}

TEST_CASE("a second cache on the same SSD directory is refused") {
  TempDir d;
  auto c = Open(d.path);
  CacheOptions o;
  o.host_capacity_bytes = 1 << 20;
  o.prefault = false;
  o.ssd_dir = d.path;
  o.ssd_capacity_bytes = 64ull << 20;
  auto second = Cache::Open(o);
  CHECK(second.status().code() == Code::kUnavailable);
}

}  // namespace kvc
