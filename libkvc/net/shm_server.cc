// Compiled only into kvc_net (libkvc/net/CMakeLists.txt), which defines
// KVC_NET_BUILD; kvc_core's source glob sees an empty file.
#ifdef KVC_NET_BUILD
#include "net/shm_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "net/metrics.h"
#include "net/node_service.h"
#include "net/shm_protocol.h"

namespace kvc::net {

using shm::Reader;
using shm::Writer;

namespace {

// How often a connection's credential is checked again.
constexpr auto kRecheck = std::chrono::milliseconds(100);

Status Errno(Code code, const std::string& what) { return Status(code, what + ": " + std::strerror(errno)); }

Result<sockaddr_un> AddressOf(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.empty()) return InvalidArgument("the unix socket path is empty");
  if (path.size() >= sizeof a.sun_path)
    return InvalidArgument("the unix socket path '" + path + "' is longer than " +
                           std::to_string(sizeof a.sun_path - 1) + " bytes");
  std::memcpy(a.sun_path, path.data(), path.size());
  return a;
}

// Whether a node listens on the socket file at `a`.
bool Listening(const sockaddr_un& a) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const bool live = connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return live;
}

bool WriteAll(int fd, const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    const ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    c += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// A connection's input: frames are parsed where they lie in one buffer,
// and one recv takes whatever has arrived (a release and the request after
// it, sent together, cost one wake-up and one read). The buffer grows only
// as bytes arrive: a peer announcing a large frame and sending little costs
// little memory.
class Input {
 public:
  explicit Input(int fd) : fd_(fd), buf_(kInitial) {}
  // Makes n bytes available at data(); false on the end of the stream or an
  // error.
  bool Need(size_t n) {
    while (end_ - start_ < n) {
      if (end_ == buf_.size()) {
        if (start_ > 0) {
          std::memmove(buf_.data(), buf_.data() + start_, end_ - start_);
          end_ -= start_;
          start_ = 0;
        }
        if (end_ == buf_.size()) buf_.resize(end_ + std::min(kStep, n - end_));
      }
      // Polls for kSpin before blocking: a client's next request often
      // follows within a block's copy, and a thread that went to sleep
      // costs a wake-up (tens of µs on a VM) per request.
      ssize_t r;
      const auto until = std::chrono::steady_clock::now() + kSpin;
      for (;;) {
        r = recv(fd_, buf_.data() + end_, buf_.size() - end_, MSG_DONTWAIT);
        if (r >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK) || std::chrono::steady_clock::now() >= until) break;
        sched_yield();
      }
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) r = recv(fd_, buf_.data() + end_, buf_.size() - end_, 0);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      end_ += static_cast<size_t>(r);
    }
    return true;
  }
  const uint8_t* data() const { return buf_.data() + start_; }
  void Consume(size_t n) {
    start_ += n;
    if (start_ == end_) {
      start_ = end_ = 0;
      if (buf_.size() > kStep) std::vector<uint8_t>(kInitial).swap(buf_);  // after a large frame
    }
  }

 private:
  static constexpr size_t kInitial = 64 << 10, kStep = 256 << 10;
  static constexpr auto kSpin = std::chrono::microseconds(50);
  const int fd_;
  std::vector<uint8_t> buf_;
  size_t start_ = 0, end_ = 0;
};

// The namespace of an open request (FieldsFromWire checks it).
Result<NamespaceFields> FieldsOf(Reader& r) {
  NodeNamespace n;
  n.hash = r.str();
  n.model = r.str();
  n.revision = r.str();
  n.adapter = r.str();
  n.dtype = r.str();
  n.layers = r.u32();
  n.kv_heads = r.u32();
  n.head_dim = r.u32();
  n.block_tokens = r.u32();
  n.shards = r.u32();
  if (!r.done()) return InvalidArgument("malformed namespace in an open request");
  return FieldsFromWire(n);
}

