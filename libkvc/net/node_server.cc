// Compiled only into kvc_net (libkvc/net/CMakeLists.txt), which defines
// KVC_NET_BUILD; kvc_core's source glob sees an empty file.
#ifdef KVC_NET_BUILD
#include "net/node_server.h"

#include <chrono>

#include <grpcpp/grpcpp.h>

#include "cluster/handoff.h"
#include "cluster/registration.h"
#include "net/grpc_tuning.h"
#include "net/node_service.h"
#include "net/shm_server.h"

namespace kvc::net {

Result<std::unique_ptr<NodeServer>> NodeServer::Start(const NodeServerOptions& options) {
  CacheOptions co = options.cache;
  co.shared_arena = co.shared_arena || !options.unix_path.empty();  // handed to same-host clients
  auto cache = Cache::Open(co);
  if (!cache.ok()) return cache.status();
  std::unique_ptr<NodeServer> s(new NodeServer);
  s->cache_ = std::move(cache).value();
  s->service_ = std::make_unique<NodeService>(*s->cache_, options.write_through);
  s->service_->set_admin_token(options.admin_token);
  s->service_->set_store_idle_timeout_ms(options.store_idle_timeout_ms);
  s->service_->set_metrics_token(options.metrics_token);
  // Applies what the tenants file says of deleted tenants (their blocks go first).
  if (!options.cache.tenants_path.empty()) KVC_RETURN_IF_ERROR(s->cache_->ReloadTenants());
  auto creds = ServerCredentialsFromFiles(options.tls_cert_path, options.tls_key_path, options.tls_client_ca_path);
  if (!creds.ok()) return creds.status();
  const size_t colon = options.listen.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == options.listen.size())
    return InvalidArgument("listen address '" + options.listen + "' is not host:port");
  grpc::ServerBuilder b;
  int port = 0;
  b.AddListeningPort(options.listen, *creds, &port);
  b.RegisterService(s->service_.get());
  // One node per port: without this a second node would share the port.
  b.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  b.SetMaxReceiveMessageSize(kMaxMessageBytes);
  b.SetMaxSendMessageSize(kMaxMessageBytes);
  TuneServerBuilder(b);  // net/grpc_tuning.h
  if (!options.cluster.empty())  // fenced until registered (below)
    s->service_->set_write_fence([](uint64_t) { return Status(Code::kFenced, "the node is not registered yet"); });
  s->server_ = b.BuildAndStart();
  if (s->server_ == nullptr || port == 0)
    return Status(Code::kUnavailable, "cannot listen on " + options.listen);
  s->address_ = options.listen.substr(0, colon + 1) + std::to_string(port);
  if (!options.unix_path.empty()) {
    ShmServerOptions so{options.write_through, &s->service_->metrics(), options.admin_token, {}};
    NodeService* svc = s->service_.get();
    so.admit_write = [svc](uint64_t epoch) { return svc->AdmitWrite(epoch); };
    auto shm = ShmServer::Start(*s->cache_, options.unix_path, so);
    if (!shm.ok()) return shm.status();
    s->shm_ = std::move(shm).value();
  }
  if (!options.metrics_listen.empty())
    KVC_RETURN_IF_ERROR(s->service_->StartMetrics(options.metrics_listen, &s->metrics_address_));
  if (!options.cluster.empty()) {  // libkvc/cluster/registration.h
    cluster::RegistrationOptions ro;
    ro.cluster = options.cluster;
    ro.node_id = options.node_id;
    ro.address = options.advertise.empty() ? s->address_ : options.advertise;
    ro.zone = options.zone;
    ro.capacity_bytes = options.cache.host_capacity_bytes + options.cache.ssd_capacity_bytes;
    ro.version = KVC_NODE_VERSION;
    ro.on_lease_lost = [svc = s->service_.get()] { svc->BumpAllRevisions(); };
    s->handoff_ = std::make_unique<cluster::Handoff>(
        *s->cache_, cluster::Handoff::Options{options.cluster, "", options.admin_token, options.tls_client_ca_path});
    ro.on_draining = [h = s->handoff_.get()] { h->Start(); };
    s->service_->set_drain_stats([h = s->handoff_.get()] { return h->Json(); });
    auto reg = cluster::Registration::Start(ro);
    if (!reg.ok()) return reg.status();
    s->registration_ = std::move(reg).value();
    s->handoff_->set_registration(s->registration_.get());
    s->service_->set_write_fence([r = s->registration_.get()](uint64_t epoch) { return r->Admit(epoch); });
  }
  return s;
}

NodeServer::~NodeServer() { Shutdown(0); }

void NodeServer::Shutdown(uint32_t grace_ms) {
  if (registration_) registration_->Stop(1000);  // leave the cluster first: writes fenced
  handoff_.reset();  // stops between blocks
  if (shm_) shm_->Stop();  // before the cache: its connections' pins go back to it
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(grace_ms));
    server_->Wait();
    server_.reset();
  }
  service_.reset();
  shm_.reset();
  registration_.reset();
  cache_.reset();
}

}  // namespace kvc::net
#endif  // KVC_NET_BUILD
