#include "tenant/tenant_registry.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace kvc {
namespace {

constexpr const char* kFormat = "kvc-tenants-v1";

std::string Hex(const unsigned char* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = d[p[i] >> 4];
    s[2 * i + 1] = d[p[i] & 15];
  }
  return s;
}

Result<std::string> Unhex(const std::string& h) {
  if (h.size() % 2) return ParseError("odd-length hex string");
  std::string out(h.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    auto v = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    int a = v(h[2 * i]), b = v(h[2 * i + 1]);
    if (a < 0 || b < 0) return ParseError("bad hex digit");
    out[i] = static_cast<char>(a * 16 + b);
  }
  return out;
}

std::string Sha256Hex(const std::string& s) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), md);
  return Hex(md, sizeof md);
}

Result<std::string> RandomBytes(size_t n) {
  std::string b(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(b.data()), static_cast<int>(n)) != 1)
    return Internal("the system random generator failed");
  return b;
}

std::string FileOf(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return (std::filesystem::path(path) / "tenants.json").string();
  return path;
}

Status ValidName(const std::string& n) {
  if (n.empty() || n.size() > 64) return InvalidArgument("tenant name must be 1 to 64 characters");
  for (char c : n) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.'))
      return InvalidArgument("tenant name '" + n + "' may only hold letters, digits, '_', '-' and '.'");
  }
  return Status::Ok();
}

nlohmann::json ToJson(const TenantConfig& t) {
  return {{"name", t.name},
          {"id", t.id},
          {"isolation", TenantRegistry::IsolationName(t.isolation)},
          {"host_quota_bytes", t.host_quota_bytes},
          {"ssd_quota_bytes", t.ssd_quota_bytes},
          {"borrow", t.borrow},
          {"credential_sha256", t.credential_sha256},
          {"salt_hex", Hex(reinterpret_cast<const unsigned char*>(t.salt.data()), t.salt.size())},
          {"cluster", t.cluster}};
}

struct FileState {
  uint32_t next_id = 1;
  std::vector<TenantConfig> tenants;
};

Result<FileState> ReadFile(const std::string& file) {
  FileState st;
  std::ifstream in(file);
  if (!in) {
    if (errno == ENOENT) return st;
    return IoError("cannot read " + file + ": " + std::strerror(errno));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    auto j = nlohmann::json::parse(ss.str());
    if (!j.is_object() || j.value("format", "") != kFormat)
      return ParseError(file + ": not a kvc tenants file (want \"format\": \"" + kFormat + "\")");
    st.next_id = j.at("next_id").get<uint32_t>();
    for (const auto& t : j.at("tenants")) {
      TenantConfig c;
      c.name = t.at("name").get<std::string>();
      c.id = t.at("id").get<uint32_t>();
      auto iso = TenantRegistry::ParseIsolation(t.at("isolation").get<std::string>());
      if (!iso.ok()) return ParseError(file + ": tenant " + c.name + ": " + iso.status().message());
      c.isolation = *iso;
      c.host_quota_bytes = t.at("host_quota_bytes").get<uint64_t>();
      c.ssd_quota_bytes = t.at("ssd_quota_bytes").get<uint64_t>();
      c.borrow = t.at("borrow").get<bool>();
      c.credential_sha256 = t.at("credential_sha256").get<std::string>();
      auto salt = Unhex(t.at("salt_hex").get<std::string>());
      if (!salt.ok()) return ParseError(file + ": tenant " + c.name + ": salt: " + salt.status().message());
      c.salt = *salt;
      c.cluster = t.value("cluster", false);
      st.tenants.push_back(std::move(c));
    }
  } catch (const nlohmann::json::exception& e) {
    return ParseError(file + ": " + e.what());
  }
  return st;
}

Status WriteFile(const std::string& file, const FileState& st) {
  nlohmann::json j{{"format", kFormat}, {"next_id", st.next_id}, {"tenants", nlohmann::json::array()}};
  for (const auto& t : st.tenants) j["tenants"].push_back(ToJson(t));
  const std::string tmp = file + ".tmp";
  const std::string body = j.dump(2) + "\n";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return IoError("cannot write " + tmp + ": " + std::strerror(errno));
  bool ok = ::write(fd, body.data(), body.size()) == static_cast<ssize_t>(body.size()) && ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), file.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return IoError("cannot write " + file + ": " + std::strerror(ok ? errno : saved));
  }
  std::string dir = std::filesystem::path(file).parent_path().string();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

