#include "core/key_hasher.h"

#include <bit>
#include <cstring>

#include <openssl/sha.h>
#include <xxhash.h>

// The low-level SHA256_* calls are deprecated in OpenSSL 3 in favour of EVP,
// but they hash a 16 + 4*B byte message on the stack with no allocation and
// no provider dispatch: about 20% faster than a reused EVP_MD_CTX for the
// 80-byte messages of block_tokens=16, and a KeyHasher shared by threads
// needs no per-thread context.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace kvc {
namespace {

constexpr std::string_view kSpecName = "kvc-hash-v1";
constexpr size_t kKeyBytes = sizeof(BlockKey{}.bytes);

void PutLe32(std::string* s, uint32_t v) {
  const char b[4] = {static_cast<char>(v), static_cast<char>(v >> 8), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 24)};
  s->append(b, 4);
}

void PutField(std::string* s, std::string_view field) {
  PutLe32(s, static_cast<uint32_t>(field.size()));
  s->append(field);
}

void PutLe64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

BlockKey FromXxh128(XXH128_hash_t h) {
  BlockKey k;
  PutLe64(k.bytes.data(), h.low64);
  PutLe64(k.bytes.data() + 8, h.high64);
  return k;
}

// key[i] = SHA-256(prev || block i)[0:16]. `blocks` holds n * block_bytes
// bytes, the tokens already little-endian.
void Sha256Chain(const BlockKey& first_prev, const uint8_t* blocks, size_t block_bytes, size_t n,
                 BlockKey* out) {
  SHA256_CTX ctx;
  uint8_t digest[SHA256_DIGEST_LENGTH];
  BlockKey start = first_prev;  // `first_prev` may alias out[]
  const uint8_t* prev = start.bytes.data();
  for (size_t i = 0; i < n; ++i) {
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, prev, kKeyBytes);
    SHA256_Update(&ctx, blocks + i * block_bytes, block_bytes);
    SHA256_Final(digest, &ctx);
    std::memcpy(out[i].bytes.data(), digest, kKeyBytes);
    prev = out[i].bytes.data();
  }
}

// key[i] = XXH3_128bits(prev || block i), the message assembled in `scratch`
// (kKeyBytes + block_bytes bytes).
void Xxh3Chain(const BlockKey& first_prev, const uint8_t* blocks, size_t block_bytes, size_t n,
               BlockKey* out, uint8_t* scratch) {
  std::memcpy(scratch, first_prev.bytes.data(), kKeyBytes);
  for (size_t i = 0; i < n; ++i) {
    std::memcpy(scratch + kKeyBytes, blocks + i * block_bytes, block_bytes);
    out[i] = FromXxh128(XXH3_128bits(scratch, kKeyBytes + block_bytes));
    std::memcpy(scratch, out[i].bytes.data(), kKeyBytes);
  }
}

}  // namespace

Result<HashAlgo> ParseHashAlgo(std::string_view name) {
  if (name == "sha256") return HashAlgo::kSha256;
  if (name == "xxh3-128") return HashAlgo::kXxh3_128;
  std::string shown;
  for (size_t i = 0; i < name.size() && i < 40; ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    shown += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  }
  if (name.size() > 40) shown += "...";
  return InvalidArgument("hash \"" + shown + "\" is not one of sha256 xxh3-128");
}

std::string_view HashAlgoName(HashAlgo algo) {
  return algo == HashAlgo::kSha256 ? "sha256" : "xxh3-128";
}

KeyHasher::KeyHasher(const NamespaceFields& fields)
    : algo_(fields.hash), block_tokens_(fields.layout.block_tokens) {
  const std::string canonical = Canonical(fields);
  seed_ = Hash(algo_, canonical.data(), canonical.size());
}

std::string KeyHasher::Canonical(const NamespaceFields& fields) {
  std::string s(kSpecName);
  PutField(&s, HashAlgoName(fields.hash));
  PutField(&s, fields.model);
  PutField(&s, fields.revision);
  PutField(&s, fields.adapter);
  PutField(&s, fields.layout.Canonical());
  PutField(&s, fields.salt);
  return s;
}

BlockKey KeyHasher::Hash(HashAlgo algo, const void* data, size_t len) {
  if (algo == HashAlgo::kXxh3_128) return FromXxh128(XXH3_128bits(data, len));
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(static_cast<const unsigned char*>(data), len, digest);
  BlockKey k;
  std::memcpy(k.bytes.data(), digest, kKeyBytes);
  return k;
}

void KeyHasher::Keys(std::span<const uint32_t> tokens, std::vector<BlockKey>* out) const {
  out->resize(tokens.size() / block_tokens_);
  Keys(tokens, out->data());
}

size_t KeyHasher::Keys(std::span<const uint32_t> tokens, BlockKey* out) const {
  return KeysAfter(seed_, tokens, out);
}

size_t KeyHasher::KeysAfter(const BlockKey& prev, std::span<const uint32_t> tokens,
                            BlockKey* out) const {
  const size_t n = tokens.size() / block_tokens_;
  if (n == 0) return 0;
  const size_t block_bytes = size_t{block_tokens_} * sizeof(uint32_t);

  // Tokens enter the hash as le32; on a big-endian host swap a copy.
  std::vector<uint32_t> swapped;
  const uint32_t* words = tokens.data();
  if constexpr (std::endian::native != std::endian::little) {
    swapped.assign(tokens.begin(), tokens.begin() + n * block_tokens_);
    for (uint32_t& t : swapped) t = __builtin_bswap32(t);
    words = swapped.data();
  }
  const auto* blocks = reinterpret_cast<const uint8_t*>(words);

  if (algo_ == HashAlgo::kSha256) {
    Sha256Chain(prev, blocks, block_bytes, n, out);
  } else {
    constexpr size_t kStackScratch = 2048;
    if (kKeyBytes + block_bytes <= kStackScratch) {
      uint8_t scratch[kStackScratch];
      Xxh3Chain(prev, blocks, block_bytes, n, out, scratch);
    } else {
      std::vector<uint8_t> scratch(kKeyBytes + block_bytes);
      Xxh3Chain(prev, blocks, block_bytes, n, out, scratch.data());
    }
  }
  return n;
}

}  // namespace kvc

#pragma GCC diagnostic pop
