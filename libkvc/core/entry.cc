#include "core/entry.h"

#include <stdexcept>

namespace kvc {

EntryPool::EntryPool() : chunks_(new std::atomic<Entry*>[kMaxChunks]) {
  for (uint32_t i = 0; i < kMaxChunks; ++i) chunks_[i].store(nullptr, std::memory_order_relaxed);
}

EntryId EntryPool::Allocate() {
  if (free_.empty()) {
    if (owned_.size() == kMaxChunks) throw std::length_error("entry pool is full");
    auto chunk = std::make_unique<Entry[]>(kChunkSize);
    const auto base = static_cast<EntryId>(owned_.size() << kChunkBits);
    chunks_[owned_.size()].store(chunk.get(), std::memory_order_release);
    owned_.push_back(std::move(chunk));
    free_.reserve(free_.size() + kChunkSize);
    for (uint32_t i = kChunkSize; i-- > 0;) free_.push_back(base + i);
  }
  EntryId id = free_.back();
  free_.pop_back();
  ++allocated_;
  return id;
}

void EntryPool::Free(EntryId id) {
  Entry& e = at(id);
  e.state.store(EntryState::kFree, std::memory_order_release);
  e.pins.store(0, std::memory_order_relaxed);
  e.in_policy = false;
  e.has_memory = false;
  e.parent = kNoEntry;
  ++e.gen;
  --allocated_;
  free_.push_back(id);
}

}  // namespace kvc
