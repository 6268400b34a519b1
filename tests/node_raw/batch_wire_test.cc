// Batches over gRPC (LoadRequest.keys, LoadChunk.index, StoreBegin.
// batch_blocks, StoreResponse.results; NodeClient::GetBatch / PutBatch of
// the gRPC client): an in-process node on a loopback port, a raw client for
// what the kvc client never sends, and fake nodes for what a good node
// never sends.
//
// - a batch get of present, missing, too small and size-only items answers
//   each item as a per-key Get does, byte for byte, and holds no pin after;
// - a batch put of N blocks stores each one (per-key gets read them back),
//   one existing block is EXISTS and leaves its bytes, a block of the wrong
//   size is LAYOUT, the others stored;
// - bad peers: a batch store stream cut mid-block (the blocks committed
//   before are visible, the cut one is not, no reservation is left, a later
//   put of its key succeeds), a chunk outside a block, a begin inside one,
//   more blocks than batch_blocks, batch_blocks > 1024, batch_blocks
//   changing; a load of > 1024 keys, of key and keys both, of a bad key;
// - the client against a node that sends a wrong index, a wrong offset, an
//   extra key, too few keys or a cut block: the item in flight and the
//   ones after it get the failure, the ones before keep theirs; a batch get
//   is retried after UNAVAILABLE only while no key was answered.
#include <doctest/doctest.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "wire_fixture.h"

using namespace kvc::wire_fixture;

namespace {

// 2 x 1 layer x 512 tokens x 8 heads x 128 x fp16: 2 MiB, two load chunks.
NodeNamespace BigNs() { return Ns("batch-wire", 512, 8, 128); }
constexpr uint64_t kBig = 2ull * 1 * 512 * 8 * 128 * 2;

// 2 x 1 layer x 4 tokens x 2 heads x 64 x fp16: 2 KiB.
NodeNamespace SmallNs() { return Ns("batch-small", 4, 2, 64); }
constexpr uint64_t kSmall = 2ull * 1 * 4 * 2 * 64 * 2;

// A whole small block: begin, one chunk, commit.
void AddBlock(std::vector<v1::StoreMessage>* msgs, const BlockKey& k, uint32_t seed, uint32_t batch_blocks) {
  msgs->push_back(Begin(SmallNs(), k, kSmall, batch_blocks));
  msgs->push_back(Chunk(0, Block(kSmall, seed)));
  msgs->push_back(Commit());
}

}  // namespace

