// PrefixAwarePolicy: makes any policy evict a prefix chain from its tail.
//
// A block's key names its whole prefix, so a block whose parent is gone can
// never be matched again: it is dead weight. This wrapper keeps the forest
// of resident blocks (PolicyEntry::parent links, with child lists) and never
// names a block with a present child as long as an evictable leaf exists:
//   1. the base policy picks, in its own order, the first block whose
//      subtree holds an evictable leaf (a block with no present child); the
//      victim is that leaf, found by descending the subtree (least recently
//      inserted or touched child first);
//   2. only when no evictable leaf exists at all (every leaf is pinned or
//      pending) does it fall back to the first evictable block, in the same
//      order, whose descendants are all unevictable, so a tier is never stuck
//      because of pins below. A block with an evictable child is never named.
// Erasing a block with present children makes them roots.
//
// Costs: Victim descends O(depth) in the common case; subtrees found without
// a candidate are remembered for the rest of the call, so one Victim call is
// O(n) at worst. Other calls are O(1) plus the base policy's cost (Erase:
// plus the erased block's children).
//
// Thread safety: none. The owning tier serialises all calls.
#ifndef KVC_POLICY_PREFIX_AWARE_POLICY_H_
#define KVC_POLICY_PREFIX_AWARE_POLICY_H_

#include <memory>
#include <string>

#include "policy/eviction_policy.h"

namespace kvc {

class PrefixAwarePolicy final : public EvictionPolicy {
 public:
  // Takes ownership of `base`; the name is "<base name>-prefix".
  explicit PrefixAwarePolicy(std::unique_ptr<EvictionPolicy> base);

  std::string_view name() const override { return name_; }
  // Links `h` under entry.parent when that handle is tracked.
  void Insert(PolicyHandle h, const PolicyEntry& entry) override;
  void Touch(PolicyHandle h) override;
  void RecordMiss(uint64_t key_hash) override { base_->RecordMiss(key_hash); }
  void Erase(PolicyHandle h) override;
  std::optional<PolicyHandle> Victim(const EvictablePredicate& evictable) override;
  // The base policy's order, except that a block's tracked ancestors come
  // before it (a chain is only usable from its root down, and this policy
  // evicts leaves first): each block in the base's order is preceded by
  // those of its ancestors not yet listed, root first.
  std::vector<PolicyHandle> HottestFirst() const override;
  size_t size() const override { return base_->size(); }
  // The base policy's gauges.
  std::vector<std::pair<std::string, double>> Gauges() const override { return base_->Gauges(); }

  // The tracked parent of `h`, or kNoHandle (a root). REQUIRES: `h` is tracked.
  PolicyHandle parent(PolicyHandle h) const { return parent_[h]; }
  // Whether `h` has a present child. REQUIRES: `h` is tracked.
  bool has_children(PolicyHandle h) const { return first_child_[h] != kNoHandle; }

 private:
  bool Tracked(PolicyHandle h) const { return h < tracked_.size() && tracked_[h]; }
  void Link(PolicyHandle child, PolicyHandle parent);  // at the back of parent's children
  void Unlink(PolicyHandle child);                     // from its parent's children
  void NewSearch();
  bool Searched(PolicyHandle h) const { return searched_[h] == epoch_; }
  // Phase 1: the first evictable leaf of subtree(root) in pre-order, or kNoHandle.
  PolicyHandle FindLeaf(PolicyHandle root, const EvictablePredicate& evictable);
  // Phase 2: the first evictable block of subtree(root) in post-order, or kNoHandle.
  PolicyHandle FindLowest(PolicyHandle root, const EvictablePredicate& evictable);
  PolicyHandle FirstUnsearched(PolicyHandle sibling) const;

  std::unique_ptr<EvictionPolicy> base_;
  std::string name_;
  // By handle.
  std::vector<uint8_t> tracked_;
  std::vector<PolicyHandle> parent_, first_child_, last_child_, prev_sibling_, next_sibling_;
  // Subtrees already searched without a result during the current Victim
  // phase carry the phase's epoch.
  std::vector<uint32_t> searched_;
  uint32_t epoch_ = 0;
  // During Victim: (block the base asked about, the block it stands for).
  std::vector<std::pair<PolicyHandle, PolicyHandle>> named_;
};

}  // namespace kvc

#endif  // KVC_POLICY_PREFIX_AWARE_POLICY_H_
