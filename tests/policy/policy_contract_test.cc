// The EvictionPolicy contract, run against every policy MakePolicy knows.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "policy/eviction_policy.h"

namespace kvc {
namespace {

struct Lru {
  static constexpr const char* kName = "lru";
  static constexpr bool kPrefix = false;
};
struct WTinyLfu {
  static constexpr const char* kName = "wtinylfu";
  static constexpr bool kPrefix = false;
};
struct Ttl {
  static constexpr const char* kName = "ttl";
  static constexpr bool kPrefix = false;
};
struct LruPrefix {
  static constexpr const char* kName = "lru-prefix";
  static constexpr bool kPrefix = true;
};
struct WTinyLfuPrefix {
  static constexpr const char* kName = "wtinylfu-prefix";
  static constexpr bool kPrefix = true;
};
#define KVC_ALL_POLICIES Lru, WTinyLfu, Ttl, LruPrefix, WTinyLfuPrefix

std::unique_ptr<EvictionPolicy> Make(const char* name, uint64_t capacity) {
  auto made = MakePolicy(name, capacity);
  REQUIRE_MESSAGE(made.ok(), made.status().ToString());
  return std::move(made).value();
}

PolicyEntry Entry(uint64_t key, uint64_t weight = 1, int64_t expires_at = 0,
                  PolicyHandle parent = kNoHandle) {
  PolicyEntry e;
  e.key_hash = key * 0x9e3779b97f4a7c15ULL + 1;
  e.weight = weight;
  e.expires_at = expires_at;
  e.parent = parent;
  return e;
}

const EvictablePredicate kAny = [](PolicyHandle) { return true; };

// Evicts everything (Victim then Erase) and returns the handles in order.
std::vector<PolicyHandle> Drain(EvictionPolicy& p) {
  std::vector<PolicyHandle> order;
  while (auto v = p.Victim(kAny)) {
    p.Erase(*v);
    order.push_back(*v);
  }
  return order;
}

}  // namespace

TEST_CASE("the contract suite covers every policy the factory knows") {
  const std::set<std::string> covered{Lru::kName, WTinyLfu::kName, Ttl::kName, LruPrefix::kName,
                                      WTinyLfuPrefix::kName};
  CHECK(std::set<std::string>(PolicyNames().begin(), PolicyNames().end()) == covered);
}

TEST_CASE_TEMPLATE("policy contract: name and empty state", T, KVC_ALL_POLICIES) {
  auto p = Make(T::kName, 100);
  CHECK(p->name() == T::kName);
  CHECK(p->size() == 0);
  CHECK_FALSE(p->Victim(kAny).has_value());
  p->RecordMiss(42);  // a miss of an absent key tracks nothing
  CHECK(p->size() == 0);
  CHECK_FALSE(p->Victim(kAny).has_value());
}

TEST_CASE_TEMPLATE("policy contract: insert and erase keep size", T, KVC_ALL_POLICIES) {
  auto p = Make(T::kName, 100);
  for (PolicyHandle h = 0; h < 50; ++h) p->Insert(h, Entry(h));
  CHECK(p->size() == 50);
  for (PolicyHandle h = 0; h < 50; h += 2) p->Erase(h);
  CHECK(p->size() == 25);
  for (PolicyHandle h = 1; h < 50; h += 2) p->Touch(h);
  CHECK(p->size() == 25);
  const auto order = Drain(*p);
  CHECK(order.size() == 25);
  for (PolicyHandle h : order) CHECK(h % 2 == 1);
  CHECK(p->size() == 0);
}

TEST_CASE_TEMPLATE("policy contract: every handle is evicted exactly once", T, KVC_ALL_POLICIES) {
  auto p = Make(T::kName, 64);
  for (PolicyHandle h = 0; h < 64; ++h) p->Insert(h, Entry(h, 1, h % 3 == 0 ? 1000 + h : 0));
  for (PolicyHandle h = 0; h < 64; h += 5) p->Touch(h);
  auto order = Drain(*p);
  std::sort(order.begin(), order.end());
  std::vector<PolicyHandle> all(64);
  for (PolicyHandle h = 0; h < 64; ++h) all[h] = h;
  CHECK(order == all);
  CHECK_FALSE(p->Victim(kAny).has_value());
}

TEST_CASE_TEMPLATE("policy contract: an erased handle can be inserted again", T, KVC_ALL_POLICIES) {
  auto p = Make(T::kName, 10);
  p->Insert(7, Entry(7));
  p->Erase(7);
  CHECK(p->size() == 0);
  CHECK_FALSE(p->Victim(kAny).has_value());
  p->Insert(7, Entry(8, 2, 5));
  CHECK(p->size() == 1);
  p->Touch(7);
  auto v = p->Victim(kAny);
  REQUIRE(v.has_value());
  CHECK(*v == 7);
  p->Erase(7);
  CHECK(p->size() == 0);
}

TEST_CASE_TEMPLATE("policy contract: rejected handles are skipped and keep their place", T,
                   KVC_ALL_POLICIES) {
  auto p = Make(T::kName, 100);
  for (PolicyHandle h = 0; h < 100; ++h) p->Insert(h, Entry(h));
  const auto first = p->Victim(kAny);
  REQUIRE(first.has_value());
  const PolicyHandle pinned = *first;
  auto not_pinned = [pinned](PolicyHandle h) { return h != pinned; };
  for (int i = 0; i < 5; ++i) {
    const auto v = p->Victim(not_pinned);
    REQUIRE(v.has_value());
    CHECK(*v != pinned);
    p->Erase(*v);
  }
  // Unpinned, it is next again: skipping did not demote or lose it.
  const auto again = p->Victim(kAny);
  REQUIRE(again.has_value());
  CHECK(*again == pinned);
  CHECK(p->size() == 95);
}

TEST_CASE_TEMPLATE("policy contract: nothing evictable gives nullopt", T, KVC_ALL_POLICIES) {
  auto p = Make(T::kName, 10);
  for (PolicyHandle h = 0; h < 10; ++h) p->Insert(h, Entry(h));
  CHECK_FALSE(p->Victim([](PolicyHandle) { return false; }).has_value());
  CHECK(p->size() == 10);
  // Only one evictable: that one.
  const auto v = p->Victim([](PolicyHandle h) { return h == 6; });
  REQUIRE(v.has_value());
  CHECK(*v == 6);
}

TEST_CASE_TEMPLATE("policy contract: sparse handles and weights", T, KVC_ALL_POLICIES) {
  auto p = Make(T::kName, 1000);
  const std::vector<PolicyHandle> handles{5, 100000, 3, 77777};
  for (PolicyHandle h : handles) p->Insert(h, Entry(h, 250));
  CHECK(p->size() == 4);
  auto order = Drain(*p);
  std::sort(order.begin(), order.end());
  CHECK(order == std::vector<PolicyHandle>{3, 5, 77777, 100000});
}

// A model check: random inserts, touches, erases, misses and victims with a
// random pinned set, against a std::map of what is tracked. For the prefix
// wrappers the model also keeps the forest: a victim never has an evictable
// child, and is a leaf whenever some evictable leaf exists.
TEST_CASE_TEMPLATE("policy contract: randomized model check", T, KVC_ALL_POLICIES) {
  for (uint32_t seed : {1u, 2u, 3u}) {
    CAPTURE(seed);
    std::mt19937 rng(seed);
    const uint64_t capacity = 200;
    auto p = Make(T::kName, capacity);
    std::map<PolicyHandle, PolicyHandle> tracked;  // handle -> parent at insert (or kNoHandle)
    std::set<PolicyHandle> pinned;
    uint64_t used = 0;
    std::map<PolicyHandle, uint64_t> weight;
    auto forget = [&](PolicyHandle h) {
      tracked.erase(h);
      for (auto& [c, parent] : tracked)
        if (parent == h) parent = kNoHandle;
    };
    auto check_prefix_victim = [&](PolicyHandle v, const auto& evictable) {
      if constexpr (T::kPrefix) {
        bool leaf_exists = false;
        for (const auto& [h, parent] : tracked) {
          if (parent == v) REQUIRE_FALSE(evictable(h));
          bool has_child = false;
          for (const auto& [c, cp] : tracked) has_child = has_child || cp == h;
          leaf_exists = leaf_exists || (!has_child && evictable(h));
        }
        bool v_has_child = false;
        for (const auto& [c, cp] : tracked) v_has_child = v_has_child || cp == v;
        if (leaf_exists) REQUIRE_FALSE(v_has_child);
      }
    };
    auto pick_tracked = [&]() {
      auto it = tracked.begin();
      std::advance(it, rng() % tracked.size());
      return it->first;
    };
    for (int step = 0; step < 20000; ++step) {
      const int op = static_cast<int>(rng() % 10);
      if (op < 4) {  // insert a fresh or previously erased handle, evicting to fit
        const PolicyHandle h = rng() % 400;
        if (tracked.count(h)) continue;
        const uint64_t w = 1 + rng() % 4;
        auto evictable = [&](PolicyHandle x) { return !pinned.count(x); };
        bool room = true;
        while (used + w > capacity) {
          const auto v = p->Victim(evictable);
          if (!v) {
            room = false;
            break;
          }
          REQUIRE(tracked.count(*v) == 1);
          REQUIRE(pinned.count(*v) == 0);
          check_prefix_victim(*v, evictable);
          p->Erase(*v);
          used -= weight[*v];
          forget(*v);
        }
        if (!room) continue;
        const PolicyHandle parent =
            !tracked.empty() && rng() % 2 ? pick_tracked() : kNoHandle;
        const int64_t expires = rng() % 3 == 0 ? static_cast<int64_t>(1 + rng() % 1000) : 0;
        p->Insert(h, Entry(rng(), w, expires, parent));
        tracked[h] = parent;
        weight[h] = w;
        used += w;
      } else if (op < 7) {
        if (!tracked.empty()) p->Touch(pick_tracked());
      } else if (op == 7) {
        if (!tracked.empty()) {
          const PolicyHandle h = pick_tracked();
          p->Erase(h);
          used -= weight[h];
          forget(h);
          pinned.erase(h);
        }
      } else if (op == 8) {
        p->RecordMiss(rng());
      } else {  // pin or unpin a tracked handle
        if (!tracked.empty()) {
          const PolicyHandle h = pick_tracked();
          if (!pinned.erase(h)) pinned.insert(h);
        }
      }
      REQUIRE(p->size() == tracked.size());
      if (step % 97 == 0) {  // a victim question with a random predicate
        const uint32_t salt = rng();
        auto pred = [&](PolicyHandle x) { return ((x * 2654435761u) ^ salt) % 3 != 0; };
        const auto v = p->Victim(pred);
        bool any = false;
        for (const auto& [h, parent] : tracked) any = any || pred(h);
        REQUIRE(v.has_value() == any);
        if (v) {
          REQUIRE(tracked.count(*v) == 1);
          REQUIRE(pred(*v));
          check_prefix_victim(*v, pred);
        }
      }
    }
    // Every tracked handle comes out exactly once.
    pinned.clear();
    auto order = Drain(*p);
    std::set<PolicyHandle> drained(order.begin(), order.end());
    CHECK(order.size() == drained.size());
    std::set<PolicyHandle> expected;
    for (const auto& [h, parent] : tracked) expected.insert(h);
    CHECK(drained == expected);
  }
}

TEST_CASE("factory: unknown names and zero capacity are refused") {
  auto bad = MakePolicy("arc", 10);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().code() == Code::kInvalidArgument);
  for (const std::string& name : PolicyNames())
    CHECK(bad.status().message().find(name) != std::string::npos);
  auto zero = MakePolicy("lru", 0);
  REQUIRE_FALSE(zero.ok());
  CHECK(zero.status().code() == Code::kInvalidArgument);
  CHECK(zero.status().message().find("capacity") != std::string::npos);
}

TEST_CASE("factory: the default policy is one of the names") {
  const auto& names = PolicyNames();
  CHECK(std::find(names.begin(), names.end(), std::string(DefaultPolicyName())) != names.end());
  CHECK(DefaultPolicyName() == "wtinylfu-prefix");
  for (const std::string& name : names) CHECK(MakePolicy(name, 1).ok());
}

}  // namespace kvc
