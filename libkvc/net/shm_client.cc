// Compiled only into kvc_net (libkvc/net/CMakeLists.txt), which defines
// KVC_NET_BUILD; kvc_core's source glob sees an empty file.
//
// The same-host client (docs/node.md, "Same-host path"; wire format in
// shm_protocol.h): control frames over the node's Unix socket, block bytes
// by one memcpy between the caller's buffer and the node's arena, mapped
// from the memfd the node hands over at hello.
#ifdef KVC_NET_BUILD
#include <poll.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <condition_variable>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "net/node_client.h"
#include "net/node_service.h"
#include "net/shm_protocol.h"

namespace kvc::net {
namespace {

using Clock = std::chrono::steady_clock;
using shm::Reader;
using shm::Writer;

// One connection and its view of the arena. Closing it (the last reference
// going away) is what releases, on the node, whatever it still holds; so an
// operation keeps a reference while it copies bytes under a pin.
struct Conn {
  int fd = -1;
  uint8_t* base = nullptr;
  uint64_t size = 0;
  bool broken = false;                      // GUARDED_BY(client mu_)
  std::map<std::string, uint32_t> spaces;   // GUARDED_BY(client mu_)
  std::vector<uint64_t> releases;           // pins to give back; GUARDED_BY(client mu_)
  // One flag per kRegion of the arena: this process's page tables for it
  // are filled.
  static constexpr uint64_t kRegion = 2ull << 20;
  std::unique_ptr<std::atomic<bool>[]> filled;
  std::thread filler;
  std::atomic<bool> stop{false};
  ~Conn() {
    stop.store(true);
    if (filler.joinable()) filler.join();
    if (base) munmap(base, size);
    if (fd >= 0) close(fd);
  }
  // The node's pages exist already, but each first touch through a new
  // mapping takes a page fault: 256 a MiB, which made a store into a fresh
  // block cost more in faults than in copying. So this process's page tables
  // are filled with MADV_POPULATE_WRITE, one 2 MiB region at a time (a few
  // µs a MiB instead of 256 faults), two ways:
  // - Touch, in the caller's thread, for the regions a copy is about to
  //   use that are not filled yet;
  // - a background thread for the rest of the arena, under SCHED_IDLE: it
  //   runs only on CPU time nothing else wants. At normal priority, with two
  //   connections of one process on a 2-core machine, filling a 2 GiB arena
  //   (a second or so of CPU each) preempted the callers' copies for whole
  //   scheduler ticks (1 MiB puts right after connecting: 5-12 ms at p99,
  //   0.7 GB/s instead of 14-24).
  // Kernels before 5.14 lack MADV_POPULATE_WRITE; there the copies take the
  // faults.
  void MapArena(uint8_t* p, uint64_t n) {
    base = p;
    size = n;
    filled.reset(new std::atomic<bool>[(n + kRegion - 1) / kRegion]());
#ifdef MADV_POPULATE_WRITE
    filler = std::thread([this] {
      sched_param idle{};
      (void)pthread_setschedparam(pthread_self(), SCHED_IDLE, &idle);  // best effort
      for (uint64_t off = 0; off < size && !stop.load(std::memory_order_relaxed); off += kRegion) Fill(off / kRegion);
    });
#endif
  }
  void Touch(uint64_t off, uint64_t n) {
    if (n == 0 || off >= size) return;
    const uint64_t last = (std::min(off + n, size) - 1) / kRegion;
    for (uint64_t r = off / kRegion; r <= last; ++r) Fill(r);
  }
  void Fill(uint64_t r) {
#ifdef MADV_POPULATE_WRITE
    if (filled[r].load(std::memory_order_relaxed)) return;
    const uint64_t at = r * kRegion;
    (void)madvise(base + at, std::min(kRegion, size - at), MADV_POPULATE_WRITE);  // best effort
    filled[r].store(true, std::memory_order_relaxed);
#else
    (void)r;
#endif
  }
};

struct Reply {
  Status status;  // the node's kvc status for the request
  std::vector<uint8_t> body;
  size_t fields = 0;  // where the op's fields start in body
  std::shared_ptr<Conn> conn;
  Reader reader() const { return Reader(body.data() + fields, body.size() - fields); }
};

// How long a thread waiting for a reply polls before it sleeps.
constexpr auto kSpin = std::chrono::microseconds(50);

int MsLeft(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<int64_t>(left + 1, 1 << 30));
}

// Waits until fd is ready for `events`; kTimeout past the deadline.
Status Wait(int fd, short events, Clock::time_point deadline, uint32_t timeout_ms) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int n = poll(&p, 1, MsLeft(deadline));
    if (n > 0) return Status::Ok();
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) return Status(Code::kTimeout, "the node did not answer within " + std::to_string(timeout_ms) + " ms");
    return Status(Code::kUnavailable, std::string("poll: ") + std::strerror(errno));
  }
}

