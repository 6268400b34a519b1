// Conversions between the C ABI's structs and libkvc's types, shared by the
// C shim's translation units (capi/*.cc). Not installed. Thread-safe: pure
// functions.
#ifndef KVC_CAPI_CAPI_CONVERT_H_
#define KVC_CAPI_CAPI_CONVERT_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "core/block_key.h"
#include "core/cache.h"
#include "core/key_hasher.h"
#include "kvc.h"
#include "util/status.h"

namespace kvc::capi {

static_assert(sizeof(kvc_key) == sizeof(BlockKey{}.bytes), "kvc_key and BlockKey differ");

// Validates every field of `opts` that enters the key seed and returns them.
// KVC_ERR_INVALID_ARGUMENT, with a message naming the field, when `opts` is
// NULL; struct_size does not cover the fields up to salt_len, or exceeds
// sizeof(kvc_namespace_options) (the caller has a newer kvc.h); hash is not
// a known name (NULL means "sha256"); model or revision is NULL or empty;
// dtype is NULL; salt is NULL while salt_len > 0; or a field is 4 GiB or
// longer. KVC_ERR_LAYOUT when the layout is invalid (Layout::Validate).
// shards 0 means the default, 1; a NULL adapter means none.
Result<NamespaceFields> FieldsFromOptions(const kvc_namespace_options* opts);

// kvc_cache_open's reading of a kvc_cache_options (NULL: defaults); shared
// with kvc_node_server_start. Defined in capi_cache.cc.
Result<CacheOptions> CacheOptionsFromC(const kvc_cache_options* opts);

inline kvc_key ToC(const BlockKey& k) {
  kvc_key c;
  std::memcpy(c.bytes, k.bytes.data(), sizeof c.bytes);
  return c;
}

inline BlockKey FromC(const kvc_key& c) {
  BlockKey k;
  std::memcpy(k.bytes.data(), c.bytes, sizeof c.bytes);
  return k;
}

// KeyHasher::Keys into a C array of at least tokens.size() / block_tokens
// keys, without allocating. Returns how many keys were written.
size_t KeysToC(const KeyHasher& hasher, std::span<const uint32_t> tokens, kvc_key* out);

}  // namespace kvc::capi

#endif  // KVC_CAPI_CAPI_CONVERT_H_
