// Status strings, the per-thread last error and versions.
#include <cstdlib>
#include <cstring>

#include "capi_internal.h"

namespace kvc::capi {
namespace {
thread_local int tls_code = KVC_OK;
thread_local char tls_message[KVC_ERROR_MESSAGE_MAX] = "";
}  // namespace

int Record(kvc_error* err, const Status& s) {
  const int code = static_cast<int>(s.code());
  if (s.ok()) {  // the common case: no message to copy
    tls_code = code;
    tls_message[0] = '\0';
    if (err != nullptr) {
      err->code = code;
      err->message[0] = '\0';
    }
    return code;
  }
  const std::string& m = s.ok() ? std::string() : s.message().empty() ? std::string(CodeText(s.code())) : s.message();
  tls_code = code;
  std::strncpy(tls_message, m.c_str(), KVC_ERROR_MESSAGE_MAX - 1);
  tls_message[KVC_ERROR_MESSAGE_MAX - 1] = '\0';
  if (err != nullptr) {
    err->code = code;
    std::memcpy(err->message, tls_message, KVC_ERROR_MESSAGE_MAX);
  }
  return code;
}

}  // namespace kvc::capi

KVC_EXPORT const char* kvc_status_str(int status) {
  if (status > 0 || status < KVC_STATUS_MIN) return "unknown status";
  return kvc::CodeText(static_cast<kvc::Code>(status));
}

KVC_EXPORT const char* kvc_status_name(int status) {
  if (status > 0 || status < KVC_STATUS_MIN) return "KVC_ERR_UNKNOWN";
  return kvc::CodeName(static_cast<kvc::Code>(status));
}

KVC_EXPORT const char* kvc_error_last(void) { return kvc::capi::tls_message; }
KVC_EXPORT int kvc_error_last_code(void) { return kvc::capi::tls_code; }

KVC_EXPORT const char* kvc_version(void) { return "0.1.0"; }
KVC_EXPORT int kvc_version_number(void) { return KVC_VERSION_NUMBER; }

KVC_EXPORT uint32_t kvc_features(void) {
  uint32_t f = KVC_FEATURE_SHA256 | KVC_FEATURE_XXH3;
  if (KVC_HAVE_CUDA) f |= KVC_FEATURE_CUDA;
  if (KVC_HAVE_GRPC) f |= KVC_FEATURE_GRPC;
  if (KVC_HAVE_URING) f |= KVC_FEATURE_IO_URING;
  return f;
}

KVC_EXPORT void kvc_string_free(char* s) { std::free(s); }
