// ConfigSync (config_sync.h): list the cluster's configuration, apply it,
// then watch /kvc/<cluster>/ and apply each change.
//
// The listing reads three prefixes (tenants, revisions, this node's hints)
// at three revisions r1 <= r2 <= r3 and watches from r1 + 1, so no change is
// missed; an event of a prefix at or below that prefix's own listing
// revision is one the listing already showed, and is skipped (a hint
// replayed after it was applied must not delete a block stored since).
//
// Compiled only into kvc_net (libkvc/cluster/CMakeLists.txt).
#ifdef KVC_NET_BUILD
#include "cluster/config_sync.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "cluster/etcd_client.h"

namespace kvc::cluster {

#if KVC_HAVE_ETCD

namespace {

constexpr uint32_t kCallTimeoutMs = 2000;  // each etcd call of the watch thread
constexpr uint32_t kMinBackoffMs = 100;
constexpr uint32_t kMaxBackoffMs = 1000;

bool HasPrefix(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

}  // namespace

Result<std::unique_ptr<ConfigSync>> ConfigSync::Start(const ConfigSyncOptions& options) {
  auto a = ParseEtcdAddress(options.cluster);
  if (!a.ok()) return a.status();
  if (!ValidName(options.node_id))
    return InvalidArgument("node id '" + options.node_id + "' must be 1-64 of [A-Za-z0-9_.-]");
  if (!options.apply_tenants || !options.apply_bump || !options.apply_delete)
    return InvalidArgument("the cluster configuration needs its three hooks (apply_tenants, apply_bump, apply_delete)");
  std::unique_ptr<ConfigSync> s(new ConfigSync);
  s->opts_ = options;
  s->addr_ = *a;
  auto etcd = EtcdClient::Create(a->endpoints);
  if (!etcd.ok()) return etcd.status();
  s->etcd_ = std::move(etcd).value();
  Status st = s->ListAndApply(options.timeout_ms ? options.timeout_ms : 5000);
  if (!st.ok())
    return Status(Code::kUnavailable,
                  "cannot read the configuration of cluster '" + a->cluster + "': " + st.message());
  s->thread_ = std::thread([p = s.get()] { p->Run(); });
  return s;
}

ConfigSync::~ConfigSync() { Stop(); }

ConfigSyncStats ConfigSync::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  return stats_;
}

void ConfigSync::Stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
    if (watch_) watch_->Cancel();
  }
  cv_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void ConfigSync::Log(const std::string& m) const {
  const std::string line = "kvc node " + opts_.node_id + ": cluster config: " + m;
  if (opts_.log) {
    opts_.log(line);
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
}

void ConfigSync::Count(uint64_t ConfigSyncStats::*field) {
  std::lock_guard<std::mutex> lk(mu_);
  ++(stats_.*field);
}

void ConfigSync::TenantRecord(const std::string& name, const std::string& json) {
  auto t = ValidName(name) ? DecodeTenant(name, json)
                           : Result<TenantConfig>(ParseError("tenant record name '" + name + "' is not a valid name"));
  if (!t.ok()) {
    // Skipped: a tenant known from an earlier good record keeps it, so a
    // bad write does not cost the tenant its blocks.
    Count(&ConfigSyncStats::errors);
    Log("skipped: " + t.status().message() +
        (tenants_.count(name) ? " (keeping the tenant's last good record)" : ""));
    return;
  }
  tenants_[name] = std::move(*t);
}

void ConfigSync::ApplyTenants() {
  std::vector<TenantConfig> list;
  list.reserve(tenants_.size());
  for (const auto& [name, t] : tenants_) list.push_back(t);
  Status s = opts_.apply_tenants(list);
  std::lock_guard<std::mutex> lk(mu_);
  ++stats_.tenant_syncs;
  if (!s.ok()) {
    ++stats_.errors;
    Log("cannot apply the cluster's " + std::to_string(list.size()) + " tenants: " + s.ToString());
  }
}

void ConfigSync::ApplyRevision(const std::string& key, const std::string& json) {
  const std::string id = key.substr(RevisionsPrefix(addr_.cluster).size());
  auto r = DecodeRevision(json);
  if (r.ok() && NamespaceId(r->tenant, r->ns) != id)
    r = Result<RevisionRecord>(ParseError("its namespace's id is not its key's"));
  if (!r.ok()) {
    Count(&ConfigSyncStats::errors);
    Log("skipped revision record " + key + ": " + r.status().message());
    return;
  }
  Status s = opts_.apply_bump(r->tenant, r->ns, r->count);
  std::lock_guard<std::mutex> lk(mu_);
  ++stats_.bumps_seen;
  // NOT_FOUND: a tenant unknown here; its blocks are gone with it.
  if (!s.ok() && s.code() != Code::kNotFound) {
    ++stats_.errors;
    Log("cannot apply revision record " + key + " (count " + std::to_string(r->count) + "): " + s.ToString());
  }
}

void ConfigSync::ApplyHint(const EtcdKv& kv) {
  auto h = DecodeDeleteHint(kv.value);
  if (!h.ok()) {
    Count(&ConfigSyncStats::errors);
    Log("skipped hint " + kv.key + ": " + h.status().message());
    return;
  }
  Status s = opts_.apply_delete(h->tenant, h->ns, h->key);
  if (!s.ok() && s.code() != Code::kNotFound) {
    Count(&ConfigSyncStats::errors);
    Log("cannot apply hint " + kv.key + " (kept, retried at the next listing): " + s.ToString());
    return;
  }
  // Applied; removed unless it changed meanwhile (then its new value comes
  // as an event of its own).
  auto d = etcd_->DeleteIf(kv.key, kv.mod_revision, kCallTimeoutMs);
  if (!d.ok()) {
    Count(&ConfigSyncStats::errors);
    Log("applied hint " + kv.key + " but cannot remove it (applied again later): " + d.status().message());
    return;
  }
  Count(&ConfigSyncStats::hints_applied);
}

Status ConfigSync::ListAndApply(uint32_t timeout_ms) {
  const std::string& c = addr_.cluster;
  const std::string tp = TenantsPrefix(c), rp = RevisionsPrefix(c), hp = HintsPrefix(c, opts_.node_id);
  auto t = etcd_->Range(tp, true, timeout_ms);
  if (!t.ok()) return t.status();
  auto r = etcd_->Range(rp, true, timeout_ms);
  if (!r.ok()) return r.status();
  auto h = etcd_->Range(hp, true, timeout_ms);
  if (!h.ok()) return h.status();

  std::map<std::string, TenantConfig> before = std::move(tenants_);
  tenants_.clear();
  for (const auto& kv : t->kvs) {
    const std::string name = kv.key.substr(tp.size());
    if (auto it = before.find(name); it != before.end()) tenants_[name] = it->second;  // kept if bad now
    TenantRecord(name, kv.value);
  }
  ApplyTenants();
  for (const auto& kv : r->kvs) ApplyRevision(kv.key, kv.value);
  for (const auto& kv : h->kvs) ApplyHint(kv);

  listed_[0] = t->revision;
  listed_[1] = r->revision;
  listed_[2] = h->revision;
  std::lock_guard<std::mutex> lk(mu_);
  ++stats_.listings;
  stats_.revision = t->revision;
  Log("applied " + std::to_string(tenants_.size()) + " tenants, " + std::to_string(r->kvs.size()) +
      " revision records and " + std::to_string(h->kvs.size()) + " hints (listing " +
      std::to_string(stats_.listings) + ", etcd revision " + std::to_string(t->revision) + ")");
  return Status::Ok();
}

void ConfigSync::ApplyEvents(const std::vector<EtcdEvent>& events, int64_t revision) {
  const std::string& c = addr_.cluster;
  const std::string tp = TenantsPrefix(c), rp = RevisionsPrefix(c), hp = HintsPrefix(c, opts_.node_id);
  bool tenants_dirty = false;
  auto flush = [&] {
    if (tenants_dirty) ApplyTenants();
    tenants_dirty = false;
  };
  for (const auto& e : events) {
    const std::string& key = e.kv.key;
    const bool put = e.type == EtcdEvent::Type::kPut;
    if (HasPrefix(key, tp)) {
      if (e.kv.mod_revision <= listed_[0]) continue;
      const std::string name = key.substr(tp.size());
      if (put) {
        TenantRecord(name, e.kv.value);
      } else {
        tenants_.erase(name);
      }
      tenants_dirty = true;
    } else if (HasPrefix(key, rp)) {
      // A deleted record changes nothing here: the counts applied stay.
      if (!put || e.kv.mod_revision <= listed_[1]) continue;
      flush();
      ApplyRevision(key, e.kv.value);
    } else if (HasPrefix(key, hp)) {
      if (!put || e.kv.mod_revision <= listed_[2]) continue;
      flush();
      ApplyHint(e.kv);
    }
  }
  flush();
  std::lock_guard<std::mutex> lk(mu_);
  stats_.revision = std::max(stats_.revision, revision);
}

bool ConfigSync::Pause(uint32_t ms) {
  std::unique_lock<std::mutex> lk(mu_);
  return !cv_.wait_for(lk, std::chrono::milliseconds(ms), [&] { return stop_; });
}

void ConfigSync::Run() {
  bool listed = true;  // Start listed
  uint32_t backoff = kMinBackoffMs;
  std::string last_error;
  auto failed = [&](const std::string& what, const Status& s) {
    if (s.message() != last_error) Log(what + ": " + s.message() + " (keeping the configuration as it is; retrying)");
    last_error = s.message();
  };
  while (true) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (stop_) return;
    }
    if (!listed) {
      Status s = ListAndApply(kCallTimeoutMs);
      if (!s.ok()) {
        failed("cannot list the cluster's configuration", s);
        if (!Pause(backoff)) return;
        backoff = std::min(backoff * 2, kMaxBackoffMs);
        continue;
      }
      last_error.clear();
    }
    listed = false;  // after the watch ends, list again
    int64_t from;
    {
      std::lock_guard<std::mutex> lk(mu_);
      from = stats_.revision + 1;
    }
    auto w = etcd_->Watch(ClusterPrefix(addr_.cluster), from, kCallTimeoutMs);
    if (!w.ok()) {
      // Compacted: list again at once; etcd away: after a pause.
      if (w.status().code() != Code::kNotFound) {
        failed("cannot watch the cluster's configuration", w.status());
        if (!Pause(backoff)) return;
        backoff = std::min(backoff * 2, kMaxBackoffMs);
      }
      continue;
    }
    backoff = kMinBackoffMs;
    EtcdWatch* watch;
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (stop_) return;
      watch_ = std::move(w).value();
      watch = watch_.get();
    }
    std::vector<EtcdEvent> events;
    int64_t rev = 0;
    Status end;
    while ((end = watch->Next(&events, &rev)).ok()) ApplyEvents(events, rev);
    {
      std::lock_guard<std::mutex> lk(mu_);
      watch_.reset();
      if (stop_) return;
    }
    Log("the watch ended (" + end.message() + "): listing again");
  }
}

#else  // !KVC_HAVE_ETCD

Result<std::unique_ptr<ConfigSync>> ConfigSync::Start(const ConfigSyncOptions&) {
  return Status(Code::kUnsupported,
                "this kvc was built without etcd membership (the etcd protos of golang-etcd-server-dev were "
                "not found)");
}
ConfigSync::~ConfigSync() = default;
ConfigSyncStats ConfigSync::stats() const { return {}; }
void ConfigSync::Stop() {}

#endif  // KVC_HAVE_ETCD

}  // namespace kvc::cluster
#endif  // KVC_NET_BUILD
