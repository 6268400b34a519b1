// StaticMembership: a fixed list of peers, no etcd (membership.h).
// Compiled only into kvc_net (libkvc/cluster/CMakeLists.txt).
#ifdef KVC_NET_BUILD
#include <algorithm>
#include <atomic>
#include <charconv>
#include <set>

#include "cluster/membership.h"

namespace kvc::cluster {
namespace {

constexpr std::string_view kScheme = "peers:";

// A decimal in [lo, hi], the whole of `s`.
bool ParseUint(std::string_view s, uint64_t lo, uint64_t hi, uint64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < lo || v > hi) return false;
  *out = v;
  return true;
}

class StaticSource final : public MembershipSource {
 public:
  explicit StaticSource(std::shared_ptr<const MembershipView> view) : view_(std::move(view)) {}
  std::shared_ptr<const MembershipView> Current() const override { return view_; }
  // The view never changes: subscribers are never called.
  uint64_t Subscribe(std::function<void(std::shared_ptr<const MembershipView>)>) override { return ++token_; }
  void Unsubscribe(uint64_t) override {}
  std::shared_ptr<const MembershipView> Refresh(uint32_t) override { return view_; }

 private:
  const std::shared_ptr<const MembershipView> view_;
  std::atomic<uint64_t> token_{0};
};

}  // namespace

Result<std::unique_ptr<MembershipSource>> StaticMembership(const std::string& address) {
  const std::string_view a(address);
  if (a.substr(0, kScheme.size()) != kScheme)
    return InvalidArgument("a static cluster address starts with 'peers:' (peers:HOST:PORT,...), not '" +
                           address + "'");
  std::string_view rest = a.substr(kScheme.size());
  std::string_view query;
  if (size_t q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  auto view = std::make_shared<MembershipView>();
  view->epoch = 1;
  std::set<std::string> seen;
  size_t pos = 0;
  while (true) {
    const size_t comma = rest.find(',', pos);
    const std::string_view peer = rest.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    const size_t colon = peer.rfind(':');
    uint64_t port = 0;
    if (peer.empty()) return InvalidArgument("an empty peer in '" + address + "' (peers:HOST:PORT,HOST:PORT,...)");
    if (colon == std::string_view::npos || colon == 0 || !ParseUint(peer.substr(colon + 1), 1, 65535, &port))
      return InvalidArgument("peer '" + std::string(peer) + "' is not HOST:PORT with a port in 1..65535");
    if (!seen.insert(std::string(peer)).second)
      return InvalidArgument("peer '" + std::string(peer) + "' is listed twice");
    NodeInfo n;
    n.id = std::string(peer);  // a static peer's id is its address
    n.address = std::string(peer);
    n.registered_epoch = 1;
    view->nodes.push_back(std::move(n));
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  std::sort(view->nodes.begin(), view->nodes.end(), [](const NodeInfo& x, const NodeInfo& y) { return x.id < y.id; });
  const uint64_t n = view->nodes.size();
  uint64_t replication = std::min<uint64_t>(2, n), quorum = 1;
  bool quorum_set = false;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view kv = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const size_t eq = kv.find('=');
    const std::string_view k = kv.substr(0, eq);
    const std::string_view v = eq == std::string_view::npos ? std::string_view() : kv.substr(eq + 1);
    if (k == "replication") {
      if (!ParseUint(v, 1, n, &replication))
        return InvalidArgument("replication='" + std::string(v) + "' must be a number in 1.." + std::to_string(n) +
                               " (the number of peers)");
    } else if (k == "write_quorum") {
      if (!ParseUint(v, 1, 64, &quorum))
        return InvalidArgument("write_quorum='" + std::string(v) + "' must be a number of replicas, at least 1");
      quorum_set = true;
    } else {
      return InvalidArgument("unknown parameter '" + std::string(k) +
                             "' in a static cluster address (known: replication, write_quorum)");
    }
  }
  if (quorum_set && quorum > replication)
    return InvalidArgument("write_quorum=" + std::to_string(quorum) + " exceeds replication=" +
                           std::to_string(replication));
  view->config.replication = static_cast<uint32_t>(replication);
  view->config.write_quorum = static_cast<uint32_t>(quorum);
  return std::unique_ptr<MembershipSource>(new StaticSource(std::move(view)));
}

}  // namespace kvc::cluster
#endif  // KVC_NET_BUILD
