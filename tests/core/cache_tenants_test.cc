// Cache::ReloadTenants: live tenant changes, safe against concurrent
// authentication; a deleted tenant's blocks are the first evicted.
#include "core/cache.h"

#include <doctest/doctest.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <thread>
#include <unistd.h>
#include <vector>

namespace kvc {
namespace {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/kvc-tenants-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

NamespaceFields Fields(const std::string& salt) {
  NamespaceFields f;
  f.model = "m";
  f.revision = "r";
  f.salt = salt;
  f.layout.dtype = "fp16";
  f.layout.layers = 1;
  f.layout.kv_heads = 1;
  f.layout.head_dim = 64;
  f.layout.block_tokens = 16;
  f.layout.shards = 1;
  return f;  // 4096 bytes a block
}

BlockKey Key(uint64_t i) {
  BlockKey k;
  std::memcpy(k.bytes.data(), &i, 8);
  std::memcpy(k.bytes.data() + 8, &i, 8);
  return k;
}

Status Put(Cache& c, NamespaceState& ns, uint64_t i, uint32_t tenant) {
  Reservation r;
  StoreParams p;
  p.tenant = tenant;
  KVC_RETURN_IF_ERROR(c.BeginStore(ns, Key(i), 0, p, &r));
  std::memset(r.data, static_cast<int>(i), r.size);
  return c.Commit(r);
}

std::unique_ptr<Cache> Open(const std::string& tenants, uint64_t capacity = 1 << 20) {
  CacheOptions o;
  o.host_capacity_bytes = capacity;
  o.prefault = false;
  o.tenants_path = tenants;
  auto c = Cache::Open(o);
  REQUIRE(c.ok());
  return std::move(c).value();
}

}  // namespace

TEST_CASE("ReloadTenants needs a tenants file") {
  CacheOptions o;
  o.host_capacity_bytes = 1 << 20;
  o.prefault = false;
  auto c = Cache::Open(o);
  REQUIRE(c.ok());
  CHECK((*c)->ReloadTenants().code() == Code::kUnsupported);
}

TEST_CASE("a reload applies created and deleted tenants, and quotas, at once") {
  TempDir d;
  const std::string file = (d.path / "tenants.json").string();
  TenantConfig a;
  a.name = "acme";
  auto acme = TenantRegistry::Create(file, a);
  REQUIRE(acme.ok());
  auto cache = Open(file);
  CHECK(cache->Authenticate("acme", *acme).ok());
  TenantConfig b;
  b.name = "beta";
  auto beta = TenantRegistry::Create(file, b);
  REQUIRE(beta.ok());
  CHECK(cache->Authenticate("beta", *beta).status().code() == Code::kPermission);  // not yet read
  REQUIRE(cache->ReloadTenants().ok());
  CHECK(cache->Authenticate("beta", *beta).ok());
  REQUIRE(TenantRegistry::SetQuota(file, "beta", 8192, std::nullopt, std::nullopt).ok());
  REQUIRE(cache->ReloadTenants().ok());
  auto t = cache->tenants().Find("beta");
  REQUIRE(t.has_value());
  CHECK(t->host_quota_bytes == 8192);
  // The quota holds: beta's third 4 KiB block evicts its own first.
  const uint32_t beta_id = t->id;
  auto ns = cache->OpenNamespace(Fields(t->salt));
  REQUIRE(ns.ok());
  for (uint64_t i = 0; i < 3; ++i) CHECK(Put(*cache, **ns, i, beta_id).ok());
  auto rows = cache->StatsJson()["tenants"];
  for (const auto& r : rows)
    if (r["name"] == "beta") CHECK(r["host_bytes"].get<uint64_t>() <= 8192);
  REQUIRE(TenantRegistry::Delete(file, "beta").ok());
  REQUIRE(cache->ReloadTenants().ok());
  CHECK(cache->Authenticate("beta", *beta).status().code() == Code::kPermission);
  CHECK(cache->Authenticate("acme", *acme).ok());
  // A malformed file leaves the tenants as they were.
  { std::FILE* f = std::fopen(file.c_str(), "w"); std::fputs("{not json", f); std::fclose(f); }
  CHECK(cache->ReloadTenants().code() == Code::kParse);
  CHECK(cache->Authenticate("acme", *acme).ok());
}

TEST_CASE("a deleted tenant's host blocks leave at once, before anyone else's") {
  TempDir d;
  const std::string file = (d.path / "tenants.json").string();
  TenantConfig c1, c2;
  c1.name = "gone";
  c2.name = "stays";
  REQUIRE(TenantRegistry::Create(file, c1).ok());
  REQUIRE(TenantRegistry::Create(file, c2).ok());
  auto cache = Open(file, 64 * 4096);  // 64 blocks
  const auto gone = *cache->tenants().Find("gone");
  const auto stays = *cache->tenants().Find("stays");
  auto ns_gone = cache->OpenNamespace(Fields(gone.salt));
  auto ns_stays = cache->OpenNamespace(Fields(stays.salt));
  REQUIRE((ns_gone.ok() && ns_stays.ok()));
  // `stays` first: by recency alone its blocks would go before `gone`'s.
  for (uint64_t i = 0; i < 16; ++i) REQUIRE(Put(*cache, **ns_stays, 1000 + i, stays.id).ok());
  for (uint64_t i = 0; i < 32; ++i) REQUIRE(Put(*cache, **ns_gone, i, gone.id).ok());
  REQUIRE(TenantRegistry::Delete(file, "gone").ok());
  REQUIRE(cache->ReloadTenants().ok());
  CHECK(cache->Stats().blocks == 16);
  // 32 more blocks of `stays` need 16 blocks of room: all of it from `gone`.
  for (uint64_t i = 16; i < 48; ++i) REQUIRE(Put(*cache, **ns_stays, 1000 + i, stays.id).ok());
  std::vector<BlockKey> keys;
  for (uint64_t i = 0; i < 48; ++i) keys.push_back(Key(1000 + i));
  size_t present = 0;
  for (const auto& k : keys) present += cache->Match(**ns_stays, std::span<const BlockKey>(&k, 1), nullptr, stays.id);
  CHECK(present == 48);
}

TEST_CASE("reloads race authentication safely") {
  TempDir d;
  const std::string file = (d.path / "tenants.json").string();
  TenantConfig a;
  a.name = "acme";
  auto acme = TenantRegistry::Create(file, a);
  REQUIRE(acme.ok());
  auto cache = Open(file);
  std::atomic<bool> stop{false};
  std::atomic<int> refused{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t)
    readers.emplace_back([&] {
      while (!stop.load()) {
        if (!cache->Authenticate("acme", *acme).ok()) refused.fetch_add(1);
        (void)cache->StatsJson();
        for (const auto& x : cache->tenants().tenants()) (void)x.name.size();
      }
    });
  for (int i = 0; i < 40; ++i) {
    TenantConfig t;
    t.name = "t" + std::to_string(i);
    REQUIRE(TenantRegistry::Create(file, t).ok());
    REQUIRE(cache->ReloadTenants().ok());
    if (i % 2) {
      REQUIRE(TenantRegistry::Delete(file, t.name).ok());
      REQUIRE(cache->ReloadTenants().ok());
    }
  }
  stop = true;
  for (auto& th : readers) th.join();
  CHECK(refused.load() == 0);
  CHECK(cache->tenants().tenants().size() == 21);
}

// TenantRegistry::SyncCluster: the file's cluster tenants made exactly an
// etcd cluster's list (NodeService::ApplyClusterTenants).
namespace {

TenantConfig ClusterTenant(const std::string& name, char secret, Isolation iso = Isolation::kIsolated) {
  TenantConfig t;
  t.name = name;
  t.isolation = iso;
  t.credential_sha256 = std::string(64, secret);
  if (iso == Isolation::kIsolated) t.salt = std::string(32, secret);
  t.id = 99;  // ignored
  return t;
}

std::optional<TenantConfig> InFile(const std::string& file, const std::string& name) {
  auto r = TenantRegistry::Load(file);
  REQUIRE(r.ok());
  return r->Find(name);
}

}  // namespace

TEST_CASE("SyncCluster adds, updates, replaces and removes cluster tenants, and leaves local ones") {
  TempDir d;
  const std::string file = (d.path / "tenants.json").string();
  TenantConfig l;
  l.name = "local";
  REQUIRE(TenantRegistry::Create(file, l).ok());
  const uint32_t local_id = InFile(file, "local")->id;

  bool changed = false;
  REQUIRE(TenantRegistry::SyncCluster(file, {ClusterTenant("a", 'a'), ClusterTenant("b", 'b')}, &changed).ok());
  CHECK(changed);
  auto a = InFile(file, "a");
  REQUIRE(a.has_value());
  CHECK(a->cluster);
  CHECK(a->id != 99);
  CHECK(a->salt == std::string(32, 'a'));
  CHECK_FALSE(InFile(file, "local")->cluster);

  // The same list again: nothing written.
  REQUIRE(TenantRegistry::SyncCluster(file, {ClusterTenant("a", 'a'), ClusterTenant("b", 'b')}, &changed).ok());
  CHECK_FALSE(changed);

  // Quotas only: the same id. Another credential: a new id (its blocks go).
  TenantConfig a2 = ClusterTenant("a", 'a');
  a2.host_quota_bytes = 1 << 20;
  a2.borrow = true;
  REQUIRE(TenantRegistry::SyncCluster(file, {a2, ClusterTenant("b", 'c')}, &changed).ok());
  CHECK(changed);
  CHECK(InFile(file, "a")->id == a->id);
  CHECK(InFile(file, "a")->host_quota_bytes == 1 << 20);
  CHECK(InFile(file, "a")->borrow);
  const auto b2 = InFile(file, "b");
  CHECK(b2->credential_sha256 == std::string(64, 'c'));
  CHECK(b2->id > a->id);

  // A cluster tenant of a local tenant's name replaces it.
  REQUIRE(TenantRegistry::SyncCluster(file, {a2, ClusterTenant("local", 'l', Isolation::kShared)}, &changed).ok());
  auto lc = InFile(file, "local");
  CHECK(lc->cluster);
  CHECK(lc->id != local_id);
  CHECK(lc->salt.empty());
  CHECK_FALSE(InFile(file, "b").has_value());  // no longer listed

  // An empty list removes the cluster tenants only.
  TenantConfig keep;
  keep.name = "keep";
  REQUIRE(TenantRegistry::Create(file, keep).ok());
  REQUIRE(TenantRegistry::SyncCluster(file, {}, &changed).ok());
  CHECK(changed);
  auto r = TenantRegistry::Load(file);
  REQUIRE(r.ok());
  REQUIRE(r->tenants().size() == 1);
  CHECK(r->tenants().begin()->name == "keep");
  // Ids are never reused.
  CHECK(r->next_id() > lc->id);
}

TEST_CASE("SyncCluster refuses a bad name and changes nothing; local edits of cluster tenants are refused") {
  TempDir d;
  const std::string file = (d.path / "tenants.json").string();
  REQUIRE(TenantRegistry::SyncCluster(file, {ClusterTenant("a", 'a')}, nullptr).ok());
  bool changed = true;
  Status s = TenantRegistry::SyncCluster(file, {ClusterTenant("b", 'b'), ClusterTenant("bad name", 'x')}, &changed);
  CHECK(s.code() == Code::kInvalidArgument);
  CHECK(InFile(file, "a").has_value());
  CHECK_FALSE(InFile(file, "b").has_value());

  CHECK(TenantRegistry::SetQuota(file, "a", 4096, std::nullopt, std::nullopt).code() == Code::kPermission);
  CHECK(TenantRegistry::Delete(file, "a").code() == Code::kPermission);
  CHECK(InFile(file, "a")->host_quota_bytes == 0);
  TenantConfig dup;
  dup.name = "a";
  CHECK(TenantRegistry::Create(file, dup).status().code() == Code::kExists);

  // A damaged file: a clear error, and the file is left as it is.
  { std::FILE* f = std::fopen(file.c_str(), "w"); std::fputs("{not json", f); std::fclose(f); }
  CHECK(TenantRegistry::SyncCluster(file, {ClusterTenant("a", 'a')}, &changed).code() == Code::kParse);
}

TEST_CASE("a cluster tenant replaced by SyncCluster loses its host blocks at the reload") {
  TempDir d;
  const std::string file = (d.path / "tenants.json").string();
  REQUIRE(TenantRegistry::SyncCluster(file, {ClusterTenant("a", 'a'), ClusterTenant("z", 'z')}, nullptr).ok());
  auto cache = Open(file);
  const auto a = *cache->tenants().Find("a");
  const auto z = *cache->tenants().Find("z");
  auto ns_a = cache->OpenNamespace(Fields(a.salt));
  auto ns_z = cache->OpenNamespace(Fields(z.salt));
  REQUIRE((ns_a.ok() && ns_z.ok()));
  for (uint64_t i = 0; i < 4; ++i) REQUIRE(Put(*cache, **ns_a, i, a.id).ok());
  REQUIRE(Put(*cache, **ns_z, 100, z.id).ok());
  bool changed = false;
  REQUIRE(TenantRegistry::SyncCluster(file, {ClusterTenant("a", 'n'), ClusterTenant("z", 'z')}, &changed).ok());
  REQUIRE(changed);
  REQUIRE(cache->ReloadTenants().ok());
  CHECK(cache->Stats().blocks == 1);  // z's
  CHECK(cache->tenants().Find("a")->id != a.id);
  CHECK(cache->tenants().Find("z")->id == z.id);
}

}  // namespace kvc
