// The node's hand-encoded and hand-parsed block messages (libkvc/net/wire.h,
// NodeService::LoadRaw and StoreRaw, the client's Get and Put): an
// in-process node on a loopback port, checked against protobuf's own
// encoding and parsing of kvc.v1.LoadChunk and kvc.v1.StoreMessage.
//
// - raw store messages with fields out of order, unknown fields and every
//   message split into 1-7 byte slices are stored byte-exact;
// - malformed store messages (truncated varints, lengths past the end,
//   groups, field 0, a chunk past the block) are INVALID_ARGUMENT and leave
//   nothing stored;
// - a 2 MiB block loads through the generated stub (protobuf's parser) as two
//   chunks, total_bytes on the first only, and through NodeClient::Get;
//   a too small buffer is LAYOUT;
// - no pin outlives its load, a load cancelled after its first chunk too.
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/rpc_method.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/cache.h"
#include "kvc/v1/kvc.grpc.pb.h"
#include "net/node_client.h"
#include "net/node_service.h"
#include "net/wire.h"

namespace v1 = kvc::v1;

namespace {

int failures = 0;
#define CHECK(cond, what)                                              \
  do {                                                                 \
    if (!(cond)) {                                                     \
      std::fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, what); \
      ++failures;                                                      \
    }                                                                  \
  } while (0)

// 2 x 1 layer x 512 tokens x 8 heads x 128 x fp16: 2 MiB, two load chunks.
constexpr uint64_t kBlock = 2ull * 1 * 512 * 8 * 128 * 2;

void Spec(v1::NamespaceSpec* s) {
  s->set_model("raw-wire");
  s->set_revision("r1");
  s->set_dtype("fp16");
  s->set_layers(1);
  s->set_kv_heads(8);
  s->set_head_dim(128);
  s->set_block_tokens(512);
}

std::string Key(char c) { return std::string(16, c); }

std::string Block(char seed) {
  std::string b(kBlock, '\0');
  for (uint64_t i = 0; i < kBlock; ++i) b[i] = static_cast<char>(seed + i * 7 + (i >> 12));
  return b;
}

// `bytes` as a ByteBuffer of slices of 1-7 bytes.
grpc::ByteBuffer Split(const std::string& bytes) {
  std::vector<grpc::Slice> s;
  for (size_t off = 0, n = 1; off < bytes.size(); off += n, n = n % 7 + 1)
    s.emplace_back(bytes.data() + off, std::min(n, bytes.size() - off));
  return grpc::ByteBuffer(s.data(), s.size());
}

std::string Varint(uint64_t v) {
  std::string s;
  kvc::net::PutVarint(&s, v);
  return s;
}
std::string Len(int field, const std::string& body) {
  return std::string(1, static_cast<char>((field << 3) | 2)) + Varint(body.size()) + body;
}

std::string Begin(char key) {
  v1::StoreMessage m;
  Spec(m.mutable_begin()->mutable_ns());
  m.mutable_begin()->set_key(Key(key));
  m.mutable_begin()->set_total_bytes(kBlock);
  return m.SerializeAsString();
}
const std::string kCommit = Len(3, "");

class Node {
 public:
  Node() {
    kvc::CacheOptions o;
    o.host_capacity_bytes = 64u << 20;
    o.prefault = false;
    o.maintenance_interval_ms = 50;
    auto cache = kvc::Cache::Open(o);
    if (!cache.ok()) {
      std::fprintf(stderr, "FAIL: the cache does not open\n");
      std::exit(1);
    }
    cache_ = std::move(cache).value();
    service_ = std::make_unique<kvc::net::NodeService>(*cache_, false);
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    b.RegisterService(service_.get());
    b.SetMaxReceiveMessageSize(kvc::net::kMaxMessageBytes);
    b.SetMaxSendMessageSize(kvc::net::kMaxMessageBytes);
    server_ = b.BuildAndStart();
    if (server_ == nullptr || port_ == 0) {
      std::fprintf(stderr, "FAIL: the node does not start on a loopback port\n");
      std::exit(1);
    }
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(kvc::net::kMaxMessageBytes);
    channel_ = grpc::CreateCustomChannel(address(), grpc::InsecureChannelCredentials(), args);
    stub_ = v1::Node::NewStub(channel_);
    store_ = std::make_unique<grpc::internal::RpcMethod>("/kvc.v1.Node/Store",
                                                         grpc::internal::RpcMethod::CLIENT_STREAMING, channel_);
  }
  ~Node() {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    server_->Wait();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  v1::Node::Stub& stub() { return *stub_; }

  // Sends `messages` as raw store messages; the result's code (INT32_MIN
  // when the call itself failed).
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

  // Loads `key` through the generated stub: the chunks as protobuf parses
  // them. Returns the result code; *bytes gets the data.
  int32_t Load(char key, std::string* bytes, std::vector<v1::LoadChunk>* chunks = nullptr) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::LoadRequest q;
    Spec(q.mutable_ns());
    q.set_key(Key(key));
    auto r = stub_->Load(&ctx, q);
    v1::LoadChunk c;
    int32_t code = INT32_MIN;
    bytes->clear();
    bool first = true;
    while (r->Read(&c)) {
      if (first) code = c.result().code();
      first = false;
      bytes->append(c.data());
      if (chunks) chunks->push_back(c);
    }
    if (!r->Finish().ok()) return INT32_MIN;
    return code;
  }

