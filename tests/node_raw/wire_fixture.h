// What the raw gRPC wire tests share (raw_wire_test.cc, batch_wire_test.cc,
// pack_wire_test.cc): an in-process node on a loopback port with raw stream
// helpers, a fake node, keys, blocks, namespaces and StoreMessage builders.
//
// Header only. A setup check is a doctest REQUIRE where the test includes
// doctest first (batch_wire_test, pack_wire_test) and otherwise throws
// std::runtime_error, which raw_wire_test's main reports as a failure.
#ifndef KVC_TESTS_NODE_RAW_WIRE_FIXTURE_H_
#define KVC_TESTS_NODE_RAW_WIRE_FIXTURE_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/rpc_method.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/cache.h"
#include "kvc/v1/kvc.grpc.pb.h"
#include "net/node_client.h"
#include "net/node_service.h"

namespace kvc::wire_fixture {

// The names the tests use, for their `using namespace kvc::wire_fixture`.
namespace v1 = kvc::v1;
using kvc::BlockKey;
using kvc::Code;
using kvc::net::GetItem;
using kvc::net::NodeClient;
using kvc::net::NodeNamespace;
using kvc::net::PutItem;

// The fixture's REQUIRE: the test ends unless `ok`.
inline void Require(bool ok, const std::string& what) {
#ifdef DOCTEST_LIBRARY_INCLUDED
  REQUIRE_MESSAGE(ok, what);
#else
  if (!ok) throw std::runtime_error(what);
#endif
}

// A namespace of one layer, fp16: 2 x tokens x heads x dim x 2 bytes a block.
inline net::NodeNamespace Ns(const char* model, uint32_t tokens, uint32_t heads, uint32_t dim) {
  net::NodeNamespace ns;
  ns.model = model;
  ns.revision = "r1";
  ns.dtype = "fp16";
  ns.layers = 1;
  ns.kv_heads = heads;
  ns.head_dim = dim;
  ns.block_tokens = tokens;
  return ns;
}

// The namespace as a request carries it.
inline v1::NamespaceSpec Spec(const net::NodeNamespace& ns) {
  v1::NamespaceSpec s;
  net::SpecOf(ns, &s);
  return s;
}

// Distinct keys for distinct n. (batch_wire_test added i * 31 a byte,
// pack_wire_test i * 37 + 5: neither asserts on the bytes, only that keys
// differ, which both do; batch_wire_test's is kept.)
inline BlockKey KeyOf(uint32_t n) {
  BlockKey k;
  for (size_t i = 0; i < k.bytes.size(); ++i) k.bytes[i] = static_cast<uint8_t>((n >> (8 * (i % 4))) + i * 31);
  return k;
}
inline std::string Bytes(const BlockKey& k) { return std::string(reinterpret_cast<const char*>(k.bytes.data()), 16); }

// `size` bytes from `seed`; seeds equal mod 256 give equal blocks. The
// three tests had seed + i * 7 + (i >> 12) (a char seed), seed * 13 +
// i * 7 + (i >> 12) and seed * 29 + i * 11 + (i >> 10): each multiplies the
// seed by an odd number, so which seeds give equal blocks is the same with
// any, and no test asserts on the bytes themselves. pack_wire_test's is
// kept: its bytes repeat every 256 within a KiB rather than within 4 KiB,
// so a block's data put at an offset a KiB off differs in more blocks.
inline std::string Block(uint64_t size, uint32_t seed) {
  std::string b(size, '\0');
  for (uint64_t i = 0; i < size; ++i) b[i] = static_cast<char>(seed * 29 + i * 11 + (i >> 10));
  return b;
}

inline net::NodeClientOptions Options() {
  net::NodeClientOptions o;
  o.timeout_ms = 10000;
  o.connect_timeout_ms = 5000;
  return o;
}

inline std::unique_ptr<net::NodeClient> ConnectTo(const std::string& address) {
  auto c = net::NodeClient::Connect(address, Options());
  Require(c.ok(), "the client does not connect to " + address + ": " + c.status().ToString());
  return std::move(c).value();
}

// A message's bytes as one string.
inline std::string Flatten(const grpc::ByteBuffer& bb) {
  std::vector<grpc::Slice> slices;
  Require(bb.Dump(&slices).ok(), "a message does not dump");
  std::string s;
  for (const auto& sl : slices) s.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
  return s;
}

inline v1::StoreMessage Begin(const net::NodeNamespace& ns, const BlockKey& k, uint64_t total,
                              uint32_t batch_blocks) {
  v1::StoreMessage m;
  *m.mutable_begin()->mutable_ns() = Spec(ns);
  m.mutable_begin()->set_key(Bytes(k));
  m.mutable_begin()->set_total_bytes(total);
  m.mutable_begin()->set_batch_blocks(batch_blocks);
  return m;
}
inline v1::StoreMessage Chunk(uint64_t off, const std::string& data) {
  v1::StoreMessage m;
  m.mutable_chunk()->set_offset(off);
  m.mutable_chunk()->set_data(data);
  return m;
}
inline v1::StoreMessage Commit() {
  v1::StoreMessage m;
  m.mutable_commit();
  return m;
}

inline constexpr int32_t kInvalid = static_cast<int32_t>(Code::kInvalidArgument);

// A node started in process on a loopback port (a 96 MiB host tier; the
// raw test had 64 MiB and stores 6 MiB), a client of it, and raw streams
// that send and read what the client would not. The union of the three
// tests' nodes: the channel allows 4 MiB messages both ways and has its
// own subchannel pool.
class Node {
 public:
  Node() {
    CacheOptions o;
    o.host_capacity_bytes = 96u << 20;
    o.prefault = false;
    o.maintenance_interval_ms = 50;
    auto cache = Cache::Open(o);
    Require(cache.ok(), "the cache does not open: " + cache.status().ToString());
    cache_ = std::move(cache).value();
    service_ = std::make_unique<net::NodeService>(*cache_, false);
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    b.RegisterService(service_.get());
    b.SetMaxReceiveMessageSize(net::kMaxMessageBytes);
    b.SetMaxSendMessageSize(net::kMaxMessageBytes);
    server_ = b.BuildAndStart();
    Require(server_ != nullptr, "the node does not start");
    Require(port_ != 0, "the node has no loopback port");
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(net::kMaxMessageBytes);
    args.SetMaxSendMessageSize(net::kMaxMessageBytes);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    channel_ = grpc::CreateCustomChannel(address(), grpc::InsecureChannelCredentials(), args);
    stub_ = v1::Node::NewStub(channel_);
    store_ = std::make_unique<grpc::internal::RpcMethod>("/kvc.v1.Node/Store",
                                                         grpc::internal::RpcMethod::CLIENT_STREAMING, channel_);
    load_ = std::make_unique<grpc::internal::RpcMethod>("/kvc.v1.Node/Load",
                                                        grpc::internal::RpcMethod::SERVER_STREAMING, channel_);
    client_ = ConnectTo(address());
  }
  ~Node() {
    client_.reset();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    server_->Wait();
  }
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  v1::Node::Stub& stub() { return *stub_; }
  net::NodeClient& client() { return *client_; }

