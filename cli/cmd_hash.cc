// kvc hash: the kvc-hash-v1 seed and block keys of one case read as JSON on
// stdin (docs/hash-spec.md, man/kvc-hash.1). Hashes through kvc_hash_keys.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "command.h"

namespace kvc::cli {
namespace {

using nlohmann::json;

constexpr const char* kFooter = R"(Input: one JSON object on stdin
  {"hash": "sha256",                      optional; or "xxh3-128"
   "model": "meta-llama/Llama-3.1-8B",    required, non-empty
   "revision": "main",                    required, non-empty
   "adapter": "",                         optional
   "layout": {"dtype": "fp16", "layers": 32, "kv_heads": 8, "head_dim": 128,
              "block_tokens": 16, "shards": 1},          shards optional
   "salt_hex": "",                        optional, hex bytes
   "tokens": [128000, 9906, ...]}         integers 0..4294967295
A case from tests/vectors/*.json may be piped as is: its "name",
"canonical_hex", "seed" and "keys" are ignored. Other unknown fields are
errors. See docs/hash-spec.md and kvc-hash(1).)";

// A problem with the input: becomes "kvc hash: <message>", exit 1.
struct InputError {
  std::string message;
};

// `v` as short one-line JSON text, for messages.
std::string Show(const json& v) {
  std::string s = v.dump(-1, ' ', true, json::error_handler_t::replace);
  if (s.size() > 48) s = s.substr(0, 45) + "...";
  return s;
}

const char* TypeName(const json& v) {
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_boolean()) return "a boolean";
  if (v.is_null()) return "null";
  if (v.is_array()) return "an array";
  return "an object";
}

void RequireObject(const json& v, const std::string& what) {
  if (!v.is_object()) throw InputError{what + " must be a JSON object, got " + TypeName(v)};
}

// Rejects keys of `obj` outside `known` and `ignored`.
void CheckKeys(const json& obj, const std::string& prefix, const std::set<std::string>& known,
               const std::set<std::string>& ignored) {
  for (const auto& [key, value] : obj.items()) {
    if (!known.count(key) && !ignored.count(key)) {
      throw InputError{"unknown field " + Show(json(prefix + key))};
    }
  }
}

// A string field; `fallback` when absent or null if `required` is false.
std::string GetString(const json& obj, const std::string& key, const std::string& path,
                      bool required, const std::string& fallback = "") {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) throw InputError{"missing field \"" + path + "\""};
    return fallback;
  }
  if (!it->is_string()) {
    throw InputError{path + " must be a string, got " + TypeName(*it) + " " + Show(*it)};
  }
  std::string s = it->get<std::string>();
  if (s.find('\0') != std::string::npos) throw InputError{path + " contains a NUL character"};
  return s;
}

// An integer 0..2^32-1.
uint32_t GetU32(const json& v, const std::string& path) {
  if (v.is_number_unsigned() && v.get<uint64_t>() <= UINT32_MAX) {
    return static_cast<uint32_t>(v.get<uint64_t>());
  }
  if (v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() <= UINT32_MAX) {
    return static_cast<uint32_t>(v.get<int64_t>());
  }
  throw InputError{path + " must be an integer from 0 to 4294967295, got " + Show(v)};
}

std::vector<uint8_t> ParseHex(const std::string& hex, const std::string& path) {
  if (hex.size() % 2 != 0) {
    throw InputError{path + " has an odd number of hex digits (" + std::to_string(hex.size()) +
                     ")"};
  }
  std::vector<uint8_t> out;
  out.reserve(hex.size() / 2);
  auto digit = [&](size_t i) {
    const char c = hex[i];
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    throw InputError{path + " has a non-hex character at offset " + std::to_string(i)};
  };
  for (size_t i = 0; i < hex.size(); i += 2) {
    out.push_back(static_cast<uint8_t>(digit(i) << 4 | digit(i + 1)));
  }
  return out;
}

// One case, owning the strings kvc_namespace_options points into.
struct Case {
  std::string hash, model, revision, adapter, dtype;
  uint32_t layers = 0, kv_heads = 0, head_dim = 0, block_tokens = 0, shards = 1;
  std::vector<uint8_t> salt;
  std::vector<uint32_t> tokens;

  kvc_namespace_options Options() const {
    kvc_namespace_options o = KVC_NAMESPACE_OPTIONS_INIT;
    o.hash = hash.c_str();
    o.model = model.c_str();
    o.revision = revision.c_str();
    o.adapter = adapter.c_str();
    o.dtype = dtype.c_str();
    o.layers = layers;
    o.kv_heads = kv_heads;
    o.head_dim = head_dim;
    o.block_tokens = block_tokens;
    o.shards = shards;
    o.salt = salt.empty() ? nullptr : salt.data();
    o.salt_len = salt.size();
    return o;
  }
};

Case ParseCase(const std::string& text) {
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
    throw InputError{"stdin is empty; expected one JSON case (see kvc hash --help)"};
  }
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    std::string m = e.what();
    if (auto p = m.find("] "); m.rfind("[json.exception.", 0) == 0 && p != std::string::npos) {
      m = m.substr(p + 2);
    }
    throw InputError{"stdin is not valid JSON: " + m};
  }
  RequireObject(j, "the input");
  CheckKeys(j, "", {"hash", "model", "revision", "adapter", "layout", "salt_hex", "tokens"},
            {"name", "canonical_hex", "seed", "keys"});

  Case c;
  c.hash = GetString(j, "hash", "hash", false, "sha256");
  c.model = GetString(j, "model", "model", true);
  c.revision = GetString(j, "revision", "revision", true);
  c.adapter = GetString(j, "adapter", "adapter", false);

  auto layout = j.find("layout");
  if (layout == j.end()) throw InputError{"missing field \"layout\""};
  RequireObject(*layout, "layout");
  CheckKeys(*layout, "layout.",
            {"dtype", "layers", "kv_heads", "head_dim", "block_tokens", "shards"}, {});
  c.dtype = GetString(*layout, "dtype", "layout.dtype", true);
  const std::pair<const char*, uint32_t*> numbers[] = {
      {"layers", &c.layers}, {"kv_heads", &c.kv_heads}, {"head_dim", &c.head_dim},
      {"block_tokens", &c.block_tokens}, {"shards", &c.shards}};
  for (const auto& [name, field] : numbers) {
    const std::string path = std::string("layout.") + name;
    auto it = layout->find(name);
    if (it == layout->end() || it->is_null()) {
      if (std::string(name) == "shards") continue;  // default 1
      throw InputError{"missing field \"" + path + "\""};
    }
    *field = GetU32(*it, path);
  }
  // The C ABI reads shards 0 as "the default, 1"; in a case it is a mistake.
  if (c.shards == 0) {
    throw InputError{"layout.shards is 0; it must be at least 1 (omit it for the default, 1)"};
  }

  c.salt = ParseHex(GetString(j, "salt_hex", "salt_hex", false), "salt_hex");

  auto tokens = j.find("tokens");
  if (tokens == j.end()) throw InputError{"missing field \"tokens\""};
  if (!tokens->is_array()) {
    throw InputError{"tokens must be an array, got " + std::string(TypeName(*tokens))};
  }
  c.tokens.reserve(tokens->size());
  for (size_t i = 0; i < tokens->size(); ++i) {
    c.tokens.push_back(GetU32((*tokens)[i], "tokens[" + std::to_string(i) + "]"));
  }
  return c;
}

std::string Hex(const kvc_key& k) {
  char buf[33];
  kvc_key_to_hex(&k, buf);
  return buf;
}

int RunHash(Output output) {
  if (isatty(STDIN_FILENO)) {
    std::fprintf(stderr, "kvc hash: reads one JSON case on stdin (see kvc hash --help)\n");
    return kExitUsage;
  }
  Case c;
  try {
    std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (std::cin.bad()) return Fail("hash", "cannot read stdin");
    c = ParseCase(text);
  } catch (const InputError& e) {
    return Fail("hash", e.message);
  }

  const kvc_namespace_options opts = c.Options();
  std::vector<kvc_key> keys(c.block_tokens > 0 ? c.tokens.size() / c.block_tokens : 0);
  kvc_key seed;
  size_t n = 0;
  kvc_error err;
  if (kvc_hash_keys(&seed, keys.data(), keys.size(), &n, &opts, c.tokens.data(), c.tokens.size(),
                    &err) != KVC_OK) {
    return FailStatus("hash", "invalid case", err);
  }
  keys.resize(n);

  if (output == Output::kJson) {
    nlohmann::ordered_json j{{"seed", Hex(seed)}, {"keys", json::array()}};
    for (const kvc_key& k : keys) j["keys"].push_back(Hex(k));
    std::printf("%s\n", j.dump().c_str());
    return kExitOk;
  }
  const size_t trailing = c.tokens.size() - n * c.block_tokens;
  std::printf("hash    %s\n", c.hash.c_str());
  std::printf("seed    %s\n", Hex(seed).c_str());
  std::printf("blocks  %zu of %u tokens", n, c.block_tokens);
  if (trailing == 1) std::printf(" (1 trailing token has no key)");
  if (trailing > 1) std::printf(" (%zu trailing tokens have no key)", trailing);
  std::printf("\n");
  if (n > 0) {
    std::printf("\n%-7s %-23s %s\n", "block", "tokens", "key");
    for (size_t i = 0; i < n; ++i) {
      const std::string range = std::to_string(i * c.block_tokens) + "-" +
                                std::to_string((i + 1) * c.block_tokens - 1);
      std::printf("%-7zu %-23s %s\n", i, range.c_str(), Hex(keys[i]).c_str());
    }
  }
  return kExitOk;
}

}  // namespace

Registration RegisterHash(CLI::App& root) {
  auto* app = root.add_subcommand(
      "hash", "Print the kvc-hash-v1 seed and block keys of a JSON case read on stdin");
  app->footer(kFooter);
  auto out = std::make_shared<Output>(Output::kTable);
  AddOutputFlags(app, out.get(), false);
  return {app, [out] { return RunHash(*out); }};
}

}  // namespace kvc::cli
