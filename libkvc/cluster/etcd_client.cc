// Compiled only into kvc_net with the etcd stubs (libkvc/cluster/CMakeLists.txt);
// without them (KVC_HAVE_ETCD 0) only what the destructors of a
// Registration and a ConfigSync need.
#if defined(KVC_NET_BUILD) && !KVC_HAVE_ETCD
#include "cluster/etcd_client.h"
namespace kvc::cluster {
struct EtcdClient::Endpoint {};
EtcdClient::~EtcdClient() = default;
struct EtcdWatch::Rep {};
EtcdWatch::~EtcdWatch() = default;
}  // namespace kvc::cluster
#endif

#if defined(KVC_NET_BUILD) && KVC_HAVE_ETCD
#include "cluster/etcd_client.h"

#include <chrono>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"

namespace kvc::cluster {
namespace {

using Clock = std::chrono::steady_clock;

std::chrono::system_clock::time_point DeadlineIn(std::chrono::milliseconds left) {
  return std::chrono::system_clock::now() + left;
}

Status FromGrpc(const grpc::Status& s, const std::string& endpoint, const char* what) {
  Code c = Code::kInternal;
  switch (s.error_code()) {
    case grpc::StatusCode::UNAVAILABLE: c = Code::kUnavailable; break;
    case grpc::StatusCode::DEADLINE_EXCEEDED: c = Code::kTimeout; break;
    case grpc::StatusCode::CANCELLED: c = Code::kClosed; break;
    case grpc::StatusCode::NOT_FOUND: c = Code::kNotFound; break;
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED: c = Code::kPermission; break;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::OUT_OF_RANGE: c = Code::kInvalidArgument; break;
    default: break;
  }
  return Status(c, std::string("etcd ") + what + " at " + endpoint + ": " + s.error_message());
}

EtcdKv FromPb(const mvccpb::KeyValue& kv) {
  EtcdKv k;
  k.key = kv.key();
  k.value = kv.value();
  k.create_revision = kv.create_revision();
  k.mod_revision = kv.mod_revision();
  k.version = kv.version();
  k.lease = kv.lease();
  return k;
}

}  // namespace

std::string EtcdPrefixEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    if (static_cast<unsigned char>(end.back()) < 0xff) {
      end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // etcd: "\0" means every key >= key
}

struct EtcdClient::Endpoint {
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<etcdserverpb::KV::Stub> kv;
  std::unique_ptr<etcdserverpb::Lease::Stub> lease;
  std::unique_ptr<etcdserverpb::Watch::Stub> watch;
};

Result<std::unique_ptr<EtcdClient>> EtcdClient::Create(const std::vector<std::string>& endpoints) {
  if (endpoints.empty()) return InvalidArgument("no etcd endpoint given");
  std::unique_ptr<EtcdClient> c(new EtcdClient);
  for (const auto& e : endpoints) {
    const size_t colon = e.rfind(':');
    if (e.empty() || colon == std::string::npos || colon == 0 || colon + 1 == e.size())
      return InvalidArgument("etcd endpoint '" + e + "' is not HOST:PORT");
    grpc::ChannelArguments args;
    // Notice a silent etcd on an open connection (etcd permits pings every 5 s).
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 3000);
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
    // Reconnect quickly after etcd comes back.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    auto ep = std::make_unique<Endpoint>();
    ep->address = e;
    ep->channel = grpc::CreateCustomChannel(e, grpc::InsecureChannelCredentials(), args);
    ep->kv = etcdserverpb::KV::NewStub(ep->channel);
    ep->lease = etcdserverpb::Lease::NewStub(ep->channel);
    ep->watch = etcdserverpb::Watch::NewStub(ep->channel);
    c->channels_.push_back(std::move(ep));
    c->endpoints_.push_back(e);
  }
  return c;
}

EtcdClient::~EtcdClient() = default;