// A local edit of a tenant an etcd cluster's configuration owns: it would
// be undone (or lose the tenant's blocks) at the next sync.
Status ClusterOwned(const std::string& name) {
  return Status(Code::kPermission, "tenant '" + name +
                                       "' comes from the cluster's configuration in etcd: change it there "
                                       "(kvc cluster tenant), not on one node");
}

// Runs `edit` on the file's state under an exclusive lock, then saves it.
template <class F>
Status Edit(const std::string& path, F&& edit) {
  const std::string file = FileOf(path);
  const std::string lock = file + ".lock";
  int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return IoError("cannot open " + lock + ": " + std::strerror(errno));
  ::flock(fd, LOCK_EX);
  Status s = [&]() -> Status {
    auto st = ReadFile(file);
    if (!st.ok()) return st.status();
    KVC_RETURN_IF_ERROR(edit(*st));
    return WriteFile(file, *st);
  }();
  ::flock(fd, LOCK_UN);
  ::close(fd);
  return s;
}

}  // namespace

Result<Isolation> TenantRegistry::ParseIsolation(const std::string& s) {
  if (s == "isolated") return Isolation::kIsolated;
  if (s == "shared") return Isolation::kShared;
  return InvalidArgument("isolation must be 'isolated' or 'shared', not '" + s + "'");
}

const char* TenantRegistry::IsolationName(Isolation i) {
  return i == Isolation::kIsolated ? "isolated" : "shared";
}

TenantRegistry::TenantRegistry(TenantRegistry&& o) noexcept {
  std::lock_guard<std::mutex> lk(o.mu_);
  tenants_ = o.tenants_;
  next_id_ = o.next_id_;
}

TenantRegistry& TenantRegistry::operator=(TenantRegistry&& o) noexcept {
  if (this == &o) return *this;
  std::scoped_lock lk(mu_, o.mu_);
  tenants_ = o.tenants_;
  next_id_ = o.next_id_;
  return *this;
}

Result<TenantRegistry> TenantRegistry::Load(const std::string& path) {
  TenantRegistry r;
  KVC_RETURN_IF_ERROR(r.Reload(path));
  return r;
}

Status TenantRegistry::Reload(const std::string& path) {
  auto st = ReadFile(FileOf(path));
  if (!st.ok()) return st.status();
  TenantList list(std::make_shared<const std::vector<TenantConfig>>(std::move(st->tenants)));
  std::lock_guard<std::mutex> lk(mu_);
  tenants_ = std::move(list);
  next_id_ = st->next_id;
  return Status::Ok();
}

TenantList TenantRegistry::tenants() const {
  std::lock_guard<std::mutex> lk(mu_);
  return tenants_;
}

uint32_t TenantRegistry::next_id() const {
  std::lock_guard<std::mutex> lk(mu_);
  return next_id_;
}

std::optional<TenantConfig> TenantRegistry::Find(const std::string& name) const {
  for (const auto& t : tenants())
    if (t.name == name) return t;
  return std::nullopt;
}

