#include "policy/wtinylfu_policy.h"

#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <random>

#include "policy/lru_policy.h"

namespace kvc {
namespace {

const EvictablePredicate kAny = [](PolicyHandle) { return true; };

// A cache of unit-weight blocks over a policy: hit or insert, evicting first.
class Harness {
 public:
  Harness(EvictionPolicy& policy, uint64_t capacity) : p_(policy), capacity_(capacity) {}

  bool Access(PolicyHandle h) {
    if (h >= resident_.size()) resident_.resize(h + 1, false);
    if (resident_[h]) {
      p_.Touch(h);
      ++hits_;
      return true;
    }
    while (used_ >= capacity_) {
      const auto v = p_.Victim(kAny);
      REQUIRE(v);
      p_.Erase(*v);
      resident_[*v] = false;
      --used_;
    }
    PolicyEntry e;
    e.key_hash = h * 0x9e3779b97f4a7c15ULL;
    p_.Insert(h, e);
    resident_[h] = true;
    ++used_;
    return false;
  }
  bool resident(PolicyHandle h) const { return h < resident_.size() && resident_[h]; }
  uint64_t hits() const { return hits_; }

 private:
  EvictionPolicy& p_;
  uint64_t capacity_;
  std::vector<bool> resident_;
  uint64_t used_ = 0;
  uint64_t hits_ = 0;
};

double Gauge(const EvictionPolicy& p, const std::string& name) {
  for (const auto& [k, v] : p.Gauges())
    if (k == name) return v;
  FAIL("no gauge " << name);
  return 0;
}

// Zipf(1) over `n` keys by inversion of a precomputed CDF.
class Zipf {
 public:
  explicit Zipf(uint32_t n) : cdf_(n) {
    double sum = 0;
    for (uint32_t i = 0; i < n; ++i) cdf_[i] = (sum += 1.0 / (i + 1));
    for (double& c : cdf_) c /= sum;
  }
  uint32_t operator()(std::mt19937& rng) {
    const double u = std::uniform_real_distribution<double>(0, 1)(rng);
    return static_cast<uint32_t>(std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin());
  }

 private:
  std::vector<double> cdf_;
};

// Popular keys from a Zipf(1) over 20,000 keys, with a one-off scan key
// every third access: frequency pays, recency does not.
template <class Fn>
void FrequencyWorkload(int accesses, Fn&& access) {
  std::mt19937 rng(11);
  Zipf zipf(20000);
  PolicyHandle scan = 1000000;
  for (int i = 0; i < accesses; ++i) access(i % 3 == 2 ? scan++ : zipf(rng));
}

// Every key is used twice, the second time after a uniformly random 0..1999
// newer keys, then never again: the larger the window (LRU at 100%), the
// more second uses hit; frequency says nothing.
template <class Fn>
void RecencyWorkload(int accesses, Fn&& access) {
  std::mt19937 rng(5);
  std::vector<std::vector<PolicyHandle>> again(static_cast<size_t>(accesses) + 2000);
  for (PolicyHandle t = 0; 2 * static_cast<int>(t) < accesses; ++t) {
    access(t);
    again[t + rng() % 2000].push_back(t);
    for (PolicyHandle k : again[t]) access(k);
  }
}

}  // namespace

TEST_CASE("wtinylfu: a frequent block survives a scan that flushes LRU") {
  WTinyLfuPolicy::Options fixed;
  fixed.initial_window_share = 0.01;
  fixed.adaptive = false;
  WTinyLfuPolicy w(100, fixed);
  LruPolicy l;
  Harness hw(w, 100), hl(l, 100);
  for (int round = 0; round < 10; ++round)
    for (PolicyHandle h = 0; h < 10; ++h) {
      hw.Access(h);
      hl.Access(h);
    }
  for (PolicyHandle h = 1000; h < 3000; ++h) {
    hw.Access(h);
    hl.Access(h);
  }
  for (PolicyHandle h = 0; h < 10; ++h) {
    CHECK(hw.resident(h));
    CHECK_FALSE(hl.resident(h));
  }
}

TEST_CASE("wtinylfu: segments account weights") {
  WTinyLfuPolicy p(1000);
  uint64_t total = 0;
  for (PolicyHandle h = 0; h < 100; ++h) {
    PolicyEntry e;
    e.key_hash = h;
    e.weight = 1 + h % 7;
    total += e.weight;
    p.Insert(h, e);
  }
  for (PolicyHandle h = 0; h < 100; h += 3) p.Touch(h);
  auto sum = [&] {
    return Gauge(p, "window_weight") + Gauge(p, "probation_weight") + Gauge(p, "protected_weight");
  };
  CHECK(sum() == doctest::Approx(static_cast<double>(total)));
  p.Erase(10);
  CHECK(sum() == doctest::Approx(static_cast<double>(total - (1 + 10 % 7))));
}

TEST_CASE("wtinylfu: starts with the whole capacity as window (LRU order)") {
  WTinyLfuPolicy p(10);
  CHECK(p.window_share() == 1.0);
  LruPolicy l;
  Harness hp(p, 10), hl(l, 10);
  // Before the climber's first sample the two agree exactly.
  std::mt19937 rng(3);
  for (int i = 0; i < 60; ++i) {
    const PolicyHandle h = rng() % 25;
    CHECK(hp.Access(h) == hl.Access(h));
  }
}

TEST_CASE("wtinylfu: the window adapts to the workload") {
  WTinyLfuPolicy::Options half;
  half.initial_window_share = 0.5;

  WTinyLfuPolicy freq(1000, half);
  Harness hf(freq, 1000);
  FrequencyWorkload(600000, [&](PolicyHandle h) { hf.Access(h); });
  CHECK(Gauge(freq, "climber_samples") > 20);
  const double freq_share = freq.window_share();

  WTinyLfuPolicy rec(1000, half);
  Harness hr(rec, 1000);
  RecencyWorkload(600000, [&](PolicyHandle h) { hr.Access(h); });
  const double rec_share = rec.window_share();

  MESSAGE("window share: frequency workload " << freq_share << ", recency workload " << rec_share);
  CHECK(freq_share < 0.35);  // from 0.5
  CHECK(rec_share > 0.75);   // from 0.5
}

TEST_CASE("wtinylfu: adaptive beats LRU on a frequency workload and fixed 1% on a recency one") {
  const uint64_t cap = 1000;
  auto run = [&](EvictionPolicy& p, bool frequency) {
    Harness h(p, cap);
    if (frequency)
      FrequencyWorkload(600000, [&](PolicyHandle x) { h.Access(x); });
    else
      RecencyWorkload(600000, [&](PolicyHandle x) { h.Access(x); });
    return h.hits();
  };
  WTinyLfuPolicy::Options fixed1;
  fixed1.initial_window_share = 0.01;
  fixed1.adaptive = false;
  {
    WTinyLfuPolicy adaptive(cap), fixed(cap, fixed1);
    LruPolicy lru;
    const uint64_t a = run(adaptive, true), f = run(fixed, true), l = run(lru, true);
    MESSAGE("frequency workload hits: adaptive " << a << ", fixed 1% " << f << ", lru " << l);
    CHECK(a > l * 105 / 100);
  }
  {
    WTinyLfuPolicy adaptive(cap), fixed(cap, fixed1);
    LruPolicy lru;
    const uint64_t a = run(adaptive, false), f = run(fixed, false), l = run(lru, false);
    MESSAGE("recency workload hits: adaptive " << a << ", fixed 1% " << f << ", lru " << l);
    CHECK(a > f * 2);
  }
}

}  // namespace kvc
