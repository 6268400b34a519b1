// Small blocks of a batch packed several to a gRPC message (LoadChunk.items,
// StoreMessage.blocks; kvc.proto): an in-process node on a loopback port, a
// raw client reading the node's messages as bytes, and fake nodes for what
// a good node or client never sends.
//
// - batches of 64 KiB and 4 KiB blocks: PutBatch then GetBatch are
//   byte-exact and equal to per-key Get; the node's answer is fewer
//   messages than keys (16 blocks of 64 KiB, 256 of 4 KiB a message) and
//   each message is byte for byte protobuf's serialization of the same
//   LoadChunk; the client's PutBatch sends StoreBlocks messages of up to
//   1 MiB of data (a fake node counts them);
// - found, missing, too-small and size-only keys as items; a mixed batch
//   (small item, big chunks, small item, missing) from a fake node in
//   order; a mixed PutBatch (small, big, small) in one stream;
// - bad peers: a StoreBlocks inside an open block, a StoreBlock with short
//   data, more blocks than batch_blocks through packing, oversize claims
//   (a block past 256 KiB, a total_bytes of 1 TiB, a message past 1 MiB of
//   data), a refused packed block (EXISTS, LAYOUT) and the stream going on;
// - fake nodes sending an item twice, out of order, with data of the wrong
//   size, data on a miss, and items and chunks for one key.
#include <doctest/doctest.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "wire_fixture.h"

using namespace kvc::wire_fixture;

namespace {

// 2 x 1 layer x 16 tokens x 8 heads x 128 x fp16: 64 KiB.
NodeNamespace Ns64() { return Ns("pack-64k", 16, 8, 128); }
// 2 x 1 x 4 x 2 x 128 x 2: 4 KiB.
NodeNamespace Ns4() { return Ns("pack-4k", 4, 2, 128); }
constexpr uint64_t k64 = 64u << 10, k4 = 4u << 10, kBig = 2u << 20;

v1::LoadItem* AddItem(v1::LoadChunk* c, uint32_t index, const std::string& data, uint64_t total) {
  v1::LoadItem* it = c->add_items();
  it->set_index(index);
  it->mutable_result();
  it->set_total_bytes(total);
  it->set_data(data);
  return it;
}

v1::StoreBlock* AddStoreBlock(v1::StoreMessage* m, const NodeNamespace& ns, const BlockKey& k, uint64_t total,
                              uint32_t batch_blocks, const std::string& data) {
  v1::StoreBlock* b = m->mutable_blocks()->add_blocks();
  *b->mutable_begin() = Begin(ns, k, total, batch_blocks).begin();
  b->set_data(data);
  return b;
}

// Puts n blocks of `size` as one batch, reads them back as a batch and per
// key, and checks the node's packed answer on the wire.
void RoundTrip(const NodeNamespace& ns, uint64_t size, uint32_t n) {
  Node node;
  std::vector<std::string> blocks(n);
  std::vector<PutItem> puts(n);
  for (uint32_t i = 0; i < n; ++i) {
    blocks[i] = Block(size, i + 1);
    puts[i] = {KeyOf(i), blocks[i].data(), size, i > 0 ? std::optional<BlockKey>(KeyOf(i - 1)) : std::nullopt};
  }
  REQUIRE(node.client().PutBatch(ns, 0, puts, 0).ok());
  for (uint32_t i = 0; i < n; ++i) REQUIRE_MESSAGE(puts[i].status.ok(), i, puts[i].status.ToString());

  std::vector<std::string> bufs(n, std::string(size, '\0'));
  std::vector<GetItem> gets(n);
  for (uint32_t i = 0; i < n; ++i) gets[i] = {KeyOf(i), bufs[i].data(), size};
  REQUIRE(node.client().GetBatch(ns, 0, gets).ok());
  for (uint32_t i = 0; i < n; ++i) {
    CAPTURE(i);
    REQUIRE(gets[i].status.ok());
    CHECK(gets[i].size == size);
    CHECK(bufs[i] == blocks[i]);
    CHECK(node.Read(ns, KeyOf(i), size) == bufs[i]);
  }

  // The wire: ceil(n / per) messages of `per` items each, every one the
  // bytes protobuf gives for the same LoadChunk.
  const uint32_t per = static_cast<uint32_t>(kvc::net::kMaxChunkBytes / size);
  v1::LoadRequest q;
  *q.mutable_ns() = Spec(ns);
  for (uint32_t i = 0; i < n; ++i) q.add_keys(Bytes(KeyOf(i)));
  std::vector<std::string> raw;
  REQUIRE(node.RawLoad(q, &raw));
  CHECK(raw.size() == (n + per - 1) / per);
  CHECK(raw.size() < n);
  uint32_t k = 0;
  for (size_t m = 0; m < raw.size(); ++m) {
    CAPTURE(m);
    v1::LoadChunk want;
    for (uint32_t j = 0; j < per && k < n; ++j, ++k) AddItem(&want, k, blocks[k], size);
    CHECK(raw[m] == want.SerializeAsString());
    v1::LoadChunk parsed;
    REQUIRE(parsed.ParseFromString(raw[m]));
    CHECK(parsed.SerializeAsString() == raw[m]);
  }
  CHECK(k == n);
  CHECK(node.NothingHeld());

  // The client's side: StoreBlocks of at most 1 MiB of data, fewer
  // messages than blocks, each block whole and byte-exact.
  FakeNode fake;
  auto client = ConnectTo(fake.address());
  REQUIRE(client->PutBatch(ns, 0, puts, 7).ok());
  CHECK(fake.stored.size() == (n + per - 1) / per);
  uint32_t b = 0;
  for (const auto& m : fake.stored) {
    REQUIRE(m.has_blocks());
    uint64_t data = 0;
    for (const auto& sb : m.blocks().blocks()) {
      CAPTURE(b);
      REQUIRE(b < n);
      CHECK(sb.begin().key() == Bytes(KeyOf(b)));
      CHECK(sb.begin().total_bytes() == size);
      CHECK(sb.begin().batch_blocks() == n);
      CHECK(sb.begin().ttl_ms() == 7);
      CHECK(sb.begin().parent() == (b > 0 ? Bytes(KeyOf(b - 1)) : std::string()));
      CHECK(sb.data() == blocks[b]);
      data += sb.data().size();
      ++b;
    }
    CHECK(data <= kvc::net::kMaxChunkBytes);
  }
  CHECK(b == n);
}

}  // namespace

