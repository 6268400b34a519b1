// EtcdMembership: the nodes of a cluster, listed from etcd then watched
// (membership.h; the layout is in etcd_layout.h and docs/cluster.md).
//
// One thread per source lists /kvc/<cluster>/ and watches it from the next
// revision; a compaction, a lost stream or Refresh() make it list again.
// While etcd is down the last view stays current and the thread retries.
// Epochs: a listing cannot show deletions, so the first listing (and a
// re-list that finds the nodes changed behind the watch) sets the epoch to
// the listing's revision; from then on each node event moves it to the
// event's mod_revision (a deletion event carries its own revision).
//
// Compiled only into kvc_net (libkvc/cluster/CMakeLists.txt).
#ifdef KVC_NET_BUILD
#include "cluster/membership.h"

#if KVC_HAVE_ETCD
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>

#include "cluster/etcd_client.h"
#include "cluster/etcd_layout.h"
#endif

namespace kvc::cluster {

#if KVC_HAVE_ETCD
namespace {

constexpr uint32_t kListTimeoutMs = 2000;

class EtcdSource final : public MembershipSource {
 public:
  EtcdSource(EtcdAddress addr, std::unique_ptr<EtcdClient> etcd)
      : addr_(std::move(addr)), etcd_(std::move(etcd)), view_(std::make_shared<MembershipView>()) {}

