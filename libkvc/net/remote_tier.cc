// Compiled only into kvc_net (libkvc/net/CMakeLists.txt), which defines
// KVC_NET_BUILD; kvc_core's source glob sees an empty file.
#ifdef KVC_NET_BUILD
#include "net/remote_tier.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <span>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/key_hasher.h"
#include "net/node_client.h"

namespace kvc::net {
namespace {

// The most block bytes one batch of queued stores takes (and the sender
// holds off the queue's count); a quarter of the queue when that is less.
constexpr uint64_t kMaxBatchBytes = 16ull << 20;

class NodeRemoteTier final : public RemoteTier {
 public:
  NodeRemoteTier(const CacheOptions& o, uint64_t queue_capacity)
      : address_(o.remote_address),
        backoff_ms_(o.remote_backoff_ms),
        queue_capacity_(queue_capacity),
        batch_bytes_(std::min<uint64_t>(kMaxBatchBytes, queue_capacity / 4)) {
    base_.connect_timeout_ms = o.remote_timeout_ms;
    base_.timeout_ms = o.remote_timeout_ms;
    base_.tls_ca_path = o.remote_tls_ca_path;
    base_.max_retries = 1;  // idempotent calls only; NodeClient never retries a store
    default_id_ = Identity{o.remote_tenant, o.remote_credential};
    sender_ = std::thread([this] { SenderLoop(); });
  }

  ~NodeRemoteTier() override {
    {
      std::lock_guard<std::mutex> lk(q_mu_);
      stop_ = true;
    }
    q_cv_.notify_all();
    sender_.join();
  }

  std::string address() const override { return address_; }

  void SetIdentity(uint32_t tenant, const std::string& name, const std::string& credential) override {
    std::lock_guard<std::mutex> lk(ids_mu_);
    ids_[tenant] = Identity{name, credential};
  }

  Result<size_t> Match(const NamespaceState& ns, uint32_t tenant, std::span<const BlockKey> keys) override {
    auto c = ClientFor(tenant);
    if (!c.ok()) return Lookup(c.status());
    auto n = (*c)->Match(NodeNamespaceOf(ns.fields), std::vector<BlockKey>(keys.begin(), keys.end()), nullptr);
    if (!n.ok()) return Lookup(Outcome(n.status(), tenant));
    Up();
    hits_.fetch_add(*n, std::memory_order_relaxed);
    if (*n < keys.size()) misses_.fetch_add(1, std::memory_order_relaxed);
    return *n;
  }

  Status Get(const NamespaceState& ns, uint32_t tenant, const BlockKey& key, uint32_t shard, void* dst,
             uint64_t len) override {
    auto c = ClientFor(tenant);
    if (!c.ok()) return Lookup(c.status());
    uint64_t size = 0;
    Status s = (*c)->Get(NodeNamespaceOf(ns.fields), key, shard, dst, len, &size);
    return Answer(s, size, len, tenant);
  }

  // One NodeClient::GetBatch per kMaxBatchItems items; each item is then
  // counted and answered as Get answers it.
  void GetBatch(const NamespaceState& ns, uint32_t tenant, uint32_t shard, uint64_t len,
                std::span<RemoteGetItem> items) override {
    std::vector<GetItem> batch;
    for (size_t from = 0; from < items.size(); from += kMaxBatchItems) {
      auto chunk = items.subspan(from, std::min(kMaxBatchItems, items.size() - from));
      auto c = ClientFor(tenant);  // during the back-off: every item at once
      if (!c.ok()) {
        for (RemoteGetItem& it : chunk) it.status = Lookup(c.status());
        continue;
      }
      batch.assign(chunk.size(), GetItem{});
      for (size_t i = 0; i < chunk.size(); ++i) {
        batch[i].key = chunk[i].key;
        batch[i].dst = chunk[i].dst;
        batch[i].cap = len;
      }
      (void)(*c)->GetBatch(NodeNamespaceOf(ns.fields), shard, batch);  // unanswered items carry its failure
      for (size_t i = 0; i < chunk.size(); ++i) chunk[i].status = Answer(batch[i].status, batch[i].size, len, tenant);
    }
  }