Status Lost(const std::string& why) { return Status(Code::kUnavailable, "the node's connection broke: " + why); }

Status SendAll(int fd, const void* p, size_t n, Clock::time_point deadline, uint32_t timeout_ms) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    const ssize_t w = send(fd, c, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0) {
      c += w;
      n -= static_cast<size_t>(w);
    } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      KVC_RETURN_IF_ERROR(Wait(fd, POLLOUT, deadline, timeout_ms));
    } else if (!(w < 0 && errno == EINTR)) {
      return Lost(w == 0 ? "nothing sent" : std::strerror(errno));
    }
  }
  return Status::Ok();
}

// Receives at least `min` and at most `max` bytes into p (*got: how many),
// waiting for them first (a reply is never there the moment its request
// leaves). A file descriptor passed with them (SCM_RIGHTS) goes to
// *passed_fd when it is non-null, and is closed otherwise.
Status RecvSome(int fd, void* p, size_t min, size_t max, size_t* got, Clock::time_point deadline, uint32_t timeout_ms,
                int* passed_fd) {
  char* c = static_cast<char*>(p);
  *got = 0;
  // Polls for kSpin before sleeping in poll(): most replies come within
  // it, and a thread that went to sleep costs a wake-up per request (tens
  // of µs on a VM: a 1 MiB load ran at 0.4 of memcpy without it, 0.8 with
  // it, in shm_bench --batch on the 2-core development VM).
  const auto spin_until = Clock::now() + kSpin;
  bool wait = false;
  while (*got < min) {
    if (wait) KVC_RETURN_IF_ERROR(Wait(fd, POLLIN, deadline, timeout_ms));
    wait = false;
    iovec iov{c + *got, max - *got};
    alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * 4)];
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = cbuf;
    m.msg_controllen = sizeof cbuf;
    const ssize_t r = recvmsg(fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (r > 0) {
      for (cmsghdr* cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
        const size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; ++i) {
          int got;
          std::memcpy(&got, CMSG_DATA(cm) + i * sizeof(int), sizeof got);
          if (passed_fd && *passed_fd < 0) *passed_fd = got;
          else close(got);
        }
      }
      *got += static_cast<size_t>(r);
    } else if (r == 0) {
      return Lost("the node closed it");
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      wait = Clock::now() >= spin_until;
      if (!wait) sched_yield();
    } else if (errno != EINTR) {
      return Lost(std::strerror(errno));
    }
  }
  return Status::Ok();
}

// A kvc status the node sent, checked like the gRPC client's FromResult.
Status StatusFrom(int32_t code, std::string message) {
  if (code == 0) return Status::Ok();
  if (code < static_cast<int32_t>(Code::kFenced) || code > 0)
    return Status(Code::kInternal, "the node sent status " + std::to_string(code));
  if (code == static_cast<int32_t>(Code::kNotFound)) return NotFound();
  return Status(static_cast<Code>(code), std::move(message));
}

Status Garbled(const char* what) { return Status(Code::kInternal, std::string("the node's ") + what + " reply is malformed"); }

// A batch item's status: the node sends its code only (shm_protocol.h), so
// the message is the code's own text, said more precisely where the code
// has one meaning in the op (`op`: "load", "store" or "commit").
Status ItemStatus(int32_t code, const char* op) {
  if (code == 0) return Status::Ok();
  if (code < static_cast<int32_t>(Code::kFenced) || code > 0)
    return Status(Code::kInternal, "the node sent item status " + std::to_string(code));
  const Code c = static_cast<Code>(code);
  if (c == Code::kNotFound) return NotFound();
  const std::string o = op;
  if (c == Code::kNoSpace && o == "load")
    return Status(c, "too many pins: this connection may hold " + std::to_string(shm::kMaxPinsPerConnection));
  if (c == Code::kNoSpace && o == "store")
    return Status(c, "too many reservations: this connection may hold " +
                         std::to_string(shm::kMaxReservationsPerConnection));
  if (c == Code::kLayout && o == "store") return Status(c, "the source is not the namespace's shard size");
  if (c == Code::kInvalidArgument && o == "commit")
    return Status(c, "the node did not hold the item's reservation any more");
  return Status(c, std::string(CodeText(c)) + " (" + o + ")");
}

