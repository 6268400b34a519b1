#include "policy/prefix_aware_policy.h"

#include <algorithm>
#include <cassert>

namespace kvc {

PrefixAwarePolicy::PrefixAwarePolicy(std::unique_ptr<EvictionPolicy> base)
    : base_(std::move(base)), name_(std::string(base_->name()) + "-prefix") {}

void PrefixAwarePolicy::Insert(PolicyHandle h, const PolicyEntry& entry) {
  assert(!Tracked(h));
  if (h >= tracked_.size()) {
    const size_t n = std::max<size_t>(size_t{h} + 1, tracked_.size() * 2);
    tracked_.resize(n, 0);
    for (auto* links : {&parent_, &first_child_, &last_child_, &prev_sibling_, &next_sibling_})
      links->resize(n, kNoHandle);
    searched_.resize(n, 0);
  }
  base_->Insert(h, entry);
  tracked_[h] = 1;
  parent_[h] = first_child_[h] = last_child_[h] = kNoHandle;
  prev_sibling_[h] = next_sibling_[h] = kNoHandle;
  searched_[h] = 0;
  if (entry.parent != h && Tracked(entry.parent)) Link(h, entry.parent);
}

void PrefixAwarePolicy::Touch(PolicyHandle h) {
  base_->Touch(h);
  const PolicyHandle p = parent_[h];
  if (p != kNoHandle && last_child_[p] != h) {
    Unlink(h);
    Link(h, p);
  }
}

void PrefixAwarePolicy::Erase(PolicyHandle h) {
  assert(Tracked(h));
  base_->Erase(h);
  if (parent_[h] != kNoHandle) Unlink(h);
  for (PolicyHandle c = first_child_[h]; c != kNoHandle;) {
    const PolicyHandle next = next_sibling_[c];
    parent_[c] = prev_sibling_[c] = next_sibling_[c] = kNoHandle;
    c = next;
  }
  first_child_[h] = last_child_[h] = kNoHandle;
  tracked_[h] = 0;
}

std::optional<PolicyHandle> PrefixAwarePolicy::Victim(const EvictablePredicate& evictable) {
  // What the base's predicate needs, behind one pointer so that the
  // std::function holding the lambda does not allocate.
  struct Search {
    PrefixAwarePolicy* self;
    PolicyHandle (PrefixAwarePolicy::*find)(PolicyHandle, const EvictablePredicate&);
    const EvictablePredicate* evictable;
  };
  auto run = [&](Search search) -> std::optional<PolicyHandle> {
    named_.clear();
    NewSearch();
    const Search* s = &search;
    const std::optional<PolicyHandle> chosen = base_->Victim([s](PolicyHandle h) {
      const PolicyHandle v = (s->self->*(s->find))(h, *s->evictable);
      if (v != kNoHandle) s->self->named_.emplace_back(h, v);
      return v != kNoHandle;
    });
    if (!chosen) return std::nullopt;
    for (const auto& [h, v] : named_)
      if (h == *chosen) return v;
    assert(false && "the base policy named a block its predicate rejected");
    return std::nullopt;
  };
  if (auto leaf = run({this, &PrefixAwarePolicy::FindLeaf, &evictable})) return leaf;
  return run({this, &PrefixAwarePolicy::FindLowest, &evictable});
}

std::vector<PolicyHandle> PrefixAwarePolicy::HottestFirst() const {
  const std::vector<PolicyHandle> base = base_->HottestFirst();
  std::vector<PolicyHandle> out;
  out.reserve(base.size());
  std::vector<uint8_t> listed(tracked_.size(), 0);
  std::vector<PolicyHandle> chain;
  for (PolicyHandle h : base) {
    // h and its unlisted ancestors, listed root first. Each handle is
    // listed once, so the whole walk is O(n).
    chain.clear();
    for (PolicyHandle a = h; a != kNoHandle && !listed[a]; a = parent_[a]) chain.push_back(a);
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
      listed[*it] = 1;
      out.push_back(*it);
    }
  }
  return out;
}

void PrefixAwarePolicy::Link(PolicyHandle child, PolicyHandle p) {
  parent_[child] = p;
  prev_sibling_[child] = last_child_[p];
  next_sibling_[child] = kNoHandle;
  if (last_child_[p] != kNoHandle)
    next_sibling_[last_child_[p]] = child;
  else
    first_child_[p] = child;
  last_child_[p] = child;
}

void PrefixAwarePolicy::Unlink(PolicyHandle child) {
  const PolicyHandle p = parent_[child];
  const PolicyHandle prev = prev_sibling_[child], next = next_sibling_[child];
  (prev != kNoHandle ? next_sibling_[prev] : first_child_[p]) = next;
  (next != kNoHandle ? prev_sibling_[next] : last_child_[p]) = prev;
  parent_[child] = prev_sibling_[child] = next_sibling_[child] = kNoHandle;
}

void PrefixAwarePolicy::NewSearch() {
  if (++epoch_ == 0) {
    std::fill(searched_.begin(), searched_.end(), 0);
    epoch_ = 1;
  }
}

PolicyHandle PrefixAwarePolicy::FirstUnsearched(PolicyHandle sibling) const {
  while (sibling != kNoHandle && Searched(sibling)) sibling = next_sibling_[sibling];
  return sibling;
}

PolicyHandle PrefixAwarePolicy::FindLeaf(PolicyHandle root, const EvictablePredicate& evictable) {
  if (Searched(root)) return kNoHandle;
  PolicyHandle h = root;
  for (;;) {
    // h's subtree is unsearched: descend, or test the leaf.
    if (const PolicyHandle child = FirstUnsearched(first_child_[h]); child != kNoHandle) {
      h = child;
      continue;
    }
    if (first_child_[h] == kNoHandle && evictable(h)) return h;
    searched_[h] = epoch_;
    // h's subtree holds no candidate: go to the next unsearched sibling,
    // climbing (and marking each exhausted parent) as needed.
    for (;;) {
      if (h == root) return kNoHandle;
      const PolicyHandle sibling = FirstUnsearched(next_sibling_[h]);
      if (sibling != kNoHandle) {
        h = sibling;
        break;
      }
      h = parent_[h];
      searched_[h] = epoch_;
    }
  }
}

PolicyHandle PrefixAwarePolicy::FindLowest(PolicyHandle root, const EvictablePredicate& evictable) {
  if (Searched(root)) return kNoHandle;
  auto descend = [this](PolicyHandle x) {
    for (PolicyHandle c = FirstUnsearched(first_child_[x]); c != kNoHandle;
         c = FirstUnsearched(first_child_[x]))
      x = c;
    return x;
  };
  PolicyHandle h = descend(root);
  for (;;) {
    // Every child of h is searched: h is next in post-order.
    if (evictable(h)) return h;
    searched_[h] = epoch_;
    if (h == root) return kNoHandle;
    const PolicyHandle sibling = FirstUnsearched(next_sibling_[h]);
    h = sibling != kNoHandle ? descend(sibling) : parent_[h];
  }
}

}  // namespace kvc