// The RPC a request is timed as in the node's metrics; kCount: not timed.
Rpc RpcOf(uint32_t op) {
  switch (op) {
    case shm::kStats: return Rpc::kStats;
    case shm::kMatch:
    case shm::kMatchTokens: return Rpc::kMatch;
    case shm::kLoad:
    case shm::kLoadBatch: return Rpc::kLoad;
    case shm::kStoreBegin:
    case shm::kStoreBatchBegin: return Rpc::kStore;
    case shm::kDelete: return Rpc::kDelete;
    case shm::kBumpRevision: return Rpc::kBumpRevision;
    default: return Rpc::kCount;
  }
}

// A batch's item count, checked against kMaxBatchItems.
Status BatchTooBig(uint32_t n) {
  return InvalidArgument("a batch of " + std::to_string(n) + " items: at most " + std::to_string(shm::kMaxBatchItems));
}

// A batch whose n says more or fewer items than its frame carries.
Status BatchLength(uint32_t op, uint32_t n, uint32_t length) {
  return InvalidArgument("malformed batch request (op " + std::to_string(op) + "): " + std::to_string(n) +
                         " items do not fill a body of " + std::to_string(length) + " bytes");
}

BlockKey KeyFrom(const uint8_t* p) {
  BlockKey k;
  std::memcpy(k.bytes.data(), p, k.bytes.size());
  return k;
}

}  // namespace

struct ShmServer::Conn {
  int fd = -1;
  std::thread thread;
  std::atomic<bool> done{false};
  ~Conn() {
    if (thread.joinable()) thread.join();
    if (fd >= 0) close(fd);
  }
};

Result<std::unique_ptr<ShmServer>> ShmServer::Start(Cache& cache, const std::string& path,
                                                    const ShmServerOptions& options) {
  if (cache.host_arena().fd() < 0)
    return InvalidArgument("the same-host path needs a cache opened with a shared arena");
  auto addr = AddressOf(path);
  if (!addr.ok()) return addr.status();
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      return InvalidArgument("'" + path + "' exists and is not a socket; not replacing it");
    if (Listening(*addr)) return Status(Code::kUnavailable, "a node already listens on unix:" + path);
    if (unlink(path.c_str()) != 0 && errno != ENOENT)
      return Errno(Code::kIo, "cannot remove the stale socket '" + path + "'");
  }
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno(Code::kIo, "socket");
  // Mode 0600 at once; connections from other users are also refused by
  // their credentials (SO_PEERCRED) should the umask have let one in first.
  if (bind(fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr) != 0) {
    Status s = Errno(Code::kUnavailable, "cannot bind unix:" + path);
    close(fd);
    return s;
  }
  if (chmod(path.c_str(), 0600) != 0 || listen(fd, 64) != 0) {
    Status s = Errno(Code::kIo, "cannot set up unix:" + path);
    close(fd);
    unlink(path.c_str());
    return s;
  }
  std::unique_ptr<ShmServer> s(new ShmServer(cache, path, options, fd));
  struct stat bound;
  if (stat(path.c_str(), &bound) == 0) {
    s->file_dev_ = bound.st_dev;
    s->file_ino_ = bound.st_ino;
  }
  if (pipe2(s->wake_fd_, O_CLOEXEC) != 0) {
    Status e = Errno(Code::kIo, "pipe");
    s->Stop();
    return e;
  }
  s->acceptor_ = std::thread([p = s.get()] { p->AcceptLoop(); });
  return s;
}

ShmServer::ShmServer(Cache& cache, std::string path, const ShmServerOptions& options, int listen_fd)
    : cache_(cache), path_(std::move(path)), options_(options), listen_fd_(listen_fd) {}

void ShmServer::CountAuthFailure() {
  if (options_.metrics) options_.metrics->CountAuthFailure();
}

ShmServer::~ShmServer() { Stop(); }