template <class Fn>
Status EtcdClient::Call(uint32_t timeout_ms, const char* what, Fn&& attempt) {
  const auto end = Clock::now() + std::chrono::milliseconds(timeout_ms);
  const size_t n = channels_.size();
  size_t i = current_.load(std::memory_order_relaxed) % n;
  Status last;
  for (size_t tries = 0;; ++tries) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
    if (left.count() <= 0) {
      if (!last.ok()) return last;
      return Status(Code::kTimeout, std::string("etcd ") + what + ": no answer within " +
                                        std::to_string(timeout_ms) + " ms");
    }
    Endpoint& ep = *channels_[i];
    grpc::ClientContext ctx;
    ctx.set_deadline(DeadlineIn(left));
    // Several endpoints: fail fast on a dead one and try the next.
    // One endpoint: wait for it (it may be restarting) within the deadline.
    ctx.set_wait_for_ready(n == 1);
    grpc::Status s = attempt(ep, &ctx);
    if (s.ok()) {
      current_.store(i, std::memory_order_relaxed);
      return Status::Ok();
    }
    last = FromGrpc(s, ep.address, what);
    if (s.error_code() != grpc::StatusCode::UNAVAILABLE) return last;
    i = (i + 1) % n;
    // Every endpoint refused: pause briefly before the next round.
    if ((tries + 1) % n == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

Result<EtcdRange> EtcdClient::Range(const std::string& key, bool prefix, uint32_t timeout_ms) {
  etcdserverpb::RangeRequest req;
  req.set_key(key);
  if (prefix) req.set_range_end(EtcdPrefixEnd(key));
  etcdserverpb::RangeResponse resp;
  KVC_RETURN_IF_ERROR(Call(timeout_ms, "range", [&](Endpoint& ep, grpc::ClientContext* ctx) {
    return ep.kv->Range(ctx, req, &resp);
  }));
  EtcdRange r;
  r.revision = resp.header().revision();
  for (const auto& kv : resp.kvs()) r.kvs.push_back(FromPb(kv));
  return r;
}

Result<int64_t> EtcdClient::Put(const EtcdPut& put, uint32_t timeout_ms) {
  etcdserverpb::PutRequest req;
  req.set_key(put.key);
  req.set_value(put.value);
  req.set_lease(put.lease);
  req.set_ignore_lease(put.ignore_lease);
  etcdserverpb::PutResponse resp;
  KVC_RETURN_IF_ERROR(Call(timeout_ms, "put", [&](Endpoint& ep, grpc::ClientContext* ctx) {
    return ep.kv->Put(ctx, req, &resp);
  }));
  return static_cast<int64_t>(resp.header().revision());
}

Result<EtcdTxnResult> EtcdClient::Txn(const std::vector<EtcdCompare>& compare, const std::vector<EtcdPut>& success,
                                      uint32_t timeout_ms) {
  etcdserverpb::TxnRequest req;
  for (const auto& c : compare) {
    auto* pc = req.add_compare();
    pc->set_key(c.key);
    if (c.prefix) pc->set_range_end(EtcdPrefixEnd(c.key));
    pc->set_result(c.result == EtcdCompare::Result::kLess ? etcdserverpb::Compare::LESS
                                                          : etcdserverpb::Compare::EQUAL);
    if (c.target == EtcdCompare::Target::kCreateRevision) {
      pc->set_target(etcdserverpb::Compare::CREATE);
      pc->set_create_revision(c.value);
    } else {
      pc->set_target(etcdserverpb::Compare::MOD);
      pc->set_mod_revision(c.value);
    }
  }
  for (const auto& p : success) {
    auto* put = req.add_success()->mutable_request_put();
    put->set_key(p.key);
    put->set_value(p.value);
    put->set_lease(p.lease);
    put->set_ignore_lease(p.ignore_lease);
  }
  etcdserverpb::TxnResponse resp;
  KVC_RETURN_IF_ERROR(Call(timeout_ms, "txn", [&](Endpoint& ep, grpc::ClientContext* ctx) {
    return ep.kv->Txn(ctx, req, &resp);
  }));
  EtcdTxnResult r;
  r.succeeded = resp.succeeded();
  r.revision = resp.header().revision();
  return r;
}

Result<int64_t> EtcdClient::Delete(const std::string& key, bool prefix, uint32_t timeout_ms) {
  etcdserverpb::DeleteRangeRequest req;
  req.set_key(key);
  if (prefix) req.set_range_end(EtcdPrefixEnd(key));
  etcdserverpb::DeleteRangeResponse resp;
  KVC_RETURN_IF_ERROR(Call(timeout_ms, "delete", [&](Endpoint& ep, grpc::ClientContext* ctx) {
    return ep.kv->DeleteRange(ctx, req, &resp);
  }));
  return static_cast<int64_t>(resp.deleted());
}

Result<bool> EtcdClient::DeleteIf(const std::string& key, int64_t mod_revision, uint32_t timeout_ms) {
  etcdserverpb::TxnRequest req;
  auto* pc = req.add_compare();
  pc->set_key(key);
  pc->set_result(etcdserverpb::Compare::EQUAL);
  pc->set_target(etcdserverpb::Compare::MOD);
  pc->set_mod_revision(mod_revision);
  req.add_success()->mutable_request_delete_range()->set_key(key);
  etcdserverpb::TxnResponse resp;
  KVC_RETURN_IF_ERROR(Call(timeout_ms, "txn", [&](Endpoint& ep, grpc::ClientContext* ctx) {
    return ep.kv->Txn(ctx, req, &resp);
  }));
  return resp.succeeded();
}

Status EtcdClient::Compact(int64_t revision, uint32_t timeout_ms) {
  etcdserverpb::CompactionRequest req;
  req.set_revision(revision);
  req.set_physical(true);
  etcdserverpb::CompactionResponse resp;
  return Call(timeout_ms, "compact", [&](Endpoint& ep, grpc::ClientContext* ctx) {
    return ep.kv->Compact(ctx, req, &resp);
  });
}

Result<int64_t> EtcdClient::LeaseGrant(int64_t ttl_s, int64_t* granted_ttl_s, uint32_t timeout_ms) {
  etcdserverpb::LeaseGrantRequest req;
  req.set_ttl(ttl_s);
  etcdserverpb::LeaseGrantResponse resp;
  KVC_RETURN_IF_ERROR(Call(timeout_ms, "lease grant", [&](Endpoint& ep, grpc::ClientContext* ctx) {
    return ep.lease->LeaseGrant(ctx, req, &resp);
  }));
  if (!resp.error().empty()) return Status(Code::kUnavailable, "etcd lease grant: " + resp.error());
  if (granted_ttl_s) *granted_ttl_s = resp.ttl();
  return static_cast<int64_t>(resp.id());
}

Result<int64_t> EtcdClient::LeaseKeepAlive(int64_t lease, uint32_t timeout_ms) {
  etcdserverpb::LeaseKeepAliveRequest req;
  req.set_id(lease);
  etcdserverpb::LeaseKeepAliveResponse resp;
  bool got = false;
  KVC_RETURN_IF_ERROR(Call(timeout_ms, "lease keep-alive", [&](Endpoint& ep, grpc::ClientContext* ctx) {
    auto stream = ep.lease->LeaseKeepAlive(ctx);
    got = stream->Write(req) && stream->Read(&resp);
    stream->WritesDone();
    if (got) {
      ctx->TryCancel();  // one renewal per stream: do not wait for etcd to close it
      (void)stream->Finish();
      return grpc::Status::OK;
    }
    return stream->Finish();
  }));
  if (!got) return Status(Code::kUnavailable, "etcd lease keep-alive: the stream closed without an answer");
  if (resp.ttl() <= 0) return NotFound("etcd lease " + std::to_string(lease) + " has expired");
  return static_cast<int64_t>(resp.ttl());
}

Status EtcdClient::LeaseRevoke(int64_t lease, uint32_t timeout_ms) {
  etcdserverpb::LeaseRevokeRequest req;
  req.set_id(lease);
  etcdserverpb::LeaseRevokeResponse resp;
  return Call(timeout_ms, "lease revoke", [&](Endpoint& ep, grpc::ClientContext* ctx) {
    return ep.lease->LeaseRevoke(ctx, req, &resp);
  });
}

struct EtcdWatch::Rep {
  std::string endpoint;
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReaderWriter<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>> stream;
  std::atomic<bool> cancelled{false};
};

Result<std::unique_ptr<EtcdWatch>> EtcdClient::Watch(const std::string& prefix, int64_t start_revision,
                                                     uint32_t timeout_ms) {
  auto rep = std::make_unique<EtcdWatch::Rep>();
  Endpoint& ep = *channels_[current_.load(std::memory_order_relaxed) % channels_.size()];
  rep->endpoint = ep.address;
  // The stream lives on; only its opening is bounded: wait for the channel.
  if (!ep.channel->WaitForConnected(DeadlineIn(std::chrono::milliseconds(timeout_ms))))
    return Status(Code::kUnavailable, "etcd watch at " + ep.address + ": not reachable within " +
                                          std::to_string(timeout_ms) + " ms");
  rep->stream = ep.watch->Watch(&rep->ctx);
  etcdserverpb::WatchRequest req;
  auto* c = req.mutable_create_request();
  c->set_key(prefix);
  c->set_range_end(EtcdPrefixEnd(prefix));
  c->set_start_revision(start_revision);
  if (!rep->stream->Write(req)) return FromGrpc(rep->stream->Finish(), ep.address, "watch");
  etcdserverpb::WatchResponse resp;
  if (!rep->stream->Read(&resp)) return FromGrpc(rep->stream->Finish(), ep.address, "watch");
  if (resp.compact_revision() > 0)
    return NotFound("compacted:" + std::to_string(resp.compact_revision()));
  if (resp.canceled())
    return Status(Code::kUnavailable, "etcd watch at " + ep.address + " was refused: " + resp.cancel_reason());
  return std::unique_ptr<EtcdWatch>(new EtcdWatch(std::move(rep)));
}

EtcdWatch::EtcdWatch(std::unique_ptr<Rep> rep) : rep_(std::move(rep)) {}

EtcdWatch::~EtcdWatch() {
  if (rep_ && rep_->stream) {
    rep_->ctx.TryCancel();
    (void)rep_->stream->Finish();
  }
}

void EtcdWatch::Cancel() {
  rep_->cancelled = true;
  rep_->ctx.TryCancel();
}

Status EtcdWatch::Next(std::vector<EtcdEvent>* events, int64_t* revision) {
  events->clear();
  etcdserverpb::WatchResponse resp;
  if (!rep_->stream->Read(&resp)) {
    if (rep_->cancelled) return Status(Code::kClosed, "the watch was cancelled");
    return Status(Code::kUnavailable, "etcd watch at " + rep_->endpoint + " ended");
  }
  if (resp.compact_revision() > 0) return NotFound("compacted:" + std::to_string(resp.compact_revision()));
  if (resp.canceled())
    return Status(Code::kUnavailable, "etcd watch at " + rep_->endpoint + " was cancelled: " + resp.cancel_reason());
  for (const auto& e : resp.events()) {
    EtcdEvent ev;
    ev.type = e.type() == mvccpb::Event::DELETE ? EtcdEvent::Type::kDelete : EtcdEvent::Type::kPut;
    ev.kv = FromPb(e.kv());
    events->push_back(std::move(ev));
  }
  *revision = resp.header().revision();
  return Status::Ok();
}

}  // namespace kvc::cluster
#endif  // KVC_NET_BUILD && KVC_HAVE_ETCD
