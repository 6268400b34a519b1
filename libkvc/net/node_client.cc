// Compiled only into kvc_net (libkvc/net/CMakeLists.txt), which defines
// KVC_NET_BUILD; kvc_core's source glob sees an empty file.
#ifdef KVC_NET_BUILD
#include "net/node_client.h"
#include "net/grpc_tuning.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/rpc_method.h>
#include <grpcpp/support/byte_buffer.h>

#include "core/key_hasher.h"
#include "kvc/v1/kvc.grpc.pb.h"
#include "net/node_service.h"
#include "net/wire.h"

namespace kvc::net {

NodeNamespace NodeNamespaceOf(const NamespaceFields& f) {
  NodeNamespace n;
  n.hash = std::string(HashAlgoName(f.hash));
  n.model = f.model;
  n.revision = f.revision;
  n.adapter = f.adapter;
  n.dtype = f.layout.dtype;
  n.layers = f.layout.layers;
  n.kv_heads = f.layout.kv_heads;
  n.head_dim = f.layout.head_dim;
  n.block_tokens = f.layout.block_tokens;
  n.shards = f.layout.shards;
  return n;
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

namespace {

struct GrpcImpl {
  std::string address;
  NodeClientOptions options;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Node::Stub> stub;
  // kvc.v1.Node/Load read as raw ByteBuffers (LoadChunkReader).
  std::unique_ptr<grpc::internal::RpcMethod> load_method;
  // kvc.v1.Node/Store written as raw ByteBuffers (Put).
  std::unique_ptr<grpc::internal::RpcMethod> store_method;

  using Clock = std::chrono::system_clock;
  Clock::time_point Deadline() const {
    auto d = Clock::now() + std::chrono::milliseconds(options.timeout_ms);
    if (options.call_deadline) {  // a cluster client's earlier deadline
      const auto c = options.call_deadline();
      if (c.time_since_epoch().count() != 0 && c < d) d = c;
    }
    return d;
  }

  // A call's context: its deadline and credential (the tenant's; the admin
  // token on admin calls, and on Stats when there is one).
  void Prepare(grpc::ClientContext* ctx, Clock::time_point deadline, bool admin = false) const {
    ctx->set_deadline(deadline);
    if (!admin && !options.as_tenant.empty()) {
      ctx->AddMetadata(kAsTenantKey, options.as_tenant);
      ctx->AddMetadata(kAdminTokenKey, options.admin_token);
    } else if (!admin && !options.tenant.empty()) {
      ctx->AddMetadata("authorization", "Bearer " + options.tenant + ":" + options.credential);
    }
    if (admin && !options.admin_token.empty()) ctx->AddMetadata(kAdminTokenKey, options.admin_token);
  }
  void Prepare(grpc::ClientContext* ctx) const { Prepare(ctx, Deadline()); }

  // Runs an idempotent call, `attempt(deadline)`, again after
  // KVC_ERR_UNAVAILABLE up to max_retries times within one deadline, with a
  // doubling back-off from 50 ms.
  template <class F>
  auto Retry(F&& attempt) const -> decltype(attempt(Clock::time_point())) {
    const auto deadline = Deadline();
    auto backoff = std::chrono::milliseconds(50);
    for (uint32_t n = 0;; ++n) {
      auto r = attempt(deadline);
      if (StatusOf(r).code() != Code::kUnavailable || n >= options.max_retries) return r;
      if (Clock::now() + backoff >= deadline) return r;
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
    }
  }
  static const Status& StatusOf(const Status& s) { return s; }
  template <class T>
  static Status StatusOf(const Result<T>& r) { return r.status(); }

  // A transport failure as a kvc status.
  Status FromGrpc(const grpc::Status& s) const {
    switch (s.error_code()) {
      case grpc::StatusCode::OK:
        return Status::Ok();
      case grpc::StatusCode::UNAUTHENTICATED:
      case grpc::StatusCode::PERMISSION_DENIED:
        return Status(Code::kPermission, "the node refused the credential: " + s.error_message());
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

// One kvc.v1.LoadChunk parsed straight from the reply's slices, so that its
// data is copied once, from gRPC's buffers into the caller's. Follows
// protobuf's rules: fields in any order, the last of a repeated scalar
// wins, a repeated message field merges, unknown fields are skipped.
// A batch's packed items (LoadChunk.items) are parsed alike, each with
// where its data lies.
class LoadChunkReader {
 public:
  struct Item {
    uint32_t index = 0;
    bool has_result = false;
    v1::Result result;
    uint64_t total = 0, data_len = 0;
    SliceReader::Mark data;
  };
  Status Parse(const grpc::ByteBuffer& bb) {
    result_.Clear();
    total_ = offset_ = data_len_ = 0;
    index_ = 0;
    has_result_ = false;
    has_chunk_ = false;
    items_.clear();
    if (!r_.Reset(bb)) return Bad();
    while (r_.left() > 0) {
      uint64_t field, v;
      uint32_t wire;
      if (!r_.Tag(&field, &wire)) return Bad();
      if (wire == 0 && (field == 2 || field == 3 || field == 5)) {
        if (!r_.Varint(&v)) return Bad();
        has_chunk_ = true;
        if (field == 5) {
          if (v > UINT32_MAX) return Bad();  // a uint32 on the wire
          index_ = static_cast<uint32_t>(v);
        } else {
          (field == 2 ? total_ : offset_) = v;
        }
      } else if (wire == 2 && (field == 1 || field == 4)) {
        if (!r_.Varint(&v) || v > r_.left()) return Bad();
        has_chunk_ = true;
        if (field == 1) {
          std::string r(v, '\0');
          if (!r_.Copy(r.data(), v) || !result_.MergeFromString(r)) return Bad();
          has_result_ = true;
        } else {
          data_ = r_.mark();
          data_len_ = v;
          if (!r_.Skip(v)) return Bad();
        }
      } else if (wire == 2 && field == 6) {
        if (!r_.Varint(&v) || v > r_.left() || !ParseItem(v)) return Bad();
      } else if (!r_.SkipValue(wire)) {
        return Bad();
      }
    }
    return Status::Ok();
  }
  const v1::Result& result() const { return result_; }
  uint64_t total_bytes() const { return total_; }
  uint64_t offset() const { return offset_; }
  uint64_t data_size() const { return data_len_; }
  bool has_result() const { return has_result_; }
  uint32_t index() const { return index_; }
  // Whether any of fields 1-5 came (a message of items alone has none).
  bool has_chunk() const { return has_chunk_; }
  const std::vector<Item>& items() const { return items_; }
  // Copies the data field into dst (data_size() bytes).
  void CopyData(uint8_t* dst) { r_.CopyFrom(data_, dst, data_len_); }
  void CopyItem(const Item& it, uint8_t* dst) { r_.CopyFrom(it.data, dst, it.data_len); }

 private:
  static Status Bad() { return Status(Code::kInternal, "the node sent a malformed load chunk"); }
  // One LoadItem of `len` bytes at the cursor.
  bool ParseItem(uint64_t len) {
    Item& it = items_.emplace_back();
    const uint64_t outer = r_.Enter(len);
    while (r_.left() > 0) {
      uint64_t f, v;
      uint32_t w;
      if (!r_.Tag(&f, &w)) return false;
      if (w == 0 && (f == 1 || f == 3)) {
        if (!r_.Varint(&v)) return false;
        if (f == 1) {
          if (v > UINT32_MAX) return false;
          it.index = static_cast<uint32_t>(v);
        } else {
          it.total = v;
        }
      } else if (w == 2 && (f == 2 || f == 4)) {
        if (!r_.Varint(&v) || v > r_.left()) return false;
        if (f == 2) {
          std::string r(v, '\0');
          if (!r_.Copy(r.data(), v) || !it.result.MergeFromString(r)) return false;
          it.has_result = true;
        } else {
          it.data = r_.mark();
          it.data_len = v;
          if (!r_.Skip(v)) return false;
        }
      } else if (!r_.SkipValue(w)) {
        return false;
      }
    }
    return r_.Leave(outer);
  }
  SliceReader r_;
  v1::Result result_;
  uint64_t total_ = 0, offset_ = 0, data_len_ = 0;
  uint32_t index_ = 0;
  bool has_result_ = false, has_chunk_ = false;
  SliceReader::Mark data_;
  std::vector<Item> items_;
};

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
  Status GetBatch(const NodeNamespace& ns, uint32_t shard, std::span<GetItem> items) override;
  Status PutBatch(const NodeNamespace& ns, uint32_t shard, std::span<PutItem> items, uint64_t ttl_ms) override;
  Result<uint64_t> BumpRevision(const NodeNamespace& ns, uint64_t cluster_count) override;
  Result<std::string> TenantCreate(const NodeTenantSpec& spec) override;
  Result<std::string> TenantListJson() override;
  Status TenantSetQuota(const std::string& name, int64_t host_quota_bytes, int64_t ssd_quota_bytes,
                        int32_t borrow) override;
  Status TenantDelete(const std::string& name) override;

 private:
  Status GetOnce(std::chrono::system_clock::time_point deadline, const NodeNamespace& ns, const BlockKey& key,
                 uint32_t shard, void* dst, uint64_t dst_cap, uint64_t* size);
  Status GetBatchOnce(std::chrono::system_clock::time_point deadline, const v1::LoadRequest& req,
                      std::span<GetItem> items, bool* answered);
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

namespace {

Result<std::string> ReadPemFile(const std::string& path, const char* what) {
  std::ifstream f(path);
  if (!f) return IoError(std::string("cannot read the ") + what + " " + path + ": " + std::strerror(errno));
  std::stringstream ss;
  ss << f.rdbuf();
  if (ss.str().find("-----BEGIN ") == std::string::npos)
    return InvalidArgument(std::string("the ") + what + " " + path + " is not a PEM file");
  return ss.str();
}

// TLS when a CA is given (with this client's certificate when given).
Result<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsOf(const NodeClientOptions& o) {
  if (o.tls_cert_path.empty() != o.tls_key_path.empty())
    return InvalidArgument("tls_cert_path and tls_key_path go together: give both or neither");
  if (o.tls_ca_path.empty()) {
    if (!o.tls_cert_path.empty()) return InvalidArgument("a client certificate needs TLS: give tls_ca_path too");
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions so;
  auto ca = ReadPemFile(o.tls_ca_path, "TLS CA");
  if (!ca.ok()) return ca.status();
  so.pem_root_certs = *ca;
  if (!o.tls_cert_path.empty()) {
    auto cert = ReadPemFile(o.tls_cert_path, "TLS certificate");
    if (!cert.ok()) return cert.status();
    auto key = ReadPemFile(o.tls_key_path, "TLS key");
    if (!key.ok()) return key.status();
    so.pem_cert_chain = *cert;
    so.pem_private_key = *key;
  }
  return grpc::SslCredentials(so);
}

}  // namespace

Result<std::unique_ptr<NodeClient>> ConnectGrpc(const std::string& address, const NodeClientOptions& options) {
  if (address.empty()) return InvalidArgument("the node address is empty");
  auto impl = std::make_unique<GrpcImpl>();
  impl->address = address;
  impl->options = options;
  grpc::ChannelArguments args;
  // Each handle its own connection: gRPC's global subchannel pool would
  // put every handle of a process to one node on one HTTP/2 connection, and
  // all their blocks through one flow-control window.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // A stream window of 8 MiB: a 1 MiB block arrives without waiting for
  // window updates.
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 8 << 20);
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  // Reconnect soon after a node comes back (gRPC's default waits 1 s and
  // more), so that retries within one call's deadline can reach it.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  TuneChannelArguments(args);  // net/grpc_tuning.h
  for (char c : options.admin_token)
    if (c < 0x20 || c > 0x7e) return InvalidArgument("the admin token may hold only printable ASCII characters");
  auto creds = ChannelCredentialsOf(options);
  if (!creds.ok()) return creds.status();
  impl->channel = grpc::CreateCustomChannel(address, *creds, args);
  const auto deadline = std::chrono::system_clock::now() + std::chrono::milliseconds(options.connect_timeout_ms);
  if (!impl->channel->WaitForConnected(deadline))
    return Status(Code::kUnavailable, "cannot reach node " + address + " within " +
                                          std::to_string(options.connect_timeout_ms) + " ms");
  impl->stub = v1::Node::NewStub(impl->channel);
  impl->load_method = std::make_unique<grpc::internal::RpcMethod>(
      "/kvc.v1.Node/Load", grpc::internal::RpcMethod::SERVER_STREAMING, impl->channel);
  impl->store_method = std::make_unique<grpc::internal::RpcMethod>(
      "/kvc.v1.Node/Store", grpc::internal::RpcMethod::CLIENT_STREAMING, impl->channel);
  return std::unique_ptr<NodeClient>(new GrpcNodeClient(std::move(impl)));
}

Result<std::string> GrpcNodeClient::StatsJson() {
  return impl_->Retry([&](GrpcImpl::Clock::time_point deadline) -> Result<std::string> {
    grpc::ClientContext ctx;
    impl_->Prepare(&ctx, deadline);
    // With an admin token, the whole node's counters.
    if (!impl_->options.admin_token.empty()) ctx.AddMetadata(kAdminTokenKey, impl_->options.admin_token);
    v1::StatsRequest req;
    v1::StatsResponse resp;
    KVC_RETURN_IF_ERROR(impl_->FromGrpc(impl_->stub->Stats(&ctx, req, &resp)));
    KVC_RETURN_IF_ERROR(FromResult(resp.result()));
    return resp.json();
  });
}

Result<size_t> GrpcNodeClient::Match(const NodeNamespace& ns, const std::vector<BlockKey>& keys,
                                 std::vector<uint8_t>* tiers) {
  if (keys.size() > kMaxMatchKeys) return InvalidArgument("more than " + std::to_string(kMaxMatchKeys) + " keys");
  v1::MatchRequest req;
  SpecOf(ns, req.mutable_ns());
  for (const auto& k : keys) req.add_keys(Bytes(k));
  return impl_->Retry([&](GrpcImpl::Clock::time_point deadline) -> Result<size_t> {
    grpc::ClientContext ctx;
    impl_->Prepare(&ctx, deadline);
    v1::MatchResponse resp;
    KVC_RETURN_IF_ERROR(impl_->FromGrpc(impl_->stub->Match(&ctx, req, &resp)));
    return MatchReply(resp, keys.size(), tiers);
  });
}

Result<size_t> GrpcNodeClient::MatchTokens(const NodeNamespace& ns, const std::vector<uint32_t>& tokens,
                                       std::vector<uint8_t>* tiers, std::vector<BlockKey>* keys) {
  if (tokens.size() > kMaxMatchTokens) return InvalidArgument("more than " + std::to_string(kMaxMatchTokens) + " tokens");
  v1::MatchRequest req;
  SpecOf(ns, req.mutable_ns());
  req.mutable_tokens()->Add(tokens.begin(), tokens.end());
  return impl_->Retry([&](GrpcImpl::Clock::time_point deadline) -> Result<size_t> {
    grpc::ClientContext ctx;
    impl_->Prepare(&ctx, deadline);
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
  });
}

Status GrpcNodeClient::Get(const NodeNamespace& ns, const BlockKey& key, uint32_t shard, void* dst, uint64_t dst_cap,
                       uint64_t* size) {
  return impl_->Retry([&](GrpcImpl::Clock::time_point deadline) { return GetOnce(deadline, ns, key, shard, dst, dst_cap, size); });
}

Status GrpcNodeClient::GetOnce(std::chrono::system_clock::time_point deadline, const NodeNamespace& ns,
                               const BlockKey& key, uint32_t shard, void* dst, uint64_t dst_cap, uint64_t* size) {
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx, deadline);
  v1::LoadRequest req;
  SpecOf(ns, req.mutable_ns());
  req.set_key(Bytes(key));
  req.set_shard(shard);
  std::unique_ptr<grpc::ClientReader<grpc::ByteBuffer>> reader(
      grpc::internal::ClientReaderFactory<grpc::ByteBuffer>::Create(impl_->channel.get(), *impl_->load_method, &ctx,
                                                                    req));
  grpc::ByteBuffer bb;
  LoadChunkReader c;
  Status st;
  if (!reader->Read(&bb)) {
    st = impl_->FromGrpc(reader->Finish());
    return st.ok() ? Status(Code::kInternal, "the node ended a load without a reply") : st;
  }
  st = c.Parse(bb);
  if (!st.ok()) {
    ctx.TryCancel();
    (void)reader->Finish();
    return st;
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
      for (;;) {
        if (c.offset() != got || c.data_size() > total - got) {
          st = Status(Code::kInternal, "the node sent a chunk out of order or past the block");
          ctx.TryCancel();
          break;
        }
        c.CopyData(static_cast<uint8_t*>(dst) + got);
        got += c.data_size();
        if (got >= total || !reader->Read(&bb)) break;
        st = c.Parse(bb);
        if (!st.ok()) {
          ctx.TryCancel();
          break;
        }
      }
      if (st.ok() && got != total) st = Status(Code::kUnavailable, "the node ended the load after " +
                                                                      std::to_string(got) + " of " +
                                                                      std::to_string(total) + " bytes");
    }
  }
  grpc::Status gs = reader->Finish();
  if (st.ok() && dst != nullptr) st = impl_->FromGrpc(gs);
  return st;
}

namespace {

grpc::ByteBuffer BufferOf(const google::protobuf::MessageLite& m) {
  grpc::Slice s(m.SerializeAsString());
  return grpc::ByteBuffer(&s, 1);
}

// StoreMessage{chunk: StoreChunk{offset, data}}, the bytes protobuf would
// give, with the data copied once: into a slice of gRPC's (not into a
// message's string and then again into a slice when it is serialized).
grpc::ByteBuffer ChunkBuffer(uint64_t offset, const uint8_t* data, uint64_t n) {
  std::string inner;
  if (offset != 0) {
    inner.push_back(static_cast<char>((1 << 3) | 0));
    PutVarint(&inner, offset);
  }
  if (n > 0) {
    PutLengthPrefix(&inner, 2, n);
  }
  std::string head;
  PutLengthPrefix(&head, 2, inner.size() + n);
  head += inner;
  grpc::Slice parts[2] = {grpc::Slice(head), grpc::Slice(data, n)};
  return grpc::ByteBuffer(parts, n > 0 ? 2 : 1);
}

}  // namespace

Status GrpcNodeClient::Put(const NodeNamespace& ns, const BlockKey& key, uint32_t shard, const void* src, uint64_t len,
                       uint64_t ttl_ms, const BlockKey* parent) {
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx);
  // Fewer packets and wake-ups per put: the headers go with the begin
  // message (corked, buffer hint), the commit with the half-close
  // (WriteLast); a 1 MiB put is three writes (strace): headers and begin,
  // the chunk, the commit. Writing the chunks with the buffer hint too, so
  // that the last one left with the commit, made puts slower
  // (docs/benchmarks.md, "Node over loopback").
  ctx.set_initial_metadata_corked(true);
  v1::StoreResponse resp;
  std::unique_ptr<grpc::ClientWriter<grpc::ByteBuffer>> writer(
      grpc::internal::ClientWriterFactory<grpc::ByteBuffer>::Create(impl_->channel.get(), *impl_->store_method, &ctx,
                                                                    &resp));
  v1::StoreMessage m;
  auto* b = m.mutable_begin();
  SpecOf(ns, b->mutable_ns());
  b->set_key(Bytes(key));
  b->set_shard(shard);
  b->set_ttl_ms(ttl_ms);
  if (parent) b->set_parent(Bytes(*parent));
  b->set_total_bytes(len);
  if (impl_->options.membership_epoch) b->set_membership_epoch(impl_->options.membership_epoch());
  bool ok = writer->Write(BufferOf(m), grpc::WriteOptions().set_buffer_hint());
  for (uint64_t off = 0; ok && off < len;) {
    const uint64_t n = std::min<uint64_t>(kMaxChunkBytes, len - off);
    ok = writer->Write(ChunkBuffer(off, static_cast<const uint8_t*>(src) + off, n));
    off += n;
  }
  if (ok) {
    m.Clear();
    m.mutable_commit();
    writer->WriteLast(BufferOf(m), grpc::WriteOptions());
  } else {
    writer->WritesDone();
  }
  KVC_RETURN_IF_ERROR(impl_->FromGrpc(writer->Finish()));
  return FromResult(resp.result());
}

// One Load of every key (LoadRequest.keys); each key's chunks are copied
// straight into its item's dst. Retried as Get is, but only while the node
// answered no key (*answered false): a retry would load the keys answered
// again.
Status GrpcNodeClient::GetBatch(const NodeNamespace& ns, uint32_t shard, std::span<GetItem> items) {
  if (items.size() > kMaxBatchItems) return TooManyBatchItems(items.size());
  if (items.empty()) return Status::Ok();
  v1::LoadRequest req;
  SpecOf(ns, req.mutable_ns());
  req.set_shard(shard);
  for (const GetItem& it : items) req.add_keys(Bytes(it.key));
  const auto deadline = impl_->Deadline();
  auto backoff = std::chrono::milliseconds(50);
  for (uint32_t n = 0;; ++n) {
    bool answered = false;
    Status st = GetBatchOnce(deadline, req, items, &answered);
    if (st.code() != Code::kUnavailable || answered || n >= impl_->options.max_retries ||
        GrpcImpl::Clock::now() + backoff >= deadline)
      return st;
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
  }
}

Status GrpcNodeClient::GetBatchOnce(std::chrono::system_clock::time_point deadline, const v1::LoadRequest& req,
                                    std::span<GetItem> items, bool* answered) {
  for (GetItem& it : items) {
    it.size = 0;
    it.status = Status(Code::kInternal, "not answered");
  }
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx, deadline);
  std::unique_ptr<grpc::ClientReader<grpc::ByteBuffer>> reader(
      grpc::internal::ClientReaderFactory<grpc::ByteBuffer>::Create(impl_->channel.get(), *impl_->load_method, &ctx,
                                                                    req));
  grpc::ByteBuffer bb;
  LoadChunkReader c;
  Status failed;           // a failure of the call
  size_t next = 0;         // the next key to be answered
  size_t cur = 0;          // the key being received, while `receiving`
  bool receiving = false;  // cur's bytes are not all in
  uint64_t total = 0, got = 0;
  bool copy = false;
  // The message's chunk (fields 1-5): the first of a key (with its
  // result) or the next bytes of the key being received. False: `failed`.
  auto on_chunk = [&]() -> bool {
    if (receiving) {
      if (c.index() != cur || c.has_result() || c.offset() != got || c.data_size() > total - got) {
        failed = Status(Code::kInternal, "the node sent a chunk of key " + std::to_string(c.index()) + " at offset " +
                                             std::to_string(c.offset()) + " while key " + std::to_string(cur) +
                                             " had " + std::to_string(got) + " of " + std::to_string(total) +
                                             " bytes");
        return false;
      }
    } else {
      if (next >= items.size() || c.index() != next || !c.has_result() || c.offset() != 0) {
        failed = Status(Code::kInternal, "the node sent a chunk of key " + std::to_string(c.index()) + " at offset " +
                                             std::to_string(c.offset()) + " where key " + std::to_string(next) +
                                             " of " + std::to_string(items.size()) + " begins");
        return false;
      }
      cur = next++;
      *answered = true;
      GetItem& it = items[cur];
      Status rs = FromResult(c.result());
      if (!rs.ok()) {
        it.status = rs;
        if (FailsBatchCall(rs.code())) {  // the request's failure, not the key's
          failed = rs;
          return false;
        }
        return true;
      }
      total = c.total_bytes();
      got = 0;
      it.size = total;
      copy = it.dst != nullptr && total <= it.cap;
      if (it.dst != nullptr && !copy)
        it.status = Status(Code::kLayout, "the block shard is " + std::to_string(total) + " bytes, the buffer " +
                                              std::to_string(it.cap));
      if (c.data_size() > total) {
        failed = Status(Code::kInternal, "the node sent a chunk past the block of key " + std::to_string(cur));
        receiving = true;
        return false;
      }
      receiving = true;
    }
    if (copy) c.CopyData(static_cast<uint8_t*>(items[cur].dst) + got);
    got += c.data_size();
    if (got == total) {
      receiving = false;
      if (copy || items[cur].dst == nullptr) items[cur].status = Status::Ok();
    }
    return true;
  };
  // A key answered whole by an item (LoadChunk.items): in key order, never
  // while a key's chunks are in flight, each once, its data exactly its
  // total_bytes. False: `failed`.
  auto on_item = [&](const LoadChunkReader::Item& x) -> bool {
    if (receiving || next >= items.size() || x.index != next || !x.has_result) {
      failed = Status(Code::kInternal, "the node sent an item of key " + std::to_string(x.index) + " where " +
                                           (receiving ? "key " + std::to_string(cur) + " had " + std::to_string(got) +
                                                            " of " + std::to_string(total) + " bytes"
                                                      : "key " + std::to_string(next) + " of " +
                                                            std::to_string(items.size()) + " begins") +
                                           (x.has_result ? "" : " (an item without a result)"));
      return false;
    }
    Status rs = FromResult(x.result);
    if (rs.ok() ? x.data_len != x.total : x.data_len != 0) {
      failed = Status(Code::kInternal, "the node sent an item of key " + std::to_string(x.index) + " with " +
                                           std::to_string(x.data_len) + " bytes of data" +
                                           (rs.ok() ? ", its total_bytes " + std::to_string(x.total) : " and a failure"));
      return false;
    }
    GetItem& it = items[next++];
    *answered = true;
    if (!rs.ok()) {
      it.status = rs;
      if (FailsBatchCall(rs.code())) {  // the request's failure, not the key's
        failed = rs;
        return false;
      }
      return true;
    }
    it.size = x.total;
    if (it.dst == nullptr) {
      it.status = Status::Ok();
    } else if (x.total > it.cap) {
      it.status = Status(Code::kLayout, "the block shard is " + std::to_string(x.total) + " bytes, the buffer " +
                                            std::to_string(it.cap));
    } else {
      c.CopyItem(x, static_cast<uint8_t*>(it.dst));
      it.status = Status::Ok();
    }
    return true;
  };
  while (reader->Read(&bb)) {
    failed = c.Parse(bb);
    if (!failed.ok()) break;
    if ((c.has_chunk() || c.items().empty()) && !on_chunk()) break;
    bool ok = true;
    for (const auto& x : c.items())
      if (!(ok = on_item(x))) break;
    if (!ok) break;
  }
  if (!failed.ok()) ctx.TryCancel();
  const grpc::Status gs = reader->Finish();
  if (failed.ok() && receiving)
    failed = Status(Code::kUnavailable, "the node ended the load of key " + std::to_string(cur) + " after " +
                                            std::to_string(got) + " of " + std::to_string(total) + " bytes");
  if (failed.ok() && next < items.size()) {
    failed = impl_->FromGrpc(gs);
    if (failed.ok())
      failed = Status(Code::kInternal, "the node ended a load after " + std::to_string(next) + " of " +
                                           std::to_string(items.size()) + " keys");
  }
  if (failed.ok()) return failed;
  // The key in flight and every key after it carry the failure.
  for (size_t i = receiving ? cur : next; i < items.size(); ++i) items[i].status = failed;
  return failed;
}

// One Store stream of every block (StoreBegin.batch_blocks), each begin,
// chunks, commit; never retried (a block committed stays committed).
Status GrpcNodeClient::PutBatch(const NodeNamespace& ns, uint32_t shard, std::span<PutItem> items,
                                uint64_t ttl_ms) {
  if (items.size() > kMaxBatchItems) return TooManyBatchItems(items.size());
  if (items.empty()) return Status::Ok();
  for (PutItem& it : items) it.status = Status(Code::kInternal, "not answered");
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx);
  ctx.set_initial_metadata_corked(true);  // as Put
  v1::StoreResponse resp;
  std::unique_ptr<grpc::ClientWriter<grpc::ByteBuffer>> writer(
      grpc::internal::ClientWriterFactory<grpc::ByteBuffer>::Create(impl_->channel.get(), *impl_->store_method, &ctx,
                                                                    &resp));
  v1::StoreMessage m;
  auto* b = m.mutable_begin();
  SpecOf(ns, b->mutable_ns());
  b->set_shard(shard);
  b->set_ttl_ms(ttl_ms);
  b->set_batch_blocks(static_cast<uint32_t>(items.size()));
  if (impl_->options.membership_epoch) b->set_membership_epoch(impl_->options.membership_epoch());
  v1::StoreMessage cm;
  cm.mutable_commit();
  const std::string commit = cm.SerializeAsString();
  auto commit_buffer = [&] {
    grpc::Slice s(commit);
    return grpc::ByteBuffer(&s, 1);
  };
  auto set_begin = [&](const PutItem& it) {
    b->set_key(Bytes(it.key));
    if (it.parent) {
      b->set_parent(Bytes(*it.parent));
    } else {
      b->clear_parent();
    }
    b->set_total_bytes(it.len);
  };
  bool ok = true, sent_all = false;
  for (size_t i = 0; ok && i < items.size(); ++i) {
    const PutItem& it = items[i];
    if (it.len <= kMaxPackedBlockBytes) {
      // Consecutive small blocks go whole, several to a message (up to
      // kMaxChunkBytes of data): StoreMessage{blocks: StoreBlocks{blocks:
      // [StoreBlock{begin, data}...]}}, the bytes protobuf would give, each
      // block's data copied once, into a slice of gRPC's.
      std::vector<std::string> heads;
      std::vector<grpc::Slice> parts;
      uint64_t inner = 0, data = 0;
      size_t j = i;
      for (; j < items.size() && items[j].len <= kMaxPackedBlockBytes && data + items[j].len <= kMaxChunkBytes;
           ++j) {
        set_begin(items[j]);
        const std::string bs = b->SerializeAsString();
        const uint64_t n = items[j].len;
        std::string body;  // StoreBlock's fields but the data's bytes
        PutLengthPrefix(&body, 1, bs.size());
        body += bs;
        if (n > 0) {
          PutLengthPrefix(&body, 2, n);
        }
        std::string h;
        PutLengthPrefix(&h, 1, body.size() + n);
        h += body;
        inner += h.size() + n;
        data += n;
        heads.push_back(std::move(h));
      }
      std::string outer;
      PutLengthPrefix(&outer, 4, inner);
      for (size_t k = i; k < j; ++k) {
        parts.emplace_back(k == i ? outer + heads[0] : heads[k - i]);
        if (items[k].len > 0) parts.emplace_back(items[k].src, items[k].len);
      }
      grpc::ByteBuffer msg(parts.data(), parts.size());
      i = j - 1;
      if (j == items.size()) {
        writer->WriteLast(msg, grpc::WriteOptions());
        sent_all = true;
      } else {
        ok = writer->Write(msg);
      }
      continue;
    }
    set_begin(it);
    // The begin and the commit wait for the next chunk (buffer hint): a
    // block is one write, its begin and the previous commit with its data.
    ok = writer->Write(BufferOf(m), grpc::WriteOptions().set_buffer_hint());
    for (uint64_t off = 0; ok && off < it.len;) {
      const uint64_t n = std::min<uint64_t>(kMaxChunkBytes, it.len - off);
      ok = writer->Write(ChunkBuffer(off, static_cast<const uint8_t*>(it.src) + off, n));
      off += n;
    }
    if (!ok) break;
    if (i + 1 == items.size()) {
      writer->WriteLast(commit_buffer(), grpc::WriteOptions());
      sent_all = true;
    } else {
      ok = writer->Write(commit_buffer(), grpc::WriteOptions().set_buffer_hint());
    }
  }
  if (!sent_all) writer->WritesDone();
  const grpc::Status gs = writer->Finish();
  Status call = impl_->FromGrpc(gs);
  size_t answered = 0;
  if (call.ok()) {
    const size_t n = static_cast<size_t>(resp.results_size());
    if (n > items.size()) {
      call = Status(Code::kInternal, "the node answered " + std::to_string(n) + " results for a batch of " +
                                         std::to_string(items.size()) + " blocks");
    } else if (n == 0 && items.size() == 1) {  // a node from before batches: its one block's result
      items[0].status = FromResult(resp.result());
      answered = 1;
      if (FailsBatchCall(items[0].status.code())) call = items[0].status;
    } else {
      for (; answered < n; ++answered) {
        PutItem& it = items[answered];
        it.status = FromResult(resp.results(static_cast<int>(answered)));
        if (call.ok() && FailsBatchCall(it.status.code())) call = it.status;
      }
      // A batch's own result: the failure that ended its stream, if any.
      if (call.ok() && items.size() > 1) call = FromResult(resp.result());
      if (call.ok() && answered < items.size())
        call = Status(Code::kInternal, "the node answered " + std::to_string(answered) + " of " +
                                           std::to_string(items.size()) + " blocks");
    }
  }
  for (size_t i = answered; i < items.size(); ++i) items[i].status = call;
  return call;
}

Status GrpcNodeClient::Delete(const NodeNamespace& ns, const BlockKey& key) {
  v1::DeleteRequest req;
  SpecOf(ns, req.mutable_ns());
  req.set_key(Bytes(key));
  return impl_->Retry([&](GrpcImpl::Clock::time_point deadline) -> Status {
    grpc::ClientContext ctx;
    impl_->Prepare(&ctx, deadline);
    v1::DeleteResponse resp;
    KVC_RETURN_IF_ERROR(impl_->FromGrpc(impl_->stub->Delete(&ctx, req, &resp)));
    return FromResult(resp.result());
  });
}

Result<uint64_t> GrpcNodeClient::BumpRevision(const NodeNamespace& ns, uint64_t cluster_count) {
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx);
  v1::BumpRevisionRequest req;
  SpecOf(ns, req.mutable_ns());
  req.set_cluster_count(cluster_count);
  v1::BumpRevisionResponse resp;
  KVC_RETURN_IF_ERROR(impl_->FromGrpc(impl_->stub->BumpRevision(&ctx, req, &resp)));
  KVC_RETURN_IF_ERROR(FromResult(resp.result()));
  return resp.epoch();
}

