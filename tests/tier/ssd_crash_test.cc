// SsdTier crash consistency and damage: a child process writing blocks is
// SIGKILLed at random points, and the directory reopened must serve every
// block acknowledged durable, and nothing with wrong bytes; then segments are
// damaged on purpose (value bytes, header bytes, footer bytes, a cut, a
// garbage file, NAMESPACES) and each damaged block must become a counted
// miss while the others still load.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <random>
#include <set>
#include <thread>

#include "ssd_test_util.h"
#include "tier/ssd_format.h"
#include "tier/ssd_io.h"
#include "tier/ssd_segment.h"
#include "tier/ssd_tier.h"

namespace kvc {
namespace {

using namespace ssdtest;

constexpr uint64_t kCrashCapacity = 16 << 20;
constexpr uint64_t kCrashSegment = 1 << 20;
constexpr uint64_t kChildBudget = 3 << 20;  // value bytes a child writes before idling

SsdOptions CrashOptions(const std::string& dir) {
  return SmallOptions(dir, kCrashCapacity, kCrashSegment, "lru");
}

// The items of segment file `path` (number `no`), as Open would read them.
ssd::SegmentScan Scan(const std::string& path, uint64_t no) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  ssd::SegmentScan sc;
  REQUIRE(ssd::ScanSegment(fd, path, no, &sc).ok());
  ::close(fd);
  return sc;
}

void FlipByte(const std::string& path, uint64_t off) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  REQUIRE(fd >= 0);
  uint8_t b;
  REQUIRE(::pread(fd, &b, 1, static_cast<off_t>(off)) == 1);
  b ^= 0x5a;
  REQUIRE(::pwrite(fd, &b, 1, static_cast<off_t>(off)) == 1);
  ::close(fd);
}

}  // namespace

// The child: stores blocks start, start+1, ... (bytes and length follow from
// the index) with a mix of durable Puts, plain Puts made durable by Flush, and
// Erases made durable by Flush, reporting on fd 3 "p <i>" for each block
// acknowledged durable, "x <i>" before erasing block i and "e <i>" once that
// erase is acknowledged durable.
TEST_CASE("ssd child: crash writer" * doctest::skip()) {
  const std::string dir = Env("KVC_SSD_CHILD_DIR");
  if (dir.empty()) return;
  const uint64_t start = std::stoull(Env("KVC_SSD_CHILD_START", "0"));
  auto opened = SsdTier::Open(CrashOptions(dir));
  if (!opened.ok()) {
    Report("open-failed " + opened.status().ToString());
    return;
  }
  auto& t = *opened.value();
  Report("r");
  std::mt19937_64 rng(start);
  std::vector<uint64_t> unflushed, mine;
  std::vector<uint64_t> erase_unflushed;
  uint64_t written = 0;
  for (uint64_t i = start; written < kChildBudget; ++i) {
    const uint64_t len = LenOf(i);
    const int what = static_cast<int>(rng() % 10);
    const bool durable = what < 2;
    if (!PutIndex(t, i, len, durable).ok()) {
      Report("put-failed " + std::to_string(i));
      continue;
    }
    written += len;
    if (durable) {
      Report("p " + std::to_string(i));
      mine.push_back(i);
    } else {
      unflushed.push_back(i);
    }
    if (what == 9 && !mine.empty()) {
      const uint64_t victim = mine[rng() % mine.size()];
      Report("x " + std::to_string(victim));  // may be gone from now on
      if (t.Erase(IdOf(victim)).ok()) erase_unflushed.push_back(victim);
    }
    if (what == 8 || unflushed.size() > 24) {
      if (t.Flush().ok()) {
        for (uint64_t u : unflushed) {
          Report("p " + std::to_string(u));
          mine.push_back(u);
        }
        for (uint64_t e : erase_unflushed) Report("e " + std::to_string(e));
        unflushed.clear();
        erase_unflushed.clear();
      }
    }
  }
  Report("idle");
  for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
}

