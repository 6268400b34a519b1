// Metrics: a node's request metrics (latency histograms per RPC, requests in
// flight, per-tenant request counters) and their Prometheus text rendering
// together with the cache's own counters; MetricsEndpoint serves them as
// `GET /metrics` on a port of its own (cpp-httplib).
//
// Thread-safe: every method may be called from any thread at once.
#ifndef KVC_NET_METRICS_H_
#define KVC_NET_METRICS_H_

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/cache.h"
#include "util/status.h"

namespace kvc::net {

enum class Rpc : int {
  kHealth, kMatch, kLoad, kStore, kDelete, kBumpRevision, kStats,
  kTenantCreate, kTenantList, kTenantSetQuota, kTenantDelete, kCount
};
const char* RpcName(Rpc rpc);

// What one tenant did through the node (requests it made, not what the
// cache counts: those are the cache's tenant rows).
struct TenantTraffic {
  uint64_t stores = 0, store_exists = 0, loads = 0, deletes = 0, bytes_stored = 0, bytes_loaded = 0;
};

class Metrics {
 public:
  // Upper bounds of the latency buckets, in seconds.
  static constexpr std::array<double, 14> kBuckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                      0.025,  0.05,    0.1,    0.25,  0.5,   1.0,   2.5};
  static constexpr uint32_t kMaxTenants = 4096;

  Metrics();

  // Times one call: in flight from construction to destruction.
  class Call {
   public:
    Call(Metrics* m, Rpc rpc);
    ~Call();
    Call(const Call&) = delete;
    Call& operator=(const Call&) = delete;

   private:
    Metrics* m_;
    Rpc rpc_;
    std::chrono::steady_clock::time_point start_;
  };
  Call Track(Rpc rpc) { return Call(this, rpc); }

  // A call (or a GET /metrics) refused for a wrong or missing credential.
  void CountAuthFailure() { auth_failures_.fetch_add(1, std::memory_order_relaxed); }
  // A store stream cancelled for sending nothing for the idle timeout.
  void CountStoreIdleCancel() { store_idle_cancels_.fetch_add(1, std::memory_order_relaxed); }
  // A store's outcome (`code` a kvc status) and a load's bytes, as `tenant`.
  void CountStore(uint32_t tenant, Code code, uint64_t bytes);
  void CountLoad(uint32_t tenant, uint64_t bytes);
  void CountDelete(uint32_t tenant);
  TenantTraffic Traffic(uint32_t tenant) const;

  // The Prometheus text exposition (format 0.0.4) of these metrics and of
  // `cache`'s stats. Labels name RPCs, tiers, reasons and tenants, never a key.
  std::string Render(Cache& cache) const;

 private:
  struct Histogram {
    std::atomic<uint64_t> buckets[kBuckets.size()] = {};
    std::atomic<uint64_t> count{0}, sum_ns{0};
  };
  struct Traffic_ {
    std::atomic<uint64_t> stores{0}, store_exists{0}, loads{0}, deletes{0}, bytes_stored{0}, bytes_loaded{0};
  };
  void Observe(Rpc rpc, std::chrono::nanoseconds d);

  Histogram latency_[static_cast<int>(Rpc::kCount)];
  std::atomic<int64_t> in_flight_{0};
  std::atomic<uint64_t> auth_failures_{0};
  std::atomic<uint64_t> store_idle_cancels_{0};
  std::unique_ptr<Traffic_[]> traffic_;  // by tenant id; 0: no tenant
};

// GET /metrics on its own address.
class MetricsEndpoint {
 public:
  // Binds `listen` ("host:port"; port 0 picks one) and serves `render`'s
  // text. With a `token`, only to a request carrying "Authorization: Bearer
  // <token>" (compared in constant time); any other request is answered 401
  // with a WWW-Authenticate header and no metric text, and `refused` (when
  // set) is called. Empty `token`: anyone who reaches the address is
  // answered. KVC_ERR_UNAVAILABLE when it cannot bind.
  static Result<std::unique_ptr<MetricsEndpoint>> Start(const std::string& listen,
                                                        std::function<std::string()> render,
                                                        std::string token = "",
                                                        std::function<void()> refused = nullptr);
  ~MetricsEndpoint();
  // The bound address, with the port chosen for port 0.
  const std::string& address() const { return address_; }

 private:
  struct Impl;
  MetricsEndpoint() = default;
  std::unique_ptr<Impl> impl_;
  std::string address_;
};

}  // namespace kvc::net

#endif  // KVC_NET_METRICS_H_
