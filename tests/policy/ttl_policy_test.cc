#include "policy/ttl_policy.h"

#include <doctest/doctest.h>

namespace kvc {
namespace {

const EvictablePredicate kAny = [](PolicyHandle) { return true; };

PolicyEntry Expiring(int64_t expires_at) {
  PolicyEntry e;
  e.expires_at = expires_at;
  return e;
}

std::vector<PolicyHandle> Drain(TtlPolicy& p) {
  std::vector<PolicyHandle> order;
  while (auto v = p.Victim(kAny)) {
    order.push_back(*v);
    p.Erase(*v);
  }
  return order;
}

}  // namespace

TEST_CASE("ttl: soonest expiry first, then blocks without expiry in arrival order") {
  TtlPolicy p;
  p.Insert(0, Expiring(0));
  p.Insert(1, Expiring(300));
  p.Insert(2, Expiring(100));
  p.Insert(3, Expiring(0));
  p.Insert(4, Expiring(200));
  p.Insert(5, Expiring(100));  // ties: arrival order
  p.Insert(6, Expiring(0));
  CHECK(Drain(p) == std::vector<PolicyHandle>{2, 5, 4, 1, 0, 3, 6});
}

TEST_CASE("ttl: touches do not reorder") {
  TtlPolicy p;
  p.Insert(0, Expiring(50));
  p.Insert(1, Expiring(10));
  p.Insert(2, Expiring(0));
  p.Insert(3, Expiring(0));
  p.Touch(1);
  p.Touch(2);
  p.RecordMiss(99);
  CHECK(Drain(p) == std::vector<PolicyHandle>{1, 0, 2, 3});
}

TEST_CASE("ttl: skipping keeps order, erase from the middle") {
  TtlPolicy p;
  for (PolicyHandle h = 0; h < 5; ++h) p.Insert(h, Expiring(10 * (5 - h)));  // 4 expires first
  p.Insert(5, Expiring(0));
  auto v = p.Victim([](PolicyHandle h) { return h != 4 && h != 3; });
  REQUIRE(v);
  CHECK(*v == 2);
  p.Erase(1);
  p.Erase(5);
  CHECK(Drain(p) == std::vector<PolicyHandle>{4, 3, 2, 0});
}

TEST_CASE("ttl: a re-inserted handle takes its new expiry") {
  TtlPolicy p;
  p.Insert(0, Expiring(10));
  p.Insert(1, Expiring(20));
  p.Erase(0);
  p.Insert(0, Expiring(30));
  CHECK(Drain(p) == std::vector<PolicyHandle>{1, 0});
}

}  // namespace kvc
