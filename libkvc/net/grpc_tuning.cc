// Compiled only into kvc_net (libkvc/net/CMakeLists.txt).
#ifdef KVC_NET_BUILD
#include "net/grpc_tuning.h"

#include <grpcpp/grpcpp.h>

namespace kvc::net {

void TuneServerBuilder(grpc::ServerBuilder&) {}

void TuneChannelArguments(grpc::ChannelArguments&) {}

}  // namespace kvc::net
#endif  // KVC_NET_BUILD
