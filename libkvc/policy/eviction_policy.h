// EvictionPolicy: the small interface every eviction policy implements.
//
// A policy orders the resident blocks of one tier and names the next victim.
// It never frees anything itself: the tier asks Victim(), evicts the block it
// names and then calls Erase(). Blocks are named by dense PolicyHandles that
// the tier assigns (an entry index); a handle is tracked from Insert() to
// Erase(). Sizes are weights (bytes in a tier, 1 per block in `kvc sim`) and
// `capacity` is the tier's capacity in the same unit.
//
// Pinned and pending blocks are never victims: the tier passes an
// `evictable` predicate and a policy returns only handles for which it is
// true, skipping the others without losing their place.
//
// Thread safety: none. The owning tier serialises all calls.
#ifndef KVC_POLICY_EVICTION_POLICY_H_
#define KVC_POLICY_EVICTION_POLICY_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace kvc {

using PolicyHandle = uint32_t;
inline constexpr PolicyHandle kNoHandle = UINT32_MAX;

// What a policy may know of a block when it becomes resident.
struct PolicyEntry {
  uint64_t key_hash = 0;    // a well-mixed hash of the block's key (sketches)
  uint64_t weight = 1;      // bytes, or 1
  int64_t expires_at = 0;   // absolute ms on the tier's clock; 0 = never
  PolicyHandle parent = kNoHandle;  // the resident block before it in its chain
};

using EvictablePredicate = std::function<bool(PolicyHandle)>;

class EvictionPolicy {
 public:
  virtual ~EvictionPolicy() = default;

  // The name the factory knows it by ("lru").
  virtual std::string_view name() const = 0;

  // A block became resident. REQUIRES: `h` is not tracked.
  virtual void Insert(PolicyHandle h, const PolicyEntry& entry) = 0;
  // A lookup hit the resident block `h`. REQUIRES: `h` is tracked.
  virtual void Touch(PolicyHandle h) = 0;
  // A lookup missed the key whose hash is `key_hash` (frequency sketches
  // count misses too; others ignore it). Insert also counts as an access of
  // its block, so a miss reported here and then inserted counts twice.
  virtual void RecordMiss(uint64_t key_hash) = 0;
  // `h` left the tier (evicted, deleted, expired). REQUIRES: `h` is tracked.
  virtual void Erase(PolicyHandle h) = 0;

  // The block to evict next among tracked handles for which `evictable`
  // returns true, or nullopt when there is none. Does not erase it.
  virtual std::optional<PolicyHandle> Victim(const EvictablePredicate& evictable) = 0;

  // Every tracked handle, once each, hottest first: the blocks the policy
  // would keep longest come first (roughly the reverse of the order Victim
  // would name them in, ignoring pins). A draining node hands blocks off in
  // this order (docs/policies.md, "Hottest first"). O(size()).
  virtual std::vector<PolicyHandle> HottestFirst() const = 0;

  // How many handles are tracked.
  virtual size_t size() const = 0;
  // Policy-specific state for stats (e.g. the adaptive window's share), as
  // "name=value" pairs. Default: none.
  virtual std::vector<std::pair<std::string, double>> Gauges() const { return {}; }
};

// The names MakePolicy knows, in a stable order.
const std::vector<std::string>& PolicyNames();
// The policy a tier uses when none is chosen.
std::string_view DefaultPolicyName();

// Makes the policy `name` for a tier of `capacity` weight units.
// KVC_ERR_INVALID_ARGUMENT for an unknown name, listing the known ones.
Result<std::unique_ptr<EvictionPolicy>> MakePolicy(std::string_view name, uint64_t capacity);

}  // namespace kvc

#endif  // KVC_POLICY_EVICTION_POLICY_H_
