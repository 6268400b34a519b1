// EtcdClient: the subset of etcd's v3 gRPC API that cluster membership
// uses (KV Range/Put/Txn/DeleteRange, leases, watches), over stubs generated
// from etcd's own protos (libkvc/cluster/CMakeLists.txt).
//
// Every call has a deadline. With several endpoints, a call that finds its
// endpoint unavailable moves on to the next one within the same deadline,
// and later calls start at the endpoint that last answered.
//
// Thread-safe: calls may be made from any thread; an EtcdWatch is used by
// one thread at a time, except Cancel(), which any thread may call.
#ifndef KVC_CLUSTER_ETCD_CLIENT_H_
#define KVC_CLUSTER_ETCD_CLIENT_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "util/status.h"

namespace grpc {
class Channel;
class ClientContext;
}  // namespace grpc

namespace kvc::cluster {

struct EtcdKv {
  std::string key, value;
  int64_t create_revision = 0;  // 0: the key does not exist
  int64_t mod_revision = 0;     // for a deletion event: the deletion's revision
  int64_t version = 0;
  int64_t lease = 0;
};

struct EtcdRange {
  std::vector<EtcdKv> kvs;
  int64_t revision = 0;  // the store's revision when the range was read
};

// One comparison of a transaction: key's create_revision or mod_revision
// equal to (or, with kLess, below) `value` (0 with kCreateRevision and
// kEqual: the key does not exist). prefix: the comparison holds for every
// key under `key` (etcd's range_end; true when there is none).
struct EtcdCompare {
  enum class Target { kCreateRevision, kModRevision };
  enum class Result { kEqual, kLess };
  std::string key;
  Target target = Target::kCreateRevision;
  int64_t value = 0;
  Result result = Result::kEqual;
  bool prefix = false;
};

struct EtcdPut {
  std::string key, value;
  int64_t lease = 0;          // 0: none
  bool ignore_lease = false;  // keep the key's current lease
};

struct EtcdTxnResult {
  bool succeeded = false;  // every comparison held and the puts were made
  int64_t revision = 0;    // the store's revision after the transaction
};

struct EtcdEvent {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  EtcdKv kv;
};

// The end of a key prefix, as etcd's range_end ("" for the whole keyspace).
std::string EtcdPrefixEnd(const std::string& prefix);

class EtcdWatch;

class EtcdClient {
 public:
  // `endpoints`: "host:port" each, tried in order. Connects lazily: the
  // first call reports an unreachable etcd (KVC_ERR_UNAVAILABLE).
  static Result<std::unique_ptr<EtcdClient>> Create(const std::vector<std::string>& endpoints);
  ~EtcdClient();

  // The keys under `prefix` (prefix=false: the one key `key`).
  Result<EtcdRange> Range(const std::string& key, bool prefix, uint32_t timeout_ms);
  // Returns the revision of the put.
  Result<int64_t> Put(const EtcdPut& put, uint32_t timeout_ms);
  Result<EtcdTxnResult> Txn(const std::vector<EtcdCompare>& compare, const std::vector<EtcdPut>& success,
                            uint32_t timeout_ms);
  // Deletes `key` (or every key under it with prefix=true); returns the count.
  Result<int64_t> Delete(const std::string& key, bool prefix, uint32_t timeout_ms);

  // Deletes `key` if its mod_revision is still `mod_revision`; returns
  // whether it did.
  Result<bool> DeleteIf(const std::string& key, int64_t mod_revision, uint32_t timeout_ms);

  // Compacts the history up to `revision` (watches from before it then
  // report "compacted").
  Status Compact(int64_t revision, uint32_t timeout_ms);

  // A lease of ttl_s seconds; *granted_ttl_s receives the TTL etcd granted.
  Result<int64_t> LeaseGrant(int64_t ttl_s, int64_t* granted_ttl_s, uint32_t timeout_ms);
  // Renews `lease` once over a LeaseKeepAlive stream; returns its new TTL in
  // seconds, KVC_ERR_NOT_FOUND when etcd says the lease has expired.
  Result<int64_t> LeaseKeepAlive(int64_t lease, uint32_t timeout_ms);
  Status LeaseRevoke(int64_t lease, uint32_t timeout_ms);

  // Watches every key under `prefix` from `start_revision` (inclusive).
  // KVC_ERR_NOT_FOUND with the message "compacted:<rev>", here or from the
  // watch's first Next(), when that revision has been compacted away
  // (re-list, then watch from the listing's revision).
  Result<std::unique_ptr<EtcdWatch>> Watch(const std::string& prefix, int64_t start_revision, uint32_t timeout_ms);

  const std::vector<std::string>& endpoints() const { return endpoints_; }

 private:
  friend class EtcdWatch;
  struct Endpoint;
  EtcdClient() = default;
  // Runs `attempt` on endpoints from the current one until one answers with
  // something other than UNAVAILABLE, or the deadline passes.
  template <class Fn>
  Status Call(uint32_t timeout_ms, const char* what, Fn&& attempt);

  std::vector<std::string> endpoints_;
  std::vector<std::unique_ptr<Endpoint>> channels_;
  std::atomic<size_t> current_{0};
};

// An open watch stream.
class EtcdWatch {
 public:
  ~EtcdWatch();
  // Blocks for the next batch of events (may be empty: a progress
  // notification). *revision receives the revision the batch brings the
  // watcher to. An error ends the watch: KVC_ERR_NOT_FOUND "compacted:<rev>"
  // as in EtcdClient::Watch, KVC_ERR_UNAVAILABLE when etcd went away,
  // KVC_ERR_CLOSED after Cancel().
  Status Next(std::vector<EtcdEvent>* events, int64_t* revision);
  // Ends a Next() blocked in another thread. Any thread.
  void Cancel();

 private:
  friend class EtcdClient;
  struct Rep;
  explicit EtcdWatch(std::unique_ptr<Rep> rep);
  std::unique_ptr<Rep> rep_;
};

}  // namespace kvc::cluster

#endif  // KVC_CLUSTER_ETCD_CLIENT_H_
