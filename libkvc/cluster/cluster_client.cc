// ClusterClient (cluster_client.h) and net::ConnectCluster. Compiled only
// into kvc_net (libkvc/cluster/CMakeLists.txt).
#ifdef KVC_NET_BUILD
#include "cluster/cluster_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <map>
#include <numeric>
#include <mutex>
#include <optional>
#include <set>
#include <span>

#include <nlohmann/json.hpp>

#include "cluster/etcd_admin.h"
#include "cluster/etcd_client.h"
#include "cluster/etcd_layout.h"
#include "cluster/placement.h"
#include "net/node_service.h"
#include "tenant/tenant_registry.h"

namespace kvc::cluster {

namespace {

using Clock = std::chrono::system_clock;

// The deadline and membership epoch of the node call running on this
// thread, read by the per-node clients' hooks (NodeClientOptions).
thread_local Clock::time_point t_deadline{};
thread_local uint64_t t_epoch = 0;

// How long a node marked down gets to accept a TCP connection when it is
// tried anyway.
constexpr int64_t kDownProbeMs = 200;

// The part of a delete's deadline kept for writing hints to etcd (at most
// a quarter of the call's timeout).
constexpr int64_t kHintReserveMs = 250;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int64_t MsLeft(Clock::time_point deadline) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
}

// A failure of the node or the network, as opposed to an answer.
bool Transient(Code c) { return c == Code::kUnavailable || c == Code::kTimeout || c == Code::kInternal || c == Code::kClosed; }

// Host and port of "host:port" or "[v6]:port".
bool SplitAddress(const std::string& a, std::string* host, std::string* port) {
  const size_t colon = a.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  *host = a.substr(0, colon);
  *port = a.substr(colon + 1);
  if (host->size() > 1 && host->front() == '[' && host->back() == ']') *host = host->substr(1, host->size() - 2);
  return true;
}

// Whether a TCP connection to `address` opens within timeout_ms: a refused
// connection answers at once, where a gRPC connect would wait out its whole
// timeout on a dead node.
bool TcpReachable(const std::string& address, int timeout_ms) {
  std::string host, port;
  if (!SplitAddress(address, &host, &port)) return true;  // let gRPC judge it
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr) return true;
  bool ok = false;
  for (addrinfo* ai = res; ai != nullptr && !ok; ai = ai->ai_next) {
    const int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc == 0) {
      ok = true;
    } else if (errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      if (poll(&p, 1, std::max(1, timeout_ms)) == 1) {
        int err = 0;
        socklen_t len = sizeof(err);
        ok = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
      }
    }
    close(fd);
  }
  freeaddrinfo(res);
  return ok;
}

// The addresses of this host: loopback, its name, its interfaces'.
std::set<std::string> LocalHosts() {
  std::set<std::string> hosts = {"localhost", "127.0.0.1", "::1", "0.0.0.0"};
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) == 0) hosts.insert(name);
  ifaddrs* ifs = nullptr;
  if (getifaddrs(&ifs) == 0) {
    for (ifaddrs* i = ifs; i != nullptr; i = i->ifa_next) {
      if (i->ifa_addr == nullptr) continue;
      char buf[INET6_ADDRSTRLEN] = {};
      if (i->ifa_addr->sa_family == AF_INET)
        inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, buf, sizeof(buf));
      else if (i->ifa_addr->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr, buf, sizeof(buf));
      if (buf[0]) hosts.insert(buf);
    }
    freeifaddrs(ifs);
  }
  return hosts;
}

// One node's connection, shared by every view that names its address.
struct NodeSlot {
  explicit NodeSlot(std::string a) : address(std::move(a)) {}
  const std::string address;
  std::mutex mu;
  std::shared_ptr<net::NodeClient> client;  // GUARDED_BY(mu); null: not connected
  std::atomic<int64_t> down_until_ms{0};
  std::string why;  // GUARDED_BY(mu): the failure that marked it down
  bool Down() const { return NowMs() < down_until_ms.load(std::memory_order_relaxed); }
};

// A membership view with its placement and connections.
struct ViewState {
  std::shared_ptr<const MembershipView> view;
  std::shared_ptr<const Placement> placement;
  std::vector<std::shared_ptr<NodeSlot>> slots;  // one per view->nodes
  std::vector<bool> local;                        // one per view->nodes
  std::shared_ptr<const ViewState> previous;      // the view before, if any
  int64_t since_ms = 0;
};

class ClusterClient final : public net::NodeClient {
 public:
  ClusterClient(std::unique_ptr<MembershipSource> source, const ClusterClientOptions& options,
                std::unique_ptr<EtcdClient> etcd, std::string cluster)
      : source_(std::move(source)), options_(options), etcd_(std::move(etcd)), cluster_(std::move(cluster)) {
    if (options_.local_node.empty())
      if (const char* e = std::getenv("KVC_CLUSTER_LOCAL_NODE")) options_.local_node = e;
    local_hosts_ = LocalHosts();
    node_options_ = options_.node;
    node_options_.max_retries = 0;  // failover is ours
    node_options_.call_deadline = [] { return t_deadline; };
    node_options_.membership_epoch = [] { return t_epoch; };
    Install(source_->Current());
    // A source may call a callback it copied before Unsubscribe returned:
    // the guard keeps such a late call away from a destroyed client.
    guard_ = std::make_shared<Guard>();
    guard_->self = this;
    token_ = source_->Subscribe([g = guard_](std::shared_ptr<const MembershipView> v) {
      std::lock_guard<std::mutex> lk(g->mu);
      if (g->self) g->self->Install(std::move(v));
    });
  }
  ~ClusterClient() override {
    source_->Unsubscribe(token_);
    std::lock_guard<std::mutex> lk(guard_->mu);
    guard_->self = nullptr;
  }

