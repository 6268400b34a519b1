// SlabAllocator: carves an arena into fixed-size slabs and each slab into
// equal slots of one size class, so that allocating and freeing a block costs
// O(1) and no heap allocation (a slab's slot stack is allocated when the slab
// is assigned to a class, not per block). Blocks larger than a slab take a
// run of whole contiguous slabs.
//
// Offsets, not pointers: the allocator never touches the arena's memory.
// Every slot is aligned to its class's alignment (4 KiB for classes of at
// least 4 KiB, 64 bytes below): DMA-friendly.
//
// Thread safety: none; the owning tier serialises calls.
#ifndef KVC_MEMORY_SLAB_ALLOCATOR_H_
#define KVC_MEMORY_SLAB_ALLOCATOR_H_

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

namespace kvc {

class SlabAllocator {
 public:
  // `arena_bytes` is rounded down to a multiple of the chosen slab size.
  explicit SlabAllocator(uint64_t arena_bytes);

  // The bytes a request of `size` occupies (its class's slot size).
  static uint64_t RoundedSize(uint64_t size);

  // An offset for `size` bytes, or nullopt when no slot of its class and no
  // free slab (run) is left. REQUIRES: 0 < size.
  std::optional<uint64_t> Allocate(uint64_t size);
  // REQUIRES: (offset, size) came from Allocate and was not freed since.
  void Free(uint64_t offset, uint64_t size);

  // Whether freeing the block at `offset` of `size` would give back a slab
  // (it is the last used slot of its slab, or a multi-slab block).
  bool FreeingReleasesSlab(uint64_t offset, uint64_t size) const;

  uint64_t capacity() const { return slab_bytes_ * slabs_.size(); }
  uint64_t slab_bytes() const { return slab_bytes_; }
  uint64_t used_bytes() const { return used_bytes_; }
  uint64_t free_slabs() const { return free_slab_count_; }

 private:
  static constexpr uint32_t kNoClass = UINT32_MAX;
  static constexpr uint32_t kRunHead = UINT32_MAX - 1;
  static constexpr uint32_t kRunTail = UINT32_MAX - 2;

  struct Slab {
    uint32_t cls = kNoClass;     // size-class index, kNoClass when free
    uint32_t run = 0;            // slabs in a multi-slab run (head only)
    uint32_t used = 0;           // slots in use
    uint32_t pos_in_class = 0;   // index in its class's `partial` list
    std::vector<uint32_t> free_slots;  // stack of free slot indices
  };
  struct SizeClass {
    uint64_t slot_bytes = 0;
    uint32_t slots_per_slab = 0;
    std::vector<uint32_t> partial;  // slabs of this class with a free slot
  };

  std::optional<uint32_t> TakeFreeSlab();
  std::optional<uint32_t> TakeFreeRun(uint32_t n);
  void ReleaseSlab(uint32_t s);
  uint32_t ClassFor(uint64_t slot_bytes);
  void RemovePartial(SizeClass& c, uint32_t s);

  uint64_t slab_bytes_;
  std::vector<Slab> slabs_;
  std::vector<uint32_t> free_list_;  // free slab indices (stack)
  uint64_t free_slab_count_ = 0;
  std::vector<SizeClass> classes_;
  std::unordered_map<uint64_t, uint32_t> class_by_size_;
  uint64_t used_bytes_ = 0;
};

}  // namespace kvc

#endif  // KVC_MEMORY_SLAB_ALLOCATOR_H_
