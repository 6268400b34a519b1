// Handoff: a draining node copies its host blocks to their new owners
// (docs/cluster.md, "Rebalancing and drain") before it leaves.
//
// When the node finds its drain mark (Registration's on_draining), Start
// runs one pass on its own thread, hottest blocks first: every committed
// host block of a current namespace epoch in the host policy's order
// (Cache::ForEachHostBlock; pending, stale and expired ones are skipped),
// then every block only the SSD tier holds, in the SSD policy's order
// (Cache::ForEachSsdOnlyBlock, read from the SSD tier without promoting it;
// only blocks of namespaces opened on this node since it started can be
// named, the others are counted and left), goes to each of its write
// replicas in the membership without this node, unless that node already
// has it (Match), with the TTL it has left. A node stopped mid-pass has
// handed off its hottest blocks. The copies act as the block's tenant on
// the target through the cluster's shared admin token
// (NodeClientOptions::as_tenant). Without an
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
  // {"state","blocks","host_blocks","ssd_blocks","ssd_unknown_namespace",
  //  "bytes","present","failures","error"}: blocks counts copies (a block
  // copied to two replicas counts twice); host_blocks and ssd_blocks count
  // blocks copied at least once, by the tier they came from;
  // ssd_unknown_namespace, SSD blocks of namespaces this node cannot name.
  // state: idle, running, done, failed, no-admin-token, or stopped (ended
  // early by the test-only KVC_HANDOFF_MAX_BLOCKS environment variable).
  nlohmann::json Json() const;

 private:
  void Run();
  void SetState(const std::string& state, const std::string& error = "");

  Cache& cache_;
  std::atomic<Registration*> registration_{nullptr};
  const Options opts_;
  std::atomic<bool> started_{false}, stop_{false};
  std::atomic<uint64_t> blocks_{0}, bytes_{0}, present_{0}, failures_{0};
  std::atomic<uint64_t> host_blocks_{0}, ssd_blocks_{0}, ssd_unknown_{0};
  mutable std::mutex mu_;
  std::string state_ = "idle", error_;  // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace kvc::cluster

#endif  // KVC_CLUSTER_HANDOFF_H_