bool TenantRegistry::SecretEquals(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

Result<TenantConfig> TenantRegistry::Authenticate(const std::string& name,
                                                  const std::string& credential) const {
  const std::string got = Sha256Hex(credential);
  const TenantList list = tenants();
  const TenantConfig* t = nullptr;
  for (const auto& c : list)
    if (c.name == name) t = &c;
  // Compare even when the name is unknown, so timing says nothing.
  const std::string want = t ? t->credential_sha256 : std::string(64, '0');
  const bool same = SecretEquals(want, got);
  if (t == nullptr || !same) return Status(Code::kPermission, "wrong tenant name or credential");
  return *t;
}

Result<std::string> TenantRegistry::Mint(TenantConfig& config) {
  KVC_RETURN_IF_ERROR(ValidName(config.name));
  auto secret = RandomBytes(24);
  if (!secret.ok()) return secret.status();
  const std::string credential =
      "kvc_" + Hex(reinterpret_cast<const unsigned char*>(secret->data()), secret->size());
  config.credential_sha256 = Sha256Hex(credential);
  if (config.isolation == Isolation::kIsolated) {
    auto salt = RandomBytes(32);
    if (!salt.ok()) return salt.status();
    config.salt = *salt;
  } else {
    config.salt.clear();
  }
  return credential;
}

Result<std::string> TenantRegistry::Create(const std::string& path, TenantConfig config) {
  auto minted = Mint(config);
  if (!minted.ok()) return minted.status();
  const std::string credential = std::move(*minted);
  Status s = Edit(path, [&](FileState& st) -> Status {
    for (const auto& t : st.tenants)
      if (t.name == config.name) return Status(Code::kExists, "tenant '" + config.name + "' already exists");
    config.id = st.next_id++;
    st.tenants.push_back(config);
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return credential;
}

Status TenantRegistry::SetQuota(const std::string& path, const std::string& name,
                                std::optional<uint64_t> host, std::optional<uint64_t> ssd,
                                std::optional<bool> borrow) {
  return Edit(path, [&](FileState& st) -> Status {
    for (auto& t : st.tenants) {
      if (t.name != name) continue;
      if (t.cluster) return ClusterOwned(name);
      if (host) t.host_quota_bytes = *host;
      if (ssd) t.ssd_quota_bytes = *ssd;
      if (borrow) t.borrow = *borrow;
      return Status::Ok();
    }
    return NotFound("no tenant named '" + name + "'");
  });
}

Status TenantRegistry::Delete(const std::string& path, const std::string& name) {
  return Edit(path, [&](FileState& st) -> Status {
    for (auto it = st.tenants.begin(); it != st.tenants.end(); ++it) {
      if (it->name == name) {
        if (it->cluster) return ClusterOwned(name);
        st.tenants.erase(it);
        return Status::Ok();
      }
    }
    return NotFound("no tenant named '" + name + "'");
  });
}

Status TenantRegistry::SyncCluster(const std::string& path, const std::vector<TenantConfig>& cluster_tenants,
                                   bool* changed) {
  bool any = false;
  for (const auto& c : cluster_tenants) KVC_RETURN_IF_ERROR(ValidName(c.name));
  const std::string file = FileOf(path);
  // Read first without the lock: most syncs change nothing.
  auto cur = ReadFile(file);
  if (!cur.ok()) return cur.status();
  auto plan = [&](FileState& st) -> bool {
    bool edit = false;
    std::vector<TenantConfig> out;
    for (auto& t : st.tenants) {
      const TenantConfig* want = nullptr;
      for (const auto& c : cluster_tenants)
        if (c.name == t.name) want = &c;
      if (want == nullptr) {
        if (t.cluster) {
          edit = true;  // a cluster tenant no longer listed: deleted
          continue;
        }
        out.push_back(std::move(t));
        continue;
      }
      const bool same_identity = t.cluster && t.credential_sha256 == want->credential_sha256 &&
                                 t.salt == want->salt && t.isolation == want->isolation;
      if (!same_identity) {
        edit = true;  // replaced below under a new id
        continue;
      }
      if (t.host_quota_bytes != want->host_quota_bytes || t.ssd_quota_bytes != want->ssd_quota_bytes ||
          t.borrow != want->borrow) {
        t.host_quota_bytes = want->host_quota_bytes;
        t.ssd_quota_bytes = want->ssd_quota_bytes;
        t.borrow = want->borrow;
        edit = true;
      }
      out.push_back(std::move(t));
    }
    for (const auto& c : cluster_tenants) {
      bool have = false;
      for (const auto& t : out)
        if (t.name == c.name) have = true;
      if (have) continue;
      TenantConfig n = c;
      n.cluster = true;
      n.id = st.next_id++;
      out.push_back(std::move(n));
      edit = true;
    }
    st.tenants = std::move(out);
    return edit;
  };
  {
    FileState probe = *cur;
    if (!plan(probe)) {
      if (changed) *changed = false;
      return Status::Ok();
    }
  }
  Status s = Edit(path, [&](FileState& st) -> Status {
    any = plan(st);
    return Status::Ok();
  });
  if (changed) *changed = s.ok() && any;
  return s;
}

nlohmann::json TenantRegistry::PublicJson(const TenantConfig& t) {
  return {{"name", t.name},
          {"id", t.id},
          {"isolation", IsolationName(t.isolation)},
          {"host_quota_bytes", t.host_quota_bytes},
          {"ssd_quota_bytes", t.ssd_quota_bytes},
          {"borrow", t.borrow}};
}

nlohmann::json TenantRegistry::PublicJson() const {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& t : tenants()) a.push_back(PublicJson(t));
  return a;
}

}  // namespace kvc
