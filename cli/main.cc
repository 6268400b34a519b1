// kvc: the command-line tool. Holds the command table; each subcommand is in
// its own cmd_<name>.cc.
#include <cstdio>
#include <map>
#include <vector>

#include "command.h"

namespace kvc::cli {

void AddOutputFlags(CLI::App* app, Output* out, bool allow_csv) {
  std::map<std::string, Output> names{{"table", Output::kTable}, {"json", Output::kJson}};
  if (allow_csv) names["csv"] = Output::kCsv;
  app->add_option("-o,--output", *out, "Output format")
      ->transform(CLI::CheckedTransformer(names, CLI::ignore_case));
  app->add_flag_callback("--json", [out] { *out = Output::kJson; }, "Same as -o json");
}

int Fail(const std::string& cmd, const std::string& message) {
  std::fprintf(stderr, "kvc %s: %s\n", cmd.c_str(), message.c_str());
  return kExitError;
}

int FailStatus(const std::string& cmd, const std::string& what, const kvc_error& err) {
  return Fail(cmd, what + ": " + err.message + " (" + kvc_status_name(err.code) + ")");
}

}  // namespace kvc::cli

int main(int argc, char** argv) {
  using namespace kvc::cli;
  CLI::App root{"kvc: a tiered KV cache for LLM inference"};
  root.require_subcommand(1);
  root.set_version_flag("--version", std::string("kvc ") + kvc_version());
  std::vector<Registration> commands{
      RegisterVersion(root),
      RegisterHash(root),
      RegisterSim(root),
      RegisterBench(root),
      RegisterTenant(root),
      RegisterInspect(root),
      RegisterServe(root),
      RegisterStat(root),
      RegisterMatch(root),
      RegisterGet(root),
      RegisterPut(root),
      RegisterRm(root),
      RegisterCluster(root),
  };
  try {
    root.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return root.exit(e);
  } catch (const CLI::ParseError& e) {
    root.exit(e);
    return kExitUsage;
  }
  for (auto& c : commands) {
    if (c.app->parsed()) {
      try {
        return c.run();
      } catch (const std::exception& e) {
        return Fail(c.app->get_name(), e.what());
      }
    }
  }
  return kExitUsage;
}
