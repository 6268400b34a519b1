// Compiled only into kvc_net (libkvc/net/CMakeLists.txt), which defines
// KVC_NET_BUILD; kvc_core's source glob sees an empty file.
#ifdef KVC_NET_BUILD
#include "net/node_service.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace kvc::net {
namespace {

void SetResult(v1::Result* r, const Status& s) {
  r->set_code(static_cast<int32_t>(s.code()));
  r->set_message(s.ok() ? "" : s.message());
}

grpc::Status Unauthenticated() {
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "wrong or missing credential (KVC_ERR_PERMISSION)");
}

Result<BlockKey> KeyOf(const std::string& bytes, const char* what) {
  if (bytes.size() != sizeof(BlockKey{}.bytes))
    return InvalidArgument(std::string(what) + " is " + std::to_string(bytes.size()) + " bytes, not 16");
  BlockKey k;
  std::memcpy(k.bytes.data(), bytes.data(), k.bytes.size());
  return k;
}

// Every field is bounded: a spec is at most kMaxMessageBytes, and the layout
// is validated before anything is sized from it.
Result<NamespaceFields> FieldsOf(const v1::NamespaceSpec& s) {
  NamespaceFields f;
  auto algo = ParseHashAlgo(s.hash().empty() ? "sha256" : s.hash());
  if (!algo.ok()) return algo.status();
  f.hash = *algo;
  if (s.model().empty()) return InvalidArgument("ns.model is empty");
  if (s.revision().empty()) return InvalidArgument("ns.revision is empty");
  f.model = s.model();
  f.revision = s.revision();
  f.adapter = s.adapter();
  f.layout.dtype = s.dtype();
  f.layout.layers = s.layers();
  f.layout.kv_heads = s.kv_heads();
  f.layout.head_dim = s.head_dim();
  f.layout.block_tokens = s.block_tokens();
  f.layout.shards = s.shards() == 0 ? 1 : s.shards();
  KVC_RETURN_IF_ERROR(f.layout.Validate());
  return f;
}

}  // namespace

Result<Caller> NodeService::Authenticate(const grpc::ServerContext& ctx) const {
  const auto& md = ctx.client_metadata();
  auto it = md.find("authorization");
  const bool has_tenants = !cache_.tenants().tenants().empty();
  if (it == md.end()) {
    if (has_tenants) return Status(Code::kPermission, "wrong or missing credential");
    return Caller{};
  }
  const std::string token(it->second.data(), it->second.size());
  static constexpr std::string_view kBearer = "Bearer ";
  const size_t colon = token.find(':');
  if (!has_tenants || token.compare(0, kBearer.size(), kBearer) != 0 || colon == std::string::npos ||
      colon < kBearer.size())
    return Status(Code::kPermission, "wrong or missing credential");
  const std::string name = token.substr(kBearer.size(), colon - kBearer.size());
  auto t = cache_.Authenticate(name, token.substr(colon + 1));
  if (!t.ok()) return Status(Code::kPermission, "wrong or missing credential");
  Caller c;
  c.tenant = t->id;
  c.name = t->name;
  if (t->isolation == Isolation::kIsolated) c.salt = t->salt;
  return c;
}

Result<NamespaceState*> NodeService::Open(const Caller& caller, const v1::NamespaceSpec& spec) {
  std::string id = std::to_string(caller.tenant) + '\n' + spec.SerializeAsString();
  {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = namespaces_.find(id);
    if (it != namespaces_.end()) return it->second;
  }
  auto fields = FieldsOf(spec);
  if (!fields.ok()) return fields.status();
  fields->salt = caller.salt;  // as kvc_namespace_open: the tenant's, never the caller's
  auto ns = cache_.OpenNamespace(*fields);
  if (!ns.ok()) return ns.status();
  std::lock_guard<std::mutex> lk(mu_);
  namespaces_.emplace(std::move(id), *ns);
  return *ns;
}

grpc::Status NodeService::Health(grpc::ServerContext* ctx, const v1::HealthRequest*, v1::HealthResponse* resp) {
  if (!Authenticate(*ctx).ok()) return Unauthenticated();
  resp->set_version(KVC_NODE_VERSION);
  resp->set_serving(true);
  return grpc::Status::OK;
}

