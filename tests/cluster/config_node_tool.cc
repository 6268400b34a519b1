// A helper of test_cluster_config_node.py (an etcd cluster's configuration
// taken up by its nodes):
//   config_node_tool nsid TENANT NS_JSON
//       prints the namespace's id (etcd_layout.h NamespaceId), the last
//       part of its /kvc/<cluster>/revisions/ key
//   config_node_tool bump ADDR TENANT CREDENTIAL COUNT NS_JSON
//       sends BumpRevision with cluster_count=COUNT as TENANT ("" for none);
//       prints {"code":N,"message":"...","epoch":E}
// NS_JSON is a revision record's "ns" object. Exits 0 when the call could
// be made, 1 on bad arguments, 2 on a transport failure.
#include <chrono>
#include <cstdio>
#include <string>

#include <grpcpp/grpcpp.h>

#include "cluster/etcd_layout.h"
#include "kvc/v1/kvc.grpc.pb.h"

namespace {

kvc::Result<kvc::net::NodeNamespace> Ns(const std::string& json) {
  auto r = kvc::cluster::DecodeRevision("{\"count\":0,\"tenant\":\"\",\"ns\":" + json + "}");
  if (!r.ok()) return r.status();
  return r->ns;
}

std::string Quote(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) o += c;
  }
  return o + "\"";
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (!((mode == "nsid" && argc == 4) || (mode == "bump" && argc == 7))) {
    std::fprintf(stderr, "usage: %s nsid TENANT NS_JSON | bump ADDR TENANT CREDENTIAL COUNT NS_JSON\n", argv[0]);
    return 1;
  }
  auto ns = Ns(argv[argc - 1]);
  if (!ns.ok()) {
    std::fprintf(stderr, "NS_JSON: %s\n", ns.status().ToString().c_str());
    return 1;
  }
  if (mode == "nsid") {
    std::printf("%s\n", kvc::cluster::NamespaceId(argv[2], *ns).c_str());
    return 0;
  }
  auto stub = kvc::v1::Node::NewStub(grpc::CreateChannel(argv[2], grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  const std::string tenant = argv[3];
  if (!tenant.empty()) ctx.AddMetadata("authorization", "Bearer " + tenant + ":" + argv[4]);
  kvc::v1::BumpRevisionRequest req;
  auto* s = req.mutable_ns();
  s->set_hash(ns->hash);
  s->set_model(ns->model);
  s->set_revision(ns->revision);
  s->set_adapter(ns->adapter);
  s->set_dtype(ns->dtype);
  s->set_layers(ns->layers);
  s->set_kv_heads(ns->kv_heads);
  s->set_head_dim(ns->head_dim);
  s->set_block_tokens(ns->block_tokens);
  s->set_shards(ns->shards);
  req.set_cluster_count(std::stoull(argv[5]));
  kvc::v1::BumpRevisionResponse resp;
  grpc::Status st = stub->BumpRevision(&ctx, req, &resp);
  if (!st.ok()) {
    std::printf("{\"code\":null,\"message\":%s}\n", Quote(st.error_message()).c_str());
    return 2;
  }
  std::printf("{\"code\":%d,\"message\":%s,\"epoch\":%llu}\n", resp.result().code(),
              Quote(resp.result().message()).c_str(), static_cast<unsigned long long>(resp.epoch()));
  return 0;
}
