// Compiled only into kvc_net (libkvc/net/CMakeLists.txt), which defines
// KVC_NET_BUILD; kvc_core's source glob sees an empty file.
#ifdef KVC_NET_BUILD
#include "net/node_service.h"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include <grpcpp/security/server_credentials.h>

#include "net/wire.h"

namespace kvc::net {

// Every field is bounded (a message is at most kMaxMessageBytes, a
// same-host frame at most its limit), and the layout is validated before
// anything is sized from it.
Result<NamespaceFields> FieldsFromWire(const NodeNamespace& n) {
  NamespaceFields f;
  auto algo = ParseHashAlgo(n.hash.empty() ? "sha256" : n.hash);
  if (!algo.ok()) return algo.status();
  f.hash = *algo;
  if (n.model.empty()) return InvalidArgument("ns.model is empty");
  if (n.revision.empty()) return InvalidArgument("ns.revision is empty");
  f.model = n.model;
  f.revision = n.revision;
  f.adapter = n.adapter;
  f.layout.dtype = n.dtype;
  f.layout.layers = n.layers;
  f.layout.kv_heads = n.kv_heads;
  f.layout.head_dim = n.head_dim;
  f.layout.block_tokens = n.block_tokens;
  f.layout.shards = n.shards == 0 ? 1 : n.shards;
  KVC_RETURN_IF_ERROR(f.layout.Validate());
  return f;
}
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

NodeNamespace NodeNamespaceOf(const v1::NamespaceSpec& s) {
  NodeNamespace n;
  n.hash = s.hash();
  n.model = s.model();
  n.revision = s.revision();
  n.adapter = s.adapter();
  n.dtype = s.dtype();
  n.layers = s.layers();
  n.kv_heads = s.kv_heads();
  n.head_dim = s.head_dim();
  n.block_tokens = s.block_tokens();
  n.shards = s.shards();
  return n;
}

Result<NamespaceFields> FieldsOf(const v1::NamespaceSpec& s) { return FieldsFromWire(NodeNamespaceOf(s)); }

Result<std::string> ReadPem(const std::string& path, const char* what) {
  std::ifstream f(path);
  if (!f) return IoError(std::string("cannot read the ") + what + " " + path + ": " + std::strerror(errno));
  std::stringstream ss;
  ss << f.rdbuf();
  if (ss.str().find("-----BEGIN ") == std::string::npos)
    return InvalidArgument(std::string("the ") + what + " " + path + " is not a PEM file");
  return ss.str();
}

// Whether `cert` holds a certificate and `key` its private key.
Status CheckPair(const std::string& cert, const std::string& key, const std::string& cert_path,
                 const std::string& key_path) {
  BIO* cb = BIO_new_mem_buf(cert.data(), static_cast<int>(cert.size()));
  X509* x = cb ? PEM_read_bio_X509(cb, nullptr, nullptr, nullptr) : nullptr;
  BIO* kb = BIO_new_mem_buf(key.data(), static_cast<int>(key.size()));
  EVP_PKEY* k = kb ? PEM_read_bio_PrivateKey(kb, nullptr, nullptr, nullptr) : nullptr;
  Status st;
  if (x == nullptr) st = InvalidArgument("the TLS certificate " + cert_path + " holds no certificate");
  else if (k == nullptr) st = InvalidArgument("the TLS key " + key_path + " holds no (unencrypted) private key");
  else if (X509_check_private_key(x, k) != 1)
    st = InvalidArgument("the TLS key " + key_path + " does not match the certificate " + cert_path);
  EVP_PKEY_free(k);
  X509_free(x);
  BIO_free(kb);
  BIO_free(cb);
  return st;
}

}  // namespace