TEST_CASE("a batch of 64 KiB blocks goes packed, 16 a message, byte-exact") { RoundTrip(Ns64(), k64, 40); }

TEST_CASE("a batch of 4 KiB blocks goes packed, 256 a message, byte-exact") { RoundTrip(Ns4(), k4, 300); }

TEST_CASE("packed loads: found, missing, too-small and size-only keys as items") {
  Node node;
  const NodeNamespace ns = Ns64();
  const std::string a = Block(k64, 1), c = Block(k64, 3);
  REQUIRE(node.client().Put(ns, KeyOf(1), 0, a.data(), k64, 0, nullptr).ok());
  REQUIRE(node.client().Put(ns, KeyOf(3), 0, c.data(), k64, 0, nullptr).ok());
  std::vector<std::string> bufs = {std::string(k64, 'x'), std::string(k64, 'x'), std::string(100, 'x'),
                                   std::string(k64, 'x')};
  std::vector<GetItem> items(5);
  items[0] = {KeyOf(1), bufs[0].data(), k64};
  items[1] = {KeyOf(2), bufs[1].data(), k64};  // missing
  items[2] = {KeyOf(3), bufs[2].data(), 100};  // too small
  items[3] = {KeyOf(3), nullptr, 0};           // the size only
  items[4] = {KeyOf(1), bufs[3].data(), k64};
  REQUIRE(node.client().GetBatch(ns, 0, items).ok());
  CHECK(items[0].status.ok());
  CHECK(bufs[0] == a);
  CHECK(items[1].status.code() == Code::kNotFound);
  CHECK(bufs[1] == std::string(k64, 'x'));
  CHECK(items[2].status.code() == Code::kLayout);
  CHECK(items[2].size == k64);
  CHECK(bufs[2] == std::string(100, 'x'));
  CHECK(items[3].status.ok());
  CHECK(items[3].size == k64);
  CHECK(items[4].status.ok());
  CHECK(bufs[3] == a);

  // On the wire: one message, the miss an item with its result.
  v1::LoadRequest q;
  *q.mutable_ns() = Spec(ns);
  for (uint32_t k : {1u, 2u, 3u}) q.add_keys(Bytes(KeyOf(k)));
  std::vector<std::string> raw;
  REQUIRE(node.RawLoad(q, &raw));
  REQUIRE(raw.size() == 1);
  v1::LoadChunk got;
  REQUIRE(got.ParseFromString(raw[0]));
  REQUIRE(got.items_size() == 3);
  CHECK(!got.has_result());
  CHECK(got.items(1).index() == 1);
  CHECK(got.items(1).result().code() == static_cast<int32_t>(Code::kNotFound));
  CHECK(got.items(1).data().empty());
  CHECK(got.items(2).data() == c);
  CHECK(got.SerializeAsString() == raw[0]);
  CHECK(node.NothingHeld());
}

