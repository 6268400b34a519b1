// The C shim of cluster administration: kvc_cluster_* over
// libkvc/cluster/etcd_admin.h. Without gRPC (KVC_NODE undefined) every call
// is KVC_ERR_UNSUPPORTED.
#include <cstdlib>
#include <cstring>
#include <string>

#include "capi_internal.h"

#if defined(KVC_NODE)
#include "cluster/etcd_admin.h"
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
