#include "core/block_key.h"

namespace kvc {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string BlockKey::Hex() const {
  std::string s(2 * bytes.size(), '0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    s[2 * i] = kHexDigits[bytes[i] >> 4];
    s[2 * i + 1] = kHexDigits[bytes[i] & 0xf];
  }
  return s;
}

Result<BlockKey> BlockKey::FromHex(std::string_view hex) {
  BlockKey key;
  if (hex.size() != 2 * key.bytes.size()) {
    return InvalidArgument("a key is 32 hex digits, got " + std::to_string(hex.size()) +
                           " characters");
  }
  for (size_t i = 0; i < key.bytes.size(); ++i) {
    const int hi = HexValue(hex[2 * i]);
    const int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      const size_t at = hi < 0 ? 2 * i : 2 * i + 1;
      return InvalidArgument("a key is 32 hex digits, found a non-hex character at offset " +
                             std::to_string(at));
    }
    key.bytes[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return key;
}

}  // namespace kvc
