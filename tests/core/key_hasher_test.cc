// KeyHasher against the kvc-hash-v1 vectors (tests/vectors/, written by the
// independent Python implementation in scripts/gen_hash_vectors.py) and the
// spec's properties.
#include "core/key_hasher.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

namespace kvc {
namespace {

using nlohmann::json;

std::string Unhex(const std::string& hex) {
  REQUIRE(hex.size() % 2 == 0);
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  }
  return out;
}

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  for (unsigned char c : bytes) {
    s += kDigits[c >> 4];
    s += kDigits[c & 0xf];
  }
  return s;
}

NamespaceFields FieldsOf(const json& c) {
  NamespaceFields f;
  auto algo = ParseHashAlgo(c.at("hash").get<std::string>());
  REQUIRE(algo.ok());
  f.hash = *algo;
  f.model = c.at("model").get<std::string>();
  f.revision = c.at("revision").get<std::string>();
  f.adapter = c.at("adapter").get<std::string>();
  const json& l = c.at("layout");
  f.layout.dtype = l.at("dtype").get<std::string>();
  f.layout.layers = l.at("layers").get<uint32_t>();
  f.layout.kv_heads = l.at("kv_heads").get<uint32_t>();
  f.layout.head_dim = l.at("head_dim").get<uint32_t>();
  f.layout.block_tokens = l.at("block_tokens").get<uint32_t>();
  f.layout.shards = l.at("shards").get<uint32_t>();
  f.salt = Unhex(c.at("salt_hex").get<std::string>());
  return f;
}

NamespaceFields BaseFields(HashAlgo algo = HashAlgo::kSha256, uint32_t block_tokens = 16) {
  NamespaceFields f;
  f.hash = algo;
  f.model = "meta-llama/Llama-3.1-8B-Instruct";
  f.revision = "main";
  f.layout = Layout{"fp16", 32, 8, 128, block_tokens, 1};
  return f;
}

std::vector<uint32_t> RandomTokens(std::mt19937& rng, size_t n) {
  std::vector<uint32_t> t(n);
  for (auto& x : t) x = static_cast<uint32_t>(rng());
  return t;
}

