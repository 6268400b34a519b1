// RemoteTier: the tier below the local ones, a kvc node (or a cluster of
// them) reached over the network. Cache (cache_remote.cc) asks it for what
// its host and SSD tiers miss, and hands it every committed store. The
// implementation over NodeClient (gRPC or the same-host path) lives in
// libkvc/net/remote_tier.h; kvc_core knows only this interface, so a build
// without gRPC has no remote tier (CacheOptions::remote_factory unset).
//
// Contract (every implementation):
//   - No call waits longer than the tier's per-request deadline; a node that
//     is down, slow or backing off is Code::kUnavailable (or kTimeout), which
//     the cache reports as a miss with reason node_down.
//   - Lookups (Match, Get, GetBatch) and Delete/BumpRevision are synchronous; Put only
//     queues: it never blocks on the network, and a put that does not fit the
//     queue is dropped and counted.
//   - Requests are made as the identity registered for `tenant` (SetIdentity),
//     or the tier's default identity for tenant 0.
//   - No exception crosses it.
//
// Thread-safe: every method may be called from any thread at once.
#ifndef KVC_CORE_REMOTE_TIER_H_
#define KVC_CORE_REMOTE_TIER_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/block_key.h"
#include "util/status.h"

namespace kvc {

struct NamespaceState;

// One block shard of a GetBatch: the key and the caller's destination
// (exactly the namespace's shard size) in, the item's outcome out (what Get
// would have returned for it).
struct RemoteGetItem {
  BlockKey key;
  void* dst = nullptr;
  Status status = Status(Code::kInternal, "not answered");  // out
};

// Counters of a remote tier, as kvc_cache_stats_json's "remote" object shows them.
struct RemoteStats {
  uint64_t hits = 0;            // blocks found on the node (match per block, get)
  uint64_t misses = 0;          // lookups the node answered "not there"
  uint64_t node_down = 0;       // lookups not made or failed: node unreachable, slow or backing off
  uint64_t refused = 0;         // calls the node refused (credential, namespace)
  uint64_t bytes_loaded = 0;    // block bytes fetched
  uint64_t sends = 0;           // committed stores sent (the node stored them, or had them)
  uint64_t bytes_sent = 0;
  uint64_t sends_dropped = 0;   // not queued: the queue was full
  uint64_t send_failures = 0;   // queued, but the node was down or refused them
  uint64_t queue_bytes = 0;     // bytes queued now
  uint64_t queue_capacity_bytes = 0;
  uint64_t connects = 0;        // connections opened (one per identity, again after a failure)
};

class RemoteTier {
 public:
  virtual ~RemoteTier() = default;

  // The identity (tenant name and plaintext credential) of requests made for
  // local tenant id `tenant` (non-zero). Replaces an earlier one.
  virtual void SetIdentity(uint32_t tenant, const std::string& name, const std::string& credential) = 0;

  // How many leading `keys` the node holds with every shard.
  virtual Result<size_t> Match(const NamespaceState& ns, uint32_t tenant, std::span<const BlockKey> keys) = 0;
  // Reads (key, shard) into `dst`, which holds exactly `len` bytes (the
  // namespace's shard size). NotFound on a miss; kCorrupt when the node's
  // block is not `len` bytes (nothing usable was written then).
  virtual Status Get(const NamespaceState& ns, uint32_t tenant, const BlockKey& key, uint32_t shard, void* dst,
                     uint64_t len) = 0;
  // Reads every item's (key, shard) into its dst, each `len` bytes; each
  // item's status is what Get would have returned for it, and the counters
  // move per item as Get moves them. At most 1024 items. This base
  // implementation calls Get once per item; a tier that can fetch many
  // blocks in one request (the node's) overrides it.
  virtual void GetBatch(const NamespaceState& ns, uint32_t tenant, uint32_t shard, uint64_t len,
                        std::span<RemoteGetItem> items) {
    for (RemoteGetItem& it : items) it.status = Get(ns, tenant, it.key, shard, it.dst, len);
  }
  // Queues a committed block shard (stored locally under revision `epoch`)
  // for the node. Not sent when the namespace's epoch moved on meanwhile.
  virtual void Put(const NamespaceState& ns, uint32_t tenant, uint64_t epoch, const BlockKey& key, uint32_t shard,
                   std::vector<uint8_t> bytes, uint64_t ttl_ms) = 0;
  // Removes every shard of `key` on the node, after dropping queued puts of
  // it. NotFound when the node had none.
  virtual Status Delete(const NamespaceState& ns, uint32_t tenant, const BlockKey& key) = 0;
  // Bumps the namespace's revision on the node, after dropping its queued puts.
  virtual Status BumpRevision(const NamespaceState& ns, uint32_t tenant) = 0;
  // Returns once every put queued before the call was sent or given up.
  virtual Status Flush() = 0;

  virtual RemoteStats Stats() = 0;
  // The node's address, for stats and messages.
  virtual std::string address() const = 0;
};

// Whether a remote call's status means the node is unreachable or slow.
inline bool IsNodeDown(const Status& s) {
  return s.code() == Code::kUnavailable || s.code() == Code::kTimeout;
}

}  // namespace kvc

#endif  // KVC_CORE_REMOTE_TIER_H_
