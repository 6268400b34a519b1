// Demoter: moves blocks evicted from the host tier down to the SSD tier
// (write-back) without doing I/O under the host tier's lock.
//
// Stage() copies the evicted block into a bounded staging ring allocated
// once (one memcpy, made while the caller still holds the block; no heap
// allocation per block) and returns at once; a
// background thread Puts staged blocks into the SSD tier in order. When the
// staging area is full the demotion is dropped and counted: eviction never
// waits for the disk. Drain() waits until everything staged so far is in the
// SSD tier (clean shutdown, kvc_cache_flush).
//
// Thread-safe.
#ifndef KVC_TIER_DEMOTER_H_
#define KVC_TIER_DEMOTER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "tier/ssd_tier.h"

namespace kvc {

class Demoter {
 public:
  // `ssd` must outlive the Demoter. `staging_bytes`: the most bytes staged
  // at once.
  Demoter(SsdTier* ssd, uint64_t staging_bytes);
  ~Demoter();  // drains, then stops

  // Stages (id, meta, data[0..meta.len)). false when it does not fit (dropped).
  bool Stage(const SsdBlockId& id, const SsdMeta& meta, const void* data);
  // Returns once every block staged before the call is in the SSD tier (or
  // was refused by it).
  void Drain();

  uint64_t demoted() const { return demoted_.load(); }
  uint64_t dropped() const { return dropped_.load(); }
  uint64_t failed() const { return failed_.load(); }

 private:
  struct Item {
    SsdBlockId id;
    SsdMeta meta;
    uint64_t offset;  // in the ring
    uint64_t charge;  // bytes it holds of the ring, with any skipped tail
  };
  void Run();

  SsdTier* ssd_;
  const uint64_t limit_;
  std::unique_ptr<uint8_t[]> ring_;
  std::mutex mu_;
  std::condition_variable cv_, drained_;
  std::deque<Item> queue_;   // GUARDED_BY(mu_); FIFO, as the ring frees
  uint64_t head_ = 0, tail_ = 0, used_ = 0;  // GUARDED_BY(mu_)
  uint64_t enqueued_ = 0, done_ = 0;  // GUARDED_BY(mu_)
  bool stop_ = false;        // GUARDED_BY(mu_)
  std::atomic<uint64_t> demoted_{0}, dropped_{0}, failed_{0};
  std::thread thread_;
};

}  // namespace kvc

#endif  // KVC_TIER_DEMOTER_H_