Result<std::shared_ptr<grpc::ServerCredentials>> ServerCredentialsFromFiles(const std::string& cert_path,
                                                                          const std::string& key_path,
                                                                          const std::string& client_ca_path) {
  if (cert_path.empty() != key_path.empty())
    return InvalidArgument("the TLS certificate and key go together: give both or neither");
  if (cert_path.empty()) {
    if (!client_ca_path.empty()) return InvalidArgument("a client CA needs TLS (a certificate and key)");
    return grpc::InsecureServerCredentials();
  }
  auto cert = ReadPem(cert_path, "TLS certificate");
  if (!cert.ok()) return cert.status();
  auto key = ReadPem(key_path, "TLS key");
  if (!key.ok()) return key.status();
  KVC_RETURN_IF_ERROR(CheckPair(*cert, *key, cert_path, key_path));
  grpc::SslServerCredentialsOptions o(client_ca_path.empty()
                                          ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                          : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  if (!client_ca_path.empty()) {
    auto ca = ReadPem(client_ca_path, "TLS client CA");
    if (!ca.ok()) return ca.status();
    o.pem_root_certs = *ca;
  }
  o.pem_key_cert_pairs.push_back({*key, *cert});
  return grpc::SslServerCredentials(o);
}

nlohmann::json TenantStatsView(const nlohmann::json& node, uint32_t tenant, const std::string& name,
                               const TenantTraffic& tr) {
  nlohmann::json row = nlohmann::json::object();
  if (node.contains("tenants"))
    for (const auto& t : node["tenants"])
      if (t.value("id", 0u) == tenant) row = t;
  const uint64_t hits = row.value("hits", uint64_t{0}), misses = row.value("misses", uint64_t{0});
  nlohmann::json tiers{{"host", {{"used_bytes", row.value("host_bytes", uint64_t{0})},
                                 {"blocks", row.value("host_blocks", uint64_t{0})},
                                 {"quota_bytes", row.value("host_quota_bytes", uint64_t{0})}}}};
  if (row.contains("ssd_bytes"))
    tiers["ssd"] = {{"used_bytes", row.value("ssd_bytes", uint64_t{0})},
                    {"blocks", row.value("ssd_blocks", uint64_t{0})},
                    {"quota_bytes", row.value("ssd_quota_bytes", uint64_t{0})}};
  return nlohmann::json{{"scope", "tenant"},
                        {"tenant", name},
                        {"tenants", row.empty() ? nlohmann::json::array() : nlohmann::json::array({row})},
                        {"hits", hits},
                        {"misses", misses},
                        {"hit_ratio", hits + misses ? static_cast<double>(hits) / (hits + misses) : 0.0},
                        {"stores", tr.stores},
                        {"store_exists", tr.store_exists},
                        {"loads", tr.loads},
                        {"deletes", tr.deletes},
                        {"bytes_stored", tr.bytes_stored},
                        {"bytes_loaded", tr.bytes_loaded},
                        {"tiers", tiers}};
}

void NodeService::set_store_idle_timeout_ms(uint32_t ms) {
  std::lock_guard<std::mutex> lk(watch_mu_);
  store_idle_timeout_ms_ = ms == 0 ? 10000 : ms;
  watch_cv_.notify_all();
}

namespace {
int64_t SteadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

void NodeService::WatchStore(StoreWatch* w) {
  std::lock_guard<std::mutex> lk(watch_mu_);
  if (watched_.empty()) watch_cv_.notify_all();  // the watchdog sleeps while there is none
  watched_.insert(w);
}

// After this returns the watchdog no longer touches `w` (nor its context).
void NodeService::UnwatchStore(StoreWatch* w) {
  std::lock_guard<std::mutex> lk(watch_mu_);
  watched_.erase(w);
}

// Scans the watched streams a few times per timeout (every timeout/4,
// between 10 and 250 ms), so a stalled stream is cancelled within about
// 1.25 timeouts; sleeps while there is none.
void NodeService::Watchdog() {
  std::unique_lock<std::mutex> lk(watch_mu_);
  while (!stopping_) {
    if (watched_.empty()) {
      watch_cv_.wait(lk, [&] { return stopping_ || !watched_.empty(); });
      continue;
    }
    const int64_t timeout_ns = int64_t{store_idle_timeout_ms_} * 1000000;
    const auto period = std::chrono::milliseconds(std::clamp<uint32_t>(store_idle_timeout_ms_ / 4, 10, 250));
    const int64_t now = SteadyNowNs();
    for (StoreWatch* w : watched_) {
      const int64_t since = w->reading_since.load(std::memory_order_acquire);
      if (w->cancelled_after_ms != 0 || since == 0 || now - since < timeout_ns) continue;
      w->cancelled_after_ms = store_idle_timeout_ms_;
      metrics_.CountStoreIdleCancel();
      w->ctx->TryCancel();  // thread-safe; the stream's Read returns false
    }
    watch_cv_.wait_for(lk, period, [&] { return stopping_; });
  }
}

void NodeService::set_metrics_token(std::string token) { metrics_token_ = std::move(token); }

Status NodeService::StartMetrics(const std::string& listen, std::string* address) {
  auto e = MetricsEndpoint::Start(
      listen, [this] { return metrics_.Render(cache_); }, metrics_token_, [this] { metrics_.CountAuthFailure(); });
  if (!e.ok()) return e.status();
  metrics_endpoint_ = std::move(e).value();
  *address = metrics_endpoint_->address();
  return Status::Ok();
}

grpc::Status NodeService::AuthenticateAdmin(const grpc::ServerContext& ctx) {
  const auto& md = ctx.client_metadata();
  auto it = md.find(kAdminTokenKey);
  if (admin_token_.empty()) {
    metrics_.CountAuthFailure();
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        "this node has no admin token: admin calls are refused (KVC_ERR_PERMISSION)");
  }
  const std::string got = it == md.end() ? std::string() : std::string(it->second.data(), it->second.size());
  const bool same = TenantRegistry::SecretEquals(got, admin_token_);  // CRYPTO_memcmp
  if (!same) {
    metrics_.CountAuthFailure();
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "wrong or missing admin token (KVC_ERR_PERMISSION)");
  }
  return grpc::Status::OK;
}

Result<Caller> NodeService::Authenticate(const grpc::ServerContext& ctx, bool allow_as_tenant) {
  const auto& md = ctx.client_metadata();
  if (auto as = md.find(kAsTenantKey); as != md.end()) {
    auto adm = md.find(kAdminTokenKey);
    const std::string got = adm == md.end() ? std::string() : std::string(adm->second.data(), adm->second.size());
    const bool admin_ok = !admin_token_.empty() && TenantRegistry::SecretEquals(got, admin_token_);
    std::optional<TenantConfig> t;
    if (allow_as_tenant && admin_ok) t = cache_.tenants().Find(std::string(as->second.data(), as->second.size()));
    if (!t) {
      metrics_.CountAuthFailure();
      return Status(Code::kPermission, "wrong or missing credential");
    }
    Caller c;
    c.tenant = t->id;
    c.name = t->name;
    if (t->isolation == Isolation::kIsolated) c.salt = t->salt;
    return c;
  }
  auto it = md.find("authorization");
  const bool has_tenants = !cache_.tenants().tenants().empty();
  if (it == md.end()) {
    if (has_tenants) {
      metrics_.CountAuthFailure();
      return Status(Code::kPermission, "wrong or missing credential");
    }
    return Caller{};
  }
  const std::string token(it->second.data(), it->second.size());
  static constexpr std::string_view kBearer = "Bearer ";
  const size_t colon = token.find(':');
  if (!has_tenants || token.compare(0, kBearer.size(), kBearer) != 0 || colon == std::string::npos ||
      colon < kBearer.size()) {
    metrics_.CountAuthFailure();
    return Status(Code::kPermission, "wrong or missing credential");
  }
  const std::string name = token.substr(kBearer.size(), colon - kBearer.size());
  auto t = cache_.Authenticate(name, token.substr(colon + 1));
  if (!t.ok()) {
    metrics_.CountAuthFailure();
    return Status(Code::kPermission, "wrong or missing credential");
  }
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
  auto timer = metrics_.Track(Rpc::kHealth);
  if (!Authenticate(*ctx).ok()) return Unauthenticated();
  resp->set_version(KVC_NODE_VERSION);
  resp->set_serving(true);
  return grpc::Status::OK;
}

