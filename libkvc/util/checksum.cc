#include "util/checksum.h"

#include <xxhash.h>

namespace kvc {

#if KVC_CHECKSUM_AVX2
namespace detail {
uint64_t Xxh3Avx2(const void* data, size_t len);  // checksum_avx2.cc
}  // namespace detail

namespace {
const bool kAvx2 = __builtin_cpu_supports("avx2");
}  // namespace

uint64_t Checksum64(const void* data, size_t len) {
  return kAvx2 ? detail::Xxh3Avx2(data, len) : XXH3_64bits(data, len);
}
const char* Checksum64Impl() { return kAvx2 ? "avx2" : "library"; }
#else
uint64_t Checksum64(const void* data, size_t len) { return XXH3_64bits(data, len); }
const char* Checksum64Impl() { return "library"; }
#endif

}  // namespace kvc
