// TtlPolicy: the block that expires soonest goes first.
//
// Blocks with an expiry (PolicyEntry::expires_at != 0) are ordered by it
// (ties: insertion order) and are all victims before any block without one;
// blocks without an expiry follow in insertion order (FIFO). Accesses do not
// reorder anything: Touch and RecordMiss leave the order as it is, since a
// block's expiry and arrival are fixed at Insert. O(log n) Insert and Erase;
// Victim O(1) plus the handles it skips because `evictable` rejected them.
//
// Thread safety: none. The owning tier serialises all calls.
#ifndef KVC_POLICY_TTL_POLICY_H_
#define KVC_POLICY_TTL_POLICY_H_

#include <set>
#include <tuple>

#include "policy/eviction_policy.h"
#include "policy/handle_lists.h"

namespace kvc {

class TtlPolicy final : public EvictionPolicy {
 public:
  TtlPolicy() = default;

  std::string_view name() const override { return "ttl"; }
  void Insert(PolicyHandle h, const PolicyEntry& entry) override;
  // Order is by expiry and arrival, not by use: a hit changes nothing.
  void Touch(PolicyHandle h) override;
  // No history of absent keys is kept: a miss changes nothing.
  void RecordMiss(uint64_t /*key_hash*/) override {}
  void Erase(PolicyHandle h) override;
  std::optional<PolicyHandle> Victim(const EvictablePredicate& evictable) override;
  // The reverse of the eviction order: blocks without an expiry, newest
  // first, then those with one, latest expiry first. Hits change nothing.
  std::vector<PolicyHandle> HottestFirst() const override;
  size_t size() const override { return expiring_.size() + forever_.Size(0); }

 private:
  using Key = std::tuple<int64_t, uint64_t, PolicyHandle>;  // expires_at, seq, handle

  std::set<Key> expiring_;
  HandleLists forever_{1};          // blocks without expiry, oldest first
  std::vector<int64_t> expires_;    // by handle; 0 for blocks on forever_
  std::vector<uint64_t> seq_;       // by handle
  uint64_t next_seq_ = 0;
};

}  // namespace kvc

#endif  // KVC_POLICY_TTL_POLICY_H_
