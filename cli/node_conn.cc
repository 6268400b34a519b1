#include "node_conn.h"

#include <cstdlib>
#include <fstream>

namespace kvc::cli {

void AddNodeConnFlags(CLI::App* app, NodeConnFlags* f) {
  app->add_option("--tls-ca", f->tls_ca, "PEM file of the CA that signed the node's certificate (TLS)");
  app->add_option("--tls-cert", f->tls_cert, "This client's certificate (PEM), when the node asks for one");
  app->add_option("--tls-key", f->tls_key, "This client's private key (PEM)");
  app->add_option("--admin-token-file", f->admin_token_file,
                  "File holding the node's admin token (else $KVC_ADMIN_TOKEN)");
  app->add_option("--max-retries", f->max_retries, "Retries of idempotent calls when the node is unavailable (default 2)");
  app->add_flag("--no-retries", f->no_retries, "Never retry");
}

bool ReadAdminToken(const std::string& file, std::string* token, std::string* error) {
  token->clear();
  if (file.empty()) {
    if (const char* e = std::getenv("KVC_ADMIN_TOKEN")) *token = e;
    while (!token->empty() && (token->back() == '\n' || token->back() == '\r')) token->pop_back();
    return true;
  }
  std::ifstream in(file);
  if (!in) {
    *error = "cannot read the admin token file " + file;
    return false;
  }
  std::getline(in, *token);
  while (!token->empty() && (token->back() == '\r' || token->back() == ' ' || token->back() == '\t'))
    token->pop_back();
  if (token->empty()) {
    *error = "the admin token file " + file + " is empty";
    return false;
  }
  return true;
}

bool ApplyNodeConnFlags(const NodeConnFlags& f, std::string* admin_token, kvc_node_options* o, std::string* error) {
  if (!ReadAdminToken(f.admin_token_file, admin_token, error)) return false;
  o->tls_ca_path = f.tls_ca.empty() ? nullptr : f.tls_ca.c_str();
  o->tls_cert_path = f.tls_cert.empty() ? nullptr : f.tls_cert.c_str();
  o->tls_key_path = f.tls_key.empty() ? nullptr : f.tls_key.c_str();
  o->admin_token = admin_token->empty() ? nullptr : admin_token->c_str();
  o->max_retries = f.no_retries ? KVC_NODE_NO_RETRIES : f.max_retries;
  return true;
}

void AddNamespaceFlags(CLI::App* app, NamespaceFlags* f) {
  app->add_option("--model", f->model, "Model id")->required();
  app->add_option("--revision", f->revision, "Weights revision")->required();
  app->add_option("--adapter", f->adapter, "LoRA adapter id and revision");
  app->add_option("--hash", f->hash, "sha256 (default) or xxh3-128");
  app->add_option("--dtype", f->dtype, "KV dtype (default fp16)");
  app->add_option("--layers", f->layers, "Layers")->required();
  app->add_option("--kv-heads", f->kv_heads, "KV heads")->required();
  app->add_option("--head-dim", f->head_dim, "Head dimension")->required();
  app->add_option("--block-tokens", f->block_tokens, "Tokens per block")->required();
  app->add_option("--shards", f->shards, "Tensor-parallel shards (default 1)");
}

kvc_namespace_options NamespaceOptionsOf(const NamespaceFlags& f) {
  kvc_namespace_options o = KVC_NAMESPACE_OPTIONS_INIT;
  o.hash = f.hash.empty() ? nullptr : f.hash.c_str();
  o.model = f.model.c_str();
  o.revision = f.revision.c_str();
  o.adapter = f.adapter.empty() ? nullptr : f.adapter.c_str();
  o.dtype = f.dtype.c_str();
  o.layers = f.layers;
  o.kv_heads = f.kv_heads;
  o.head_dim = f.head_dim;
  o.block_tokens = f.block_tokens;
  o.shards = f.shards;
  return o;
}

}  // namespace kvc::cli
