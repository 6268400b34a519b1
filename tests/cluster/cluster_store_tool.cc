// A raw gRPC client for the cluster tests (test_cluster.py): stores and
// loads one block on a node with a chosen membership epoch, which the kvc
// client sets itself.
//   cluster_store_tool store ADDR EPOCH CHAR   store key CHAR*16, bytes CHAR
//   cluster_store_tool load ADDR CHAR          load it back and check it
// Prints {"code":N,"message":"..."} (load: and "intact") and exits 0 when
// the call could be made at all, 2 on a transport failure.
// $KVC_TEST_METADATA="key=value,key=value" adds call metadata (test_cluster_drain.py).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <grpcpp/grpcpp.h>

#include "kvc/v1/kvc.grpc.pb.h"

namespace v1 = kvc::v1;

namespace {

v1::NamespaceSpec Spec() {
  v1::NamespaceSpec s;
  s.set_model("cluster-test-model");
  s.set_revision("r1");
  s.set_dtype("fp16");
  s.set_layers(2);
  s.set_kv_heads(2);
  s.set_head_dim(8);
  s.set_block_tokens(4);
  s.set_shards(1);
  return s;
}

constexpr uint64_t kShardBytes = 2ull * 2 * 4 * 2 * 8 * 2;  // layers*K,V*tokens*heads*dim*fp16

std::string Quote(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) o += c;
  }
  return o + "\"";
}

int Print(const v1::Result& r, const char* extra = "") {
  std::printf("{\"code\":%d,\"message\":%s%s}\n", r.code(), Quote(r.message()).c_str(), extra);
  return 0;
}

int Transport(const grpc::Status& s) {
  std::printf("{\"code\":null,\"message\":%s}\n", Quote(s.error_message()).c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (!((mode == "store" && argc == 5) || (mode == "load" && argc == 4))) {
    std::fprintf(stderr, "usage: %s store ADDR EPOCH CHAR | load ADDR CHAR\n", argv[0]);
    return 1;
  }
  auto ch = grpc::CreateChannel(argv[2], grpc::InsecureChannelCredentials());
  auto stub = v1::Node::NewStub(ch);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  if (const char* md = std::getenv("KVC_TEST_METADATA")) {
    std::string all(md);
    for (size_t at = 0; at < all.size();) {
      size_t end = all.find(',', at);
      if (end == std::string::npos) end = all.size();
      const std::string kv = all.substr(at, end - at);
      const size_t eq = kv.find('=');
      if (eq != std::string::npos) ctx.AddMetadata(kv.substr(0, eq), kv.substr(eq + 1));
      at = end + 1;
    }
  }
  const char c = argv[argc - 1][0];
  const std::string key(16, c);
  if (mode == "store") {
    v1::StoreResponse r;
    auto w = stub->Store(&ctx, &r);
    v1::StoreMessage m;
    *m.mutable_begin()->mutable_ns() = Spec();
    m.mutable_begin()->set_key(key);
    m.mutable_begin()->set_total_bytes(kShardBytes);
    m.mutable_begin()->set_membership_epoch(std::strtoull(argv[3], nullptr, 10));
    w->Write(m);
    v1::StoreMessage d;
    d.mutable_chunk()->set_offset(0);
    d.mutable_chunk()->set_data(std::string(kShardBytes, c));
    w->Write(d);
    v1::StoreMessage done;
    done.mutable_commit();
    w->Write(done);
    w->WritesDone();
    grpc::Status s = w->Finish();
    if (!s.ok()) return Transport(s);
    return Print(r.result());
  }
  v1::LoadRequest q;
  *q.mutable_ns() = Spec();
  q.set_key(key);
  auto reader = stub->Load(&ctx, q);
  v1::LoadChunk chunk;
  v1::Result result;
  std::string data;
  bool first = true;
  while (reader->Read(&chunk)) {
    if (first) result = chunk.result();
    first = false;
    data += chunk.data();
  }
  grpc::Status s = reader->Finish();
  if (!s.ok()) return Transport(s);
  const bool intact = result.code() == 0 && data == std::string(kShardBytes, c);
  return Print(result, intact ? ",\"intact\":true" : ",\"intact\":false");
}