  Result<std::string> StatsJson() override;
  Result<size_t> Match(const net::NodeNamespace& ns, const std::vector<BlockKey>& keys,
                       std::vector<uint8_t>* tiers) override;
  Result<size_t> MatchTokens(const net::NodeNamespace& ns, const std::vector<uint32_t>& tokens,
                             std::vector<uint8_t>* tiers, std::vector<BlockKey>* keys) override;
  Status Get(const net::NodeNamespace& ns, const BlockKey& key, uint32_t shard, void* dst, uint64_t dst_cap,
             uint64_t* size) override;
  Status Put(const net::NodeNamespace& ns, const BlockKey& key, uint32_t shard, const void* src, uint64_t len,
             uint64_t ttl_ms, const BlockKey* parent) override;
  Status Delete(const net::NodeNamespace& ns, const BlockKey& key) override;
  Status GetBatch(const net::NodeNamespace& ns, uint32_t shard, std::span<net::GetItem> items) override;
  Status PutBatch(const net::NodeNamespace& ns, uint32_t shard, std::span<net::PutItem> items,
                  uint64_t ttl_ms) override;
  Result<uint64_t> BumpRevision(const net::NodeNamespace& ns, uint64_t cluster_count) override;
  Result<std::string> TenantCreate(const net::NodeTenantSpec& spec) override;
  Result<std::string> TenantListJson() override;
  Status TenantSetQuota(const std::string& name, int64_t host_quota_bytes, int64_t ssd_quota_bytes,
                        int32_t borrow) override;
  Status TenantDelete(const std::string& name) override;

 private:
  void Install(std::shared_ptr<const MembershipView> view);
  std::shared_ptr<const ViewState> State() const {
    std::lock_guard<std::mutex> lk(mu_);
    return state_;
  }
  Clock::time_point Deadline() const { return Clock::now() + std::chrono::milliseconds(options_.node.timeout_ms); }
  // The node's client, connecting it if needed. A node marked down:
  // KVC_ERR_UNAVAILABLE at once (*skipped set), or with `force` a quick TCP
  // probe first (it may have come back: a restart is faster than down_ms).
  Result<std::shared_ptr<net::NodeClient>> Acquire(NodeSlot& s, Clock::time_point deadline, bool force,
                                                   bool* skipped = nullptr);
  // Marks the node down for down_ms, dropping client `c` if it is current.
  void Fail(NodeSlot& s, const std::shared_ptr<net::NodeClient>& c, const Status& why);
  // The nodes that may hold `key`, in the order to read them.
  std::vector<NodeSlot*> ReadCandidates(const ViewState& st, const BlockKey& key) const;
  // Every node of the view (draining included), for calls made on all.
  std::vector<NodeSlot*> AllNodes(const ViewState& st) const;
  // Runs `fn(slot, client)` on each node in parallel within `deadline`;
  // one status per node (a node that cannot be reached: its failure).
  std::vector<Status> OnEach(const std::vector<NodeSlot*>& nodes, Clock::time_point deadline, uint64_t epoch,
                             const std::function<Status(net::NodeClient&, size_t)>& fn, bool force = true);
  // Delete, for the nodes of `ids` (given a hint, outside the view) that
  // are registered now: the delete sent to each directly.
  Status DeleteOnLateNodes(const std::set<std::string>& ids, const net::NodeNamespace& ns, const BlockKey& key,
                           Clock::time_point deadline);
  // The status of a call made on several nodes that needs all of them.
  static Status AllOf(const std::vector<NodeSlot*>& nodes, const std::vector<Status>& res, const char* what);
  // The id of the node at `s` in the view or the one before ("" if none).
  static std::string IdOf(const ViewState& st, const NodeSlot* s);
  // The tenant the cluster configuration files this client's calls under.
  const std::string& TenantName() const {
    return options_.node.tenant.empty() ? options_.node.as_tenant : options_.node.tenant;
  }
  uint32_t EtcdMs(Clock::time_point deadline) const {
    return static_cast<uint32_t>(std::max<int64_t>(1, MsLeft(deadline)));
  }

  struct Guard {
    std::mutex mu;
    ClusterClient* self = nullptr;  // GUARDED_BY(mu); null once destroyed
  };

  std::unique_ptr<MembershipSource> source_;
  std::shared_ptr<Guard> guard_;
  ClusterClientOptions options_;
  std::unique_ptr<EtcdClient> etcd_;  // null: no cluster configuration (static peers)
  std::string cluster_;               // the etcd cluster's name
  net::NodeClientOptions node_options_;
  std::set<std::string> local_hosts_;
  uint64_t token_ = 0;
  std::atomic<uint64_t> spread_{0};

  mutable std::mutex mu_;
  std::shared_ptr<const ViewState> state_;                    // GUARDED_BY(mu_)
  std::map<std::string, std::shared_ptr<NodeSlot>> slots_;   // GUARDED_BY(mu_), by address
};

void ClusterClient::Install(std::shared_ptr<const MembershipView> view) {
  if (!view) return;
  auto st = std::make_shared<ViewState>();
  st->view = view;
  st->placement = std::make_shared<const Placement>(view);
  st->since_ms = NowMs();
  std::string host, port;
  std::lock_guard<std::mutex> lk(mu_);
  if (state_ && state_->view->epoch > view->epoch) return;  // an older view arrived late
  for (const auto& n : view->nodes) {
    auto& slot = slots_[n.address];
    if (!slot) slot = std::make_shared<NodeSlot>(n.address);
    st->slots.push_back(slot);
    bool local = false;
    if (!options_.local_node.empty())
      local = n.id == options_.local_node || n.address == options_.local_node;
    else if (SplitAddress(n.address, &host, &port))
      local = local_hosts_.count(host) > 0;
    st->local.push_back(local);
  }
  if (state_) {
    // Keep one view back (not a chain): reads try its owners for a while.
    auto prev = std::make_shared<ViewState>(*state_);
    prev->previous.reset();
    st->previous = std::move(prev);
  }
  state_ = std::move(st);
}

Result<std::shared_ptr<net::NodeClient>> ClusterClient::Acquire(NodeSlot& s, Clock::time_point deadline, bool force,
                                                                bool* skipped) {
  {
    std::lock_guard<std::mutex> lk(s.mu);
    if (s.client) return s.client;
  }
  const bool down = s.Down();
  if (down && !force) {
    if (skipped) *skipped = true;
    std::lock_guard<std::mutex> lk(s.mu);
    return Status(Code::kUnavailable, "node " + s.address + " failed less than " + std::to_string(options_.down_ms) +
                                          " ms ago (" + s.why + ")");
  }
  const int64_t left = MsLeft(deadline);
  if (left <= 0) return Status(Code::kTimeout, "the deadline passed before node " + s.address + " was asked");
  net::NodeClientOptions o = node_options_;
  o.connect_timeout_ms = static_cast<uint32_t>(std::min<int64_t>(o.connect_timeout_ms, left));
  const int probe_ms = static_cast<int>(down ? std::min<int64_t>(kDownProbeMs, o.connect_timeout_ms) : o.connect_timeout_ms);
  if (!TcpReachable(s.address, probe_ms)) {
    Status st(Code::kUnavailable, "node " + s.address + " refuses connections");
    Fail(s, nullptr, st);
    return st;
  }
  auto c = net::ConnectGrpc(s.address, o);
  if (!c.ok()) {
    Fail(s, nullptr, c.status());
    return c.status();
  }
  std::lock_guard<std::mutex> lk(s.mu);
  if (!s.client) s.client = std::shared_ptr<net::NodeClient>(std::move(*c));
  s.down_until_ms = 0;
  return s.client;
}

