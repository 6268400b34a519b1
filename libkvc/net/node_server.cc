// Compiled only into kvc_net (libkvc/net/CMakeLists.txt), which defines
// KVC_NET_BUILD; kvc_core's source glob sees an empty file.
#ifdef KVC_NET_BUILD
#include "net/node_server.h"

#include <stdlib.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include <grpcpp/grpcpp.h>

#include "cluster/config_sync.h"
#include "cluster/handoff.h"
#include "cluster/registration.h"
#include "net/grpc_tuning.h"
#include "net/node_service.h"
#include "net/shm_server.h"

namespace kvc::net {

namespace {

bool IsEtcdCluster(const std::string& cluster) { return cluster.rfind("etcd://", 0) == 0; }

// RegistrationOptions::node_id's default, from the advertised address.
std::string DefaultNodeId(const std::string& address) {
  std::string id;
  for (char c : address) id += (c == ':' || c == '[' || c == ']') ? '-' : c;
  while (!id.empty() && id.front() == '-') id.erase(0, 1);
  return id;
}

}  // namespace

Result<std::unique_ptr<NodeServer>> NodeServer::Start(const NodeServerOptions& options) {
  std::unique_ptr<NodeServer> s(new NodeServer);
  CacheOptions co = options.cache;
  co.shared_arena = co.shared_arena || !options.unix_path.empty();  // handed to same-host clients
  const bool etcd_cluster = IsEtcdCluster(options.cluster);
  if (etcd_cluster && co.tenants_path.empty()) {
    // A cluster node always enforces the cluster's tenants: it needs a
    // tenants file. The SSD tier keeps it (a foreign file in its directory
    // is left alone), so a restarted node keeps its tenants' ids and blocks.
    if (!co.ssd_dir.empty()) {
      co.tenants_path = (std::filesystem::path(co.ssd_dir) / "tenants.json").string();
    } else {
      std::error_code ec;
      std::string tmpl = (std::filesystem::temp_directory_path(ec) / "kvc-node-tenants-XXXXXX").string();
      if (ec) tmpl = "/tmp/kvc-node-tenants-XXXXXX";
      if (::mkdtemp(tmpl.data()) == nullptr)
        return IoError("cannot create a directory for the cluster's tenants (" + tmpl + "): " + std::strerror(errno));
      s->private_tenants_dir_ = tmpl;
      co.tenants_path = tmpl + "/tenants.json";
    }
  }
  auto cache = Cache::Open(co);
  if (!cache.ok()) return cache.status();
  s->cache_ = std::move(cache).value();
  s->service_ = std::make_unique<NodeService>(*s->cache_, options.write_through);
  s->service_->set_admin_token(options.admin_token);
  s->service_->set_store_idle_timeout_ms(options.store_idle_timeout_ms);
  s->service_->set_metrics_token(options.metrics_token);
  // Applies what the tenants file says of deleted tenants (their blocks go first).
  if (!co.tenants_path.empty()) KVC_RETURN_IF_ERROR(s->cache_->ReloadTenants());
  if (etcd_cluster)
    KVC_RETURN_IF_ERROR(s->service_->set_cluster_ledger(
        co.ssd_dir.empty() ? std::string() : (std::filesystem::path(co.ssd_dir) / "cluster-revisions.json").string()));
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
  // The cluster's configuration before the node serves at all, when its id
  // is known before it binds (not with port 0 and no id or advertised
  // address: then after, still before it registers).
  std::string sync_id;
  if (etcd_cluster) {
    sync_id = !options.node_id.empty()                  ? options.node_id
              : !options.advertise.empty()              ? DefaultNodeId(options.advertise)
              : options.listen.substr(colon + 1) != "0" ? DefaultNodeId(options.listen)
                                                        : std::string();
    if (!sync_id.empty()) KVC_RETURN_IF_ERROR(s->StartConfigSync(options.cluster, sync_id));
  }
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
    ro.address = options.advertise.empty() ? s->address_ : options.advertise;
    ro.node_id = options.node_id.empty() ? DefaultNodeId(ro.address) : options.node_id;
    if (etcd_cluster && sync_id != ro.node_id) {  // the id only the bound port gives
      s->config_sync_.reset();
      KVC_RETURN_IF_ERROR(s->StartConfigSync(options.cluster, ro.node_id));
    }
    ro.zone = options.zone;
    ro.capacity_bytes = options.cache.host_capacity_bytes + options.cache.ssd_capacity_bytes;
    ro.version = KVC_NODE_VERSION;
    ro.on_lease_lost = [svc = s->service_.get()] { svc->BumpAllRevisions(); };
    if (s->config_sync_)  // registers only once it applied every hint written so far
      ro.hints_applied_revision = [sync = s->config_sync_.get()] { return sync->stats().revision; };
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

Status NodeServer::StartConfigSync(const std::string& cluster_address, const std::string& node_id) {
  // The cluster's tenants, revision bumps and the deletes this node missed
  // (cluster/config_sync.h).
  cluster::ConfigSyncOptions cs;
  cs.cluster = cluster_address;
  cs.node_id = node_id;
  NodeService* svc = service_.get();
  cs.apply_tenants = [svc](const std::vector<TenantConfig>& t) { return svc->ApplyClusterTenants(t); };
  cs.apply_bump = [svc](const std::string& tenant, const NodeNamespace& ns, uint64_t count) {
    return svc->ApplyClusterBump(tenant, ns, count).status();
  };
  cs.apply_delete = [svc](const std::string& tenant, const NodeNamespace& ns, const BlockKey& key) {
    return svc->ApplyClusterDelete(tenant, ns, key);
  };
  auto sync = cluster::ConfigSync::Start(cs);
  if (!sync.ok()) return sync.status();
  config_sync_ = std::move(sync).value();
  return Status::Ok();
}

NodeServer::~NodeServer() { Shutdown(0); }

void NodeServer::Shutdown(uint32_t grace_ms) {
  if (registration_) registration_->Stop(1000);  // leave the cluster first: writes fenced
  config_sync_.reset();  // its hooks use the service and the cache
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
  if (!private_tenants_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(private_tenants_dir_, ec);
    private_tenants_dir_.clear();
  }
}

}  // namespace kvc::net
#endif  // KVC_NET_BUILD