TEST_CASE("a batch get answers each item as a per-key get does, byte for byte") {
  Node node;
  const NodeNamespace ns = BigNs();
  for (uint32_t i = 0; i < 4; ++i) {
    const std::string b = Block(kBig, i);
    REQUIRE(node.client().Put(ns, KeyOf(i), 0, b.data(), b.size(), 0, nullptr).ok());
  }
  // present, missing, too small, size only, present, present again
  const std::vector<std::pair<uint32_t, uint64_t>> asks = {{0, kBig}, {99, kBig}, {1, 4096},
                                                           {2, 0},    {3, kBig}, {0, kBig + 7}};
  std::vector<std::string> batch_bufs(asks.size()), key_bufs(asks.size());
  std::vector<GetItem> items(asks.size());
  for (size_t i = 0; i < asks.size(); ++i) {
    batch_bufs[i].assign(asks[i].second, 'x');
    key_bufs[i].assign(asks[i].second, 'x');
    items[i].key = KeyOf(asks[i].first);
    items[i].dst = asks[i].second ? batch_bufs[i].data() : nullptr;
    items[i].cap = asks[i].second;
  }
  REQUIRE(node.client().GetBatch(ns, 0, items).ok());
  for (size_t i = 0; i < asks.size(); ++i) {
    CAPTURE(i);
    uint64_t size = 0;
    const kvc::Status want = node.client().Get(ns, KeyOf(asks[i].first), 0,
                                               asks[i].second ? key_bufs[i].data() : nullptr, asks[i].second, &size);
    CHECK(items[i].status.code() == want.code());
    if (want.ok() || want.code() == Code::kLayout) CHECK(items[i].size == size);
    CHECK(batch_bufs[i] == key_bufs[i]);
  }
  CHECK(items[0].status.ok());
  CHECK(batch_bufs[0] == Block(kBig, 0));
  CHECK(items[1].status.code() == Code::kNotFound);
  CHECK(items[2].status.code() == Code::kLayout);
  CHECK(items[2].size == kBig);
  CHECK(batch_bufs[2] == std::string(4096, 'x'));  // a too small buffer is left alone
  CHECK(items[3].status.ok());
  CHECK(items[3].size == kBig);
  CHECK(batch_bufs[4].substr(0, kBig) == Block(kBig, 3));
  CHECK(batch_bufs[5].substr(0, kBig) == Block(kBig, 0));
  CHECK(node.NothingHeld());

  // The wire: each key's chunks in order, tagged with its index, the
  // result and total on its first; a miss is one message, its answer an
  // item (LoadChunk.items; small blocks go packed: pack_wire_test.cc).
  v1::LoadRequest q;
  *q.mutable_ns() = Spec(ns);
  for (uint32_t k : {3u, 99u, 1u}) q.add_keys(Bytes(KeyOf(k)));
  std::vector<v1::LoadChunk> chunks;
  REQUIRE(node.RawLoad(q, &chunks));
  REQUIRE(chunks.size() == 5);
  CHECK((chunks[0].index() == 0 && chunks[0].has_result() && chunks[0].total_bytes() == kBig));
  CHECK((chunks[1].index() == 0 && !chunks[1].has_result() && chunks[1].offset() == kvc::net::kMaxChunkBytes));
  REQUIRE(chunks[2].items_size() == 1);
  CHECK((!chunks[2].has_result() && chunks[2].items(0).index() == 1 &&
         chunks[2].items(0).result().code() == static_cast<int32_t>(Code::kNotFound) &&
         chunks[2].items(0).data().empty()));
  CHECK((chunks[3].index() == 2 && chunks[3].result().code() == 0 && chunks[3].offset() == 0));
  CHECK((chunks[4].index() == 2 && chunks[4].offset() == kvc::net::kMaxChunkBytes));
  CHECK(chunks[0].data() + chunks[1].data() == Block(kBig, 3));
  CHECK(chunks[3].data() + chunks[4].data() == Block(kBig, 1));
  CHECK(node.NothingHeld());
}

TEST_CASE("a batch get of 1024 keys; more is INVALID_ARGUMENT and touches no item") {
  Node node;
  const NodeNamespace ns = SmallNs();
  std::vector<PutItem> puts(512);
  std::vector<std::string> blocks(puts.size());
  for (uint32_t i = 0; i < puts.size(); ++i) {
    blocks[i] = Block(kSmall, i);
    puts[i].key = KeyOf(2 * i);  // even keys present, odd ones missing
    puts[i].src = blocks[i].data();
    puts[i].len = kSmall;
  }
  REQUIRE(node.client().PutBatch(ns, 0, puts, 0).ok());
  std::vector<std::string> bufs(kvc::net::kMaxBatchItems, std::string(kSmall, '\0'));
  std::vector<GetItem> items(kvc::net::kMaxBatchItems);
  for (uint32_t i = 0; i < items.size(); ++i) {
    items[i].key = KeyOf(i);
    items[i].dst = bufs[i].data();
    items[i].cap = kSmall;
  }
  REQUIRE(node.client().GetBatch(ns, 0, items).ok());
  for (uint32_t i = 0; i < items.size(); ++i) {
    CAPTURE(i);
    if (i % 2 == 0) {
      REQUIRE(items[i].status.ok());
      REQUIRE(bufs[i] == blocks[i / 2]);
    } else {
      REQUIRE(items[i].status.code() == Code::kNotFound);
    }
  }
  std::vector<GetItem> too_many(kvc::net::kMaxBatchItems + 1);
  const kvc::Status st = node.client().GetBatch(ns, 0, too_many);
  CHECK(st.code() == Code::kInvalidArgument);
  CHECK(too_many[0].status.message() == "not answered");
  std::vector<PutItem> too_many_puts(kvc::net::kMaxBatchItems + 1);
  CHECK(node.client().PutBatch(ns, 0, too_many_puts, 0).code() == Code::kInvalidArgument);
  CHECK(node.NothingHeld());
}

