// Compiled only into kvc_net (libkvc/cluster/CMakeLists.txt).
#ifdef KVC_NET_BUILD
#include "cluster/handoff.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <utility>
#include <vector>

#include "cluster/placement.h"
#include "cluster/registration.h"
#include "net/node_client.h"

namespace kvc::cluster {

Handoff::Handoff(Cache& cache, Options options) : cache_(cache), opts_(std::move(options)) {}

Handoff::~Handoff() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void Handoff::Start() {
  if (started_.exchange(true)) return;
  thread_ = std::thread([this] { Run(); });
}

nlohmann::json Handoff::Json() const {
  std::lock_guard<std::mutex> lk(mu_);
  nlohmann::json j{{"state", state_},
                   {"blocks", blocks_.load()},
                   {"host_blocks", host_blocks_.load()},
                   {"ssd_blocks", ssd_blocks_.load()},
                   {"ssd_unknown_namespace", ssd_unknown_.load()},
                   {"bytes", bytes_.load()},
                   {"present", present_.load()},
                   {"failures", failures_.load()}};
  if (!error_.empty()) j["error"] = error_;
  return j;
}

void Handoff::SetState(const std::string& state, const std::string& error) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    state_ = state;
    error_ = error;
  }
  Registration* r = registration_.load();
  if (r == nullptr) return;
  Status s = r->SetHandoff(state, blocks_.load(), 2000);
  if (!s.ok())
    std::fprintf(stderr, "kvc node %s: drain: cannot write the hand-off state to etcd: %s\n", r->node_id().c_str(),
                 s.message().c_str());
}

