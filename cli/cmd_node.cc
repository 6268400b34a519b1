// kvc stat|match|get|put|rm --node ADDR: clients of a kvc node, through the
// C ABI's kvc_node_* calls. Credentials come from --tenant/--credential or
// KVC_TENANT/KVC_CREDENTIAL (stat: or the admin token, for the whole node's
// counters); TLS from --tls-ca/--tls-cert/--tls-key; the namespace from the
// layout flags.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "command.h"
#include "node_conn.h"

namespace kvc::cli {
namespace {

struct NodeArgs {
  std::string node, tenant, credential;
  uint32_t timeout_ms = 0;
  NodeConnFlags conn;
  Output out = Output::kTable;
  NamespaceFlags ns;
  // per command
  std::vector<std::string> keys;
  std::string tokens, file, parent;
  uint32_t shard = 0;
  uint64_t ttl_ms = 0;
};

void AddConnection(CLI::App* app, NodeArgs* a) {
  app->add_option("--node", a->node, "Node address host:port")->required()->envname("KVC_NODE");
  app->add_option("--tenant", a->tenant, "Tenant to act as")->envname("KVC_TENANT");
  app->add_option("--credential", a->credential, "The tenant's credential")->envname("KVC_CREDENTIAL");
  app->add_option("--timeout-ms", a->timeout_ms, "Deadline of the call (default 10000)");
  AddNodeConnFlags(app, &a->conn);
  AddOutputFlags(app, &a->out, false);
}


// Runs `body` on a connection; prints the failure of either.
int WithNode(const char* cmd, const NodeArgs& a, const std::function<int(kvc_node*)>& body) {
  kvc_node_options o = KVC_NODE_OPTIONS_INIT;
  o.tenant = a.tenant.empty() ? nullptr : a.tenant.c_str();
  o.credential = a.credential.c_str();
  o.timeout_ms = a.timeout_ms;
  std::string admin_token, error;
  if (!ApplyNodeConnFlags(a.conn, &admin_token, &o, &error)) return Fail(cmd, error);
  kvc_node* node = nullptr;
  kvc_error err{};
  if (kvc_node_connect(&node, a.node.c_str(), &o, &err) != KVC_OK) return FailStatus(cmd, "connect " + a.node, err);
  const int rc = body(node);
  kvc_node_close(node);
  return rc;
}

bool ParseKey(const std::string& hex, kvc_key* out, const char* cmd, int* rc) {
  kvc_error err{};
  if (kvc_key_from_hex(out, hex.c_str(), &err) == KVC_OK) return true;
  *rc = FailStatus(cmd, "key '" + hex + "'", err);
  return false;
}

std::string Hex(const kvc_key& k) {
  char h[33];
  kvc_key_to_hex(&k, h);
  return h;
}

const char* TierName(uint8_t t) {
  switch (t) {
    case KVC_TIER_GPU: return "gpu";
    case KVC_TIER_HOST: return "host";
    case KVC_TIER_SSD: return "ssd";
    case KVC_TIER_REMOTE: return "remote";
    default: return "none";
  }
}

int Stat(const NodeArgs& a) {
  return WithNode("stat", a, [&](kvc_node* node) {
    char* out = nullptr;
    kvc_error err{};
    if (kvc_node_stats_json(node, &out, &err) != KVC_OK) return FailStatus("stat", "stats of " + a.node, err);
    auto j = nlohmann::json::parse(out);
    kvc_string_free(out);
    if (a.out == Output::kJson) {
      std::printf("%s\n", j.dump().c_str());
    } else {
      for (const char* k : {"namespaces", "blocks", "used_bytes", "capacity_bytes", "hits", "misses", "stores"})
        if (j.contains(k)) std::printf("%-16s %s\n", k, j[k].dump().c_str());
    }
    return kExitOk;
  });
}

int Match(const NodeArgs& a) {
  if (a.keys.empty() == a.tokens.empty()) return Fail("match", "give --key (one or more) or --tokens, not both");
  kvc_namespace_options ns = NamespaceOptionsOf(a.ns);
  return WithNode("match", a, [&](kvc_node* node) {
    kvc_error err{};
    std::vector<kvc_key> keys;
    size_t blocks = 0;
    std::vector<uint8_t> tiers;
    if (!a.keys.empty()) {
      int rc = kExitOk;
      keys.resize(a.keys.size());
      for (size_t i = 0; i < keys.size(); i++)
        if (!ParseKey(a.keys[i], &keys[i], "match", &rc)) return rc;
      tiers.resize(keys.size());
      if (kvc_node_match(node, &blocks, tiers.data(), &ns, keys.data(), keys.size(), &err) != KVC_OK)
        return FailStatus("match", "match", err);
    } else {
      std::vector<uint32_t> tokens;
      std::stringstream ss(a.tokens);
      std::string t;
      while (std::getline(ss, t, ',')) {
        try {
          size_t used = 0;
          const unsigned long v = std::stoul(t, &used);
          if (used != t.size() || v > UINT32_MAX) throw std::out_of_range(t);
          tokens.push_back(static_cast<uint32_t>(v));
        } catch (const std::exception&) {
          return Fail("match", "--tokens: '" + t + "' is not an unsigned 32-bit token");
        }
      }
      const size_t n = a.ns.block_tokens ? tokens.size() / a.ns.block_tokens : 0;
      keys.resize(n);
      tiers.resize(n);
      if (kvc_node_match_tokens(node, &blocks, tiers.data(), keys.data(), keys.size(), &ns, tokens.data(),
                                tokens.size(), &err) != KVC_OK)
        return FailStatus("match", "match", err);
    }
    if (a.out == Output::kJson) {
      nlohmann::json j{{"blocks", blocks}, {"keys", nlohmann::json::array()}, {"tiers", nlohmann::json::array()}};
      for (size_t i = 0; i < keys.size(); i++) {
        j["keys"].push_back(Hex(keys[i]));
        j["tiers"].push_back(TierName(tiers[i]));
      }
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf("matched %zu of %zu blocks\n", blocks, keys.size());
      for (size_t i = 0; i < keys.size(); i++) std::printf("%s %s\n", Hex(keys[i]).c_str(), TierName(tiers[i]));
    }
    return kExitOk;
  });
}

int Get(const NodeArgs& a) {
  kvc_namespace_options ns = NamespaceOptionsOf(a.ns);
  int rc = kExitOk;
  kvc_key key;
  if (!ParseKey(a.keys.at(0), &key, "get", &rc)) return rc;
  return WithNode("get", a, [&](kvc_node* node) {
    kvc_error err{};
    size_t len = 0;
    if (kvc_node_get(node, &len, &ns, &key, a.shard, nullptr, &err) != KVC_OK)
      return FailStatus("get", "get " + a.keys[0], err);
    std::vector<uint8_t> data(len);
    kvc_buf dst = KVC_HOST_BUF(data.data(), data.size());
    if (kvc_node_get(node, &len, &ns, &key, a.shard, &dst, &err) != KVC_OK)
      return FailStatus("get", "get " + a.keys[0], err);
    if (a.file.empty() || a.file == "-") {
      std::fwrite(data.data(), 1, len, stdout);
      return kExitOk;
    }
    std::ofstream f(a.file, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(len));
    f.close();
    if (!f) return Fail("get", "cannot write " + a.file);
    if (a.out == Output::kJson) {
      std::printf("%s\n", nlohmann::json{{"key", a.keys[0]}, {"shard", a.shard}, {"bytes", len}}.dump().c_str());
    } else {
      std::printf("%s: %zu bytes to %s\n", a.keys[0].c_str(), len, a.file.c_str());
    }
    return kExitOk;
  });
}

int Put(const NodeArgs& a) {
  kvc_namespace_options ns = NamespaceOptionsOf(a.ns);
  int rc = kExitOk;
  kvc_key key, parent;
  if (!ParseKey(a.keys.at(0), &key, "put", &rc)) return rc;
  if (!a.parent.empty() && !ParseKey(a.parent, &parent, "put", &rc)) return rc;
  std::ifstream f(a.file, std::ios::binary);
  if (!f) return Fail("put", "cannot read " + a.file);
  std::vector<uint8_t> data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return WithNode("put", a, [&](kvc_node* node) {
    kvc_error err{};
    kvc_buf src = KVC_HOST_BUF(data.data(), data.size());
    kvc_store_options so = KVC_STORE_OPTIONS_INIT;
    so.ttl_ms = a.ttl_ms;
    so.parent = a.parent.empty() ? nullptr : &parent;
    const int st = kvc_node_put(node, &ns, &key, a.shard, &src, &so, &err);
    if (st != KVC_OK && st != KVC_ERR_EXISTS) return FailStatus("put", "put " + a.keys[0], err);
    if (a.out == Output::kJson) {
      std::printf("%s\n", nlohmann::json{{"key", a.keys[0]}, {"shard", a.shard}, {"bytes", data.size()},
                                         {"status", kvc_status_name(st)}}
                              .dump()
                              .c_str());
    } else {
      std::printf("%s: %s\n", a.keys[0].c_str(), st == KVC_OK ? "stored" : "already present");
    }
    return kExitOk;
  });
}

int Rm(const NodeArgs& a) {
  kvc_namespace_options ns = NamespaceOptionsOf(a.ns);
  int rc = kExitOk;
  kvc_key key;
  if (!ParseKey(a.keys.at(0), &key, "rm", &rc)) return rc;
  return WithNode("rm", a, [&](kvc_node* node) {
    kvc_error err{};
    if (kvc_node_delete(node, &ns, &key, &err) != KVC_OK) return FailStatus("rm", "rm " + a.keys[0], err);
    if (a.out == Output::kJson) {
      std::printf("%s\n", nlohmann::json{{"key", a.keys[0]}, {"deleted", true}}.dump().c_str());
    } else {
      std::printf("%s: deleted\n", a.keys[0].c_str());
    }
    return kExitOk;
  });
}

}  // namespace

Registration RegisterStat(CLI::App& root) {
  auto a = std::make_shared<NodeArgs>();
  auto* app = root.add_subcommand("stat", "Show a node's stats");
  AddConnection(app, a.get());
  return {app, [a] { return Stat(*a); }};
}

Registration RegisterMatch(CLI::App& root) {
  auto a = std::make_shared<NodeArgs>();
  auto* app = root.add_subcommand("match", "How many leading blocks a node holds");
  AddConnection(app, a.get());
  AddNamespaceFlags(app, &a->ns);
  app->add_option("--key", a->keys, "Block keys of a chain (32 hex digits each)");
  app->add_option("--tokens", a->tokens, "Tokens, comma separated (the node hashes them)");
  return {app, [a] { return Match(*a); }};
}

Registration RegisterGet(CLI::App& root) {
  auto a = std::make_shared<NodeArgs>();
  auto* app = root.add_subcommand("get", "Read a block shard from a node");
  AddConnection(app, a.get());
  AddNamespaceFlags(app, &a->ns);
  app->add_option("--key", a->keys, "Block key (32 hex digits)")->required()->expected(1);
  app->add_option("--shard", a->shard, "Shard (default 0)");
  app->add_option("--file", a->file, "Write the bytes here (default: stdout)");
  return {app, [a] { return Get(*a); }};
}

Registration RegisterPut(CLI::App& root) {
  auto a = std::make_shared<NodeArgs>();
  auto* app = root.add_subcommand("put", "Store a block shard on a node");
  AddConnection(app, a.get());
  AddNamespaceFlags(app, &a->ns);
  app->add_option("--key", a->keys, "Block key (32 hex digits)")->required()->expected(1);
  app->add_option("--shard", a->shard, "Shard (default 0)");
  app->add_option("--file", a->file, "The shard's bytes (exactly its size)")->required();
  app->add_option("--ttl-ms", a->ttl_ms, "Time to live (default: none)");
  app->add_option("--parent", a->parent, "Key of the block before it in its chain");
  return {app, [a] { return Put(*a); }};
}

Registration RegisterRm(CLI::App& root) {
  auto a = std::make_shared<NodeArgs>();
  auto* app = root.add_subcommand("rm", "Delete a block from a node");
  AddConnection(app, a.get());
  AddNamespaceFlags(app, &a->ns);
  app->add_option("--key", a->keys, "Block key (32 hex digits)")->required()->expected(1);
  return {app, [a] { return Rm(*a); }};
}

}  // namespace kvc::cli