TEST_CASE("ssd: SIGKILL at random points never loses a durable block or serves a wrong one") {
  TempDir d;
  const std::string dir = d.sub("ssd");
  std::mt19937_64 rng(20240611);
  std::set<uint64_t> erased;  // acknowledged durable erases, across runs
  uint64_t kills_while_writing = 0, scanned = 0, total_acked = 0, last_served = 0;
  constexpr int kRuns = 60;
  for (int run = 0; run < kRuns; ++run) {
    const uint64_t start = static_cast<uint64_t>(run) * 1000000;
    Child child("ssd child: crash writer",
                {{"KVC_SSD_CHILD_DIR", dir}, {"KVC_SSD_CHILD_START", std::to_string(start)}});
    std::string line;
    if (run % 8 == 7) {
      // Now and then, kill it early: during its own recovery or first writes.
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 8000));
    } else {
      REQUIRE(child.ReadLine(&line, 20000));
      REQUIRE(line == "r");
      std::this_thread::sleep_for(std::chrono::microseconds(1000 + rng() % 60000));
    }
    child.Kill();
    std::set<uint64_t> acked, erasing;
    bool idle = false;
    for (const std::string& l : child.RestLines()) {
      INFO(l);
      if (l.rfind("p ", 0) == 0) {
        acked.insert(std::stoull(l.substr(2)));
      } else if (l.rfind("e ", 0) == 0) {
        erased.insert(std::stoull(l.substr(2)));
      } else if (l.rfind("x ", 0) == 0) {
        erasing.insert(std::stoull(l.substr(2)));
      } else if (l == "idle") {
        idle = true;
      } else {
        CHECK((l == "r"));
      }
    }
    if (!idle) ++kills_while_writing;
    total_acked += acked.size();

    auto t = OpenTier(CrashOptions(dir));
    const SsdStats rs = t->Stats();
    if (rs.recovery_scanned_segments > 0) ++scanned;
    INFO("run " << run);
    // Every block acknowledged durable in this run is served, with its bytes
    // (the capacity holds several runs, and LRU evicts older runs first).
    for (uint64_t i : acked) {
      if (erasing.count(i)) continue;  // an erase was under way: it may have reached the disk
      INFO("acknowledged block " << i);
      const Status st = ReadBack(*t, i, LenOf(i));
      INFO(st.ToString());
      CHECK(st.ok());
    }
    // Whatever is served has its key's bytes; erased blocks stay erased.
    uint64_t served = 0;
    t->ForEach([&](const SsdBlockId& id, const SsdMeta& m) {
      const uint64_t i = IndexOf(id);
      INFO("served block " << i);
      CHECK(erased.count(i) == 0);
      CHECK(m.len == LenOf(i));
      CHECK(ReadBack(*t, i, m.len).ok());
      ++served;
    });
    const SsdStats s = t->Stats();
    CHECK(s.checksum_failures == 0);  // torn records were discarded at Open
    last_served = served;
    CHECK(s.used_bytes <= kCrashCapacity);
    CHECK(SegmentBytesOnDisk(dir) <= kCrashCapacity);
  }
  MESSAGE("crash runs: " << kRuns << ", killed while writing: " << kills_while_writing
                         << ", reopened with a segment to scan: " << scanned
                         << ", durable acks checked: " << total_acked
                         << ", blocks served at the end: " << last_served << " in "
                         << SegmentFiles(dir).size() << " segments");
  CHECK(kills_while_writing >= kRuns / 2);
  CHECK(scanned >= kRuns / 2);
}

namespace {

// A directory of `n` blocks over several sealed segments (closed cleanly).
struct Damaged {
  TempDir d;
  std::string dir = d.sub("ssd");
  static constexpr uint64_t kBlocks = 48;
  static uint64_t Len(uint64_t i) { return 20000 + i * 37; }
  SsdOptions opts = SmallOptions(dir, 16 << 20, 512 << 10, "lru");

