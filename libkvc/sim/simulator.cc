#include "sim/simulator.h"

#include <algorithm>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "policy/eviction_policy.h"
#include "sim/belady_simulator.h"

namespace kvc {
namespace {

// A well-mixed key hash from a trace id (splitmix64's finaliser).
uint64_t KeyHash(uint64_t id) {
  id += 0x9e3779b97f4a7c15ULL;
  id = (id ^ (id >> 30)) * 0xbf58476d1ce4e5b9ULL;
  id = (id ^ (id >> 27)) * 0x94d049bb133111ebULL;
  return id ^ (id >> 31);
}

std::string_view Trim(std::string_view s) {
  const size_t begin = s.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return {};
  return s.substr(begin, s.find_last_not_of(" \t") - begin + 1);
}

std::string KnownNames() {
  std::string known;
  for (const std::string& n : Simulator::AllPolicies()) known += (known.empty() ? "" : ", ") + n;
  return known;
}

}  // namespace

std::vector<std::string> Simulator::AllPolicies() {
  std::vector<std::string> names = PolicyNames();
  names.emplace_back(kOpt);
  return names;
}

Result<std::vector<std::string>> Simulator::ParsePolicies(std::string_view list) {
  if (Trim(list).empty()) return AllPolicies();
  const std::vector<std::string> all = AllPolicies();
  std::vector<std::string> names;
  while (true) {
    const size_t comma = list.find(',');
    const std::string_view name = Trim(list.substr(0, comma));
    if (name.empty()) return InvalidArgument("empty policy name in the list (known: " + KnownNames() + ")");
    if (std::find(all.begin(), all.end(), name) == all.end())
      return InvalidArgument("unknown policy '" + std::string(name) + "' (known: " + KnownNames() + ")");
    names.emplace_back(name);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return names;
}

Result<SimRow> Simulator::Run(std::string_view policy, uint64_t capacity_blocks) const {
  if (capacity_blocks == 0) return InvalidArgument("capacity must be at least 1 block");
  SimRow row;
  row.policy = std::string(policy);
  row.capacity_blocks = capacity_blocks;
  row.lookups = trace_.accesses().size();
  if (policy == kOpt) {
    row.hits = BeladySimulator::Hits(trace_, capacity_blocks);
  } else {
    Result<uint64_t> hits = ReplayPolicy(policy, capacity_blocks);
    if (!hits.ok()) return hits.status();
    row.hits = *hits;
  }
  row.hit_ratio = row.lookups == 0 ? 0.0 : static_cast<double>(row.hits) / static_cast<double>(row.lookups);
  row.is_default = policy == DefaultPolicyName();
  return row;
}

Result<uint64_t> Simulator::ReplayPolicy(std::string_view name, uint64_t capacity_blocks) const {
  Result<std::unique_ptr<EvictionPolicy>> made = MakePolicy(name, capacity_blocks);
  if (!made.ok()) return made.status();
  EvictionPolicy& policy = **made;
  const EvictablePredicate any = [](PolicyHandle) { return true; };
  std::vector<uint8_t> resident(trace_.blocks(), 0);
  uint64_t used = 0, hits = 0;
  for (size_t r = 0; r < trace_.requests(); ++r) {
    const auto blocks = trace_.request(r);
    size_t lead = 0;
    while (lead < blocks.size() && resident[blocks[lead]]) ++lead;
    hits += lead;
    for (size_t i = 0; i < blocks.size(); ++i) {
      const uint32_t h = blocks[i];
      if (resident[h]) {
        policy.Touch(h);
        continue;
      }
      while (used >= capacity_blocks) {
        const std::optional<PolicyHandle> victim = policy.Victim(any);
        if (!victim || !resident[*victim])
          return Internal("policy '" + std::string(name) + "' named no resident victim");
        policy.Erase(*victim);
        resident[*victim] = 0;
        --used;
      }
      PolicyEntry entry;
      entry.key_hash = KeyHash(trace_.id(h));
      entry.parent = i > 0 && resident[blocks[i - 1]] ? blocks[i - 1] : kNoHandle;
      policy.Insert(h, entry);
      resident[h] = 1;
      ++used;
    }
  }
  return hits;
}

Result<std::vector<SimRow>> Simulator::RunAll(const std::vector<std::string>& policies,
                                              const std::vector<uint64_t>& capacities) const {
  if (policies.empty()) return InvalidArgument("no policies to simulate");
  if (capacities.empty()) return InvalidArgument("no capacities to simulate");
  for (const uint64_t c : capacities)
    if (c == 0) return InvalidArgument("capacity must be at least 1 block");
  std::vector<SimRow> rows;
  for (const std::string& p : policies) {
    for (const uint64_t c : capacities) {
      Result<SimRow> row = Run(p, c);
      if (!row.ok()) return row.status();
      rows.push_back(std::move(*row));
    }
  }
  return rows;
}

Result<std::vector<SimRow>> Simulator::RunFile(const std::string& path, std::string_view policies,
                                               const std::vector<uint64_t>& capacities) {
  Result<std::vector<std::string>> names = ParsePolicies(policies);
  if (!names.ok()) return names.status();
  if (capacities.empty()) return InvalidArgument("no capacities to simulate");
  for (const uint64_t c : capacities)
    if (c == 0) return InvalidArgument("capacity must be at least 1 block");
  Result<Trace> trace = Trace::Load(path);
  if (!trace.ok()) return trace.status();
  return Simulator(*trace).RunAll(*names, capacities);
}

std::string Simulator::ToJson(const std::vector<SimRow>& rows) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const SimRow& r : rows) {
    out.push_back({{"policy", r.policy},
                   {"capacity_blocks", r.capacity_blocks},
                   {"hits", r.hits},
                   {"lookups", r.lookups},
                   {"hit_ratio", r.hit_ratio},
                   {"default", r.is_default}});
  }
  return out.dump();
}

}  // namespace kvc
