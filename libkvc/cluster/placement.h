// Placement: which nodes of a membership view hold a block (docs/cluster.md,
// "Placement"). Weighted rendezvous hashing of the block key: each node
// scores -w / ln(u), u = hash(key, node) uniform in (0, 1), w its capacity;
// the R best scores own the key, taken first from distinct zones. A node
// joining or leaving moves only the keys it wins or held (about 1/N).
//
// Every block is placed by its own key (no grouping of a prefix's blocks:
// a Get names one key and nothing tells a client which prefix it starts).
//
// Thread-safe: a Placement is immutable once built.
#ifndef KVC_CLUSTER_PLACEMENT_H_
#define KVC_CLUSTER_PLACEMENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cluster/membership.h"
#include "core/block_key.h"

namespace kvc::cluster {

// The 64-bit hash of a node id that placement mixes with keys (FNV-1a 64
// then the SplitMix64 finalizer): the documented spec, so tools can
// recompute an owner (tests/cluster/checker_history.py does).
uint64_t PlacementNodeHash(const std::string& node_id);
// The score hash of (key, node): SplitMix64(key.Low64() ^ node_hash).
uint64_t PlacementScoreHash(const BlockKey& key, uint64_t node_hash);

class Placement {
 public:
  explicit Placement(std::shared_ptr<const MembershipView> view);

  const MembershipView& view() const { return *view_; }
  const std::shared_ptr<const MembershipView>& view_ptr() const { return view_; }
  uint32_t replication() const { return view_->config.replication; }

  // The nodes a store of `key` goes to: up to R nodes in state kUp, best
  // first, distinct zones first. Indexes into view().nodes. Fewer than R
  // when fewer nodes are up.
  void WriteReplicas(const BlockKey& key, std::vector<uint32_t>* out) const;
  // The nodes that may hold `key`, in the order to ask them: the write
  // replicas, then the draining nodes that rank among the R best of all
  // nodes (they held the key before they started draining).
  void ReadOrder(const BlockKey& key, std::vector<uint32_t>* out) const;

  // A node's placement weight (its capacity, normalized; see the .cc).
  double weight(uint32_t node) const { return weights_[node]; }

 private:
  // The nodes ranked for `key`, zone-spread: `up_only` skips draining nodes.
  void Ranked(const BlockKey& key, bool up_only, size_t want, std::vector<uint32_t>* out) const;

  std::shared_ptr<const MembershipView> view_;
  std::vector<uint64_t> hashes_;  // PlacementNodeHash of each node's id
  std::vector<double> weights_;
  std::vector<uint32_t> zone_;    // a small integer per distinct zone name
};

}  // namespace kvc::cluster

#endif  // KVC_CLUSTER_PLACEMENT_H_
