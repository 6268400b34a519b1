// kvc sim: replays a Mooncake-format trace through eviction policies at
// several capacities and prints hit ratios (docs/sim.md, man/kvc-sim.1).
// Runs through kvc_sim_run.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "command.h"

namespace kvc::cli {
namespace {

constexpr const char* kFooter = R"(Rule (prefix mode): for each request in order, hits += the number of its
leading blocks that are cached, lookups += its number of blocks; then each
block is touched if cached, else inserted (evicting as the policy says).
Capacity is in blocks. "opt" is Belady's MIN with bypass: the ceiling.
See docs/sim.md and kvc-sim(1).)";

struct SimFlags {
  std::string trace;
  std::string policies;
  std::vector<uint64_t> capacities;
  Output out = Output::kTable;
};

void PrintTable(const nlohmann::json& rows) {
  size_t width = 6;
  for (const auto& r : rows) width = std::max(width, r["policy"].get<std::string>().size() + 2);
  std::printf("%-*s %15s %12s %12s %9s\n", static_cast<int>(width), "policy", "capacity_blocks",
              "hits", "lookups", "hit_ratio");
  bool marked = false;
  for (const auto& r : rows) {
    const bool is_default = r["default"].get<bool>();
    marked = marked || is_default;
    const std::string name = r["policy"].get<std::string>() + (is_default ? " *" : "");
    std::printf("%-*s %15llu %12llu %12llu %9.4f\n", static_cast<int>(width), name.c_str(),
                static_cast<unsigned long long>(r["capacity_blocks"].get<uint64_t>()),
                static_cast<unsigned long long>(r["hits"].get<uint64_t>()),
                static_cast<unsigned long long>(r["lookups"].get<uint64_t>()),
                r["hit_ratio"].get<double>());
  }
  if (marked) std::printf("* the default policy (%s)\n", kvc_policy_default());
}

void PrintCsv(const nlohmann::json& rows) {
  std::printf("policy,capacity_blocks,hits,lookups,hit_ratio,default\n");
  for (const auto& r : rows)
    std::printf("%s,%llu,%llu,%llu,%.6f,%s\n", r["policy"].get<std::string>().c_str(),
                static_cast<unsigned long long>(r["capacity_blocks"].get<uint64_t>()),
                static_cast<unsigned long long>(r["hits"].get<uint64_t>()),
                static_cast<unsigned long long>(r["lookups"].get<uint64_t>()),
                r["hit_ratio"].get<double>(), r["default"].get<bool>() ? "true" : "false");
}

}  // namespace

Registration RegisterSim(CLI::App& root) {
  auto* app = root.add_subcommand("sim", "Replay a Mooncake trace through eviction policies");
  auto f = std::make_shared<SimFlags>();
  app->add_option("--trace", f->trace, "Mooncake-format JSONL trace file")->required();
  app->add_option("--policies", f->policies,
                  std::string("Comma-separated policies: ") + kvc_policy_names() +
                      ",opt (default: all of them)");
  app->add_option("--capacities", f->capacities, "Comma-separated cache capacities, in blocks")
      ->required()
      ->delimiter(',')
      ->check(CLI::NonNegativeNumber);  // 0 reaches kvc_sim_run, which explains it
  AddOutputFlags(app, &f->out, true);
  app->footer(kFooter);
  return {app, [f] {
            kvc_error err{};
            char* json_text = nullptr;
            const int rc = kvc_sim_run(&json_text, f->trace.c_str(),
                                       f->policies.empty() ? nullptr : f->policies.c_str(),
                                       f->capacities.data(), f->capacities.size(), &err);
            if (rc != KVC_OK)
              return Fail("sim", std::string(err.message) + " (" + kvc_status_name(rc) + ")");
            const std::string text(json_text);
            kvc_string_free(json_text);
            if (f->out == Output::kJson) {
              std::printf("%s\n", text.c_str());
              return kExitOk;
            }
            const auto rows = nlohmann::json::parse(text);
            if (f->out == Output::kCsv)
              PrintCsv(rows);
            else
              PrintTable(rows);
            return kExitOk;
          }};
}

}  // namespace kvc::cli