TEST_CASE("a batch put stores every block; an existing one is EXISTS, a wrong size LAYOUT") {
  Node node;
  const NodeNamespace ns = BigNs();
  constexpr uint32_t kN = 6;
  std::vector<std::string> blocks(kN);
  std::vector<PutItem> items(kN);
  for (uint32_t i = 0; i < kN; ++i) {
    blocks[i] = Block(kBig, 100 + i);
    items[i].key = KeyOf(100 + i);
    items[i].src = blocks[i].data();
    items[i].len = kBig;
    if (i > 0) items[i].parent = KeyOf(100 + i - 1);
  }
  REQUIRE(node.client().PutBatch(ns, 0, items, 0).ok());
  for (uint32_t i = 0; i < kN; ++i) {
    CAPTURE(i);
    CHECK(items[i].status.ok());
    CHECK(node.Read(ns, KeyOf(100 + i), kBig) == blocks[i]);
  }

  // One block already stored (other bytes sent): EXISTS, its bytes kept;
  // one of the wrong size: LAYOUT; the others stored.
  const std::string other = Block(kBig, 7);
  const std::string a = Block(kBig, 200), c = Block(kBig, 202);
  std::vector<PutItem> mixed(4);
  mixed[0] = {KeyOf(200), a.data(), kBig, std::nullopt};
  mixed[1] = {KeyOf(102), other.data(), kBig, std::nullopt};
  mixed[2] = {KeyOf(201), other.data(), kBig - 2, std::nullopt};
  mixed[3] = {KeyOf(202), c.data(), kBig, std::nullopt};
  REQUIRE(node.client().PutBatch(ns, 0, mixed, 0).ok());
  CHECK(mixed[0].status.ok());
  CHECK(mixed[1].status.code() == Code::kExists);
  CHECK(mixed[2].status.code() == Code::kLayout);
  CHECK(mixed[3].status.ok());
  CHECK(node.Read(ns, KeyOf(102), kBig) == blocks[2]);
  CHECK(node.Read(ns, KeyOf(200), kBig) == a);
  CHECK(node.GetCode(ns, KeyOf(201), kBig) == Code::kNotFound);
  CHECK(node.Read(ns, KeyOf(202), kBig) == c);

  // A batch of one is a plain one-block stream: EXISTS is its result.
  std::vector<PutItem> one(1);
  one[0] = {KeyOf(100), other.data(), kBig, std::nullopt};
  CHECK(node.client().PutBatch(ns, 0, one, 0).ok());
  CHECK(one[0].status.code() == Code::kExists);
  CHECK(node.NothingHeld());
}

