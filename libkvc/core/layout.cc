#include "core/layout.h"

#include <array>
#include <utility>

namespace kvc {
namespace {

constexpr std::array<std::pair<std::string_view, uint32_t>, 6> kDtypes{{
    {"fp32", 4},
    {"fp16", 2},
    {"bf16", 2},
    {"fp8_e4m3", 1},
    {"fp8_e5m2", 1},
    {"int8", 1},
}};

constexpr std::string_view kDtypeList = "fp32 fp16 bf16 fp8_e4m3 fp8_e5m2 int8";

// `s` quoted for a one-line message: printable ASCII kept, other bytes as
// \xNN, long strings cut.
std::string Quote(std::string_view s) {
  constexpr size_t kMax = 40;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string q = "\"";
  for (size_t i = 0; i < s.size() && i < kMax; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      q += static_cast<char>(c);
    } else {
      q += "\\x";
      q += kHex[c >> 4];
      q += kHex[c & 0xf];
    }
  }
  if (s.size() > kMax) q += "...";
  q += '"';
  return q;
}

Status PositiveField(const char* name, uint32_t v) {
  if (v == 0) return LayoutError(std::string("layout: ") + name + " is 0; it must be at least 1");
  return Status::Ok();
}

}  // namespace

uint32_t DtypeBytes(std::string_view dtype) {
  for (const auto& [name, bytes] : kDtypes) {
    if (name == dtype) return bytes;
  }
  return 0;
}

Status Layout::Validate() const {
  const uint32_t dtype_bytes = DtypeBytes(dtype);
  if (dtype.empty()) {
    return LayoutError("layout: dtype is empty; it must be one of " + std::string(kDtypeList));
  }
  if (dtype_bytes == 0) {
    return LayoutError("layout: dtype " + Quote(dtype) + " is not one of " +
                       std::string(kDtypeList));
  }
  KVC_RETURN_IF_ERROR(PositiveField("layers", layers));
  KVC_RETURN_IF_ERROR(PositiveField("kv_heads", kv_heads));
  KVC_RETURN_IF_ERROR(PositiveField("head_dim", head_dim));
  KVC_RETURN_IF_ERROR(PositiveField("block_tokens", block_tokens));
  KVC_RETURN_IF_ERROR(PositiveField("shards", shards));
  if (block_tokens > kMaxBlockTokens) {
    return LayoutError("layout: block_tokens is " + std::to_string(block_tokens) +
                       "; the maximum is " + std::to_string(kMaxBlockTokens));
  }
  if (kv_heads % shards != 0) {
    return LayoutError("layout: kv_heads (" + std::to_string(kv_heads) +
                       ") is not a multiple of shards (" + std::to_string(shards) + ")");
  }
  // 2 * layers * kv_heads * head_dim * block_tokens * dtype_bytes, refusing
  // any partial product above the maximum (every factor is >= 1, so the
  // product only grows, and a refused product never overflows 64 bits).
  uint64_t bytes = 2;
  for (const uint64_t factor : {uint64_t{layers}, uint64_t{kv_heads}, uint64_t{head_dim},
                                uint64_t{block_tokens}, uint64_t{dtype_bytes}}) {
    if (__builtin_mul_overflow(bytes, factor, &bytes) || bytes > kMaxBlockBytes) {
      return LayoutError(
          "layout: a block (2 * layers * kv_heads * head_dim * block_tokens * dtype bytes) "
          "would exceed the maximum of " +
          std::to_string(kMaxBlockBytes) + " bytes");
    }
  }
  return Status::Ok();
}

std::string Layout::Canonical() const {
  std::string s;
  s.reserve(96);
  s += "dtype=";
  s += dtype;
  s += ";layers=" + std::to_string(layers);
  s += ";kv_heads=" + std::to_string(kv_heads);
  s += ";head_dim=" + std::to_string(head_dim);
  s += ";block_tokens=" + std::to_string(block_tokens);
  s += ";shards=" + std::to_string(shards);
  return s;
}

uint64_t Layout::BlockBytes() const {
  return 2ull * layers * kv_heads * head_dim * block_tokens * DtypeBytes(dtype);
}

}  // namespace kvc