  Damaged() {
    auto t = OpenTier(opts);
    for (uint64_t i = 0; i < kBlocks; ++i) REQUIRE(PutIndex(*t, i, Len(i), false).ok());
  }
  // (segment number, item) of block i.
  std::pair<uint64_t, ssd::RecordHeader> Find(uint64_t i) {
    for (const auto& [no, path] : SegmentFiles(dir)) {
      for (const auto& h : Scan(path, no).items)
        if (h.id == IdOf(i)) return {no, h};
    }
    FAIL("block " << i << " is in no segment");
    return {};
  }
  std::string PathOf(uint64_t no) { return SegmentFiles(dir).at(no); }
  // Every block but `except` reads back right; returns how many were read.
  uint64_t CheckOthers(SsdTier& t, const std::set<uint64_t>& except) {
    uint64_t n = 0;
    for (uint64_t i = 0; i < kBlocks; ++i) {
      if (except.count(i)) continue;
      INFO("block " << i);
      CHECK(ReadBack(t, i, Len(i)).ok());
      ++n;
    }
    return n;
  }
};

}  // namespace

TEST_CASE("ssd: damaged bytes on disk become counted misses and never wrong bytes") {
  SUBCASE("a flipped byte in a value") {
    Damaged dm;
    REQUIRE(SegmentFiles(dm.dir).size() >= 3);
    auto [no, h] = dm.Find(20);
    FlipByte(dm.PathOf(no), h.offset + ssd::kPage + 1234);
    auto t = OpenTier(dm.opts);
    CHECK(t->Lookup(IdOf(20), nullptr));  // headers are verified at Open, values at Read
    CHECK(ReadBack(*t, 20, Damaged::Len(20)).code() == Code::kCorrupt);
    CHECK_FALSE(t->Lookup(IdOf(20), nullptr));  // dropped
    CHECK(t->Stats().checksum_failures == 1);
    CHECK(t->Stats().misses == 1);
    dm.CheckOthers(*t, {20});
  }
  SUBCASE("a flipped byte in a large value (read in pieces, hashed as they arrive)") {
    Damaged dm;
    std::set<uint64_t> big;
    {
      auto t = OpenTier(dm.opts);
      for (uint64_t i = 100; i < 104; ++i) {
        REQUIRE(PutIndex(*t, i, 333333 + i, false).ok());
        big.insert(i);
      }
    }
    auto [no, h] = dm.Find(101);
    FlipByte(dm.PathOf(no), h.offset + ssd::kPage + 333333 + 100);  // the last byte
    auto [no2, h2] = dm.Find(102);
    FlipByte(dm.PathOf(no2), h2.offset + ssd::kPage + 100000);  // the middle
    auto t = OpenTier(dm.opts);
    CHECK(ReadBack(*t, 100, 333433).ok());
    CHECK(ReadBack(*t, 101, 333434).code() == Code::kCorrupt);
    ssd::AlignedBuffer aligned(1 << 20);
    CHECK(t->Read(IdOf(102), aligned.data(), 333435).code() == Code::kCorrupt);
    CHECK(std::all_of(aligned.data(), aligned.data() + 333435, [](uint8_t b) { return b == 0; }));
    CHECK(ReadBack(*t, 103, 333436).ok());
    CHECK(t->Stats().checksum_failures == 2);
    dm.CheckOthers(*t, {});
  }
  SUBCASE("a flipped byte in a record header") {
    Damaged dm;
    auto [no, h] = dm.Find(7);
    FlipByte(dm.PathOf(no), h.offset + 50);
    auto t = OpenTier(dm.opts);
    CHECK(ReadBack(*t, 7, Damaged::Len(7)).code() == Code::kCorrupt);
    CHECK(t->Stats().checksum_failures == 1);
    dm.CheckOthers(*t, {7});
  }
  SUBCASE("a flipped byte in a footer: the segment is scanned instead") {
    Damaged dm;
    auto [no, h] = dm.Find(30);
    const std::string path = dm.PathOf(no);
    const auto sc = Scan(path, no);
    REQUIRE(sc.from_footer);
    FlipByte(path, sc.end + 10);
    auto t = OpenTier(dm.opts);
    const SsdStats s = t->Stats();
    CHECK(s.recovered_blocks == Damaged::kBlocks);
    CHECK(s.recovery_discarded_records == 0);
    CHECK(s.recovery_discarded_bytes > 0);  // the damaged footer, rewritten
    dm.CheckOthers(*t, {});
    t.reset();
    CHECK(Scan(path, no).from_footer);  // sealed again
  }
  SUBCASE("a segment cut in the middle of a record") {
    Damaged dm;
    auto [no, h] = dm.Find(25);
    const std::string path = dm.PathOf(no);
    const auto before = Scan(path, no);
    REQUIRE(::truncate(path.c_str(), static_cast<off_t>(h.offset + ssd::kPage + 100)) == 0);
    std::set<uint64_t> lost;
    for (const auto& item : before.items)
      if (item.offset >= h.offset) lost.insert(IndexOf(item.id));
    REQUIRE(lost.count(25));
    auto t = OpenTier(dm.opts);
    const SsdStats s = t->Stats();
    CHECK(s.recovery_discarded_records == 1);
    CHECK(s.recovery_discarded_bytes == ssd::kPage + 100);
    CHECK(s.recovered_blocks == Damaged::kBlocks - lost.size());
    for (uint64_t i : lost) CHECK_FALSE(t->Lookup(IdOf(i), nullptr));
    CHECK(dm.CheckOthers(*t, lost) == Damaged::kBlocks - lost.size());
  }
  SUBCASE("an unsealed segment with a damaged value keeps the records after it") {
    Damaged dm;
    auto [no, h] = dm.Find(26);
    const std::string path = dm.PathOf(no);
    const auto before = Scan(path, no);
    REQUIRE(::truncate(path.c_str(), static_cast<off_t>(before.end)) == 0);  // no footer
    FlipByte(path, h.offset + ssd::kPage + 5);
    auto t = OpenTier(dm.opts);
    const SsdStats s = t->Stats();
    CHECK(s.recovery_discarded_records == 1);
    CHECK_FALSE(t->Lookup(IdOf(26), nullptr));
    CHECK(dm.CheckOthers(*t, {26}) == Damaged::kBlocks - 1);
  }
  SUBCASE("an unsealed segment with a damaged header loses the records from there on") {
    Damaged dm;
    auto [no, h] = dm.Find(27);
    const std::string path = dm.PathOf(no);
    const auto before = Scan(path, no);
    REQUIRE(::truncate(path.c_str(), static_cast<off_t>(before.end)) == 0);
    FlipByte(path, h.offset + 3);
    std::set<uint64_t> lost;
    for (const auto& item : before.items)
      if (item.offset >= h.offset) lost.insert(IndexOf(item.id));
    auto t = OpenTier(dm.opts);
    const SsdStats s = t->Stats();
    CHECK(s.recovery_discarded_records == 1);
    CHECK(s.recovery_discarded_bytes == before.end - h.offset);
    for (uint64_t i : lost) CHECK_FALSE(t->Lookup(IdOf(i), nullptr));
    CHECK(dm.CheckOthers(*t, lost) == Damaged::kBlocks - lost.size());
  }
  SUBCASE("a garbage segment file") {
    Damaged dm;
    const std::string junk = dm.dir + "/" + ssd::SegmentFileName(999);
    {
      std::vector<uint8_t> bytes = ValueOf(4242, 100000);
      int fd = ::open(junk.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      REQUIRE(fd >= 0);
      REQUIRE(::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
      ::close(fd);
    }
    auto t = OpenTier(dm.opts);
    const SsdStats s = t->Stats();
    CHECK(s.recovery_discarded_bytes == 100000);
    CHECK(s.recovery_discarded_records == 1);
    CHECK(s.recovered_blocks == Damaged::kBlocks);
    CHECK_FALSE(std::filesystem::exists(junk));
    dm.CheckOthers(*t, {});
    // New segments are numbered past it.
    REQUIRE(PutIndex(*t, 500, 1000, true).ok());
    CHECK(SegmentFiles(dm.dir).rbegin()->first > 999);
  }
  SUBCASE("a damaged NAMESPACES file refuses to open") {
    Damaged dm;
    {
      auto t = OpenTier(dm.opts);
      REQUIRE(t->BumpNamespace(Ns(), 5).ok());
    }
    FlipByte(dm.dir + "/NAMESPACES", 20);
    Status st = SsdTier::Open(dm.opts).status();
    CHECK(st.code() == Code::kCorrupt);
    CHECK(st.message().find("NAMESPACES") != std::string::npos);
  }
}

}  // namespace kvc