TEST_CASE("bad peers: a batch store stream cut mid-block") {
  Node node;
  const NodeNamespace ns = SmallNs();
  std::vector<v1::StoreMessage> msgs;
  AddBlock(&msgs, KeyOf(1), 1, 3);
  AddBlock(&msgs, KeyOf(2), 2, 3);
  msgs.push_back(Begin(ns, KeyOf(3), kSmall, 3));
  msgs.push_back(Chunk(0, Block(kSmall / 2, 3)));
  v1::StoreResponse resp;
  // Cancelled once the node has committed the first two blocks.
  (void)node.RawStore(msgs, &resp, /*cancel=*/true, [&] {
    for (int i = 0; i < 400 && node.GetCode(ns, KeyOf(2), kSmall) != Code::kOk; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  });
  CHECK(node.NothingHeld());
  CHECK(node.Read(ns, KeyOf(1), kSmall) == Block(kSmall, 1));
  CHECK(node.Read(ns, KeyOf(2), kSmall) == Block(kSmall, 2));
  CHECK(node.GetCode(ns, KeyOf(3), kSmall) == Code::kNotFound);
  const std::string b3 = Block(kSmall, 33);
  CHECK(node.client().Put(ns, KeyOf(3), 0, b3.data(), b3.size(), 0, nullptr).ok());
  CHECK(node.Read(ns, KeyOf(3), kSmall) == b3);

  // The same stream ended (half-closed) mid-block: the node answers.
  msgs.clear();
  AddBlock(&msgs, KeyOf(4), 4, 2);
  msgs.push_back(Begin(ns, KeyOf(5), kSmall, 2));
  msgs.push_back(Chunk(0, Block(kSmall / 2, 5)));
  REQUIRE(node.RawStore(msgs, &resp));
  CHECK(resp.result().code() == kInvalid);
  REQUIRE(resp.results_size() == 2);
  CHECK(resp.results(0).code() == 0);
  CHECK(resp.results(1).code() == kInvalid);
  CHECK(node.NothingHeld());
  CHECK(node.Read(ns, KeyOf(4), kSmall) == Block(kSmall, 4));
  CHECK(node.GetCode(ns, KeyOf(5), kSmall) == Code::kNotFound);
  const std::string b5 = Block(kSmall, 55);
  CHECK(node.client().Put(ns, KeyOf(5), 0, b5.data(), b5.size(), 0, nullptr).ok());
}

TEST_CASE("bad peers: batch store protocol violations end the stream, blocks committed before stay") {
  Node node;
  const NodeNamespace ns = SmallNs();
  v1::StoreResponse resp;
  struct Case {
    const char* what;
    std::function<void(std::vector<v1::StoreMessage>*)> tail;  // after one good block
    int results;  // entries expected in results (the good block's first)
  };
  uint32_t next = 10;
  const std::vector<Case> cases = {
      {"a chunk outside a block", [&](auto* m) { m->push_back(Chunk(0, Block(16, 0))); }, 1},
      {"a commit outside a block", [&](auto* m) { m->push_back(Commit()); }, 1},
      {"a begin inside a block",
       [&](auto* m) {
         m->push_back(Begin(ns, KeyOf(next + 1), kSmall, 3));
         m->push_back(Begin(ns, KeyOf(next + 2), kSmall, 3));
       },
       2},
      {"more blocks than batch_blocks",
       [&](auto* m) {
         AddBlock(m, KeyOf(next + 1), 0, 3);
         AddBlock(m, KeyOf(next + 2), 0, 3);
         AddBlock(m, KeyOf(next + 3), 0, 3);
       },
       4},
      {"batch_blocks changing", [&](auto* m) { AddBlock(m, KeyOf(next + 1), 0, 2); }, 2},
      {"a chunk at a wrong offset",
       [&](auto* m) {
         m->push_back(Begin(ns, KeyOf(next + 1), kSmall, 3));
         m->push_back(Chunk(8, Block(16, 0)));
       },
       2},
      {"a refused block's chunk overrunning it",
       [&](auto* m) {
         m->push_back(Begin(ns, KeyOf(1000), kSmall, 3));  // stored below: EXISTS
         m->push_back(Chunk(0, Block(kSmall + 1, 0)));
       },
       2},
  };
  const std::string existing = Block(kSmall, 1000);
  REQUIRE(node.client().Put(ns, KeyOf(1000), 0, existing.data(), kSmall, 0, nullptr).ok());
  for (const Case& c : cases) {
    CAPTURE(c.what);
    std::vector<v1::StoreMessage> msgs;
    AddBlock(&msgs, KeyOf(next), next, 3);
    c.tail(&msgs);
    REQUIRE(node.RawStore(msgs, &resp));
    CHECK(resp.result().code() == kInvalid);
    CHECK(!resp.result().message().empty());
    REQUIRE(resp.results_size() == c.results);
    for (int i = 0; i + 1 < c.results; ++i) CHECK(resp.results(i).code() == 0);
    CHECK(resp.results(c.results - 1).code() == (c.results == 1 ? 0 : kInvalid));
    CHECK(node.NothingHeld());
    CHECK(node.Read(ns, KeyOf(next), kSmall) == Block(kSmall, next));
    // The blocks of the failed part are not stored (the "more blocks"
    // case stores its first three: all within batch_blocks).
    if (std::string(c.what) != "more blocks than batch_blocks") {
      CHECK(node.GetCode(ns, KeyOf(next + 1), kSmall) == Code::kNotFound);
    } else {
      CHECK(node.GetCode(ns, KeyOf(next + 2), kSmall) == Code::kOk);
      CHECK(node.GetCode(ns, KeyOf(next + 3), kSmall) == Code::kNotFound);
    }
    CHECK(node.GetCode(ns, KeyOf(next + 2), kSmall) == (std::string(c.what) == "more blocks than batch_blocks"
                                                            ? Code::kOk
                                                            : Code::kNotFound));
    next += 10;
  }
  CHECK(node.Read(ns, KeyOf(1000), kSmall) == existing);

  // batch_blocks past 1024: refused at the first begin, nothing stored.
  std::vector<v1::StoreMessage> msgs;
  AddBlock(&msgs, KeyOf(500), 5, 1025);
  REQUIRE(node.RawStore(msgs, &resp));
  CHECK(resp.result().code() == kInvalid);
  REQUIRE(resp.results_size() == 1);
  CHECK(resp.results(0).code() == kInvalid);
  CHECK(node.GetCode(ns, KeyOf(500), kSmall) == Code::kNotFound);

  // A refused block (EXISTS) in a batch: its chunks are read and dropped,
  // the next block is stored.
  msgs.clear();
  AddBlock(&msgs, KeyOf(1000), 9, 2);
  AddBlock(&msgs, KeyOf(501), 501, 2);
  REQUIRE(node.RawStore(msgs, &resp));
  CHECK(resp.result().code() == 0);
  REQUIRE(resp.results_size() == 2);
  CHECK(resp.results(0).code() == static_cast<int32_t>(Code::kExists));
  CHECK(resp.results(1).code() == 0);
  CHECK(node.Read(ns, KeyOf(1000), kSmall) == existing);
  CHECK(node.Read(ns, KeyOf(501), kSmall) == Block(kSmall, 501));

  // One block (batch_blocks 0): a second begin is refused as before.
  msgs.clear();
  AddBlock(&msgs, KeyOf(502), 502, 0);
  AddBlock(&msgs, KeyOf(503), 503, 0);
  REQUIRE(node.RawStore(msgs, &resp));
  CHECK(resp.result().code() == 0);  // the one block's result; the node read no further
  REQUIRE(resp.results_size() == 1);
  CHECK(node.GetCode(ns, KeyOf(503), kSmall) == Code::kNotFound);
  CHECK(node.NothingHeld());
}

TEST_CASE("bad peers: batch loads the node refuses") {
  Node node;
  const NodeNamespace ns = SmallNs();
  auto refused = [&](const v1::LoadRequest& q) {
    std::vector<v1::LoadChunk> chunks;
    REQUIRE(node.RawLoad(q, &chunks));
    REQUIRE(chunks.size() == 1);
    CHECK(!chunks[0].result().message().empty());
    return chunks[0].result().code();
  };
  v1::LoadRequest q;
  *q.mutable_ns() = Spec(ns);
  for (uint32_t i = 0; i < kvc::net::kMaxBatchItems + 1; ++i) q.add_keys(Bytes(KeyOf(i)));
  CHECK(refused(q) == kInvalid);
  q.clear_keys();
  q.add_keys(Bytes(KeyOf(1)));
  q.set_key(Bytes(KeyOf(2)));
  CHECK(refused(q) == kInvalid);
  q.clear_key();
  q.add_keys("short");
  CHECK(refused(q) == kInvalid);
  q.clear_keys();
  q.add_keys(Bytes(KeyOf(1)));
  q.set_shard(1);
  CHECK(refused(q) == kInvalid);
  CHECK(node.NothingHeld());
}

namespace {

v1::LoadChunk Found(uint32_t index, const std::string& data, uint64_t total, uint64_t off = 0) {
  v1::LoadChunk c;
  if (off == 0) {
    c.mutable_result();
    c.set_total_bytes(total);
  }
  c.set_offset(off);
  c.set_data(data);
  c.set_index(index);
  return c;
}

}  // namespace

TEST_CASE("the client checks a batch load's index and offsets") {
  const NodeNamespace ns = SmallNs();
  const std::string a = Block(64, 1);
  struct Case {
    const char* what;
    std::function<void(grpc::ServerWriter<v1::LoadChunk>*)> send;
    Code want;    // items[1] and items[2]
    bool first;   // items[0] answered OK
  };
  const std::vector<Case> cases = {
      {"a wrong index",
       [&](auto* w) {
         w->Write(Found(0, a, 64));
         w->Write(Found(2, a, 64));
       },
       Code::kInternal, true},
      {"a chunk of the previous key",
       [&](auto* w) {
         w->Write(Found(0, a.substr(0, 32), 64));
         w->Write(Found(0, a.substr(32), 64, 32));
         w->Write(Found(0, a.substr(32), 64, 32));
       },
       Code::kInternal, true},
      {"a wrong offset",
       [&](auto* w) {
         w->Write(Found(0, a, 64));
         w->Write(Found(1, a.substr(0, 32), 64));
         w->Write(Found(1, a.substr(0, 16), 64, 16));
       },
       Code::kInternal, true},
      {"a chunk past the block",
       [&](auto* w) {
         w->Write(Found(0, a, 64));
         w->Write(Found(1, a, 32));
       },
       Code::kInternal, true},
      {"a key cut short",
       [&](auto* w) {
         w->Write(Found(0, a, 64));
         w->Write(Found(1, a.substr(0, 32), 64));
       },
       Code::kUnavailable, true},
      {"too few keys",
       [&](auto* w) { w->Write(Found(0, a, 64)); },
       Code::kInternal, true},
      {"a first key at offset 8", [&](auto* w) { w->Write(Found(0, a, 72, 8)); }, Code::kInternal, false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    FakeNode fake([&](const v1::LoadRequest& q, grpc::ServerWriter<v1::LoadChunk>* w, int) {
      CHECK(q.keys_size() == 3);
      c.send(w);
      return grpc::Status::OK;
    });
    auto client = ConnectTo(fake.address());
    std::vector<std::string> bufs(3, std::string(64, '\0'));
    std::vector<GetItem> items(3);
    for (uint32_t i = 0; i < 3; ++i) items[i] = {KeyOf(i), bufs[i].data(), 64};
    const kvc::Status st = client->GetBatch(ns, 0, items);
    CHECK(st.code() == c.want);
    CHECK(items[0].status.code() == (c.first ? Code::kOk : c.want));
    if (c.first) CHECK(bufs[0] == a);
    CHECK(items[1].status.code() == c.want);
    CHECK(items[2].status.code() == c.want);
  }
  // More keys than asked.
  FakeNode extra([&](const v1::LoadRequest&, grpc::ServerWriter<v1::LoadChunk>* w, int) {
    w->Write(Found(0, a, 64));
    w->Write(Found(1, a, 64));
    return grpc::Status::OK;
  });
  auto client = ConnectTo(extra.address());
  std::string buf(64, '\0');
  std::vector<GetItem> one(1);
  one[0] = {KeyOf(0), buf.data(), 64};
  CHECK(client->GetBatch(ns, 0, one).code() == Code::kInternal);
}

TEST_CASE("a batch get is retried after UNAVAILABLE only while no key was answered") {
  const NodeNamespace ns = SmallNs();
  const std::string a = Block(64, 1);
  FakeNode flaky([&](const v1::LoadRequest& q, grpc::ServerWriter<v1::LoadChunk>* w, int call) {
    if (call == 0) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "not yet");
    for (int i = 0; i < q.keys_size(); ++i) w->Write(Found(static_cast<uint32_t>(i), a, 64));
    return grpc::Status::OK;
  });
  auto client = ConnectTo(flaky.address());
  std::vector<std::string> bufs(2, std::string(64, '\0'));
  std::vector<GetItem> items(2);
  for (uint32_t i = 0; i < 2; ++i) items[i] = {KeyOf(i), bufs[i].data(), 64};
  CHECK(client->GetBatch(ns, 0, items).ok());
  CHECK(flaky.calls == 2);
  CHECK((items[0].status.ok() && items[1].status.ok() && bufs[1] == a));

  FakeNode broken([&](const v1::LoadRequest&, grpc::ServerWriter<v1::LoadChunk>* w, int) {
    w->Write(Found(0, a, 64));
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "gone");
  });
  auto client2 = ConnectTo(broken.address());
  const kvc::Status st = client2->GetBatch(ns, 0, items);
  CHECK(st.code() == Code::kUnavailable);
  CHECK(broken.calls == 1);
  CHECK(items[0].status.ok());
  CHECK(items[1].status.code() == Code::kUnavailable);
}
