// The connection flags that every `--node ADDR` command shares: TLS files
// and the admin token (never taken from a flag's value, so that it does not
// show in `ps`: from --admin-token-file or KVC_ADMIN_TOKEN).
#ifndef KVC_CLI_NODE_CONN_H_
#define KVC_CLI_NODE_CONN_H_

#include <string>

#include "command.h"

namespace kvc::cli {

struct NodeConnFlags {
  std::string tls_ca, tls_cert, tls_key;
  std::string admin_token_file;
  uint32_t max_retries = 0;  // 0: the library's default
  bool no_retries = false;
};

// Adds --tls-ca, --tls-cert, --tls-key, --admin-token-file, --max-retries
// and --no-retries to `app`.
void AddNodeConnFlags(CLI::App* app, NodeConnFlags* f);

// The admin token: the first line of `file` when given, else
// $KVC_ADMIN_TOKEN, else empty. False (with *error set) when the file cannot
// be read or is empty.
bool ReadAdminToken(const std::string& file, std::string* token, std::string* error);

// Fills the TLS, admin and retry fields of `o` from `f` (the strings stay
// owned by `f` and `admin_token`). False with *error when the token cannot
// be read.
bool ApplyNodeConnFlags(const NodeConnFlags& f, std::string* admin_token, kvc_node_options* o, std::string* error);

// The namespace flags of the commands that name one on a node or cluster
// (--model, --revision, --adapter, --hash, --dtype, --layers, --kv-heads,
// --head-dim, --block-tokens, --shards).
struct NamespaceFlags {
  std::string hash, model, revision, adapter, dtype = "fp16";
  uint32_t layers = 0, kv_heads = 0, head_dim = 0, block_tokens = 0, shards = 1;
};

void AddNamespaceFlags(CLI::App* app, NamespaceFlags* f);

// The namespace options of `f` (the strings stay owned by `f`).
kvc_namespace_options NamespaceOptionsOf(const NamespaceFlags& f);

}  // namespace kvc::cli

#endif  // KVC_CLI_NODE_CONN_H_
