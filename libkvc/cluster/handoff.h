// Handoff: a draining node copies its host blocks to their new owners
// (docs/cluster.md, "Rebalancing and drain") before it leaves.
//
// When the node finds its drain mark (Registration's on_draining), Start
// runs one pass on its own thread: every committed host block of a current
// namespace epoch (Cache::ForEachHostBlock; pending, stale and expired ones
// are skipped) goes to each of its write replicas in the membership without
// this node, unless that node already has it (Match), with the TTL it has
// left. The copies act as the block's tenant on the target through the
// cluster's shared admin token (NodeClientOptions::as_tenant). Without an
// admin token nothing can be copied: the pass ends at once in state
// "no-admin-token" and the blocks stay readable here as before. The result
// goes into the node's etcd record (Registration::SetHandoff) and its stats
// JSON ("drain").
//
// Thread-safe: Json() from any thread.
#ifndef KVC_CLUSTER_HANDOFF_H_
#define KVC_CLUSTER_HANDOFF_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/cache.h"

namespace kvc::cluster {

class Registration;

class Handoff {
 public:
  struct Options {
    std::string cluster;      // etcd://.../NAME
    std::string node_id;      // this node (left out of placement)
    std::string admin_token;  // the cluster's shared admin token
    std::string tls_ca_path;  // to reach the other nodes over TLS; empty: plaintext
  };
  Handoff(Cache& cache, Options options);
  // The registration to report to (set once, before or soon after Start).
  void set_registration(Registration* r) { registration_.store(r); }
  // Waits for a pass in flight to stop (it stops between blocks).
  ~Handoff();
  // Starts the pass (once; later calls do nothing).
  void Start();
  // {"state","blocks","bytes","present","failures","error"}
  nlohmann::json Json() const;

 private:
  void Run();
  void SetState(const std::string& state, const std::string& error = "");

  Cache& cache_;
  std::atomic<Registration*> registration_{nullptr};
  const Options opts_;
  std::atomic<bool> started_{false}, stop_{false};
  std::atomic<uint64_t> blocks_{0}, bytes_{0}, present_{0}, failures_{0};
  mutable std::mutex mu_;
  std::string state_ = "idle", error_;  // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace kvc::cluster

#endif  // KVC_CLUSTER_HANDOFF_H_
