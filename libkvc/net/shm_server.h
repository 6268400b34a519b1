// ShmServer: the node's same-host path (docs/node.md, "Same-host path";
// wire format in shm_protocol.h). It listens on a Unix domain socket (mode
// 0600, peers of another user refused), authenticates each connection's
// first request as the gRPC service authenticates a bearer token, hands the
// client the cache's host arena (a memfd, CacheOptions::shared_arena), and
// answers small control requests; block bytes move by the client's memcpy
// to or from the arena.
//
// Every pin and reservation a connection takes is recorded with the
// connection and released (views released, reservations aborted) when it
// ends, however it ends: a close, a protocol error, the client's death.
//
// One thread per connection: a node has a few same-host clients (an engine
// process per GPU), each request is a few microseconds of index work, and
// a blocking thread keeps each connection's pins and reservations in plain
// local state. Connections are capped (kMaxConnections).
//
// Thread-safe: Stop may be called from any thread; the destructor stops.
#ifndef KVC_NET_SHM_SERVER_H_
#define KVC_NET_SHM_SERVER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/cache.h"
#include "util/status.h"

namespace kvc::net {

class Metrics;

struct ShmServerOptions {
  bool write_through = false;  // as NodeService's
  // The node's metrics (NodeService::metrics()), counted and timed as over
  // gRPC; null: none. REQUIRES: outlives the server.
  Metrics* metrics = nullptr;
  // The node's admin token: a hello that sends it sees the whole node's
  // Stats. Empty: none.
  std::string admin_token;
  // The node's write fence (NodeService::AdmitWrite; cluster nodes): asked
  // at each store's begin and again at its commit, with epoch 0 (same-host
  // clients carry no membership view). A refusal is the store's status and
  // publishes nothing. Unset: every store admitted.
  std::function<Status(uint64_t membership_epoch)> admit_write;
};

class ShmServer {
 public:
  static constexpr size_t kMaxConnections = 256;

  // Listens on `path`. An existing socket file nobody listens on is
  // replaced; a live one is KVC_ERR_UNAVAILABLE, any other file
  // KVC_ERR_INVALID_ARGUMENT. REQUIRES: `cache` outlives the server and was
  // opened with CacheOptions::shared_arena.
  static Result<std::unique_ptr<ShmServer>> Start(Cache& cache, const std::string& path,
                                                  const ShmServerOptions& options);
  ~ShmServer();

  // Stops accepting, ends every connection (releasing what it holds),
  // removes the socket file. Idempotent.
  void Stop();

  const std::string& path() const { return path_; }

 private:
  struct Conn;
  ShmServer(Cache& cache, std::string path, const ShmServerOptions& options, int listen_fd);
  void CountAuthFailure();
  void AcceptLoop();
  void Serve(Conn* c);
  void ReapLocked();

  Cache& cache_;
  const std::string path_;
  const ShmServerOptions options_;
  int listen_fd_;
  uint64_t file_dev_ = 0, file_ino_ = 0;  // the socket file we bound
  int wake_fd_[2] = {-1, -1};  // a pipe that wakes the accept loop
  std::thread acceptor_;
  std::mutex mu_;
  bool stopping_ = false;        // GUARDED_BY(mu_)
  std::list<std::unique_ptr<Conn>> conns_;  // GUARDED_BY(mu_)
};

}  // namespace kvc::net

#endif  // KVC_NET_SHM_SERVER_H_
