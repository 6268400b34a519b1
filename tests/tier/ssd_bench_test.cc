// A small benchmark of the SSD tier, not a timed test: skipped unless asked
// for by name, e.g.
//   KVC_SSD_BENCH_DIR=/mnt/nvme/x kvc_tier_tests --no-skip -tc="ssd bench*"
// It writes 1 MiB values (KVC_SSD_BENCH_MIB of them, default 1024), reads
// them back with one thread and with four, and reads the same segment files
// with `dd bs=1M iflag=direct` on the same disk in the same run; the issue's
// target is a single-thread Read rate of at least 70% of dd's.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include <xxhash.h>

#include "ssd_test_util.h"
#include "tier/ssd_io.h"
#include "tier/ssd_tier.h"

namespace kvc {
namespace {

using namespace ssdtest;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// Runs a command, returning its combined output.
std::string Run(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return out;
  char buf[512];
  while (std::fgets(buf, sizeof(buf), p) != nullptr) out += buf;
  ::pclose(p);
  return out;
}

}  // namespace

TEST_CASE("ssd bench: 1 MiB reads against dd iflag=direct" * doctest::skip()) {
  const std::string base = Env("KVC_SSD_BENCH_DIR", "/tmp");
  const uint64_t n = std::stoull(Env("KVC_SSD_BENCH_MIB", "1024"));
  const uint64_t kValue = 1 << 20;
  const std::string dir = base + "/kvc-ssd-bench";
  std::filesystem::remove_all(dir);
  SsdOptions o;
  o.dir = dir;
  o.capacity_bytes = (n + n / 4 + 64) << 20;
  o.policy = "lru";
  o.max_live_share = 0.95;
  auto t = OpenTier(o);

  // Values: distinct bytes per block, 4 KiB-aligned buffers.
  ssd::AlignedBuffer buf(kValue);
  auto start = Clock::now();
  for (uint64_t i = 0; i < n; ++i) {
    std::memcpy(buf.data(), &i, 8);
    std::memset(buf.data() + 8, static_cast<int>(i), kValue - 8);
    SsdMeta m;
    m.len = kValue;
    m.checksum = XXH3_64bits(buf.data(), kValue);
    REQUIRE(t->Put(IdOf(i), m, buf.data(), false).ok());
  }
  REQUIRE(t->Flush().ok());
  const double write_s = Seconds(start);

  // Rounds alternate the tier and dd, so both see the disk in the same mood;
  // the best round of each is compared.
  constexpr int kRounds = 3;
  constexpr int kThreads = 4;
  const double gb = static_cast<double>(n * kValue) / 1e9;
  double best1 = 0, best4 = 0, best_dd = 0;
  std::string rounds;
  for (int round = 0; round < kRounds; ++round) {
    start = Clock::now();
    for (uint64_t i = 0; i < n; ++i) REQUIRE(t->Read(IdOf(i), buf.data(), kValue).ok());
    const double r1 = gb / Seconds(start);

    uint64_t dd_bytes = 0;
    start = Clock::now();
    for (const auto& [no, path] : SegmentFiles(dir)) {
      Run("dd if=" + path + " of=/dev/null bs=1M iflag=direct status=none");
      dd_bytes += std::filesystem::file_size(path);
    }
    const double dd = static_cast<double>(dd_bytes) / 1e9 / Seconds(start);

    start = Clock::now();
    std::vector<std::thread> threads;
    for (int th = 0; th < kThreads; ++th) {
      threads.emplace_back([&, th] {
        ssd::AlignedBuffer mine(kValue);
        for (uint64_t i = th; i < n; i += kThreads) {
          CHECK(t->Read(IdOf(i), mine.data(), kValue).ok());
        }
      });
    }
    for (auto& th : threads) th.join();
    const double r4 = gb / Seconds(start);
    best1 = std::max(best1, r1);
    best4 = std::max(best4, r4);
    best_dd = std::max(best_dd, dd);
    rounds += "  round " + std::to_string(round) + ": Read 1 thr " + std::to_string(r1) +
              ", dd " + std::to_string(dd) + ", Read 4 thr " + std::to_string(r4) +
              " GB/s (ratio " + std::to_string(r1 / dd) + ")\n";
  }
  const SsdStats s = t->Stats();
  const std::string one = SegmentFiles(dir).begin()->second;
  const std::string dd_line = Run("dd if=" + one + " of=/dev/null bs=1M iflag=direct");
  MESSAGE("ssd bench in " << dir << " (direct_io=" << s.direct_io << ", io_uring=" << s.io_uring
                          << "), " << n << " x 1 MiB values:\n"
                          << "  Put+Flush " << gb / write_s << " GB/s\n"
                          << rounds << "  best: Read 1 thr " << best1 << ", Read " << kThreads
                          << " thr " << best4 << ", dd iflag=direct bs=1M " << best_dd
                          << " GB/s; Read (1 thr) / dd = " << best1 / best_dd << "\n"
                          << "  one dd: " << dd_line);
  CHECK(s.checksum_failures == 0);
  CHECK(s.hits == s.reads);
  t.reset();
  std::filesystem::remove_all(dir);
}

}  // namespace kvc
