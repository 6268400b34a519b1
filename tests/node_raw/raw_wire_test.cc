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
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "net/wire.h"
#include "wire_fixture.h"

using namespace kvc::wire_fixture;

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
kvc::net::NodeNamespace RawNs() { return Ns("raw-wire", 512, 8, 128); }

// The key of 16 bytes `c`.
kvc::BlockKey Key(char c) {
  kvc::BlockKey k;
  for (auto& b : k.bytes) b = static_cast<uint8_t>(c);
  return k;
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

// The begin of block `key` as protobuf writes it (batch_blocks 0: absent).
std::string Begin(char key) { return kvc::wire_fixture::Begin(RawNs(), Key(key), kBlock, 0).SerializeAsString(); }
const std::string kCommit = Len(3, "");

// Loads `key` through the generated stub: the chunks as protobuf parses
// them. Returns the first chunk's result code (INT32_MIN when the call
// failed or sent nothing); *bytes gets the data.
int32_t Load(Node& node, char key, std::string* bytes, std::vector<v1::LoadChunk>* chunks = nullptr) {
  v1::LoadRequest q;
  *q.mutable_ns() = Spec(RawNs());
  q.set_key(Bytes(Key(key)));
  std::vector<v1::LoadChunk> got;
  const bool ok = node.RawLoad(q, &got);
  bytes->clear();
  for (const auto& c : got) bytes->append(c.data());
  if (chunks) chunks->insert(chunks->end(), got.begin(), got.end());
  if (!ok || got.empty()) return INT32_MIN;
  return got[0].result().code();
}

constexpr int32_t kOk = 0;
constexpr int32_t kNotFound = static_cast<int32_t>(kvc::Code::kNotFound);

}  // namespace

int Run() {
  Node node;
  const std::string block = Block(kBlock, 'a');
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
    CHECK(Load(node, 'a', &got, &chunks) == kOk, "the stored block loads");
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
      CHECK(Load(node, 'b', &got) == kNotFound, "nothing is stored after a malformed message");
    }
    // A malformed first message, and a stream that starts with a chunk.
    CHECK(node.RawStore({Split(std::string("\x0a\x80", 2))}) == kInvalid, "a malformed begin");
    CHECK(node.RawStore({Split(good_chunk), Split(kCommit)}) == kInvalid, "a stream that starts with a chunk");
    CHECK(node.NoPins(), "no pin is left");
  }

  // The client: Put (hand-encoded chunks), Get (hand-parsed chunks).
  {
    auto c = kvc::net::NodeClient::Connect(node.address(), Options());
    CHECK(c.ok(), "the client connects");
    if (c.ok()) {
      const kvc::net::NodeNamespace ns = RawNs();
      kvc::BlockKey k = Key('c');
      const std::string cb = Block(kBlock, 'c');
      CHECK((*c)->Put(ns, k, 0, cb.data(), cb.size(), 0, nullptr).ok(), "a put through the client is stored");
      std::string got;
      CHECK(Load(node, 'c', &got) == kOk && got == cb, "protobuf reads the client's put byte-exact");
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
    *q.mutable_ns() = Spec(RawNs());
    q.set_key(Bytes(Key('a')));
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

int main() {
  try {
    return Run();
  } catch (const std::exception& e) {  // the fixture's setup failures
    std::fprintf(stderr, "FAIL: %s\n", e.what());
    return 1;
  }
}
