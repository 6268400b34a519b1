// XXH3-64 inlined from Debian's xxhash.h and compiled with -mavx2
// (libkvc/CMakeLists.txt), called by checksum.cc only when the CPU has
// AVX2. This file includes nothing but xxhash.h (C headers only) so that no
// AVX2-compiled inline function of another header can be picked by the
// linker for code that runs on a CPU without AVX2.
#if KVC_CHECKSUM_AVX2
#define XXH_INLINE_ALL
#define XXH_VECTOR XXH_AVX2
#include <xxhash.h>

namespace kvc::detail {
uint64_t Xxh3Avx2(const void* data, size_t len) { return XXH3_64bits(data, len); }
}  // namespace kvc::detail
#endif