void ClusterClient::Fail(NodeSlot& s, const std::shared_ptr<net::NodeClient>& c, const Status& why) {
  s.down_until_ms = NowMs() + options_.down_ms;
  std::lock_guard<std::mutex> lk(s.mu);
  s.why = why.ToString();
  if (c && s.client == c) s.client.reset();  // a fresh channel next time, no gRPC back-off
}

std::vector<NodeSlot*> ClusterClient::ReadCandidates(const ViewState& st, const BlockKey& key) const {
  std::vector<uint32_t> idx;
  std::vector<NodeSlot*> out;
  std::vector<bool> local;
  st.placement->ReadOrder(key, &idx);
  for (uint32_t i : idx) {
    out.push_back(st.slots[i].get());
    local.push_back(st.local[i]);
  }
  // The local node first among the current owners.
  for (size_t j = 1; j < out.size(); ++j)
    if (local[j] && !local[0]) {
      std::rotate(out.begin(), out.begin() + j, out.begin() + j + 1);
      break;
    }
  if (st.previous && NowMs() - st.since_ms < kPreviousViewMs) {
    st.previous->placement->ReadOrder(key, &idx);
    for (uint32_t i : idx) {
      NodeSlot* s = st.previous->slots[i].get();
      if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
    }
  }
  std::stable_partition(out.begin(), out.end(), [](NodeSlot* s) { return !s->Down(); });
  return out;
}

std::vector<NodeSlot*> ClusterClient::AllNodes(const ViewState& st) const {
  std::vector<NodeSlot*> out;
  for (const auto& s : st.slots) out.push_back(s.get());
  return out;
}

std::vector<Status> ClusterClient::OnEach(const std::vector<NodeSlot*>& nodes, Clock::time_point deadline,
                                          uint64_t epoch,
                                          const std::function<Status(net::NodeClient&, size_t)>& fn, bool force) {
  std::vector<Status> res(nodes.size());
  auto one = [&](size_t j) {
    auto c = Acquire(*nodes[j], deadline, force);
    if (!c.ok()) {
      res[j] = c.status();
      return;
    }
    t_deadline = deadline;
    t_epoch = epoch;
    res[j] = fn(**c, j);
    t_deadline = {};
    t_epoch = 0;
    if (Transient(res[j].code())) Fail(*nodes[j], *c, res[j]);
  };
  std::vector<std::future<void>> rest;
  for (size_t j = 1; j < nodes.size(); ++j) rest.push_back(std::async(std::launch::async, one, j));
  if (!nodes.empty()) one(0);
  for (auto& f : rest) f.get();
  return res;
}

Status ClusterClient::AllOf(const std::vector<NodeSlot*>& nodes, const std::vector<Status>& res, const char* what) {
  size_t done = 0;
  std::string failed, why;
  Code code = Code::kOk;
  for (size_t j = 0; j < res.size(); ++j) {
    if (res[j].ok() || res[j].code() == Code::kNotFound) {
      ++done;
      continue;
    }
    if (code == Code::kOk || (Transient(code) && !Transient(res[j].code()))) code = res[j].code();
    failed += (failed.empty() ? "" : ", ") + nodes[j]->address;
    why += "; node " + nodes[j]->address + ": " + res[j].message();
  }
  if (done == res.size()) return Status::Ok();
  // The nodes first, then their reasons (which can be long).
  return Status(code, std::string(what) + " done on " + std::to_string(done) + " of " + std::to_string(res.size()) +
                          " nodes (not on " + failed + ")" + why);
}

std::string ClusterClient::IdOf(const ViewState& st, const NodeSlot* s) {
  for (const ViewState* v : {&st, st.previous.get()}) {
    if (v == nullptr) continue;
    for (size_t i = 0; i < v->slots.size(); ++i)
      if (v->slots[i].get() == s) return v->view->nodes[i].id;
  }
  return "";
}

namespace {

// A store's outcome from its replicas' answers (res[j] from nodes[j]): OK
// once w of them acknowledged (EXISTS counts; EXISTS when all that did said
// so), else why not, the most telling failure first (an answer such as
// QUOTA before a node that could not be reached). *fenced: how many
// replicas answered KVC_ERR_FENCED.
Status QuorumOutcome(const std::vector<NodeSlot*>& nodes, const std::vector<Status>& res, uint32_t r, uint32_t w,
                     Clock::time_point deadline, size_t* fenced) {
  size_t acks = 0, exists = 0;
  *fenced = 0;
  for (const auto& s : res) {
    acks += s.ok() || s.code() == Code::kExists;
    exists += s.code() == Code::kExists;
    *fenced += s.code() == Code::kFenced;
  }
  if (acks >= w) return exists == acks ? Status(Code::kExists, "the block is already stored") : Status::Ok();
  Code code = Code::kOk;
  std::string why;
  for (size_t j = 0; j < res.size(); ++j) {
    if (res[j].ok() || res[j].code() == Code::kExists) continue;
    const Code c = res[j].code();
    if (code == Code::kOk || c == Code::kFenced || (Transient(code) && !Transient(c) && code != Code::kFenced))
      code = c;
    why += "; node " + nodes[j]->address + ": " + res[j].message();
  }
  if (MsLeft(deadline) <= 0 && Transient(code)) code = Code::kTimeout;
  return Status(code, "stored on " + std::to_string(acks) + " of the " + std::to_string(w) +
                          " replica(s) a commit needs (R=" + std::to_string(r) + ")" + why);
}

}  // namespace

