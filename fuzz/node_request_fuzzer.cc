// Fuzz target over the node's request decoding: the input is a sequence of
// records, each a kvc.v1 request (or a store stream of StoreMessages) in its
// protobuf encoding, sent through a real gRPC server (in this process, on a
// loopback port) to a real NodeService over a fresh 16 MiB cache. Input
// format: fuzz/README.md.
//
// Invariants checked after every record (a violation aborts, which libFuzzer
// and the replay runner report as a crash):
// - the call completes (a deadline of 5 s; nothing hangs);
// - no reservation or pin outlives its call (the cache's "pending" and
//   "pins" return to 0);
// - a store block that did not answer KVC_OK made nothing visible: a block
//   shard absent before it is absent after it; a block that made a shard
//   visible answered KVC_OK (StoreResponse.results, one per begin; a batch
//   stream carries several blocks, as begins or packed in StoreMessage.
//   blocks), and the shard holds exactly the bytes
//   streamed for it; a shard visible before keeps its bytes;
// - a load's stream is consistent: offsets in order, as many bytes as
//   announced, a batch's keys answered in order, by chunks or as packed
//   items (LoadChunk.items: whole blocks of at most 256 KiB, up to 1 MiB of
//   data a message, never inside a key's chunks), each key once (or the
//   request refused in one message);
// and at the end of the input the node still answers Health, serving.
#include <google/protobuf/stubs/logging.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/cache.h"
#include "kvc/v1/kvc.grpc.pb.h"
#include "net/node_service.h"

namespace v1 = kvc::v1;

namespace {

#define FUZZ_CHECK(cond, what)                                                        \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      std::fprintf(stderr, "node_request_fuzzer: invariant violated: %s (%s:%d)\n", \
                   what, __FILE__, __LINE__);                                         \
      std::abort();                                                                   \
    }                                                                                 \
  } while (0)

