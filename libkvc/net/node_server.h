// NodeServer: a kvc node, one Cache served by NodeService on one address.
//
// Thread-safe: Shutdown may be called from any thread, once.
#ifndef KVC_NET_NODE_SERVER_H_
#define KVC_NET_NODE_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "core/cache.h"
#include "util/status.h"

namespace grpc {
class Server;
}

namespace kvc::cluster {
class Registration;
class Handoff;
class ConfigSync;
}

namespace kvc::net {

class NodeService;
class ShmServer;

struct NodeServerOptions {
  CacheOptions cache;
  std::string listen = "127.0.0.1:7070";  // host:port; port 0 picks a free port
  bool write_through = false;             // Default: write-back (see NodeService)
  // The same-host path: a Unix domain socket (mode 0600) handing clients
  // the host arena's memfd; empty: none. (kvc_node_server_options.unix_path)
  std::string unix_path;
  // TLS on `listen` (PEM files); empty: plaintext. A client CA also
  // requires and verifies client certificates.
  std::string tls_cert_path, tls_key_path, tls_client_ca_path;
  std::string admin_token;     // empty: admin calls refused
  std::string metrics_listen;  // host:port of GET /metrics; empty: none
  // Cluster membership (libkvc/cluster): "etcd://..." to register with;
  // empty: standalone. node_id/zone/advertise as kvc_node_server_options.
  // An etcd cluster node also takes up the cluster's configuration
  // (cluster/config_sync.h) before it registers (before it serves at all
  // when its id is known before it binds: node_id, advertise or a listen
  // port other than 0): its tenants go into
  // cache.tenants_path, which defaults (when empty) to
  // <cache.ssd_dir>/tenants.json, or without an SSD tier to a private
  // temporary directory (0700) removed at Shutdown; the revision counts it
  // applied are kept in <cache.ssd_dir>/cluster-revisions.json (without an
  // SSD tier: in memory).
  std::string cluster, node_id, zone, advertise;
  // A store stream idle this long is cancelled (0: 10000 ms).
  uint32_t store_idle_timeout_ms = 0;
  // GET /metrics requires "Authorization: Bearer <metrics_token>"; empty: open.
  std::string metrics_token;
};

class NodeServer {
 public:
  // Opens the cache and starts serving. KVC_ERR_UNAVAILABLE when the
  // address cannot be bound.
  static Result<std::unique_ptr<NodeServer>> Start(const NodeServerOptions& options);
  ~NodeServer();

  // The bound address, with the port chosen for port 0.
  const std::string& address() const { return address_; }
  // The metrics endpoint's bound address; empty when there is none.
  const std::string& metrics_address() const { return metrics_address_; }
  // Stops accepting calls, waits up to grace_ms for calls in flight (then
  // cancels them), and closes the cache, which flushes write-back blocks to
  // the SSD tier.
  void Shutdown(uint32_t grace_ms);

 private:
  NodeServer() = default;
  Status StartConfigSync(const std::string& cluster_address, const std::string& node_id);
  std::unique_ptr<Cache> cache_;
  std::unique_ptr<NodeService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<ShmServer> shm_;  // the same-host path, when unix_path is set
  std::string address_;
  std::string metrics_address_;
  std::unique_ptr<cluster::Registration> registration_;  // when options.cluster is set
  std::unique_ptr<cluster::Handoff> handoff_;            // a drain's hand-off (cluster/handoff.h)
  std::unique_ptr<cluster::ConfigSync> config_sync_;     // an etcd cluster's configuration
  std::string private_tenants_dir_;                      // removed at Shutdown; empty: none
};

}  // namespace kvc::net

#endif  // KVC_NET_NODE_SERVER_H_
