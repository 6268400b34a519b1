#include "sim/simulator.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <list>
#include <random>
#include <sstream>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "policy/eviction_policy.h"
#include "sim/belady_simulator.h"

namespace kvc {
namespace {

const char* const kSharedTrace = KVC_SHARED_DIR "/traces/mooncake_fast25_synthetic_trace.jsonl";

// The shared trace; a missing file fails the test loudly (CI has it).
const Trace& SharedTrace() {
  static const Trace* trace = [] {
    INFO("the shared trace is missing or unreadable: ", kSharedTrace);
    REQUIRE(std::filesystem::exists(kSharedTrace));
    auto t = Trace::Load(kSharedTrace);
    REQUIRE_MESSAGE(t.ok(), t.status().ToString());
    return new Trace(std::move(t).value());
  }();
  return *trace;
}

Trace Parse(const std::string& jsonl) {
  std::istringstream in(jsonl);
  auto t = Trace::Parse(in, "generated");
  REQUIRE_MESSAGE(t.ok(), t.status().ToString());
  return std::move(t).value();
}

std::string Request(const std::vector<uint64_t>& ids) {
  nlohmann::json j{{"timestamp", 0}, {"input_length", ids.size() * 512}, {"output_length", 1},
                   {"hash_ids", ids}};
  return j.dump() + "\n";
}

// A frequency-skewed trace: requests for Zipf(1)-popular prefixes out of
// 2,000 (4..16 blocks, plus 0..3 blocks of their own), and one request in
// three a one-off scan of 20..60 fresh blocks.
Trace ZipfTrace(uint32_t seed) {
  std::mt19937 rng(seed);
  const int n = 2000;
  std::vector<double> cdf(n);
  double sum = 0;
  for (int i = 0; i < n; ++i) cdf[i] = (sum += 1.0 / (i + 1));
  std::vector<std::vector<uint64_t>> prefixes(n);
  uint64_t next = 0;
  for (auto& p : prefixes)
    for (int len = 4 + static_cast<int>(rng() % 13); len > 0; --len) p.push_back(next++);
  std::string jsonl;
  std::uniform_real_distribution<double> u(0, sum);
  for (int r = 0; r < 30000; ++r) {
    std::vector<uint64_t> ids;
    if (r % 3 == 2) {
      for (int len = 20 + static_cast<int>(rng() % 41); len > 0; --len) ids.push_back(next++);
    } else {
      const auto pick = std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin();
      ids = prefixes[std::min<size_t>(pick, n - 1)];
      for (int len = static_cast<int>(rng() % 4); len > 0; --len) ids.push_back(next++);
    }
    jsonl += Request(ids);
  }
  return Parse(jsonl);
}

// The prefix rule with a plain, independent LRU (std::list + map).
uint64_t NaiveLruHits(const Trace& t, uint64_t capacity) {
  std::list<uint32_t> order;  // front = most recent
  std::unordered_map<uint32_t, std::list<uint32_t>::iterator> where;
  uint64_t hits = 0;
  for (size_t r = 0; r < t.requests(); ++r) {
    const auto blocks = t.request(r);
    size_t lead = 0;
    while (lead < blocks.size() && where.count(blocks[lead])) ++lead;
    hits += lead;
    for (const uint32_t b : blocks) {
      if (auto it = where.find(b); it != where.end()) {
        order.splice(order.begin(), order, it->second);
        continue;
      }
      if (where.size() >= capacity) {
        where.erase(order.back());
        order.pop_back();
      }
      order.push_front(b);
      where[b] = order.begin();
    }
  }
  return hits;
}

// Belady's MIN with bypass, by brute force: on a miss in a full cache, the
// resident block used farthest ahead goes (or the new block is not kept).
uint64_t NaiveBeladyHits(const Trace& t, uint64_t capacity) {
  const auto acc = t.accesses();
  auto next_use = [&](size_t from, uint32_t b) {
    for (size_t q = from; q < acc.size(); ++q)
      if (acc[q] == b) return q;
    return std::numeric_limits<size_t>::max();
  };
  std::vector<uint32_t> cache;
  uint64_t hits = 0;
  size_t p = 0;
  for (size_t r = 0; r < t.requests(); ++r) {
    const auto blocks = t.request(r);
    size_t lead = 0;
    while (lead < blocks.size() &&
           std::find(cache.begin(), cache.end(), blocks[lead]) != cache.end())
      ++lead;
    hits += lead;
    for (const uint32_t b : blocks) {
      ++p;
      if (std::find(cache.begin(), cache.end(), b) != cache.end()) continue;
      const size_t mine = next_use(p, b);
      if (mine == std::numeric_limits<size_t>::max()) continue;
      if (cache.size() >= capacity) {
        size_t far = 0, far_at = 0;
        for (size_t i = 0; i < cache.size(); ++i)
          if (size_t n = next_use(p, cache[i]); n > far) far = n, far_at = i;
        if (far <= mine) continue;
        cache.erase(cache.begin() + static_cast<std::ptrdiff_t>(far_at));
      }
      cache.push_back(b);
    }
  }
  return hits;
}

double Ratio(const Simulator& sim, const std::string& policy, uint64_t capacity) {
  auto row = sim.Run(policy, capacity);
  REQUIRE_MESSAGE(row.ok(), row.status().ToString());
  return row->hit_ratio;
}

double Round4(double x) { return std::round(x * 10000) / 10000; }

}  // namespace

TEST_CASE("sim: LRU equals an independent naive LRU, and the reference figures") {
  const Trace& t = SharedTrace();
  Simulator sim(t);
  for (uint64_t cap : {1u, 250u, 1000u, 4321u, 10000u}) {
    CAPTURE(cap);
    auto row = sim.Run("lru", cap);
    REQUIRE(row.ok());
    CHECK(row->hits == NaiveLruHits(t, cap));
    CHECK(row->lookups == t.accesses().size());
  }
  CHECK(Round4(Ratio(sim, "lru", 10000)) == doctest::Approx(0.4235));
  CHECK(Round4(Ratio(sim, "lru", 1000)) == doctest::Approx(0.0825));
}

TEST_CASE("sim: opt is Belady's ceiling, 0.618 at 10,000 blocks") {
  Simulator sim(SharedTrace());
  CHECK(Ratio(sim, "opt", 10000) == doctest::Approx(0.618).epsilon(0.001));
  // Nothing evicts once everything fits: 1 - unique/total.
  CHECK(Round4(Ratio(sim, "opt", 50000)) == doctest::Approx(0.6396));
  CHECK(Round4(Ratio(sim, "lru", 50000)) == doctest::Approx(0.6396));
}

TEST_CASE("sim: opt equals a brute-force Belady on a small trace") {
  std::mt19937 rng(3);
  std::string jsonl;
  for (int r = 0; r < 300; ++r) {
    std::vector<uint64_t> ids;
    const uint64_t root = rng() % 12;
    for (int len = static_cast<int>(rng() % 6); len >= 0; --len)
      ids.push_back(root * 100 + ids.size() + (len == 0 ? rng() % 3 * 10 : 0));
    jsonl += Request(ids);
  }
  const Trace t = Parse(jsonl);
  for (uint64_t cap : {1u, 3u, 8u, 20u, 50u}) {
    CAPTURE(cap);
    CHECK(BeladySimulator::Hits(t, cap) == NaiveBeladyHits(t, cap));
  }
}

TEST_CASE("sim: the default policy is never below LRU on the shared trace") {
  Simulator sim(SharedTrace());
  const std::string def(DefaultPolicyName());
  std::vector<uint64_t> caps{250, 500, 1000, 2000, 5000, 10000, 20000, 50000};
  for (double c = 100; c < 45000; c *= 1.3) caps.push_back(static_cast<uint64_t>(c));
  for (size_t i = 0; i < caps.size(); ++i) {
    const uint64_t cap = caps[i];
    CAPTURE(cap);
    const double lru = Ratio(sim, "lru", cap), d = Ratio(sim, def, cap);
    if (i < 8) MESSAGE(cap << " blocks: lru " << lru << ", " << def << " " << d);
    CHECK(d >= lru);
  }
}

TEST_CASE("sim: the default policy beats LRU on a frequency-skewed trace") {
  const Trace t = ZipfTrace(1);
  Simulator sim(t);
  const std::string def(DefaultPolicyName());
  for (uint64_t cap : {500u, 2000u, 8000u}) {
    CAPTURE(cap);
    const double lru = Ratio(sim, "lru", cap), d = Ratio(sim, def, cap);
    MESSAGE(cap << " blocks: lru " << lru << ", " << def << " " << d);
    CHECK(d > lru + 0.005);
  }
}

TEST_CASE("sim: every policy runs, rows in order, the default marked") {
  const Trace t = ZipfTrace(2);
  Simulator sim(t);
  auto rows = sim.RunAll(Simulator::AllPolicies(), {100, 1000});
  REQUIRE(rows.ok());
  REQUIRE(rows->size() == 2 * (PolicyNames().size() + 1));
  const SimRow& last = rows->back();
  CHECK(last.policy == "opt");
  CHECK(last.capacity_blocks == 1000);
  for (const SimRow& r : *rows) {
    CAPTURE(r.policy);
    CHECK(r.is_default == (r.policy == DefaultPolicyName()));
    CHECK(r.lookups == t.accesses().size());
    CHECK(r.hits <= r.lookups);
    CHECK(r.hit_ratio == doctest::Approx(static_cast<double>(r.hits) / r.lookups));
  }
  // Deterministic: the same run twice gives the same rows.
  auto again = sim.RunAll(Simulator::AllPolicies(), {100, 1000});
  REQUIRE(again.ok());
  for (size_t i = 0; i < rows->size(); ++i) CHECK((*again)[i].hits == (*rows)[i].hits);
}

TEST_CASE("sim: JSON rows") {
  SimRow row{"lru", 10, 3, 4, 0.75, true};
  const auto j = nlohmann::json::parse(Simulator::ToJson({row}));
  REQUIRE(j.is_array());
  REQUIRE(j.size() == 1);
  CHECK(j[0]["policy"] == "lru");
  CHECK(j[0]["capacity_blocks"] == 10);
  CHECK(j[0]["hits"] == 3);
  CHECK(j[0]["lookups"] == 4);
  CHECK(j[0]["hit_ratio"] == 0.75);
  CHECK(j[0]["default"] == true);
  CHECK(Simulator::ToJson({}) == "[]");
}

TEST_CASE("sim: policy lists") {
  auto all = Simulator::ParsePolicies("");
  REQUIRE(all.ok());
  CHECK(*all == Simulator::AllPolicies());
  auto two = Simulator::ParsePolicies(" lru , opt");
  REQUIRE(two.ok());
  CHECK(*two == std::vector<std::string>{"lru", "opt"});
  auto unknown = Simulator::ParsePolicies("lru,arc");
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.status().code() == Code::kInvalidArgument);
  CHECK(unknown.status().message().find("'arc'") != std::string::npos);
  CHECK(unknown.status().message().find("wtinylfu-prefix") != std::string::npos);
  CHECK_FALSE(Simulator::ParsePolicies("lru,,opt").ok());
}

