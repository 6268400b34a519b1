// The remote tier over NodeClient: what a Cache asks when its own tiers miss
// (kvc_cache_options.remote_address). One NodeClient per identity (tenant
// name and credential), opened on first use and pooled; a failed one is
// dropped and reopened after the back-off. Stores go to the node from one
// background sender thread through a bounded queue; the sender takes what is
// queued when it wakes (never waiting for more) and sends consecutive stores
// of one identity, namespace, shard and TTL as one NodeClient::PutBatch (one
// gRPC Store stream, or one same-host batch), each store's outcome counted
// as its own Put's would be.
//
// Failure behaviour: every request has the deadline remote_timeout_ms (the
// connect included). A request that finds the node unreachable or slow
// starts a back-off of remote_backoff_ms during which every lookup fails at
// once with KVC_ERR_UNAVAILABLE (the cache's node_down miss) and queued
// stores are given up (counted), so that neither lookups nor
// kvc_cache_flush wait on a dead node. Only idempotent calls are retried
// (NodeClientOptions::max_retries); stores never are.
//
// Thread-safe.
#ifndef KVC_NET_REMOTE_TIER_H_
#define KVC_NET_REMOTE_TIER_H_

#include <memory>

#include "core/cache.h"
#include "core/remote_tier.h"
#include "util/status.h"

namespace kvc::net {

// The remote tier of `options` (remote_address, remote_tenant,
// remote_credential, remote_timeout_ms, remote_tls_ca_path,
// remote_backoff_ms, remote_queue_bytes). Connects nothing yet: the node
// need not be up at open. KVC_ERR_INVALID_ARGUMENT for a malformed address.
Result<std::unique_ptr<RemoteTier>> NewRemoteTier(const CacheOptions& options);

}  // namespace kvc::net

#endif  // KVC_NET_REMOTE_TIER_H_
