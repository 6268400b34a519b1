// Compiled only into kvc_net (libkvc/net/CMakeLists.txt), which defines
// KVC_NET_BUILD; kvc_core's source glob sees an empty file.
#ifdef KVC_NET_BUILD
#include "net/metrics.h"

#include <cctype>
#include <cstdio>
#include <thread>

#include "tenant/tenant_registry.h"

#ifdef KVC_HAVE_HTTPLIB
#include <httplib.h>
#endif

namespace kvc::net {
namespace {

constexpr const char* kRpcNames[] = {"Health", "Match", "Load", "Store", "Delete", "BumpRevision", "Stats",
                                     "TenantCreate", "TenantList", "TenantSetQuota", "TenantDelete"};
static_assert(sizeof(kRpcNames) / sizeof(kRpcNames[0]) == static_cast<int>(Rpc::kCount));

// A label value, escaped as the text format requires.
std::string Label(const std::string& v) {
  std::string o;
  for (char c : v) {
    if (c == '\\') o += "\\\\";
    else if (c == '"') o += "\\\"";
    else if (c == '\n') o += "\\n";
    else o += c;
  }
  return o;
}

std::string Num(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.17g", v);
  return b;
}

class Text {
 public:
  void Family(const char* name, const char* type, const char* help) {
    out_ += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  }
  void Sample(const std::string& name, const std::string& labels, uint64_t v) {
    out_ += name + (labels.empty() ? "" : "{" + labels + "}") + " " + std::to_string(v) + "\n";
  }
  void SampleD(const std::string& name, const std::string& labels, double v) {
    out_ += name + (labels.empty() ? "" : "{" + labels + "}") + " " + Num(v) + "\n";
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

uint64_t U(const nlohmann::json& j, const char* k) { return j.contains(k) && j[k].is_number() ? j[k].get<uint64_t>() : 0; }

}  // namespace

const char* RpcName(Rpc rpc) { return kRpcNames[static_cast<int>(rpc)]; }

Metrics::Metrics() : traffic_(new Traffic_[kMaxTenants]) {}

Metrics::Call::Call(Metrics* m, Rpc rpc) : m_(m), rpc_(rpc), start_(std::chrono::steady_clock::now()) {
  m_->in_flight_.fetch_add(1, std::memory_order_relaxed);
}

Metrics::Call::~Call() {
  m_->Observe(rpc_, std::chrono::steady_clock::now() - start_);
  m_->in_flight_.fetch_sub(1, std::memory_order_relaxed);
}

void Metrics::Observe(Rpc rpc, std::chrono::nanoseconds d) {
  Histogram& h = latency_[static_cast<int>(rpc)];
  const double s = std::chrono::duration<double>(d).count();
  for (size_t i = 0; i < kBuckets.size(); ++i)
    if (s <= kBuckets[i]) {
      h.buckets[i].fetch_add(1, std::memory_order_relaxed);
      break;
    }
  h.count.fetch_add(1, std::memory_order_relaxed);
  h.sum_ns.fetch_add(static_cast<uint64_t>(d.count()), std::memory_order_relaxed);
}

void Metrics::CountStore(uint32_t tenant, Code code, uint64_t bytes) {
  if (tenant >= kMaxTenants) return;
  Traffic_& t = traffic_[tenant];
  if (code == Code::kOk) {
    t.stores.fetch_add(1, std::memory_order_relaxed);
    t.bytes_stored.fetch_add(bytes, std::memory_order_relaxed);
  } else if (code == Code::kExists) {
    t.store_exists.fetch_add(1, std::memory_order_relaxed);
  }
}

void Metrics::CountLoad(uint32_t tenant, uint64_t bytes) {
  if (tenant >= kMaxTenants) return;
  traffic_[tenant].loads.fetch_add(1, std::memory_order_relaxed);
  traffic_[tenant].bytes_loaded.fetch_add(bytes, std::memory_order_relaxed);
}

void Metrics::CountDelete(uint32_t tenant) {
  if (tenant < kMaxTenants) traffic_[tenant].deletes.fetch_add(1, std::memory_order_relaxed);
}

TenantTraffic Metrics::Traffic(uint32_t tenant) const {
  TenantTraffic o;
  if (tenant >= kMaxTenants) return o;
  const Traffic_& t = traffic_[tenant];
  o.stores = t.stores.load();
  o.store_exists = t.store_exists.load();
  o.loads = t.loads.load();
  o.deletes = t.deletes.load();
  o.bytes_stored = t.bytes_stored.load();
  o.bytes_loaded = t.bytes_loaded.load();
  return o;
}

std::string Metrics::Render(Cache& cache) const {
  const nlohmann::json st = cache.StatsJson();
  Text t;
  t.Family("kvc_hits_total", "counter", "Block lookups that hit, in any tier.");
  t.Sample("kvc_hits_total", "", U(st, "hits"));
  t.Family("kvc_misses_total", "counter", "Block lookups that missed, by reason.");
  for (auto& [reason, n] : st["misses_by_reason"].items()) t.Sample("kvc_misses_total", "reason=\"" + Label(reason) + "\"", n.get<uint64_t>());
  t.Family("kvc_stores_total", "counter", "Block shards stored (committed).");
  t.Sample("kvc_stores_total", "", U(st, "stores"));
  t.Family("kvc_bytes_stored_total", "counter", "Bytes of committed block shards.");
  t.Sample("kvc_bytes_stored_total", "", U(st, "bytes_stored"));
  t.Family("kvc_bytes_loaded_total", "counter", "Bytes of block shards read.");
  t.Sample("kvc_bytes_loaded_total", "", U(st, "bytes_loaded"));
  t.Family("kvc_promotions_total", "counter", "Blocks copied from the SSD tier up to host DRAM.");
  t.Sample("kvc_promotions_total", "", U(st, "promotions"));
  t.Family("kvc_demotions_total", "counter", "Blocks written down from host DRAM to the SSD tier.");
  t.Sample("kvc_demotions_total", "", U(st, "demotions"));
  t.Family("kvc_pins", "gauge", "Blocks pinned by readers now.");
  t.Sample("kvc_pins", "", U(st, "pins"));
  t.Family("kvc_pending_stores", "gauge", "Reservations not yet committed.");
  t.Sample("kvc_pending_stores", "", U(st, "pending"));

  const nlohmann::json& host = st["tiers"]["host"];
  SsdStats ss;
  if (cache.ssd()) ss = cache.ssd()->Stats();
  t.Family("kvc_tier_capacity_bytes", "gauge", "Capacity of each tier.");
  t.Sample("kvc_tier_capacity_bytes", "tier=\"host\"", U(host, "capacity_bytes"));
  if (cache.ssd()) t.Sample("kvc_tier_capacity_bytes", "tier=\"ssd\"", ss.capacity_bytes);
  t.Family("kvc_tier_bytes", "gauge", "Bytes of blocks resident in each tier.");
  t.Sample("kvc_tier_bytes", "tier=\"host\"", U(host, "used_bytes"));
  if (cache.ssd()) t.Sample("kvc_tier_bytes", "tier=\"ssd\"", ss.live_bytes);
  t.Family("kvc_tier_blocks", "gauge", "Blocks resident in each tier.");
  t.Sample("kvc_tier_blocks", "tier=\"host\"", U(host, "blocks"));
  if (cache.ssd()) t.Sample("kvc_tier_blocks", "tier=\"ssd\"", ss.blocks);
  t.Family("kvc_evictions_total", "counter", "Blocks evicted from each tier (capacity or quota).");
  t.Sample("kvc_evictions_total", "tier=\"host\"", U(host, "evictions"));
  if (cache.ssd()) t.Sample("kvc_evictions_total", "tier=\"ssd\"", ss.evictions);

  const nlohmann::json& tenants = st["tenants"];
  if (!tenants.empty()) {
    t.Family("kvc_tenant_hits_total", "counter", "Block lookups of each tenant that hit.");
    for (const auto& r : tenants) t.Sample("kvc_tenant_hits_total", "tenant=\"" + Label(r["name"]) + "\"", U(r, "hits"));
    t.Family("kvc_tenant_misses_total", "counter", "Block lookups of each tenant that missed.");
    for (const auto& r : tenants) t.Sample("kvc_tenant_misses_total", "tenant=\"" + Label(r["name"]) + "\"", U(r, "misses"));
    t.Family("kvc_tenant_bytes", "gauge", "Bytes of each tenant's blocks in each tier.");
    for (const auto& r : tenants) {
      const std::string l = "tenant=\"" + Label(r["name"]) + "\",tier=";
      t.Sample("kvc_tenant_bytes", l + "\"host\"", U(r, "host_bytes"));
      if (r.contains("ssd_bytes")) t.Sample("kvc_tenant_bytes", l + "\"ssd\"", U(r, "ssd_bytes"));
    }
    t.Family("kvc_tenant_blocks", "gauge", "Each tenant's blocks in each tier.");
    for (const auto& r : tenants) {
      const std::string l = "tenant=\"" + Label(r["name"]) + "\",tier=";
      t.Sample("kvc_tenant_blocks", l + "\"host\"", U(r, "host_blocks"));
      if (r.contains("ssd_blocks")) t.Sample("kvc_tenant_blocks", l + "\"ssd\"", U(r, "ssd_blocks"));
    }
    t.Family("kvc_tenant_bytes_stored_total", "counter", "Bytes each tenant stored through the node.");
    for (const auto& r : tenants)
      t.Sample("kvc_tenant_bytes_stored_total", "tenant=\"" + Label(r["name"]) + "\"",
               Traffic(r["id"].get<uint32_t>()).bytes_stored);
    t.Family("kvc_tenant_bytes_loaded_total", "counter", "Bytes each tenant loaded through the node.");
    for (const auto& r : tenants)
      t.Sample("kvc_tenant_bytes_loaded_total", "tenant=\"" + Label(r["name"]) + "\"",
               Traffic(r["id"].get<uint32_t>()).bytes_loaded);
  }

  t.Family("kvc_requests_in_flight", "gauge", "Node calls being served now.");
  t.Sample("kvc_requests_in_flight", "", static_cast<uint64_t>(std::max<int64_t>(0, in_flight_.load())));
  t.Family("kvc_auth_failures_total", "counter", "Calls refused for a wrong or missing credential.");
  t.Sample("kvc_auth_failures_total", "", auth_failures_.load());
  t.Family("kvc_store_idle_cancels_total", "counter",
           "Store streams cancelled for sending nothing for the store idle timeout.");
  t.Sample("kvc_store_idle_cancels_total", "", store_idle_cancels_.load());
  t.Family("kvc_request_duration_seconds", "histogram", "Time to serve each node call, by RPC.");
  for (int r = 0; r < static_cast<int>(Rpc::kCount); ++r) {
    const Histogram& h = latency_[r];
    const std::string rpc = std::string("rpc=\"") + kRpcNames[r] + "\"";
    uint64_t cum = 0;
    for (size_t i = 0; i < kBuckets.size(); ++i) {
      cum += h.buckets[i].load();
      t.Sample("kvc_request_duration_seconds_bucket", rpc + ",le=\"" + Num(kBuckets[i]) + "\"", cum);
    }
    const uint64_t count = h.count.load();
    t.Sample("kvc_request_duration_seconds_bucket", rpc + ",le=\"+Inf\"", std::max(cum, count));
    t.SampleD("kvc_request_duration_seconds_sum", rpc, static_cast<double>(h.sum_ns.load()) / 1e9);
    t.Sample("kvc_request_duration_seconds_count", rpc, std::max(cum, count));
  }
  return t.take();
}

#ifdef KVC_HAVE_HTTPLIB
struct MetricsEndpoint::Impl {
  httplib::Server server;
  std::thread thread;
};

namespace {
// Whether `header` (an Authorization header's value) is "Bearer <token>";
// the scheme's name is case-insensitive (RFC 7235), the token compared in
// constant time.
bool BearerMatches(const std::string& header, const std::string& token) {
  static constexpr char kScheme[] = "bearer ";
  const size_t n = sizeof kScheme - 1;
  if (header.size() < n) return false;
  for (size_t i = 0; i < n; ++i)
    if (std::tolower(static_cast<unsigned char>(header[i])) != kScheme[i]) return false;
  size_t b = n;
  while (b < header.size() && header[b] == ' ') ++b;
  return TenantRegistry::SecretEquals(header.substr(b), token);
}
}  // namespace

Result<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(const std::string& listen,
                                                                std::function<std::string()> render,
                                                                std::string token, std::function<void()> refused) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == listen.size())
    return InvalidArgument("metrics address '" + listen + "' is not host:port");
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  int port = 0;
  try {
    size_t used = 0;
    port = std::stoi(listen.substr(colon + 1), &used);
    if (used != listen.size() - colon - 1 || port < 0 || port > 65535) throw std::out_of_range("port");
  } catch (const std::exception&) {
    return InvalidArgument("metrics address '" + listen + "' has no valid port");
  }
  std::unique_ptr<MetricsEndpoint> e(new MetricsEndpoint);
  e->impl_ = std::make_unique<Impl>();
  auto& srv = e->impl_->server;
  // Scrapes are rare: two threads, not httplib's default of one per core.
  srv.new_task_queue = [] { return new httplib::ThreadPool(2); };
  srv.Get("/metrics", [render = std::move(render), token = std::move(token), refused = std::move(refused)](
                          const httplib::Request& req, httplib::Response& res) {
    if (!token.empty() && !BearerMatches(req.get_header_value("Authorization"), token)) {
      if (refused) refused();
      res.status = 401;
      res.set_header("WWW-Authenticate", "Bearer realm=\"kvc metrics\"");
      res.set_content("401 Unauthorized\n", "text/plain; charset=utf-8");
      return;
    }
    res.set_content(render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  // SO_REUSEADDR only: httplib's default also sets SO_REUSEPORT, which would
  // let a second node share the port.
  srv.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  const int bound = port == 0 ? srv.bind_to_any_port(host) : (srv.bind_to_port(host, port) ? port : -1);
  if (bound <= 0) return Status(Code::kUnavailable, "cannot listen for metrics on " + listen);
  e->address_ = listen.substr(0, colon + 1) + std::to_string(bound);
  e->impl_->thread = std::thread([s = &srv] { s->listen_after_bind(); });
  // Running before Start returns, so that a stop cannot come first and be lost.
  for (int i = 0; i < 2000 && !srv.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return e;
}

MetricsEndpoint::~MetricsEndpoint() {
  if (!impl_) return;
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}
#else
struct MetricsEndpoint::Impl {};
Result<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(const std::string&, std::function<std::string()>,
                                                                std::string, std::function<void()>) {
  return Status(Code::kUnsupported, "built without cpp-httplib: no metrics endpoint");
}
MetricsEndpoint::~MetricsEndpoint() = default;
#endif

}  // namespace kvc::net
#endif  // KVC_NET_BUILD
