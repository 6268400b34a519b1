/* kvc.h must compile as pedantic C99 with every warning an error. */
#include "kvc.h"
int kvc_header_c99_check(void) {
  kvc_cache_options o = KVC_CACHE_OPTIONS_INIT;
  kvc_namespace_options n = KVC_NAMESPACE_OPTIONS_INIT;
  kvc_store_options s = KVC_STORE_OPTIONS_INIT;
  kvc_namespace_info i = KVC_NAMESPACE_INFO_INIT;
  kvc_stats st = KVC_STATS_INIT;
  kvc_buf b = KVC_HOST_BUF(0, 0);
  return (int)(o.struct_size + n.struct_size + s.struct_size + i.struct_size + st.struct_size + b.len);
}
