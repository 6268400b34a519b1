// Block keys without a cache: kvc_hash_keys and the key hex helpers.
#include <string>

#include "capi_convert.h"
#include "capi_internal.h"

KVC_EXPORT void kvc_key_to_hex(const kvc_key* key, char out[33]) {
  static constexpr char kDigits[] = "0123456789abcdef";
  if (out == nullptr) return;
  if (key == nullptr) {
    out[0] = '\0';
    return;
  }
  for (size_t i = 0; i < KVC_KEY_BYTES; ++i) {
    out[2 * i] = kDigits[key->bytes[i] >> 4];
    out[2 * i + 1] = kDigits[key->bytes[i] & 0xf];
  }
  out[2 * KVC_KEY_BYTES] = '\0';
}

KVC_EXPORT int kvc_key_from_hex(kvc_key* out, const char* hex, kvc_error* err) {
  return kvc::capi::Guard(err, [&]() -> kvc::Status {
    KVC_REQUIRE_ARG(out, "out");
    KVC_REQUIRE_ARG(hex, "hex");
    auto key = kvc::BlockKey::FromHex(hex);
    if (!key.ok()) return key.status();
    *out = kvc::capi::ToC(*key);
    return kvc::Status::Ok();
  });
}

KVC_EXPORT int kvc_hash_keys(kvc_key* out_seed, kvc_key* out_keys, size_t keys_cap,
                             size_t* out_n, const kvc_namespace_options* opts,
                             const uint32_t* tokens, size_t n_tokens, kvc_error* err) {
  return kvc::capi::Guard(err, [&]() -> kvc::Status {
    KVC_REQUIRE_ARG(out_seed, "out_seed");
    KVC_REQUIRE_ARG(out_n, "out_n");
    *out_n = 0;
    auto fields = kvc::capi::FieldsFromOptions(opts);
    if (!fields.ok()) return fields.status();
    if (tokens == nullptr && n_tokens > 0) {
      return kvc::InvalidArgument("tokens is NULL but n_tokens is " + std::to_string(n_tokens));
    }
    const size_t b = fields->layout.block_tokens;
    const size_t n = n_tokens / b;
    if (n > 0 && out_keys == nullptr) {
      return kvc::InvalidArgument("out_keys is NULL but the tokens hold " + std::to_string(n) +
                                  " full blocks");
    }
    if (keys_cap < n) {
      return kvc::InvalidArgument("keys_cap is " + std::to_string(keys_cap) +
                                  " but the tokens hold " + std::to_string(n) +
                                  " full blocks of " + std::to_string(b) + " tokens");
    }
    const kvc::KeyHasher hasher(*fields);
    *out_seed = kvc::capi::ToC(hasher.seed());
    *out_n = kvc::capi::KeysToC(hasher, {tokens, n_tokens}, out_keys);
    return kvc::Status::Ok();
  });
}
