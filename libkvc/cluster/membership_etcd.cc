// EtcdMembership: the nodes of a cluster, listed from etcd then watched.
// Compiled only into kvc_net (libkvc/cluster/CMakeLists.txt).
#ifdef KVC_NET_BUILD
#include "cluster/membership.h"

namespace kvc::cluster {

Result<std::unique_ptr<MembershipSource>> EtcdMembership(const std::string& address, uint32_t timeout_ms) {
  return Status(Code::kUnsupported, "etcd membership is not built yet");
}

}  // namespace kvc::cluster
#endif  // KVC_NET_BUILD
