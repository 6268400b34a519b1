// Small pieces shared by the load test and the micro-benchmarks of
// `kvc bench`: owned kvc handles, page-backed host buffers, a clock and the
// deterministic block contents that stand in for computed KV.
#ifndef KVC_CLI_BENCH_UTIL_H_
#define KVC_CLI_BENCH_UTIL_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "kvc.h"

namespace kvc::cli {

struct CacheCloser {
  void operator()(kvc_cache* c) const { kvc_cache_close(c); }
};
struct NamespaceCloser {
  void operator()(kvc_namespace* n) const { kvc_namespace_close(n); }
};
using CachePtr = std::unique_ptr<kvc_cache, CacheCloser>;
using NamespacePtr = std::unique_ptr<kvc_namespace, NamespaceCloser>;

inline uint64_t NowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// Anonymous private memory, 2 MiB aligned, advised for transparent huge pages
// and written once so that no later access page-faults. Movable, not
// copyable; one owner.
class HostBuffer {
 public:
  HostBuffer() = default;
  // Throws std::bad_alloc when the memory cannot be mapped.
  explicit HostBuffer(size_t bytes);
  HostBuffer(HostBuffer&& other) noexcept;
  HostBuffer& operator=(HostBuffer&& other) noexcept;
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;
  ~HostBuffer();

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_ = 0;
  void* base_ = nullptr;  // what mmap returned
};

// The stand-in for computed KV: `key`'s 16 bytes repeated over `len` bytes,
// so a block's bytes are a function of its key alone.
void FillBlock(void* dst, size_t len, const kvc_key& key);
// Whether `p` holds FillBlock(key)'s bytes: its first and last bytes when
// `full` is false, every byte when true.
bool CheckBlock(const void* p, size_t len, const kvc_key& key, bool full);

// A key that no token prefix hashes to in practice: `n` little-endian, then
// the tag "kvcbench".
kvc_key SyntheticKey(uint64_t n);

// The CPU's "model name" from /proc/cpuinfo; "unknown" when unreadable.
std::string CpuModel();

}  // namespace kvc::cli

#endif  // KVC_CLI_BENCH_UTIL_H_
