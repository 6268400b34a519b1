// SsdTier: the contract (put, lookup, read, erase, replace, capacity,
// eviction order, checksums, epochs, expiry, ForEach, stats, quotas,
// concurrency, restart).
#include "tier/ssd_tier.h"

#include <doctest/doctest.h>

#include <atomic>
#include <random>
#include <set>
#include <thread>

#include "tier/ssd_format.h"
#include "tier/ssd_io.h"
#include "ssd_test_util.h"

namespace kvc {
namespace {

using namespace ssdtest;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

TEST_CASE("ssd: open refuses bad options") {
  TempDir d;
  SsdOptions o;
  CHECK(SsdTier::Open(o).status().code() == Code::kInvalidArgument);  // no dir
  o.dir = d.path();
  CHECK(SsdTier::Open(o).status().code() == Code::kInvalidArgument);  // no capacity
  o.capacity_bytes = 256 << 10;
  CHECK(SsdTier::Open(o).status().code() == Code::kInvalidArgument);  // below 8 segments
  o.capacity_bytes = 16 << 20;
  o.segment_bytes = 4096;
  CHECK(SsdTier::Open(o).status().code() == Code::kInvalidArgument);
  o.segment_bytes = 1 << 20;
  o.policy = "nope";
  Status st = SsdTier::Open(o).status();
  CHECK(st.code() == Code::kInvalidArgument);
  CHECK(st.message().find("lru") != std::string::npos);
  o.policy = "";
  o.max_live_share = 1.5;
  CHECK(SsdTier::Open(o).status().code() == Code::kInvalidArgument);
  o.max_live_share = 0.9;
  o.dir = d.path() + "/a/b/c";  // created, parents too
  CHECK(SsdTier::Open(o).ok());
}

TEST_CASE("ssd: put lookup read replace and erase") {
  TempDir d;
  auto t = OpenTier(SmallOptions(d.path()));
  const auto v = ValueOf(1, 12345);
  SsdMeta m = MetaOf(v, /*tenant=*/7, /*epoch=*/3, /*expires=*/NowMs() + 3600 * 1000);
  REQUIRE(t->Put(IdOf(1), m, v.data(), false).ok());

  SsdMeta got;
  REQUIRE(t->Lookup(IdOf(1), &got));
  CHECK(got.len == m.len);
  CHECK(got.checksum == m.checksum);
  CHECK(got.tenant == 7);
  CHECK(got.epoch == 3);
  CHECK(got.expires_at_unix_ms == m.expires_at_unix_ms);
  CHECK_FALSE(t->Lookup(IdOf(2), nullptr));
  SsdBlockId other_shard = IdOf(1);
  other_shard.shard = 5;
  CHECK_FALSE(t->Lookup(other_shard, nullptr));
  SsdBlockId other_ns = IdOf(1, Ns(9));
  CHECK_FALSE(t->Lookup(other_ns, nullptr));

  CHECK(ReadBack(*t, 1, v.size()).ok());  // from the write buffer
  REQUIRE(t->Flush().ok());
  CHECK(ReadBack(*t, 1, v.size()).ok());  // from the disk
  std::vector<uint8_t> buf(v.size() + 1);
  CHECK(t->Read(IdOf(1), buf.data(), v.size() + 1).code() == Code::kLayout);
  CHECK(t->Read(IdOf(2), buf.data(), 10).code() == Code::kNotFound);

  // Replace: the newest value wins, also after a restart.
  const auto v2 = ValueOf(1001, 5000);
  REQUIRE(t->Put(IdOf(1), MetaOf(v2, 7, 3), v2.data(), true).ok());
  std::vector<uint8_t> got2(v2.size());
  REQUIRE(t->Read(IdOf(1), got2.data(), got2.size()).ok());
  CHECK(got2 == v2);
  CHECK(t->Stats().blocks == 1);

  CHECK(t->Erase(IdOf(1)).ok());
  CHECK_FALSE(t->Lookup(IdOf(1), nullptr));
  CHECK(t->Erase(IdOf(1)).code() == Code::kNotFound);
  CHECK(t->Read(IdOf(1), got2.data(), got2.size()).code() == Code::kNotFound);

  // A checksum that does not match the bytes is refused.
  SsdMeta bad = MetaOf(v);
  bad.checksum ^= 1;
  CHECK(t->Put(IdOf(3), bad, v.data(), false).code() == Code::kInvalidArgument);
  CHECK_FALSE(t->Lookup(IdOf(3), nullptr));
  // An empty value is a value.
  std::vector<uint8_t> empty;
  REQUIRE(t->Put(IdOf(4), MetaOf(empty), nullptr, false).ok());
  CHECK(t->Read(IdOf(4), nullptr, 0).ok());
}

TEST_CASE("ssd: blocks and replacements and erases survive a restart") {
  TempDir d;
  const SsdOptions o = SmallOptions(d.path());
  {
    auto t = OpenTier(o);
    for (uint64_t i = 0; i < 60; ++i) REQUIRE(PutIndex(*t, i, LenOf(i), false).ok());
    for (uint64_t i = 0; i < 60; i += 3) REQUIRE(t->Erase(IdOf(i)).ok());
    for (uint64_t i = 1; i < 60; i += 3) REQUIRE(PutIndex(*t, i + 1000000, LenOf(i), false).ok());
    // Replace block 2 with other bytes (of block 5002).
    auto v = ValueOf(5002, 3000);
    REQUIRE(t->Put(IdOf(2), MetaOf(v), v.data(), false).ok());
  }  // closes cleanly: everything flushed and sealed
  auto t = OpenTier(o);
  SsdStats s = t->Stats();
  CHECK(s.recovery_discarded_records == 0);
  CHECK(s.recovery_discarded_bytes == 0);
  for (uint64_t i = 0; i < 60; ++i) {
    INFO("block " << i);
    if (i % 3 == 0) {
      CHECK_FALSE(t->Lookup(IdOf(i), nullptr));
    } else if (i == 2) {
      std::vector<uint8_t> got(3000);
      REQUIRE(t->Read(IdOf(2), got.data(), got.size()).ok());
      CHECK(got == ValueOf(5002, 3000));
    } else {
      CHECK(ReadBack(*t, i, LenOf(i)).ok());
    }
  }
  CHECK(s.recovered_blocks == 40 + 20);
  CHECK(t->Stats().checksum_failures == 0);
}

TEST_CASE("ssd: reads land in aligned and unaligned buffers with direct or buffered I/O") {
  for (bool direct : {true, false}) {
    TempDir d;
    SsdOptions o = SmallOptions(d.path(), 64 << 20, 4 << 20);
    o.direct_io = direct;
    auto t = OpenTier(o);
    CHECK(t->Stats().direct_io == direct);  // /tmp is ext4 here: O_DIRECT works
    for (uint64_t len : {uint64_t{4096}, uint64_t{65536}, uint64_t{1} << 20, uint64_t{777},
                         uint64_t{777777}, uint64_t{3} << 20}) {
      REQUIRE(PutIndex(*t, len, len, true).ok());
      ssd::AlignedBuffer aligned(len + 4096);
      REQUIRE(t->Read(IdOf(len), aligned.data(), len).ok());
      CHECK(std::memcmp(aligned.data(), ValueOf(len, len).data(), len) == 0);
      REQUIRE(t->Read(IdOf(len), aligned.data() + 1, len).ok());
      CHECK(std::memcmp(aligned.data() + 1, ValueOf(len, len).data(), len) == 0);
    }
    // Too large for a segment.
    std::vector<uint8_t> huge(4 << 20);
    CHECK(t->Put(IdOf(99), MetaOf(huge), huge.data(), false).code() == Code::kInvalidArgument);
  }
}

TEST_CASE("ssd: capacity is never exceeded on disk and cleaning reclaims space") {
  TempDir d;
  const uint64_t capacity = 8 << 20;
  auto t = OpenTier(SmallOptions(d.path(), capacity, 1 << 20, "wtinylfu"));
  std::mt19937_64 rng(1);
  std::set<uint64_t> erased;
  for (uint64_t i = 0; i < 1200; ++i) {
    REQUIRE(PutIndex(*t, i, LenOf(i, 100, 100000), i % 50 == 0).ok());
    if (rng() % 5 == 0) {
      uint64_t j = rng() % (i + 1);
      if (t->Erase(IdOf(j)).ok()) erased.insert(j);
    }
    if (rng() % 3 == 0) {
      uint64_t j = rng() % (i + 1);
      Status st = ReadBack(*t, j, LenOf(j, 100, 100000));
      CHECK((st.ok() || st.code() == Code::kNotFound));
    }
    SsdStats s = t->Stats();
    REQUIRE(s.used_bytes <= capacity);
    REQUIRE(SegmentBytesOnDisk(d.path()) <= capacity);
  }
  SsdStats s = t->Stats();
  CHECK(s.evictions > 0);
  CHECK(s.segments_cleaned > 0);
  CHECK(s.checksum_failures == 0);
  CHECK(s.segments <= capacity / (1 << 20));
  MESSAGE("cleaning under random erases and wtinylfu eviction: " << s.segments_cleaned
          << " segments cleaned, " << s.bytes_relocated << " bytes relocated for "
          << s.bytes_written << " written (" << s.evictions << " evictions)");
  t.reset();
  // After a restart, erased blocks stay erased and what is served is right.
  t = OpenTier(SmallOptions(d.path(), capacity, 1 << 20, "wtinylfu"));
  uint64_t served = 0;
  t->ForEach([&](const SsdBlockId& id, const SsdMeta& m) {
    const uint64_t i = IndexOf(id);
    CHECK(erased.count(i) == 0);
    CHECK(m.len == LenOf(i, 100, 100000));
    CHECK(ReadBack(*t, i, m.len).ok());
    ++served;
  });
  CHECK(served > 0);
  CHECK(SegmentBytesOnDisk(d.path()) <= capacity);
}

TEST_CASE("ssd: eviction under pressure follows the policy (lru)") {
  TempDir d;
  auto t = OpenTier(SmallOptions(d.path(), 8 << 20, 1 << 20, "lru"));
  const uint64_t len = 60 << 10;  // 64 KiB on disk with its header page
  for (uint64_t i = 0; i < 300; ++i) {
    REQUIRE(PutIndex(*t, i, len, false).ok());
    if (i > 0) t->Touch(IdOf(0));  // kept hot
  }
  SsdStats s = t->Stats();
  CHECK(s.evictions > 0);
  std::vector<uint64_t> present;
  for (uint64_t i = 0; i < 300; ++i)
    if (t->Lookup(IdOf(i), nullptr)) present.push_back(i);
  // Block 0 survived; the others present are exactly the newest ones.
  REQUIRE(!present.empty());
  CHECK(present.front() == 0);
  const uint64_t oldest = present[1];
  CHECK(present.size() - 1 == 300 - oldest);
  CHECK(present.size() * (len + 4096) <= (8 << 20) * 0.9);
  CHECK(present.size() > 60);
}

TEST_CASE("ssd: expiry metadata is kept and expired blocks are not served") {
  TempDir d;
  const SsdOptions o = SmallOptions(d.path());
  {
    auto t = OpenTier(o);
    auto v = ValueOf(1, 4000);
    REQUIRE(t->Put(IdOf(1), MetaOf(v, 0, 0, NowMs() + 3600000), v.data(), false).ok());
    REQUIRE(t->Put(IdOf(2), MetaOf(v, 0, 0, NowMs() + 150), v.data(), false).ok());
    REQUIRE(t->Put(IdOf(3), MetaOf(v, 0, 0, NowMs() - 1), v.data(), false).ok());
    CHECK(t->Lookup(IdOf(1), nullptr));
    CHECK(t->Lookup(IdOf(2), nullptr));
    CHECK_FALSE(t->Lookup(IdOf(3), nullptr));
    std::vector<uint8_t> buf(4000);
    CHECK(t->Read(IdOf(3), buf.data(), buf.size()).code() == Code::kNotFound);
    CHECK(t->Stats().expired == 1);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto t = OpenTier(o);
  SsdMeta m;
  REQUIRE(t->Lookup(IdOf(1), &m));
  CHECK(m.expires_at_unix_ms > NowMs());
  CHECK_FALSE(t->Lookup(IdOf(2), nullptr));
  CHECK(t->Stats().blocks == 1);
}

TEST_CASE("ssd: namespace epochs are persisted and hide older blocks") {
  TempDir d;
  const SsdOptions o = SmallOptions(d.path());
  const BlockKey a = Ns(1), b = Ns(2);
  {
    auto t = OpenTier(o);
    CHECK(t->NamespaceEpoch(a) == 0);
    for (uint64_t i = 0; i < 10; ++i) {
      auto v = ValueOf(i, 3000);
      REQUIRE(t->Put(IdOf(i, a), MetaOf(v, 0, 1), v.data(), false).ok());
      REQUIRE(t->Put(IdOf(i, b), MetaOf(v, 0, 1), v.data(), false).ok());
    }
    auto v = ValueOf(100, 3000);
    REQUIRE(t->Put(IdOf(100, a), MetaOf(v, 0, 2), v.data(), false).ok());
    REQUIRE(t->BumpNamespace(a, 2).ok());
    CHECK(t->NamespaceEpoch(a) == 2);
    CHECK(t->NamespaceEpoch(b) == 0);
    for (uint64_t i = 0; i < 10; ++i) {
      CHECK_FALSE(t->Lookup(IdOf(i, a), nullptr));
      CHECK(t->Lookup(IdOf(i, b), nullptr));
    }
    CHECK(t->Lookup(IdOf(100, a), nullptr));
    CHECK(t->Stats().stale_removed == 10);
    CHECK(t->BumpNamespace(a, 1).code() == Code::kInvalidArgument);
    CHECK(t->BumpNamespace(a, 2).ok());  // idempotent
    CHECK(t->Put(IdOf(5, a), MetaOf(ValueOf(5, 3000), 0, 1), ValueOf(5, 3000).data(), false)
              .code() == Code::kInvalidArgument);
  }
  // The old records are still in the segments; the persisted epoch hides them.
  auto t = OpenTier(o);
  CHECK(t->NamespaceEpoch(a) == 2);
  for (uint64_t i = 0; i < 10; ++i) {
    CHECK_FALSE(t->Lookup(IdOf(i, a), nullptr));
    CHECK(t->Lookup(IdOf(i, b), nullptr));
  }
  CHECK(t->Lookup(IdOf(100, a), nullptr));
}

TEST_CASE("ssd: ForEach and stats account for what happened") {
  TempDir d;
  auto t = OpenTier(SmallOptions(d.path()));
  for (uint64_t i = 0; i < 20; ++i) REQUIRE(PutIndex(*t, i, 10000, false, i % 3).ok());
  REQUIRE(t->Flush().ok());
  std::set<uint64_t> seen;
  t->ForEach([&](const SsdBlockId& id, const SsdMeta& m) {
    seen.insert(IndexOf(id));
    CHECK(m.len == 10000);
    CHECK(m.tenant == IndexOf(id) % 3);
  });
  CHECK(seen.size() == 20);
  for (uint64_t i = 0; i < 10; ++i) CHECK(ReadBack(*t, i, 10000).ok());
  std::vector<uint8_t> buf(10000);
  CHECK(t->Read(IdOf(500), buf.data(), buf.size()).code() == Code::kNotFound);
  SsdStats s = t->Stats();
  CHECK(s.puts == 20);
  CHECK(s.blocks == 20);
  CHECK(s.live_bytes == 200000);
  CHECK(s.reads == 11);
  CHECK(s.hits == 10);
  CHECK(s.misses == 1);
  CHECK(s.bytes_written >= 20 * (4096 + 12288));
  CHECK(s.bytes_read >= 10 * (4096 + 10000));
  CHECK(s.segments >= 1);
  CHECK(s.used_bytes >= 20 * (4096 + 12288));
  CHECK(t->TenantBlocks(0) == 7);
  CHECK(t->TenantBytes(1) == 70000);
  CHECK(t->TenantBlocks(2) == 6);
  nlohmann::json j = t->StatsJson();
  CHECK(j["blocks"] == 20);
  CHECK(j["hits"] == 10);
  CHECK(j["io"]["direct"] == s.direct_io);
  CHECK(j["io"]["io_uring"] == s.io_uring);
  CHECK(j["tenants"]["1"]["bytes"] == 70000);
  CHECK(j["policy"]["name"] == "lru");
  CHECK(j.contains("recovery_discarded_records"));
  CHECK(j.contains("checksum_failures"));
  MESSAGE("ssd tier io: direct=" << s.direct_io << " io_uring=" << s.io_uring);
}

TEST_CASE("ssd: a tenant at its quota evicts its own blocks and never another tenant's") {
  TempDir d;
  auto t = OpenTier(SmallOptions(d.path(), 32 << 20, 1 << 20, "wtinylfu"));
  for (uint64_t i = 0; i < 30; ++i) REQUIRE(PutIndex(*t, 1000 + i, 20000, false, 2).ok());
  t->SetTenantQuota(1, 200000);
  for (uint64_t i = 0; i < 40; ++i) {
    REQUIRE(PutIndex(*t, i, 20000, false, 1).ok());
    CHECK(t->TenantBytes(1) <= 200000);
  }
  CHECK(t->TenantBytes(1) == 200000);
  CHECK(t->TenantBlocks(1) == 10);
  for (uint64_t i = 0; i < 30; ++i) CHECK(t->Lookup(IdOf(1000 + i), nullptr));
  CHECK(t->TenantBlocks(2) == 30);
  SsdStats s = t->Stats();
  CHECK(s.quota_evictions == 30);
  CHECK(s.evictions == 30);
  // Larger than the quota: refused.
  CHECK(PutIndex(*t, 77, 300000, false, 1).code() == Code::kQuota);
  // Replacing a block of the tenant at its quota needs no eviction.
  CHECK(PutIndex(*t, 39, 20000, false, 1).ok());
  CHECK(t->Stats().quota_evictions == 30);
  // Lowering the quota evicts at once.
  t->SetTenantQuota(1, 50000);
  CHECK(t->TenantBytes(1) <= 50000);
  CHECK(t->TenantBlocks(2) == 30);
  CHECK(t->StatsJson()["tenants"]["1"]["quota"] == 50000);
  t->SetTenantQuota(1, 0);  // no limit
  for (uint64_t i = 100; i < 110; ++i) REQUIRE(PutIndex(*t, i, 20000, false, 1).ok());
  CHECK(t->TenantBytes(1) >= 200000);
}

TEST_CASE("ssd: concurrent puts and reads from several threads return the right bytes") {
  TempDir d;
  auto t = OpenTier(SmallOptions(d.path(), 12 << 20, 1 << 20, "wtinylfu"));
  constexpr int kThreads = 4;
  constexpr uint64_t kPerThread = 400;
  std::atomic<uint64_t> wrong{0}, ok_reads{0}, failures{0};
  std::vector<std::thread> threads;
  for (int th = 0; th < kThreads; ++th) {
    threads.emplace_back([&, th] {
      std::mt19937_64 rng(th);
      for (uint64_t n = 0; n < kPerThread; ++n) {
        const uint64_t i = th * 100000 + n;
        Status st = PutIndex(*t, i, LenOf(i, 500, 40000), n % 40 == 0);
        if (!st.ok()) ++failures;
        for (int r = 0; r < 2; ++r) {
          const uint64_t j = (rng() % kThreads) * 100000 + rng() % (n + 1);
          Status rs = ReadBack(*t, j, LenOf(j, 500, 40000));
          if (rs.ok()) {
            ++ok_reads;
          } else if (rs.code() == Code::kInternal || rs.code() == Code::kCorrupt) {
            ++wrong;
          }
        }
        if (n % 50 == 0) (void)t->Erase(IdOf(i - 1));
        if (n % 97 == 0) (void)t->Flush();
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(wrong == 0);
  CHECK(failures == 0);
  CHECK(ok_reads > 0);
  SsdStats s = t->Stats();
  CHECK(s.checksum_failures == 0);
  CHECK(s.evictions > 0);
  CHECK(s.used_bytes <= 12 << 20);
  t.reset();
  t = OpenTier(SmallOptions(d.path(), 12 << 20, 1 << 20, "wtinylfu"));
  t->ForEach([&](const SsdBlockId& id, const SsdMeta& m) {
    CHECK(ReadBack(*t, IndexOf(id), m.len).ok());
  });
  CHECK(t->Stats().checksum_failures == 0);
}

TEST_CASE("ssd: a filesystem without O_DIRECT falls back to buffered I/O") {
  ScratchMount m("ramfs", "");
  if (!m.ok()) {
    MESSAGE("SKIPPED LOUDLY: cannot mount a ramfs to test the buffered fallback (" << m.why()
                                                                                 << ")");
    return;
  }
  auto t = OpenTier(SmallOptions(m.path() + "/ssd"));
  CHECK_FALSE(t->Stats().direct_io);
  for (uint64_t i = 0; i < 20; ++i) REQUIRE(PutIndex(*t, i, LenOf(i), i % 2 == 0).ok());
  for (uint64_t i = 0; i < 20; ++i) CHECK(ReadBack(*t, i, LenOf(i)).ok());
  t.reset();
  t = OpenTier(SmallOptions(m.path() + "/ssd"));
  for (uint64_t i = 0; i < 20; ++i) CHECK(ReadBack(*t, i, LenOf(i)).ok());
}

TEST_CASE("ssd: under global pressure a flood never takes another tenant below its quota") {
  TempDir d;
  // A tier too small for both tenants: tenant 2's quota is its guaranteed
  // share; tenant 1 (no quota) floods it.
  auto t = OpenTier(SmallOptions(d.path(), 4 << 20, 1 << 20, "lru"));
  t->SetTenantQuota(2, 1 << 20);
  for (uint64_t i = 0; i < 40; ++i) REQUIRE(PutIndex(*t, 5000 + i, 20000, false, 2).ok());
  const uint64_t guaranteed = t->TenantBytes(2);
  CHECK(guaranteed <= (1u << 20));
  CHECK(guaranteed >= 40 * 20000 - 1);
  for (uint64_t i = 0; i < 400; ++i) {
    Status s = PutIndex(*t, i, 20000, false, 1);
    CHECK((s.ok() || s.code() == Code::kNoSpace));
    CHECK(t->TenantBytes(2) == guaranteed);
  }
  CHECK(t->Stats().evictions > 0);  // tenant 1 evicted its own blocks
}

}  // namespace kvc
