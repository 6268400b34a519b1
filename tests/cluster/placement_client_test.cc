// The cluster client (libkvc/cluster/cluster_client.h) following placement
// through membership changes: three in-process nodes, a scripted membership
// source. A join (reads find blocks on the previous owners, nothing is
// copied), a drain (no writes land there, its blocks stay readable), the
// write quorum, failover within the deadline, match over a chain.
#include <doctest/doctest.h>

#include <chrono>
#include <mutex>

#include "cluster/cluster_client.h"
#include "cluster/placement.h"
#include "net/node_server.h"

using kvc::BlockKey;
using kvc::Code;
using namespace kvc::cluster;
namespace net = kvc::net;

namespace {

// A membership source the test drives: Publish() installs a new view.
class ScriptedSource final : public MembershipSource {
 public:
  explicit ScriptedSource(std::shared_ptr<const MembershipView> v) : view_(std::move(v)) {}
  std::shared_ptr<const MembershipView> Current() const override {
    std::lock_guard<std::mutex> lk(mu_);
    return view_;
  }
  uint64_t Subscribe(std::function<void(std::shared_ptr<const MembershipView>)> fn) override {
    std::lock_guard<std::mutex> lk(mu_);
    subs_.push_back(std::move(fn));
    return subs_.size();
  }
  void Unsubscribe(uint64_t token) override {
    std::lock_guard<std::mutex> lk(mu_);
    subs_[token - 1] = nullptr;
  }
  std::shared_ptr<const MembershipView> Refresh(uint32_t) override { return Current(); }
  void Publish(std::shared_ptr<const MembershipView> v) {
    std::vector<std::function<void(std::shared_ptr<const MembershipView>)>> subs;
    {
      std::lock_guard<std::mutex> lk(mu_);
      view_ = v;
      subs = subs_;
    }
    for (auto& f : subs)
      if (f) f(v);
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const MembershipView> view_;
  std::vector<std::function<void(std::shared_ptr<const MembershipView>)>> subs_;
};

struct Nodes {
  std::vector<std::unique_ptr<net::NodeServer>> servers;
  std::vector<std::unique_ptr<net::NodeClient>> direct;  // one plain client per node
  std::vector<std::string> addrs;
  explicit Nodes(int n) {
    for (int i = 0; i < n; ++i) {
      net::NodeServerOptions o;
      o.listen = "127.0.0.1:0";
      o.cache.host_capacity_bytes = 32ull << 20;
      o.cache.prefault = false;
      auto s = net::NodeServer::Start(o);
      REQUIRE(s.ok());
      servers.push_back(std::move(*s));
      addrs.push_back(servers.back()->address());
      auto c = net::NodeClient::Connect(servers.back()->address(), net::NodeClientOptions{});
      REQUIRE(c.ok());
      direct.push_back(std::move(*c));
    }
  }
  std::string addr(int i) const { return addrs[i]; }
};

std::shared_ptr<MembershipView> ViewOf(const Nodes& nodes, std::vector<int> members, uint32_t r, uint32_t w,
                                       uint64_t epoch, int draining = -1) {
  auto v = std::make_shared<MembershipView>();
  v->epoch = epoch;
  v->config.replication = r;
  v->config.write_quorum = w;
  for (int i : members) {
    NodeInfo n;
    n.id = "n" + std::to_string(i);
    n.address = nodes.addr(i);
    n.state = i == draining ? NodeState::kDraining : NodeState::kUp;
    v->nodes.push_back(n);
  }
  std::sort(v->nodes.begin(), v->nodes.end(), [](const NodeInfo& a, const NodeInfo& b) { return a.id < b.id; });
  return v;
}

net::NodeNamespace Ns() {
  net::NodeNamespace ns;
  ns.hash = "sha256";
  ns.model = "m";
  ns.revision = "r";
  ns.dtype = "fp16";
  ns.layers = 1;
  ns.kv_heads = 1;
  ns.head_dim = 8;
  ns.block_tokens = 2;
  ns.shards = 1;
  return ns;
}
constexpr uint64_t kShard = 2 * 1 * 2 * 1 * 8 * 2;  // K and V, layers, tokens, heads, dim, fp16

BlockKey KeyOf(uint64_t i) {
  BlockKey k;
  uint64_t x = i * 0x9e3779b97f4a7c15ULL + 99;
  for (int b = 0; b < 16; ++b) {
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9ULL;
    k.bytes[b] = static_cast<uint8_t>(x >> 40);
  }
  return k;
}

std::vector<uint8_t> BytesOf(uint64_t i) {
  std::vector<uint8_t> b(kShard);
  for (size_t j = 0; j < b.size(); ++j) b[j] = static_cast<uint8_t>(i * 131 + j);
  return b;
}

bool Has(net::NodeClient& c, const BlockKey& k) {
  uint64_t size = 0;
  return c.Get(Ns(), k, 0, nullptr, 0, &size).ok();
}

kvc::Result<std::unique_ptr<net::NodeClient>> Open(ScriptedSource** out, std::shared_ptr<const MembershipView> v,
                                              uint32_t timeout_ms = 2000) {
  auto src = std::make_unique<ScriptedSource>(std::move(v));
  *out = src.get();
  ClusterClientOptions o;
  o.node.timeout_ms = timeout_ms;
  o.node.connect_timeout_ms = 500;
  return OpenClusterClient(std::move(src), o);
}

}  // namespace

TEST_CASE("cluster client: a join is followed at once, previous owners stay readable, nothing is copied") {
  Nodes nodes(3);
  ScriptedSource* src = nullptr;
  auto c = Open(&src, ViewOf(nodes, {0, 1}, 1, 1, 1));
  REQUIRE(c.ok());
  auto& cl = **c;
  const int n = 120;
  for (int i = 0; i < n; ++i) {
    auto b = BytesOf(i);
    REQUIRE(cl.Put(Ns(), KeyOf(i), 0, b.data(), b.size(), 0, nullptr).ok());
  }
  auto joined = ViewOf(nodes, {0, 1, 2}, 1, 1, 2);
  src->Publish(joined);
  Placement p(joined);
  std::vector<uint32_t> idx;
  int moved = 0;
  for (int i = 0; i < n; ++i) {
    p.WriteReplicas(KeyOf(i), &idx);
    const bool on_new = p.view().nodes[idx[0]].address == nodes.addr(2);
    moved += on_new;
    if (on_new) CHECK_FALSE(Has(*nodes.direct[2], KeyOf(i)));  // filled lazily, not copied
    std::vector<uint8_t> got(kShard);
    uint64_t size = 0;
    REQUIRE(cl.Get(Ns(), KeyOf(i), 0, got.data(), got.size(), &size).ok());
    CHECK(got == BytesOf(i));
  }
  CHECK(moved > 10);
  // New stores follow the new placement at once.
  int landed = 0;
  for (int i = 1000; i < 1060; ++i) {
    auto b = BytesOf(i);
    REQUIRE(cl.Put(Ns(), KeyOf(i), 0, b.data(), b.size(), 0, nullptr).ok());
    p.WriteReplicas(KeyOf(i), &idx);
    for (int j = 0; j < 3; ++j) {
      const bool owner = p.view().nodes[idx[0]].address == nodes.addr(j);
      CHECK(Has(*nodes.direct[j], KeyOf(i)) == owner);
      landed += owner && j == 2;
    }
  }
  CHECK(landed > 5);
}

TEST_CASE("cluster client: a draining node takes no stores and its blocks stay readable") {
  Nodes nodes(3);
  ScriptedSource* src = nullptr;
  auto c = Open(&src, ViewOf(nodes, {0, 1, 2}, 1, 1, 1));
  REQUIRE(c.ok());
  auto& cl = **c;
  for (int i = 0; i < 90; ++i) {
    auto b = BytesOf(i);
    REQUIRE(cl.Put(Ns(), KeyOf(i), 0, b.data(), b.size(), 0, nullptr).ok());
  }
  src->Publish(ViewOf(nodes, {0, 1, 2}, 1, 1, 2, /*draining=*/1));
  for (int i = 0; i < 90; ++i) {
    uint64_t size = 0;
    std::vector<uint8_t> got(kShard);
    REQUIRE(cl.Get(Ns(), KeyOf(i), 0, got.data(), got.size(), &size).ok());
    CHECK(got == BytesOf(i));
  }
  for (int i = 2000; i < 2090; ++i) {
    auto b = BytesOf(i);
    REQUIRE(cl.Put(Ns(), KeyOf(i), 0, b.data(), b.size(), 0, nullptr).ok());
    CHECK_FALSE(Has(*nodes.direct[1], KeyOf(i)));
  }
}

TEST_CASE("cluster client: the write quorum, failover within the deadline, match over a chain") {
  Nodes nodes(3);
  ScriptedSource* src = nullptr;
  auto c = Open(&src, ViewOf(nodes, {0, 1, 2}, 2, 2, 1), 1000);
  REQUIRE(c.ok());
  auto& cl = **c;
  // A chain of 12 blocks, each on two nodes.
  std::vector<BlockKey> chain;
  for (int i = 0; i < 12; ++i) {
    chain.push_back(KeyOf(5000 + i));
    auto b = BytesOf(5000 + i);
    REQUIRE(cl.Put(Ns(), chain.back(), 0, b.data(), b.size(), 0, i ? &chain[i - 1] : nullptr).ok());
  }
  std::vector<uint8_t> tiers;
  auto m = cl.Match(Ns(), chain, &tiers);
  REQUIRE(m.ok());
  CHECK(*m == 12);
  CHECK(tiers.size() == 12);
  // A block gone from one replica is still matched through the other.
  Placement p(src->Current());
  std::vector<uint32_t> idx;
  p.WriteReplicas(chain[7], &idx);
  for (int j = 0; j < 3; ++j)
    if (p.view().nodes[idx[0]].address == nodes.addr(j)) REQUIRE(nodes.direct[j]->Delete(Ns(), chain[7]).ok());
  m = cl.Match(Ns(), chain, &tiers);
  REQUIRE(m.ok());
  CHECK(*m == 12);
  // Deleted everywhere: the chain stops there.
  REQUIRE(cl.Delete(Ns(), chain[7]).ok());
  m = cl.Match(Ns(), chain, &tiers);
  REQUIRE(m.ok());
  CHECK(*m == 7);
  CHECK(tiers[7] == 0);

  // One node stops: with W=2 the stores it owns fail and say why; reads
  // fail over to the other replica within the deadline.
  nodes.servers[2]->Shutdown(0);
  nodes.servers[2].reset();
  int failed = 0, ok = 0;
  for (int i = 7000; i < 7040; ++i) {
    auto b = BytesOf(i);
    auto t0 = std::chrono::steady_clock::now();
    kvc::Status s = cl.Put(Ns(), KeyOf(i), 0, b.data(), b.size(), 0, nullptr);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(1500));
    p.WriteReplicas(KeyOf(i), &idx);
    bool owns_gone = false;
    for (uint32_t j : idx) owns_gone |= p.view().nodes[j].id == "n2";
    if (owns_gone) {
      ++failed;
      CHECK(s.code() == Code::kUnavailable);
      CHECK(s.message().find("stored on 1 of the 2 replica(s)") != std::string::npos);
    } else {
      ++ok;
      CHECK(s.ok());
    }
  }
  CHECK(failed > 0);
  CHECK(ok > 0);
  for (int i = 0; i < 7; ++i) {
    std::vector<uint8_t> got(kShard);
    uint64_t size = 0;
    auto t0 = std::chrono::steady_clock::now();
    REQUIRE(cl.Get(Ns(), chain[i], 0, got.data(), got.size(), &size).ok());
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(1500));
    CHECK(got == BytesOf(5000 + i));
  }
  // W=1 on the same nodes: every store commits, on the replica that is up.
  src->Publish(ViewOf(nodes, {0, 1, 2}, 2, 1, 2));
  for (int i = 8000; i < 8040; ++i) {
    auto b = BytesOf(i);
    CHECK(cl.Put(Ns(), KeyOf(i), 0, b.data(), b.size(), 0, nullptr).ok());
  }
}
