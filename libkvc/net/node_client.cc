// Compiled only into kvc_net (libkvc/net/CMakeLists.txt), which defines
// KVC_NET_BUILD; kvc_core's source glob sees an empty file.
#ifdef KVC_NET_BUILD
#include "net/node_client.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include <grpcpp/grpcpp.h>

#include "kvc/v1/kvc.grpc.pb.h"
#include "net/node_service.h"

namespace kvc::net {

namespace {

struct GrpcImpl {
  std::string address;
  NodeClientOptions options;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Node::Stub> stub;

  void Prepare(grpc::ClientContext* ctx) const {
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(options.timeout_ms));
    if (!options.tenant.empty())
      ctx->AddMetadata("authorization", "Bearer " + options.tenant + ":" + options.credential);
  }

  // A transport failure as a kvc status.
  Status FromGrpc(const grpc::Status& s) const {
    switch (s.error_code()) {
      case grpc::StatusCode::OK:
        return Status::Ok();
      case grpc::StatusCode::UNAUTHENTICATED:
        return Status(Code::kPermission, "the node refused the credential");
      case grpc::StatusCode::DEADLINE_EXCEEDED:
        return Status(Code::kTimeout, "the node did not answer within " + std::to_string(options.timeout_ms) + " ms");
      case grpc::StatusCode::UNAVAILABLE:
        return Status(Code::kUnavailable, "node " + address + " is unavailable: " + s.error_message());
      case grpc::StatusCode::RESOURCE_EXHAUSTED:
        return InvalidArgument("message too large for the node: " + s.error_message());
      default:
        return Status(Code::kInternal, "node " + address + ": " + s.error_message());
    }
  }
};

Status FromResult(const v1::Result& r) {
  if (r.code() == 0) return Status::Ok();
  if (r.code() < static_cast<int32_t>(Code::kFenced) || r.code() > 0) return Status(Code::kInternal, "the node sent status " + std::to_string(r.code()));
  if (r.code() == static_cast<int32_t>(Code::kNotFound)) return NotFound();
  return Status(static_cast<Code>(r.code()), r.message());
}

void SpecOf(const NodeNamespace& ns, v1::NamespaceSpec* s) {
  s->set_hash(ns.hash);
  s->set_model(ns.model);
  s->set_revision(ns.revision);
  s->set_adapter(ns.adapter);
  s->set_dtype(ns.dtype);
  s->set_layers(ns.layers);
  s->set_kv_heads(ns.kv_heads);
  s->set_head_dim(ns.head_dim);
  s->set_block_tokens(ns.block_tokens);
  s->set_shards(ns.shards);
}

std::string Bytes(const BlockKey& k) { return std::string(reinterpret_cast<const char*>(k.bytes.data()), 16); }

Result<BlockKey> KeyFrom(const std::string& b) {
  if (b.size() != 16) return Status(Code::kInternal, "the node sent a key of " + std::to_string(b.size()) + " bytes");
  BlockKey k;
  std::memcpy(k.bytes.data(), b.data(), 16);
  return k;
}

Result<size_t> MatchReply(const v1::MatchResponse& r, size_t n_keys, std::vector<uint8_t>* tiers) {
  KVC_RETURN_IF_ERROR(FromResult(r.result()));
  if (r.blocks() > n_keys || r.tiers().size() != n_keys)
    return Status(Code::kInternal, "the node's match reply does not fit the request");
  if (tiers) tiers->assign(r.tiers().begin(), r.tiers().end());
  return static_cast<size_t>(r.blocks());
}

class GrpcNodeClient final : public NodeClient {
 public:
  explicit GrpcNodeClient(std::unique_ptr<GrpcImpl> impl) : impl_(std::move(impl)) {}
  Result<std::string> StatsJson() override;
  Result<size_t> Match(const NodeNamespace& ns, const std::vector<BlockKey>& keys,
                       std::vector<uint8_t>* tiers) override;
  Result<size_t> MatchTokens(const NodeNamespace& ns, const std::vector<uint32_t>& tokens,
                             std::vector<uint8_t>* tiers, std::vector<BlockKey>* keys) override;
  Status Get(const NodeNamespace& ns, const BlockKey& key, uint32_t shard, void* dst, uint64_t dst_cap,
             uint64_t* size) override;
  Status Put(const NodeNamespace& ns, const BlockKey& key, uint32_t shard, const void* src, uint64_t len,
             uint64_t ttl_ms, const BlockKey* parent) override;
  Status Delete(const NodeNamespace& ns, const BlockKey& key) override;
  Result<uint64_t> BumpRevision(const NodeNamespace& ns) override;
  Result<std::string> TenantCreate(const NodeTenantSpec& spec) override;
  Result<std::string> TenantListJson() override;
  Status TenantSetQuota(const std::string& name, int64_t host_quota_bytes, int64_t ssd_quota_bytes,
                        int32_t borrow) override;
  Status TenantDelete(const std::string& name) override;