std::string SpaceKey(const NodeNamespace& ns) {
  Writer w;
  for (const std::string* s : {&ns.hash, &ns.model, &ns.revision, &ns.adapter, &ns.dtype}) w.str(*s);
  for (uint32_t v : {ns.layers, ns.kv_heads, ns.head_dim, ns.block_tokens, ns.shards}) w.u32(v);
  return w.Frame(shm::kOpen).substr(sizeof(shm::FrameHeader));
}

class ShmNodeClient final : public NodeClient {
 public:
  ShmNodeClient(std::string path, const NodeClientOptions& options) : path_(std::move(path)), options_(options) {}
  ~ShmNodeClient() override {
    {
      std::lock_guard<std::mutex> lk(flush_mu_);
      stop_ = true;
    }
    flush_cv_.notify_all();
    if (flusher_.joinable()) flusher_.join();
    Turn lk(this);
    if (conn_) SendReleases(*conn_);
  }

  // Opens the connection now (ConnectShm): KVC_ERR_UNAVAILABLE when the
  // node cannot be reached. A refused credential is not an error here: as
  // over gRPC, each call then answers KVC_ERR_PERMISSION.
  Status Open() {
    Turn lk(this);
    auto c = Dial(Clock::now() + std::chrono::milliseconds(options_.connect_timeout_ms));
    if (c.ok()) conn_ = *c;
    return c.ok() || c.status().code() == Code::kPermission ? Status::Ok() : c.status();
  }

  Result<std::string> StatsJson() override {
    auto r = Retrying([&] { return Call(shm::kStats, nullptr, [](Writer&) {}, Deadline()); });
    if (!r.ok()) return r.status();
    KVC_RETURN_IF_ERROR(r->status);
    Reader rd = r->reader();
    std::string json = rd.str(shm::kMaxFrameBytes);
    if (!rd.done()) return Garbled("stats");
    return json;
  }

  Result<size_t> Match(const NodeNamespace& ns, const std::vector<BlockKey>& keys,
                       std::vector<uint8_t>* tiers) override {
    if (keys.size() > kMaxMatchKeys) return InvalidArgument("more than " + std::to_string(kMaxMatchKeys) + " keys");
    auto r = Retrying([&] {
      return Call(shm::kMatch, &ns, [&](Writer& w) {
        w.u32(static_cast<uint32_t>(keys.size()));
        for (const auto& k : keys) w.raw(k.bytes.data(), k.bytes.size());
      }, Deadline());
    });
    return MatchReply(r, keys.size(), tiers, nullptr);
  }

  Result<size_t> MatchTokens(const NodeNamespace& ns, const std::vector<uint32_t>& tokens,
                             std::vector<uint8_t>* tiers, std::vector<BlockKey>* keys) override {
    if (tokens.size() > kMaxMatchTokens)
      return InvalidArgument("more than " + std::to_string(kMaxMatchTokens) + " tokens");
    auto r = Retrying([&] {
      return Call(shm::kMatchTokens, &ns, [&](Writer& w) {
        w.u32(static_cast<uint32_t>(tokens.size()));
        w.raw(tokens.data(), tokens.size() * sizeof(uint32_t));
      }, Deadline());
    });
    return MatchReply(r, SIZE_MAX, tiers, keys);
  }

  Status Get(const NodeNamespace& ns, const BlockKey& key, uint32_t shard, void* dst, uint64_t dst_cap,
             uint64_t* size) override {
    const auto deadline = Deadline();
    auto r = Retrying([&] {
      return Call(shm::kLoad, &ns, [&](Writer& w) {
        w.u32(shard);
        w.raw(key.bytes.data(), key.bytes.size());
        w.u32(dst == nullptr ? shm::kLoadSizeOnly : 0);
      }, deadline);
    });
    if (!r.ok()) return r.status();
    KVC_RETURN_IF_ERROR(r->status);
    Reader rd = r->reader();
    const uint64_t pin = rd.u64(), off = rd.u64(), n = rd.u64();
    Conn& c = *r->conn;
    if (!rd.done() || off > c.size || n > c.size - off) {
      Release(r->conn, pin);
      return Garbled("load");
    }
    *size = n;
    if (dst == nullptr) return Status::Ok();
    if (n > dst_cap) {
      Release(r->conn, pin);
      return Status(Code::kLayout, "the block shard is " + std::to_string(n) + " bytes, the buffer " +
                                       std::to_string(dst_cap));
    }
    // Pinned by the node until the release: the one copy of the path.
    c.Touch(off, n);
    std::memcpy(dst, c.base + off, n);
    Release(r->conn, pin);
    return Status::Ok();
  }

