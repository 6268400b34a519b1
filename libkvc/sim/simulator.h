// Simulator: replays a Trace through eviction policies (`kvc sim`).
//
// The prefix-mode rule (docs/sim.md): for each request in order, `hits` +=
// the number of its leading blocks that are present and `lookups` += the
// number of its blocks; then every block is accessed in order: Touch if
// present, else evict (Victim, Erase) until one block fits and Insert it,
// with weight 1 and, as parent, the block before it when that is present.
// Capacity is in blocks. The policy "opt" is BeladySimulator's ceiling.
//
// Thread safety: const methods may run concurrently on one Simulator.
#ifndef KVC_SIM_SIMULATOR_H_
#define KVC_SIM_SIMULATOR_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sim/trace.h"
#include "util/status.h"

namespace kvc {

// One policy at one capacity.
struct SimRow {
  std::string policy;
  uint64_t capacity_blocks = 0;
  uint64_t hits = 0;
  uint64_t lookups = 0;
  double hit_ratio = 0;     // hits / lookups
  bool is_default = false;  // the policy a cache uses when none is chosen
};

class Simulator {
 public:
  // The name of Belady's MIN, accepted beside PolicyNames().
  static constexpr std::string_view kOpt = "opt";

  // Borrows `trace`, which must outlive the Simulator.
  explicit Simulator(const Trace& trace) : trace_(trace) {}

  // Every name Run accepts: PolicyNames(), then "opt".
  static std::vector<std::string> AllPolicies();
  // Splits a comma-separated list ("lru, opt"); an empty list means
  // AllPolicies(). KVC_ERR_INVALID_ARGUMENT for an unknown or empty name,
  // listing the known ones.
  static Result<std::vector<std::string>> ParsePolicies(std::string_view list);

  // Replays the trace through `policy` with room for `capacity_blocks`.
  // KVC_ERR_INVALID_ARGUMENT for an unknown policy or a zero capacity.
  Result<SimRow> Run(std::string_view policy, uint64_t capacity_blocks) const;
  // Every policy at every capacity: rows policy by policy, capacities in
  // the order given. KVC_ERR_INVALID_ARGUMENT when either list is empty.
  Result<std::vector<SimRow>> RunAll(const std::vector<std::string>& policies,
                                     const std::vector<uint64_t>& capacities) const;

  // Checks `policies` (as ParsePolicies) and `capacities` (non-empty, none
  // zero), then loads the trace at `path` (Trace::Load) and runs RunAll.
  static Result<std::vector<SimRow>> RunFile(const std::string& path, std::string_view policies,
                                             const std::vector<uint64_t>& capacities);

  // The rows as a JSON array of {"policy","capacity_blocks","hits",
  // "lookups","hit_ratio","default"} objects, keys in that order.
  static std::string ToJson(const std::vector<SimRow>& rows);

 private:
  Result<uint64_t> ReplayPolicy(std::string_view policy, uint64_t capacity_blocks) const;

  const Trace& trace_;
};

}  // namespace kvc

#endif  // KVC_SIM_SIMULATOR_H_