grpc::Status NodeService::Match(grpc::ServerContext* ctx, const v1::MatchRequest* req, v1::MatchResponse* resp) {
  auto caller = Authenticate(*ctx);
  if (!caller.ok()) return Unauthenticated();
  auto run = [&]() -> Status {
    auto ns = Open(*caller, req->ns());
    if (!ns.ok()) return ns.status();
    if (req->keys_size() > 0 && req->tokens_size() > 0) return InvalidArgument("send keys or tokens, not both");
    std::vector<BlockKey> keys;
    if (req->tokens_size() > 0) {
      if (static_cast<size_t>(req->tokens_size()) > kMaxMatchTokens)
        return InvalidArgument("more than " + std::to_string(kMaxMatchTokens) + " tokens");
      const uint32_t bt = (*ns)->fields.layout.block_tokens;
      if (static_cast<uint32_t>(req->tokens_size()) < bt)
        return InvalidArgument("need at least one block of " + std::to_string(bt) + " tokens");
      keys.resize(req->tokens_size() / bt);
      (*ns)->hasher.Keys({req->tokens().data(), static_cast<size_t>(req->tokens_size())}, keys.data());
      for (const auto& k : keys) resp->add_keys(std::string(reinterpret_cast<const char*>(k.bytes.data()), 16));
    } else {
      if (static_cast<size_t>(req->keys_size()) > kMaxMatchKeys)
        return InvalidArgument("more than " + std::to_string(kMaxMatchKeys) + " keys");
      keys.reserve(req->keys_size());
      for (const auto& kb : req->keys()) {
        auto k = KeyOf(kb, "a key");
        if (!k.ok()) return k.status();
        keys.push_back(*k);
      }
    }
    std::string tiers(keys.size(), '\0');
    const size_t n = cache_.Match(**ns, keys, reinterpret_cast<uint8_t*>(tiers.data()), caller->tenant);
    resp->set_blocks(n);
    resp->set_tiers(std::move(tiers));
    return Status::Ok();
  };
  SetResult(resp->mutable_result(), run());
  return grpc::Status::OK;
}

grpc::Status NodeService::Load(grpc::ServerContext* ctx, const v1::LoadRequest* req,
                               grpc::ServerWriter<v1::LoadChunk>* writer) {
  auto caller = Authenticate(*ctx);
  if (!caller.ok()) return Unauthenticated();
  v1::LoadChunk first;
  auto fail = [&](const Status& s) {
    SetResult(first.mutable_result(), s);
    writer->Write(first);
    return grpc::Status::OK;
  };
  auto ns = Open(*caller, req->ns());
  if (!ns.ok()) return fail(ns.status());
  auto key = KeyOf(req->key(), "key");
  if (!key.ok()) return fail(key.status());
  if (req->shard() >= (*ns)->shards)
    return fail(InvalidArgument("shard " + std::to_string(req->shard()) + " is out of range: the namespace has " +
                                std::to_string((*ns)->shards)));
  // A pinned view: the bytes go out in chunks without a copy of the block.
  View v;
  Status st = cache_.AcquireView(**ns, *key, req->shard(), 0, &v, caller->tenant);
  if (!st.ok()) return fail(st);
  SetResult(first.mutable_result(), Status::Ok());
  first.set_total_bytes(v.size);
  bool ok = true;
  uint64_t off = 0;
  do {
    const uint64_t n = std::min<uint64_t>(kMaxChunkBytes, v.size - off);
    v1::LoadChunk& c = first;
    c.set_offset(off);
    c.set_data(reinterpret_cast<const char*>(v.data) + off, n);
    ok = !ctx->IsCancelled() && writer->Write(c);
    first.clear_result();
    first.clear_total_bytes();
    off += n;
  } while (ok && off < v.size);
  (void)cache_.ReleaseView(v.id);
  if (!ok) return grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
  return grpc::Status::OK;
}

void NodeService::set_write_fence(WriteFence fence) {
  std::lock_guard<std::mutex> lk(fence_mu_);
  fence_ = std::make_shared<const WriteFence>(std::move(fence));
}

Status NodeService::AdmitWrite(uint64_t epoch) const {
  std::shared_ptr<const WriteFence> f;
  {
    std::lock_guard<std::mutex> lk(fence_mu_);
    f = fence_;
  }
  return f && *f ? (*f)(epoch) : Status::Ok();
}

