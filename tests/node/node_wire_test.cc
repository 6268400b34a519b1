// The node's wire checks, from a raw gRPC client that sends what the kvc
// client never would: every RPC without, or with a wrong, token; and store
// streams that end early, skip or overrun bytes, or name a shard out of
// range. Run by test_node.py against a live `kvc serve`:
//   node_wire_test ADDR TENANT CREDENTIAL
// Exits 0 when every check holds; prints each failure.
#include <chrono>
#include <cstdio>
#include <string>

#include <grpcpp/grpcpp.h>

#include "kvc/v1/kvc.grpc.pb.h"

namespace v1 = kvc::v1;

namespace {

int g_failures = 0;

void Check(bool ok, const std::string& what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
  if (!ok) g_failures++;
}

void Prepare(grpc::ClientContext* ctx, const std::string& token) {
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  if (!token.empty()) ctx->AddMetadata("authorization", token);
}

v1::NamespaceSpec Spec() {
  v1::NamespaceSpec s;
  s.set_model("wire-model");
  s.set_revision("r1");
  s.set_dtype("fp16");
  s.set_layers(2);
  s.set_kv_heads(2);
  s.set_head_dim(8);
  s.set_block_tokens(4);
  s.set_shards(2);
  return s;
}

constexpr uint64_t kShardBytes = 2ull * 2 * 4 * 2 * 8 * 2 / 2;  // layers*K,V*tokens*heads*dim*fp16/shards

std::string Key(char c) { return std::string(16, c); }

// Every RPC with `token` must be UNAUTHENTICATED.
void AllRefused(v1::Node::Stub& stub, const std::string& token, const std::string& label) {
  {
    grpc::ClientContext ctx;
    Prepare(&ctx, token);
    v1::HealthResponse r;
    Check(stub.Health(&ctx, v1::HealthRequest(), &r).error_code() == grpc::StatusCode::UNAUTHENTICATED,
          label + ": Health refused");
  }
  {
    grpc::ClientContext ctx;
    Prepare(&ctx, token);
    v1::MatchRequest q;
    *q.mutable_ns() = Spec();
    q.add_keys(Key('a'));
    v1::MatchResponse r;
    Check(stub.Match(&ctx, q, &r).error_code() == grpc::StatusCode::UNAUTHENTICATED && r.blocks() == 0,
          label + ": Match refused");
  }
  {
    grpc::ClientContext ctx;
    Prepare(&ctx, token);
    v1::LoadRequest q;
    *q.mutable_ns() = Spec();
    q.set_key(Key('a'));
    auto reader = stub.Load(&ctx, q);
    v1::LoadChunk c;
    bool got = reader->Read(&c);
    Check(!got && reader->Finish().error_code() == grpc::StatusCode::UNAUTHENTICATED, label + ": Load refused");
  }
  {
    grpc::ClientContext ctx;
    Prepare(&ctx, token);
    v1::StoreResponse r;
    auto w = stub.Store(&ctx, &r);
    v1::StoreMessage m;
    *m.mutable_begin()->mutable_ns() = Spec();
    m.mutable_begin()->set_key(Key('z'));
    m.mutable_begin()->set_total_bytes(kShardBytes);
    w->Write(m);
    w->WritesDone();
    Check(w->Finish().error_code() == grpc::StatusCode::UNAUTHENTICATED, label + ": Store refused");
  }
  {
    grpc::ClientContext ctx;
    Prepare(&ctx, token);
    v1::DeleteRequest q;
    *q.mutable_ns() = Spec();
    q.set_key(Key('a'));
    v1::DeleteResponse r;
    Check(stub.Delete(&ctx, q, &r).error_code() == grpc::StatusCode::UNAUTHENTICATED, label + ": Delete refused");
  }
  {
    grpc::ClientContext ctx;
    Prepare(&ctx, token);
    v1::BumpRevisionRequest q;
    *q.mutable_ns() = Spec();
    v1::BumpRevisionResponse r;
    Check(stub.BumpRevision(&ctx, q, &r).error_code() == grpc::StatusCode::UNAUTHENTICATED,
          label + ": BumpRevision refused");
  }
  {
    grpc::ClientContext ctx;
    Prepare(&ctx, token);
    v1::StatsResponse r;
    Check(stub.Stats(&ctx, v1::StatsRequest(), &r).error_code() == grpc::StatusCode::UNAUTHENTICATED &&
              r.json().empty(),
          label + ": Stats refused");
  }
}

// Sends `msgs` as one store stream (stopping early if the node closes it)
// and returns the kvc code of the reply, or 1 for a transport error.
int StoreStream(v1::Node::Stub& stub, const std::string& token, const std::vector<v1::StoreMessage>& msgs) {
  grpc::ClientContext ctx;
  Prepare(&ctx, token);
  v1::StoreResponse r;
  auto w = stub.Store(&ctx, &r);
  for (const auto& m : msgs)
    if (!w->Write(m)) break;
  w->WritesDone();
  if (!w->Finish().ok()) return 1;
  return r.result().code();
}

v1::StoreMessage Begin(char key, uint32_t shard, uint64_t total) {
  v1::StoreMessage m;
  *m.mutable_begin()->mutable_ns() = Spec();
  m.mutable_begin()->set_key(Key(key));
  m.mutable_begin()->set_shard(shard);
  m.mutable_begin()->set_total_bytes(total);
  return m;
}

v1::StoreMessage Chunk(uint64_t off, uint64_t n) {
  v1::StoreMessage m;
  m.mutable_chunk()->set_offset(off);
  m.mutable_chunk()->set_data(std::string(n, 'x'));
  return m;
}

v1::StoreMessage Commit() {
  v1::StoreMessage m;
  m.mutable_commit();
  return m;
}

// How many leading blocks of `key` (shard count 2) the node holds.
uint64_t Present(v1::Node::Stub& stub, const std::string& token, char key) {
  grpc::ClientContext ctx;
  Prepare(&ctx, token);
  v1::MatchRequest q;
  *q.mutable_ns() = Spec();
  q.add_keys(Key(key));
  v1::MatchResponse r;
  if (!stub.Match(&ctx, q, &r).ok()) return 99;
  return r.blocks();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s ADDR TENANT CREDENTIAL\n", argv[0]);
    return 2;
  }
  const std::string addr = argv[1], tenant = argv[2], cred = argv[3];
  const std::string good = "Bearer " + tenant + ":" + cred;
  auto channel = grpc::CreateChannel(addr, grpc::InsecureChannelCredentials());
  auto stub = v1::Node::NewStub(channel);