// Reads the input front to back; every read past the end yields zeros/empty.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
  bool done() const { return p_ >= end_; }
  uint8_t U8() { return p_ < end_ ? *p_++ : 0; }
  uint16_t U16() {
    uint16_t lo = U8();
    return static_cast<uint16_t>(lo | (uint16_t{U8()} << 8));
  }
  std::string Bytes(size_t n) {
    const size_t left = static_cast<size_t>(end_ - p_);
    if (n > left) n = left;
    std::string s(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return s;
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

// One node, in process: a cache, the service and a gRPC server with no port,
// reached through its in-process channel.
class Node {
 public:
  Node() {
    kvc::CacheOptions o;
    o.host_capacity_bytes = 16u << 20;
    o.prefault = false;
    o.maintenance_interval_ms = 50;
    auto cache = kvc::Cache::Open(o);
    FUZZ_CHECK(cache.ok(), "the cache opens");
    cache_ = std::move(cache).value();
    service_ = std::make_unique<kvc::net::NodeService>(*cache_, false);
    grpc::ServerBuilder b;
    // A loopback port rather than the in-process channel alone: gRPC's
    // in-process transport does not end a client's pending writes when the
    // server finishes a stream early (a store refused mid-stream), so such
    // a client would wait for its deadline where a TCP client does not.
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(service_.get());
    b.SetMaxReceiveMessageSize(kvc::net::kMaxMessageBytes);
    b.SetMaxSendMessageSize(kvc::net::kMaxMessageBytes);
    server_ = b.BuildAndStart();
    FUZZ_CHECK(server_ != nullptr, "the in-process server starts");
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(kvc::net::kMaxMessageBytes);
    args.SetMaxSendMessageSize(kvc::net::kMaxMessageBytes);
    FUZZ_CHECK(port != 0, "the server listens on a loopback port");
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    stub_ = v1::Node::NewStub(
        grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials(), args));
  }
  ~Node() {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    server_->Wait();
    server_.reset();
    service_.reset();
    cache_.reset();
  }

  v1::Node::Stub& stub() { return *stub_; }

  // Waits (bounded) until no reservation and no pin is held: a call's
  // handler may still be unwinding on a server thread after the client saw
  // its end (a cancelled stream).
  void CheckNothingHeld() {
    for (int i = 0; i < 400; ++i) {
      const auto j = cache_->StatsJson();
      if (j.value("pending", uint64_t{1}) == 0 && j.value("pins", uint64_t{1}) == 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    FUZZ_CHECK(false, "no reservation or pin outlives its call");
  }

 private:
  std::unique_ptr<kvc::Cache> cache_;
  std::unique_ptr<kvc::net::NodeService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::Node::Stub> stub_;
};

void Prepare(grpc::ClientContext* ctx) {
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
}

// A load of (ns, key, shard), or of a batch (LoadRequest.keys): the kvc
// code of the first answer (1 for a transport error) and, for one key, the
// bytes when it is KVC_OK; checks the stream's consistency: each key's
// chunks in order, the first with its result, keys answered in order (their
// `index`), as many bytes as announced; a batch answers every key, or is
// refused as a whole with one message.
int LoadShard(Node& node, const v1::LoadRequest& q, std::string* bytes) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  auto reader = node.stub().Load(&ctx, q);
  v1::LoadChunk c;
  int code = 1;
  uint64_t total = 0, got = 0;
  bytes->clear();
  int64_t index = -1;  // the key being answered
  size_t answered = 0;
  while (reader->Read(&c)) {
    // A message of packed items alone carries none of fields 1-5.
    const bool chunk = c.items_size() == 0 || c.has_result() || c.total_bytes() != 0 || c.offset() != 0 ||
                       !c.data().empty() || c.index() != 0;
    if (!chunk) {
      // skip to the items
    } else if (c.has_result()) {  // a key's first message
      FUZZ_CHECK(index < 0 || got == total, "a load answers a key only after the previous one's bytes");
      FUZZ_CHECK(static_cast<int64_t>(c.index()) == index + 1, "a batch load answers its keys in order");
      FUZZ_CHECK(c.offset() == 0, "a key's first chunk is at offset 0");
      index = c.index();
      ++answered;
      if (answered == 1) code = c.result().code();
      total = c.result().code() == 0 ? c.total_bytes() : 0;
      got = 0;
    } else {
      FUZZ_CHECK(index >= 0 && static_cast<int64_t>(c.index()) == index, "a load chunk belongs to the key answered");
    }
    if (chunk) {
      FUZZ_CHECK(c.offset() == got, "load chunks arrive in order");
      FUZZ_CHECK(c.data().size() <= kvc::net::kMaxChunkBytes, "load chunks are at most 1 MiB");
      FUZZ_CHECK(c.data().size() <= total - got, "a load streams no more than total_bytes");
      got += c.data().size();
      if (q.keys_size() == 0) bytes->append(c.data());
    }
    uint64_t packed = 0;
    for (const auto& it : c.items()) {
      FUZZ_CHECK(q.keys_size() > 0, "only a batch load answers with items");
      FUZZ_CHECK(index < 0 || got == total, "an item comes only after the previous key's bytes");
      FUZZ_CHECK(static_cast<int64_t>(it.index()) == index + 1, "a batch load answers its keys in order (items)");
      FUZZ_CHECK(it.has_result(), "an item carries its result");
      index = it.index();
      ++answered;
      if (answered == 1) code = it.result().code();
      if (it.result().code() == 0) {
        FUZZ_CHECK(it.data().size() == it.total_bytes(), "an item's data is its total_bytes");
        FUZZ_CHECK(it.data().size() <= kvc::net::kMaxPackedBlockBytes, "packed blocks are at most 256 KiB");
      } else {
        FUZZ_CHECK(it.data().empty(), "a miss or failure carries no data");
      }
      packed += it.data().size();
      total = got = 0;
    }
    FUZZ_CHECK(packed <= kvc::net::kMaxChunkBytes, "a message packs at most 1 MiB of data");
  }
  const grpc::Status st = reader->Finish();
  FUZZ_CHECK(st.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED, "a load completes");
  if (!st.ok()) return 1;
  FUZZ_CHECK(answered > 0, "a load answers");
  FUZZ_CHECK(got == total, "a load streams total_bytes bytes");
  if (q.keys_size() > 0)
    FUZZ_CHECK(answered == static_cast<size_t>(q.keys_size()) || (answered == 1 && code != 0),
               "a batch load answers every key, or refuses the request in one message");
  else
    FUZZ_CHECK(answered == 1, "a one-key load answers one key");
  return code;
}

void DoMatch(Node& node, const std::string& payload) {
  v1::MatchRequest q;
  if (!q.ParseFromString(payload)) return;
  grpc::ClientContext ctx;
  Prepare(&ctx);
  v1::MatchResponse r;
  const grpc::Status st = node.stub().Match(&ctx, q, &r);
  FUZZ_CHECK(st.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED, "a match completes");
  if (st.ok() && r.result().code() == 0) {
    if (q.tokens_size() == 0) {
      FUZZ_CHECK(r.blocks() <= static_cast<uint64_t>(q.keys_size()), "match: blocks <= keys");
      FUZZ_CHECK(r.tiers().size() == static_cast<size_t>(q.keys_size()), "match: one tier per key");
    } else {
      FUZZ_CHECK(r.blocks() <= static_cast<uint64_t>(r.keys_size()), "match: blocks <= token keys");
    }
  }
}

void DoLoad(Node& node, const std::string& payload) {
  v1::LoadRequest q;
  if (!q.ParseFromString(payload)) return;
  std::string bytes;
  LoadShard(node, q, &bytes);
}

// flags & 1: cancel the stream after the messages instead of ending it;
// flags & 2: leave the stream open (no WritesDone) and finish from the
// client's side by cancelling, as a client that vanishes would.
// A stream may carry several blocks (StoreBegin.batch_blocks): each begin
// starts one, and each block shard named is probed before and after.
void DoStore(Node& node, Reader& in, size_t payload_len) {
  std::string payload = in.Bytes(payload_len);
  Reader p(reinterpret_cast<const uint8_t*>(payload.data()), payload.size());
  const uint8_t flags = p.U8();
  std::vector<v1::StoreMessage> msgs;
  while (!p.done()) {
    const uint16_t n = p.U16();
    v1::StoreMessage m;
    if (m.ParseFromString(p.Bytes(n))) msgs.push_back(std::move(m));
  }
  // The blocks the stream names (a begin starts one, its commit ends it;
  // chunks outside a block belong to none), the bytes streamed for each,
  // and whether each shard named was visible before.
  struct Block {
    std::string probe;  // the LoadRequest of its shard, serialized
    std::string streamed;
  };
  std::vector<Block> blocks;
  struct Shard {
    v1::LoadRequest probe;
    int before = 1;
    std::string before_bytes;
  };
  std::map<std::string, Shard> shards;
  bool in_block = false;
  for (const auto& m : msgs) {
    if (m.has_begin()) {
      in_block = true;
      v1::LoadRequest probe;
      *probe.mutable_ns() = m.begin().ns();
      probe.set_key(m.begin().key());
      probe.set_shard(m.begin().shard());
      blocks.push_back({probe.SerializeAsString(), ""});
      shards.emplace(blocks.back().probe, Shard{probe, 1, ""});
    } else if (m.has_chunk() && in_block) {
      blocks.back().streamed += m.chunk().data();
    } else if (m.has_commit()) {
      in_block = false;
    } else if (m.has_blocks()) {  // whole blocks, each a begin, its bytes and a commit
      in_block = false;
      for (const auto& b : m.blocks().blocks()) {
        v1::LoadRequest probe;
        *probe.mutable_ns() = b.begin().ns();
        probe.set_key(b.begin().key());
        probe.set_shard(b.begin().shard());
        blocks.push_back({probe.SerializeAsString(), b.data()});
        shards.emplace(blocks.back().probe, Shard{probe, 1, ""});
      }
    }
  }
  for (auto& [id, sh] : shards) sh.before = LoadShard(node, sh.probe, &sh.before_bytes);

  grpc::ClientContext ctx;
  Prepare(&ctx);
  v1::StoreResponse r;
  auto w = node.stub().Store(&ctx, &r);
  for (const auto& m : msgs)
    if (!w->Write(m)) break;
  if (flags & 3) {
    ctx.TryCancel();
  } else {
    w->WritesDone();
  }
  const grpc::Status st = w->Finish();
  FUZZ_CHECK(st.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED, "a store completes");
  FUZZ_CHECK(!st.ok() || static_cast<size_t>(r.results_size()) <= blocks.size(),
             "a store answers at most one result per begin");
  // A cancelled stream's reply may be lost even when blocks were committed.
  const bool answered = st.ok() && !(flags & 3);
  node.CheckNothingHeld();

  for (auto& [id, sh] : shards) {
    std::string after_bytes;
    const int after = LoadShard(node, sh.probe, &after_bytes);
    if (sh.before != 0 && after == 0) {
      // Some block of that shard made it visible: one whose result is
      // KVC_OK (when the reply arrived), with exactly its bytes.
      bool found = false;
      for (size_t j = 0; j < blocks.size() && !found; ++j) {
        if (blocks[j].probe != id || blocks[j].streamed != after_bytes) continue;
        found = !answered || (static_cast<int>(j) < r.results_size() && r.results(static_cast<int>(j)).code() == 0);
      }
      FUZZ_CHECK(found, "a shard becomes visible only through a block that answered KVC_OK, with its bytes");
    }
    if (sh.before == 0 && after == 0)
      FUZZ_CHECK(after_bytes == sh.before_bytes, "a store leaves a visible shard's bytes alone");
  }
}

template <class Req, class Resp, class Call>
void DoUnary(const std::string& payload, Call call) {
  Req q;
  if (!q.ParseFromString(payload)) return;
  grpc::ClientContext ctx;
  Prepare(&ctx);
  Resp r;
  const grpc::Status st = call(&ctx, q, &r);
  FUZZ_CHECK(st.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED, "a unary call completes");
}

void CheckHealth(Node& node) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  v1::HealthResponse r;
  const grpc::Status st = node.stub().Health(&ctx, v1::HealthRequest(), &r);
  FUZZ_CHECK(st.ok() && r.serving(), "the node answers Health, serving");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Malformed strings are expected here; protobuf would log each one.
  static const bool quiet = (google::protobuf::SetLogHandler(nullptr), true);
  (void)quiet;
  Node node;
  Reader in(data, size);
  auto& stub = node.stub();
  while (!in.done()) {
    const uint8_t kind = in.U8() % 8;
    const uint16_t len = in.U16();
    if (kind == 3) {
      DoStore(node, in, len);
      continue;
    }
    const std::string payload = in.Bytes(len);
    switch (kind) {
      case 1:
        DoMatch(node, payload);
        break;
      case 2:
        DoLoad(node, payload);
        break;
      case 4:
        DoUnary<v1::DeleteRequest, v1::DeleteResponse>(payload, [&](auto* c, auto& q, auto* r) {
          return stub.Delete(c, q, r);
        });
        break;
      case 5:
        DoUnary<v1::BumpRevisionRequest, v1::BumpRevisionResponse>(
            payload, [&](auto* c, auto& q, auto* r) { return stub.BumpRevision(c, q, r); });
        break;
      case 6:
        DoUnary<v1::StatsRequest, v1::StatsResponse>(payload, [&](auto* c, auto& q, auto* r) {
          return stub.Stats(c, q, r);
        });
        break;
      default:  // 0, 7
        CheckHealth(node);
        break;
    }
    node.CheckNothingHeld();
  }
  CheckHealth(node);
  return 0;
}
