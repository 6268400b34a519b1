#include "memory/slab_allocator.h"

#include <algorithm>
#include <cassert>

namespace kvc {
namespace {

constexpr uint64_t kMinSlab = 64 * 1024;
constexpr uint64_t kMaxSlab = 16 * 1024 * 1024;

uint64_t ChooseSlabBytes(uint64_t arena) {
  // About 64 slabs per arena, between 64 KiB and 16 MiB, a power of two.
  uint64_t want = std::clamp<uint64_t>(arena / 64, kMinSlab, kMaxSlab);
  uint64_t s = kMinSlab;
  while (s * 2 <= want) s *= 2;
  return s;
}

}  // namespace

uint64_t SlabAllocator::RoundedSize(uint64_t size) {
  const uint64_t align = size >= 4096 ? 4096 : 64;
  return (size + align - 1) / align * align;
}

SlabAllocator::SlabAllocator(uint64_t arena_bytes) : slab_bytes_(ChooseSlabBytes(arena_bytes)) {
  const uint64_t n = arena_bytes / slab_bytes_;
  slabs_.resize(n);
  free_list_.reserve(n);
  for (uint64_t i = n; i-- > 0;) free_list_.push_back(static_cast<uint32_t>(i));
  free_slab_count_ = n;
}

uint32_t SlabAllocator::ClassFor(uint64_t slot_bytes) {
  auto it = class_by_size_.find(slot_bytes);
  if (it != class_by_size_.end()) return it->second;
  SizeClass c;
  c.slot_bytes = slot_bytes;
  c.slots_per_slab = static_cast<uint32_t>(slab_bytes_ / slot_bytes);
  classes_.push_back(std::move(c));
  const auto id = static_cast<uint32_t>(classes_.size() - 1);
  class_by_size_.emplace(slot_bytes, id);
  return id;
}

std::optional<uint32_t> SlabAllocator::TakeFreeSlab() {
  while (!free_list_.empty()) {
    uint32_t s = free_list_.back();
    free_list_.pop_back();
    if (slabs_[s].cls == kNoClass) {  // entries taken by a run are stale
      --free_slab_count_;
      return s;
    }
  }
  return std::nullopt;
}

std::optional<uint32_t> SlabAllocator::TakeFreeRun(uint32_t n) {
  if (free_slab_count_ < n) return std::nullopt;
  uint32_t start = 0, len = 0;
  for (uint32_t i = 0; i < slabs_.size(); ++i) {
    if (slabs_[i].cls != kNoClass) {
      len = 0;
      continue;
    }
    if (len == 0) start = i;
    if (++len == n) {
      for (uint32_t j = start; j < start + n; ++j) slabs_[j].cls = kRunTail;
      slabs_[start].cls = kRunHead;
      slabs_[start].run = n;
      free_slab_count_ -= n;
      return start;
    }
  }
  return std::nullopt;
}

void SlabAllocator::ReleaseSlab(uint32_t s) {
  Slab& slab = slabs_[s];
  slab.cls = kNoClass;
  slab.run = 0;
  slab.used = 0;
  slab.free_slots.clear();
  slab.free_slots.shrink_to_fit();
  ++free_slab_count_;
  free_list_.push_back(s);
  if (free_list_.size() > 2 * slabs_.size()) {  // drop stale entries
    free_list_.clear();
    for (uint32_t i = static_cast<uint32_t>(slabs_.size()); i-- > 0;)
      if (slabs_[i].cls == kNoClass) free_list_.push_back(i);
  }
}

void SlabAllocator::RemovePartial(SizeClass& c, uint32_t s) {
  uint32_t pos = slabs_[s].pos_in_class;
  uint32_t last = c.partial.back();
  c.partial[pos] = last;
  slabs_[last].pos_in_class = pos;
  c.partial.pop_back();
}

std::optional<uint64_t> SlabAllocator::Allocate(uint64_t size) {
  assert(size > 0);
  const uint64_t slot = RoundedSize(size);
  if (slot > slab_bytes_) {
    const uint64_t n = (slot + slab_bytes_ - 1) / slab_bytes_;
    if (n > slabs_.size()) return std::nullopt;
    auto s = TakeFreeRun(static_cast<uint32_t>(n));
    if (!s) return std::nullopt;
    used_bytes_ += n * slab_bytes_;
    return *s * slab_bytes_;
  }
  const uint32_t ci = ClassFor(slot);
  SizeClass& c = classes_[ci];
  if (c.partial.empty()) {
    auto s = TakeFreeSlab();
    if (!s) return std::nullopt;
    Slab& slab = slabs_[*s];
    slab.cls = ci;
    slab.used = 0;
    slab.free_slots.resize(c.slots_per_slab);
    for (uint32_t i = 0; i < c.slots_per_slab; ++i) slab.free_slots[i] = c.slots_per_slab - 1 - i;
    slab.pos_in_class = static_cast<uint32_t>(c.partial.size());
    c.partial.push_back(*s);
  }
  const uint32_t s = c.partial.back();
  Slab& slab = slabs_[s];
  const uint32_t idx = slab.free_slots.back();
  slab.free_slots.pop_back();
  ++slab.used;
  if (slab.free_slots.empty()) RemovePartial(c, s);
  used_bytes_ += slot;
  return static_cast<uint64_t>(s) * slab_bytes_ + static_cast<uint64_t>(idx) * slot;
}

bool SlabAllocator::FreeingReleasesSlab(uint64_t offset, uint64_t size) const {
  const uint64_t slot = RoundedSize(size);
  if (slot > slab_bytes_) return true;
  return slabs_[offset / slab_bytes_].used == 1;
}

void SlabAllocator::Free(uint64_t offset, uint64_t size) {
  const uint64_t slot = RoundedSize(size);
  const auto s = static_cast<uint32_t>(offset / slab_bytes_);
  if (slot > slab_bytes_) {
    const uint32_t n = slabs_[s].run;
    assert(slabs_[s].cls == kRunHead && n > 0);
    used_bytes_ -= static_cast<uint64_t>(n) * slab_bytes_;
    for (uint32_t j = s; j < s + n; ++j) ReleaseSlab(j);
    return;
  }
  Slab& slab = slabs_[s];
  SizeClass& c = classes_[slab.cls];
  assert(c.slot_bytes == slot);
  const bool was_full = slab.free_slots.empty();
  slab.free_slots.push_back(static_cast<uint32_t>((offset - static_cast<uint64_t>(s) * slab_bytes_) / slot));
  --slab.used;
  used_bytes_ -= slot;
  if (slab.used == 0) {
    if (!was_full) RemovePartial(c, s);
    ReleaseSlab(s);
  } else if (was_full) {
    slab.pos_in_class = static_cast<uint32_t>(c.partial.size());
    c.partial.push_back(s);
  }
}

}  // namespace kvc
