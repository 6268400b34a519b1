// KeyHasher: computes namespace seeds and block keys per kvc-hash-v1
// (docs/hash-spec.md, DESIGN §2). Thread-safe: a KeyHasher is immutable
// after construction and may be shared.
#ifndef KVC_CORE_KEY_HASHER_H_
#define KVC_CORE_KEY_HASHER_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/block_key.h"
#include "core/layout.h"
#include "util/status.h"

namespace kvc {

enum class HashAlgo { kSha256, kXxh3_128 };

// "sha256" / "xxh3-128"; KVC_ERR_INVALID_ARGUMENT otherwise.
Result<HashAlgo> ParseHashAlgo(std::string_view name);
std::string_view HashAlgoName(HashAlgo algo);

// The namespace fields that enter the seed, in spec order.
struct NamespaceFields {
  HashAlgo hash = HashAlgo::kSha256;
  std::string model;
  std::string revision;
  std::string adapter;
  Layout layout;
  std::string salt;  // raw bytes
};

class KeyHasher {
 public:
  // REQUIRES: fields.layout.Validate().ok().
  explicit KeyHasher(const NamespaceFields& fields);

  const BlockKey& seed() const { return seed_; }
  uint32_t block_tokens() const { return block_tokens_; }
  HashAlgo algo() const { return algo_; }

  // The canonical byte string the seed hashes (spec §canonical).
  // REQUIRES: every field shorter than 2^32 bytes (its length is a le32).
  static std::string Canonical(const NamespaceFields& fields);
  // H(x) of the spec.
  static BlockKey Hash(HashAlgo algo, const void* data, size_t len);

  // Keys of the full blocks of `tokens` appended to `out` (cleared first);
  // a trailing partial block has no key.
  void Keys(std::span<const uint32_t> tokens, std::vector<BlockKey>* out) const;
  // The same into a caller array of at least tokens.size()/block_tokens keys;
  // returns how many were written.
  size_t Keys(std::span<const uint32_t> tokens, BlockKey* out) const;
  // Continues a chain: the keys of the full blocks of `tokens` when they
  // follow the block whose key is `prev` (Keys(t, out) is KeysAfter(seed(),
  // t, out)). Lets a caller hash a long prefix in pieces, or extend a chain
  // it already holds, without rehashing. Same contract as Keys.
  size_t KeysAfter(const BlockKey& prev, std::span<const uint32_t> tokens, BlockKey* out) const;

 private:
  HashAlgo algo_;
  uint32_t block_tokens_;
  BlockKey seed_;
};

}  // namespace kvc

#endif  // KVC_CORE_KEY_HASHER_H_
