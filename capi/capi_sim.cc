// The C shim of the trace simulator and the policy names.
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "capi_internal.h"
#include "policy/eviction_policy.h"
#include "sim/simulator.h"

KVC_EXPORT int kvc_sim_run(char** out, const char* trace_path, const char* policies,
                           const uint64_t* capacities, size_t n_caps, kvc_error* err) {
  return kvc::capi::Guard(err, [&]() -> kvc::Status {
    KVC_REQUIRE_ARG(out, "out");
    *out = nullptr;
    KVC_REQUIRE_ARG(trace_path, "trace_path");
    if (n_caps == 0) return kvc::InvalidArgument("no capacities (n_caps is 0)");
    KVC_REQUIRE_ARG(capacities, "capacities");
    const std::vector<uint64_t> caps(capacities, capacities + n_caps);
    auto rows = kvc::Simulator::RunFile(trace_path, policies == nullptr ? "" : policies, caps);
    if (!rows.ok()) return rows.status();
    const std::string json = kvc::Simulator::ToJson(*rows);
    char* copy = static_cast<char*>(std::malloc(json.size() + 1));
    if (copy == nullptr) return kvc::Status(kvc::Code::kNoMemory, "out of memory");
    std::memcpy(copy, json.c_str(), json.size() + 1);
    *out = copy;
    return kvc::Status::Ok();
  });
}

KVC_EXPORT const char* kvc_policy_names(void) {
  static const std::string names = [] {
    std::string joined;
    for (const std::string& n : kvc::PolicyNames()) joined += (joined.empty() ? "" : ",") + n;
    return joined;
  }();
  return names.c_str();
}

KVC_EXPORT const char* kvc_policy_default(void) {
  static const std::string name(kvc::DefaultPolicyName());
  return name.c_str();
}
