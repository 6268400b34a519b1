// Checksum64: the XXH3-64 of a byte range, the checksum of every stored
// block (host and SSD tiers) and of the SSD format's records.
//
// The value is XXH3_64bits's, bit for bit, on every CPU; only the speed
// differs. Debian's libxxhash is built for the generic x86-64 baseline
// (SSE2); on a CPU with AVX2 this uses an inlined copy of XXH3 compiled for
// AVX2 (checksum_avx2.cc), about twice as fast on large blocks.
// Thread-safe; no state.
#ifndef KVC_UTIL_CHECKSUM_H_
#define KVC_UTIL_CHECKSUM_H_

#include <cstddef>
#include <cstdint>

namespace kvc {

uint64_t Checksum64(const void* data, size_t len);

// Which implementation Checksum64 uses: "avx2" or "library".
const char* Checksum64Impl();

}  // namespace kvc

#endif  // KVC_UTIL_CHECKSUM_H_
