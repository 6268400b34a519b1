// Placement (placement.h). Compiled only into kvc_net (libkvc/cluster/CMakeLists.txt).
#ifdef KVC_NET_BUILD
#include "cluster/placement.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <utility>

namespace kvc::cluster {

namespace {

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

uint64_t PlacementNodeHash(const std::string& node_id) {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a 64
  for (unsigned char c : node_id) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return SplitMix64(h);
}

uint64_t PlacementScoreHash(const BlockKey& key, uint64_t node_hash) { return SplitMix64(key.Low64() ^ node_hash); }

Placement::Placement(std::shared_ptr<const MembershipView> view) : view_(std::move(view)) {
  const auto& nodes = view_->nodes;
  // Weights: capacities relative to the largest. A node that reports no
  // capacity weighs as the mean of those that do (1 when none does), so one
  // unconfigured node neither takes everything nor nothing.
  double sum = 0, max = 0;
  size_t known = 0;
  for (const auto& n : nodes) {
    if (n.capacity_bytes == 0) continue;
    sum += static_cast<double>(n.capacity_bytes);
    max = std::max(max, static_cast<double>(n.capacity_bytes));
    ++known;
  }
  const double fill = known ? sum / static_cast<double>(known) : 1.0;
  if (max == 0) max = 1.0;
  max = std::max(max, fill);
  std::unordered_map<std::string, uint32_t> zones;
  for (const auto& n : nodes) {
    hashes_.push_back(PlacementNodeHash(n.id));
    weights_.push_back((n.capacity_bytes ? static_cast<double>(n.capacity_bytes) : fill) / max);
    zone_.push_back(zones.emplace(n.zone, static_cast<uint32_t>(zones.size())).first->second);
  }
}

void Placement::Ranked(const BlockKey& key, bool up_only, size_t want, std::vector<uint32_t>* out) const {
  out->clear();
  const auto& nodes = view_->nodes;
  std::vector<std::pair<double, uint32_t>> scored;
  scored.reserve(nodes.size());
  for (uint32_t i = 0; i < nodes.size(); ++i) {
    if (up_only && nodes[i].state != NodeState::kUp) continue;
    // u in (0, 1): the top 53 bits, centred in their interval.
    const double u = (static_cast<double>(PlacementScoreHash(key, hashes_[i]) >> 11) + 0.5) * 0x1p-53;
    scored.emplace_back(-weights_[i] / std::log(u), i);
  }
  std::sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  want = std::min(want, scored.size());
  // Distinct zones first, best score first; then the best of the rest.
  std::vector<uint32_t> used_zones;
  std::vector<bool> taken(scored.size(), false);
  for (size_t j = 0; j < scored.size() && out->size() < want; ++j) {
    const uint32_t z = zone_[scored[j].second];
    if (std::find(used_zones.begin(), used_zones.end(), z) != used_zones.end()) continue;
    used_zones.push_back(z);
    taken[j] = true;
    out->push_back(scored[j].second);
  }
  for (size_t j = 0; j < scored.size() && out->size() < want; ++j)
    if (!taken[j]) out->push_back(scored[j].second);
}

void Placement::WriteReplicas(const BlockKey& key, std::vector<uint32_t>* out) const {
  Ranked(key, true, view_->config.replication, out);
}

void Placement::ReadOrder(const BlockKey& key, std::vector<uint32_t>* out) const {
  WriteReplicas(key, out);
  bool any_draining = false;
  for (const auto& n : view_->nodes) any_draining |= n.state == NodeState::kDraining;
  if (!any_draining) return;
  std::vector<uint32_t> all;
  Ranked(key, false, view_->config.replication, &all);
  for (uint32_t i : all)
    if (view_->nodes[i].state == NodeState::kDraining) out->push_back(i);
}

}  // namespace kvc::cluster
#endif  // KVC_NET_BUILD