TEST_CASE("a mixed batch (small, big, small, missing) in order") {
  const NodeNamespace ns = Ns64();
  const std::string s0 = Block(k64, 10), big = Block(kBig, 11), s2 = Block(k64, 12);
  FakeNode fake([&](const v1::LoadRequest& q, grpc::ServerWriter<v1::LoadChunk>* w) {
    REQUIRE(q.keys_size() == 4);
    v1::LoadChunk m1;
    AddItem(&m1, 0, s0, k64);
    w->Write(m1);
    v1::LoadChunk m2;  // key 1's first chunk
    m2.mutable_result();
    m2.set_total_bytes(kBig);
    m2.set_data(big.substr(0, kBig / 2));
    m2.set_index(1);
    w->Write(m2);
    v1::LoadChunk m3;  // its last chunk, then keys 2 and 3 as items of the same message
    m3.set_offset(kBig / 2);
    m3.set_data(big.substr(kBig / 2));
    m3.set_index(1);
    AddItem(&m3, 2, s2, k64);
    v1::LoadItem* miss = m3.add_items();
    miss->set_index(3);
    miss->mutable_result()->set_code(static_cast<int32_t>(Code::kNotFound));
    w->Write(m3);
  });
  auto client = ConnectTo(fake.address());
  std::vector<std::string> bufs = {std::string(k64, 0), std::string(kBig, 0), std::string(k64, 0),
                                   std::string(k64, 0)};
  std::vector<GetItem> items(4);
  items[0] = {KeyOf(0), bufs[0].data(), k64};
  items[1] = {KeyOf(1), bufs[1].data(), kBig};
  items[2] = {KeyOf(2), bufs[2].data(), k64};
  items[3] = {KeyOf(3), bufs[3].data(), k64};
  REQUIRE(client->GetBatch(ns, 0, items).ok());
  CHECK(items[0].status.ok());
  CHECK(bufs[0] == s0);
  CHECK(items[1].status.ok());
  CHECK(items[1].size == kBig);
  CHECK(bufs[1] == big);
  CHECK(items[2].status.ok());
  CHECK(bufs[2] == s2);
  CHECK(items[3].status.code() == Code::kNotFound);

  // A mixed put: small blocks packed, the big one as begin, chunks,
  // commit, all in one stream, in order.
  std::vector<PutItem> puts(4);
  puts[0] = {KeyOf(0), s0.data(), k64, std::nullopt};
  puts[1] = {KeyOf(1), big.data(), kBig, std::nullopt};
  puts[2] = {KeyOf(2), s2.data(), k64, std::nullopt};
  puts[3] = {KeyOf(3), s0.data(), k64, std::nullopt};
  REQUIRE(client->PutBatch(ns, 0, puts, 0).ok());
  const auto& st = fake.stored;
  REQUIRE(st.size() == 6);  // blocks{0}, begin 1, chunk, chunk, commit, blocks{2, 3}
  CHECK((st[0].has_blocks() && st[0].blocks().blocks_size() == 1 && st[0].blocks().blocks(0).data() == s0));
  CHECK((st[1].has_begin() && st[1].begin().key() == Bytes(KeyOf(1)) && st[1].begin().total_bytes() == kBig));
  CHECK((st[2].has_chunk() && st[3].has_chunk() && st[2].chunk().data() + st[3].chunk().data() == big));
  CHECK(st[4].has_commit());
  REQUIRE((st[5].has_blocks() && st[5].blocks().blocks_size() == 2));
  CHECK(st[5].blocks().blocks(0).data() == s2);
  CHECK(st[5].blocks().blocks(1).begin().key() == Bytes(KeyOf(3)));
  for (const auto& p : puts) CHECK(p.status.ok());

  // The same against a real node: the big block is the wrong size there
  // (LAYOUT) and the stream goes on; the small ones are stored.
  Node node;
  REQUIRE(node.client().PutBatch(ns, 0, puts, 0).ok());
  CHECK(puts[0].status.ok());
  CHECK(puts[1].status.code() == Code::kLayout);
  CHECK(puts[2].status.ok());
  CHECK(puts[3].status.ok());
  CHECK(node.Read(ns, KeyOf(2), k64) == s2);
  CHECK(node.Read(ns, KeyOf(3), k64) == s0);
  CHECK(node.GetCode(ns, KeyOf(1), k64) == Code::kNotFound);
  CHECK(node.NothingHeld());
}

