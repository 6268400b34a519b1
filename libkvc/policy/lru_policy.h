// LruPolicy: least recently used first.
//
// One recency list: Insert and Touch move a handle to the newest end; the
// victim is the oldest evictable handle. Weights and capacity do not change
// the order (the tier evicts until the new block fits). O(1) per call, plus
// the handles Victim skips because `evictable` rejected them.
//
// Thread safety: none. The owning tier serialises all calls.
#ifndef KVC_POLICY_LRU_POLICY_H_
#define KVC_POLICY_LRU_POLICY_H_

#include "policy/eviction_policy.h"
#include "policy/handle_lists.h"

namespace kvc {

class LruPolicy final : public EvictionPolicy {
 public:
  LruPolicy() = default;

  std::string_view name() const override { return "lru"; }
  void Insert(PolicyHandle h, const PolicyEntry& entry) override;
  void Touch(PolicyHandle h) override;
  // LRU keeps no history of absent keys: a miss does not change the order.
  void RecordMiss(uint64_t /*key_hash*/) override {}
  void Erase(PolicyHandle h) override;
  std::optional<PolicyHandle> Victim(const EvictablePredicate& evictable) override;
  // Most recently inserted or touched first.
  std::vector<PolicyHandle> HottestFirst() const override;
  size_t size() const override { return lists_.Size(0); }

 private:
  HandleLists lists_{1};
};

}  // namespace kvc

#endif  // KVC_POLICY_LRU_POLICY_H_