  Status Put(const NodeNamespace& ns, const BlockKey& key, uint32_t shard, const void* src, uint64_t len,
             uint64_t ttl_ms, const BlockKey* parent) override {
    const auto deadline = Deadline();
    // Never retried: a store is not idempotent.
    auto r = Call(shm::kStoreBegin, &ns, [&](Writer& w) {
      w.u32(shard);
      w.raw(key.bytes.data(), key.bytes.size());
      w.u64(ttl_ms);
      w.u64(len);
      w.u32(parent ? 1 : 0);
      const BlockKey none{};
      w.raw(parent ? parent->bytes.data() : none.bytes.data(), 16);
    }, deadline);
    if (!r.ok()) return r.status();
    KVC_RETURN_IF_ERROR(r->status);
    Reader rd = r->reader();
    const uint64_t id = rd.u64(), off = rd.u64(), n = rd.u64();
    Conn& c = *r->conn;
    const bool fits = rd.done() && off <= c.size && n <= c.size - off && n == len;
    if (fits) {
      c.Touch(off, len);
      std::memcpy(c.base + off, src, len);
    }
    auto done = Call(fits ? shm::kStoreCommit : shm::kStoreAbort, nullptr, [&](Writer& w) { w.u64(id); }, deadline,
                     r->conn);
    if (!fits) return Garbled("store");
    if (!done.ok()) return done.status();
    return done->status;
  }

  // One kLoadBatch, a copy per found item out of the arena, and one release
  // of every pin (deferred as Get's, riding on the next request).
  Status GetBatch(const NodeNamespace& ns, uint32_t shard, std::span<GetItem> items) override {
    if (items.size() > kMaxBatchItems) return TooManyBatchItems(items.size());
    for (GetItem& it : items) it.size = 0;
    if (items.empty()) return Status::Ok();
    bool size_only = true;
    for (const GetItem& it : items) size_only = size_only && it.dst == nullptr;
    const auto deadline = Deadline();
    auto r = Retrying([&] {
      return Call(shm::kLoadBatch, &ns, [&](Writer& w) {
        w.u32(shard);
        w.u32(size_only ? shm::kLoadSizeOnly : 0);
        w.u32(static_cast<uint32_t>(items.size()));
        for (const GetItem& it : items) w.raw(it.key.bytes.data(), it.key.bytes.size());
      }, deadline);
    });
    Status call = r.ok() ? r->status : r.status();
    if (!call.ok()) return FailAll(items, call);
    Reader rd = r->reader();
    const uint32_t n = rd.u32();
    struct Entry {
      int32_t code;
      uint64_t pin, off, size;
    };
    std::vector<Entry> e(n == items.size() ? n : 0);
    for (Entry& x : e) {
      x.code = rd.i32();
      x.pin = rd.u64();
      x.off = rd.u64();
      x.size = rd.u64();
    }
    Conn& c = *r->conn;
    bool fits = rd.done() && n == items.size();
    for (const Entry& x : e) fits = fits && (x.code != 0 || (x.off <= c.size && x.size <= c.size - x.off));
    std::vector<uint64_t> pins;
    pins.reserve(e.size());
    for (const Entry& x : e)
      if (x.pin != 0) pins.push_back(x.pin);
    if (!fits) {
      Release(r->conn, pins);
      return FailAll(items, Garbled("load batch"));
    }
    for (size_t i = 0; i < items.size(); ++i) {
      GetItem& it = items[i];
      const Entry& x = e[i];
      it.status = ItemStatus(x.code, "load");
      if (!it.status.ok()) continue;
      it.size = x.size;
      if (it.dst == nullptr) continue;
      if (x.size > it.cap) {
        it.status = Status(Code::kLayout, "the block shard is " + std::to_string(x.size) + " bytes, the buffer " +
                                              std::to_string(it.cap));
        continue;
      }
      // Pinned by the node until the release below.
      c.Touch(x.off, x.size);
      std::memcpy(it.dst, c.base + x.off, x.size);
    }
    Release(r->conn, pins);
    return Status::Ok();
  }