void ShmServer::Stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stopping_) return;
    stopping_ = true;
    // Ends every connection: their threads see the end of the stream,
    // release what they hold and return.
    for (auto& c : conns_) shutdown(c->fd, SHUT_RDWR);
  }
  if (wake_fd_[1] >= 0) {
    const char b = 1;
    (void)!write(wake_fd_[1], &b, 1);
  }
  if (acceptor_.joinable()) acceptor_.join();
  std::list<std::unique_ptr<Conn>> conns;
  {
    std::lock_guard<std::mutex> lk(mu_);
    conns.swap(conns_);
  }
  conns.clear();  // joins each thread, closes each socket
  if (listen_fd_ >= 0) {
    // The file is ours only if it is still the socket we bound.
    struct stat b;
    if (stat(path_.c_str(), &b) == 0 && b.st_dev == file_dev_ && b.st_ino == file_ino_) unlink(path_.c_str());
    close(listen_fd_);
    listen_fd_ = -1;
  }
  for (int& f : wake_fd_)
    if (f >= 0) {
      close(f);
      f = -1;
    }
}

void ShmServer::ReapLocked() {
  conns_.remove_if([](const std::unique_ptr<Conn>& c) { return c->done.load(); });
}

void ShmServer::AcceptLoop() {
  for (;;) {
    pollfd p[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_[0], POLLIN, 0}};
    const int n = poll(p, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || (p[1].revents & POLLIN)) return;
    if (!(p[0].revents & POLLIN)) continue;
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    ucred cred{};
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
        (cred.uid != geteuid() && cred.uid != 0)) {
      close(fd);  // another user's process: the arena is not for it
      continue;
    }
    std::lock_guard<std::mutex> lk(mu_);
    ReapLocked();
    if (stopping_ || conns_.size() >= kMaxConnections) {
      close(fd);
      continue;
    }
    auto c = std::make_unique<Conn>();
    c->fd = fd;
    Conn* raw = c.get();
    conns_.push_back(std::move(c));
    raw->thread = std::thread([this, raw] {
      Serve(raw);
      raw->done.store(true);
    });
  }
}

