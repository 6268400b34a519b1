// HostArena: one pre-allocated, page-aligned region of host memory that holds
// a tier's blocks. Mapped once at construction, optionally pre-faulted so
// that stores never take a page fault; unmapped at destruction. The arena
// hands out no memory itself: SlabAllocator carves it.
//
// Private arenas are anonymous mappings. Shared arenas (a node with a
// same-host path, docs/node.md) live in a memfd mapped MAP_SHARED, so that
// processes handed the fd map the same pages; the memfd is sealed against
// shrinking and growing, so no holder of the fd can truncate the arena under
// the node. Transparent huge pages are advised either way (shmem honours the
// advice only when /sys/kernel/mm/transparent_hugepage/shmem_enabled allows).
//
// Thread-safe: immutable after construction.
#ifndef KVC_MEMORY_HOST_ARENA_H_
#define KVC_MEMORY_HOST_ARENA_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "util/status.h"

namespace kvc {

class HostArena {
 public:
  // Maps `bytes` (rounded up to the page size), in a memfd when `shared`.
  // KVC_ERR_NO_MEMORY if the mapping fails, KVC_ERR_INVALID_ARGUMENT for 0.
  static Result<std::unique_ptr<HostArena>> Create(uint64_t bytes, bool prefault, bool shared = false);
  ~HostArena();
  HostArena(const HostArena&) = delete;
  HostArena& operator=(const HostArena&) = delete;

  uint8_t* base() const { return base_; }
  uint64_t size() const { return size_; }
  uint8_t* at(uint64_t offset) const { return base_ + offset; }
  // The memfd of a shared arena (owned by the arena: dup it to keep it, pass
  // it to other processes with SCM_RIGHTS); -1 for a private arena.
  int fd() const { return fd_; }

 private:
  HostArena(uint8_t* base, uint64_t size, int fd) : base_(base), size_(size), fd_(fd) {}
  uint8_t* base_;
  uint64_t size_;
  int fd_;
};

}  // namespace kvc

#endif  // KVC_MEMORY_HOST_ARENA_H_
