#include "tier/demoter.h"

#include <cstring>

namespace kvc {

Demoter::Demoter(SsdTier* ssd, uint64_t staging_bytes)
    : ssd_(ssd), limit_(staging_bytes), ring_(new uint8_t[staging_bytes]), thread_([this] { Run(); }) {}

Demoter::~Demoter() {
  Drain();
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

bool Demoter::Stage(const SsdBlockId& id, const SsdMeta& meta, const void* data) {
  const uint64_t n = meta.len;
  std::unique_lock<std::mutex> lk(mu_);
  // A ring freed in FIFO order: room at [head, end) or, wrapping, [0, tail).
  uint64_t off = 0, charge = 0;
  if (used_ == 0) head_ = tail_ = 0;
  if (head_ >= tail_ && used_ < limit_) {
    if (limit_ - head_ >= n) {
      off = head_;
      charge = n;
    } else if (tail_ >= n) {
      off = 0;
      charge = (limit_ - head_) + n;  // the skipped end is freed with this item
    } else {
      charge = 0;
    }
  } else if (head_ < tail_ && tail_ - head_ >= n) {
    off = head_;
    charge = n;
  }
  if (charge == 0 || n == 0) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  head_ = off + n;
  used_ += charge;
  // Copied under the lock so that ring order is queue order.
  std::memcpy(ring_.get() + off, data, n);
  queue_.push_back(Item{id, meta, off, charge});
  ++enqueued_;
  lk.unlock();
  cv_.notify_one();
  return true;
}

void Demoter::Drain() {
  std::unique_lock<std::mutex> lk(mu_);
  const uint64_t target = enqueued_;
  drained_.wait(lk, [&] { return done_ >= target; });
}

void Demoter::Run() {
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty() && stop_) return;
    const Item item = queue_.front();
    queue_.pop_front();
    lk.unlock();
    Status s = ssd_->Put(item.id, item.meta, ring_.get() + item.offset, false);
    (s.ok() ? demoted_ : failed_).fetch_add(1, std::memory_order_relaxed);
    lk.lock();
    used_ -= item.charge;
    tail_ = item.offset + item.meta.len;
    ++done_;
    drained_.notify_all();
  }
}

}  // namespace kvc
