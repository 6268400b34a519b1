#include "policy/prefix_aware_policy.h"

#include <doctest/doctest.h>

#include <memory>

#include "policy/lru_policy.h"

namespace kvc {
namespace {

const EvictablePredicate kAny = [](PolicyHandle) { return true; };

PolicyEntry Child(PolicyHandle parent) {
  PolicyEntry e;
  e.key_hash = parent + 1;
  e.parent = parent;
  return e;
}

PrefixAwarePolicy LruPrefix() { return PrefixAwarePolicy(std::make_unique<LruPolicy>()); }

std::vector<PolicyHandle> Drain(EvictionPolicy& p) {
  std::vector<PolicyHandle> order;
  while (auto v = p.Victim(kAny)) {
    order.push_back(*v);
    p.Erase(*v);
  }
  return order;
}

}  // namespace

TEST_CASE("prefix: the name follows the base") {
  CHECK(LruPrefix().name() == "lru-prefix");
}

TEST_CASE("prefix: a chain is evicted from its tail, though its head is least recent") {
  auto p = LruPrefix();
  p.Insert(0, Child(kNoHandle));
  p.Insert(1, Child(0));
  p.Insert(2, Child(1));
  p.Insert(3, Child(2));
  p.Insert(10, Child(kNoHandle));  // a newer, separate root
  CHECK(p.parent(2) == 1);
  CHECK(p.has_children(0));
  CHECK(Drain(p) == std::vector<PolicyHandle>{3, 2, 1, 0, 10});
}

TEST_CASE("prefix: branches go before the shared head, least recently used branch first") {
  auto p = LruPrefix();
  p.Insert(0, Child(kNoHandle));  // a shared system prompt
  p.Insert(1, Child(0));
  p.Insert(2, Child(1));
  p.Insert(3, Child(0));
  p.Insert(4, Child(3));
  p.Touch(0);
  p.Touch(1);
  p.Touch(2);  // branch 1-2 is now more recent than 3-4
  CHECK(Drain(p) == std::vector<PolicyHandle>{4, 3, 2, 1, 0});
}

TEST_CASE("prefix: a pinned leaf holds its ancestors while another leaf may go") {
  auto p = LruPrefix();
  p.Insert(0, Child(kNoHandle));
  p.Insert(1, Child(0));
  p.Insert(5, Child(kNoHandle));
  p.Insert(6, Child(5));
  auto not_1 = [](PolicyHandle h) { return h != 1; };
  auto v = p.Victim(not_1);
  REQUIRE(v);
  CHECK(*v == 6);  // not 0, whose child 1 is pinned
  p.Erase(6);
  v = p.Victim(not_1);
  REQUIRE(v);
  CHECK(*v == 5);
  p.Erase(5);
  // Only 0 (with pinned child 1) is evictable: the fallback names it rather
  // than leave the tier stuck, since its only child cannot go.
  v = p.Victim(not_1);
  REQUIRE(v);
  CHECK(*v == 0);
}

TEST_CASE("prefix: an unevictable inner block does not hide its leaves") {
  auto p = LruPrefix();
  p.Insert(0, Child(kNoHandle));
  p.Insert(1, Child(0));
  p.Insert(2, Child(1));
  auto v = p.Victim([](PolicyHandle h) { return h != 0 && h != 1; });
  REQUIRE(v);
  CHECK(*v == 2);
  // Leaf 2 pinned: the lowest evictable block goes, never one above an
  // evictable child.
  v = p.Victim([](PolicyHandle h) { return h != 2; });
  REQUIRE(v);
  CHECK(*v == 1);
}

TEST_CASE("prefix: erasing a parent makes its children roots") {
  auto p = LruPrefix();
  p.Insert(0, Child(kNoHandle));
  p.Insert(1, Child(0));
  p.Insert(2, Child(1));
  p.Insert(3, Child(1));
  p.Erase(1);  // deleted or expired, not evicted
  CHECK(p.parent(2) == kNoHandle);
  CHECK(p.parent(3) == kNoHandle);
  CHECK_FALSE(p.has_children(0));
  CHECK(p.size() == 3);
  // 1 is gone, so 0, 2 and 3 are leaves now, in LRU order.
  CHECK(Drain(p) == std::vector<PolicyHandle>{0, 2, 3});
  // The handle can come back under a new parent.
  p.Insert(7, Child(kNoHandle));
  p.Insert(1, Child(7));
  CHECK(p.parent(1) == 7);
  CHECK(Drain(p) == std::vector<PolicyHandle>{1, 7});
}

TEST_CASE("prefix: an untracked parent is ignored") {
  auto p = LruPrefix();
  p.Insert(4, Child(99));
  CHECK(p.parent(4) == kNoHandle);
  p.Insert(5, Child(5));
  CHECK(p.parent(5) == kNoHandle);
  CHECK(p.size() == 2);
}

TEST_CASE("prefix: a deep chain is handled without recursion") {
  auto p = LruPrefix();
  const PolicyHandle n = 200000;
  p.Insert(0, Child(kNoHandle));
  for (PolicyHandle h = 1; h < n; ++h) p.Insert(h, Child(h - 1));
  for (PolicyHandle expect = n; expect-- > n - 3;) {
    auto v = p.Victim(kAny);
    REQUIRE(v);
    CHECK(*v == expect);
    p.Erase(*v);
  }
  // Everything pinned except the root: the fallback finds the root.
  auto v = p.Victim([](PolicyHandle h) { return h == 0; });
  REQUIRE(v);
  CHECK(*v == 0);
}

}  // namespace kvc