TEST_CASE("bad peers: packed store blocks the node refuses") {
  Node node;
  const NodeNamespace ns = Ns4();
  v1::StoreResponse resp;
  const std::string existing = Block(k4, 900);
  REQUIRE(node.client().Put(ns, KeyOf(900), 0, existing.data(), k4, 0, nullptr).ok());

  SUBCASE("a blocks message inside an open block ends the stream") {
    std::vector<v1::StoreMessage> msgs{Begin(ns, KeyOf(1), k4, 3), Chunk(0, Block(k4 / 2, 1))};
    v1::StoreMessage m;
    AddStoreBlock(&m, ns, KeyOf(2), k4, 3, Block(k4, 2));
    msgs.push_back(m);
    msgs.push_back(Chunk(k4 / 2, Block(k4 / 2, 1)));
    msgs.push_back(Commit());
    REQUIRE(node.RawStore(msgs, &resp));
    CHECK(resp.result().code() == kInvalid);
    CHECK(resp.result().message().find("inside a block") != std::string::npos);
    REQUIRE(resp.results_size() == 1);
    CHECK(resp.results(0).code() == kInvalid);
    CHECK(node.GetCode(ns, KeyOf(1), k4) == Code::kNotFound);
    CHECK(node.GetCode(ns, KeyOf(2), k4) == Code::kNotFound);
  }
  SUBCASE("a StoreBlock with short data ends the stream; blocks before it stay") {
    v1::StoreMessage m;
    AddStoreBlock(&m, ns, KeyOf(3), k4, 3, Block(k4, 3));
    AddStoreBlock(&m, ns, KeyOf(4), k4, 3, Block(k4 - 1, 4));
    AddStoreBlock(&m, ns, KeyOf(5), k4, 3, Block(k4, 5));
    REQUIRE(node.RawStore({m}, &resp));
    CHECK(resp.result().code() == kInvalid);
    REQUIRE(resp.results_size() == 2);
    CHECK(resp.results(0).code() == 0);
    CHECK(resp.results(1).code() == kInvalid);
    CHECK(node.Read(ns, KeyOf(3), k4) == Block(k4, 3));
    CHECK(node.GetCode(ns, KeyOf(4), k4) == Code::kNotFound);
    CHECK(node.GetCode(ns, KeyOf(5), k4) == Code::kNotFound);
  }
  SUBCASE("more blocks than batch_blocks through packing") {
    v1::StoreMessage m1, m2;
    AddStoreBlock(&m1, ns, KeyOf(6), k4, 3, Block(k4, 6));
    AddStoreBlock(&m1, ns, KeyOf(7), k4, 3, Block(k4, 7));
    AddStoreBlock(&m2, ns, KeyOf(8), k4, 3, Block(k4, 8));
    AddStoreBlock(&m2, ns, KeyOf(9), k4, 3, Block(k4, 9));
    REQUIRE(node.RawStore({m1, m2}, &resp));
    CHECK(resp.result().code() == kInvalid);
    REQUIRE(resp.results_size() == 4);
    CHECK(resp.results(2).code() == 0);
    CHECK(resp.results(3).code() == kInvalid);
    CHECK(node.Read(ns, KeyOf(8), k4) == Block(k4, 8));
    CHECK(node.GetCode(ns, KeyOf(9), k4) == Code::kNotFound);
  }
  SUBCASE("oversize claims") {
    // total_bytes of 1 TiB with 4 KiB of data: its size is wrong for the
    // namespace and its data is not what it claims: the stream fails.
    v1::StoreMessage m;
    AddStoreBlock(&m, ns, KeyOf(10), k4, 2, Block(k4, 10));
    AddStoreBlock(&m, ns, KeyOf(11), 1ull << 40, 2, Block(k4, 11));
    REQUIRE(node.RawStore({m}, &resp));
    CHECK(resp.result().code() == kInvalid);
    REQUIRE(resp.results_size() == 2);
    CHECK(resp.results(0).code() == 0);
    CHECK(resp.results(1).code() == kInvalid);
    CHECK(node.GetCode(ns, KeyOf(11), k4) == Code::kNotFound);
    // A packed block past 256 KiB.
    const uint64_t over = kvc::net::kMaxPackedBlockBytes + 1;
    v1::StoreMessage m2;
    AddStoreBlock(&m2, ns, KeyOf(12), over, 2, Block(over, 12));
    REQUIRE(node.RawStore({m2}, &resp));
    CHECK(resp.result().code() == kInvalid);
    CHECK(resp.result().message().find("at most") != std::string::npos);
    // More than 1 MiB of data in one message (5 x 256 KiB, each allowed).
    v1::StoreMessage m3;
    for (uint32_t i = 0; i < 5; ++i)
      AddStoreBlock(&m3, ns, KeyOf(20 + i), kvc::net::kMaxPackedBlockBytes, 5,
                    Block(kvc::net::kMaxPackedBlockBytes, i));
    REQUIRE(node.RawStore({m3}, &resp));
    CHECK(resp.result().code() == kInvalid);
    CHECK(resp.results_size() == 0);
    // An empty blocks message.
    v1::StoreMessage m4;
    m4.mutable_blocks();
    REQUIRE(node.RawStore({m4}, &resp));
    CHECK(resp.result().code() == kInvalid);
  }
  SUBCASE("refused packed blocks (EXISTS, LAYOUT) and the stream goes on") {
    v1::StoreMessage m;
    AddStoreBlock(&m, ns, KeyOf(900), k4, 4, Block(k4, 1));           // EXISTS
    AddStoreBlock(&m, ns, KeyOf(30), k4 - 8, 4, Block(k4 - 8, 30));   // LAYOUT
    AddStoreBlock(&m, ns, KeyOf(31), k4, 4, Block(k4, 31));
    std::vector<v1::StoreMessage> msgs{m, Begin(ns, KeyOf(32), k4, 4), Chunk(0, Block(k4, 32)), Commit()};
    REQUIRE(node.RawStore(msgs, &resp));
    CHECK(resp.result().code() == 0);
    REQUIRE(resp.results_size() == 4);
    CHECK(resp.results(0).code() == static_cast<int32_t>(Code::kExists));
    CHECK(resp.results(1).code() == static_cast<int32_t>(Code::kLayout));
    CHECK(resp.results(2).code() == 0);
    CHECK(resp.results(3).code() == 0);
    CHECK(node.GetCode(ns, KeyOf(30), k4) == Code::kNotFound);
    CHECK(node.Read(ns, KeyOf(31), k4) == Block(k4, 31));
    CHECK(node.Read(ns, KeyOf(32), k4) == Block(k4, 32));
    // A chunk right after a blocks message is outside any block.
    v1::StoreMessage m2;
    AddStoreBlock(&m2, ns, KeyOf(33), k4, 2, Block(k4, 33));
    REQUIRE(node.RawStore({m2, Chunk(0, Block(16, 0))}, &resp));
    CHECK(resp.result().code() == kInvalid);
    CHECK(node.Read(ns, KeyOf(33), k4) == Block(k4, 33));
  }
  CHECK(node.Read(ns, KeyOf(900), k4) == existing);
  CHECK(node.NothingHeld());
}