Status ClusterClient::Put(const net::NodeNamespace& ns, const BlockKey& key, uint32_t shard, const void* src,
                          uint64_t len, uint64_t ttl_ms, const BlockKey* parent) {
  const auto deadline = Deadline();
  std::vector<uint32_t> idx;
  for (int attempt = 0;; ++attempt) {
    auto st = State();
    st->placement->WriteReplicas(key, &idx);
    const uint32_t r = st->view->config.replication;
    const uint32_t w = std::clamp<uint32_t>(st->view->config.write_quorum, 1, std::max<uint32_t>(r, 1));
    if (idx.size() < w)
      return Status(Code::kUnavailable, "a store needs " + std::to_string(w) + " replica(s) but only " +
                                            std::to_string(idx.size()) + " node(s) are up for writes");
    std::vector<NodeSlot*> nodes;
    size_t up = 0;
    for (uint32_t i : idx) {
      nodes.push_back(st->slots[i].get());
      up += !nodes.back()->Down();
    }
    // Replicas marked down are skipped, unless the quorum needs them.
    auto res = OnEach(
        nodes, deadline, st->view->epoch,
        [&](net::NodeClient& c, size_t) { return c.Put(ns, key, shard, src, len, ttl_ms, parent); }, up < w);
    size_t fenced = 0;
    Status out = QuorumOutcome(nodes, res, r, w, deadline, &fenced);
    if (out.ok() || out.code() == Code::kExists) return out;
    if (fenced && attempt < 3 && MsLeft(deadline) > 0) {
      // A replica knows a newer membership: catch up and place again.
      auto v = source_->Refresh(static_cast<uint32_t>(MsLeft(deadline)));
      if (v && v->epoch > st->view->epoch) {
        Install(v);
        continue;
      }
    }
    return out;
  }
}

Status ClusterClient::Get(const net::NodeNamespace& ns, const BlockKey& key, uint32_t shard, void* dst,
                          uint64_t dst_cap, uint64_t* size) {
  const auto deadline = Deadline();
  auto st = State();
  bool answered = false;
  Status last(Code::kUnavailable, "no node holds this key");
  // The candidates in order; then those skipped as down (they may be back).
  const std::vector<NodeSlot*> first = ReadCandidates(*st, key);
  std::vector<NodeSlot*> later;
  for (int pass = 0; pass < 2; ++pass) {
    for (NodeSlot* s : pass == 0 ? first : later) {
      if (MsLeft(deadline) <= 0) {
        if (!answered) last = Status(Code::kTimeout, "the deadline passed during failover: " + last.message());
        return answered ? NotFound() : last;
      }
      bool skipped = false;
      auto c = Acquire(*s, deadline, pass == 1, &skipped);
      if (skipped) later.push_back(s);
      if (!c.ok()) {
        last = c.status();
        continue;
      }
      t_deadline = deadline;
      Status r = (*c)->Get(ns, key, shard, dst, dst_cap, size);
      t_deadline = {};
      if (r.ok()) return r;
      if (r.code() == Code::kNotFound) {
        answered = true;
        continue;
      }
      if (r.code() == Code::kCorrupt) {  // that copy is bad: another replica may be whole
        last = r;
        continue;
      }
      if (!Transient(r.code())) return r;
      Fail(*s, *c, r);
      last = r;
    }
  }
  return answered ? NotFound() : last;
}

namespace {

// Runs fn(j) for every j < n at once: the first on this thread, each other
// on a thread of its own.
void Parallel(size_t n, const std::function<void(size_t)>& fn) {
  std::vector<std::future<void>> rest;
  for (size_t j = 1; j < n; ++j) rest.push_back(std::async(std::launch::async, fn, j));
  if (n) fn(0);
  for (auto& f : rest) f.get();
}

// The call's status from its items': the first item that failed the call
// (one the nodes refused before one no node could answer), else Ok.
Status BatchStatus(std::span<const Status* const> items) {
  const Status* first = nullptr;
  for (const Status* s : items) {
    if (!net::FailsBatchCall(s->code())) continue;
    if (first == nullptr || (Transient(first->code()) && !Transient(s->code()))) first = s;
  }
  return first ? *first : Status::Ok();
}

}  // namespace

Status ClusterClient::GetBatch(const net::NodeNamespace& ns, uint32_t shard, std::span<net::GetItem> items) {
  if (items.size() > net::kMaxBatchItems) return net::TooManyBatchItems(items.size());
  const auto deadline = Deadline();
  auto st = State();
  const size_t n = items.size();
  // Each item's nodes in Get's order: its candidates, then those skipped as
  // down (tried again with a probe, as Get's second pass).
  struct Try {
    NodeSlot* slot;
    bool force;
  };
  std::vector<std::vector<Try>> tries(n);
  std::vector<size_t> pos(n, 0);
  std::vector<uint8_t> done(n, 0), answered(n, 0);
  std::vector<Status> last(n, Status(Code::kUnavailable, "no node holds this key"));
  for (size_t i = 0; i < n; ++i) {
    items[i].size = 0;
    for (NodeSlot* s : ReadCandidates(*st, items[i].key)) tries[i].push_back({s, false});
  }
  for (;;) {
    // The unresolved items, grouped by the node each is to ask next: one
    // batch per node, the nodes in parallel.
    std::map<std::pair<NodeSlot*, bool>, std::vector<size_t>> groups;
    for (size_t i = 0; i < n; ++i)
      if (!done[i] && pos[i] < tries[i].size()) groups[{tries[i][pos[i]].slot, tries[i][pos[i]].force}].push_back(i);
    if (groups.empty()) break;
    if (MsLeft(deadline) <= 0) {
      for (auto& [key, m] : groups)
        for (size_t i : m)
          if (!answered[i]) last[i] = Status(Code::kTimeout, "the deadline passed during failover: " + last[i].message());
      break;
    }
    std::vector<std::pair<std::pair<NodeSlot*, bool>, std::vector<size_t>>> jobs(groups.begin(), groups.end());
    // Each item is in one job: a job touches only its own items' entries.
    Parallel(jobs.size(), [&](size_t j) {
      NodeSlot& s = *jobs[j].first.first;
      const std::vector<size_t>& m = jobs[j].second;
      bool skipped = false;
      auto c = Acquire(s, deadline, jobs[j].first.second, &skipped);
      if (!c.ok()) {
        for (size_t i : m) {
          if (skipped) tries[i].push_back({&s, true});
          last[i] = c.status();
          ++pos[i];
        }
        return;
      }
      std::vector<net::GetItem> sub(m.size());
      for (size_t k = 0; k < m.size(); ++k) {
        sub[k].key = items[m[k]].key;
        sub[k].dst = items[m[k]].dst;
        sub[k].cap = items[m[k]].cap;
      }
      t_deadline = deadline;
      Status r = (*c)->GetBatch(ns, shard, sub);
      t_deadline = {};
      for (size_t k = 0; k < m.size(); ++k) {
        const size_t i = m[k];
        const Status& s_i = sub[k].status;
        if (s_i.ok() || (!Transient(s_i.code()) && s_i.code() != Code::kNotFound && s_i.code() != Code::kCorrupt)) {
          // Found, or an answer another replica would give too (kLayout,
          // a refusal): as Get, the item's outcome.
          items[i].status = s_i;
          items[i].size = sub[k].size;
          done[i] = 1;
          continue;
        }
        if (s_i.code() == Code::kNotFound)
          answered[i] = 1;
        else
          last[i] = s_i;  // a bad copy, or the node failed: the next replica
        ++pos[i];
      }
      if (Transient(r.code())) Fail(s, *c, r);
    });
  }
  std::vector<const Status*> out(n);
  for (size_t i = 0; i < n; ++i) {
    if (!done[i]) items[i].status = answered[i] ? NotFound() : last[i];
    out[i] = &items[i].status;
  }
  return BatchStatus(out);
}

