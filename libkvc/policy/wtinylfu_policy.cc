#include "policy/wtinylfu_policy.h"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace kvc {
namespace {

constexpr uint64_t kMinSample = 64;

}  // namespace

WTinyLfuPolicy::WTinyLfuPolicy(uint64_t capacity, const Options& options)
    : capacity_(capacity),
      options_(options),
      sketch_(static_cast<size_t>(options.sketch_entries)) {
  assert(capacity > 0);
  const double cap = static_cast<double>(capacity);
  window_max_ = std::clamp(options.initial_window_share, 0.0, 1.0) * cap;
  step_ = -options.step_share * cap;
}

size_t WTinyLfuPolicy::size() const {
  return lists_.Size(kWindow) + lists_.Size(kProbation) + lists_.Size(kProtected);
}

void WTinyLfuPolicy::Insert(PolicyHandle h, const PolicyEntry& entry) {
  if (h >= weight_.size()) {
    const size_t n = std::max<size_t>(size_t{h} + 1, weight_.size() * 2);
    weight_.resize(n);
    hash_.resize(n);
  }
  weight_[h] = entry.weight;
  hash_[h] = entry.key_hash;
  lists_.PushBack(kWindow, h);
  weight_of_[kWindow] += entry.weight;
  sketch_.EnsureCapacity(size());  // a tier's capacity in bytes says little about its entries
  sketch_.Increment(entry.key_hash);
  DrainWindow();
  RecordAccess(false);
}

void WTinyLfuPolicy::Touch(PolicyHandle h) {
  sketch_.Increment(hash_[h]);
  switch (lists_.ListOf(h)) {
    case kWindow:
      lists_.MoveToBack(kWindow, h);
      break;
    case kProbation:
      MoveTo(kProtected, h);
      DemoteProtected();
      break;
    case kProtected:
      lists_.MoveToBack(kProtected, h);
      break;
    default:
      assert(false && "Touch of an untracked handle");
  }
  RecordAccess(true);
}

void WTinyLfuPolicy::RecordMiss(uint64_t key_hash) {
  sketch_.Increment(key_hash);
  RecordAccess(false);
}

void WTinyLfuPolicy::Erase(PolicyHandle h) {
  const uint8_t segment = lists_.ListOf(h);
  assert(segment != HandleLists::kNone);
  weight_of_[segment] -= weight_[h];
  lists_.Remove(h);
}

std::optional<PolicyHandle> WTinyLfuPolicy::Victim(const EvictablePredicate& evictable) {
  full_ = true;
  // The window's oldest block competes for a place in main once the window
  // is full: the block about to be inserted will push it out.
  PolicyHandle candidate = kNoHandle;
  if (static_cast<double>(weight_of_[kWindow]) >= window_max_)
    candidate = lists_.FirstWhere(kWindow, evictable);
  PolicyHandle victim = lists_.FirstWhere(kProbation, evictable);
  if (victim == kNoHandle) victim = lists_.FirstWhere(kProtected, evictable);

  if (candidate != kNoHandle && victim != kNoHandle) {
    if (sketch_.Frequency(hash_[candidate]) > sketch_.Frequency(hash_[victim])) {
      MoveTo(kProbation, candidate);
      return victim;
    }
    return candidate;
  }
  if (candidate != kNoHandle) return candidate;
  if (victim != kNoHandle) return victim;
  // The window is under its share and nothing in main may go.
  candidate = lists_.FirstWhere(kWindow, evictable);
  if (candidate != kNoHandle) return candidate;
  return std::nullopt;
}

std::vector<PolicyHandle> WTinyLfuPolicy::HottestFirst() const {
  std::vector<PolicyHandle> out;
  out.reserve(size());
  lists_.AppendNewestFirst(kProtected, &out);
  lists_.AppendNewestFirst(kWindow, &out);
  lists_.AppendNewestFirst(kProbation, &out);
  return out;
}

std::vector<std::pair<std::string, double>> WTinyLfuPolicy::Gauges() const {
  return {{"window_share", window_share()},
          {"window_weight", static_cast<double>(weight_of_[kWindow])},
          {"probation_weight", static_cast<double>(weight_of_[kProbation])},
          {"protected_weight", static_cast<double>(weight_of_[kProtected])},
          {"sketch_resets", static_cast<double>(sketch_.resets())},
          {"climber_samples", static_cast<double>(samples_)}};
}

void WTinyLfuPolicy::MoveTo(Segment to, PolicyHandle h) {
  weight_of_[lists_.ListOf(h)] -= weight_[h];
  weight_of_[to] += weight_[h];
  lists_.MoveToBack(to, h);
}

void WTinyLfuPolicy::DrainWindow() {
  while (static_cast<double>(weight_of_[kWindow]) > window_max_ && !lists_.Empty(kWindow)) {
    const PolicyHandle oldest = lists_.Front(kWindow);
    if (static_cast<double>(MainWeight() + weight_[oldest]) > MainMax()) break;
    MoveTo(kProbation, oldest);
  }
}

void WTinyLfuPolicy::DemoteProtected() {
  const double protected_max = options_.protected_share * MainMax();
  while (static_cast<double>(weight_of_[kProtected]) > protected_max &&
         !lists_.Empty(kProtected))
    MoveTo(kProbation, lists_.Front(kProtected));
}

void WTinyLfuPolicy::RecordAccess(bool hit) {
  // Hit rates of a cache that is still filling say nothing about its window.
  if (!options_.adaptive || !full_) return;
  sample_hits_ += hit ? 1 : 0;
  ++sample_accesses_;
  const double period =
      std::max(static_cast<double>(kMinSample), options_.sample_factor * static_cast<double>(size()));
  if (static_cast<double>(sample_accesses_) >= period) Climb();
}

void WTinyLfuPolicy::Climb() {
  const double hit_rate = static_cast<double>(sample_hits_) / static_cast<double>(sample_accesses_);
  const double delta = hit_rate - previous_hit_rate_;
  const double amount = delta >= 0 ? step_ : -step_;
  const double cap = static_cast<double>(capacity_);
  step_ = std::abs(delta) >= options_.restart_threshold
              ? options_.step_share * cap * (amount >= 0 ? 1 : -1)
              : options_.step_decay * amount;
  previous_hit_rate_ = hit_rate;
  sample_hits_ = sample_accesses_ = 0;
  ++samples_;
  window_max_ = std::clamp(window_max_ + amount, 0.0, cap);
  // A smaller window drains into the room it left in main; a larger one
  // fills from new blocks while main's oldest leave first.
  DrainWindow();
}

}  // namespace kvc