  // One kStoreBatchBegin, a copy per reserved item into the arena, one
  // kStoreBatchCommit (and a kStoreBatchAbort of what could not be
  // written). Never retried.
  Status PutBatch(const NodeNamespace& ns, uint32_t shard, std::span<PutItem> items, uint64_t ttl_ms) override {
    if (items.size() > kMaxBatchItems) return TooManyBatchItems(items.size());
    for (const PutItem& it : items)
      if (it.src == nullptr && it.len != 0) return FailAll(items, InvalidArgument("an item's source is NULL"));
    if (items.empty()) return Status::Ok();
    const auto deadline = Deadline();
    auto r = Call(shm::kStoreBatchBegin, &ns, [&](Writer& w) {
      w.u32(shard);
      w.u64(ttl_ms);
      w.u32(static_cast<uint32_t>(items.size()));
      const BlockKey none{};
      for (const PutItem& it : items) {
        w.raw(it.key.bytes.data(), it.key.bytes.size());
        w.u64(it.len);
        w.u32(it.parent ? 1 : 0);
        w.raw(it.parent ? it.parent->bytes.data() : none.bytes.data(), 16);
      }
    }, deadline);
    Status call = r.ok() ? r->status : r.status();
    if (!call.ok()) return FailAll(items, call);
    Reader rd = r->reader();
    const uint32_t n = rd.u32();
    Conn& c = *r->conn;
    std::vector<uint64_t> commit, abort;
    std::vector<size_t> committed;  // the item of each id in `commit`
    bool garbled = n != items.size();
    for (uint32_t i = 0; i < n && !garbled; ++i) {
      const int32_t code = rd.i32();
      const uint64_t id = rd.u64(), off = rd.u64(), size = rd.u64();
      if (!rd.ok()) break;
      PutItem& it = items[i];
      it.status = ItemStatus(code, "store");
      if (code != 0) continue;
      if (off <= c.size && size <= c.size - off && size == it.len) {
        c.Touch(off, it.len);
        std::memcpy(c.base + off, it.src, it.len);
        commit.push_back(id);
        committed.push_back(i);
      } else {
        abort.push_back(id);
        it.status = Garbled("store batch");
      }
    }
    garbled = garbled || !rd.done();
    if (garbled) {
      // Nothing committed: what was reserved is aborted with the connection,
      // which is out of step with the node.
      {
        Turn lk(this);
        c.broken = true;
      }
      return FailAll(items, Garbled("store batch"));
    }
    if (!abort.empty()) (void)Finish(shm::kStoreBatchAbort, abort, deadline, r->conn);
    if (commit.empty()) return Status::Ok();
    auto done = Finish(shm::kStoreBatchCommit, commit, deadline, r->conn);
    if (!done.ok()) {
      for (size_t i : committed) items[i].status = done.status();
      return done.status();
    }
    for (size_t k = 0; k < committed.size(); ++k) items[committed[k]].status = ItemStatus((*done)[k], "commit");
    return Status::Ok();
  }

  Status Delete(const NodeNamespace& ns, const BlockKey& key) override {
    auto r = Retrying([&] {
      return Call(shm::kDelete, &ns, [&](Writer& w) { w.raw(key.bytes.data(), key.bytes.size()); }, Deadline());
    });
    if (!r.ok()) return r.status();
    return r->status;
  }

  Result<uint64_t> BumpRevision(const NodeNamespace& ns, uint64_t cluster_count) override {
    if (cluster_count != 0)
      return Status(Code::kUnsupported, "cluster revision counts are not sent over the same-host path");
    // Not retried: a second bump would be a second new epoch.
    auto r = Call(shm::kBumpRevision, &ns, [](Writer&) {}, Deadline());
    if (!r.ok()) return r.status();
    KVC_RETURN_IF_ERROR(r->status);
    Reader rd = r->reader();
    const uint64_t epoch = rd.u64();
    if (!rd.done()) return Garbled("bump_revision");
    return epoch;
  }

  Result<std::string> TenantCreate(const NodeTenantSpec&) override { return Admin(); }
  Result<std::string> TenantListJson() override { return Admin(); }
  Status TenantSetQuota(const std::string&, int64_t, int64_t, int32_t) override { return Admin(); }
  Status TenantDelete(const std::string&) override { return Admin(); }

 private:
  using Fill = std::function<void(Writer&)>;

  static Status Admin() {
    return Status(Code::kUnsupported,
                  "tenant administration is not offered over the same-host path; use the node's TCP address");
  }

  // timeout_ms from now, or the caller's earlier deadline (call_deadline).
  Clock::time_point Deadline() const {
    auto d = Clock::now() + std::chrono::milliseconds(options_.timeout_ms);
    if (options_.call_deadline) {
      const auto sys = options_.call_deadline();
      if (sys.time_since_epoch().count() != 0) {
        const auto left = std::chrono::duration_cast<Clock::duration>(sys - std::chrono::system_clock::now());
        d = std::min(d, Clock::now() + left);
      }
    }
    return d;
  }

