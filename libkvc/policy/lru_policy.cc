#include "policy/lru_policy.h"

namespace kvc {

void LruPolicy::Insert(PolicyHandle h, const PolicyEntry& /*entry*/) { lists_.PushBack(0, h); }

void LruPolicy::Touch(PolicyHandle h) { lists_.MoveToBack(0, h); }

void LruPolicy::Erase(PolicyHandle h) { lists_.Remove(h); }

std::vector<PolicyHandle> LruPolicy::HottestFirst() const {
  std::vector<PolicyHandle> out;
  out.reserve(lists_.Size(0));
  lists_.AppendNewestFirst(0, &out);
  return out;
}

std::optional<PolicyHandle> LruPolicy::Victim(const EvictablePredicate& evictable) {
  const PolicyHandle h = lists_.FirstWhere(0, evictable);
  if (h == kNoHandle) return std::nullopt;
  return h;
}

}  // namespace kvc
