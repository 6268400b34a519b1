// EvictionPolicy::HottestFirst: every policy lists each tracked handle once,
// touched (hot) blocks before untouched ones, and each policy's own order.
#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "policy/eviction_policy.h"
#include "policy/lru_policy.h"
#include "policy/prefix_aware_policy.h"
#include "policy/ttl_policy.h"
#include "policy/wtinylfu_policy.h"

namespace kvc {
namespace {

const EvictablePredicate kAny = [](PolicyHandle) { return true; };

std::unique_ptr<EvictionPolicy> Make(const std::string& name, uint64_t capacity) {
  auto made = MakePolicy(name, capacity);
  REQUIRE_MESSAGE(made.ok(), made.status().ToString());
  return std::move(made).value();
}

PolicyEntry Entry(uint64_t key, PolicyHandle parent = kNoHandle, int64_t expires_at = 0) {
  PolicyEntry e;
  e.key_hash = key * 0x9e3779b97f4a7c15ULL + 1;
  e.parent = parent;
  e.expires_at = expires_at;
  return e;
}

// Whether `order` lists exactly the handles of `resident`, once each.
void CheckPermutation(const std::vector<PolicyHandle>& order, const std::set<PolicyHandle>& resident) {
  CHECK(order.size() == resident.size());
  CHECK(std::set<PolicyHandle>(order.begin(), order.end()) == resident);
}

// The position of each handle in `order`.
std::vector<size_t> Positions(const std::vector<PolicyHandle>& order, size_t n) {
  std::vector<size_t> pos(n, SIZE_MAX);
  for (size_t i = 0; i < order.size(); ++i) pos[order[i]] = i;
  return pos;
}

}  // namespace

TEST_CASE("HottestFirst: every policy lists touched blocks before untouched ones, each once") {
  for (const std::string& name : PolicyNames()) {
    if (name.rfind("ttl", 0) == 0) continue;  // TTL ignores hits (its own test below)
    CAPTURE(name);
    // Unit weights, a capacity that holds them all: nothing is evicted.
    constexpr PolicyHandle kN = 40;
    auto p = Make(name, 1000);
    CHECK(p->HottestFirst().empty());
    std::set<PolicyHandle> resident;
    for (PolicyHandle h = 0; h < kN; ++h) {
      p->Insert(h, Entry(h));
      resident.insert(h);
    }
    // A few hot blocks, spread over the insertion order.
    const std::set<PolicyHandle> hot{3, 11, 17, 29, 38};
    for (PolicyHandle h : hot) p->Touch(h);
    const auto order = p->HottestFirst();
    CheckPermutation(order, resident);
    for (size_t i = 0; i < hot.size(); ++i) CHECK_MESSAGE(hot.count(order[i]) == 1, "position ", i);
  }
}

TEST_CASE("HottestFirst: the order stays a permutation of the resident set under churn") {
  for (const std::string& name : PolicyNames()) {
    CAPTURE(name);
    auto p = Make(name, 64);
    std::mt19937_64 rng(7);
    std::set<PolicyHandle> resident;
    int64_t clock = 1;
    for (int step = 0; step < 3000; ++step) {
      const PolicyHandle h = static_cast<PolicyHandle>(rng() % 200);
      ++clock;
      if (resident.count(h) != 0) {
        if (rng() % 5 == 0) {
          p->Erase(h);
          resident.erase(h);
        } else {
          p->Touch(h);
        }
        continue;
      }
      if (resident.size() >= 64) {
        auto v = p->Victim(kAny);
        REQUIRE(v);
        p->Erase(*v);
        resident.erase(*v);
      }
      // Chains (a parent among the residents) and some expiries.
      PolicyHandle parent = kNoHandle;
      if (rng() % 2 == 0) {
        auto it = resident.lower_bound(static_cast<PolicyHandle>(rng() % 200));
        if (it != resident.end()) parent = *it;
      }
      p->Insert(h, Entry(h, parent, rng() % 3 == 0 ? clock + static_cast<int64_t>(rng() % 1000) : 0));
      resident.insert(h);
      if (step % 500 == 0) CheckPermutation(p->HottestFirst(), resident);
    }
    CheckPermutation(p->HottestFirst(), resident);
  }
}

TEST_CASE("HottestFirst: LRU is most recently used first") {
  LruPolicy p;
  for (PolicyHandle h = 0; h < 5; ++h) p.Insert(h, Entry(h));
  p.Touch(1);
  p.Touch(3);
  CHECK(p.HottestFirst() == std::vector<PolicyHandle>{3, 1, 4, 2, 0});
  p.Erase(3);
  CHECK(p.HottestFirst() == std::vector<PolicyHandle>{1, 4, 2, 0});
}

TEST_CASE("HottestFirst: TTL lists the blocks it would keep longest first") {
  TtlPolicy p;
  p.Insert(0, Entry(0, kNoHandle, 500));
  p.Insert(1, Entry(1));
  p.Insert(2, Entry(2, kNoHandle, 100));
  p.Insert(3, Entry(3));
  p.Insert(4, Entry(4, kNoHandle, 900));
  p.Touch(0);  // a hit changes nothing
  // No expiry, newest first; then latest expiry first.
  CHECK(p.HottestFirst() == std::vector<PolicyHandle>{3, 1, 4, 0, 2});
  // The exact reverse of the order Victim names them in.
  std::vector<PolicyHandle> victims;
  while (auto v = p.Victim(kAny)) {
    victims.push_back(*v);
    p.Erase(*v);
  }
  CHECK(victims == std::vector<PolicyHandle>{2, 0, 4, 1, 3});
}

TEST_CASE("HottestFirst: W-TinyLFU lists protected, then window, then probation, each newest first") {
  WTinyLfuPolicy::Options o;
  o.initial_window_share = 0.25;  // window 2 of 8; main 6, protected up to 4.8
  o.adaptive = false;
  WTinyLfuPolicy p(8, o);
  for (PolicyHandle h = 0; h < 8; ++h) p.Insert(h, Entry(h));
  // The window holds the two newest (6, 7); 0..5 went to probation.
  p.Touch(2);  // probation -> protected
  p.Touch(0);
  p.Touch(6);  // window, to its newest end
  CHECK(p.HottestFirst() == std::vector<PolicyHandle>{0, 2, 6, 7, 5, 4, 3, 1});
}

TEST_CASE("HottestFirst: prefix-aware lists a block's ancestors before it, in the base's order") {
  PrefixAwarePolicy p(std::make_unique<LruPolicy>());
  // Chain 0 <- 1 <- 2, chain 3 <- 4, root 5.
  p.Insert(0, Entry(0));
  p.Insert(1, Entry(1, 0));
  p.Insert(2, Entry(2, 1));
  p.Insert(3, Entry(3));
  p.Insert(4, Entry(4, 3));
  p.Insert(5, Entry(5));
  p.Touch(2);  // the hottest: its chain comes first, root down
  p.Touch(5);
  // LRU alone: 5, 2, 4, 3, 1, 0.
  const auto order = p.HottestFirst();
  CHECK(order == std::vector<PolicyHandle>{5, 0, 1, 2, 3, 4});
  const auto pos = Positions(order, 6);
  CHECK(pos[0] < pos[1]);
  CHECK(pos[1] < pos[2]);
  CHECK(pos[3] < pos[4]);
}

}  // namespace kvc
