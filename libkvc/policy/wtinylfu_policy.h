// WTinyLfuPolicy: W-TinyLFU with an adaptive window (as in Caffeine).
//
// Three LRU segments share the capacity by weight:
//   window     new blocks land here; its share of the capacity adapts;
//   probation  main segment for blocks admitted from the window;
//   protected  main segment for blocks hit while on probation; at most
//              `protected_share` of the main weight (the overflow goes back
//              to probation).
// When the window is full, its oldest block is a *candidate* for the main
// segments and competes with the main's victim (oldest on probation, else
// oldest protected): the candidate is admitted only if a count-min sketch
// (FrequencySketch) estimates it was accessed more often recently; the loser
// is the victim. A scan of one-off blocks thus flows through the window and
// out without flushing the frequently used blocks of the main segments.
//
// Adaptive window: once the cache is full (Victim was called), a hill
// climber samples the hit rate every `sample_factor` x (resident entries)
// accesses and moves the window's share by a step: on in the direction of
// the last step if the hit rate rose, back if it fell. Steps restart at
// `step_share` x capacity after a hit-rate change of `restart_threshold` or
// more, else shrink by `step_decay`. Caffeine starts its window at 1%, for
// frequency-skewed workloads; KV prefix traffic (chat turns, agents) is
// recency-skewed, where a small window loses to LRU, so the window starts at
// the whole capacity (LRU order) and the climber shrinks it only while that
// raises the hit rate (docs/policies.md has the measurements).
//
// Accesses: Touch is a hit; Insert and RecordMiss each count a miss and an
// access in the sketch (report a miss that is followed by an Insert of the
// same block once: either call is enough).
//
// Costs: O(1) per call, plus the handles Victim skips because `evictable`
// rejected them; a climber step moves no entries (the segments follow the new
// shares lazily, on Insert and Victim).
//
// Thread safety: none. The owning tier serialises all calls.
#ifndef KVC_POLICY_WTINYLFU_POLICY_H_
#define KVC_POLICY_WTINYLFU_POLICY_H_

#include <array>

#include "policy/eviction_policy.h"
#include "policy/frequency_sketch.h"
#include "policy/handle_lists.h"

namespace kvc {

class WTinyLfuPolicy final : public EvictionPolicy {
 public:
  struct Options {
    // The window's share of the capacity at start, 0..1. Default: 1.
    double initial_window_share = 1.0;
    // Whether the hill climber runs (false: a fixed window). Default: true.
    bool adaptive = true;
    // The climber's restart step, as a share of the capacity. Default: 0.0625.
    double step_share = 0.0625;
    // A hit-rate change of at least this restarts the step. Default: 0.05.
    double restart_threshold = 0.05;
    // Otherwise the step shrinks by this factor each sample. Default: 0.98.
    double step_decay = 0.98;
    // Accesses per sample, as a multiple of the resident entries (at least
    // 64 accesses). Default: 20.
    double sample_factor = 20.0;
    // The protected segment's share of the main weight. Default: 0.8.
    double protected_share = 0.8;
    // The sketch is sized for at least this many entries and for every
    // resident entry; it remembers about ten accesses per entry. KV blocks
    // come back after long gaps, so a sketch sized for a small cache forgets
    // them. Default: 65536 (512 KiB).
    uint64_t sketch_entries = 65536;
  };

  // REQUIRES: capacity > 0.
  explicit WTinyLfuPolicy(uint64_t capacity) : WTinyLfuPolicy(capacity, Options()) {}
  WTinyLfuPolicy(uint64_t capacity, const Options& options);

  std::string_view name() const override { return "wtinylfu"; }
  void Insert(PolicyHandle h, const PolicyEntry& entry) override;
  void Touch(PolicyHandle h) override;
  void RecordMiss(uint64_t key_hash) override;
  void Erase(PolicyHandle h) override;
  std::optional<PolicyHandle> Victim(const EvictablePredicate& evictable) override;
  // The protected segment newest first, then the window newest first, then
  // probation newest first: the reverse of the order blocks leave in
  // (probation's oldest go first, protected last). The sketch is not
  // consulted (docs/policies.md says why).
  std::vector<PolicyHandle> HottestFirst() const override;
  size_t size() const override;
  // window_share (the window's target share of the capacity), window_weight,
  // probation_weight, protected_weight, sketch_resets, climber_samples.
  std::vector<std::pair<std::string, double>> Gauges() const override;

  // The window's target share of the capacity, 0..1.
  double window_share() const { return window_max_ / static_cast<double>(capacity_); }

 private:
  enum Segment : uint8_t { kWindow = 0, kProbation = 1, kProtected = 2 };

  double MainMax() const { return static_cast<double>(capacity_) - window_max_; }
  uint64_t MainWeight() const { return weight_of_[kProbation] + weight_of_[kProtected]; }
  void MoveTo(Segment to, PolicyHandle h);
  // Moves the window's oldest blocks to probation while the window is over
  // its share and the main segments have room.
  void DrainWindow();
  // Moves the oldest protected blocks to probation while protected is over
  // its share.
  void DemoteProtected();
  // Counts an access for the climber and adapts the window after a sample.
  void RecordAccess(bool hit);
  void Climb();

  uint64_t capacity_;
  Options options_;
  HandleLists lists_{3};
  std::vector<uint64_t> weight_;         // by handle
  std::vector<uint64_t> hash_;           // by handle
  std::array<uint64_t, 3> weight_of_{};  // by segment
  FrequencySketch sketch_;

  double window_max_;  // the window's target weight
  // Hill climber; it samples once the cache is full (Victim was called).
  bool full_ = false;
  uint64_t sample_hits_ = 0;
  uint64_t sample_accesses_ = 0;
  double previous_hit_rate_ = 0;
  double step_;  // signed, in weight units
  uint64_t samples_ = 0;
};

}  // namespace kvc

#endif  // KVC_POLICY_WTINYLFU_POLICY_H_
