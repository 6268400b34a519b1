// The remote block benchmark of `kvc bench --node/--cluster/--redis`: the
// same block traffic (put every block, match the chain, get every block back
// several times, bytes verified) against each target in turn, with the same
// block size, block count and number of client threads, plus `memcpy` of the
// same pattern as the limit. Nodes are reached only through the C ABI's
// kvc_node_* calls; Redis through hiredis (SET/GET of the block bytes under
// the block key, EXISTS for match). Values and free functions; no shared state.
#ifndef KVC_CLI_BENCH_REMOTE_H_
#define KVC_CLI_BENCH_REMOTE_H_

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "command.h"

namespace kvc::cli {

struct RemoteTarget {
  std::string kind;     // "node", "cluster" or "redis"
  std::string address;  // node: "host:port" or "unix:PATH"; cluster: what
                        // kvc_node_connect takes; redis: "host:port" or "unix:PATH"
};

struct RemoteConfig {
  std::vector<RemoteTarget> targets;  // measured in this order, after memcpy
  uint64_t block_bytes = 1u << 20;
  uint32_t threads = 2;   // client threads; each has its own connection
  uint32_t blocks = 64;   // distinct blocks each thread puts
  uint32_t passes = 4;    // times each thread matches and gets all its blocks
  uint32_t batch = 1;     // blocks a call: node and cluster kvc_node_*_batch,
                          // Redis that many commands pipelined; 1: one call a block
  uint32_t rounds = 3;    // every target measured this many times, alternating;
                          // each phase's best round is kept
  std::string tenant, credential;  // node and cluster targets; empty: none
  uint32_t timeout_ms = 0;         // node call deadline; 0: the library's
  bool progress = false;
};

// Runs the benchmark; fills *out with {"bench":"remote", ..., "targets":[..]}
// (fields in docs/benchmarks.md). A target that cannot be reached gets a row
// with its "error" and is not measured. Returns kExitOk when every target
// was measured with no verify failure and no failed call, else kExitError
// (having printed one "kvc bench: ..." line per problem).
// Sets glibc's malloc thresholds for the process (mallopt), so that the
// block-sized buffers gRPC and hiredis allocate per call are reused rather
// than mapped and page-faulted anew on every call; the same for every target.
// REQUIRES: threads, blocks, passes, rounds >= 1; 1 <= batch <= KVC_NODE_MAX_BATCH; block_bytes even and >= 2.
int RunRemoteBench(const RemoteConfig& config, nlohmann::json* out);

// Table (a line per target, ratios beside), JSON, or CSV (a header of the
// flattened field names and a line per target).
void PrintRemoteReport(const nlohmann::json& report, Output format);

}  // namespace kvc::cli

#endif  // KVC_CLI_BENCH_REMOTE_H_
