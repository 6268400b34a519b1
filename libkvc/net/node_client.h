// NodeClient: a client of one kvc node (proto/kvc/v1/kvc.proto), behind
// the C ABI's kvc_node_* calls. Every call has a deadline; an unreachable
// node is KVC_ERR_UNAVAILABLE, a refused token KVC_ERR_PERMISSION.
//
// Thread-safe: calls may run from any thread at once.
#ifndef KVC_NET_NODE_CLIENT_H_
#define KVC_NET_NODE_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/block_key.h"
#include "util/status.h"

namespace kvc::v1 {
class NamespaceSpec;
}

namespace kvc::net {

struct NodeClientOptions {
  std::string tenant;      // empty: no authorization header
  std::string credential;
  uint32_t connect_timeout_ms = 2000;
  uint32_t timeout_ms = 10000;
};

// The namespace fields a client sends (no salt: it never travels).
struct NodeNamespace {
  std::string hash, model, revision, adapter, dtype;
  uint32_t layers = 0, kv_heads = 0, head_dim = 0, block_tokens = 0, shards = 0;
};

class NodeClient {
 public:
  // Connects within connect_timeout_ms; KVC_ERR_UNAVAILABLE otherwise.
  static Result<std::unique_ptr<NodeClient>> Connect(const std::string& address, const NodeClientOptions& options);
  ~NodeClient();

  Result<std::string> StatsJson();
  // Leading blocks present; `tiers` gets one kvc_tier per key.
  Result<size_t> Match(const NodeNamespace& ns, const std::vector<BlockKey>& keys, std::vector<uint8_t>* tiers);
  // As Match, with the node hashing `tokens`; `keys` gets their keys.
  Result<size_t> MatchTokens(const NodeNamespace& ns, const std::vector<uint32_t>& tokens,
                             std::vector<uint8_t>* tiers, std::vector<BlockKey>* keys);
  // Reads a block shard into `dst` (at most dst_cap bytes); *size gets its
  // size. dst NULL: only the size. KVC_ERR_LAYOUT when dst_cap is too small.
  Status Get(const NodeNamespace& ns, const BlockKey& key, uint32_t shard, void* dst, uint64_t dst_cap,
             uint64_t* size);
  // Stores a block shard: begin, chunks of at most 1 MiB, commit.
  Status Put(const NodeNamespace& ns, const BlockKey& key, uint32_t shard, const void* src, uint64_t len,
             uint64_t ttl_ms, const BlockKey* parent);
  Status Delete(const NodeNamespace& ns, const BlockKey& key);

 private:
  struct Impl;
  explicit NodeClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kvc::net

#endif  // KVC_NET_NODE_CLIENT_H_
