// Compiled only into kvc_net (libkvc/cluster/CMakeLists.txt).
#ifdef KVC_NET_BUILD
#include "cluster/registration.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "cluster/etcd_client.h"
#include "cluster/etcd_layout.h"

namespace kvc::cluster {
namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// How long before the granted TTL runs out the node stops trusting its
// lease: etcd counts the TTL from when it received the renewal, the node
// from when it sent it, so only clock-rate drift and scheduling remain.
[[maybe_unused]] int64_t MarginMs(int64_t ttl_ms) { return std::max<int64_t>(500, ttl_ms / 4); }

}  // namespace

#if KVC_HAVE_ETCD

Result<std::unique_ptr<Registration>> Registration::Start(const RegistrationOptions& options) {
  auto a = ParseEtcdAddress(options.cluster);
  if (!a.ok()) return a.status();
  if (options.address.empty()) return InvalidArgument("a cluster node needs the address clients reach it at");
  std::unique_ptr<Registration> r(new Registration);
  r->opts_ = options;
  r->id_ = options.node_id;
  if (r->id_.empty()) {
    for (char c : options.address) r->id_ += (c == ':' || c == '[' || c == ']') ? '-' : c;
    while (!r->id_.empty() && r->id_.front() == '-') r->id_.erase(0, 1);
  }
  if (!ValidName(r->id_))
    return InvalidArgument("node id '" + r->id_ + "' must be 1-64 of [A-Za-z0-9_.-]");
  r->ttl_s_ = options.ttl_s;
  if (r->ttl_s_ == 0) {
    const char* env = std::getenv("KVC_CLUSTER_LEASE_TTL_S");
    r->ttl_s_ = env && *env ? static_cast<uint32_t>(std::strtoul(env, nullptr, 10)) : 6;
  }
  if (r->ttl_s_ < 2 || r->ttl_s_ > 3600)
    return InvalidArgument("the lease TTL must be 2..3600 seconds, not " + std::to_string(r->ttl_s_));
  r->key_ = NodeKey(a->cluster, r->id_);
  r->drain_key_ = DrainingKey(a->cluster, r->id_);
  r->roster_key_ = RosterKey(a->cluster, r->id_);
  r->hints_prefix_ = HintsPrefix(a->cluster, r->id_);
  auto etcd = EtcdClient::Create(a->endpoints);
  if (!etcd.ok()) return etcd.status();
  r->etcd_ = std::move(etcd).value();
  Status s = r->Register(options.timeout_ms ? options.timeout_ms : 5000);
  // kExists: the id is held by another live node; kPending: delete hints
  // to apply first. Both: started fenced, retrying.
  if (!s.ok() && s.code() != Code::kExists && s.code() != Code::kPending)
    return Status(Code::kUnavailable, "cannot register node '" + r->id_ + "' in cluster '" + a->cluster +
                                          "': " + s.message());
  if (!s.ok()) r->Log(s.message() + "; writes are fenced until this node registers");
  r->thread_ = std::thread([p = r.get()] { p->Run(); });
  return r;
}

Status Registration::WriteRoster(uint32_t timeout_ms) {
  RosterEntry e;
  e.id = id_;
  e.address = opts_.address;
  e.first_registered_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  // Created only if absent: the first registration's address and time stay.
  auto t = etcd_->Txn({{roster_key_, EtcdCompare::Target::kCreateRevision, 0}},
                      {{roster_key_, EncodeRosterEntry(e), 0, false}}, timeout_ms);
  if (!t.ok()) return Status(t.status().code(), "cannot write the roster record: " + t.status().message());
  return Status::Ok();
}

