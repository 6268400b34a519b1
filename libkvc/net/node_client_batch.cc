// NodeClient's batch calls as one Get / Put per item: what a transport
// without a batch form of its own does (test doubles); and the judgement of
// a batch outcome every transport shares (FailsBatchCall).
// Compiled only into kvc_net (libkvc/net/CMakeLists.txt).
#ifdef KVC_NET_BUILD
#include <string>

#include "net/node_client.h"

namespace kvc::net {

bool FailsBatchCall(Code c) {
  return c == Code::kUnavailable || c == Code::kTimeout || c == Code::kPermission ||
         c == Code::kInvalidArgument || c == Code::kInternal || c == Code::kUnsupported || c == Code::kFenced ||
         c == Code::kClosed;
}

Status TooManyBatchItems(size_t n) {
  return InvalidArgument("a batch of " + std::to_string(n) + " items: at most " + std::to_string(kMaxBatchItems));
}

Status NodeClient::GetBatch(const NodeNamespace& ns, uint32_t shard, std::span<GetItem> items) {
  if (items.size() > kMaxBatchItems) return TooManyBatchItems(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    GetItem& it = items[i];
    it.size = 0;
    it.status = Get(ns, it.key, shard, it.dst, it.cap, &it.size);
    if (FailsBatchCall(it.status.code())) {
      const Status failed = it.status;
      for (size_t j = i + 1; j < items.size(); ++j) items[j].status = failed;
      return failed;
    }
  }
  return Status::Ok();
}

Status NodeClient::PutBatch(const NodeNamespace& ns, uint32_t shard, std::span<PutItem> items, uint64_t ttl_ms) {
  if (items.size() > kMaxBatchItems) return TooManyBatchItems(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    PutItem& it = items[i];
    it.status = Put(ns, it.key, shard, it.src, it.len, ttl_ms, it.parent ? &*it.parent : nullptr);
    if (FailsBatchCall(it.status.code())) {
      const Status failed = it.status;
      for (size_t j = i + 1; j < items.size(); ++j) items[j].status = failed;
      return failed;
    }
  }
  return Status::Ok();
}

}  // namespace kvc::net
#endif  // KVC_NET_BUILD
