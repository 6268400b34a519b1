#include "policy/handle_lists.h"

#include <doctest/doctest.h>

namespace kvc {

TEST_CASE("handle lists: push, move, remove, walk") {
  HandleLists l(2);
  CHECK(l.Front(0) == kNoHandle);
  CHECK_FALSE(l.Contains(3));
  l.PushBack(0, 3);
  l.PushBack(0, 1000);
  l.PushBack(1, 7);
  CHECK(l.Size(0) == 2);
  CHECK(l.Size(1) == 1);
  CHECK(l.ListOf(1000) == 0);
  CHECK(l.ListOf(7) == 1);
  CHECK(l.Front(0) == 3);
  CHECK(l.Next(3) == 1000);
  CHECK(l.Next(1000) == kNoHandle);
  l.MoveToBack(1, 3);
  CHECK(l.Front(0) == 1000);
  CHECK(l.Front(1) == 7);
  CHECK(l.Next(7) == 3);
  CHECK(l.FirstWhere(1, [](PolicyHandle h) { return h != 7; }) == 3);
  CHECK(l.FirstWhere(1, [](PolicyHandle) { return false; }) == kNoHandle);
  l.Remove(7);
  CHECK_FALSE(l.Contains(7));
  CHECK(l.Size(1) == 1);
  CHECK(l.ListOf(kNoHandle) == HandleLists::kNone);
  l.Remove(3);
  l.Remove(1000);
  CHECK(l.Empty(0));
  CHECK(l.Empty(1));
}

}  // namespace kvc
