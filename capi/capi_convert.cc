#include "capi_convert.h"

#include <algorithm>
#include <limits>
#include <string>

namespace kvc::capi {
namespace {

constexpr size_t kMaxFieldBytes = std::numeric_limits<uint32_t>::max();

// A required C string field: not NULL, not empty, shorter than 4 GiB.
Status RequiredString(const char* value, const char* name, const char* what,
                      std::string* out) {
  if (value == nullptr) {
    return InvalidArgument(std::string(name) + " is NULL; " + what + " is required");
  }
  const size_t len = std::strlen(value);
  if (len == 0) return InvalidArgument(std::string(name) + " is empty; " + what + " is required");
  if (len > kMaxFieldBytes) return InvalidArgument(std::string(name) + " is 4 GiB or longer");
  out->assign(value, len);
  return Status::Ok();
}

}  // namespace

Result<NamespaceFields> FieldsFromOptions(const kvc_namespace_options* opts) {
  if (opts == nullptr) {
    return InvalidArgument("namespace options are NULL; model, revision and layout are required");
  }
  constexpr size_t kNeeded =
      offsetof(kvc_namespace_options, salt_len) + sizeof(kvc_namespace_options::salt_len);
  if (opts->struct_size < kNeeded) {
    return InvalidArgument("kvc_namespace_options.struct_size is " +
                           std::to_string(opts->struct_size) + "; it must be at least " +
                           std::to_string(kNeeded) +
                           " (initialise the struct with KVC_NAMESPACE_OPTIONS_INIT)");
  }
  if (opts->struct_size > sizeof(kvc_namespace_options)) {
    return InvalidArgument("kvc_namespace_options.struct_size " +
                           std::to_string(opts->struct_size) + " is larger than this library's " +
                           std::to_string(sizeof(kvc_namespace_options)) +
                           ": the caller was built against a newer kvc.h");
  }

  NamespaceFields f;
  if (opts->hash != nullptr) {
    auto algo = ParseHashAlgo(opts->hash);
    if (!algo.ok()) return algo.status();
    f.hash = *algo;
  }
  KVC_RETURN_IF_ERROR(RequiredString(opts->model, "model", "the model id", &f.model));
  KVC_RETURN_IF_ERROR(
      RequiredString(opts->revision, "revision", "the weights revision", &f.revision));
  if (opts->adapter != nullptr) {
    f.adapter = opts->adapter;
    if (f.adapter.size() > kMaxFieldBytes) return InvalidArgument("adapter is 4 GiB or longer");
  }

  if (opts->dtype == nullptr) {
    return InvalidArgument(
        "dtype is NULL; the layout needs one of fp32 fp16 bf16 fp8_e4m3 fp8_e5m2 int8");
  }
  f.layout.dtype = opts->dtype;
  f.layout.layers = opts->layers;
  f.layout.kv_heads = opts->kv_heads;
  f.layout.head_dim = opts->head_dim;
  f.layout.block_tokens = opts->block_tokens;
  f.layout.shards = opts->shards == 0 ? 1 : opts->shards;
  KVC_RETURN_IF_ERROR(f.layout.Validate());

  if (opts->salt_len > 0) {
    if (opts->salt == nullptr) {
      return InvalidArgument("salt is NULL but salt_len is " + std::to_string(opts->salt_len));
    }
    if (opts->salt_len > kMaxFieldBytes) {
      return InvalidArgument("salt_len is " + std::to_string(opts->salt_len) +
                             "; the maximum is " + std::to_string(kMaxFieldBytes));
    }
    f.salt.assign(reinterpret_cast<const char*>(opts->salt), opts->salt_len);
  }
  return f;
}

size_t KeysToC(const KeyHasher& hasher, std::span<const uint32_t> tokens, kvc_key* out) {
  constexpr size_t kChunk = 256;  // 4 KiB of keys on the stack
  const size_t b = hasher.block_tokens();
  const size_t n = tokens.size() / b;
  BlockKey buf[kChunk];
  BlockKey prev = hasher.seed();
  for (size_t done = 0; done < n;) {
    const size_t m = std::min(kChunk, n - done);
    hasher.KeysAfter(prev, tokens.subspan(done * b, m * b), buf);
    std::memcpy(out + done, buf, m * sizeof(kvc_key));
    prev = buf[m - 1];
    done += m;
  }
  return n;
}

}  // namespace kvc::capi