Status Registration::Register(uint32_t timeout_ms) {
  // In the roster before the node record (at every registration: a node
  // forgotten while its lease had expired comes back): a delete made once
  // the node is gone from the view must still find it there.
  KVC_RETURN_IF_ERROR(WriteRoster(timeout_ms));
  NodeInfo n;
  n.id = id_;
  n.address = opts_.address;
  n.zone = opts_.zone;
  n.capacity_bytes = opts_.capacity_bytes;
  auto mark = etcd_->Range(drain_key_, false, timeout_ms);
  if (!mark.ok()) return mark.status();
  if (!mark->kvs.empty()) n.state = NodeState::kDraining;
  const std::string value = EncodeNode(n, opts_.version);

  const int64_t t0 = NowNs();
  int64_t granted = 0;
  auto lease = etcd_->LeaseGrant(ttl_s_, &granted, timeout_ms);
  if (!lease.ok()) return lease.status();
  const int64_t ttl_ms = granted * 1000;
  auto give_up = [&](Status s) {
    (void)etcd_->LeaseRevoke(*lease, 1000);
    return s;
  };
  EtcdPut put{key_, value, *lease, false};
  // Create the record only if it does not exist, and (with a ConfigSync)
  // only if no delete hint is newer than those the node applied.
  std::vector<EtcdCompare> when{{key_, EtcdCompare::Target::kCreateRevision, 0}};
  if (opts_.hints_applied_revision) {
    EtcdCompare c;
    c.key = hints_prefix_;
    c.prefix = true;
    c.target = EtcdCompare::Target::kModRevision;
    c.result = EtcdCompare::Result::kLess;
    c.value = opts_.hints_applied_revision() + 1;
    when.push_back(c);
  }
  const Status hints_pending(Code::kPending, "delete hints for node '" + id_ +
                                                     "' arrived since it read them: it registers once it has "
                                                     "applied them");
  auto txn = etcd_->Txn(when, {put}, timeout_ms);
  if (!txn.ok()) return give_up(txn.status());
  uint64_t epoch = static_cast<uint64_t>(txn->revision);
  if (!txn->succeeded) {
    auto cur = etcd_->Range(key_, false, timeout_ms);
    if (!cur.ok()) return give_up(cur.status());
    if (cur->kvs.empty()) return give_up(hints_pending);  // the record's condition held: the hints' did not
    const EtcdKv& kv = cur->kvs[0];
    if (kv.lease == *lease) {
      epoch = static_cast<uint64_t>(kv.create_revision);  // our own, an answer lost on the way
    } else {
      auto other = DecodeNode(id_, kv.value);
      if (!other.ok() || other->address != opts_.address)
        return give_up(Status(Code::kExists, "node id '" + id_ + "' is registered by another node at " +
                                                 (other.ok() ? other->address : std::string("?")) +
                                                 " (retrying until its lease expires)"));
      // This node's own record from before a restart: the old process no
      // longer listens on this address, so delete the record (if unchanged)
      // and create it again, at a new epoch.
      auto del = etcd_->DeleteIf(key_, kv.mod_revision, timeout_ms);
      if (!del.ok()) return give_up(del.status());
      auto again = etcd_->Txn(when, {put}, timeout_ms);
      if (!again.ok()) return give_up(again.status());
      if (!again->succeeded) {
        auto now = etcd_->Range(key_, false, timeout_ms);
        if (now.ok() && now->kvs.empty()) return give_up(hints_pending);
        return give_up(Status(Code::kExists, "node '" + id_ + "' was registered meanwhile"));
      }
      epoch = static_cast<uint64_t>(again->revision);
    }
  }
  lease_ = *lease;
  granted_ttl_ms_ = ttl_ms;
  epoch_.store(epoch);
  valid_until_ns_.store(t0 + (ttl_ms - MarginMs(ttl_ms)) * 1000000);
  Log("registered as '" + id_ + "' at epoch " + std::to_string(epoch) + " (lease TTL " + std::to_string(granted) +
      " s)");
  return Status::Ok();
}

