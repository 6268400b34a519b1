#include "policy/handle_lists.h"

namespace kvc {

HandleLists::HandleLists(uint8_t lists)
    : lists_(lists), prev_(lists), next_(lists), list_of_(lists, kNone), sizes_(lists, 0) {
  assert(lists >= 1 && lists < kNone);
  for (uint32_t l = 0; l < lists; ++l) prev_[l] = next_[l] = l;
}

void HandleLists::PushBack(uint8_t list, PolicyHandle h) {
  assert(list < lists_ && !Contains(h));
  const uint32_t n = Node(h);
  if (n >= list_of_.size()) {
    size_t grown = list_of_.size() * 2;
    if (grown <= n) grown = size_t{n} + 1;
    prev_.resize(grown);
    next_.resize(grown);
    list_of_.resize(grown, kNone);
  }
  const uint32_t last = prev_[list];
  prev_[n] = last;
  next_[n] = list;
  next_[last] = n;
  prev_[list] = n;
  list_of_[n] = list;
  ++sizes_[list];
}

void HandleLists::Remove(PolicyHandle h) {
  assert(Contains(h));
  const uint32_t n = Node(h);
  next_[prev_[n]] = next_[n];
  prev_[next_[n]] = prev_[n];
  --sizes_[list_of_[n]];
  list_of_[n] = kNone;
}

}  // namespace kvc