  // A raw store stream of `msgs` (stopping early if the node closes it).
  // cancel: the client cancels after its messages instead of ending the
  // stream. False when the call itself failed.
  // before_cancel: runs before the cancel (the node may not have read the
  // messages yet when the client cancels).
  bool RawStore(const std::vector<v1::StoreMessage>& msgs, v1::StoreResponse* resp, bool cancel = false,
                const std::function<void()>& before_cancel = nullptr) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    auto w = stub_->Store(&ctx, resp);
    for (const auto& m : msgs)
      if (!w->Write(m)) break;
    if (cancel) {
      if (before_cancel) before_cancel();
      ctx.TryCancel();
    } else {
      w->WritesDone();
    }
    return w->Finish().ok();
  }

  // Sends `messages` as they are (bytes no encoder would write); the
  // result's code (INT32_MIN when the call itself failed).
  int32_t RawStore(const std::vector<grpc::ByteBuffer>& messages) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::StoreResponse resp;
    std::unique_ptr<grpc::ClientWriter<grpc::ByteBuffer>> w(
        grpc::internal::ClientWriterFactory<grpc::ByteBuffer>::Create(channel_.get(), *store_, &ctx, &resp));
    for (const auto& m : messages)
      if (!w->Write(m)) break;
    w->WritesDone();
    if (!w->Finish().ok()) return INT32_MIN;
    return resp.result().code();
  }

  // A raw load through the generated stub (protobuf's parser).
  bool RawLoad(const v1::LoadRequest& q, std::vector<v1::LoadChunk>* chunks) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    auto r = stub_->Load(&ctx, q);
    v1::LoadChunk c;
    chunks->clear();
    while (r->Read(&c)) chunks->push_back(c);
    return r->Finish().ok();
  }

  // A load's messages as the bytes the node sent.
  bool RawLoad(const v1::LoadRequest& q, std::vector<std::string>* msgs) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    std::unique_ptr<grpc::ClientReader<grpc::ByteBuffer>> r(
        grpc::internal::ClientReaderFactory<grpc::ByteBuffer>::Create(channel_.get(), *load_, &ctx, q));
    grpc::ByteBuffer bb;
    msgs->clear();
    while (r->Read(&bb)) msgs->push_back(Flatten(bb));
    return r->Finish().ok();
  }

  // Wait (bounded) until the cache holds no pin (NoPins) and no
  // reservation either (NothingHeld): a handler may still be unwinding
  // after the client saw its end.
  bool NoPins() { return Quiet(false); }
  bool NothingHeld() { return Quiet(true); }

  // The block's bytes through a per-key Get (empty when it fails).
  std::string Read(const net::NodeNamespace& ns, const BlockKey& k, uint64_t size) {
    std::string buf(size, '\0');
    uint64_t got = 0;
    if (!client_->Get(ns, k, 0, buf.data(), buf.size(), &got).ok() || got != size) return {};
    return buf;
  }
  Code GetCode(const net::NodeNamespace& ns, const BlockKey& k, uint64_t size) {
    std::string buf(size, '\0');
    uint64_t got = 0;
    return client_->Get(ns, k, 0, buf.data(), buf.size(), &got).code();
  }

 private:
  bool Quiet(bool pending) {
    for (int i = 0; i < 400; ++i) {
      const auto j = cache_->StatsJson();
      if (j.value("pins", uint64_t{1}) == 0 && (!pending || j.value("pending", uint64_t{1}) == 0)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

  std::unique_ptr<Cache> cache_;
  std::unique_ptr<net::NodeService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Node::Stub> stub_;
  std::unique_ptr<grpc::internal::RpcMethod> store_, load_;
  std::unique_ptr<net::NodeClient> client_;
};

// A fake node for what a good node never sends: Load as the function given
// says, counting the calls; Store reads the client's messages, keeps them
// in `stored`, and answers OK for every block it saw. batch_wire_test's
// load functions take the call's number and return the call's status;
// pack_wire_test's take neither and the call ends OK: both construct one.
class FakeNode final : public v1::Node::Service {
 public:
  using LoadFn = std::function<grpc::Status(const v1::LoadRequest&, grpc::ServerWriter<v1::LoadChunk>*, int call)>;
  using PlainLoadFn = std::function<void(const v1::LoadRequest&, grpc::ServerWriter<v1::LoadChunk>*)>;

  FakeNode() : FakeNode(LoadFn()) {}
  explicit FakeNode(PlainLoadFn load)
      : FakeNode(LoadFn([load = std::move(load)](const v1::LoadRequest& q, grpc::ServerWriter<v1::LoadChunk>* w, int) {
          load(q, w);
          return grpc::Status::OK;
        })) {}
  explicit FakeNode(LoadFn load) : load_(std::move(load)) {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    b.RegisterService(this);
    b.SetMaxReceiveMessageSize(net::kMaxMessageBytes);
    server_ = b.BuildAndStart();
    Require(server_ != nullptr, "the fake node does not start");
  }
  ~FakeNode() override {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    server_->Wait();
  }

  grpc::Status Load(grpc::ServerContext*, const v1::LoadRequest* q, grpc::ServerWriter<v1::LoadChunk>* w) override {
    if (!load_) return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "this fake node does not load");
    return load_(*q, w, calls++);
  }
  grpc::Status Store(grpc::ServerContext*, grpc::ServerReader<v1::StoreMessage>* r, v1::StoreResponse* resp) override {
    v1::StoreMessage m;
    while (r->Read(&m)) {
      stored.push_back(m);
      if (m.has_begin()) resp->add_results();
      for (int i = 0; i < m.blocks().blocks_size(); ++i) resp->add_results();
    }
    resp->mutable_result();
    return grpc::Status::OK;
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  std::atomic<int> calls{0};
  std::vector<v1::StoreMessage> stored;

 private:
  LoadFn load_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace kvc::wire_fixture

#endif  // KVC_TESTS_NODE_RAW_WIRE_FIXTURE_H_