  void Put(const NamespaceState& ns, uint32_t tenant, uint64_t epoch, const BlockKey& key, uint32_t shard,
           std::vector<uint8_t> bytes, uint64_t ttl_ms) override {
    {
      std::lock_guard<std::mutex> lk(q_mu_);
      if (queue_bytes_ + bytes.size() > queue_capacity_) {
        sends_dropped_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      queue_bytes_ += bytes.size();
      queue_.push_back(Item{&ns, tenant, epoch, key, shard, std::move(bytes), ttl_ms, ++last_seq_});
    }
    q_cv_.notify_all();
  }

  Status Delete(const NamespaceState& ns, uint32_t tenant, const BlockKey& key) override {
    Purge([&](const Item& it) { return it.ns == &ns && it.key == key; });
    std::lock_guard<std::mutex> send(send_mu_);  // a put of it being sent now has finished
    auto c = ClientFor(tenant);
    if (!c.ok()) return c.status();
    Status s = (*c)->Delete(NodeNamespaceOf(ns.fields), key);
    if (s.ok() || s.code() == Code::kNotFound) {
      Up();
      return s;
    }
    return Outcome(s, tenant);
  }

  Status BumpRevision(const NamespaceState& ns, uint32_t tenant) override {
    Purge([&](const Item& it) { return it.ns == &ns; });
    std::lock_guard<std::mutex> send(send_mu_);
    auto c = ClientFor(tenant);
    if (!c.ok()) return c.status();
    auto e = (*c)->BumpRevision(NodeNamespaceOf(ns.fields));
    if (e.ok()) {
      Up();
      return Status::Ok();
    }
    return Outcome(e.status(), tenant);
  }

  Status Flush() override {
    std::unique_lock<std::mutex> lk(q_mu_);
    const uint64_t target = last_seq_;
    q_cv_.wait(lk, [&] {
      const bool queued = !queue_.empty() && queue_.front().seq <= target;
      const bool sending = in_flight_seq_ != 0 && in_flight_seq_ <= target;
      return (!queued && !sending) || stop_;
    });
    return Status::Ok();
  }

  RemoteStats Stats() override {
    RemoteStats s;
    s.hits = hits_.load();
    s.misses = misses_.load();
    s.node_down = node_down_.load();
    s.refused = refused_.load();
    s.bytes_loaded = bytes_loaded_.load();
    s.sends = sends_.load();
    s.bytes_sent = bytes_sent_.load();
    s.sends_dropped = sends_dropped_.load();
    s.send_failures = send_failures_.load();
    s.connects = connects_.load();
    s.queue_capacity_bytes = queue_capacity_;
    std::lock_guard<std::mutex> lk(q_mu_);
    s.queue_bytes = queue_bytes_;
    return s;
  }

 private:
  struct Identity {
    std::string name, credential;
  };
  // One pooled connection per identity.
  struct Slot {
    std::mutex mu;
    std::shared_ptr<NodeClient> client;  // GUARDED_BY(mu)
    uint64_t gen = 0;                    // GUARDED_BY(mu): down_gen_ when it was opened
  };
  struct Item {
    const NamespaceState* ns;
    uint32_t tenant;
    uint64_t epoch;
    BlockKey key;
    uint32_t shard;
    std::vector<uint8_t> bytes;
    uint64_t ttl_ms;
    uint64_t seq;
  };

  bool BackingOff() const { return NowMs() < down_until_.load(std::memory_order_acquire); }

  Status DownStatus() const {
    return Status(Code::kUnavailable, "node " + address_ + " is down (backing off for " +
                                          std::to_string(backoff_ms_) + " ms after a failure)");
  }

  // The node failed: back off, and reopen every connection after it (a
  // fresh channel, not one in gRPC's own reconnect back-off).
  void Down(const Status& why) {
    down_until_.store(NowMs() + backoff_ms_, std::memory_order_release);
    down_gen_.fetch_add(1, std::memory_order_acq_rel);
    if (!logged_down_.exchange(true))
      std::fprintf(stderr, "kvc: remote tier: node %s: %s; lookups miss (node_down) until it answers again\n",
                   address_.c_str(), why.ToString().c_str());
  }

  void Up() {
    if (logged_down_.load(std::memory_order_relaxed) && logged_down_.exchange(false))
      std::fprintf(stderr, "kvc: remote tier: node %s answers again\n", address_.c_str());
  }

  // A get's outcome (the node's status and the block shard's size), counted.
  Status Answer(const Status& s, uint64_t size, uint64_t len, uint32_t tenant) {
    if (s.code() == Code::kNotFound) {
      Up();
      misses_.fetch_add(1, std::memory_order_relaxed);
      return s;
    }
    if (s.code() == Code::kLayout || (s.ok() && size != len)) {
      refused_.fetch_add(1, std::memory_order_relaxed);
      return Status(Code::kCorrupt, "node " + address_ + " holds the block shard with " + std::to_string(size) +
                                        " bytes, not the namespace's " + std::to_string(len));
    }
    if (!s.ok()) return Lookup(Outcome(s, tenant));
    Up();
    hits_.fetch_add(1, std::memory_order_relaxed);
    bytes_loaded_.fetch_add(len, std::memory_order_relaxed);
    return s;
  }

  // A lookup's failure, counted.
  Status Lookup(const Status& s) {
    if (IsNodeDown(s)) node_down_.fetch_add(1, std::memory_order_relaxed);
    return s;
  }

  // A call's failure: node down starts the back-off; a refusal is counted.
  Status Outcome(const Status& s, uint32_t tenant) {
    if (IsNodeDown(s)) {
      Down(s);
    } else if (s.code() == Code::kPermission) {
      refused_.fetch_add(1, std::memory_order_relaxed);
      if (!logged_refused_.exchange(true))
        std::fprintf(stderr, "kvc: remote tier: node %s refused the credential of tenant %s\n", address_.c_str(),
                     IdentityOf(tenant).name.empty() ? "(none)" : IdentityOf(tenant).name.c_str());
    } else {
      refused_.fetch_add(1, std::memory_order_relaxed);
    }
    return s;
  }

  Identity IdentityOf(uint32_t tenant) {
    if (tenant == 0) return default_id_;
    std::lock_guard<std::mutex> lk(ids_mu_);
    auto it = ids_.find(tenant);
    return it == ids_.end() ? default_id_ : it->second;
  }

  Result<std::shared_ptr<NodeClient>> ClientFor(uint32_t tenant) {
    if (BackingOff()) return DownStatus();
    const Identity id = IdentityOf(tenant);
    std::shared_ptr<Slot> slot;
    {
      std::lock_guard<std::mutex> lk(ids_mu_);
      auto& s = slots_[{id.name, id.credential}];
      if (!s) s = std::make_shared<Slot>();
      slot = s;
    }
    std::lock_guard<std::mutex> lk(slot->mu);
    const uint64_t gen = down_gen_.load(std::memory_order_acquire);
    if (slot->client && slot->gen == gen) return slot->client;
    slot->client.reset();  // opened before the last failure
    if (BackingOff()) return DownStatus();  // another thread's connect just failed
    NodeClientOptions o = base_;
    o.tenant = id.name;
    o.credential = id.credential;
    auto c = NodeClient::Connect(address_, o);
    if (!c.ok()) {
      Status s = c.status();
      if (s.code() != Code::kUnavailable && s.code() != Code::kTimeout)
        s = Status(Code::kUnavailable, s.message());  // a node we cannot use is a node that is down
      Down(s);
      return s;
    }
    connects_.fetch_add(1, std::memory_order_relaxed);
    slot->client = std::shared_ptr<NodeClient>(std::move(c).value());
    slot->gen = gen;
    return slot->client;
  }

  template <class Pred>
  void Purge(Pred pred) {
    {
      std::lock_guard<std::mutex> lk(q_mu_);
      for (auto it = queue_.begin(); it != queue_.end();) {
        if (pred(*it)) {
          queue_bytes_ -= it->bytes.size();
          it = queue_.erase(it);
        } else {
          ++it;
        }
      }
    }
    q_cv_.notify_all();
  }

  // Takes what is queued now (never waits for more: a store queued alone
  // goes out at once), up to kMaxBatchItems or batch_bytes_ (at least one
  // item), and sends it in runs of consecutive items of one identity,
  // namespace, shard and TTL: one PutBatch per run (a run of one is a Put).
  // Each item's bytes leave the queue's count as it is taken, as before
  // batches; what is in flight is at most batch_bytes_ (a quarter of the
  // queue, at most kMaxBatchBytes) or one item.
  void SenderLoop() {
    std::vector<Item> batch;
    for (;;) {
      {
        std::unique_lock<std::mutex> lk(q_mu_);
        q_cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
        if (stop_) return;
      }
      std::lock_guard<std::mutex> send(send_mu_);  // Delete/BumpRevision wait for the batch in flight
      batch.clear();
      {
        std::lock_guard<std::mutex> lk(q_mu_);
        if (queue_.empty()) continue;
        uint64_t bytes = 0;
        while (!queue_.empty() && batch.size() < kMaxBatchItems) {
          Item& front = queue_.front();
          if (!batch.empty() && bytes + front.bytes.size() > batch_bytes_) break;
          bytes += front.bytes.size();
          queue_bytes_ -= front.bytes.size();
          batch.push_back(std::move(front));
          queue_.pop_front();
        }
        in_flight_seq_ = batch.front().seq;  // the oldest: Flush waits while any is in flight
      }
      SendBatch(batch);
      batch.clear();  // the blocks' memory goes before Flush returns
      {
        std::lock_guard<std::mutex> lk(q_mu_);
        in_flight_seq_ = 0;
      }
      q_cv_.notify_all();
    }
  }

  void SendBatch(std::vector<Item>& batch) {
    // Stale items (their namespace's epoch moved on since) are not sent.
    std::vector<Item*> live;
    live.reserve(batch.size());
    for (Item& it : batch)
      if (it.ns->epoch.load(std::memory_order_acquire) == it.epoch) live.push_back(&it);
    for (size_t i = 0; i < live.size();) {
      const Item& first = *live[i];
      const Identity id = IdentityOf(first.tenant);
      size_t j = i + 1;
      while (j < live.size()) {
        const Item& it = *live[j];
        if (it.ns != first.ns || it.shard != first.shard || it.ttl_ms != first.ttl_ms) break;
        if (it.tenant != first.tenant) {
          const Identity other = IdentityOf(it.tenant);
          if (other.name != id.name || other.credential != id.credential) break;
        }
        ++j;
      }
      SendRun(std::span<Item* const>(live.data() + i, j - i));
      i = j;
    }
  }

  // One run: the same identity, namespace, shard and TTL.
  void SendRun(std::span<Item* const> run) {
    const Item& first = *run.front();
    auto c = ClientFor(first.tenant);
    if (!c.ok()) {  // backing off, or the connect failed (which started the back-off)
      send_failures_.fetch_add(run.size(), std::memory_order_relaxed);
      return;
    }
    const NodeNamespace ns = NodeNamespaceOf(first.ns->fields);
    if (run.size() == 1) {
      Count(*run.front(), (*c)->Put(ns, first.key, first.shard, first.bytes.data(), first.bytes.size(), first.ttl_ms,
                                    nullptr));
      return;
    }
    std::vector<PutItem> items(run.size());
    for (size_t i = 0; i < run.size(); ++i) {
      items[i].key = run[i]->key;
      items[i].src = run[i]->bytes.data();
      items[i].len = run[i]->bytes.size();
    }
    const Status call = (*c)->PutBatch(ns, first.shard, items, first.ttl_ms);
    // Each item as its own Put would have been counted; a failure of the
    // call (node down: the back-off) is acted on once.
    for (size_t i = 0; i < run.size(); ++i) {
      const Status& s = items[i].status;
      if (!call.ok() && IsNodeDown(s)) {
        send_failures_.fetch_add(1, std::memory_order_relaxed);
      } else {
        Count(*run[i], s);
      }
    }
    if (!call.ok() && IsNodeDown(call)) (void)Outcome(call, first.tenant);
  }

  // One store's outcome: sent (stored, or the node had it or is storing it), or failed.
  void Count(const Item& item, const Status& s) {
    if (s.ok() || s.code() == Code::kExists || s.code() == Code::kPending) {
      Up();
      sends_.fetch_add(1, std::memory_order_relaxed);
      bytes_sent_.fetch_add(item.bytes.size(), std::memory_order_relaxed);
      return;
    }
    send_failures_.fetch_add(1, std::memory_order_relaxed);
    (void)Outcome(s, item.tenant);
  }

  const std::string address_;
  const uint32_t backoff_ms_;
  const uint64_t queue_capacity_;
  const uint64_t batch_bytes_;  // the most bytes one batch takes off the queue (at least one item)
  NodeClientOptions base_;
  Identity default_id_;
  std::atomic<int64_t> down_until_{0};
  std::atomic<uint64_t> down_gen_{0};  // failures so far
  std::atomic<bool> logged_down_{false}, logged_refused_{false};

  std::mutex ids_mu_;
  std::unordered_map<uint32_t, Identity> ids_;                                   // GUARDED_BY(ids_mu_)
  std::map<std::pair<std::string, std::string>, std::shared_ptr<Slot>> slots_;  // GUARDED_BY(ids_mu_)

  std::mutex send_mu_;  // held while one batch is sent, and by Delete/BumpRevision
  std::mutex q_mu_;
  std::condition_variable q_cv_;
  std::deque<Item> queue_;      // GUARDED_BY(q_mu_)
  uint64_t queue_bytes_ = 0;    // GUARDED_BY(q_mu_)
  uint64_t last_seq_ = 0;       // GUARDED_BY(q_mu_)
  uint64_t in_flight_seq_ = 0;  // GUARDED_BY(q_mu_): the oldest put of the batch being sent; 0: none
  bool stop_ = false;           // GUARDED_BY(q_mu_)
  std::thread sender_;

  std::atomic<uint64_t> hits_{0}, misses_{0}, node_down_{0}, refused_{0}, bytes_loaded_{0}, sends_{0},
      bytes_sent_{0}, sends_dropped_{0}, send_failures_{0}, connects_{0};
};

}  // namespace

Result<std::unique_ptr<RemoteTier>> NewRemoteTier(const CacheOptions& options) {
  if (options.remote_address.empty()) return InvalidArgument("remote_address is empty");
  if (options.remote_address == "unix:")
    return InvalidArgument("remote_address 'unix:' names no socket path");
  if (options.remote_timeout_ms == 0) return InvalidArgument("remote_timeout_ms must be at least 1");
  if (options.remote_credential.size() && options.remote_tenant.empty())
    return InvalidArgument("remote_credential is set but remote_tenant is not");
  if (!options.remote_tls_ca_path.empty() && access(options.remote_tls_ca_path.c_str(), R_OK) != 0)
    return InvalidArgument("remote_tls_ca_path '" + options.remote_tls_ca_path + "' cannot be read: " +
                           std::strerror(errno));
  const uint64_t queue = options.remote_queue_bytes
                             ? options.remote_queue_bytes
                             : std::min<uint64_t>(64ull << 20, options.host_capacity_bytes / 4);
  return std::unique_ptr<RemoteTier>(new NodeRemoteTier(options, queue));
}

}  // namespace kvc::net
#endif  // KVC_NET_BUILD
