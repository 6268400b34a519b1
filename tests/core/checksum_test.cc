#include "util/checksum.h"

#include <doctest/doctest.h>
#include <xxhash.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace kvc {
namespace {

// Checksum64 is a faster XXH3-64, never a different checksum: blocks written
// by one build (or stored on SSD by one CPU) verify under the other.
TEST_CASE("Checksum64 equals XXH3_64bits for every length and alignment") {
  MESSAGE("Checksum64 implementation: " << std::string(Checksum64Impl()));
  std::mt19937_64 rng(42);
  std::vector<uint8_t> buf((1u << 20) + 64);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  // Every length through the short, mid and long paths of XXH3 (0-16, 17-128,
  // 129-240, > 240, multiple stripes and blocks), at every offset mod 32.
  for (size_t len = 0; len <= 2048; len++) {
    const size_t off = len % 32;
    CAPTURE(len);
    REQUIRE(Checksum64(buf.data() + off, len) == XXH3_64bits(buf.data() + off, len));
  }
  for (size_t len : {4095u, 4096u, 65536u, 65537u, 1u << 20}) {
    CAPTURE(len);
    CHECK(Checksum64(buf.data() + 3, len) == XXH3_64bits(buf.data() + 3, len));
    CHECK(Checksum64(buf.data(), len) == XXH3_64bits(buf.data(), len));
  }
}

TEST_CASE("Checksum64 sees a flipped byte anywhere in a block") {
  std::vector<uint8_t> buf(1u << 16, 0x5a);
  const uint64_t clean = Checksum64(buf.data(), buf.size());
  for (size_t i : {0u, 1u, 255u, 4096u, 32767u, 65535u}) {
    buf[i] ^= 1;
    CHECK(Checksum64(buf.data(), buf.size()) != clean);
    buf[i] ^= 1;
  }
  CHECK(Checksum64(buf.data(), buf.size()) == clean);
}

}  // namespace
}  // namespace kvc