TEST_CASE("the client checks a batch load's items") {
  const NodeNamespace ns = Ns4();
  const std::string a = Block(64, 1);
  struct Case {
    const char* what;
    std::function<void(grpc::ServerWriter<v1::LoadChunk>*)> send;
    Code want;  // items[1] and items[2]
  };
  auto one = [](std::function<void(v1::LoadChunk*)> f) {
    v1::LoadChunk c;
    f(&c);
    return c;
  };
  const std::vector<Case> cases = {
      {"an item twice", [&](auto* w) { w->Write(one([&](auto* c) { AddItem(c, 0, a, 64); AddItem(c, 0, a, 64); })); },
       Code::kInternal},
      {"an item twice, in two messages",
       [&](auto* w) {
         w->Write(one([&](auto* c) { AddItem(c, 0, a, 64); }));
         w->Write(one([&](auto* c) { AddItem(c, 0, a, 64); }));
       },
       Code::kInternal},
      {"items out of order",
       [&](auto* w) { w->Write(one([&](auto* c) { AddItem(c, 0, a, 64); AddItem(c, 2, a, 64); })); },
       Code::kInternal},
      {"an item with less data than its total_bytes",
       [&](auto* w) { w->Write(one([&](auto* c) { AddItem(c, 0, a, 64); AddItem(c, 1, a.substr(0, 32), 64); })); },
       Code::kInternal},
      {"an item with more data than its total_bytes",
       [&](auto* w) { w->Write(one([&](auto* c) { AddItem(c, 0, a, 64); AddItem(c, 1, a + a, 64); })); },
       Code::kInternal},
      {"an item claiming 1 TiB",
       [&](auto* w) { w->Write(one([&](auto* c) { AddItem(c, 0, a, 64); AddItem(c, 1, a, 1ull << 40); })); },
       Code::kInternal},
      {"a miss with data",
       [&](auto* w) {
         w->Write(one([&](auto* c) {
           AddItem(c, 0, a, 64);
           AddItem(c, 1, a, 0)->mutable_result()->set_code(static_cast<int32_t>(Code::kNotFound));
         }));
       },
       Code::kInternal},
      {"an item without a result",
       [&](auto* w) {
         w->Write(one([&](auto* c) {
           AddItem(c, 0, a, 64);
           AddItem(c, 1, a, 64)->clear_result();
         }));
       },
       Code::kInternal},
      {"an item of the key whose chunks are in flight",
       [&](auto* w) {
         w->Write(one([&](auto* c) { AddItem(c, 0, a, 64); }));
         w->Write(one([&](auto* c) {
           c->mutable_result();
           c->set_total_bytes(64);
           c->set_data(a.substr(0, 32));
           c->set_index(1);
         }));
         w->Write(one([&](auto* c) { AddItem(c, 1, a, 64); }));
       },
       Code::kInternal},
      {"a chunk of a key answered by an item",
       [&](auto* w) {
         w->Write(one([&](auto* c) { AddItem(c, 0, a, 64); AddItem(c, 1, a, 64); }));
         w->Write(one([&](auto* c) {
           c->mutable_result();
           c->set_total_bytes(64);
           c->set_data(a);
           c->set_index(1);
         }));
       },
       Code::kInternal},
      {"too few items", [&](auto* w) { w->Write(one([&](auto* c) { AddItem(c, 0, a, 64); })); }, Code::kInternal},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    FakeNode fake([&](const v1::LoadRequest& q, grpc::ServerWriter<v1::LoadChunk>* w) {
      CHECK(q.keys_size() == 3);
      c.send(w);
    });
    auto client = ConnectTo(fake.address());
    std::vector<std::string> bufs(3, std::string(64, '\0'));
    std::vector<GetItem> items(3);
    for (uint32_t i = 0; i < 3; ++i) items[i] = {KeyOf(i), bufs[i].data(), 64};
    const kvc::Status st = client->GetBatch(ns, 0, items);
    CHECK(st.code() == c.want);
    CHECK(items[0].status.ok());
    CHECK(bufs[0] == a);
    // "a chunk of a key answered by an item": key 1 was answered (OK)
    // before the stray chunk; the keys after it get the failure.
    if (std::string(c.what) != "a chunk of a key answered by an item") CHECK(items[1].status.code() == c.want);
    CHECK(items[2].status.code() == c.want);
  }
}
