// The gRPC settings of kvc's bulk traffic (blocks of up to tens of MiB),
// on the node's server and on every client channel. docs/benchmarks.md
// ("Node over loopback") says what each setting bought, measured.
//
// Thread-safe: pure functions.
#ifndef KVC_NET_GRPC_TUNING_H_
#define KVC_NET_GRPC_TUNING_H_

namespace grpc {
class ServerBuilder;
class ChannelArguments;
}  // namespace grpc

namespace kvc::net {

// Applied by NodeServer::Start after its own arguments.
void TuneServerBuilder(grpc::ServerBuilder& b);
// Applied to every node client's channel (node_client.cc) after its own
// arguments.
void TuneChannelArguments(grpc::ChannelArguments& args);

}  // namespace kvc::net

#endif  // KVC_NET_GRPC_TUNING_H_