grpc::Status NodeService::Match(grpc::ServerContext* ctx, const v1::MatchRequest* req, v1::MatchResponse* resp) {
  auto timer = metrics_.Track(Rpc::kMatch);
  auto caller = Authenticate(*ctx, /*allow_as_tenant=*/true);
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

namespace {

// One pinned view shared by the slices of its chunks.
struct PinnedView {
  std::shared_ptr<PinnedViews> owner;
  uint64_t id = 0;
  std::atomic<uint32_t> refs{1};
};

void Unpin(void* p) {
  auto* v = static_cast<PinnedView*>(p);
  if (v->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  {
    std::shared_lock<std::shared_mutex> lk(v->owner->mu);
    if (v->owner->cache != nullptr) (void)v->owner->cache->ReleaseView(v->id);
  }
  delete v;
}

// A whole message as one ByteBuffer (a copy: small messages only).
grpc::ByteBuffer BufferOf(const google::protobuf::MessageLite& m) {
  grpc::Slice s(m.SerializeAsString());
  return grpc::ByteBuffer(&s, 1);
}

// One kvc.v1.StoreMessage read from its slices (ReadStoreMessage).
struct StoreMessageView {
  enum Kind { kNone, kBegin, kChunk, kCommit, kBlocks } kind = kNone;
  v1::StoreBegin begin;
  uint64_t offset = 0, data_len = 0;
  SliceReader::Mark data;
  // kBlocks: StoreBlocks.blocks, each its begin and where its data lies.
  struct Block {
    v1::StoreBegin begin;
    uint64_t data_len = 0;
    SliceReader::Mark data;
  };
  std::vector<Block> blocks;
  uint64_t blocks_bytes = 0;  // the data of all of them
};

// StoreBlocks (field 4 of StoreMessage), `len` bytes at the cursor, appended
// to m->blocks (a repeated field merges).
bool ReadStoreBlocks(SliceReader* r, uint64_t len, StoreMessageView* m) {
  const uint64_t outer = r->Enter(len);
  while (r->left() > 0) {
    uint64_t f, v;
    uint32_t w;
    if (!r->Tag(&f, &w)) return false;
    if (f != 1 || w != 2) {
      if (!r->SkipValue(w)) return false;
      continue;
    }
    if (!r->Varint(&v) || v > r->left()) return false;
    StoreMessageView::Block& b = m->blocks.emplace_back();
    const uint64_t block_outer = r->Enter(v);
    while (r->left() > 0) {
      uint64_t bf, bv;
      uint32_t bw;
      if (!r->Tag(&bf, &bw)) return false;
      if (bw == 2 && (bf == 1 || bf == 2)) {
        if (!r->Varint(&bv) || bv > r->left()) return false;
        if (bf == 1) {  // a repeated message field merges
          std::string s(bv, '\0');
          if (!r->Copy(s.data(), bv) || !b.begin.MergeFromString(s)) return false;
        } else {  // the last wins
          b.data = r->mark();
          b.data_len = bv;
          if (!r->Skip(bv)) return false;
        }
      } else if (!r->SkipValue(bw)) {
        return false;
      }
    }
    if (!r->Leave(block_outer)) return false;
  }
  if (!r->Leave(outer)) return false;
  m->blocks_bytes = 0;
  for (const auto& b : m->blocks) m->blocks_bytes += b.data_len;
  return true;
}

// Protobuf's rules: the last member of the oneof wins, a repeated member
// merges, unknown fields are skipped. False for bytes that are no
// StoreMessage.
bool ReadStoreMessage(const grpc::ByteBuffer& bb, SliceReader* r, StoreMessageView* m) {
  m->kind = StoreMessageView::kNone;
  if (!r->Reset(bb)) return false;
  while (r->left() > 0) {
    uint64_t field, len;
    uint32_t wire;
    if (!r->Tag(&field, &wire)) return false;
    if (wire != 2 || field < 1 || field > 4) {
      if (!r->SkipValue(wire)) return false;
      continue;
    }
    if (!r->Varint(&len) || len > r->left()) return false;
    if (field == 1) {
      std::string b(len, '\0');
      if (m->kind != StoreMessageView::kBegin) m->begin.Clear();
      if (!r->Copy(b.data(), len) || !m->begin.MergeFromString(b)) return false;
      m->kind = StoreMessageView::kBegin;
    } else if (field == 3) {
      if (!r->Skip(len)) return false;  // StoreCommit has no fields
      m->kind = StoreMessageView::kCommit;
    } else if (field == 4) {
      if (m->kind != StoreMessageView::kBlocks) m->blocks.clear();
      m->kind = StoreMessageView::kBlocks;
      if (!ReadStoreBlocks(r, len, m)) return false;
    } else {
      if (m->kind != StoreMessageView::kChunk) m->offset = m->data_len = 0;
      m->kind = StoreMessageView::kChunk;
      const uint64_t outer = r->Enter(len);
      while (r->left() > 0) {
        uint64_t f, v;
        uint32_t w;
        if (!r->Tag(&f, &w)) return false;
        if (f == 1 && w == 0) {
          if (!r->Varint(&m->offset)) return false;
        } else if (f == 2 && w == 2) {
          if (!r->Varint(&v) || v > r->left()) return false;
          m->data = r->mark();
          m->data_len = v;
          if (!r->Skip(v)) return false;
        } else if (!r->SkipValue(w)) {
          return false;
        }
      }
      if (!r->Leave(outer)) return false;
    }
  }
  return true;
}

}  // namespace

NodeService::NodeService(Cache& cache, bool write_through)
    : cache_(cache), write_through_(write_through), pins_(std::make_shared<PinnedViews>()) {
  pins_->cache = &cache;
  watchdog_ = std::thread([this] { Watchdog(); });
  // Method 2 of kvc.v1.Node is Load (the order of proto/kvc/v1/kvc.proto's
  // service; node_wire_test and the other node tests call it through the
  // generated stub). A split-streamed handler reads the one LoadRequest
  // itself and writes raw ByteBuffers; the wire is unchanged.
  MarkMethodStreamed(2, new grpc::internal::SplitServerStreamingHandler<v1::LoadRequest, grpc::ByteBuffer>(
                            [this](grpc::ServerContext* ctx, LoadStream* stream) { return LoadRaw(ctx, stream); }));
  // Method 3 is Store, served as a bidi stream that reads ByteBuffers and
  // writes the one StoreResponse: the same bytes on the wire as a client
  // stream's.
  MarkMethodStreamed(3, new grpc::internal::BidiStreamingHandler<NodeService, grpc::ByteBuffer, v1::StoreResponse>(
                            [](NodeService* self, grpc::ServerContext* ctx, StoreStream* stream) {
                              return self->StoreRaw(ctx, stream);
                            },
                            this));
}

NodeService::~NodeService() {
  {
    std::lock_guard<std::mutex> lk(watch_mu_);
    stopping_ = true;
    watch_cv_.notify_all();
  }
  watchdog_.join();
  std::unique_lock<std::shared_mutex> lk(pins_->mu);
  pins_->cache = nullptr;
}

namespace {

// Writes the pinned view `v` as the LoadChunk messages of one key: the
// first with the result and total_bytes, `index` on each when batched (not
// 0: proto3 leaves a zero out). The data are slices of the view, not
// copies: each slice holds a reference to the pin, which goes with the last
// one, when gRPC is done with it (possibly after the call has returned).
// `last`: the key's last message is the stream's (it goes out with the
// call's status, one batch). False when the client went away.
bool WriteView(grpc::ServerContext* ctx, NodeService::LoadStream* stream, const std::shared_ptr<PinnedViews>& pins,
               const View& v, uint32_t index, bool last) {
  auto* pin = new PinnedView;
  pin->owner = pins;
  pin->id = v.id;
  bool ok = true;
  uint64_t off = 0;
  do {
    const uint64_t n = std::min<uint64_t>(kMaxChunkBytes, v.size - off);
    // Exactly what LoadChunk::SerializeAsString would give: fields 1-3 by
    // protobuf (the result and total on the first chunk only), then field 4
    // (data, length-delimited) and field 5 (index) by hand, in protobuf's
    // order.
    v1::LoadChunk head;
    if (off == 0) {
      SetResult(head.mutable_result(), Status::Ok());
      head.set_total_bytes(v.size);
    }
    head.set_offset(off);
    std::string h = head.SerializeAsString();
    std::string tail;
    if (index != 0) {
      tail.push_back(static_cast<char>((5 << 3) | 0));
      PutVarint(&tail, index);
    }
    grpc::Slice parts[3];
    size_t n_parts = 1;
    if (n > 0) {  // proto3 leaves an empty bytes field out
      PutLengthPrefix(&h, 4, n);
      pin->refs.fetch_add(1, std::memory_order_relaxed);
      parts[1] = grpc::Slice(const_cast<uint8_t*>(v.data) + off, n, Unpin, pin);
      n_parts = 2;
      if (!tail.empty()) parts[n_parts++] = grpc::Slice(tail);
    } else {
      h += tail;
    }
    parts[0] = grpc::Slice(h);
    grpc::ByteBuffer chunk(parts, n_parts);
    off += n;
    grpc::WriteOptions wo;
    if (last && off == v.size) wo.set_last_message();
    ok = !ctx->IsCancelled() && stream->Write(chunk, wo);
  } while (ok && off < v.size);
  Unpin(pin);  // this call's own reference
  return ok;
}

// A batch load's small blocks packed into one LoadChunk as its `items`
// (kvc.proto): each item's header (its tag and length, index, result,
// total_bytes and the data's tag and length) written here in protobuf's
// order, so the bytes are exactly what LoadChunk::SerializeAsString would
// give, and its data a slice of the pinned view (no copy), holding a pin of
// its own that the slice's destructor drops.
class ItemPacker {
 public:
  ItemPacker(grpc::ServerContext* ctx, NodeService::LoadStream* stream, std::shared_ptr<PinnedViews> pins)
      : ctx_(ctx), stream_(stream), pins_(std::move(pins)) {}
  bool empty() const { return parts_.empty(); }
  // Whether a block of `n` bytes fits the open message (else Flush first).
  bool Fits(uint64_t n) const { return data_ + n <= kMaxChunkBytes; }
  // A found key: `v`'s bytes.
  void AddView(uint32_t index, const View& v) {
    std::string h = Header(index, Status::Ok(), v.size, v.size);
    parts_.emplace_back(h);
    if (v.size > 0) {
      auto* pin = new PinnedView;
      pin->owner = pins_;
      pin->id = v.id;
      parts_.emplace_back(const_cast<uint8_t*>(v.data), v.size, Unpin, pin);  // the slice owns the pin
    }
    data_ += v.size;
  }
  // A key that is not found or fails: its result, no data.
  void AddResult(uint32_t index, const Status& s) { parts_.emplace_back(Header(index, s, 0, 0)); }
  // Sends the open message (nothing when there is none); `last`: it is the
  // stream's last. False when the client went away.
  bool Flush(bool last) {
    if (parts_.empty()) return true;
    grpc::ByteBuffer msg(parts_.data(), parts_.size());
    parts_.clear();
    data_ = 0;
    grpc::WriteOptions wo;
    if (last) wo.set_last_message();
    return !ctx_->IsCancelled() && stream_->Write(msg, wo);
  }

 private:
  static std::string Header(uint32_t index, const Status& s, uint64_t total, uint64_t n) {
    v1::Result res;
    SetResult(&res, s);
    const std::string rb = res.SerializeAsString();
    std::string body;  // the item's fields but its data's bytes
    if (index != 0) {
      body.push_back(static_cast<char>((1 << 3) | 0));
      PutVarint(&body, index);
    }
    PutLengthPrefix(&body, 2, rb.size());  // a set message field goes out even when empty
    body += rb;
    if (total != 0) {
      body.push_back(static_cast<char>((3 << 3) | 0));
      PutVarint(&body, total);
    }
    if (n > 0) {
      PutLengthPrefix(&body, 4, n);
    }
    std::string h;
    PutLengthPrefix(&h, 6, body.size() + n);
    return h + body;
  }

  grpc::ServerContext* ctx_;
  NodeService::LoadStream* stream_;
  std::shared_ptr<PinnedViews> pins_;
  std::vector<grpc::Slice> parts_;
  uint64_t data_ = 0;
};

}  // namespace

grpc::Status NodeService::LoadRaw(grpc::ServerContext* ctx, LoadStream* stream) {
  auto timer = metrics_.Track(Rpc::kLoad);
  auto caller = Authenticate(*ctx);
  if (!caller.ok()) return Unauthenticated();
  v1::LoadRequest request;
  if (!stream->Read(&request)) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no LoadRequest was read");
  const v1::LoadRequest* req = &request;
  // One message with a result and no data: a failure of the whole request,
  // or (a batch) a key that is not found or fails.
  auto answer = [&](const Status& s, uint32_t index, bool last) {
    v1::LoadChunk first;
    SetResult(first.mutable_result(), s);
    first.set_index(index);
    grpc::WriteOptions wo;
    if (last) wo.set_last_message();
    return !ctx->IsCancelled() && stream->Write(BufferOf(first), wo);
  };
  auto fail = [&](const Status& s) {
    (void)answer(s, 0, true);
    return grpc::Status::OK;
  };
  const size_t n_keys = static_cast<size_t>(req->keys_size());
  if (n_keys > 0 && !req->key().empty()) return fail(InvalidArgument("a load names `key` or `keys`, not both"));
  if (n_keys > kMaxBatchItems)
    return fail(InvalidArgument("a load of " + std::to_string(n_keys) + " keys: at most " +
                                std::to_string(kMaxBatchItems)));
  auto ns = Open(*caller, req->ns());
  if (!ns.ok()) return fail(ns.status());
  if (req->shard() >= (*ns)->shards)
    return fail(InvalidArgument("shard " + std::to_string(req->shard()) + " is out of range: the namespace has " +
                                std::to_string((*ns)->shards)));
  if (n_keys == 0) {
    auto key = KeyOf(req->key(), "key");
    if (!key.ok()) return fail(key.status());
    View v;
    Status st = cache_.AcquireView(**ns, *key, req->shard(), 0, &v, caller->tenant);
    if (!st.ok()) return fail(st);
    if (!WriteView(ctx, stream, pins_, v, 0, true))
      return grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
    metrics_.CountLoad(caller->tenant, v.size);
    return grpc::Status::OK;
  }
  // A batch: every key checked before any is answered, then each answered
  // in order as a one-key load would be, tagged with its index.
  std::vector<BlockKey> keys(n_keys);
  for (size_t i = 0; i < n_keys; ++i) {
    auto key = KeyOf(req->keys(static_cast<int>(i)), ("keys[" + std::to_string(i) + "]").c_str());
    if (!key.ok()) return fail(key.status());
    keys[i] = *key;
  }
  // Consecutive keys whose blocks are at most kMaxPackedBlockBytes (and
  // misses and failures) go as the items of one message, up to
  // kMaxChunkBytes of data; a bigger block goes as its own chunks.
  ItemPacker pack(ctx, stream, pins_);
  const grpc::Status gone(grpc::StatusCode::CANCELLED, "the client went away");
  for (size_t i = 0; i < n_keys; ++i) {
    const bool last = i + 1 == n_keys;
    const auto index = static_cast<uint32_t>(i);
    View v;
    Status st = cache_.AcquireView(**ns, keys[i], req->shard(), 0, &v, caller->tenant);
    if (!st.ok()) {
      pack.AddResult(index, st);
      continue;
    }
    metrics_.CountLoad(caller->tenant, v.size);
    if (v.size <= kMaxPackedBlockBytes) {
      if (!pack.Fits(v.size) && !pack.Flush(false)) {
        (void)cache_.ReleaseView(v.id);
        return gone;
      }
      pack.AddView(index, v);
      continue;
    }
    if (!pack.Flush(false)) {
      (void)cache_.ReleaseView(v.id);
      return gone;
    }
    if (!WriteView(ctx, stream, pins_, v, index, last)) return gone;
  }
  if (!pack.Flush(true)) return gone;
  return grpc::Status::OK;
}

void NodeService::set_write_fence(WriteFence fence) {
  std::lock_guard<std::mutex> lk(fence_mu_);
  fence_ = std::make_shared<const WriteFence>(std::move(fence));
}

void NodeService::BumpAllRevisions() { cache_.BumpAllRevisions(); }

Status NodeService::AdmitWrite(uint64_t epoch) const {
  std::shared_ptr<const WriteFence> f;
  {
    std::lock_guard<std::mutex> lk(fence_mu_);
    f = fence_;
  }
  return f && *f ? (*f)(epoch) : Status::Ok();
}

grpc::Status NodeService::StoreRaw(grpc::ServerContext* ctx, StoreStream* stream) {
  auto timer = metrics_.Track(Rpc::kStore);
  auto caller = Authenticate(*ctx, /*allow_as_tenant=*/true);
  if (!caller.ok()) return Unauthenticated();
  Reservation r;
  bool reserved = false;
  grpc::ByteBuffer bb;
  SliceReader wire;
  StoreMessageView m;
  // The watchdog cancels the call when one Read waits longer than the idle
  // timeout (a client stalled without a deadline).
  StoreWatch watch;
  watch.ctx = ctx;
  WatchStore(&watch);
  auto read = [&]() {
    watch.reading_since.store(SteadyNowNs(), std::memory_order_release);
    const bool got = stream->Read(&bb);
    watch.reading_since.store(0, std::memory_order_release);
    return got;
  };
  static const char* kMalformed = "a store message that is no kvc.v1.StoreMessage";
  v1::StoreResponse resp;
  bool in_block = false;  // a begin was read whose block is not settled
  // A block's begin `b`: checks it and reserves the block, or refuses it
  // (*refused; then its bytes are read, checked and dropped). A stream of
  // one block (batched false) ends at a refused begin: *settled is set and
  // *block gets the refusal. A failure of the stream is returned (the
  // reservation is aborted by the caller).
  auto begin_block = [&](const v1::StoreBegin& b, bool batched, Status* refused, Status* block,
                         bool* settled) -> Status {
    *settled = false;
    *refused = Status::Ok();
    KVC_RETURN_IF_ERROR(AdmitWrite(b.membership_epoch()));
    auto ns = Open(*caller, b.ns());
    if (!ns.ok()) return ns.status();
    auto key = KeyOf(b.key(), "key");
    if (!key.ok()) return key.status();
    if (b.shard() >= (*ns)->shards)
      return InvalidArgument("shard " + std::to_string(b.shard()) + " is out of range: the namespace has " +
                             std::to_string((*ns)->shards));
    if (b.total_bytes() != (*ns)->shard_bytes) {
      *refused = Status(Code::kLayout, "total_bytes is " + std::to_string(b.total_bytes()) +
                                           " but a block shard of this namespace is " +
                                           std::to_string((*ns)->shard_bytes) + " bytes");
      if (!batched) return *refused;
      return Status::Ok();
    }
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
    *refused = cache_.BeginStore(**ns, *key, b.shard(), p, &r);
    if (!refused->ok()) {
      metrics_.CountStore(caller->tenant, refused->code(), 0);
      if (!batched) {
        *block = *refused;
        *settled = true;
      }
    } else {
      reserved = true;
    }
    return Status::Ok();
  };
  // A block whose bytes are all in: publishes it (or gives its refusal).
  auto commit_block = [&](uint64_t epoch, uint64_t size, const Status& refused, Status* block) -> Status {
    if (!reserved) {
      *block = refused;
      return Status::Ok();
    }
    // The fence again: the node may have lost its lease mid-stream.
    KVC_RETURN_IF_ERROR(AdmitWrite(epoch));
    reserved = false;
    Status cs = cache_.Commit(r);
    metrics_.CountStore(caller->tenant, cs.code(), size);
    *block = cs;
    return Status::Ok();
  };
  // One block: `m` holds its begin. Begins it, reads its chunks up to its
  // commit and publishes it. *block gets the block's own result.
  auto one_block = [&](bool batched, Status* block) -> Status {
    const v1::StoreBegin b = m.begin;
    Status refused;
    bool settled;
    KVC_RETURN_IF_ERROR(begin_block(b, batched, &refused, block, &settled));
    if (settled) return Status::Ok();
    // A refused block's chunks are checked against what its begin said.
    const uint64_t size = reserved ? r.size : b.total_bytes();
    uint64_t written = 0;
    while (read()) {
      if (!ReadStoreMessage(bb, &wire, &m)) return InvalidArgument(kMalformed);
      if (m.kind == StoreMessageView::kCommit) {
        if (written != size)
          return InvalidArgument("commit after " + std::to_string(written) + " of " + std::to_string(size) +
                                 " bytes");
        return commit_block(b.membership_epoch(), size, refused, block);
      }
      if (m.kind == StoreMessageView::kBegin)
        return InvalidArgument(batched ? "a begin inside a block (before its commit)"
                                       : "a second begin in one store stream");
      if (m.kind == StoreMessageView::kBlocks)
        return InvalidArgument("a blocks message inside a block (before its commit)");
      if (m.kind != StoreMessageView::kChunk)
        return InvalidArgument("a store message with no begin, chunk, commit or blocks");
      if (m.offset != written)
        return InvalidArgument("chunk at offset " + std::to_string(m.offset) + ", expected " +
                               std::to_string(written));
      if (m.data_len > kMaxChunkBytes || m.data_len > size - written)
        return InvalidArgument("a chunk of " + std::to_string(m.data_len) + " bytes overruns the block");
      if (reserved) wire.CopyFrom(m.data, r.data + written, m.data_len);
      written += m.data_len;
    }
    return InvalidArgument("the store stream ended before commit");
  };
  // One StoreBlock of a blocks message: its begin, all of its bytes (a size
  // other than its total_bytes fails the stream, as chunks that do not add
  // up to it do) and its commit.
  auto packed_block = [&](const StoreMessageView::Block& pb, bool batched, Status* block) -> Status {
    Status refused;
    bool settled;
    KVC_RETURN_IF_ERROR(begin_block(pb.begin, batched, &refused, block, &settled));
    if (settled) return Status::Ok();
    const uint64_t size = reserved ? r.size : pb.begin.total_bytes();
    if (pb.data_len != size)
      return InvalidArgument("a packed block of " + std::to_string(pb.data_len) + " bytes, its total_bytes " +
                             std::to_string(size));
    if (reserved) wire.CopyFrom(pb.data, r.data, size);
    return commit_block(pb.begin.membership_epoch(), size, refused, block);
  };
  // The stream: one block, or (StoreBegin.batch_blocks > 1) up to
  // batch_blocks blocks, each begin, chunks, commit, or packed several to a
  // blocks message. resp.results gets one entry per begin read.
  auto run = [&]() -> Status {
    if (!read()) return InvalidArgument("a store stream starts with begin");
    if (!ReadStoreMessage(bb, &wire, &m)) return InvalidArgument(kMalformed);
    if (m.kind == StoreMessageView::kBlocks && m.blocks.empty())
      return InvalidArgument("a blocks message with no block");
    if (m.kind != StoreMessageView::kBegin && m.kind != StoreMessageView::kBlocks)
      return InvalidArgument("a store stream starts with begin");
    const uint32_t declared =
        (m.kind == StoreMessageView::kBegin ? m.begin : m.blocks.front().begin).batch_blocks();
    const bool batched = declared > 1;
    uint32_t blocks = 0;
    // A block's begin, counted against batch_blocks.
    auto count = [&](const v1::StoreBegin& b) -> Status {
      ++blocks;
      in_block = true;
      if (b.batch_blocks() != declared)
        return InvalidArgument("batch_blocks is " + std::to_string(b.batch_blocks()) + " on block " +
                               std::to_string(blocks) + ", " + std::to_string(declared) + " on the first");
      if (declared > kMaxBatchItems)
        return InvalidArgument("batch_blocks is " + std::to_string(declared) + ": at most " +
                               std::to_string(kMaxBatchItems));
      if (blocks > std::max<uint32_t>(declared, 1))
        return InvalidArgument("block " + std::to_string(blocks) + " of a stream of batch_blocks " +
                               std::to_string(declared));
      return Status::Ok();
    };
    for (;;) {
      if (m.kind == StoreMessageView::kBegin) {
        KVC_RETURN_IF_ERROR(count(m.begin));
        Status block;
        KVC_RETURN_IF_ERROR(one_block(batched, &block));
        in_block = false;
        SetResult(resp.add_results(), block);
        if (!batched) return block;
      } else {
        if (m.blocks.empty()) return InvalidArgument("a blocks message with no block");
        if (m.blocks_bytes > kMaxChunkBytes)
          return InvalidArgument("a blocks message of " + std::to_string(m.blocks_bytes) + " bytes of data: at most " +
                                 std::to_string(kMaxChunkBytes));
        // Moved out: `m` is not read again until these are done.
        const std::vector<StoreMessageView::Block> packed = std::move(m.blocks);
        m.blocks.clear();
        for (const auto& pb : packed) {
          KVC_RETURN_IF_ERROR(count(pb.begin));
          if (pb.data_len > kMaxPackedBlockBytes)
            return InvalidArgument("a packed block of " + std::to_string(pb.data_len) + " bytes: at most " +
                                   std::to_string(kMaxPackedBlockBytes) + " (bigger ones go as chunks)");
          Status block;
          KVC_RETURN_IF_ERROR(packed_block(pb, batched, &block));
          in_block = false;
          SetResult(resp.add_results(), block);
          if (!batched) return block;
        }
      }
      // The next block's begin or blocks, or the end of the stream.
      if (!read()) return Status::Ok();
      if (!ReadStoreMessage(bb, &wire, &m)) return InvalidArgument(kMalformed);
      if (m.kind != StoreMessageView::kBegin && m.kind != StoreMessageView::kBlocks)
        return InvalidArgument(m.kind == StoreMessageView::kChunk ? "a chunk outside a block (after a commit)"
                                                                  : "a store message after a commit that is no begin");
    }
  };
  Status st = run();
  if (in_block) SetResult(resp.add_results(), st);
  UnwatchStore(&watch);
  if (reserved) cache_.Abort(r);
  if (watch.cancelled_after_ms != 0)  // the watchdog is done with `watch` after UnwatchStore
    return grpc::Status(grpc::StatusCode::CANCELLED, "the store stream sent nothing for " +
                                                         std::to_string(watch.cancelled_after_ms) +
                                                         " ms (the node's store idle timeout)");
  SetResult(resp.mutable_result(), st);
  stream->WriteLast(resp, grpc::WriteOptions());
  return grpc::Status::OK;
}

grpc::Status NodeService::Delete(grpc::ServerContext* ctx, const v1::DeleteRequest* req, v1::DeleteResponse* resp) {
  auto timer = metrics_.Track(Rpc::kDelete);
  auto caller = Authenticate(*ctx);
  if (!caller.ok()) return Unauthenticated();
  auto run = [&]() -> Status {
    auto ns = Open(*caller, req->ns());
    if (!ns.ok()) return ns.status();
    auto key = KeyOf(req->key(), "key");
    if (!key.ok()) return key.status();
    Status ds = cache_.Delete(**ns, *key);
    if (ds.ok()) metrics_.CountDelete(caller->tenant);
    return ds;
  };
  SetResult(resp->mutable_result(), run());
  return grpc::Status::OK;
}

grpc::Status NodeService::BumpRevision(grpc::ServerContext* ctx, const v1::BumpRevisionRequest* req,
                                       v1::BumpRevisionResponse* resp) {
  auto timer = metrics_.Track(Rpc::kBumpRevision);
  auto caller = Authenticate(*ctx);
  if (!caller.ok()) return Unauthenticated();
  if (req->cluster_count() > 0) {  // an etcd cluster's counted bump: applied once
    auto e = ApplyClusterBump(caller->name, NodeNamespaceOf(req->ns()), req->cluster_count());
    if (e.ok()) resp->set_epoch(*e);
    SetResult(resp->mutable_result(), e.status());
    return grpc::Status::OK;
  }
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
  auto timer = metrics_.Track(Rpc::kStats);
  // The admin token (when sent, it must be right) shows the whole node.
  const bool admin = ctx->client_metadata().count(kAdminTokenKey) > 0;
  Caller caller;
  if (admin) {
    grpc::Status as = AuthenticateAdmin(*ctx);
    if (!as.ok()) return as;
  } else {
    auto c = Authenticate(*ctx);
    if (!c.ok()) return Unauthenticated();
    caller = *c;
  }
  nlohmann::json j = cache_.StatsJson();
  if (admin || caller.tenant == 0) {
    j["scope"] = "node";
    if (drain_stats_) j["drain"] = drain_stats_();
  } else {
    j = TenantStatsView(j, caller.tenant, caller.name, metrics_.Traffic(caller.tenant));
  }
  resp->set_json(j.dump());
  SetResult(resp->mutable_result(), Status::Ok());
  return grpc::Status::OK;
}

Status NodeService::EditTenants(const std::function<Status(const std::string& path)>& edit) {
  const std::string& path = cache_.options().tenants_path;
  if (path.empty()) return Status(Code::kUnsupported, "this node has no tenants file (kvc serve --tenants-file)");
  KVC_RETURN_IF_ERROR(edit(path));
  return cache_.ReloadTenants();
}

grpc::Status NodeService::TenantCreate(grpc::ServerContext* ctx, const v1::TenantCreateRequest* req,
                                       v1::TenantCreateResponse* resp) {
  auto timer = metrics_.Track(Rpc::kTenantCreate);
  grpc::Status as = AuthenticateAdmin(*ctx);
  if (!as.ok()) return as;
  std::string credential;
  Status st = EditTenants([&](const std::string& path) -> Status {
    const auto& t = req->tenant();
    TenantConfig c;
    c.name = t.name();
    auto iso = TenantRegistry::ParseIsolation(t.isolation().empty() ? "isolated" : t.isolation());
    if (!iso.ok()) return iso.status();
    c.isolation = *iso;
    c.host_quota_bytes = t.host_quota_bytes();
    c.ssd_quota_bytes = t.ssd_quota_bytes();
    c.borrow = t.borrow();
    auto cred = TenantRegistry::Create(path, c);
    if (!cred.ok()) return cred.status();
    credential = *cred;
    return Status::Ok();
  });
  if (st.ok()) resp->set_credential(credential);
  SetResult(resp->mutable_result(), st);
  return grpc::Status::OK;
}

grpc::Status NodeService::TenantList(grpc::ServerContext* ctx, const v1::TenantListRequest*,
                                     v1::TenantListResponse* resp) {
  auto timer = metrics_.Track(Rpc::kTenantList);
  grpc::Status as = AuthenticateAdmin(*ctx);
  if (!as.ok()) return as;
  // Reading the file again also applies edits made to it offline.
  Status st = EditTenants([](const std::string&) { return Status::Ok(); });
  if (st.ok()) resp->set_json(cache_.tenants().PublicJson().dump());
  SetResult(resp->mutable_result(), st);
  return grpc::Status::OK;
}

grpc::Status NodeService::TenantSetQuota(grpc::ServerContext* ctx, const v1::TenantSetQuotaRequest* req,
                                         v1::TenantSetQuotaResponse* resp) {
  auto timer = metrics_.Track(Rpc::kTenantSetQuota);
  grpc::Status as = AuthenticateAdmin(*ctx);
  if (!as.ok()) return as;
  Status st = EditTenants([&](const std::string& path) -> Status {
    if (req->borrow() < -1 || req->borrow() > 1) return InvalidArgument("borrow must be -1 (keep), 0 or 1");
    auto opt = [](int64_t v) { return v < 0 ? std::nullopt : std::optional<uint64_t>(static_cast<uint64_t>(v)); };
    std::optional<bool> borrow;
    if (req->borrow() >= 0) borrow = req->borrow() == 1;
    return TenantRegistry::SetQuota(path, req->name(), opt(req->host_quota_bytes()), opt(req->ssd_quota_bytes()),
                                    borrow);
  });
  SetResult(resp->mutable_result(), st);
  return grpc::Status::OK;
}

grpc::Status NodeService::TenantDelete(grpc::ServerContext* ctx, const v1::TenantDeleteRequest* req,
                                       v1::TenantDeleteResponse* resp) {
  auto timer = metrics_.Track(Rpc::kTenantDelete);
  grpc::Status as = AuthenticateAdmin(*ctx);
  if (!as.ok()) return as;
  Status st = EditTenants([&](const std::string& path) { return TenantRegistry::Delete(path, req->name()); });
  SetResult(resp->mutable_result(), st);
  return grpc::Status::OK;
}

}  // namespace kvc::net
#endif  // KVC_NET_BUILD
