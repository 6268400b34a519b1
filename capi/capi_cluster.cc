// The C shim of cluster administration (kvc_cluster_*, tenants included) over
// libkvc/cluster/etcd_admin.h. Without gRPC (KVC_NODE undefined) every call
// is KVC_ERR_UNSUPPORTED.
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include "capi_internal.h"

#if defined(KVC_NODE)
#include "cluster/etcd_admin.h"
#include "tenant/tenant_registry.h"
#endif

namespace kvc::capi {
namespace {

#if defined(KVC_NODE)
uint32_t TimeoutOf(uint32_t ms) { return ms == 0 ? 5000 : ms; }

Status CopyOut(const std::string& s, char** out) {
  char* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (p == nullptr) return Status(Code::kNoMemory, "out of memory");
  std::memcpy(p, s.c_str(), s.size() + 1);
  *out = p;
  return Status::Ok();
}
#else
Status NoCluster() { return Status(Code::kUnsupported, "this libkvc was built without gRPC: no cluster calls"); }
#endif

}  // namespace
}  // namespace kvc::capi

using namespace kvc;
using namespace kvc::capi;

KVC_EXPORT int kvc_cluster_init(const char* address, uint32_t replication, uint32_t write_quorum, int overwrite,
                                uint32_t timeout_ms, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_REQUIRE_ARG(address, "address");
#if defined(KVC_NODE)
    cluster::ClusterConfig c;
    c.replication = replication;
    c.write_quorum = write_quorum;
    return cluster::InitCluster(address, c, overwrite != 0, TimeoutOf(timeout_ms));
#else
    return NoCluster();
#endif
  });
}

KVC_EXPORT int kvc_cluster_nodes_json(char** out, const char* address, uint32_t timeout_ms, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_REQUIRE_ARG(out, "out");
    *out = nullptr;
    KVC_REQUIRE_ARG(address, "address");
#if defined(KVC_NODE)
    auto j = cluster::MembershipJson(address, TimeoutOf(timeout_ms));
    if (!j.ok()) return j.status();
    return CopyOut(*j, out);
#else
    return NoCluster();
#endif
  });
}

KVC_EXPORT int kvc_cluster_drain(const char* address, const char* node_id, int undo, uint32_t timeout_ms,
                                 kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_REQUIRE_ARG(address, "address");
    KVC_REQUIRE_ARG(node_id, "node_id");
#if defined(KVC_NODE)
    return cluster::SetNodeState(address, node_id, undo ? cluster::NodeState::kUp : cluster::NodeState::kDraining,
                                 TimeoutOf(timeout_ms));
#else
    return NoCluster();
#endif
  });
}

KVC_EXPORT int kvc_cluster_forget(const char* address, const char* node_id, uint32_t timeout_ms, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_REQUIRE_ARG(address, "address");
    KVC_REQUIRE_ARG(node_id, "node_id");
#if defined(KVC_NODE)
    return cluster::ForgetNode(address, node_id, nullptr, TimeoutOf(timeout_ms));
#else
    (void)timeout_ms;
    return NoCluster();
#endif
  });
}

// ---- Cluster tenants (in etcd) ----

KVC_EXPORT int kvc_cluster_tenant_create(const char* address, const kvc_tenant_options* opts,
                                         char** out_credential, uint32_t timeout_ms, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_REQUIRE_ARG(out_credential, "out_credential");
    *out_credential = nullptr;
    KVC_REQUIRE_ARG(address, "address");
    KVC_REQUIRE_ARG(opts, "opts");
    if (opts->struct_size < sizeof(uint32_t) || opts->struct_size > sizeof(kvc_tenant_options))
      return InvalidArgument("kvc_tenant_options.struct_size is wrong: initialise it with KVC_TENANT_OPTIONS_INIT");
#if defined(KVC_NODE)
    auto has = [&](size_t end) { return opts->struct_size >= end; };
    TenantConfig c;
    if (has(offsetof(kvc_tenant_options, name) + sizeof opts->name) && opts->name) c.name = opts->name;
    if (c.name.empty()) return InvalidArgument("opts.name is required");
    if (has(offsetof(kvc_tenant_options, isolation) + sizeof opts->isolation) && opts->isolation) {
      auto iso = TenantRegistry::ParseIsolation(opts->isolation);
      if (!iso.ok()) return iso.status();
      c.isolation = *iso;
    }
    if (has(offsetof(kvc_tenant_options, host_quota_bytes) + sizeof opts->host_quota_bytes))
      c.host_quota_bytes = opts->host_quota_bytes;
    if (has(offsetof(kvc_tenant_options, ssd_quota_bytes) + sizeof opts->ssd_quota_bytes))
      c.ssd_quota_bytes = opts->ssd_quota_bytes;
    if (has(offsetof(kvc_tenant_options, borrow) + sizeof opts->borrow)) {
      if (opts->borrow > 1) return InvalidArgument("opts.borrow must be 0 or 1");
      c.borrow = opts->borrow == 1;
    }
    auto cred = cluster::ClusterTenantCreate(address, std::move(c), TimeoutOf(timeout_ms));
    if (!cred.ok()) return cred.status();
    return CopyOut(*cred, out_credential);
#else
    (void)timeout_ms;
    return NoCluster();
#endif
  });
}

KVC_EXPORT int kvc_cluster_tenant_list_json(const char* address, char** out, uint32_t timeout_ms, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_REQUIRE_ARG(out, "out");
    *out = nullptr;
    KVC_REQUIRE_ARG(address, "address");
#if defined(KVC_NODE)
    auto j = cluster::ClusterTenantListJson(address, TimeoutOf(timeout_ms));
    if (!j.ok()) return j.status();
    return CopyOut(*j, out);
#else
    (void)timeout_ms;
    return NoCluster();
#endif
  });
}

KVC_EXPORT int kvc_cluster_tenant_set_quota(const char* address, const char* name, int64_t host_quota_bytes,
                                            int64_t ssd_quota_bytes, int32_t borrow, uint32_t timeout_ms,
                                            kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_REQUIRE_ARG(address, "address");
    KVC_REQUIRE_ARG(name, "name");
    if (borrow > 1) return InvalidArgument("borrow must be -1 (keep), 0 or 1");
#if defined(KVC_NODE)
    std::optional<uint64_t> host, ssd;
    std::optional<bool> b;
    if (host_quota_bytes >= 0) host = static_cast<uint64_t>(host_quota_bytes);
    if (ssd_quota_bytes >= 0) ssd = static_cast<uint64_t>(ssd_quota_bytes);
    if (borrow >= 0) b = borrow == 1;
    return cluster::ClusterTenantSetQuota(address, name, host, ssd, b, TimeoutOf(timeout_ms));
#else
    (void)host_quota_bytes, (void)ssd_quota_bytes, (void)timeout_ms;
    return NoCluster();
#endif
  });
}

KVC_EXPORT int kvc_cluster_tenant_delete(const char* address, const char* name, uint32_t timeout_ms, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_REQUIRE_ARG(address, "address");
    KVC_REQUIRE_ARG(name, "name");
#if defined(KVC_NODE)
    return cluster::ClusterTenantDelete(address, name, TimeoutOf(timeout_ms));
#else
    (void)timeout_ms;
    return NoCluster();
#endif
  });
}