std::vector<std::filesystem::path> VectorFiles() {
  std::vector<std::filesystem::path> files;
  for (const auto& e :
       std::filesystem::directory_iterator(std::string(KVC_SOURCE_DIR) + "/tests/vectors")) {
    if (e.path().extension() == ".json") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

TEST_CASE("every kvc-hash-v1 vector") {
  size_t cases = 0;
  std::set<std::string> hashes;
  for (const auto& path : VectorFiles()) {
    std::ifstream in(path);
    const json doc = json::parse(in);
    REQUIRE(doc.at("spec") == "kvc-hash-v1");
    for (const json& c : doc.at("cases")) {
      const std::string name = c.at("name").get<std::string>();
      CAPTURE(name);
      const NamespaceFields f = FieldsOf(c);
      REQUIRE(f.layout.Validate().ok());
      CHECK(Hex(KeyHasher::Canonical(f)) == c.at("canonical_hex").get<std::string>());

      const KeyHasher hasher(f);
      CHECK(hasher.seed().Hex() == c.at("seed").get<std::string>());
      const auto tokens = c.at("tokens").get<std::vector<uint32_t>>();
      const auto want = c.at("keys").get<std::vector<std::string>>();

      std::vector<BlockKey> keys{BlockKey{}, BlockKey{}, BlockKey{}, BlockKey{}, BlockKey{}};
      hasher.Keys(tokens, &keys);
      REQUIRE(keys.size() == want.size());
      for (size_t i = 0; i < keys.size(); ++i) CHECK(keys[i].Hex() == want[i]);

      std::vector<BlockKey> arr(want.size() + 1);
      CHECK(hasher.Keys(tokens, arr.data()) == want.size());
      CHECK(std::equal(keys.begin(), keys.end(), arr.begin()));
      hashes.insert(c.at("hash").get<std::string>());
      ++cases;
    }
  }
  CHECK(cases >= 50);
  CHECK(hashes == std::set<std::string>{"sha256", "xxh3-128"});
}

TEST_CASE("H is truncated SHA-256 or XXH3-128 as le64(low) || le64(high)") {
  CHECK(KeyHasher::Hash(HashAlgo::kSha256, "", 0).Hex() == "e3b0c44298fc1c149afbf4c8996fb924");
  CHECK(KeyHasher::Hash(HashAlgo::kSha256, "abc", 3).Hex() == "ba7816bf8f01cfea414140de5dae2223");
  // XXH3_128("") = 0x99aa06d3014798d8'6001c324468d497f.
  CHECK(KeyHasher::Hash(HashAlgo::kXxh3_128, "", 0).Hex() == "7f498d4624c30160d8984701d306aa99");
}

TEST_CASE("Keys follows the chain formula for every block size") {
  std::mt19937 rng(7);
  for (HashAlgo algo : {HashAlgo::kSha256, HashAlgo::kXxh3_128}) {
    for (uint32_t b : {1u, 3u, 16u, 100u, 511u, 512u, 513u, 4096u}) {
      CAPTURE(b);
      const KeyHasher hasher(BaseFields(algo, b));
      const auto tokens = RandomTokens(rng, 5 * b + b / 2);
      std::vector<BlockKey> keys;
      hasher.Keys(tokens, &keys);
      REQUIRE(keys.size() == 5);
      BlockKey prev = hasher.seed();
      for (size_t i = 0; i < keys.size(); ++i) {
        std::string msg(prev.bytes.begin(), prev.bytes.end());
        for (size_t j = 0; j < b; ++j) {
          const uint32_t t = tokens[i * b + j];
          for (int k = 0; k < 4; ++k) msg += static_cast<char>(t >> (8 * k));
        }
        prev = KeyHasher::Hash(algo, msg.data(), msg.size());
        CHECK(keys[i] == prev);
      }
    }
  }
}

TEST_CASE("the keys of a prefix are a prefix of the keys") {
  std::mt19937 rng(11);
  for (HashAlgo algo : {HashAlgo::kSha256, HashAlgo::kXxh3_128}) {
    const KeyHasher hasher(BaseFields(algo, 16));
    const auto tokens = RandomTokens(rng, 16 * 20 + 5);
    std::vector<BlockKey> all;
    hasher.Keys(tokens, &all);
    REQUIRE(all.size() == 20);
    for (size_t len = 0; len <= tokens.size(); len += 7) {
      std::vector<BlockKey> part;
      hasher.Keys(std::span(tokens).first(len), &part);
      REQUIRE(part.size() == len / 16);
      CHECK(std::equal(part.begin(), part.end(), all.begin()));
    }
  }
}

TEST_CASE("KeysAfter continues a chain from any key") {
  std::mt19937 rng(23);
  for (HashAlgo algo : {HashAlgo::kSha256, HashAlgo::kXxh3_128}) {
    const KeyHasher hasher(BaseFields(algo, 8));
    const auto tokens = RandomTokens(rng, 8 * 12 + 3);
    std::vector<BlockKey> all;
    hasher.Keys(tokens, &all);
    REQUIRE(all.size() == 12);
    for (size_t k = 1; k < 12; k += 2) {
      std::vector<BlockKey> rest(12 - k);
      CHECK(hasher.KeysAfter(all[k - 1], std::span(tokens).subspan(8 * k), rest.data()) ==
            12 - k);
      CHECK(std::equal(rest.begin(), rest.end(), all.begin() + k));
    }
    BlockKey out[2];
    CHECK(hasher.KeysAfter(hasher.seed(), std::span(tokens).first(16), out) == 2);
    CHECK(out[0] == all[0]);
    CHECK(out[1] == all[1]);
  }
}

TEST_CASE("a changed token changes its block's key and every key after it") {
  std::mt19937 rng(13);
  const KeyHasher hasher(BaseFields());
  auto tokens = RandomTokens(rng, 16 * 6);
  std::vector<BlockKey> before, after;
  hasher.Keys(tokens, &before);
  tokens[16 * 2 + 5] ^= 1u << 31;
  hasher.Keys(tokens, &after);
  CHECK(std::equal(before.begin(), before.begin() + 2, after.begin()));
  for (size_t i = 2; i < 6; ++i) CHECK(before[i] != after[i]);
}

TEST_CASE("a partial block has no key and does not affect the keys before it") {
  std::mt19937 rng(17);
  for (HashAlgo algo : {HashAlgo::kSha256, HashAlgo::kXxh3_128}) {
    const KeyHasher hasher(BaseFields(algo, 16));
    auto tokens = RandomTokens(rng, 15);
    std::vector<BlockKey> keys(3);
    hasher.Keys(tokens, &keys);
    CHECK(keys.empty());
    CHECK(hasher.Keys(tokens, static_cast<BlockKey*>(nullptr)) == 0);
    hasher.Keys({}, &keys);
    CHECK(keys.empty());

    tokens = RandomTokens(rng, 16 * 2 + 9);
    std::vector<BlockKey> a, b;
    hasher.Keys(tokens, &a);
    for (size_t i = 32; i < tokens.size(); ++i) tokens[i] = ~tokens[i];
    hasher.Keys(tokens, &b);
    CHECK(a.size() == 2);
    CHECK(a == b);
  }
}

TEST_CASE("changing any namespace field changes the seed") {
  std::vector<NamespaceFields> variants;
  variants.push_back(BaseFields());
  auto vary = [&](auto edit) {
    NamespaceFields f = BaseFields();
    edit(f);
    variants.push_back(f);
  };
  vary([](NamespaceFields& f) { f.hash = HashAlgo::kXxh3_128; });
  vary([](NamespaceFields& f) { f.model += "x"; });
  vary([](NamespaceFields& f) { f.revision = "main2"; });
  vary([](NamespaceFields& f) { f.adapter = "lora"; });
  vary([](NamespaceFields& f) { f.layout.dtype = "bf16"; });
  vary([](NamespaceFields& f) { f.layout.layers = 33; });
  vary([](NamespaceFields& f) { f.layout.kv_heads = 16; });
  vary([](NamespaceFields& f) { f.layout.head_dim = 64; });
  vary([](NamespaceFields& f) { f.layout.block_tokens = 32; });
  vary([](NamespaceFields& f) { f.layout.shards = 2; });
  vary([](NamespaceFields& f) { f.salt = std::string(1, '\0'); });
  vary([](NamespaceFields& f) { f.salt = "tenant-salt"; });
  // Length prefixes keep field boundaries apart.
  vary([](NamespaceFields& f) {
    f.model = "meta-llama/Llama-3.1-8B-Instructm";
    f.revision = "ain";
  });
  vary([](NamespaceFields& f) {
    f.revision = "";
    f.adapter = "main";
  });
  vary([](NamespaceFields& f) {
    f.adapter = "";
    f.salt = "main";
  });

  std::set<std::string> canonicals, seeds;
  for (const auto& f : variants) {
    REQUIRE(f.layout.Validate().ok());
    canonicals.insert(KeyHasher::Canonical(f));
    seeds.insert(KeyHasher(f).seed().Hex());
  }
  CHECK(canonicals.size() == variants.size());
  CHECK(seeds.size() == variants.size());
}

TEST_CASE("one KeyHasher shared by threads") {
  std::mt19937 rng(19);
  const KeyHasher hasher(BaseFields());
  const auto tokens = RandomTokens(rng, 16 * 500);
  std::vector<BlockKey> want;
  hasher.Keys(tokens, &want);
  std::vector<std::vector<BlockKey>> got(4);
  std::vector<std::thread> threads;
  for (auto& g : got) {
    threads.emplace_back([&hasher, &tokens, &g] {
      for (int r = 0; r < 20; ++r) hasher.Keys(tokens, &g);
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& g : got) CHECK(g == want);
}

TEST_CASE("ParseHashAlgo and HashAlgoName") {
  CHECK(*ParseHashAlgo("sha256") == HashAlgo::kSha256);
  CHECK(*ParseHashAlgo("xxh3-128") == HashAlgo::kXxh3_128);
  CHECK(HashAlgoName(HashAlgo::kSha256) == "sha256");
  CHECK(HashAlgoName(HashAlgo::kXxh3_128) == "xxh3-128");
  for (const char* bad : {"", "SHA256", "xxh3", "md5", "sha256 "}) {
    auto r = ParseHashAlgo(bad);
    CHECK_FALSE(r.ok());
    CHECK(r.status().code() == Code::kInvalidArgument);
    CHECK(r.status().message().find("sha256 xxh3-128") != std::string::npos);
  }
  auto r = ParseHashAlgo("bad\nname");
  CHECK(r.status().message().find('\n') == std::string::npos);
}

TEST_CASE("BlockKey hex round trip") {
  BlockKey k;
  for (size_t i = 0; i < k.bytes.size(); ++i) k.bytes[i] = static_cast<uint8_t>(i * 17 + 3);
  const std::string hex = k.Hex();
  CHECK(hex == "031425364758697a8b9cadbecfe0f102");
  auto back = BlockKey::FromHex(hex);
  REQUIRE(back.ok());
  CHECK(*back == k);
  auto upper = BlockKey::FromHex("031425364758697A8B9CADBECFE0F102");
  REQUIRE(upper.ok());
  CHECK(*upper == k);
  CHECK(k.Low64() == 0x7a69584736251403ull);

  for (const char* bad : {"", "0314", "03142536475869708192a3b4c5d6e7f8a",
                          "03142536475869708192a3b4c5d6e7fg", " 3142536475869708192a3b4c5d6e7f8"}) {
    auto r = BlockKey::FromHex(bad);
    CHECK_FALSE(r.ok());
    CHECK(r.status().code() == Code::kInvalidArgument);
  }
}

}  // namespace kvc