Status ClusterClient::PutBatch(const net::NodeNamespace& ns, uint32_t shard, std::span<net::PutItem> items,
                               uint64_t ttl_ms) {
  if (items.size() > net::kMaxBatchItems) return net::TooManyBatchItems(items.size());
  const auto deadline = Deadline();
  std::vector<size_t> todo(items.size());
  std::iota(todo.begin(), todo.end(), size_t{0});
  for (int attempt = 0; !todo.empty(); ++attempt) {
    auto st = State();
    const uint32_t r = st->view->config.replication;
    const uint32_t w = std::clamp<uint32_t>(st->view->config.write_quorum, 1, std::max<uint32_t>(r, 1));
    // Each item's write replicas; the items grouped by replica, one batch
    // per node, the nodes in parallel. A node marked down is skipped unless
    // an item of its batch needs it for its quorum.
    std::vector<std::vector<uint32_t>> reps(items.size());
    std::vector<std::vector<Status>> res(items.size());
    std::map<uint32_t, std::vector<std::pair<size_t, size_t>>> groups;  // node -> (item, replica #)
    std::map<uint32_t, bool> force;
    std::vector<size_t> placed;
    std::vector<uint32_t> idx;
    for (size_t i : todo) {
      st->placement->WriteReplicas(items[i].key, &idx);
      if (idx.size() < w) {
        items[i].status = Status(Code::kUnavailable, "a store needs " + std::to_string(w) + " replica(s) but only " +
                                                         std::to_string(idx.size()) + " node(s) are up for writes");
        continue;
      }
      placed.push_back(i);
      reps[i] = idx;
      res[i].assign(idx.size(), Status(Code::kInternal, "not answered"));
      size_t up = 0;
      for (uint32_t x : idx) up += !st->slots[x]->Down();
      for (size_t k = 0; k < idx.size(); ++k) {
        groups[idx[k]].push_back({i, k});
        force[idx[k]] = force[idx[k]] || up < w;
      }
    }
    std::vector<std::pair<uint32_t, std::vector<std::pair<size_t, size_t>>>> jobs(groups.begin(), groups.end());
    const uint64_t epoch = st->view->epoch;
    Parallel(jobs.size(), [&](size_t j) {
      NodeSlot& s = *st->slots[jobs[j].first];
      const auto& m = jobs[j].second;
      auto c = Acquire(s, deadline, force.at(jobs[j].first));
      if (!c.ok()) {
        for (const auto& [i, k] : m) res[i][k] = c.status();
        return;
      }
      std::vector<net::PutItem> sub(m.size());
      for (size_t q = 0; q < m.size(); ++q) {
        const net::PutItem& it = items[m[q].first];
        sub[q].key = it.key;
        sub[q].src = it.src;
        sub[q].len = it.len;
        sub[q].parent = it.parent;
      }
      t_deadline = deadline;
      t_epoch = epoch;
      Status rs = (*c)->PutBatch(ns, shard, sub, ttl_ms);
      t_deadline = {};
      t_epoch = 0;
      for (size_t q = 0; q < m.size(); ++q) res[m[q].first][m[q].second] = sub[q].status;
      if (Transient(rs.code())) Fail(s, *c, rs);
    });
    std::vector<size_t> fenced_items;
    for (size_t i : placed) {
      std::vector<NodeSlot*> nodes;
      for (uint32_t x : reps[i]) nodes.push_back(st->slots[x].get());
      size_t fenced = 0;
      items[i].status = QuorumOutcome(nodes, res[i], r, w, deadline, &fenced);
      if (!items[i].status.ok() && items[i].status.code() != Code::kExists && fenced) fenced_items.push_back(i);
    }
    todo.clear();
    if (!fenced_items.empty() && attempt < 3 && MsLeft(deadline) > 0) {
      // A replica knows a newer membership: catch up and place those again.
      auto v = source_->Refresh(static_cast<uint32_t>(std::max<int64_t>(1, MsLeft(deadline))));
      if (v && v->epoch > st->view->epoch) {
        Install(v);
        todo = std::move(fenced_items);
      }
    }
  }
  std::vector<const Status*> out(items.size());
  for (size_t i = 0; i < items.size(); ++i) out[i] = &items[i].status;
  return BatchStatus(out);
}

Result<size_t> ClusterClient::Match(const net::NodeNamespace& ns, const std::vector<BlockKey>& keys,
                                    std::vector<uint8_t>* tiers) {
  if (keys.size() > net::kMaxMatchKeys) return InvalidArgument("more than " + std::to_string(net::kMaxMatchKeys) + " keys");
  const auto deadline = Deadline();
  auto st = State();
  const size_t n = keys.size();
  std::vector<std::vector<NodeSlot*>> cands(n);
  for (size_t i = 0; i < n; ++i) cands[i] = ReadCandidates(*st, keys[i]);
  std::vector<size_t> pos(n, 0);
  std::vector<uint8_t> present(n, 0), tier(n, 0);
  size_t absent = n;  // the first key no candidate holds
  bool answered = false;
  Status last = Status::Ok();
  while (MsLeft(deadline) > 0) {
    size_t f = 0;
    while (f < n && present[f]) ++f;
    for (size_t i = f; i < absent; ++i)
      if (!present[i] && pos[i] >= cands[i].size()) absent = i;
    if (f >= absent) break;
    // The unresolved keys, each to its current candidate, in chain order.
    std::map<NodeSlot*, std::vector<size_t>> groups;
    for (size_t i = f; i < absent; ++i)
      if (!present[i]) groups[cands[i][pos[i]]].push_back(i);
    std::vector<NodeSlot*> nodes;
    std::vector<std::vector<size_t>*> members;
    for (auto& [s, m] : groups) {
      nodes.push_back(s);
      members.push_back(&m);
    }
    std::vector<size_t> matched(nodes.size(), 0);
    std::vector<std::vector<uint8_t>> got(nodes.size());
    auto res = OnEach(nodes, deadline, 0, [&](net::NodeClient& c, size_t j) {
      std::vector<BlockKey> sub;
      for (size_t i : *members[j]) sub.push_back(keys[i]);
      auto m = c.Match(ns, sub, &got[j]);
      if (m.ok()) matched[j] = *m;
      return m.status();
    });
    for (size_t j = 0; j < nodes.size(); ++j) {
      const auto& m = *members[j];
      if (res[j].ok()) {
        answered = true;
        for (size_t k = 0; k < matched[j] && k < m.size(); ++k) {
          present[m[k]] = 1;
          tier[m[k]] = k < got[j].size() ? got[j][k] : 0;
        }
        if (matched[j] < m.size()) ++pos[m[matched[j]]];  // absent there; keys after it: unknown
      } else if (Transient(res[j].code())) {
        last = res[j];
        for (size_t i : m) ++pos[i];
      } else {
        return res[j];
      }
    }
  }
  size_t lead = 0;
  while (lead < n && present[lead]) ++lead;
  if (!answered && n > 0 && lead == 0 && !last.ok()) return last;
  if (tiers) {
    tiers->assign(n, 0);
    for (size_t i = 0; i < lead; ++i) (*tiers)[i] = tier[i];
  }
  return lead;
}