void Registration::Run() {
  std::string last_error;
  while (true) {
    uint32_t wait_ms;
    if (lease_ == 0) {
      Status s = Register(std::max<uint32_t>(1000, ttl_s_ * 1000 / 3));
      if (!s.ok() && s.message() != last_error) Log(s.message());
      last_error = s.ok() ? "" : s.message();
      wait_ms = s.ok() ? ttl_s_ * 1000 / 3 : 500;
    } else {
      const int64_t t0 = NowNs();
      auto ttl = etcd_->LeaseKeepAlive(lease_, std::max<uint32_t>(500, ttl_s_ * 1000 / 3));
      if (ttl.ok()) {
        granted_ttl_ms_ = *ttl * 1000;
        valid_until_ns_.store(t0 + (granted_ttl_ms_ - MarginMs(granted_ttl_ms_)) * 1000000);
        if (!last_error.empty()) Log("lease renewed again");
        last_error.clear();
        if (!draining_seen_ && opts_.on_draining) {
          auto mark = etcd_->Range(drain_key_, false, 1000);
          if (mark.ok() && !mark->kvs.empty()) {
            draining_seen_ = true;
            Log("drain mark found: handing blocks off to their new owners");
            opts_.on_draining();
          }
        }
        wait_ms = ttl_s_ * 1000 / 3;
      } else if (ttl.status().code() == Code::kNotFound) {
        valid_until_ns_.store(0);
        Log("lease lost (" + ttl.status().message() + "): writes fenced; dropping held blocks, registering again");
        lease_ = 0;
        epoch_.store(0);
        if (opts_.on_lease_lost) opts_.on_lease_lost();
        wait_ms = 0;
      } else {
        if (ttl.status().message() != last_error) Log("cannot renew the lease: " + ttl.status().message());
        last_error = ttl.status().message();
        wait_ms = 250;
      }
    }
    std::unique_lock<std::mutex> lk(mu_);
    if (cv_.wait_for(lk, std::chrono::milliseconds(wait_ms), [&] { return stop_; })) return;
  }
}

Status Registration::SetHandoff(const std::string& state, uint64_t handed_off, uint32_t timeout_ms) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto cur = etcd_->Range(key_, false, timeout_ms);
    if (!cur.ok()) return cur.status();
    if (cur->kvs.empty()) return NotFound("node '" + id_ + "' is not registered");
    auto rec = nlohmann::json::parse(cur->kvs[0].value, nullptr, false);
    if (rec.is_discarded() || !rec.is_object())
      return Status(Code::kCorrupt, "the record of node '" + id_ + "' is not a JSON object");
    rec["handoff"] = state;
    rec["handed_off"] = handed_off;
    auto t = etcd_->Txn({{key_, EtcdCompare::Target::kModRevision, cur->kvs[0].mod_revision}},
                        {{key_, rec.dump(), 0, /*ignore_lease=*/true}}, timeout_ms);
    if (!t.ok()) return t.status();
    if (t->succeeded) return Status::Ok();
  }
  return Status(Code::kUnavailable, "node '" + id_ + "''s record kept changing");
}

void Registration::Stop(uint32_t timeout_ms) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  valid_until_ns_.store(0);
  if (lease_ != 0) {
    Status s = etcd_->LeaseRevoke(lease_, timeout_ms);
    if (!s.ok()) Log("cannot revoke the lease (the record expires with it): " + s.message());
    lease_ = 0;
  }
}

#else  // !KVC_HAVE_ETCD

Status Registration::SetHandoff(const std::string&, uint64_t, uint32_t) {
  return Status(Code::kUnsupported, "this kvc was built without etcd membership");
}
Result<std::unique_ptr<Registration>> Registration::Start(const RegistrationOptions& options) {
  return Status(Code::kUnsupported,
                "this kvc was built without etcd membership (the etcd protos of golang-etcd-server-dev were "
                "not found)");
}
void Registration::Stop(uint32_t) {}

#endif  // KVC_HAVE_ETCD

Registration::~Registration() { Stop(1000); }

Status Registration::Admit(uint64_t membership_epoch) const {
  const int64_t until = valid_until_ns_.load();
  const int64_t now = NowNs();
  if (until == 0 || now >= until)
    return Status(Code::kFenced, "node '" + id_ + "' holds no valid cluster lease (" +
                                     (until == 0 ? std::string("not registered")
                                                 : "last renewal expired " + std::to_string((now - until) / 1000000) +
                                                       " ms ago") +
                                     "): it refuses writes until it has registered again");
  const uint64_t epoch = epoch_.load();
  if (membership_epoch != 0 && membership_epoch < epoch)
    return Status(Code::kFenced, "the writer's membership epoch " + std::to_string(membership_epoch) +
                                     " is older than node '" + id_ + "''s registration at epoch " +
                                     std::to_string(epoch) + ": refresh the membership and retry");
  return Status::Ok();
}

void Registration::Log(const std::string& m) const {
  std::fprintf(stderr, "kvc node %s: cluster: %s\n", id_.c_str(), m.c_str());
}

}  // namespace kvc::cluster
#endif  // KVC_NET_BUILD
