// The gcc build's runner of the node_request fuzz target (no libFuzzer):
//   kvc_fuzz_node_request_replay PATH...       runs every file (or every file
//                                               of every directory) once
//   kvc_fuzz_node_request_replay --write-seeds DIR
//                                               writes the seed corpus
// A violated invariant aborts (the target's FUZZ_CHECK); exit 0 otherwise.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "kvc/v1/kvc.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace v1 = kvc::v1;
namespace fs = std::filesystem;

namespace {

// The record encoding of fuzz/README.md.
struct Input {
  std::string bytes;
  void Record(uint8_t kind, const std::string& payload) {
    bytes += static_cast<char>(kind);
    bytes += static_cast<char>(payload.size() & 0xFF);
    bytes += static_cast<char>((payload.size() >> 8) & 0xFF);
    bytes += payload;
  }
  void Message(uint8_t kind, const google::protobuf::Message& m) { Record(kind, m.SerializeAsString()); }
  // A store stream: flags, then each message length-prefixed.
  void Store(uint8_t flags, const std::vector<v1::StoreMessage>& msgs) {
    std::string p(1, static_cast<char>(flags));
    for (const auto& m : msgs) {
      const std::string s = m.SerializeAsString();
      p += static_cast<char>(s.size() & 0xFF);
      p += static_cast<char>((s.size() >> 8) & 0xFF);
      p += s;
    }
    Record(3, p);
  }
};

// fp16, 1 layer, 1 head of 8, 4 tokens a block, 2 shards: 64-byte shards.
v1::NamespaceSpec Spec() {
  v1::NamespaceSpec s;
  s.set_model("fuzz");
  s.set_revision("r1");
  s.set_dtype("fp16");
  s.set_layers(1);
  s.set_kv_heads(2);
  s.set_head_dim(8);
  s.set_block_tokens(4);
  s.set_shards(2);
  return s;
}
constexpr uint64_t kShard = 2ull * 1 * 2 * 8 * 4 * 2 / 2;

std::string Key(char c) { return std::string(16, c); }

v1::StoreMessage Begin(char key, uint32_t shard, uint64_t total) {
  v1::StoreMessage m;
  *m.mutable_begin()->mutable_ns() = Spec();
  m.mutable_begin()->set_key(Key(key));
  m.mutable_begin()->set_shard(shard);
  m.mutable_begin()->set_total_bytes(total);
  return m;
}
// A begin of a batch stream of `blocks` blocks.
v1::StoreMessage BatchBegin(char key, uint32_t blocks, uint64_t total = kShard) {
  v1::StoreMessage m = Begin(key, 0, total);
  m.mutable_begin()->set_batch_blocks(blocks);
  return m;
}
v1::StoreMessage Chunk(uint64_t off, uint64_t n, char fill = 'x') {
  v1::StoreMessage m;
  m.mutable_chunk()->set_offset(off);
  m.mutable_chunk()->set_data(std::string(n, fill));
  return m;
}
v1::StoreMessage Commit() {
  v1::StoreMessage m;
  m.mutable_commit();
  return m;
}
v1::MatchRequest MatchKeys(std::initializer_list<char> keys) {
  v1::MatchRequest q;
  *q.mutable_ns() = Spec();
  for (char k : keys) q.add_keys(Key(k));
  return q;
}
v1::LoadRequest Load(char key, uint32_t shard) {
  v1::LoadRequest q;
  *q.mutable_ns() = Spec();
  q.set_key(Key(key));
  q.set_shard(shard);
  return q;
}

// StoreMessage{blocks: StoreBlocks{...}}: whole blocks of a batch stream of
// `blocks` blocks, each (key, total_bytes, data).
struct Packed {
  char key;
  uint64_t total;
  std::string data;
};
v1::StoreMessage Blocks(uint32_t blocks, std::initializer_list<Packed> packed) {
  v1::StoreMessage m;
  m.mutable_blocks();
  for (const Packed& p : packed) {
    v1::StoreBlock* b = m.mutable_blocks()->add_blocks();
    *b = v1::StoreBlock();
    *b->mutable_begin() = BatchBegin(p.key, blocks, p.total).begin();
    b->set_data(p.data);
  }
  return m;
}

std::vector<std::pair<std::string, std::string>> Seeds() {
  std::vector<std::pair<std::string, std::string>> out;
  auto add = [&](const std::string& name, const Input& in) { out.emplace_back(name, in.bytes); };
  {
    Input in;
    in.Record(0, "");
    add("health", in);
  }
  {
    Input in;  // both shards stored, then matched and loaded
    in.Store(0, {Begin('a', 0, kShard), Chunk(0, kShard, 'p'), Commit()});
    in.Store(0, {Begin('a', 1, kShard), Chunk(0, kShard / 2, 'q'), Chunk(kShard / 2, kShard / 2, 'r'), Commit()});
    in.Message(1, MatchKeys({'a', 'b'}));
    in.Message(2, Load('a', 1));
    add("store_match_load", in);
  }
  {
    Input in;
    v1::MatchRequest q;
    *q.mutable_ns() = Spec();
    for (uint32_t t = 0; t < 9; ++t) q.add_tokens(t);
    in.Message(1, q);
    add("match_tokens", in);
  }
  {
    Input in;  // stream ends before commit
    in.Store(0, {Begin('b', 0, kShard), Chunk(0, kShard / 2)});
    in.Message(2, Load('b', 0));
    add("store_truncated", in);
  }
  {
    Input in;  // chunk at the wrong offset, then past the block
    in.Store(0, {Begin('c', 0, kShard), Chunk(8, kShard - 8), Commit()});
    in.Store(0, {Begin('c', 0, kShard), Chunk(0, kShard + 1), Commit()});
    add("store_bad_offsets", in);
  }
  {
    Input in;  // a second begin; a stream without begin
    in.Store(0, {Begin('d', 0, kShard), Begin('d', 0, kShard)});
    in.Store(0, {Chunk(0, 16), Commit()});
    add("store_bad_sequence", in);
  }
  {
    Input in;  // sizes that must not be trusted
    in.Store(0, {Begin('e', 0, 1ull << 62), Commit()});
    in.Store(0, {Begin('e', 9, kShard), Chunk(0, kShard), Commit()});
    add("store_bad_sizes", in);
  }
  {
    Input in;  // the client cancels mid-stream, then the key stores again
    in.Store(1, {Begin('f', 0, kShard), Chunk(0, kShard / 2)});
    in.Store(2, {Begin('f', 0, kShard), Chunk(0, kShard)});
    in.Store(0, {Begin('f', 0, kShard), Chunk(0, kShard, 'z'), Commit()});
    in.Message(2, Load('f', 0));
    add("store_cancelled", in);
  }
  {
    Input in;  // a bad layout in every unary call
    v1::NamespaceSpec bad = Spec();
    bad.set_dtype("fp7");
    bad.set_layers(0);
    v1::MatchRequest m = MatchKeys({'a'});
    *m.mutable_ns() = bad;
    in.Message(1, m);
    v1::LoadRequest l = Load('a', 0);
    *l.mutable_ns() = bad;
    in.Message(2, l);
    v1::DeleteRequest d;
    *d.mutable_ns() = bad;
    d.set_key(Key('a'));
    in.Message(4, d);
    v1::BumpRevisionRequest b;
    *b.mutable_ns() = bad;
    in.Message(5, b);
    add("bad_layout", in);
  }
  {
    Input in;  // store, delete, bump, stats
    in.Store(0, {Begin('g', 0, kShard), Chunk(0, kShard), Commit()});
    v1::DeleteRequest d;
    *d.mutable_ns() = Spec();
    d.set_key(Key('g'));
    in.Message(4, d);
    v1::BumpRevisionRequest b;
    *b.mutable_ns() = Spec();
    in.Message(5, b);
    in.Message(6, v1::StatsRequest());
    add("delete_bump_stats", in);
  }
  {
    Input in;  // keys of the wrong length, a shard out of range
    v1::MatchRequest q = MatchKeys({'a'});
    q.add_keys("short");
    in.Message(1, q);
    in.Message(2, Load('a', 7));
    add("bad_keys", in);
  }
  {
    Input in;  // bytes that are not protobuf, and a record cut short
    in.Record(1, std::string("\xff\xff\xff\xff\x0f garbage", 14));
    in.Record(2, std::string("\x0a\xff\x01", 3));
    in.bytes += std::string("\x03\x40\x00\x00\x05\x00", 6);
    add("garbage", in);
  }
  {
    Input in;  // a batch of three blocks, one of them existing, then loaded as a batch
    in.Store(0, {Begin('h', 0, kShard), Chunk(0, kShard, 'h'), Commit()});
    in.Store(0, {BatchBegin('i', 3), Chunk(0, kShard, 'i'), Commit(), BatchBegin('h', 3), Chunk(0, kShard, 'H'),
                 Commit(), BatchBegin('j', 3), Chunk(0, kShard / 2, 'j'), Chunk(kShard / 2, kShard / 2, 'J'),
                 Commit()});
    v1::LoadRequest q;
    *q.mutable_ns() = Spec();
    for (char k : {'h', 'z', 'i', 'j'}) q.add_keys(Key(k));
    in.Message(2, q);
    add("batch_store_load", in);
  }
  {
    Input in;  // batch streams broken after a good block
    in.Store(0, {BatchBegin('k', 2), Chunk(0, kShard), Commit(), Chunk(0, 16)});                   // chunk outside
    in.Store(0, {BatchBegin('l', 3), Chunk(0, kShard), Commit(), BatchBegin('m', 3), BatchBegin('n', 3)});  // begin inside
    in.Store(0, {BatchBegin('o', 1), Chunk(0, kShard), Commit(), BatchBegin('p', 1), Chunk(0, kShard), Commit()});
    in.Store(0, {BatchBegin('q', 2), Chunk(0, kShard), Commit(), BatchBegin('r', 2), Chunk(0, kShard), Commit(),
                 BatchBegin('s', 2), Chunk(0, kShard), Commit()});  // more blocks than batch_blocks
    in.Store(0, {BatchBegin('t', 2), Chunk(0, kShard), Commit(), BatchBegin('u', 3), Chunk(0, kShard), Commit()});
    in.Store(0, {BatchBegin('v', 1025), Chunk(0, kShard), Commit()});
    in.Store(0, {BatchBegin('w', 2), Chunk(0, kShard), Commit(), BatchBegin('x', 2, kShard + 8),
                 Chunk(0, kShard + 8), Commit()});  // a wrong size: LAYOUT for that block
    add("batch_store_bad", in);
  }
  {
    Input in;  // a batch cut mid-block (cancelled, and left open), then stored again
    in.Store(1, {BatchBegin('A', 2), Chunk(0, kShard), Commit(), BatchBegin('B', 2), Chunk(0, kShard / 2)});
    in.Store(2, {BatchBegin('C', 2), Chunk(0, kShard), Commit(), BatchBegin('D', 2)});
    in.Store(0, {BatchBegin('B', 2), Chunk(0, kShard, 'b'), Commit(), BatchBegin('D', 2), Chunk(0, kShard, 'd'),
                 Commit()});
    add("batch_store_cancelled", in);
  }
  {
    Input in;  // batch loads the node refuses: key and keys, too many keys, a bad key
    v1::LoadRequest both = Load('a', 0);
    both.add_keys(Key('b'));
    in.Message(2, both);
    v1::LoadRequest many;
    *many.mutable_ns() = Spec();
    for (int i = 0; i < 1025; ++i) many.add_keys(Key('a'));
    in.Message(2, many);
    v1::LoadRequest bad;
    *bad.mutable_ns() = Spec();
    bad.add_keys(Key('a'));
    bad.add_keys("short");
    in.Message(2, bad);
    add("batch_load_bad", in);
  }
  {
    Input in;  // packed blocks (StoreMessage.blocks) mixed with begins, one existing; a batch load of them (items)
    in.Store(0, {Begin('P', 0, kShard), Chunk(0, kShard, 'P'), Commit()});
    in.Store(0, {Blocks(5, {{'Q', kShard, std::string(kShard, 'q')}, {'P', kShard, std::string(kShard, 'p')}}),
                 BatchBegin('R', 5), Chunk(0, kShard, 'r'), Commit(),
                 Blocks(5, {{'S', kShard, std::string(kShard, 's')}, {'T', kShard + 8, std::string(kShard + 8, 't')}})});
    v1::LoadRequest q;
    *q.mutable_ns() = Spec();
    for (char k : {'P', 'Q', 'Z', 'R', 'S', 'T'}) q.add_keys(Key(k));
    in.Message(2, q);
    add("packed_store_load", in);
  }
  {
    Input in;  // packed blocks the node refuses
    in.Store(0, {BatchBegin('a', 3), Chunk(0, kShard / 2), Blocks(3, {{'b', kShard, std::string(kShard, 'b')}}),
                 Chunk(kShard / 2, kShard / 2), Commit()});                                    // blocks inside a block
    in.Store(0, {Blocks(2, {{'c', kShard, std::string(kShard, 'c')}, {'d', kShard, std::string(kShard - 1, 'd')}})});
    in.Store(0, {Blocks(2, {{'e', kShard, std::string(kShard, 'e')}, {'f', kShard, std::string(kShard, 'f')}}),
                 Blocks(2, {{'g', kShard, std::string(kShard, 'g')}})});                         // more than batch_blocks
    in.Store(0, {Blocks(2, {{'h', kShard, std::string(kShard, 'h')}, {'i', 1ull << 40, std::string(kShard, 'i')}})});
    in.Store(0, {Blocks(2, {})});                                                                   // no block
    in.Store(0, {Blocks(2, {{'j', kShard, std::string(kShard, 'j')}}), Chunk(0, 16)});            // chunk outside
    in.Store(1, {Blocks(2, {{'k', kShard, std::string(kShard, 'k')}}), BatchBegin('l', 2), Chunk(0, kShard / 2)});
    add("packed_store_bad", in);
  }
  return out;
}

bool RunFile(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) {
    std::fprintf(stderr, "cannot read %s\n", p.c_str());
    return false;
  }
  const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--write-seeds") {
    fs::create_directories(argv[2]);
    for (const auto& [name, bytes] : Seeds()) {
      std::ofstream(fs::path(argv[2]) / ("seed_" + name), std::ios::binary) << bytes;
    }
    std::printf("wrote %zu seeds to %s\n", Seeds().size(), argv[2]);
    return 0;
  }
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s PATH... | --write-seeds DIR\n", argv[0]);
    return 2;
  }
  size_t runs = 0;
  for (int i = 1; i < argc; ++i) {
    const fs::path p(argv[i]);
    if (fs::is_directory(p)) {
      std::vector<fs::path> files;
      for (const auto& e : fs::directory_iterator(p))
        if (e.is_regular_file()) files.push_back(e.path());
      std::sort(files.begin(), files.end());
      if (files.empty()) {
        std::fprintf(stderr, "%s holds no inputs\n", p.c_str());
        return 1;
      }
      for (const auto& f : files) {
        if (!RunFile(f)) return 1;
        ++runs;
      }
    } else {
      if (!RunFile(p)) return 1;
      ++runs;
    }
  }
  std::printf("%zu inputs replayed, every invariant held\n", runs);
  return 0;
}
