// The settings of one `kvc bench` run, the model presets that give its KV
// layout, and byte-size parsing. Values; no shared state.
#ifndef KVC_CLI_BENCH_CONFIG_H_
#define KVC_CLI_BENCH_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kvc::cli {

// A model's KV layout: what one token costs in the cache.
struct ModelPreset {
  std::string name;
  std::string dtype;
  uint32_t dtype_bytes;
  uint32_t layers;
  uint32_t kv_heads;
  uint32_t head_dim;

  // K and V of every layer: 2 * layers * kv_heads * head_dim * dtype_bytes.
  uint64_t BytesPerToken() const {
    return uint64_t{2} * layers * kv_heads * head_dim * dtype_bytes;
  }
};

// llama-3-8b, llama-3-70b, qwen2.5-7b (all fp16), in help order.
const std::vector<ModelPreset>& ModelPresets();
// nullptr when unknown.
const ModelPreset* FindModel(const std::string& name);
// Bytes of one element of `dtype` (fp32 fp16 bf16 fp8_e4m3 fp8_e5m2 int8);
// 0 when unknown.
uint32_t DtypeBytes(const std::string& dtype);

// Parses "123", "512MiB", "2GiB", "1.5G", "64k", "100MB": K/M/G/T (with or
// without "iB") are powers of 1024, KB/MB/GB/TB powers of 1000, "B" alone
// bytes. Case-insensitive suffix. nullopt when malformed or overflowing.
std::optional<uint64_t> ParseSize(const std::string& text);
// "2.00 GiB", "512.0 KiB", "17 B".
std::string FormatSize(uint64_t bytes);

struct BenchConfig {
  // load test
  std::string workload = "chat";
  std::string model = "llama-3-8b";
  // Overrides of the preset's layout; empty / 0: the preset's.
  std::string dtype;
  uint32_t layers = 0;
  uint32_t kv_heads = 0;
  uint32_t head_dim = 0;
  uint32_t block_tokens = 16;
  std::string capacity = "2GiB";
  uint32_t threads = 0;  // 0: min(hardware threads, 4)
  uint64_t requests = 0;  // 0 with duration 0: kDefaultRequests
  double duration_s = 0;
  uint64_t seed = 1;
  std::string policy;  // "": the library's default
  std::string hash;    // "": the library's default
  uint32_t max_context = 4096;
  bool progress = false;
  bool verify = false;
  // tiers and tenants (all off by default: the host tier alone, no tenants)
  std::string tiers = "host";  // "host" or "host,ssd"
  std::string ssd_dir;
  std::string ssd_capacity;  // "": 4x the host capacity
  std::string write_mode = "back";  // "back" or "through"
  uint32_t tenants = 0;  // 0: no tenants file
  std::string tenant_quota;  // "": no host quota
  // Parsed from the strings above by the command.
  bool ssd = false;
  uint64_t ssd_capacity_bytes = 0;
  uint64_t tenant_quota_bytes = 0;
  // micro-benchmarks
  bool micro = false;
  bool quick = false;

  static constexpr uint64_t kDefaultRequests = 400;
  static constexpr uint32_t kMaxTenants = 64;
};

}  // namespace kvc::cli

#endif  // KVC_CLI_BENCH_CONFIG_H_
