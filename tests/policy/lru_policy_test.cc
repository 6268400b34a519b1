#include "policy/lru_policy.h"

#include <doctest/doctest.h>

#include <list>
#include <random>

namespace kvc {
namespace {

const EvictablePredicate kAny = [](PolicyHandle) { return true; };

PolicyEntry Entry(uint64_t key) {
  PolicyEntry e;
  e.key_hash = key;
  return e;
}

}  // namespace

TEST_CASE("lru: victims in exact least-recently-used order") {
  LruPolicy p;
  for (PolicyHandle h = 1; h <= 5; ++h) p.Insert(h, Entry(h));
  p.Touch(2);
  p.Touch(1);
  std::vector<PolicyHandle> order;
  while (auto v = p.Victim(kAny)) {
    order.push_back(*v);
    p.Erase(*v);
  }
  CHECK(order == std::vector<PolicyHandle>{3, 4, 5, 2, 1});
}

TEST_CASE("lru: a skipped handle stays oldest") {
  LruPolicy p;
  for (PolicyHandle h = 0; h < 4; ++h) p.Insert(h, Entry(h));
  auto v = p.Victim([](PolicyHandle h) { return h != 0; });
  REQUIRE(v);
  CHECK(*v == 1);
  p.Erase(1);
  CHECK(*p.Victim(kAny) == 0);
}

// Against a naive list-based LRU, over random inserts, touches and erases.
TEST_CASE("lru: matches a naive LRU") {
  std::mt19937 rng(7);
  LruPolicy p;
  std::list<PolicyHandle> naive;  // front = oldest
  std::vector<bool> in(300, false);
  for (int step = 0; step < 30000; ++step) {
    const PolicyHandle h = rng() % 300;
    const int op = static_cast<int>(rng() % 4);
    if (!in[h]) {
      p.Insert(h, Entry(h));
      naive.push_back(h);
      in[h] = true;
    } else if (op < 2) {
      p.Touch(h);
      naive.remove(h);
      naive.push_back(h);
    } else if (op == 2) {
      p.Erase(h);
      naive.remove(h);
      in[h] = false;
    } else {
      const auto v = p.Victim(kAny);
      REQUIRE(v);
      REQUIRE(*v == naive.front());
      p.Erase(*v);
      in[*v] = false;
      naive.pop_front();
    }
    REQUIRE(p.size() == naive.size());
  }
}

}  // namespace kvc
