// Printing `kvc bench` reports (the JSON objects RunLoadBench and
// RunMicroBench build) as a table, JSON or CSV on stdout.
#ifndef KVC_CLI_BENCH_REPORT_H_
#define KVC_CLI_BENCH_REPORT_H_

#include <nlohmann/json.hpp>

#include "command.h"

namespace kvc::cli {

// The load test's report: one JSON object; in CSV a header line of the
// flattened field names ("latency_us_match_p50", "cache_evictions") and one
// line of values; as a table, labelled lines for people.
void PrintLoadReport(const nlohmann::json& report, Output format);

// The micro-benchmarks: the JSON object; in CSV a header line and a line per
// row; as a table, a line per row.
void PrintMicroReport(const nlohmann::json& report, Output format);

}  // namespace kvc::cli

#endif  // KVC_CLI_BENCH_REPORT_H_