grpc::Status NodeService::Store(grpc::ServerContext* ctx, grpc::ServerReader<v1::StoreMessage>* reader,
                                v1::StoreResponse* resp) {
  auto caller = Authenticate(*ctx);
  if (!caller.ok()) return Unauthenticated();
  Reservation r;
  bool reserved = false;
  auto run = [&]() -> Status {
    v1::StoreMessage m;
    if (!reader->Read(&m) || !m.has_begin()) return InvalidArgument("a store stream starts with begin");
    const auto& b = m.begin();
    const uint64_t epoch = b.membership_epoch();
    KVC_RETURN_IF_ERROR(AdmitWrite(epoch));
    auto ns = Open(*caller, b.ns());
    if (!ns.ok()) return ns.status();
    auto key = KeyOf(b.key(), "key");
    if (!key.ok()) return key.status();
    if (b.shard() >= (*ns)->shards)
      return InvalidArgument("shard " + std::to_string(b.shard()) + " is out of range: the namespace has " +
                             std::to_string((*ns)->shards));
    if (b.total_bytes() != (*ns)->shard_bytes)
      return Status(Code::kLayout, "total_bytes is " + std::to_string(b.total_bytes()) +
                                       " but a block shard of this namespace is " +
                                       std::to_string((*ns)->shard_bytes) + " bytes");
    BlockKey parent;
    StoreParams p;
    p.ttl_ms = b.ttl_ms();
    p.tenant = caller->tenant;
    p.write_through = write_through_ && cache_.ssd() != nullptr;
    if (!b.parent().empty()) {
      auto pk = KeyOf(b.parent(), "parent");
      if (!pk.ok()) return pk.status();
      parent = *pk;
      p.parent = &parent;
    }
    KVC_RETURN_IF_ERROR(cache_.BeginStore(**ns, *key, b.shard(), p, &r));
    reserved = true;
    uint64_t written = 0;
    while (reader->Read(&m)) {
      if (m.has_commit()) {
        if (written != r.size)
          return InvalidArgument("commit after " + std::to_string(written) + " of " + std::to_string(r.size) +
                                 " bytes");
        // The fence again: the node may have lost its lease mid-stream.
        KVC_RETURN_IF_ERROR(AdmitWrite(epoch));
        reserved = false;
        return cache_.Commit(r);
      }
      if (!m.has_chunk()) return InvalidArgument("a second begin in one store stream");
      const auto& c = m.chunk();
      if (c.offset() != written)
        return InvalidArgument("chunk at offset " + std::to_string(c.offset()) + ", expected " +
                               std::to_string(written));
      if (c.data().size() > kMaxChunkBytes || c.data().size() > r.size - written)
        return InvalidArgument("a chunk of " + std::to_string(c.data().size()) + " bytes overruns the block");
      std::memcpy(r.data + written, c.data().data(), c.data().size());
      written += c.data().size();
    }
    return InvalidArgument("the store stream ended before commit");
  };
  Status st = run();
  if (reserved) cache_.Abort(r);
  SetResult(resp->mutable_result(), st);
  return grpc::Status::OK;
}

grpc::Status NodeService::Delete(grpc::ServerContext* ctx, const v1::DeleteRequest* req, v1::DeleteResponse* resp) {
  auto caller = Authenticate(*ctx);
  if (!caller.ok()) return Unauthenticated();
  auto run = [&]() -> Status {
    auto ns = Open(*caller, req->ns());
    if (!ns.ok()) return ns.status();
    auto key = KeyOf(req->key(), "key");
    if (!key.ok()) return key.status();
    return cache_.Delete(**ns, *key);
  };
  SetResult(resp->mutable_result(), run());
  return grpc::Status::OK;
}

grpc::Status NodeService::BumpRevision(grpc::ServerContext* ctx, const v1::BumpRevisionRequest* req,
                                       v1::BumpRevisionResponse* resp) {
  auto caller = Authenticate(*ctx);
  if (!caller.ok()) return Unauthenticated();
  auto ns = Open(*caller, req->ns());
  if (!ns.ok()) {
    SetResult(resp->mutable_result(), ns.status());
  } else {
    resp->set_epoch(cache_.BumpRevision(**ns));
    SetResult(resp->mutable_result(), Status::Ok());
  }
  return grpc::Status::OK;
}

grpc::Status NodeService::Stats(grpc::ServerContext* ctx, const v1::StatsRequest*, v1::StatsResponse* resp) {
  auto caller = Authenticate(*ctx);
  if (!caller.ok()) return Unauthenticated();
  nlohmann::json j = cache_.StatsJson();
  // A tenant sees its own row of the tenants table, never its neighbours'.
  if (j.contains("tenants")) {
    nlohmann::json mine = nlohmann::json::array();
    for (auto& t : j["tenants"])
      if (caller->tenant != 0 && t.value("name", "") == caller->name) mine.push_back(t);
    j["tenants"] = mine;
  }
  resp->set_json(j.dump());
  SetResult(resp->mutable_result(), Status::Ok());
  return grpc::Status::OK;
}

}  // namespace kvc::net
#endif  // KVC_NET_BUILD
