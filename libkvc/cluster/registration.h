// Registration: a node's membership in an etcd cluster, and its write fence.
//
// The node registers /kvc/<cluster>/nodes/<id> (etcd_layout.h) under a
// lease of ttl_s seconds, created only if absent (a transaction on the key's
// create_revision), and renews the lease every ttl_s/3. Its registered
// epoch is the revision of that creation. When etcd reports the lease
// expired (the node was paused, or etcd was away past the TTL) the node
// registers again, at a new epoch, after dropping every block it held
// (on_lease_lost): out of the cluster, it may have missed deletes and
// revision bumps that went only to the nodes then registered.
//
// The fence (Admit) admits a store only while the lease is known to be
// valid — the last renewal was sent less than the granted TTL minus a
// margin ago, on the node's monotonic clock, so a node resumed after a
// pause past its TTL refuses at once — and only from writers whose
// membership epoch is 0 (none given) or at least the registered epoch.
// Otherwise KVC_ERR_FENCED. Without etcd for longer than the TTL the node
// fences every write (the safe side) while reads go on.
//
// Before each registration the node writes its permanent roster
// record /kvc/<cluster>/roster/<id> (no lease; created if absent, so a
// restart keeps the first one): a delete made while the node is out of the
// view leaves it a hint there (cluster_client.h). `kvc cluster forget`
// removes it once the node is retired.
//
// Thread-safe: Admit() and registered_epoch() from any thread.
#ifndef KVC_CLUSTER_REGISTRATION_H_
#define KVC_CLUSTER_REGISTRATION_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "cluster/membership.h"
#include "util/status.h"

namespace kvc::cluster {

class EtcdClient;

struct RegistrationOptions {
  std::string cluster;    // "etcd://HOST:PORT[,...]/CLUSTER"
  std::string node_id;    // Default: the address with ':' and '[]' made '-'
  std::string address;    // host:port clients reach the node at (required)
  std::string zone;       // Default: none
  uint64_t capacity_bytes = 0;
  std::string version;    // the node's kvc version, for `kvc cluster nodes`
  // Lease TTL in seconds. Default (0): $KVC_CLUSTER_LEASE_TTL_S, else 6.
  uint32_t ttl_s = 0;
  // How long Start waits for etcd. Default: 5000 ms.
  uint32_t timeout_ms = 5000;
  // Called (on the registration's thread) when etcd says the lease has
  // expired, before the node registers again: while out of the cluster it
  // may have missed deletes and revision bumps, so the node drops what it
  // holds (NodeService::BumpAllRevisions). Default: nothing.
  std::function<void()> on_lease_lost;
  // Called (on the registration's thread, once) when the node finds its
  // drain mark (kvc cluster drain), checked at each lease renewal: the node
  // starts its hand-off (cluster/handoff.h). Must not block.
  std::function<void()> on_draining;
  // The etcd revision up to which the node has applied its delete hints
  // (ConfigSync::stats().revision). When set, the registration's
  // transaction also requires every key under hints/<id>/ to be older than
  // that: a hint written after the node read its hints (a delete that saw
  // the node absent from the view) makes the registration wait until the
  // node has applied it, so the node never serves a block deleted while it
  // was away. Unset: no such condition.
  std::function<int64_t()> hints_applied_revision;
};

class Registration {
 public:
  // Connects to etcd and registers. KVC_ERR_UNAVAILABLE when etcd cannot
  // be reached within timeout_ms. When another live process holds the id
  // (at another address), Start succeeds but the node stays fenced and
  // retries until that registration's lease expires.
  static Result<std::unique_ptr<Registration>> Start(const RegistrationOptions& options);
  // Stop(1000).
  ~Registration();

  // The write fence (NodeService::set_write_fence).
  Status Admit(uint64_t membership_epoch) const;
  // The epoch of the current registration; 0 while there is none.
  uint64_t registered_epoch() const { return epoch_.load(); }
  const std::string& node_id() const { return id_; }
  uint32_t ttl_s() const { return ttl_s_; }

  // Writes the hand-off's progress into the node's record ("handoff",
  // "handed_off"; NodeInfo), keeping its lease. Any thread.
  Status SetHandoff(const std::string& state, uint64_t handed_off, uint32_t timeout_ms);

  // Stops renewing and revokes the lease (so the node leaves the cluster at
  // once), waiting up to timeout_ms for etcd. Idempotent.
  void Stop(uint32_t timeout_ms);

 private:
  Registration() = default;
  Status Register(uint32_t timeout_ms);
  Status WriteRoster(uint32_t timeout_ms);  // before each registration
  void Run();
  void Log(const std::string& m) const;

  RegistrationOptions opts_;
  std::string id_, key_, drain_key_, roster_key_, hints_prefix_;
  uint32_t ttl_s_ = 6;
  std::unique_ptr<EtcdClient> etcd_;

  int64_t lease_ = 0;                     // the thread's (and Stop's, after it)
  int64_t granted_ttl_ms_ = 0;            // the thread's
  std::atomic<uint64_t> epoch_{0};
  bool draining_seen_ = false;            // the thread's
  std::atomic<int64_t> valid_until_ns_{0};  // steady clock; 0: no lease

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace kvc::cluster

#endif  // KVC_CLUSTER_REGISTRATION_H_
