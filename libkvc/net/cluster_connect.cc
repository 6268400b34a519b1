// Compiled only into kvc_net (libkvc/net/CMakeLists.txt), which defines
// KVC_NET_BUILD; kvc_core's source glob sees an empty file.
#ifdef KVC_NET_BUILD
#include "net/node_client.h"

namespace kvc::net {

// A cluster (libkvc/cluster): not built yet.
Result<std::unique_ptr<NodeClient>> ConnectCluster(const std::string& address, const NodeClientOptions&) {
  return Status(Code::kUnsupported, "clusters (" + address + ") are not built yet");
}

}  // namespace kvc::net
#endif  // KVC_NET_BUILD
