// Compiled only into kvc_net (libkvc/net/CMakeLists.txt), which defines
// KVC_NET_BUILD; kvc_core's source glob sees an empty file.
#ifdef KVC_NET_BUILD
#include "net/node_client.h"

namespace kvc::net {

// The same-host path (docs/node.md): not built yet.
Result<std::unique_ptr<NodeClient>> ConnectShm(const std::string& socket_path, const NodeClientOptions&) {
  return Status(Code::kUnsupported, "the same-host path (unix:" + socket_path + ") is not built yet");
}

}  // namespace kvc::net
#endif  // KVC_NET_BUILD
