#include "policy/ttl_policy.h"

#include <algorithm>
#include <cassert>

namespace kvc {

void TtlPolicy::Insert(PolicyHandle h, const PolicyEntry& entry) {
  if (h >= expires_.size()) {
    const size_t n = std::max<size_t>(size_t{h} + 1, expires_.size() * 2);
    expires_.resize(n);
    seq_.resize(n);
  }
  expires_[h] = entry.expires_at;
  seq_[h] = next_seq_++;
  if (entry.expires_at != 0) {
    const bool inserted = expiring_.emplace(entry.expires_at, seq_[h], h).second;
    assert(inserted && "Insert of a tracked handle");
    (void)inserted;
  } else {
    forever_.PushBack(0, h);
  }
}

void TtlPolicy::Touch(PolicyHandle h) {
  assert(h < expires_.size() &&
         (expires_[h] != 0 ? expiring_.count({expires_[h], seq_[h], h}) == 1 : forever_.Contains(h)));
}

void TtlPolicy::Erase(PolicyHandle h) {
  if (expires_[h] != 0) {
    const size_t erased = expiring_.erase({expires_[h], seq_[h], h});
    assert(erased == 1 && "Erase of an untracked handle");
    (void)erased;
  } else {
    forever_.Remove(h);
  }
}

std::vector<PolicyHandle> TtlPolicy::HottestFirst() const {
  std::vector<PolicyHandle> out;
  out.reserve(size());
  forever_.AppendNewestFirst(0, &out);
  for (auto it = expiring_.rbegin(); it != expiring_.rend(); ++it) out.push_back(std::get<2>(*it));
  return out;
}

std::optional<PolicyHandle> TtlPolicy::Victim(const EvictablePredicate& evictable) {
  for (const Key& k : expiring_)
    if (evictable(std::get<2>(k))) return std::get<2>(k);
  const PolicyHandle h = forever_.FirstWhere(0, evictable);
  if (h == kNoHandle) return std::nullopt;
  return h;
}

}  // namespace kvc
