#include "core/layout.h"

#include <doctest/doctest.h>

#include <limits>

namespace kvc {
namespace {

Layout Llama8B() { return Layout{"fp16", 32, 8, 128, 16, 1}; }

// Validate fails with KVC_ERR_LAYOUT and a one-line message containing every
// one of `words`.
void CheckRefused(const Layout& l, std::initializer_list<const char*> words) {
  const Status s = l.Validate();
  CAPTURE(l.Canonical());
  REQUIRE_FALSE(s.ok());
  CHECK(s.code() == Code::kLayout);
  CHECK(s.message().find('\n') == std::string::npos);
  for (const char* w : words) {
    CAPTURE(w);
    CHECK(s.message().find(w) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("Layout::Canonical is the spec's ASCII string") {
  CHECK(Llama8B().Canonical() ==
        "dtype=fp16;layers=32;kv_heads=8;head_dim=128;block_tokens=16;shards=1");
  const Layout big{"fp8_e4m3", 4294967295u, 1, 2, 65536, 1};
  CHECK(big.Canonical() ==
        "dtype=fp8_e4m3;layers=4294967295;kv_heads=1;head_dim=2;block_tokens=65536;shards=1");
}

TEST_CASE("DtypeBytes") {
  CHECK(DtypeBytes("fp32") == 4);
  CHECK(DtypeBytes("fp16") == 2);
  CHECK(DtypeBytes("bf16") == 2);
  CHECK(DtypeBytes("fp8_e4m3") == 1);
  CHECK(DtypeBytes("fp8_e5m2") == 1);
  CHECK(DtypeBytes("int8") == 1);
  CHECK(DtypeBytes("FP16") == 0);
  CHECK(DtypeBytes("fp64") == 0);
  CHECK(DtypeBytes("") == 0);
}

TEST_CASE("block and shard bytes") {
  Layout l = Llama8B();
  REQUIRE(l.Validate().ok());
  CHECK(l.BlockBytes() == 2ull * 32 * 8 * 128 * 16 * 2);  // 2 MiB
  CHECK(l.ShardBytes() == l.BlockBytes());
  l.shards = 4;
  REQUIRE(l.Validate().ok());
  CHECK(l.BlockBytes() == 2ull * 32 * 8 * 128 * 16 * 2);
  CHECK(l.ShardBytes() == l.BlockBytes() / 4);
  for (const char* d : {"fp32", "fp16", "bf16", "fp8_e4m3", "fp8_e5m2", "int8"}) {
    l.dtype = d;
    CHECK(l.Validate().ok());
    CHECK(l.BlockBytes() == 2ull * 32 * 8 * 128 * 16 * DtypeBytes(d));
  }
}

TEST_CASE("Validate names the field and the reason") {
  Layout l = Llama8B();
  l.dtype = "fp64";
  CheckRefused(l, {"dtype", "\"fp64\"", "fp32 fp16 bf16 fp8_e4m3 fp8_e5m2 int8"});
  l.dtype = "";
  CheckRefused(l, {"dtype", "empty"});
  l.dtype = "fp\n16";
  CheckRefused(l, {"dtype", "\\x0a"});

  l = Llama8B();
  l.layers = 0;
  CheckRefused(l, {"layers", "0"});
  l = Llama8B();
  l.kv_heads = 0;
  CheckRefused(l, {"kv_heads"});
  l = Llama8B();
  l.head_dim = 0;
  CheckRefused(l, {"head_dim"});
  l = Llama8B();
  l.block_tokens = 0;
  CheckRefused(l, {"block_tokens"});
  l = Llama8B();
  l.shards = 0;
  CheckRefused(l, {"shards"});

  l = Llama8B();
  l.block_tokens = Layout::kMaxBlockTokens;
  l.layers = 1;
  l.kv_heads = 1;
  CHECK(l.Validate().ok());
  l.block_tokens = Layout::kMaxBlockTokens + 1;
  CheckRefused(l, {"block_tokens", "65537", "65536"});

  l = Llama8B();
  l.shards = 3;
  CheckRefused(l, {"kv_heads (8)", "shards (3)", "multiple"});
  l.shards = 8;
  CHECK(l.Validate().ok());
  l.shards = 16;
  CheckRefused(l, {"kv_heads (8)", "shards (16)"});
}

TEST_CASE("block bytes are checked against the maximum without overflow") {
  // 2 * 2^14 * 1 * 2^15 * 1 * 4 = 2^32, exactly the maximum.
  Layout l{"fp32", 1u << 14, 1, 1u << 15, 1, 1};
  REQUIRE(l.Validate().ok());
  CHECK(l.BlockBytes() == Layout::kMaxBlockBytes);
  l.layers += 1;
  CheckRefused(l, {"block", "4294967296"});

  constexpr uint32_t kMax = std::numeric_limits<uint32_t>::max();
  CheckRefused(Layout{"fp32", kMax, kMax, kMax, Layout::kMaxBlockTokens, 1}, {"exceed"});
  CheckRefused(Layout{"int8", kMax, 1, 1, 1, 1}, {"exceed"});
  CheckRefused(Layout{"int8", 1, 1, kMax, 1, 1}, {"exceed"});
  // Products that wrap 64 bits must not slip through as small numbers.
  CheckRefused(Layout{"fp32", 1u << 31, 1u << 31, 1u << 31, 1u << 16, 1}, {"exceed"});
}

}  // namespace kvc