void Handoff::Run() {
  Registration* reg = registration_.load();
  for (int i = 0; reg == nullptr && i < 100 && !stop_.load(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    reg = registration_.load();
  }
  if (reg == nullptr) return;
  const std::string self = opts_.node_id.empty() ? reg->node_id() : opts_.node_id;
  auto log = [&](const std::string& m) { std::fprintf(stderr, "kvc node %s: drain: %s\n", self.c_str(), m.c_str()); };
  if (opts_.admin_token.empty()) {
    const std::string e =
        "this node has no admin token, so it cannot act as the blocks' tenants on other nodes: nothing is handed "
        "off (its blocks stay readable here until it leaves)";
    log(e);
    SetState("no-admin-token", e);
    return;
  }
  SetState("running");
  auto src = EtcdMembership(opts_.cluster, 5000);
  if (!src.ok()) {
    log("cannot read the membership: " + src.status().message());
    SetState("failed", src.status().message());
    return;
  }
  auto view = std::make_shared<MembershipView>(*(*src)->Refresh(5000));
  std::erase_if(view->nodes, [&](const NodeInfo& n) { return n.id == self; });
  const Placement placement(view);

  // Hottest first: the host tier's blocks in its policy's order, then the
  // blocks only the SSD tier holds (the coldest), in the SSD policy's order.
  // A node stopped before the pass ends has handed off its hottest blocks.
  std::vector<Cache::HostBlock> blocks;
  cache_.ForEachHostBlock([&](const Cache::HostBlock& b) { blocks.push_back(b); });
  const size_t host_count = blocks.size();
  Cache::SsdOnlySkips skips;
  cache_.ForEachSsdOnlyBlock([&](const Cache::HostBlock& b) { blocks.push_back(b); }, &skips);
  ssd_unknown_.store(skips.unknown_namespace);
  if (skips.unknown_namespace != 0)
    log(std::to_string(skips.unknown_namespace) +
        " SSD blocks belong to namespaces not opened on this node since it started: the SSD tier keeps a "
        "namespace's seed, not its fields, so they cannot be named to their new owners and are not handed off");
  // A test-only knob: stop after this many blocks, as if the node had been
  // stopped mid-pass (tests/cluster/test_cluster_drain.py).
  size_t limit = blocks.size();
  if (const char* v = std::getenv("KVC_HANDOFF_MAX_BLOCKS"); v != nullptr && *v != '\0')
    limit = std::min<size_t>(limit, std::strtoull(v, nullptr, 10));
  std::map<uint32_t, std::string> tenant_names;
  for (const auto& t : cache_.tenants().tenants()) tenant_names[t.id] = t.name;

  // One client per (node, tenant).
  std::map<std::pair<uint32_t, uint32_t>, std::unique_ptr<net::NodeClient>> clients;
  auto client_of = [&](uint32_t node, uint32_t tenant) -> Result<net::NodeClient*> {
    auto& c = clients[{node, tenant}];
    if (c) return c.get();
    net::NodeClientOptions o;
    o.admin_token = opts_.admin_token;
    if (tenant != 0) {
      auto it = tenant_names.find(tenant);
      if (it == tenant_names.end()) return NotFound("tenant " + std::to_string(tenant) + " was deleted");
      o.as_tenant = it->second;
    }
    o.tls_ca_path = opts_.tls_ca_path;
    o.timeout_ms = 5000;
    const uint64_t epoch = view->epoch;
    o.membership_epoch = [epoch] { return epoch; };
    auto r = net::NodeClient::Connect(view->nodes[node].address, o);
    if (!r.ok()) return r.status();
    c = std::move(r).value();
    return c.get();
  };

  std::vector<uint32_t> owners;
  std::vector<uint8_t> buffer;  // an SSD block's bytes
  std::string last_error;
  for (size_t i = 0; i < limit; ++i) {
    if (stop_.load()) return;
    const Cache::HostBlock& b = blocks[i];
    const bool from_ssd = i >= host_count;
    placement.WriteReplicas(b.key, &owners);
    if (owners.empty()) {
      failures_.fetch_add(1);
      last_error = "no node is up to take the blocks";
      continue;
    }
    const net::NodeNamespace ns = net::NodeNamespaceOf(b.ns->fields);
    bool read = false;  // the block's bytes are in hand (view or buffer)
    View v;
    const void* data = nullptr;
    uint64_t size = 0;
    bool copied = false;
    for (uint32_t node : owners) {
      auto c = client_of(node, b.tenant);
      if (!c.ok()) {
        failures_.fetch_add(1);
        last_error = c.status().message();
        continue;
      }
      std::vector<uint8_t> tiers;
      auto has = (*c)->Match(ns, {b.key}, &tiers);
      if (has.ok() && *has == 1 && b.shard == 0 && b.ns->shards == 1) {
        present_.fetch_add(1);
        continue;
      }
      if (!read) {
        Status s = from_ssd ? cache_.ReadSsdBlock(b, &buffer)
                            : cache_.AcquireView(*b.ns, b.key, b.shard, 0, &v, b.tenant);
        if (!s.ok()) break;  // gone meanwhile (evicted, deleted, bumped)
        read = true;
        data = from_ssd ? static_cast<const void*>(buffer.data()) : static_cast<const void*>(v.data);
        size = from_ssd ? buffer.size() : v.size;
      }
      Status s = (*c)->Put(ns, b.key, b.shard, data, size, static_cast<uint64_t>(b.ttl_left_ms), nullptr);
      if (s.ok()) {
        blocks_.fetch_add(1);
        bytes_.fetch_add(size);
        copied = true;
      } else {
        failures_.fetch_add(1);
        last_error = s.message();
      }
    }
    if (read && !from_ssd) (void)cache_.ReleaseView(v.id);
    if (copied) (from_ssd ? ssd_blocks_ : host_blocks_).fetch_add(1);
  }
  if (limit < blocks.size()) {
    const std::string e = "KVC_HANDOFF_MAX_BLOCKS (a test knob) ended the pass after " + std::to_string(limit) +
                          " of " + std::to_string(blocks.size()) + " blocks";
    log(e);
    SetState("stopped", e);
    return;
  }
  log("handed off " + std::to_string(blocks_.load()) + " block shards (" + std::to_string(bytes_.load()) +
      " bytes) of " + std::to_string(blocks.size()) + " (" + std::to_string(host_count) + " from the host tier, " +
      std::to_string(blocks.size() - host_count) + " only on SSD); " + std::to_string(present_.load()) +
      " already there, " + std::to_string(failures_.load()) + " failed" +
      (last_error.empty() ? std::string() : " (last: " + last_error + ")"));
  SetState(failures_.load() == 0 ? "done" : "failed", last_error);
}

}  // namespace kvc::cluster
#endif  // KVC_NET_BUILD
