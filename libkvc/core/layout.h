// Layout: the KV layout of a namespace and the byte sizes that follow from it.
//
// A block holds the KV of `block_tokens` tokens, layer-major:
// for each layer, K[block_tokens][kv_heads][head_dim] then V[...]. With
// tensor parallelism the heads are split over `shards` ranks; each rank
// stores its shard: 2 * layers * (kv_heads / shards) * head_dim *
// block_tokens * dtype_size bytes. A value type.
#ifndef KVC_CORE_LAYOUT_H_
#define KVC_CORE_LAYOUT_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "util/status.h"

namespace kvc {

struct Layout {
  std::string dtype;  // fp32 fp16 bf16 fp8_e4m3 fp8_e5m2 int8
  uint32_t layers = 0;
  uint32_t kv_heads = 0;
  uint32_t head_dim = 0;
  uint32_t block_tokens = 0;
  uint32_t shards = 1;

  // KVC_ERR_LAYOUT with the reason when a field is out of range, the dtype
  // is unknown, kv_heads is not a multiple of shards, or a block would exceed
  // kMaxBlockBytes.
  Status Validate() const;
  // "dtype=fp16;layers=32;kv_heads=8;head_dim=128;block_tokens=16;shards=1"
  std::string Canonical() const;
  // REQUIRES: Validate().ok().
  uint64_t BlockBytes() const;
  uint64_t ShardBytes() const { return BlockBytes() / shards; }

  static constexpr uint64_t kMaxBlockBytes = 1ull << 32;  // 4 GiB
  static constexpr uint32_t kMaxBlockTokens = 1u << 16;
};

// Bytes of one element of `dtype`; 0 when unknown.
uint32_t DtypeBytes(std::string_view dtype);

}  // namespace kvc

#endif  // KVC_CORE_LAYOUT_H_
