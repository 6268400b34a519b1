// serving_loop.cc -- kvc in an inference engine's serving loop, in C++.
//
// The same loop as examples/c/serving_loop.c, written as C++ code would use
// the C ABI: handles owned by std::unique_ptr, failed statuses thrown as
// exceptions carrying the call's own message. For each request: match the
// prompt, load the cached prefix into the engine's KV buffer, "compute" the
// rest (a deterministic stand-in for prefill), store the new blocks.
//
// Build against an installed kvc:
//   cmake -S examples/cpp -B build-example -DCMAKE_PREFIX_PATH=<prefix>   (find_package)
//   make -C examples/cpp OUT=<dir>    (pkg-config; set PKG_CONFIG_PATH=<prefix>/lib/pkgconfig)
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "kvc.h"

namespace {

constexpr uint32_t kBlockTokens = 16;
constexpr size_t kSystemTokens = 64;

// A failed kvc call.
class KvcError : public std::runtime_error {
 public:
  KvcError(const char* what, const kvc_error& err)
      : std::runtime_error(std::string(what) + ": " + err.message + " (" +
                           kvc_status_name(err.code) + ")"),
        code(err.code) {}
  int code;
};

// Runs a kvc call that takes a trailing kvc_error*; throws on failure.
template <class F>
void Check(const char* what, F&& call) {
  kvc_error err{};
  if (call(&err) != KVC_OK) throw KvcError(what, err);
}

struct CacheClose {
  void operator()(kvc_cache* c) const { kvc_cache_close(c); }
};
struct NamespaceClose {
  void operator()(kvc_namespace* n) const { kvc_namespace_close(n); }
};
using CachePtr = std::unique_ptr<kvc_cache, CacheClose>;
using NamespacePtr = std::unique_ptr<kvc_namespace, NamespaceClose>;

// The engine's prefill, standing in: a block's KV bytes are a function of
// its key, that is of the whole token prefix the block ends.
void ComputeBlock(uint8_t* out, size_t n, const kvc_key& key) {
  uint64_t s = 1469598103934665603ull;
  for (uint8_t b : key.bytes) s = (s ^ b) * 1099511628211ull;
  for (size_t i = 0; i < n; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    out[i] = static_cast<uint8_t>(s >> 56);
  }
}

class Engine {
 public:
  Engine() {
    kvc_cache_options copts = KVC_CACHE_OPTIONS_INIT;
    copts.host_capacity_bytes = 64u << 20;
    kvc_cache* c = nullptr;
    Check("kvc_cache_open", [&](kvc_error* e) { return kvc_cache_open(&c, &copts, e); });
    cache_.reset(c);

    kvc_namespace_options nopts = KVC_NAMESPACE_OPTIONS_INIT;
    nopts.model = "example/llama-tiny";
    nopts.revision = "v1";
    nopts.dtype = "fp16";
    nopts.layers = 4;
    nopts.kv_heads = 4;
    nopts.head_dim = 64;
    nopts.block_tokens = kBlockTokens;
    kvc_namespace* n = nullptr;
    Check("kvc_namespace_open",
          [&](kvc_error* e) { return kvc_namespace_open(&n, cache_.get(), &nopts, e); });
    ns_.reset(n);
    kvc_namespace_info info = KVC_NAMESPACE_INFO_INIT;
    Check("kvc_namespace_info_get",
          [&](kvc_error* e) { return kvc_namespace_info_get(ns_.get(), &info, e); });
    shard_bytes_ = info.shard_bytes;
  }

  size_t shard_bytes() const { return shard_bytes_; }

  // Serves one request; returns the number of blocks found in the cache.
  size_t Serve(int request, const std::vector<uint32_t>& tokens) {
    const size_t n_blocks = tokens.size() / kBlockTokens;
    std::vector<kvc_key> keys(n_blocks);
    size_t hit = 0;
    Check("kvc_match_tokens", [&](kvc_error* e) {
      return kvc_match_tokens(ns_.get(), &hit, nullptr, keys.data(), keys.size(), tokens.data(),
                              tokens.size(), e);
    });

    std::vector<uint8_t> kv(n_blocks * shard_bytes_);  // the engine's KV for this request
    std::vector<kvc_buf> bufs(n_blocks);
    for (size_t i = 0; i < n_blocks; ++i) {
      bufs[i] = kvc_buf KVC_HOST_BUF(kv.data() + i * shard_bytes_, shard_bytes_);
    }
    size_t loaded = 0;
    if (hit > 0) {
      Check("kvc_load_batch", [&](kvc_error* e) {
        return kvc_load_batch(ns_.get(), nullptr, &loaded, keys.data(), hit, 0, bufs.data(), e);
      });
    }
    std::vector<uint8_t> expect(shard_bytes_);
    for (size_t i = 0; i < loaded; ++i) {
      ComputeBlock(expect.data(), expect.size(), keys[i]);
      if (std::memcmp(expect.data(), bufs[i].data, shard_bytes_) != 0) {
        throw std::runtime_error("block " + std::to_string(i) + " loaded from the cache differs");
      }
    }
    for (size_t i = loaded; i < n_blocks; ++i) {
      ComputeBlock(static_cast<uint8_t*>(bufs[i].data), shard_bytes_, keys[i]);
    }
    if (n_blocks > loaded) {
      Check("kvc_store_batch", [&](kvc_error* e) {
        return kvc_store_batch(ns_.get(), nullptr, keys.data() + loaded, n_blocks - loaded, 0,
                               bufs.data() + loaded, nullptr, e);
      });
    }
    std::printf("request %d: %3zu tokens, %zu full blocks: %zu from the cache, %zu computed and stored\n",
                request, tokens.size(), n_blocks, loaded, n_blocks - loaded);
    return loaded;
  }

 private:
  CachePtr cache_;  // declared first: destroyed after the namespace
  NamespacePtr ns_;
  size_t shard_bytes_ = 0;
};

}  // namespace

int main() {
  try {
    Engine engine;
    std::printf("kvc %s: namespace of %zu-byte blocks, %u tokens each\n", kvc_version(),
                engine.shard_bytes(), kBlockTokens);
    std::vector<uint32_t> a, b;
    for (size_t i = 0; i < kSystemTokens; ++i) {
      a.push_back(static_cast<uint32_t>(1000 + i * 13));
      b.push_back(static_cast<uint32_t>(1000 + i * 13));
    }
    for (size_t i = kSystemTokens; i < kSystemTokens + 45; ++i) a.push_back(static_cast<uint32_t>(50000 + i * 7));
    for (size_t i = kSystemTokens; i < kSystemTokens + 37; ++i) b.push_back(static_cast<uint32_t>(90000 + i * 3));

    const size_t first = engine.Serve(1, a);
    const size_t second = engine.Serve(2, b);
    const size_t repeat = engine.Serve(3, a);
    const bool ok = first == 0 && second == kSystemTokens / kBlockTokens && repeat == a.size() / kBlockTokens;
    std::printf("%s: the second request reused %zu blocks of the system prompt, the repeat %zu of %zu\n",
                ok ? "ok" : "FAILED", second, repeat, a.size() / kBlockTokens);
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "serving_loop: %s\n", e.what());
    return 1;
  }
}