  // Connects and says hello: the arena mapped, or why not.
  Result<std::shared_ptr<Conn>> Dial(Clock::time_point deadline) {
    const std::string where = "unix:" + path_;
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path_.size() >= sizeof a.sun_path)
      return InvalidArgument("the socket path of " + where + " is longer than " +
                             std::to_string(sizeof a.sun_path - 1) + " bytes");
    std::memcpy(a.sun_path, path_.data(), path_.size());
    auto c = std::make_shared<Conn>();
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) return Status(Code::kUnavailable, std::string("socket: ") + std::strerror(errno));
    // A Unix socket connects at once or fails at once (no listener, no
    // file, or a full backlog: retried until the deadline).
    for (;;) {
      if (connect(c->fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0) break;
      const int e = errno;
      if (e == EINTR) continue;
      if (e != EAGAIN || MsLeft(deadline) == 0)
        return Status(Code::kUnavailable, "cannot reach node " + where + ": " + std::strerror(e));
      usleep(1000);
    }
    Writer w;
    w.u32(shm::kMagic);
    w.u32(shm::kVersion);
    w.str(options_.tenant);
    w.str(options_.tenant.empty() ? std::string() : options_.credential);
    w.str(options_.admin_token);
    const uint32_t ms = options_.connect_timeout_ms;
    int memfd = -1;
    auto reply = Exchange(*c, shm::kHello, w, deadline, ms, &memfd);
    struct Closer {
      int& fd;
      ~Closer() {
        if (fd >= 0) close(fd);
      }
    } closer{memfd};
    if (!reply.ok()) {
      return reply.status().code() == Code::kTimeout
                 ? Status(Code::kUnavailable, "node " + where + " did not answer within " + std::to_string(ms) + " ms")
                 : Status(Code::kUnavailable, "cannot reach node " + where + ": " + reply.status().message());
    }
    if (reply->status.code() == Code::kPermission)
      return Status(Code::kPermission, "the node refused the credential");
    KVC_RETURN_IF_ERROR(reply->status);
    Reader rd = reply->reader();
    const uint64_t size = rd.u64();
    struct stat st;
    if (!rd.done() || memfd < 0 || fstat(memfd, &st) != 0 || static_cast<uint64_t>(st.st_size) < size || size == 0)
      return Status(Code::kInternal, "node " + where + " did not hand over its arena");
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    if (p == MAP_FAILED)
      return Status(Code::kNoMemory, "cannot map the arena of node " + where + ": " + std::strerror(errno));
    // Huge pages where the node's arena has them: shmem gets them only when
    // /sys/kernel/mm/transparent_hugepage/shmem_enabled allows (often
    // `never`, and then this does nothing). Copies from 2 MiB pages ran
    // ~10% faster than from 4 KiB ones in shm_bench --batch.
    (void)madvise(p, size, MADV_HUGEPAGE);
    c->MapArena(static_cast<uint8_t*>(p), size);
    return c;
  }

  // One request and its reply on `c`. REQUIRES: mu_ held (or `c` private).
  Result<Reply> Exchange(Conn& c, uint32_t op, const Writer& body, Clock::time_point deadline, uint32_t timeout_ms,
                         int* passed_fd = nullptr) {
    // Pins given back ride in front of the request: one send, one wake-up
    // of the node's thread.
    std::string f = ReleaseFrame(c);
    f += body.Frame(op);
    Status st = SendAll(c.fd, f.data(), f.size(), deadline, timeout_ms);
    // The header and, for most replies, the whole body in one read: the
    // node sends nothing but one reply per request, so reading ahead cannot
    // take bytes of another.
    shm::FrameHeader h{};
    uint8_t head[1024];
    size_t got = 0;
    if (st.ok()) st = RecvSome(c.fd, head, sizeof h, sizeof head, &got, deadline, timeout_ms, passed_fd);
    if (st.ok()) std::memcpy(&h, head, sizeof h);
    if (st.ok() && (h.op != op || h.length > shm::kMaxFrameBytes || got - sizeof h > h.length))
      st = Lost("a reply out of step");
    Reply r;
    if (st.ok()) {
      const size_t early = got - sizeof h;
      r.body.resize(h.length);
      std::memcpy(r.body.data(), head + sizeof h, early);
      if (early < h.length)
        st = RecvSome(c.fd, r.body.data() + early, h.length - early, h.length - early, &got, deadline, timeout_ms,
                      passed_fd);
    }
    if (!st.ok()) {
      c.broken = true;  // out of step with the node: never used again
      return st;
    }
    Reader rd(r.body.data(), r.body.size());
    const int32_t code = rd.i32();
    std::string message = rd.str();
    if (!rd.ok()) {
      c.broken = true;
      return Lost("a reply without a status");
    }
    r.fields = r.body.size() - rd.left();
    r.status = StatusFrom(code, std::move(message));
    return r;
  }

  // A request as this client: on the current connection (made anew if there
  // is none or it broke), naming `ns` by its handle (opened on first use),
  // or on `on` only, when given (the second half of a store).
  Result<Reply> Call(uint32_t op, const NodeNamespace* ns, const Fill& fill, Clock::time_point deadline,
                     std::shared_ptr<Conn> on = nullptr) {
    Turn lk(this, deadline);
    if (!lk.held())
      return Status(Code::kTimeout, "the node did not answer within " + std::to_string(options_.timeout_ms) + " ms");
    std::shared_ptr<Conn> c = on ? on : conn_;
    if (on && on->broken) return Lost("the store's connection was lost; nothing was stored");
    if (!c || c->broken) {
      conn_.reset();
      const auto connect_by = std::min(deadline, Clock::now() + std::chrono::milliseconds(options_.connect_timeout_ms));
      auto d = Dial(connect_by);
      if (!d.ok()) return d.status();
      c = conn_ = *d;
    }
    Writer w;
    if (ns) {
      const std::string key = SpaceKey(*ns);
      auto it = c->spaces.find(key);
      uint32_t handle;
      if (it != c->spaces.end()) {
        handle = it->second;
      } else {
        Writer o;
        o.raw(key.data(), key.size());
        auto r = Exchange(*c, shm::kOpen, o, deadline, options_.timeout_ms);
        if (!r.ok() || !r->status.ok()) return r;
        Reader rd = r->reader();
        handle = rd.u32();
        if (!rd.done()) {
          c->broken = true;
          return Garbled("open");
        }
        c->spaces.emplace(key, handle);
      }
      w.u32(handle);
    }
    fill(w);
    auto r = Exchange(*c, op, w, deadline, options_.timeout_ms);
    if (r.ok()) r->conn = c;
    return r;
  }

  // Idempotent calls: again after a broken connection, within the deadline.
  Result<Reply> Retrying(const std::function<Result<Reply>()>& call) {
    auto r = call();
    for (uint32_t i = 0; i < options_.max_retries && !r.ok() && r.status().code() == Code::kUnavailable; ++i) {
      r = call();
    }
    return r;
  }

  // Every item's status is `failure`, which the call returns.
  template <typename Item>
  static Status FailAll(std::span<Item> items, const Status& failure) {
    for (Item& it : items) it.status = failure;
    return failure;
  }

  // A batch commit or abort of `ids` on `on`: each id's status.
  Result<std::vector<int32_t>> Finish(uint32_t op, const std::vector<uint64_t>& ids, Clock::time_point deadline,
                                      const std::shared_ptr<Conn>& on) {
    auto r = Call(op, nullptr, [&](Writer& w) {
      w.u32(static_cast<uint32_t>(ids.size()));
      for (uint64_t id : ids) w.u64(id);
    }, deadline, on);
    if (!r.ok()) return r.status();
    KVC_RETURN_IF_ERROR(r->status);
    Reader rd = r->reader();
    const uint32_t n = rd.u32();
    std::vector<int32_t> codes(n == ids.size() ? n : 0);
    for (int32_t& x : codes) x = rd.i32();
    if (n != ids.size() || !rd.done()) return Garbled("store batch commit");
    return codes;
  }

  // Gives many pins back at once: as Release, one frame.
  void Release(const std::shared_ptr<Conn>& c, const std::vector<uint64_t>& pins) {
    if (pins.empty()) return;
    {
      Turn lk(this);
      if (c->broken) return;
      c->releases.insert(c->releases.end(), pins.begin(), pins.end());
      if (c->releases.size() >= kReleaseBatch) {
        SendReleases(*c);
        return;
      }
    }
    std::lock_guard<std::mutex> lk(flush_mu_);
    if (dirty_) return;
    dirty_ = true;
    if (!flusher_.joinable()) flusher_ = std::thread([this] { FlushLoop(); });
    flush_cv_.notify_one();
  }

  // Gives a pin back. A release has no reply, and sending it alone would
  // cost a wake-up of the node's thread per block; so it waits for the
  // connection's next request, which carries it, or for the flusher, at most
  // kReleaseDelay later. A connection that broke meanwhile gives every pin
  // back as it closes.
  static constexpr auto kReleaseDelay = std::chrono::milliseconds(2);
  static constexpr size_t kReleaseBatch = 64;
  void Release(const std::shared_ptr<Conn>& c, uint64_t pin) {
    if (pin == 0) return;
    {
      Turn lk(this);
      if (c->broken) return;
      c->releases.push_back(pin);
      if (c->releases.size() >= kReleaseBatch) {
        SendReleases(*c);
        return;
      }
    }
    std::lock_guard<std::mutex> lk(flush_mu_);
    if (dirty_) return;  // the flusher is already due
    dirty_ = true;
    if (!flusher_.joinable()) flusher_ = std::thread([this] { FlushLoop(); });
    flush_cv_.notify_one();
  }

  // The release frame of c's pending pins (empty when none); clears them.
  // REQUIRES: mu_ held.
  static std::string ReleaseFrame(Conn& c) {
    if (c.releases.empty()) return {};
    Writer w;
    w.u32(static_cast<uint32_t>(c.releases.size()));
    for (uint64_t id : c.releases) w.u64(id);
    c.releases.clear();
    return w.Frame(shm::kRelease);
  }

  // REQUIRES: mu_ held.
  void SendReleases(Conn& c) {
    if (c.broken) return;
    const std::string f = ReleaseFrame(c);
    if (!f.empty() && !SendAll(c.fd, f.data(), f.size(), Deadline(), options_.timeout_ms).ok()) c.broken = true;
  }

  void FlushLoop() {
    std::unique_lock<std::mutex> lk(flush_mu_);
    while (!stop_) {
      flush_cv_.wait(lk, [&] { return stop_ || dirty_; });
      if (stop_) return;
      flush_cv_.wait_for(lk, kReleaseDelay, [&] { return stop_; });
      dirty_ = false;  // from here a release wakes the flusher again
      lk.unlock();
      {
        Turn ml(this);
        if (conn_) SendReleases(*conn_);
      }
      lk.lock();
    }
  }

  static Result<size_t> MatchReply(const Result<Reply>& r, size_t n_keys, std::vector<uint8_t>* tiers,
                                   std::vector<BlockKey>* keys) {
    if (!r.ok()) return r.status();
    KVC_RETURN_IF_ERROR(r->status);
    Reader rd = r->reader();
    const uint64_t blocks = rd.u64();
    const uint32_t n = rd.u32();
    const uint8_t* t = rd.take(n);
    const uint8_t* k = keys ? rd.take(static_cast<size_t>(n) * 16) : nullptr;
    if (!rd.done() || blocks > n || (n_keys != SIZE_MAX && n != n_keys))
      return Status(Code::kInternal, "the node's match reply does not fit the request");
    if (tiers) tiers->assign(t, t + n);
    if (keys) {
      keys->resize(n);
      for (uint32_t i = 0; i < n; ++i) std::memcpy((*keys)[i].bytes.data(), k + 16 * i, 16);
    }
    return static_cast<size_t>(blocks);
  }

  const std::string path_;
  const NodeClientOptions options_;
  // One exchange at a time on the connection: a turn taken under turn_mu_
  // (a timed wait on a condition variable rather than std::timed_mutex,
  // whose clocked lock ThreadSanitizer does not see). What "mu_" guards
  // is guarded by holding the turn.
  class Turn {
   public:
    explicit Turn(ShmNodeClient* c, Clock::time_point deadline = Clock::time_point::max()) : c_(c) {
      std::unique_lock<std::mutex> lk(c_->turn_mu_);
      const auto free = [&] { return !c_->busy_; };
      if (deadline == Clock::time_point::max()) c_->turn_cv_.wait(lk, free);
      else if (!c_->turn_cv_.wait_until(lk, deadline, free)) return;
      c_->busy_ = held_ = true;
    }
    ~Turn() {
      if (!held_) return;
      {
        std::lock_guard<std::mutex> lk(c_->turn_mu_);
        c_->busy_ = false;
      }
      c_->turn_cv_.notify_one();
    }
    Turn(const Turn&) = delete;
    Turn& operator=(const Turn&) = delete;
    bool held() const { return held_; }

   private:
    ShmNodeClient* c_;
    bool held_ = false;
  };
  std::mutex turn_mu_;
  std::condition_variable turn_cv_;
  bool busy_ = false;              // GUARDED_BY(turn_mu_)
  std::shared_ptr<Conn> conn_;     // GUARDED_BY(mu_): the turn
  std::mutex flush_mu_;
  std::condition_variable flush_cv_;
  bool dirty_ = false;             // GUARDED_BY(flush_mu_)
  bool stop_ = false;              // GUARDED_BY(flush_mu_)
  std::thread flusher_;            // started by the first deferred release
};

}  // namespace

Result<std::unique_ptr<NodeClient>> ConnectShm(const std::string& socket_path, const NodeClientOptions& options) {
  // TLS options are not used over unix: (kvc_node_options).
  auto c = std::make_unique<ShmNodeClient>(socket_path, options);
  KVC_RETURN_IF_ERROR(c->Open());
  return std::unique_ptr<NodeClient>(std::move(c));
}

}  // namespace kvc::net
#endif  // KVC_NET_BUILD