  // Waits (bounded) until the cache holds no pin.
  bool NoPins() {
    for (int i = 0; i < 400; ++i) {
      if (cache_->StatsJson().value("pins", uint64_t{1}) == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

 private:
  std::unique_ptr<kvc::Cache> cache_;
  std::unique_ptr<kvc::net::NodeService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Node::Stub> stub_;
  std::unique_ptr<grpc::internal::RpcMethod> store_;
};

constexpr int32_t kOk = 0;
constexpr int32_t kInvalid = static_cast<int32_t>(kvc::Code::kInvalidArgument);
constexpr int32_t kNotFound = static_cast<int32_t>(kvc::Code::kNotFound);

}  // namespace

int main() {
  Node node;
  const std::string block = Block('a');
  const uint64_t half = kBlock / 2, third = kBlock / 3;

  // Fields out of order and unknown fields, each message in small slices.
  {
    const std::string unknown = std::string(1, static_cast<char>((7 << 3) | 0)) + Varint(300) +
                                Len(9, "xyz") + std::string(1, static_cast<char>((10 << 3) | 5)) + "abcd" +
                                std::string(1, static_cast<char>((11 << 3) | 1)) + "01234567";
    // chunk 1: data before an explicit offset 0, unknown fields inside
    const std::string c1 = Len(2, Len(2, block.substr(0, third)) + unknown + std::string(1, 0x08) + Varint(0));
    // chunk 2: an unknown field before it, the offset after the data
    const std::string c2 =
        unknown + Len(2, Len(2, block.substr(third, half - third)) + std::string(1, 0x08) + Varint(third));
    // chunk 3: as protobuf writes it
    v1::StoreMessage m3;
    m3.mutable_chunk()->set_offset(half);
    m3.mutable_chunk()->set_data(block.substr(half));
    std::vector<grpc::ByteBuffer> msgs{Split(Begin('a')), Split(c1), Split(c2), Split(m3.SerializeAsString()),
                                       Split(kCommit)};
    CHECK(node.RawStore(msgs) == kOk, "a raw store with reordered and unknown fields is stored");
    std::string got;
    std::vector<v1::LoadChunk> chunks;
    CHECK(node.Load('a', &got, &chunks) == kOk, "the stored block loads");
    CHECK(got == block, "the loaded bytes are the stored bytes");
    CHECK(chunks.size() == 2, "a 2 MiB block loads as two chunks");
    if (chunks.size() == 2) {
      CHECK(chunks[0].has_result() && chunks[0].total_bytes() == kBlock && chunks[0].offset() == 0,
            "the first chunk carries the result and the total");
      CHECK(!chunks[1].has_result() && chunks[1].total_bytes() == 0 && chunks[1].offset() == kvc::net::kMaxChunkBytes,
            "the second chunk carries its offset only");
      // The node's bytes are protobuf's bytes.
      v1::LoadChunk want;
      want.mutable_result();
      want.set_total_bytes(kBlock);
      want.set_data(block.substr(0, kvc::net::kMaxChunkBytes));
      CHECK(chunks[0].SerializeAsString() == want.SerializeAsString(), "the first chunk re-encodes identically");
    }
    CHECK(node.NoPins(), "no pin outlives a load");
  }

  // Malformed messages: INVALID_ARGUMENT, nothing stored.
  {
    const std::string good_chunk = Len(2, Len(2, block.substr(0, 16)));
    const std::vector<std::pair<const char*, std::string>> bad = {
        {"a truncated varint", std::string("\x12\x80", 2)},
        {"a length past the end", std::string("\x12\x05\x08\x00", 4)},
        {"a group", std::string("\x13\x00", 2)},
        {"field 0", std::string("\x02\x00", 2)},
        {"wire type 7", std::string("\x17\x00", 2)},
        {"an inner length past the chunk", std::string("\x12\x03\x12\x7f\x00", 5)},
        {"a truncated inner varint", std::string("\x12\x02\x08\xff", 4)},
        {"a message with no member", std::string("\x28\x01", 2)},
        {"a second begin", Begin('b')},
        {"a chunk at a wrong offset", Len(2, std::string(1, 0x08) + Varint(5) + Len(2, "abc"))},
        {"a chunk past the block",
         Len(2, std::string(1, 0x08) + Varint(16) + Len(2, std::string(kvc::net::kMaxChunkBytes + 1, 'x')))},
    };
    for (const auto& [what, bytes] : bad) {
      std::vector<grpc::ByteBuffer> msgs{Split(Begin('b')), Split(good_chunk), Split(bytes), Split(kCommit)};
      const int32_t code = node.RawStore(msgs);
      if (code != kInvalid) std::fprintf(stderr, "  %s: code %d\n", what, code);
      CHECK(code == kInvalid, what);
      std::string got;
      CHECK(node.Load('b', &got) == kNotFound, "nothing is stored after a malformed message");
    }
    // A malformed first message, and a stream that starts with a chunk.
    CHECK(node.RawStore({Split(std::string("\x0a\x80", 2))}) == kInvalid, "a malformed begin");
    CHECK(node.RawStore({Split(good_chunk), Split(kCommit)}) == kInvalid, "a stream that starts with a chunk");
    CHECK(node.NoPins(), "no pin is left");
  }

  // The client: Put (hand-encoded chunks), Get (hand-parsed chunks).
  {
    kvc::net::NodeClientOptions o;
    o.timeout_ms = 5000;
    o.connect_timeout_ms = 5000;
    auto c = kvc::net::NodeClient::Connect(node.address(), o);
    CHECK(c.ok(), "the client connects");
    if (c.ok()) {
      kvc::net::NodeNamespace ns;
      ns.model = "raw-wire";
      ns.revision = "r1";
      ns.dtype = "fp16";
      ns.layers = 1;
      ns.kv_heads = 8;
      ns.head_dim = 128;
      ns.block_tokens = 512;
      kvc::BlockKey k;
      for (auto& b : k.bytes) b = 'c';
      const std::string cb = Block('c');
      CHECK((*c)->Put(ns, k, 0, cb.data(), cb.size(), 0, nullptr).ok(), "a put through the client is stored");
      std::string got;
      CHECK(node.Load('c', &got) == kOk && got == cb, "protobuf reads the client's put byte-exact");
      std::string buf(kBlock, '\0');
      uint64_t size = 0;
      CHECK((*c)->Get(ns, k, 0, buf.data(), buf.size(), &size).ok() && size == kBlock && buf == cb,
            "a get through the client is byte-exact");
      for (auto& b : k.bytes) b = 'a';
      CHECK((*c)->Get(ns, k, 0, buf.data(), buf.size(), &size).ok() && buf == block,
            "the raw-stored block reads back through the client");
      const kvc::Status small = (*c)->Get(ns, k, 0, buf.data(), 4096, &size);
      CHECK(small.code() == kvc::Code::kLayout, "a get into a too small buffer is LAYOUT");
      for (auto& b : k.bytes) b = 'z';
      CHECK((*c)->Get(ns, k, 0, buf.data(), buf.size(), &size).code() == kvc::Code::kNotFound,
            "a missing block is NOT_FOUND");
    }
    CHECK(node.NoPins(), "no pin outlives a client's get");
  }

  // A load cancelled after its first chunk releases its pin.
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::LoadRequest q;
    Spec(q.mutable_ns());
    q.set_key(Key('a'));
    auto r = node.stub().Load(&ctx, q);
    v1::LoadChunk c;
    CHECK(r->Read(&c) && c.result().code() == kOk, "the first chunk arrives");
    ctx.TryCancel();
    (void)r->Finish();
    CHECK(node.NoPins(), "a cancelled load releases its pin");
  }

  if (failures) {
    std::fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  std::printf("raw wire: all checks passed\n");
  return 0;
}