Result<size_t> ClusterClient::MatchTokens(const net::NodeNamespace& ns, const std::vector<uint32_t>& tokens,
                                          std::vector<uint8_t>* tiers, std::vector<BlockKey>* keys) {
  // Any node hashes the tokens (an isolated tenant's salt lives on the
  // nodes, not here); then the keys are matched on their owners.
  const auto deadline = Deadline();
  auto st = State();
  const size_t n = st->slots.size();
  std::vector<NodeSlot*> order;
  for (size_t j = 0; j < n; ++j)
    if (st->local[j]) order.push_back(st->slots[j].get());
  const size_t start = n ? spread_.fetch_add(1, std::memory_order_relaxed) % n : 0;
  for (size_t j = 0; j < n; ++j) {
    NodeSlot* s = st->slots[(start + j) % n].get();
    if (std::find(order.begin(), order.end(), s) == order.end()) order.push_back(s);
  }
  std::stable_partition(order.begin(), order.end(), [](NodeSlot* s) { return !s->Down(); });
  Status last(Code::kUnavailable, "the cluster has no node");
  for (NodeSlot* s : order) {
    if (MsLeft(deadline) <= 0) return Status(Code::kTimeout, "the deadline passed: " + last.message());
    auto c = Acquire(*s, deadline, true);
    if (!c.ok()) {
      last = c.status();
      continue;
    }
    std::vector<BlockKey> k;
    t_deadline = deadline;
    auto r = (*c)->MatchTokens(ns, tokens, nullptr, &k);
    t_deadline = {};
    if (!r.ok()) {
      if (!Transient(r.status().code())) return r.status();
      Fail(*s, *c, r.status());
      last = r.status();
      continue;
    }
    auto m = Match(ns, k, tiers);
    if (keys) *keys = std::move(k);
    return m;
  }
  return last;
}

Status ClusterClient::Delete(const net::NodeNamespace& ns, const BlockKey& key) {
  const auto deadline = Deadline();
  auto st = State();
  if (!etcd_) {
    // Static peers: the read order only (no roster to reach the others).
    std::vector<NodeSlot*> nodes = ReadCandidates(*st, key);
    auto res = OnEach(nodes, deadline, 0, [&](net::NodeClient& c, size_t) { return c.Delete(ns, key); });
    KVC_RETURN_IF_ERROR(AllOf(nodes, res, "delete"));
    for (const auto& s : res)
      if (s.ok()) return Status::Ok();
    return NotFound();
  }
  // With etcd: every node of the view (a node that held the key under an
  // older placement may still have it; deletes are rare, so the fan-out is
  // cheap), plus the previous view's owners of the key; then a hint for
  // every node of the roster that did not answer, in or out of the view.
  // The node calls leave part of the budget for etcd.
  const auto node_deadline =
      deadline - std::chrono::milliseconds(std::min<int64_t>(kHintReserveMs, options_.node.timeout_ms / 4));
  std::vector<NodeSlot*> nodes = AllNodes(*st);
  for (NodeSlot* s : ReadCandidates(*st, key))
    if (std::find(nodes.begin(), nodes.end(), s) == nodes.end()) nodes.push_back(s);
  // The roster is read while the nodes work.
  auto roster_f = std::async(std::launch::async, [&] { return ReadRoster(*etcd_, cluster_, EtcdMs(deadline)); });
  auto res = OnEach(nodes, node_deadline, 0, [&](net::NodeClient& c, size_t) { return c.Delete(ns, key); });
  auto roster = roster_f.get();

  std::set<std::string> answered;  // node ids that said OK or not found
  std::vector<std::string> targets;  // the ids to leave a hint
  std::string refused;
  bool any_ok = false;
  for (size_t j = 0; j < nodes.size(); ++j) {
    const std::string id = IdOf(*st, nodes[j]);
    if (res[j].ok() || res[j].code() == Code::kNotFound) {
      any_ok = any_ok || res[j].ok();
      if (!id.empty()) answered.insert(id);
    } else if (!Transient(res[j].code())) {
      refused += (refused.empty() ? "" : ", ") + nodes[j]->address;
    }
  }
  if (!refused.empty()) {
    // A refusal (a wrong credential, a bad namespace) is the caller's: no
    // hint, which every node would apply whoever asked.
    const Status all = AllOf(nodes, res, "delete");
    return Status(all.code(), "the delete was refused by node(s) " + refused + " (no hint was written); " +
                                  all.message());
  }
  std::string unhinted;
  for (size_t j = 0; j < nodes.size(); ++j) {
    if (!Transient(res[j].code())) continue;
    const std::string id = IdOf(*st, nodes[j]);
    if (id.empty())
      unhinted += "; no hint for node " + nodes[j]->address + ": it is in no view";
    else if (std::find(targets.begin(), targets.end(), id) == targets.end())
      targets.push_back(id);
  }
  if (roster.ok()) {
    for (const auto& e : *roster)
      if (!answered.count(e.id) && std::find(targets.begin(), targets.end(), e.id) == targets.end()) {
        targets.push_back(e.id);
      }
  }
  Status hints = Status::Ok();
  if (!targets.empty())
    hints = WriteDeleteHints(*etcd_, cluster_, targets, DeleteHint{TenantName(), ns, key}, EtcdMs(deadline));
  std::string ids;
  for (const auto& t : targets) ids += (ids.empty() ? "" : ", ") + t;
  if (!roster.ok() || !hints.ok()) {
    // Nodes outside the view may still hold the block, with nothing to tell
    // them: the delete is not done.
    const Status& why = !roster.ok() ? roster.status() : hints;
    std::string msg = !roster.ok() ? "the roster of nodes could not be read from etcd, so nodes outside the "
                                     "view may keep the block"
                                   : "the delete hint(s) for node(s) " + ids + " could not be written to etcd";
    Status all = AllOf(nodes, res, "delete");
    if (!all.ok()) msg += "; " + all.message();
    msg += "; etcd: " + why.message() + unhinted;
    return Status(Code::kUnavailable, msg);
  }
  // A node away that registered while this ran may have listed its hints
  // before they were written: ask it directly (its watch would take the
  // hint up too, but only a moment after it serves).
  std::set<std::string> in_view;
  for (const auto& n : st->view->nodes) in_view.insert(n.id);
  std::set<std::string> away;
  for (const auto& t : targets)
    if (!in_view.count(t)) away.insert(t);
  if (!away.empty()) {
    Status late = DeleteOnLateNodes(away, ns, key, deadline);
    if (!late.ok()) {
      std::string msg = "a hint was left in etcd for node(s) " + ids + "; " + late.message();
      Status all = AllOf(nodes, res, "delete");
      if (!all.ok()) msg += "; " + all.message();
      return Status(late.code(), msg + unhinted);
    }
  }
  Status all = AllOf(nodes, res, "delete");
  if (!all.ok()) {
    // What was done first: the nodes' reasons can be long (kvc_error keeps
    // 255 bytes).
    std::string msg;
    if (!targets.empty())
      msg = "a hint was left in etcd for node(s) " + ids +
            ", which take the delete up when they return (a restarted node before it serves); ";
    return Status(all.code(), msg + all.message() + unhinted);
  }
  // Every node of the view answered; the roster's other nodes apply their
  // hints before they serve again.
  return any_ok ? Status::Ok() : NotFound();
}