// Tenant administration: the admin RPCs, with the admin token. A create is
// not retried (a lost reply would make a second tenant attempt EXISTS).
Result<std::string> GrpcNodeClient::TenantCreate(const NodeTenantSpec& spec) {
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx, impl_->Deadline(), true);
  v1::TenantCreateRequest req;
  auto* t = req.mutable_tenant();
  t->set_name(spec.name);
  t->set_isolation(spec.isolation);
  t->set_host_quota_bytes(spec.host_quota_bytes);
  t->set_ssd_quota_bytes(spec.ssd_quota_bytes);
  t->set_borrow(spec.borrow);
  v1::TenantCreateResponse resp;
  KVC_RETURN_IF_ERROR(impl_->FromGrpc(impl_->stub->TenantCreate(&ctx, req, &resp)));
  KVC_RETURN_IF_ERROR(FromResult(resp.result()));
  return resp.credential();
}

Result<std::string> GrpcNodeClient::TenantListJson() {
  return impl_->Retry([&](GrpcImpl::Clock::time_point deadline) -> Result<std::string> {
    grpc::ClientContext ctx;
    impl_->Prepare(&ctx, deadline, true);
    v1::TenantListRequest req;
    v1::TenantListResponse resp;
    KVC_RETURN_IF_ERROR(impl_->FromGrpc(impl_->stub->TenantList(&ctx, req, &resp)));
    KVC_RETURN_IF_ERROR(FromResult(resp.result()));
    return resp.json();
  });
}

Status GrpcNodeClient::TenantSetQuota(const std::string& name, int64_t host_quota_bytes, int64_t ssd_quota_bytes,
                                      int32_t borrow) {
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx, impl_->Deadline(), true);
  v1::TenantSetQuotaRequest req;
  req.set_name(name);
  req.set_host_quota_bytes(host_quota_bytes);
  req.set_ssd_quota_bytes(ssd_quota_bytes);
  req.set_borrow(borrow);
  v1::TenantSetQuotaResponse resp;
  KVC_RETURN_IF_ERROR(impl_->FromGrpc(impl_->stub->TenantSetQuota(&ctx, req, &resp)));
  return FromResult(resp.result());
}

Status GrpcNodeClient::TenantDelete(const std::string& name) {
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx, impl_->Deadline(), true);
  v1::TenantDeleteRequest req;
  req.set_name(name);
  v1::TenantDeleteResponse resp;
  KVC_RETURN_IF_ERROR(impl_->FromGrpc(impl_->stub->TenantDelete(&ctx, req, &resp)));
  return FromResult(resp.result());
}

}  // namespace kvc::net
#endif  // KVC_NET_BUILD
