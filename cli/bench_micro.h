// The micro-benchmarks of `kvc bench --micro`: each measures one path of
// the embedded cache through the C ABI and, in the same run, the physical
// limit that path is bounded by (memcpy for copies, raw hashing for match
// from tokens, a mutex-guarded hash map for index operations), and reports
// both figures, their ratio and whether the target is met.
#ifndef KVC_CLI_BENCH_MICRO_H_
#define KVC_CLI_BENCH_MICRO_H_

#include <nlohmann/json.hpp>

#include "bench_config.h"

namespace kvc::cli {

// Fills *out with {"bench":"micro","quick":..,"rounds":..,"rows":[..]}; row
// fields are described in docs/benchmarks.md. `config.quick` shrinks working
// sets and round times (for tests; the figures are then rough). Returns an
// exit code; on failure it has printed the one-line "kvc bench: ..." message.
int RunMicroBench(const BenchConfig& config, nlohmann::json* out);

}  // namespace kvc::cli

#endif  // KVC_CLI_BENCH_MICRO_H_
