// Tenant administration over a tenants file (kvc tenant).
#include <cstdlib>
#include <cstring>

#include "capi_internal.h"
#include "tenant/tenant_registry.h"

using namespace kvc;
using namespace kvc::capi;

namespace {

Status Dup(const std::string& s, char** out) {
  char* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (p == nullptr) return Status(Code::kNoMemory, "out of memory");
  std::memcpy(p, s.c_str(), s.size() + 1);
  *out = p;
  return Status::Ok();
}

Status RequirePath(const char* path) {
  if (path == nullptr || *path == '\0') return InvalidArgument("path is NULL or empty");
  return Status::Ok();
}

}  // namespace

KVC_EXPORT int kvc_tenant_create(char** out_credential, const char* path, const kvc_tenant_options* opts,
                                 kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_REQUIRE_ARG(out_credential, "out_credential");
    *out_credential = nullptr;
    KVC_RETURN_IF_ERROR(RequirePath(path));
    KVC_REQUIRE_ARG(opts, "options");
    if (opts->struct_size < sizeof(uint32_t) || opts->struct_size > sizeof(kvc_tenant_options))
      return InvalidArgument("kvc_tenant_options.struct_size is wrong: initialise it with KVC_TENANT_OPTIONS_INIT");
    KVC_REQUIRE_ARG(opts->name, "options.name");
    TenantConfig c;
    c.name = opts->name;
    if (opts->isolation != nullptr) {
      auto iso = TenantRegistry::ParseIsolation(opts->isolation);
      if (!iso.ok()) return iso.status();
      c.isolation = *iso;
    }
    c.host_quota_bytes = opts->host_quota_bytes;
    c.ssd_quota_bytes = opts->ssd_quota_bytes;
    if (opts->borrow > 1) return InvalidArgument("borrow must be 0 or 1");
    c.borrow = opts->borrow == 1;
    auto cred = TenantRegistry::Create(path, c);
    if (!cred.ok()) return cred.status();
    return Dup(*cred, out_credential);
  });
}

KVC_EXPORT int kvc_tenant_list_json(char** out, const char* path, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_REQUIRE_ARG(out, "out");
    *out = nullptr;
    KVC_RETURN_IF_ERROR(RequirePath(path));
    auto reg = TenantRegistry::Load(path);
    if (!reg.ok()) return reg.status();
    return Dup(reg->PublicJson().dump(), out);
  });
}

KVC_EXPORT int kvc_tenant_set_quota(const char* path, const char* name, int64_t host_quota_bytes,
                                    int64_t ssd_quota_bytes, int32_t borrow, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_RETURN_IF_ERROR(RequirePath(path));
    KVC_REQUIRE_ARG(name, "name");
    if (borrow > 1) return InvalidArgument("borrow must be -1 (keep), 0 or 1");
    std::optional<uint64_t> host, ssd;
    std::optional<bool> b;
    if (host_quota_bytes >= 0) host = static_cast<uint64_t>(host_quota_bytes);
    if (ssd_quota_bytes >= 0) ssd = static_cast<uint64_t>(ssd_quota_bytes);
    if (borrow >= 0) b = borrow == 1;
    return TenantRegistry::SetQuota(path, name, host, ssd, b);
  });
}

KVC_EXPORT int kvc_tenant_delete(const char* path, const char* name, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_RETURN_IF_ERROR(RequirePath(path));
    KVC_REQUIRE_ARG(name, "name");
    return TenantRegistry::Delete(path, name);
  });
}
