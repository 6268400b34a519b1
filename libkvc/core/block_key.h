// BlockKey: the 16-byte name of a block (docs/hash-spec.md). A value type.
#ifndef KVC_CORE_BLOCK_KEY_H_
#define KVC_CORE_BLOCK_KEY_H_

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "util/status.h"

namespace kvc {

struct BlockKey {
  std::array<uint8_t, 16> bytes{};

  bool operator==(const BlockKey& o) const { return bytes == o.bytes; }
  bool operator!=(const BlockKey& o) const { return bytes != o.bytes; }
  // The first 8 bytes as a little-endian integer: keys are hash outputs, so
  // this is already well mixed (index sharding, sketches).
  uint64_t Low64() const {
    uint64_t v;
    std::memcpy(&v, bytes.data(), 8);
    return v;
  }
  // 32 lowercase hex digits.
  std::string Hex() const;
  static Result<BlockKey> FromHex(std::string_view hex);
};

struct BlockKeyHash {
  size_t operator()(const BlockKey& k) const { return k.Low64(); }
};

}  // namespace kvc

#endif  // KVC_CORE_BLOCK_KEY_H_