  ~EtcdSource() override {
    {
      std::lock_guard<std::mutex> lk(ctl_mu_);
      stop_ = true;
      if (watch_) watch_->Cancel();
    }
    ctl_cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  // The first listing, on the caller's thread; then the watch thread.
  Status Start(uint32_t timeout_ms) {
    KVC_RETURN_IF_ERROR(Relist(timeout_ms, /*notify=*/false));
    thread_ = std::thread([this] { Run(); });
    return Status::Ok();
  }

  std::shared_ptr<const MembershipView> Current() const override {
    std::lock_guard<std::mutex> lk(view_mu_);
    return view_;
  }

  uint64_t Subscribe(std::function<void(std::shared_ptr<const MembershipView>)> fn) override {
    std::lock_guard<std::mutex> lk(sub_mu_);
    subs_[++next_token_] = std::move(fn);
    return next_token_;
  }

  void Unsubscribe(uint64_t token) override {
    std::lock_guard<std::mutex> lk(sub_mu_);
    subs_.erase(token);
  }

  std::shared_ptr<const MembershipView> Refresh(uint32_t timeout_ms) override {
    std::unique_lock<std::mutex> lk(ctl_mu_);
    const uint64_t want = lists_ + 1;
    refresh_ = true;
    if (watch_) watch_->Cancel();
    ctl_cv_.notify_all();
    ctl_cv_.wait_for(lk, std::chrono::milliseconds(timeout_ms), [&] { return lists_ >= want || stop_; });
    lk.unlock();
    return Current();
  }

 private:
  // Lists the cluster's keys and makes them the state.
  Status Relist(uint32_t timeout_ms, bool notify) {
    auto r = etcd_->Range(ClusterPrefix(addr_.cluster), true, timeout_ms);
    if (!r.ok()) return Status(Code::kUnavailable, r.status().message());
    const std::string nodes_prefix = NodesPrefix(addr_.cluster);
    std::map<std::string, NodeInfo> nodes;
    std::map<std::string, int64_t> mods;
    ClusterConfig config;
    uint64_t max_mod = 0;
    for (const auto& kv : r->kvs) {
      if (kv.key.compare(0, nodes_prefix.size(), nodes_prefix) == 0) {
        auto n = Decode(kv);
        if (!n.ok()) continue;
        mods[n->id] = kv.mod_revision;
        max_mod = std::max<uint64_t>(max_mod, kv.mod_revision);
        nodes[n->id] = std::move(n).value();
      } else if (kv.key == ConfigKey(addr_.cluster)) {
        auto c = DecodeConfig(kv.value);
        if (c.ok()) config = *c;
        else Warn(c.status().message());
      }
    }
    bool changed;
    {
      std::lock_guard<std::mutex> lk(state_mu_);
      const bool first = applied_rev_ == 0;
      const bool nodes_changed = mods != mods_;
      changed = first || nodes_changed || config.replication != config_.replication ||
                config.write_quorum != config_.write_quorum;
      // A listing cannot show deletions (a departed node's record is just
      // absent): the first listing, and one that finds the nodes changed
      // behind the watch, take the listing's revision, which is at least
      // that of every change so far.
      uint64_t epoch = std::max<uint64_t>(epoch_, max_mod);
      if (first || nodes_changed) epoch = std::max<uint64_t>(epoch, r->revision);
      nodes_ = std::move(nodes);
      mods_ = std::move(mods);
      config_ = config;
      epoch_ = epoch;
      applied_rev_ = r->revision;
      if (changed) Publish(notify);
    }
    return Status::Ok();
  }

  // Applies a batch of watch events.
  void Apply(const std::vector<EtcdEvent>& events, int64_t revision) {
    const std::string nodes_prefix = NodesPrefix(addr_.cluster);
    std::lock_guard<std::mutex> lk(state_mu_);
    bool changed = false;
    for (const auto& e : events) {
      if (e.kv.mod_revision <= applied_rev_) continue;  // already in a listing
      if (e.kv.key.compare(0, nodes_prefix.size(), nodes_prefix) == 0) {
        const std::string id = e.kv.key.substr(nodes_prefix.size());
        if (e.type == EtcdEvent::Type::kDelete) {
          if (nodes_.erase(id) == 0) continue;
          mods_.erase(id);
        } else {
          auto n = Decode(e.kv);
          if (!n.ok()) continue;
          nodes_[id] = std::move(n).value();
          mods_[id] = e.kv.mod_revision;
        }
        epoch_ = std::max<uint64_t>(epoch_, e.kv.mod_revision);
        changed = true;
      } else if (e.kv.key == ConfigKey(addr_.cluster)) {
        ClusterConfig c;  // a deleted config: the defaults
        if (e.type == EtcdEvent::Type::kPut) {
          auto d = DecodeConfig(e.kv.value);
          if (!d.ok()) {
            Warn(d.status().message());
            continue;
          }
          c = *d;
        }
        config_ = c;
        changed = true;
      }
    }
    applied_rev_ = std::max(applied_rev_, revision);
    if (changed) Publish(true);
  }

  Result<NodeInfo> Decode(const EtcdKv& kv) {
    const std::string id = kv.key.substr(NodesPrefix(addr_.cluster).size());
    auto n = DecodeNode(id, kv.value);
    if (!n.ok()) {
      Warn(n.status().message());
      return n.status();
    }
    n->registered_epoch = static_cast<uint64_t>(kv.create_revision);
    return n;
  }

  // REQUIRES: state_mu_ held (so views are published in order).
  void Publish(bool notify) {
    auto v = std::make_shared<MembershipView>();
    v->epoch = epoch_;
    v->config = config_;
    for (const auto& [id, n] : nodes_) v->nodes.push_back(n);
    {
      std::lock_guard<std::mutex> lk(view_mu_);
      view_ = v;
    }
    if (!notify) return;
    std::vector<std::function<void(std::shared_ptr<const MembershipView>)>> subs;
    {
      std::lock_guard<std::mutex> lk(sub_mu_);
      for (const auto& [t, fn] : subs_) subs.push_back(fn);
    }
    for (const auto& fn : subs) fn(v);
  }

  void Warn(const std::string& m) { std::fprintf(stderr, "kvc cluster %s: %s\n", addr_.cluster.c_str(), m.c_str()); }

  // Waits up to `ms` unless stopped or asked to refresh; false when stopped.
  bool Pause(uint32_t ms) {
    std::unique_lock<std::mutex> lk(ctl_mu_);
    ctl_cv_.wait_for(lk, std::chrono::milliseconds(ms), [&] { return stop_ || refresh_; });
    return !stop_;
  }

  void Run() {
    bool listed = true;  // Start() listed
    uint32_t backoff = 100;
    while (true) {
      {
        std::lock_guard<std::mutex> lk(ctl_mu_);
        if (stop_) return;
        if (refresh_) listed = false;
        refresh_ = false;
      }
      if (!listed) {
        if (!Relist(kListTimeoutMs, true).ok()) {
          if (!Pause(backoff)) return;
          backoff = std::min<uint32_t>(backoff * 2, 1000);
          continue;
        }
        std::lock_guard<std::mutex> lk(ctl_mu_);
        ++lists_;
        ctl_cv_.notify_all();
      }
      backoff = 100;
      int64_t from;
      {
        std::lock_guard<std::mutex> lk(state_mu_);
        from = applied_rev_ + 1;
      }
      listed = false;  // after the watch ends, list again
      auto w = etcd_->Watch(ClusterPrefix(addr_.cluster), from, kListTimeoutMs);
      if (!w.ok()) {
        // Compacted: list again at once; etcd away: after a pause.
        if (w.status().code() != Code::kNotFound && !Pause(backoff)) return;
        continue;
      }
      {
        std::lock_guard<std::mutex> lk(ctl_mu_);
        if (stop_) return;
        if (refresh_) continue;
        watch_ = w->get();
      }
      std::vector<EtcdEvent> events;
      int64_t rev = 0;
      while ((*w)->Next(&events, &rev).ok()) Apply(events, rev);
      std::lock_guard<std::mutex> lk(ctl_mu_);
      watch_ = nullptr;
    }
  }

  const EtcdAddress addr_;
  const std::unique_ptr<EtcdClient> etcd_;

  mutable std::mutex view_mu_;
  std::shared_ptr<const MembershipView> view_;  // GUARDED_BY(view_mu_)

  std::mutex state_mu_;
  std::map<std::string, NodeInfo> nodes_;  // GUARDED_BY(state_mu_)
  std::map<std::string, int64_t> mods_;    // GUARDED_BY(state_mu_): id -> mod_revision
  ClusterConfig config_;                   // GUARDED_BY(state_mu_)
  uint64_t epoch_ = 0;                     // GUARDED_BY(state_mu_)
  int64_t applied_rev_ = 0;                // GUARDED_BY(state_mu_)

  std::mutex sub_mu_;
  std::map<uint64_t, std::function<void(std::shared_ptr<const MembershipView>)>> subs_;  // GUARDED_BY(sub_mu_)
  uint64_t next_token_ = 0;                                                             // GUARDED_BY(sub_mu_)

  std::mutex ctl_mu_;
  std::condition_variable ctl_cv_;
  bool stop_ = false;           // GUARDED_BY(ctl_mu_)
  bool refresh_ = false;        // GUARDED_BY(ctl_mu_)
  uint64_t lists_ = 0;          // GUARDED_BY(ctl_mu_): listings done by the thread
  EtcdWatch* watch_ = nullptr;  // GUARDED_BY(ctl_mu_)
  std::thread thread_;
};

}  // namespace

Result<std::unique_ptr<MembershipSource>> EtcdMembership(const std::string& address, uint32_t timeout_ms) {
  auto a = ParseEtcdAddress(address);
  if (!a.ok()) return a.status();
  auto etcd = EtcdClient::Create(a->endpoints);
  if (!etcd.ok()) return etcd.status();
  auto s = std::make_unique<EtcdSource>(*a, std::move(etcd).value());
  if (Status st = s->Start(timeout_ms == 0 ? 1 : timeout_ms); !st.ok())
    return Status(Code::kUnavailable, "cannot list cluster '" + a->cluster + "': " + st.message());
  return std::unique_ptr<MembershipSource>(std::move(s));
}

#else  // !KVC_HAVE_ETCD

Result<std::unique_ptr<MembershipSource>> EtcdMembership(const std::string& address, uint32_t timeout_ms) {
  return Status(Code::kUnsupported,
                "this kvc was built without etcd membership (the etcd protos of golang-etcd-server-dev were "
                "not found); use a static peers: address");
}

#endif  // KVC_HAVE_ETCD

}  // namespace kvc::cluster
#endif  // KVC_NET_BUILD