Status ClusterClient::DeleteOnLateNodes(const std::set<std::string>& ids, const net::NodeNamespace& ns,
                                        const BlockKey& key, Clock::time_point deadline) {
  auto reg = RegisteredAddresses(*etcd_, cluster_, EtcdMs(deadline));
  if (!reg.ok())
    return Status(Code::kUnavailable,
                  "cannot check in etcd whether those nodes registered meanwhile: " + reg.status().message());
  std::vector<std::shared_ptr<NodeSlot>> late;
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (const auto& [id, address] : *reg) {
      if (!ids.count(id)) continue;
      auto& slot = slots_[address];
      if (!slot) slot = std::make_shared<NodeSlot>(address);
      late.push_back(slot);
    }
  }
  if (late.empty()) return Status::Ok();
  std::vector<NodeSlot*> nodes;
  for (const auto& s : late) nodes.push_back(s.get());
  auto res = OnEach(nodes, deadline, 0, [&](net::NodeClient& c, size_t) { return c.Delete(ns, key); });
  Status all = AllOf(nodes, res, "the delete on nodes that registered while it ran");
  if (all.ok()) return all;
  return Status(all.code(), all.message() + " (each applies its hint from its watch)");
}

Result<uint64_t> ClusterClient::BumpRevision(const net::NodeNamespace& ns, uint64_t cluster_count) {
  const auto deadline = Deadline();
  uint64_t count = cluster_count;  // static peers: as given (0: a plain bump)
  auto st = State();
  auto nodes = AllNodes(*st);
  if (etcd_) {
    // Every node takes a counted bump up from etcd, whoever asked: a caller
    // the nodes refuse (a wrong credential, a bad namespace) must not get
    // one counted. One node checks the call first (a Match of no keys
    // authenticates and opens the namespace); none reachable: counted anyway.
    std::vector<NodeSlot*> order = nodes;
    std::stable_partition(order.begin(), order.end(), [](NodeSlot* s) { return !s->Down(); });
    for (NodeSlot* s : order) {
      if (MsLeft(deadline) <= 0) break;
      // A paused node must not take the whole deadline: a quarter, 1 s at most.
      const auto check_deadline =
          Clock::now() + std::chrono::milliseconds(std::min<int64_t>(MsLeft(deadline) / 4 + 1, 1000));
      auto c = Acquire(*s, check_deadline, true);
      if (!c.ok()) continue;
      t_deadline = check_deadline;
      auto m = (*c)->Match(ns, {}, nullptr);
      t_deadline = {};
      if (m.ok()) break;
      if (!Transient(m.status().code()))
        return Status(m.status().code(), "the revision bump was refused by node " + s->address +
                                             " (nothing was counted or bumped): " + m.status().message());
      Fail(*s, *c, m.status());
    }
    // The cluster's count of this namespace's bumps, in etcd: a node that
    // misses the call below applies it when it returns (config_sync.h).
    auto c = CountRevisionBump(*etcd_, cluster_, TenantName(), ns, EtcdMs(deadline));
    if (!c.ok()) {
      const Code code = Transient(c.status().code()) ? Code::kUnavailable : c.status().code();
      return Status(code, "the revision bump could not be counted in etcd, so no node was asked to bump: " +
                              c.status().message());
    }
    count = *c;
  }
  std::vector<uint64_t> epochs(nodes.size(), 0);
  auto res = OnEach(nodes, deadline, 0, [&](net::NodeClient& c, size_t j) {
    auto e = c.BumpRevision(ns, count);
    if (e.ok()) epochs[j] = *e;
    return e.status();
  });
  Status all = AllOf(nodes, res, "the revision bump");
  if (!all.ok() && etcd_)
    return Status(all.code(), "the bump is recorded in etcd (count " + std::to_string(count) +
                                  "): the nodes not reached take it up when they return (a restarted node "
                                  "before it serves); " + all.message());
  KVC_RETURN_IF_ERROR(all);
  return *std::max_element(epochs.begin(), epochs.end());
}

