// Membership: which nodes form a cluster right now, as every client and
// node sees it. The contract between the membership sources (static peers,
// etcd: membership_etcd.cc) and their users (placement, the cluster client,
// the node's write fence). docs/cluster.md describes the etcd layout.
//
// Epochs: every view carries an epoch that grows with each change of
// membership (etcd: the revision of the last change under the nodes prefix;
// static peers: 1). A node registered at epoch E accepts stores only from
// writers whose view is at least E (and only while it holds its lease):
// a writer with an older view cannot know the node's current registration.
//
// Thread-safety: Current() and Subscribe() may be called from any thread.
// Callbacks run on the source's own thread, one at a time, never under a
// lock the caller could hold; a callback must not block.
#ifndef KVC_CLUSTER_MEMBERSHIP_H_
#define KVC_CLUSTER_MEMBERSHIP_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "util/status.h"

namespace kvc::cluster {

enum class NodeState : uint8_t {
  kUp,        // serves reads and writes
  kDraining,  // serves reads; placement skips it for new writes
};

struct NodeInfo {
  std::string id;       // unique in the cluster: [A-Za-z0-9_.-]{1,64}
  std::string address;  // host:port of its gRPC service
  std::string zone;     // empty: no zone
  uint64_t capacity_bytes = 0;  // placement weight (host + SSD bytes)
  NodeState state = NodeState::kUp;
  uint64_t registered_epoch = 0;  // the epoch of its current registration
  // A draining node's hand-off of its blocks (cluster/handoff.h): "" (none
  // yet), "running", "done", "failed", "no-admin-token"; blocks copied.
  std::string handoff;
  uint64_t handed_off = 0;
};

// Cluster-wide settings (etcd: /kvc/<cluster>/config, written by
// `kvc cluster init`; static peers: from the address).
struct ClusterConfig {
  uint32_t replication = 2;   // R: distinct nodes per block
  uint32_t write_quorum = 1;  // acks before a store counts as committed (1..R)
};

struct MembershipView {
  uint64_t epoch = 0;
  std::vector<NodeInfo> nodes;  // sorted by id; live nodes only
  ClusterConfig config;
};

class MembershipSource {
 public:
  virtual ~MembershipSource() = default;
  // The latest view. Never blocks on the network: while etcd is down the
  // last known view is served.
  virtual std::shared_ptr<const MembershipView> Current() const = 0;
  // Calls `fn` with each new view (not the current one). Returns a token
  // for Unsubscribe.
  virtual uint64_t Subscribe(std::function<void(std::shared_ptr<const MembershipView>)> fn) = 0;
  virtual void Unsubscribe(uint64_t token) = 0;
  // Asks for a fresh view now (e.g. after KVC_ERR_FENCED): re-reads the
  // source and returns the view it then has, within timeout_ms.
  virtual std::shared_ptr<const MembershipView> Refresh(uint32_t timeout_ms) = 0;
};

// A fixed list of peers (no etcd): epoch 1, every peer up.
// "peers:HOST:PORT,HOST:PORT,...[?replication=R&write_quorum=W]"
Result<std::unique_ptr<MembershipSource>> StaticMembership(const std::string& address);

// The nodes of `cluster` in etcd, listed then watched (re-listed after a
// compaction). "etcd://HOST:PORT[,HOST:PORT...]/CLUSTER". Returns once the
// first listing succeeded (KVC_ERR_UNAVAILABLE if etcd cannot be reached
// within timeout_ms).
Result<std::unique_ptr<MembershipSource>> EtcdMembership(const std::string& address, uint32_t timeout_ms);

}  // namespace kvc::cluster

#endif  // KVC_CLUSTER_MEMBERSHIP_H_
