// HostArena: one pre-allocated, page-aligned region of host memory that holds
// a tier's blocks. Mapped once at construction (anonymous mmap, transparent
// huge pages advised), optionally pre-faulted so that stores never take a
// page fault; unmapped at destruction. The arena hands out no memory itself:
// SlabAllocator carves it. Thread-safe: immutable after construction.
#ifndef KVC_MEMORY_HOST_ARENA_H_
#define KVC_MEMORY_HOST_ARENA_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "util/status.h"

namespace kvc {

class HostArena {
 public:
  // Maps `bytes` (rounded up to the page size). KVC_ERR_NO_MEMORY if the
  // mapping fails, KVC_ERR_INVALID_ARGUMENT for 0.
  static Result<std::unique_ptr<HostArena>> Create(uint64_t bytes, bool prefault);
  ~HostArena();
  HostArena(const HostArena&) = delete;
  HostArena& operator=(const HostArena&) = delete;

  uint8_t* base() const { return base_; }
  uint64_t size() const { return size_; }
  uint8_t* at(uint64_t offset) const { return base_ + offset; }

 private:
  HostArena(uint8_t* base, uint64_t size) : base_(base), size_(size) {}
  uint8_t* base_;
  uint64_t size_;
};

}  // namespace kvc

#endif  // KVC_MEMORY_HOST_ARENA_H_
