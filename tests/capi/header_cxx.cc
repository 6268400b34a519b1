// kvc.h must compile as C++ with every warning an error.
#include "kvc.h"
int kvc_header_cxx_check() {
  kvc_cache_options o = KVC_CACHE_OPTIONS_INIT;
  kvc_namespace_options n = KVC_NAMESPACE_OPTIONS_INIT;
  kvc_store_options s = KVC_STORE_OPTIONS_INIT;
  kvc_namespace_info i = KVC_NAMESPACE_INFO_INIT;
  kvc_buf b = KVC_HOST_BUF(nullptr, 0);
  return static_cast<int>(o.struct_size + n.struct_size + s.struct_size + i.struct_size + b.len);
}
