// Compiled only into kvc_net (libkvc/net/CMakeLists.txt).
#ifdef KVC_NET_BUILD
#include "net/grpc_tuning.h"

#include <grpcpp/grpcpp.h>

#include "net/node_service.h"

namespace kvc::net {

namespace {

// The node's HTTP/2 write buffer: a whole chunk message (kMaxChunkBytes of
// data and its header) fits. gRPC holds a message written with the buffer
// hint until more than this many bytes wait, and the sync server writes a
// stream's last message with the hint: so a load's last chunk leaves with
// the call's status in one write. With gRPC's default of 64 KiB the chunk
// went out on its own and the status in a second write, which the client
// waited for. (The same on the client, with a put's chunks written with the
// hint so that the last one left with the commit and the half-close, made
// puts slower: docs/benchmarks.md.)
constexpr int kWriteBufferBytes = static_cast<int>(2 * kMaxChunkBytes);

// Socket reads: gRPC starts a connection at 8 KiB a recvmsg and grows the
// size only as reads fill up, and shrinks it again after small messages:
// the first 1 MiB load after a few puts took 128 reads. Start at a chunk,
// never below 64 KiB: a block arrives in one or two reads from the first
// call on.
template <class Set>
void SetReadChunks(Set&& set) {
  set(GRPC_ARG_TCP_READ_CHUNK_SIZE, static_cast<int>(kMaxChunkBytes));
  set(GRPC_ARG_TCP_MIN_READ_CHUNK_SIZE, 64 << 10);
  set(GRPC_ARG_TCP_MAX_READ_CHUNK_SIZE, static_cast<int>(8 * kMaxChunkBytes));
}

}  // namespace

void TuneServerBuilder(grpc::ServerBuilder& b) {
  b.AddChannelArgument(GRPC_ARG_HTTP2_WRITE_BUFFER_SIZE, kWriteBufferBytes);
  SetReadChunks([&](const char* name, int v) { b.AddChannelArgument(name, v); });
  // The sync server's threads: one that has served a call goes back to
  // polling while fewer than 8 poll. gRPC's default (2) made a thread exit
  // after most calls and another start for the next one as soon as two
  // clients called at once (0.2-0.3 thread creations per call).
  b.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 1);
  b.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, 8);
}

void TuneChannelArguments(grpc::ChannelArguments& args) {
  SetReadChunks([&](const char* name, int v) { args.SetInt(name, v); });
}

}  // namespace kvc::net
#endif  // KVC_NET_BUILD