 private:
  std::unique_ptr<GrpcImpl> impl_;
};

}  // namespace

Result<std::unique_ptr<NodeClient>> NodeClient::Connect(const std::string& address, const NodeClientOptions& options) {
  if (address.rfind("unix:", 0) == 0) {
    std::string path = address.substr(5);
    if (path.empty()) return InvalidArgument("the node address 'unix:' names no socket path");
    return ConnectShm(path, options);
  }
  if (address.rfind("etcd://", 0) == 0 || address.rfind("peers:", 0) == 0) return ConnectCluster(address, options);
  return ConnectGrpc(address, options);
}

Result<std::unique_ptr<NodeClient>> ConnectGrpc(const std::string& address, const NodeClientOptions& options) {
  if (address.empty()) return InvalidArgument("the node address is empty");
  auto impl = std::make_unique<GrpcImpl>();
  impl->address = address;
  impl->options = options;
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  impl->channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  const auto deadline = std::chrono::system_clock::now() + std::chrono::milliseconds(options.connect_timeout_ms);
  if (!impl->channel->WaitForConnected(deadline))
    return Status(Code::kUnavailable, "cannot reach node " + address + " within " +
                                          std::to_string(options.connect_timeout_ms) + " ms");
  impl->stub = v1::Node::NewStub(impl->channel);
  return std::unique_ptr<NodeClient>(new GrpcNodeClient(std::move(impl)));
}

Result<std::string> GrpcNodeClient::StatsJson() {
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx);
  v1::StatsRequest req;
  v1::StatsResponse resp;
  KVC_RETURN_IF_ERROR(impl_->FromGrpc(impl_->stub->Stats(&ctx, req, &resp)));
  KVC_RETURN_IF_ERROR(FromResult(resp.result()));
  return resp.json();
}

Result<size_t> GrpcNodeClient::Match(const NodeNamespace& ns, const std::vector<BlockKey>& keys,
                                 std::vector<uint8_t>* tiers) {
  if (keys.size() > kMaxMatchKeys) return InvalidArgument("more than " + std::to_string(kMaxMatchKeys) + " keys");
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx);
  v1::MatchRequest req;
  SpecOf(ns, req.mutable_ns());
  for (const auto& k : keys) req.add_keys(Bytes(k));
  v1::MatchResponse resp;
  KVC_RETURN_IF_ERROR(impl_->FromGrpc(impl_->stub->Match(&ctx, req, &resp)));
  return MatchReply(resp, keys.size(), tiers);
}

Result<size_t> GrpcNodeClient::MatchTokens(const NodeNamespace& ns, const std::vector<uint32_t>& tokens,
                                       std::vector<uint8_t>* tiers, std::vector<BlockKey>* keys) {
  if (tokens.size() > kMaxMatchTokens) return InvalidArgument("more than " + std::to_string(kMaxMatchTokens) + " tokens");
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx);
  v1::MatchRequest req;
  SpecOf(ns, req.mutable_ns());
  req.mutable_tokens()->Add(tokens.begin(), tokens.end());
  v1::MatchResponse resp;
  KVC_RETURN_IF_ERROR(impl_->FromGrpc(impl_->stub->Match(&ctx, req, &resp)));
  auto n = MatchReply(resp, static_cast<size_t>(resp.keys_size()), tiers);
  if (!n.ok()) return n.status();
  if (keys) {
    keys->clear();
    for (const auto& b : resp.keys()) {
      auto k = KeyFrom(b);
      if (!k.ok()) return k.status();
      keys->push_back(*k);
    }
  }
  return n;
}

