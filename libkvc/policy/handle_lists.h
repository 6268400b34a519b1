// HandleLists: a fixed number of intrusive doubly-linked lists of
// PolicyHandles that share one set of links, indexed by handle.
//
// A handle is on at most one of the lists at a time. Every operation is O(1)
// except the walks. Links live in vectors indexed by handle (handles are
// dense), grown on demand; list `l`'s sentinel sits at node `l`, handle `h`
// at node `h + lists`. The front of a list is its oldest end.
//
// Thread safety: none (a value type owned by one policy).
#ifndef KVC_POLICY_HANDLE_LISTS_H_
#define KVC_POLICY_HANDLE_LISTS_H_

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "policy/eviction_policy.h"

namespace kvc {

class HandleLists {
 public:
  static constexpr uint8_t kNone = UINT8_MAX;

  // REQUIRES: 1 <= lists < kNone.
  explicit HandleLists(uint8_t lists);

  // Appends `h` at the back (newest end) of `list`.
  // REQUIRES: `h` is on no list and h < kNoHandle - lists.
  void PushBack(uint8_t list, PolicyHandle h);
  // Takes `h` off its list. REQUIRES: `h` is on a list.
  void Remove(PolicyHandle h);
  // Moves `h` (on any list) to the back of `list`.
  void MoveToBack(uint8_t list, PolicyHandle h) {
    Remove(h);
    PushBack(list, h);
  }

  // The list `h` is on, or kNone.
  uint8_t ListOf(PolicyHandle h) const {
    if (h >= kNoHandle - lists_) return kNone;
    return Node(h) < list_of_.size() ? list_of_[Node(h)] : kNone;
  }
  bool Contains(PolicyHandle h) const { return ListOf(h) != kNone; }
  size_t Size(uint8_t list) const { return sizes_[list]; }
  bool Empty(uint8_t list) const { return sizes_[list] == 0; }

  // The oldest handle of `list`, or kNoHandle when it is empty.
  PolicyHandle Front(uint8_t list) const { return Handle(next_[list]); }
  // The handle after `h` on its list (towards the back), or kNoHandle.
  PolicyHandle Next(PolicyHandle h) const { return Handle(next_[Node(h)]); }
  // The newest handle of `list`, or kNoHandle when it is empty.
  PolicyHandle Back(uint8_t list) const { return Handle(prev_[list]); }
  // The handle before `h` on its list (towards the front), or kNoHandle.
  PolicyHandle Prev(PolicyHandle h) const { return Handle(prev_[Node(h)]); }
  // Appends the handles of `list` to *out, newest first.
  void AppendNewestFirst(uint8_t list, std::vector<PolicyHandle>* out) const {
    for (PolicyHandle h = Back(list); h != kNoHandle; h = Prev(h)) out->push_back(h);
  }

  // The first handle of `list`, from the front, for which `pred` is true, or
  // kNoHandle. O(number of handles skipped).
  template <class Pred>
  PolicyHandle FirstWhere(uint8_t list, const Pred& pred) const {
    for (PolicyHandle h = Front(list); h != kNoHandle; h = Next(h))
      if (pred(h)) return h;
    return kNoHandle;
  }

 private:
  uint32_t Node(PolicyHandle h) const { return h + lists_; }
  PolicyHandle Handle(uint32_t node) const { return node < lists_ ? kNoHandle : node - lists_; }

  uint8_t lists_;
  std::vector<uint32_t> prev_, next_;  // by node
  std::vector<uint8_t> list_of_;       // by node; kNone when unlinked
  std::vector<size_t> sizes_;          // by list
};

}  // namespace kvc

#endif  // KVC_POLICY_HANDLE_LISTS_H_