  AllRefused(*stub, "", "no token");
  AllRefused(*stub, "Bearer " + tenant + ":wrong", "wrong credential");
  AllRefused(*stub, "Bearer nobody:" + cred, "unknown tenant");
  AllRefused(*stub, tenant + ":" + cred, "no Bearer prefix");
  AllRefused(*stub, "Bearer " + tenant, "no credential");

  const int kInvalid = -1, kLayout = -8, kOk = 0;
  // Both shards of block 'k' are needed for it to count: store shard 0 well,
  // then fail shard 1 in every way; the block must stay absent.
  Check(StoreStream(*stub, good, {Begin('k', 0, kShardBytes), Chunk(0, kShardBytes), Commit()}) == kOk,
        "a well-formed store of shard 0");
  Check(StoreStream(*stub, good, {Begin('k', 1, kShardBytes), Chunk(0, kShardBytes / 2)}) == kInvalid,
        "a stream that ends before commit");
  Check(StoreStream(*stub, good, {Begin('k', 1, kShardBytes), Chunk(0, kShardBytes / 2), Commit()}) == kInvalid,
        "a commit after too few bytes");
  Check(StoreStream(*stub, good, {Begin('k', 1, kShardBytes), Chunk(0, kShardBytes + 1), Commit()}) == kInvalid,
        "a chunk past the block");
  Check(StoreStream(*stub, good, {Begin('k', 1, kShardBytes), Chunk(8, kShardBytes - 8), Commit()}) == kInvalid,
        "a chunk at the wrong offset");
  Check(StoreStream(*stub, good, {Begin('k', 1, kShardBytes), Begin('k', 1, kShardBytes)}) == kInvalid,
        "a second begin");
  Check(StoreStream(*stub, good, {Begin('k', 1, 1ull << 62), Commit()}) == kLayout, "a huge total_bytes");
  Check(StoreStream(*stub, good, {Begin('k', 7, kShardBytes), Chunk(0, kShardBytes), Commit()}) == kInvalid,
        "a shard out of range");
  Check(StoreStream(*stub, good, {Chunk(0, 16), Commit()}) == kInvalid, "a stream without begin");
  {
    v1::StoreMessage b = Begin('k', 1, kShardBytes);
    b.mutable_begin()->set_key("short");
    Check(StoreStream(*stub, good, {b, Chunk(0, kShardBytes), Commit()}) == kInvalid, "a key of 5 bytes");
  }
  Check(Present(*stub, good, 'k') == 0, "nothing of the failed streams was published");
  // The failed reservations were aborted: shard 1 can be stored now.
  Check(StoreStream(*stub, good, {Begin('k', 1, kShardBytes), Chunk(0, kShardBytes), Commit()}) == kOk,
        "shard 1 stores after the failures");
  Check(Present(*stub, good, 'k') == 1, "the block is present with both shards");
  {
    grpc::ClientContext ctx;
    Prepare(&ctx, good);
    v1::MatchRequest q;
    *q.mutable_ns() = Spec();
    for (int i = 0; i < 70000; i++) q.add_keys(Key('q'));
    v1::MatchResponse r;
    auto st = stub->Match(&ctx, q, &r);
    Check(!st.ok() || r.result().code() == kInvalid, "a match of 70000 keys is refused");
  }
  {
    grpc::ClientContext ctx;
    Prepare(&ctx, good);
    v1::LoadRequest q;
    *q.mutable_ns() = Spec();
    q.set_key(Key('k'));
    q.set_shard(9);
    auto reader = stub->Load(&ctx, q);
    v1::LoadChunk c;
    Check(reader->Read(&c) && c.result().code() == kInvalid, "a load of a shard out of range");
    while (reader->Read(&c)) {
    }
    reader->Finish();
  }
  {
    grpc::ClientContext ctx;
    Prepare(&ctx, good);
    v1::HealthResponse r;
    Check(stub->Health(&ctx, v1::HealthRequest(), &r).ok() && r.serving(), "the node is still serving");
  }
  std::printf("%d failure(s)\n", g_failures);
  return g_failures == 0 ? 0 : 1;
}