Status GrpcNodeClient::Get(const NodeNamespace& ns, const BlockKey& key, uint32_t shard, void* dst, uint64_t dst_cap,
                       uint64_t* size) {
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx);
  v1::LoadRequest req;
  SpecOf(ns, req.mutable_ns());
  req.set_key(Bytes(key));
  req.set_shard(shard);
  auto reader = impl_->stub->Load(&ctx, req);
  v1::LoadChunk c;
  Status st;
  if (!reader->Read(&c)) {
    st = impl_->FromGrpc(reader->Finish());
    return st.ok() ? Status(Code::kInternal, "the node ended a load without a reply") : st;
  }
  st = FromResult(c.result());
  uint64_t total = c.total_bytes();
  if (st.ok()) {
    *size = total;
    if (dst == nullptr) {
      ctx.TryCancel();
    } else if (total > dst_cap) {
      st = Status(Code::kLayout, "the block shard is " + std::to_string(total) + " bytes, the buffer " +
                                     std::to_string(dst_cap));
      ctx.TryCancel();
    } else {
      uint64_t got = 0;
      do {
        if (c.offset() != got || c.data().size() > total - got) {
          st = Status(Code::kInternal, "the node sent a chunk out of order or past the block");
          ctx.TryCancel();
          break;
        }
        std::memcpy(static_cast<uint8_t*>(dst) + got, c.data().data(), c.data().size());
        got += c.data().size();
      } while (got < total && reader->Read(&c));
      if (st.ok() && got != total) st = Status(Code::kUnavailable, "the node ended the load after " +
                                                                      std::to_string(got) + " of " +
                                                                      std::to_string(total) + " bytes");
    }
  }
  grpc::Status gs = reader->Finish();
  if (st.ok() && dst != nullptr) st = impl_->FromGrpc(gs);
  return st;
}

Status GrpcNodeClient::Put(const NodeNamespace& ns, const BlockKey& key, uint32_t shard, const void* src, uint64_t len,
                       uint64_t ttl_ms, const BlockKey* parent) {
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx);
  v1::StoreResponse resp;
  auto writer = impl_->stub->Store(&ctx, &resp);
  v1::StoreMessage m;
  auto* b = m.mutable_begin();
  SpecOf(ns, b->mutable_ns());
  b->set_key(Bytes(key));
  b->set_shard(shard);
  b->set_ttl_ms(ttl_ms);
  if (parent) b->set_parent(Bytes(*parent));
  b->set_total_bytes(len);
  if (impl_->options.membership_epoch) b->set_membership_epoch(impl_->options.membership_epoch());
  bool ok = writer->Write(m);
  for (uint64_t off = 0; ok && off < len;) {
    const uint64_t n = std::min<uint64_t>(kMaxChunkBytes, len - off);
    m.Clear();
    m.mutable_chunk()->set_offset(off);
    m.mutable_chunk()->set_data(static_cast<const uint8_t*>(src) + off, n);
    ok = writer->Write(m);
    off += n;
  }
  if (ok) {
    m.Clear();
    m.mutable_commit();
    writer->Write(m);
  }
  writer->WritesDone();
  KVC_RETURN_IF_ERROR(impl_->FromGrpc(writer->Finish()));
  return FromResult(resp.result());
}

Status GrpcNodeClient::Delete(const NodeNamespace& ns, const BlockKey& key) {
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx);
  v1::DeleteRequest req;
  SpecOf(ns, req.mutable_ns());
  req.set_key(Bytes(key));
  v1::DeleteResponse resp;
  KVC_RETURN_IF_ERROR(impl_->FromGrpc(impl_->stub->Delete(&ctx, req, &resp)));
  return FromResult(resp.result());
}

Result<uint64_t> GrpcNodeClient::BumpRevision(const NodeNamespace& ns) {
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx);
  v1::BumpRevisionRequest req;
  SpecOf(ns, req.mutable_ns());
  v1::BumpRevisionResponse resp;
  KVC_RETURN_IF_ERROR(impl_->FromGrpc(impl_->stub->BumpRevision(&ctx, req, &resp)));
  KVC_RETURN_IF_ERROR(FromResult(resp.result()));
  return resp.epoch();
}

// Tenant administration: the admin RPCs (the security work adds them).
Result<std::string> GrpcNodeClient::TenantCreate(const NodeTenantSpec&) {
  return Status(Code::kUnsupported, "tenant administration through a node is not built yet");
}
Result<std::string> GrpcNodeClient::TenantListJson() {
  return Status(Code::kUnsupported, "tenant administration through a node is not built yet");
}
Status GrpcNodeClient::TenantSetQuota(const std::string&, int64_t, int64_t, int32_t) {
  return Status(Code::kUnsupported, "tenant administration through a node is not built yet");
}
Status GrpcNodeClient::TenantDelete(const std::string&) {
  return Status(Code::kUnsupported, "tenant administration through a node is not built yet");
}

}  // namespace kvc::net
#endif  // KVC_NET_BUILD
