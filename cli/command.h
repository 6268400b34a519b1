// The kvc command table: each subcommand lives in cli/cmd_<name>.cc, registers
// its flags on the root CLI11 app and returns the function that runs it.
// Subcommands call only the C ABI (capi/kvc.h).
#ifndef KVC_CLI_COMMAND_H_
#define KVC_CLI_COMMAND_H_

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

#include "kvc.h"

namespace kvc::cli {

// Exit codes of every subcommand.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;

using RunFn = std::function<int()>;

struct Registration {
  CLI::App* app;
  RunFn run;
};

Registration RegisterVersion(CLI::App& root);
Registration RegisterHash(CLI::App& root);
Registration RegisterSim(CLI::App& root);
Registration RegisterBench(CLI::App& root);
Registration RegisterTenant(CLI::App& root);
Registration RegisterInspect(CLI::App& root);
Registration RegisterServe(CLI::App& root);
Registration RegisterStat(CLI::App& root);
Registration RegisterMatch(CLI::App& root);
Registration RegisterGet(CLI::App& root);
Registration RegisterPut(CLI::App& root);
Registration RegisterRm(CLI::App& root);
Registration RegisterCluster(CLI::App& root);

enum class Output { kTable, kJson, kCsv };

// Adds `-o,--output FORMAT` (table|json[|csv]) and `--json` (same as -o json).
void AddOutputFlags(CLI::App* app, Output* out, bool allow_csv);

// Prints "kvc <cmd>: <message>" on one line to stderr; returns kExitError.
int Fail(const std::string& cmd, const std::string& message);
// The same for a failed C call: "kvc <cmd>: <what>: <err.message> (KVC_ERR_...)".
int FailStatus(const std::string& cmd, const std::string& what, const kvc_error& err);

}  // namespace kvc::cli

#endif  // KVC_CLI_COMMAND_H_