Result<std::string> ClusterClient::StatsJson() {
  const auto deadline = Deadline();
  auto st = State();
  auto nodes = AllNodes(*st);
  std::vector<std::string> out(nodes.size());
  auto res = OnEach(nodes, deadline, 0, [&](net::NodeClient& c, size_t j) {
    auto s = c.StatsJson();
    if (s.ok()) out[j] = std::move(*s);
    return s.status();
  });
  // The sums of the nodes' counters at the top (as one node's stats), and
  // each node under "cluster".
  nlohmann::json j = nlohmann::json::object(), list = nlohmann::json::array();
  size_t up = 0;
  for (size_t i = 0; i < nodes.size(); ++i) {
    const auto& info = st->view->nodes[i];
    nlohmann::json n = {{"id", info.id},
                        {"address", info.address},
                        {"zone", info.zone},
                        {"state", info.state == NodeState::kUp ? "up" : "draining"},
                        {"capacity_weight", st->placement->weight(static_cast<uint32_t>(i))},
                        {"reachable", res[i].ok()}};
    if (res[i].ok()) {
      auto s = nlohmann::json::parse(out[i], nullptr, false);
      if (!s.is_discarded()) {
        ++up;
        for (auto it = s.begin(); it != s.end(); ++it)
          if (it.value().is_number_unsigned()) j[it.key()] = j.value(it.key(), uint64_t{0}) + it.value().get<uint64_t>();
        n["stats"] = std::move(s);
      }
    } else {
      n["error"] = res[i].ToString();
    }
    list.push_back(std::move(n));
  }
  if (up == 0 && !nodes.empty()) return Status(Code::kUnavailable, "no node of the cluster answered: " + res[0].message());
  j["cluster"] = {{"epoch", st->view->epoch},
                  {"replication", st->view->config.replication},
                  {"write_quorum", st->view->config.write_quorum},
                  {"nodes_reachable", up},
                  {"nodes", std::move(list)}};
  return j.dump();
}

Result<std::string> ClusterClient::TenantCreate(const net::NodeTenantSpec& spec) {
  if (etcd_) {
    TenantConfig c;
    c.name = spec.name;
    if (!spec.isolation.empty()) {
      auto iso = TenantRegistry::ParseIsolation(spec.isolation);
      if (!iso.ok()) return iso.status();
      c.isolation = *iso;
    }
    c.host_quota_bytes = spec.host_quota_bytes;
    c.ssd_quota_bytes = spec.ssd_quota_bytes;
    c.borrow = spec.borrow;
    return ClusterTenantCreate(*etcd_, cluster_, std::move(c), options_.node.timeout_ms);
  }
  // Each node would mint its own credential: a cluster's tenants come from
  // its configuration (kvc cluster tenant), not from one call forwarded.
  return Status(Code::kUnsupported,
                "creating a tenant through a cluster address is not supported: each node would mint another "
                "credential; create it in the cluster configuration (kvc cluster tenant) or on each node");
}

Result<std::string> ClusterClient::TenantListJson() {
  if (etcd_) return ClusterTenantListJson(*etcd_, cluster_, options_.node.timeout_ms);
  const auto deadline = Deadline();
  auto st = State();
  Status last(Code::kUnavailable, "the cluster has no node");
  for (NodeSlot* s : AllNodes(*st)) {
    std::string out;
    auto res = OnEach({s}, deadline, 0, [&](net::NodeClient& c, size_t) {
      auto r = c.TenantListJson();
      if (r.ok()) out = std::move(*r);
      return r.status();
    });
    if (res[0].ok()) return out;
    if (!Transient(res[0].code())) return res[0];
    last = res[0];
  }
  return last;
}

Status ClusterClient::TenantSetQuota(const std::string& name, int64_t host_quota_bytes, int64_t ssd_quota_bytes,
                                     int32_t borrow) {
  if (etcd_) {
    if (borrow > 1) return InvalidArgument("borrow must be -1 (keep), 0 or 1");
    std::optional<uint64_t> host, ssd;
    std::optional<bool> b;
    if (host_quota_bytes >= 0) host = static_cast<uint64_t>(host_quota_bytes);
    if (ssd_quota_bytes >= 0) ssd = static_cast<uint64_t>(ssd_quota_bytes);
    if (borrow >= 0) b = borrow == 1;
    return ClusterTenantSetQuota(*etcd_, cluster_, name, host, ssd, b, options_.node.timeout_ms);
  }
  auto st = State();
  auto nodes = AllNodes(*st);
  auto res = OnEach(nodes, Deadline(), 0, [&](net::NodeClient& c, size_t) {
    return c.TenantSetQuota(name, host_quota_bytes, ssd_quota_bytes, borrow);
  });
  return AllOf(nodes, res, "the quota change");
}

Status ClusterClient::TenantDelete(const std::string& name) {
  if (etcd_) return ClusterTenantDelete(*etcd_, cluster_, name, options_.node.timeout_ms);
  auto st = State();
  auto nodes = AllNodes(*st);
  auto res = OnEach(nodes, Deadline(), 0, [&](net::NodeClient& c, size_t) { return c.TenantDelete(name); });
  return AllOf(nodes, res, "the tenant deletion");
}

}  // namespace

Result<std::unique_ptr<net::NodeClient>> OpenClusterClient(std::unique_ptr<MembershipSource> source,
                                                           const ClusterClientOptions& options) {
  if (!source) return InvalidArgument("no membership source");
  auto view = source->Current();
  if (!view || view->nodes.empty()) return Status(Code::kUnavailable, "the cluster has no live node");
  std::unique_ptr<EtcdClient> etcd;
  std::string cluster;
  if (!options.etcd_address.empty()) {
#if KVC_HAVE_ETCD
    auto a = ParseEtcdAddress(options.etcd_address);
    if (!a.ok()) return a.status();
    auto e = EtcdClient::Create(a->endpoints);
    if (!e.ok()) return e.status();
    etcd = std::move(*e);
    cluster = a->cluster;
#else
    return Status(Code::kUnsupported, "this kvc was built without etcd membership");
#endif
  }
  return std::unique_ptr<net::NodeClient>(
      new ClusterClient(std::move(source), options, std::move(etcd), std::move(cluster)));
}

}  // namespace kvc::cluster

namespace kvc::net {

Result<std::unique_ptr<NodeClient>> ConnectCluster(const std::string& address, const NodeClientOptions& options) {
  Result<std::unique_ptr<cluster::MembershipSource>> source =
      address.rfind("etcd://", 0) == 0 ? cluster::EtcdMembership(address, options.connect_timeout_ms)
                                       : cluster::StaticMembership(address);
  if (!source.ok()) return source.status();
  cluster::ClusterClientOptions o;
  o.node = options;
  if (address.rfind("etcd://", 0) == 0) o.etcd_address = address;
  return cluster::OpenClusterClient(std::move(*source), o);
}

}  // namespace kvc::net
#endif  // KVC_NET_BUILD