TEST_CASE("sim: bad arguments") {
  const Trace t = Parse(Request({1, 2, 3}));
  Simulator sim(t);
  CHECK(sim.Run("lru", 0).status().code() == Code::kInvalidArgument);
  CHECK(sim.Run("opt", 0).status().code() == Code::kInvalidArgument);
  CHECK(sim.Run("nope", 10).status().code() == Code::kInvalidArgument);
  CHECK(sim.RunAll({"lru"}, {}).status().code() == Code::kInvalidArgument);
  CHECK(sim.RunAll({}, {10}).status().code() == Code::kInvalidArgument);
  CHECK(sim.RunAll({"lru"}, {10, 0}).status().code() == Code::kInvalidArgument);
  // RunFile checks arguments before it reads the trace.
  CHECK(Simulator::RunFile("/nonexistent", "lru", {0}).status().code() == Code::kInvalidArgument);
  CHECK(Simulator::RunFile("/nonexistent", "arc", {1}).status().code() == Code::kInvalidArgument);
  CHECK(Simulator::RunFile("/nonexistent", "lru", {1}).status().code() == Code::kIo);
}

TEST_CASE("sim: RunFile on the shared trace") {
  SharedTrace();  // fails loudly when absent
  auto rows = Simulator::RunFile(kSharedTrace, "lru,opt", {1000, 10000});
  REQUIRE_MESSAGE(rows.ok(), rows.status().ToString());
  REQUIRE(rows->size() == 4);
  CHECK(Round4((*rows)[1].hit_ratio) == doctest::Approx(0.4235));
  CHECK((*rows)[3].policy == "opt");
}

}  // namespace kvc
