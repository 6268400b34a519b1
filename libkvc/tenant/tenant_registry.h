// TenantRegistry: the tenants of a cache, kept in a JSON file (a cache
// directory's `tenants.json`, or any config file).
//
// A tenant has a name, a credential, an isolation mode and byte quotas per
// tier. The file stores a SHA-256 of each credential, never the credential
// itself, and each isolated tenant's secret salt (32 random bytes): the salt
// enters the key seed of every namespace the tenant opens, so equal prompts
// of two isolated tenants produce unrelated keys. A shared tenant's
// namespaces carry no tenant salt: they are one pool with every other shared
// tenant's namespaces of the same model. A caller never supplies the salt.
//
// Quotas are hard limits on a tenant's resident bytes per tier (0: none).
// `borrow` lets a tenant exceed its quota while the tier has free space; the
// excess is the first to be evicted when anyone needs room.
//
// Thread-safe: a loaded registry is a snapshot that Reload replaces at once
// (readers hold the snapshot they started with); edits go through the static
// file functions, which lock the file (flock) and replace it atomically.
#ifndef KVC_TENANT_TENANT_REGISTRY_H_
#define KVC_TENANT_TENANT_REGISTRY_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/status.h"

namespace kvc {

enum class Isolation { kIsolated, kShared };

struct TenantConfig {
  std::string name;
  Isolation isolation = Isolation::kIsolated;
  uint64_t host_quota_bytes = 0;  // 0: no quota
  uint64_t ssd_quota_bytes = 0;
  bool borrow = false;
  std::string credential_sha256;  // hex
  std::string salt;               // raw bytes; empty for shared tenants
  uint32_t id = 0;                // stable, 1-based; 0 means "no tenant"
  // Taken up from an etcd cluster's configuration (SyncCluster); kept in
  // the file as "cluster": true. Local edits leave such tenants alone.
  bool cluster = false;
};

// One loaded list of tenants, immutable, shared by whoever reads it. A
// range-for over TenantRegistry::tenants() keeps it alive for the loop.
class TenantList {
 public:
  TenantList() : list_(std::make_shared<const std::vector<TenantConfig>>()) {}
  explicit TenantList(std::shared_ptr<const std::vector<TenantConfig>> list) : list_(std::move(list)) {}
  std::vector<TenantConfig>::const_iterator begin() const { return list_->begin(); }
  std::vector<TenantConfig>::const_iterator end() const { return list_->end(); }
  bool empty() const { return list_->empty(); }
  size_t size() const { return list_->size(); }

 private:
  std::shared_ptr<const std::vector<TenantConfig>> list_;
};

class TenantRegistry {
 public:
  TenantRegistry() = default;
  TenantRegistry(TenantRegistry&& o) noexcept;
  TenantRegistry& operator=(TenantRegistry&& o) noexcept;

  // Loads `path` (a file, or a directory holding tenants.json). A missing
  // file is an empty registry. KVC_ERR_PARSE for a malformed file.
  static Result<TenantRegistry> Load(const std::string& path);
  // Reads `path` again and replaces the snapshot at once; on an error the
  // old snapshot stays. Safe against concurrent readers.
  Status Reload(const std::string& path);

  // Finds `name` and checks `credential` in constant time.
  // KVC_ERR_NOT_FOUND is never returned for a wrong name: both a wrong name
  // and a wrong credential are KVC_ERR_PERMISSION, so names cannot be probed.
  Result<TenantConfig> Authenticate(const std::string& name, const std::string& credential) const;
  // The current snapshot.
  TenantList tenants() const;
  std::optional<TenantConfig> Find(const std::string& name) const;
  // Ids handed out so far are below this (ids are never reused): an id
  // below it that is not in tenants() belongs to a deleted tenant.
  uint32_t next_id() const;

  // Edits of the file at `path`. Create returns the new tenant's credential
  // (shown once; only its hash is kept).
  static Result<std::string> Create(const std::string& path, TenantConfig config);
  static Status SetQuota(const std::string& path, const std::string& name,
                         std::optional<uint64_t> host, std::optional<uint64_t> ssd,
                         std::optional<bool> borrow);
  static Status Delete(const std::string& path, const std::string& name);

  // Mints a new tenant's secrets into `config` (credential_sha256, and a
  // 32-byte salt for an isolated tenant; a shared tenant's salt cleared)
  // and returns the credential. Checks the name. Create uses it; so does
  // `kvc cluster tenant create`, which writes the result to etcd.
  static Result<std::string> Mint(TenantConfig& config);

  // Makes the file's cluster tenants (TenantConfig::cluster) exactly
  // `cluster_tenants` (their ids are ignored): a cluster tenant no longer
  // listed is deleted; a listed one whose credential hash, salt or
  // isolation differ from the file's tenant of that name (cluster or local)
  // replaces it under a new id (so its blocks are dropped, as for a delete);
  // one with only other quotas keeps its id and takes the quotas; a new one
  // is added with a new id. Local tenants of other names stay. Writes the
  // file only when something changed; *changed (may be null) says whether.
  static Status SyncCluster(const std::string& path, const std::vector<TenantConfig>& cluster_tenants,
                            bool* changed);

  // The public view of the tenants (no credential hash, no salt).
  nlohmann::json PublicJson() const;
  // Compares two secrets in constant time (for their common length).
  static bool SecretEquals(const std::string& a, const std::string& b);
  static nlohmann::json PublicJson(const TenantConfig& t);

  // "isolated" / "shared".
  static Result<Isolation> ParseIsolation(const std::string& s);
  static const char* IsolationName(Isolation i);

 private:
  mutable std::mutex mu_;
  TenantList tenants_;    // GUARDED_BY(mu_)
  uint32_t next_id_ = 1;  // GUARDED_BY(mu_)
};

}  // namespace kvc

#endif  // KVC_TENANT_TENANT_REGISTRY_H_