// One connection, request after request, until it ends. Everything it holds
// is in this frame's locals and is given back on the way out.
void ShmServer::Serve(Conn* c) {
  const int fd = c->fd;
  const HostArena& arena = cache_.host_arena();
  bool authed = false, tenant_ok = false, admin_sent = false, admin_ok = false;
  Caller caller;
  // The credential of hello, checked again now and then (kRecheck): a
  // tenant deleted from the tenants file loses its connections too.
  std::string tenant_name, tenant_credential;
  auto checked = std::chrono::steady_clock::now();
  std::vector<NamespaceState*> spaces;
  std::map<std::string, uint32_t> space_ids;
  std::unordered_set<uint64_t> pins;
  std::unordered_map<uint64_t, Reservation> reservations;
  uint64_t next_reservation = 1;
  Input in(fd);

  auto offset_of = [&](const uint8_t* p) { return static_cast<uint64_t>(p - arena.base()); };
  auto space = [&](uint32_t h) -> Result<NamespaceState*> {
    if (h >= spaces.size())
      return InvalidArgument("namespace handle " + std::to_string(h) + " was not opened on this connection");
    return spaces[h];
  };
  // The namespace of handle `h`, with `shard` checked against it.
  auto space_shard = [&](uint32_t h, uint32_t shard) -> Result<NamespaceState*> {
    auto ns = space(h);
    if (ns.ok() && shard >= (*ns)->shards)
      return InvalidArgument("shard " + std::to_string(shard) + " is out of range: the namespace has " +
                             std::to_string((*ns)->shards));
    return ns;
  };

  for (;;) {
    shm::FrameHeader h;
    if (!in.Need(sizeof h)) break;
    std::memcpy(&h, in.data(), sizeof h);
    Writer w;
    bool close_after = false;
    bool reply = true;
    int pass_fd = -1;
    auto status = [&](const Status& s) {
      w.i32(static_cast<int32_t>(s.code()));
      w.str(s.ok() ? "" : s.message());
    };
    // A load's answer for a view it acquired: pin id (0 and the view given
    // back for a size-only load), arena offset, size.
    auto answer_view = [&](const View& v, bool size_only) {
      if (size_only) {
        (void)cache_.ReleaseView(v.id);
        w.u64(0);
      } else {
        pins.insert(v.id);
        w.u64(v.id);
        if (options_.metrics) options_.metrics->CountLoad(caller.tenant, v.size);
      }
      w.u64(offset_of(v.data));
      w.u64(v.size);
    };
    // A reservation for a store of this connection (the admission and the
    // metrics of a refusal are the caller's).
    auto begin_store = [&](NamespaceState& ns, const uint8_t* key, uint32_t shard, uint64_t ttl,
                           const BlockKey* parent, Reservation* res) {
      StoreParams p;
      p.ttl_ms = ttl;
      p.tenant = caller.tenant;
      p.write_through = options_.write_through && cache_.ssd() != nullptr;
      p.parent = parent;
      return cache_.BeginStore(ns, KeyFrom(key), shard, p, res);
    };
    // Holds a reservation on this connection; answers its id, arena offset
    // and size.
    auto hold = [&](const Reservation& res) {
      const uint64_t id = next_reservation++;
      w.u64(id);
      w.u64(offset_of(res.data));
      w.u64(res.size);
      reservations.emplace(id, res);
    };
    // Ends a reservation taken off this connection: committed when `commit`
    // and the write fence (`admit`) allows, aborted otherwise; a commit's
    // outcome is counted.
    auto finish_store = [&](Reservation res, bool commit, const Status& admit) {
      if (!commit) {
        cache_.Abort(res);
        return Status::Ok();
      }
      const uint64_t size = res.size;
      Status cs = admit;
      if (cs.ok()) {
        cs = cache_.Commit(res);
      } else {
        cache_.Abort(res);
      }
      if (options_.metrics) options_.metrics->CountStore(caller.tenant, cs.code(), size);
      return cs;
    };
    if (h.op == 0 || h.op > shm::kMaxOp || h.length > shm::kMaxFrameBytes) {
      // The framing cannot be trusted any more: answer, then hang up.
      status(InvalidArgument(h.length > shm::kMaxFrameBytes
                                 ? "a frame of " + std::to_string(h.length) + " bytes is over the limit of " +
                                       std::to_string(shm::kMaxFrameBytes)
                                 : "unknown request op " + std::to_string(h.op)));
      const std::string f = w.Frame(h.op);
      WriteAll(fd, f.data(), f.size());
      break;
    }
    if (!in.Need(sizeof h + h.length)) break;
    const uint8_t* body = in.data() + sizeof h;
    Reader r(body, h.length);
    const auto malformed = [&] { return InvalidArgument("malformed request (op " + std::to_string(h.op) + ")"); };

    bool still = true;
    if (authed && tenant_ok && caller.tenant != 0 && h.op != shm::kRelease) {
      const auto now = std::chrono::steady_clock::now();
      if (now - checked >= kRecheck) {
        auto t = cache_.Authenticate(tenant_name, tenant_credential);
        still = t.ok() && t->id == caller.tenant;
        checked = now;
      }
    }
    if (!authed && h.op != shm::kHello) {
      status(Status(Code::kPermission, "the first request must be hello"));
      close_after = true;
    } else if (!still) {
      status(Status(Code::kPermission, "wrong or missing credential"));
      close_after = true;
    } else if (authed && !tenant_ok && h.op != shm::kStats && h.op != shm::kHello && h.op != shm::kRelease) {
      status(Status(Code::kPermission, "wrong or missing credential"));  // an admin-only connection
    } else {
      std::optional<Metrics::Call> timer;
      if (options_.metrics && RpcOf(h.op) != Rpc::kCount) timer.emplace(options_.metrics, RpcOf(h.op));
      switch (h.op) {
        case shm::kHello: {
          const uint32_t magic = r.u32(), version = r.u32();
          const std::string tenant = r.str(), credential = r.str(), admin = r.str();
          close_after = true;
          if (authed) {
            status(InvalidArgument("a second hello"));
          } else if (!r.done() || magic != shm::kMagic) {
            status(InvalidArgument("not a kvc same-host client (bad hello)"));
          } else if (version != shm::kVersion) {
            status(InvalidArgument("protocol version " + std::to_string(version) + " is not " +
                                   std::to_string(shm::kVersion)));
          } else {
            // As NodeService::Authenticate: one answer for every failure.
            // The admin token, when sent, serves Stats (the whole node), as
            // over gRPC; a connection with a right admin token and no
            // tenant may call nothing else.
            admin_sent = !admin.empty();
            admin_ok = admin_sent && !options_.admin_token.empty() &&
                       TenantRegistry::SecretEquals(admin, options_.admin_token);
            const bool has_tenants = !cache_.tenants().tenants().empty();
            if (tenant.empty() && credential.empty()) {
              tenant_ok = !has_tenants;
            } else if (has_tenants) {
              auto t = cache_.Authenticate(tenant, credential);
              tenant_ok = t.ok();
              if (tenant_ok) {
                caller.tenant = t->id;
                tenant_name = tenant;
                tenant_credential = credential;
                caller.name = t->name;
                if (t->isolation == Isolation::kIsolated) caller.salt = t->salt;
              }
            }
            if (!tenant_ok || (admin_sent && !admin_ok)) CountAuthFailure();
            if (!tenant_ok && !admin_ok) {
              status(Status(Code::kPermission, "wrong or missing credential"));
              break;
            }
            authed = true;
            close_after = false;
            status(Status::Ok());
            w.u64(arena.size());
            pass_fd = arena.fd();
          }
          break;
        }
        case shm::kStats: {
          if (!r.done()) {
            status(malformed());
            break;
          }
          // As NodeService::Stats: the whole node with the admin token (or
          // on a node without tenants), else the tenant's own counters.
          if (admin_sent && !admin_ok) {
            status(Status(Code::kPermission, "wrong or missing admin token"));
            break;
          }
          nlohmann::json j = cache_.StatsJson();
          if (admin_ok || caller.tenant == 0) {
            j["scope"] = "node";
          } else {
            j = TenantStatsView(j, caller.tenant, caller.name,
                                options_.metrics ? options_.metrics->Traffic(caller.tenant) : TenantTraffic{});
          }
          status(Status::Ok());
          w.str(j.dump());
          break;
        }
        case shm::kOpen: {
          std::string id(reinterpret_cast<const char*>(body), h.length);
          auto it = space_ids.find(id);
          if (it != space_ids.end()) {
            status(Status::Ok());
            w.u32(it->second);
            break;
          }
          auto fields = FieldsOf(r);
          if (!fields.ok()) {
            status(fields.status());
            break;
          }
          if (spaces.size() >= shm::kMaxNamespacesPerConnection) {
            status(InvalidArgument("this connection opened " + std::to_string(spaces.size()) + " namespaces"));
            break;
          }
          fields->salt = caller.salt;  // the tenant's, never the caller's
          auto ns = cache_.OpenNamespace(*fields);
          if (!ns.ok()) {
            status(ns.status());
            break;
          }
          const uint32_t handle = static_cast<uint32_t>(spaces.size());
          spaces.push_back(*ns);
          space_ids.emplace(std::move(id), handle);
          status(Status::Ok());
          w.u32(handle);
          break;
        }
        case shm::kMatch:
        case shm::kMatchTokens: {
          const uint32_t h_ns = r.u32(), n = r.u32();
          const bool tokens = h.op == shm::kMatchTokens;
          const size_t max = tokens ? kMaxMatchTokens : kMaxMatchKeys;
          if (!r.ok() || n > max) {
            status(r.ok() ? InvalidArgument("more than " + std::to_string(max) + (tokens ? " tokens" : " keys"))
                          : malformed());
            break;
          }
          const uint8_t* p = r.take(static_cast<size_t>(n) * (tokens ? 4 : 16));
          auto ns = space(h_ns);
          if (!r.done()) {
            status(malformed());
            break;
          }
          if (!ns.ok()) {
            status(ns.status());
            break;
          }
          std::vector<BlockKey> keys;
          if (tokens) {
            const uint32_t bt = (*ns)->fields.layout.block_tokens;
            if (n < bt) {
              status(InvalidArgument("need at least one block of " + std::to_string(bt) + " tokens"));
              break;
            }
            std::vector<uint32_t> t(n);
            std::memcpy(t.data(), p, static_cast<size_t>(n) * 4);
            keys.resize(n / bt);
            (*ns)->hasher.Keys({t.data(), t.size()}, keys.data());
          } else {
            keys.reserve(n);
            for (uint32_t i = 0; i < n; ++i) keys.push_back(KeyFrom(p + 16 * i));
          }
          std::vector<uint8_t> tiers(keys.size(), 0);
          const size_t blocks = cache_.Match(**ns, keys, tiers.data(), caller.tenant);
          status(Status::Ok());
          w.u64(blocks);
          w.u32(static_cast<uint32_t>(keys.size()));
          w.raw(tiers.data(), tiers.size());
          if (tokens)
            for (const auto& k : keys) w.raw(k.bytes.data(), k.bytes.size());
          break;
        }
        case shm::kLoad: {
          const uint32_t h_ns = r.u32(), shard = r.u32();
          const uint8_t* kp = r.take(16);
          const uint32_t flags = r.u32();
          if (!r.done()) {
            status(malformed());
            break;
          }
          auto ns = space_shard(h_ns, shard);
          if (!ns.ok()) {
            status(ns.status());
            break;
          }
          const bool size_only = flags & shm::kLoadSizeOnly;
          if (!size_only && pins.size() >= shm::kMaxPinsPerConnection) {
            status(InvalidArgument("this connection holds " + std::to_string(pins.size()) +
                                   " pins; release some first"));
            break;
          }
          View v;
          Status st = cache_.AcquireView(**ns, KeyFrom(kp), shard, 0, &v, caller.tenant);
          if (!st.ok()) {
            status(st);
            break;
          }
          status(Status::Ok());
          answer_view(v, size_only);
          break;
        }
        case shm::kRelease: {
          reply = false;
          const uint32_t n = r.u32();
          const uint8_t* p = n <= shm::kMaxPinsPerConnection ? r.take(static_cast<size_t>(n) * 8) : nullptr;
          if (p == nullptr || !r.done()) {
            close_after = true;  // no reply to carry an error: hang up
            break;
          }
          for (uint32_t i = 0; i < n && !close_after; ++i) {
            uint64_t id;
            std::memcpy(&id, p + 8 * i, 8);
            if (pins.erase(id) == 0) close_after = true;  // not this connection's pin
            else (void)cache_.ReleaseView(id);          // fails only if the pin expired
          }
          break;
        }
        case shm::kStoreBegin: {
          const uint32_t h_ns = r.u32(), shard = r.u32();
          const uint8_t* kp = r.take(16);
          const uint64_t ttl = r.u64(), total = r.u64();
          const uint32_t has_parent = r.u32();
          const uint8_t* pp = r.take(16);
          if (!r.done() || has_parent > 1) {
            status(malformed());
            break;
          }
          auto ns = space_shard(h_ns, shard);
          if (!ns.ok()) {
            status(ns.status());
            break;
          }
          if (total != (*ns)->shard_bytes) {
            status(Status(Code::kLayout, "total_bytes is " + std::to_string(total) +
                                             " but a block shard of this namespace is " +
                                             std::to_string((*ns)->shard_bytes) + " bytes"));
            break;
          }
          if (reservations.size() >= shm::kMaxReservationsPerConnection) {
            status(InvalidArgument("this connection holds " + std::to_string(reservations.size()) +
                                   " reservations; commit or abort some first"));
            break;
          }
          const BlockKey parent = KeyFrom(pp);
          Reservation res;
          Status st = options_.admit_write ? options_.admit_write(0) : Status::Ok();
          if (st.ok()) st = begin_store(**ns, kp, shard, ttl, has_parent ? &parent : nullptr, &res);
          if (!st.ok()) {
            if (options_.metrics) options_.metrics->CountStore(caller.tenant, st.code(), 0);
            status(st);
            break;
          }
          status(Status::Ok());
          hold(res);
          break;
        }
        case shm::kStoreCommit:
        case shm::kStoreAbort: {
          const uint64_t id = r.u64();
          if (!r.done()) {
            status(malformed());
            break;
          }
          auto it = reservations.find(id);
          if (it == reservations.end()) {
            status(InvalidArgument("reservation " + std::to_string(id) +
                                   " is not held by this connection (never begun, or already committed or aborted)"));
            break;
          }
          Reservation res = it->second;
          reservations.erase(it);
          const bool commit = h.op == shm::kStoreCommit;
          // The fence again: the node may have lost its lease meanwhile.
          const Status admit = commit && options_.admit_write ? options_.admit_write(0) : Status::Ok();
          status(finish_store(res, commit, admit));
          break;
        }
        case shm::kLoadBatch: {
          const uint32_t h_ns = r.u32(), shard = r.u32(), flags = r.u32(), n = r.u32();
          if (!r.ok()) {
            status(malformed());
            break;
          }
          if (n > shm::kMaxBatchItems) {
            status(BatchTooBig(n));
            break;
          }
          const uint8_t* kp = r.take(static_cast<size_t>(n) * 16);
          if (!r.done()) {
            status(BatchLength(h.op, n, h.length));
            break;
          }
          auto ns = space_shard(h_ns, shard);
          if (!ns.ok()) {
            status(ns.status());
            break;
          }
          const bool size_only = flags & shm::kLoadSizeOnly;
          status(Status::Ok());
          w.u32(n);
          for (uint32_t i = 0; i < n; ++i) {
            View v;
            Status st = !size_only && pins.size() >= shm::kMaxPinsPerConnection
                            ? Status(Code::kNoSpace, "too many pins")
                            : cache_.AcquireView(**ns, KeyFrom(kp + 16 * i), shard, 0, &v, caller.tenant);
            w.i32(static_cast<int32_t>(st.code()));
            if (!st.ok()) {
              w.u64(0);
              w.u64(0);
              w.u64(0);
              continue;
            }
            answer_view(v, size_only);
          }
          break;
        }
        case shm::kStoreBatchBegin: {
          constexpr size_t kItem = 16 + 8 + 4 + 16;
          const uint32_t h_ns = r.u32(), shard = r.u32();
          const uint64_t ttl = r.u64();
          const uint32_t n = r.u32();
          if (!r.ok()) {
            status(malformed());
            break;
          }
          if (n > shm::kMaxBatchItems) {
            status(BatchTooBig(n));
            break;
          }
          const uint8_t* items = r.take(static_cast<size_t>(n) * kItem);
          if (!r.done()) {
            status(BatchLength(h.op, n, h.length));
            break;
          }
          // Every field checked before anything is reserved.
          bool bad_parent = false;
          for (uint32_t i = 0; i < n && !bad_parent; ++i) {
            uint32_t has_parent;
            std::memcpy(&has_parent, items + kItem * i + 24, 4);
            bad_parent = has_parent > 1;
          }
          if (bad_parent) {
            status(InvalidArgument("malformed batch request (op " + std::to_string(h.op) +
                                   "): has_parent is neither 0 nor 1"));
            break;
          }
          auto ns = space_shard(h_ns, shard);
          if (!ns.ok()) {
            status(ns.status());
            break;
          }
          Status admit = options_.admit_write ? options_.admit_write(0) : Status::Ok();
          if (!admit.ok()) {
            if (options_.metrics)
              for (uint32_t i = 0; i < n; ++i) options_.metrics->CountStore(caller.tenant, admit.code(), 0);
            status(admit);
            break;
          }
          status(Status::Ok());
          w.u32(n);
          for (uint32_t i = 0; i < n; ++i) {
            const uint8_t* it = items + kItem * i;
            uint64_t total;
            uint32_t has_parent;
            std::memcpy(&total, it + 16, 8);
            std::memcpy(&has_parent, it + 24, 4);
            BlockKey parent = KeyFrom(it + 28);
            Status st;
            Reservation res;
            if (total != (*ns)->shard_bytes) {
              st = Status(Code::kLayout, "total_bytes is not the namespace's shard size");
            } else if (reservations.size() >= shm::kMaxReservationsPerConnection) {
              st = Status(Code::kNoSpace, "too many reservations");
            } else {
              st = begin_store(**ns, it, shard, ttl, has_parent ? &parent : nullptr, &res);
            }
            w.i32(static_cast<int32_t>(st.code()));
            if (!st.ok()) {
              if (options_.metrics) options_.metrics->CountStore(caller.tenant, st.code(), 0);
              w.u64(0);
              w.u64(0);
              w.u64(0);
              continue;
            }
            hold(res);
          }
          break;
        }
        case shm::kStoreBatchCommit:
        case shm::kStoreBatchAbort: {
          const uint32_t n = r.u32();
          if (!r.ok()) {
            status(malformed());
            break;
          }
          if (n > shm::kMaxBatchItems) {
            status(BatchTooBig(n));
            break;
          }
          const uint8_t* ids = r.take(static_cast<size_t>(n) * 8);
          if (!r.done()) {
            status(BatchLength(h.op, n, h.length));
            break;
          }
          const bool commit = h.op == shm::kStoreBatchCommit;
          // The fence once for the batch: a node that lost its lease
          // publishes none of it.
          const Status admit = commit && options_.admit_write ? options_.admit_write(0) : Status::Ok();
          status(Status::Ok());
          w.u32(n);
          for (uint32_t i = 0; i < n; ++i) {
            uint64_t id;
            std::memcpy(&id, ids + 8 * i, 8);
            auto it = reservations.find(id);
            if (it == reservations.end()) {
              w.i32(static_cast<int32_t>(Code::kInvalidArgument));
              continue;
            }
            Reservation res = it->second;
            reservations.erase(it);
            w.i32(static_cast<int32_t>(finish_store(res, commit, admit).code()));
          }
          break;
        }
        case shm::kDelete: {
          const uint32_t h_ns = r.u32();
          const uint8_t* kp = r.take(16);
          if (!r.done()) {
            status(malformed());
            break;
          }
          auto ns = space(h_ns);
          Status ds = ns.ok() ? cache_.Delete(**ns, KeyFrom(kp), caller.tenant) : ns.status();
          if (ds.ok() && options_.metrics) options_.metrics->CountDelete(caller.tenant);
          status(ds);
          break;
        }
        case shm::kBumpRevision: {
          const uint32_t h_ns = r.u32();
          if (!r.done()) {
            status(malformed());
            break;
          }
          auto ns = space(h_ns);
          if (!ns.ok()) {
            status(ns.status());
            break;
          }
          const uint64_t epoch = cache_.BumpRevision(**ns, caller.tenant);
          status(Status::Ok());
          w.u64(epoch);
          break;
        }
      }
    }
    if (reply) {
      const std::string f = w.Frame(h.op);
      bool sent;
      if (pass_fd >= 0) {
        // The arena's memfd rides on the reply's first byte.
        iovec iov{const_cast<char*>(f.data()), f.size()};
        alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))] = {};
        msghdr m{};
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = cbuf;
        m.msg_controllen = sizeof cbuf;
        cmsghdr* cm = CMSG_FIRSTHDR(&m);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        std::memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
        ssize_t n;
        do n = sendmsg(fd, &m, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        sent = n > 0 && WriteAll(fd, f.data() + n, f.size() - static_cast<size_t>(n));
      } else {
        sent = WriteAll(fd, f.data(), f.size());
      }
      if (!sent) break;
    }
    if (close_after) break;
    in.Consume(sizeof h + h.length);
  }
  // However the connection ended, nothing it held outlives it.
  for (uint64_t id : pins) (void)cache_.ReleaseView(id);
  for (auto& [id, res] : reservations) cache_.Abort(res);
  shutdown(fd, SHUT_RDWR);
}

}  // namespace kvc::net
#endif  // KVC_NET_BUILD
