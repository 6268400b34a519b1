// The load test of `kvc bench`: worker threads replay a synthetic workload
// (bench_workload.h) against an embedded cache through the C ABI, as an
// inference engine would: match the prompt, load the matched prefix into
// host buffers, "compute" the rest, store the new full blocks.
#ifndef KVC_CLI_BENCH_LOAD_H_
#define KVC_CLI_BENCH_LOAD_H_

#include <cstdint>

#include <nlohmann/json.hpp>

#include "bench_config.h"
#include "kvc.h"

namespace kvc::cli {

// Runs the load test described by `config` with the KV layout of `model`
// and a host tier of `capacity_bytes`; fills *out with the report (fields in
// docs/benchmarks.md). Returns an exit code; on failure it has printed the
// one-line "kvc bench: ..." message. REQUIRES: config validated by the
// caller (threads >= 1, block_tokens >= 1).
int RunLoadBench(const BenchConfig& config, const ModelPreset& model, uint64_t capacity_bytes,
                 nlohmann::json* out);

// The fields of kvc_stats as a JSON object.
nlohmann::json StatsJson(const kvc_stats& s);

}  // namespace kvc::cli

#endif  // KVC_CLI_BENCH_LOAD_H_
