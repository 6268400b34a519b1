// A raw same-host client for tests (libkvc/net/shm_protocol.h spoken by
// hand): it can send what the real client never would. Every wait is
// bounded (kWaitMs), so a test cannot hang on a node that does not answer.
#ifndef KVC_TESTS_NODE_SHM_RAW_H_
#define KVC_TESTS_NODE_SHM_RAW_H_

#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "net/shm_protocol.h"

namespace shmtest {

using kvc::net::shm::Reader;
using kvc::net::shm::Writer;
namespace shm = kvc::net::shm;

inline constexpr int kWaitMs = 3000;

// The namespace every shm test uses: 512-byte block shards.
inline void WriteSpace(Writer& w, const char* model = "shm-wire") {
  w.str("sha256");
  w.str(model);
  w.str("r1");
  w.str("");
  w.str("fp16");
  for (uint32_t v : {2u, 2u, 8u, 4u, 1u}) w.u32(v);
}
inline constexpr uint64_t kShardBytes = 512;

inline void Key(uint8_t fill, uint8_t out[16]) { std::memset(out, fill, 16); }

struct Reply {
  bool ok = false;  // a whole reply arrived
  uint32_t op = 0;
  int32_t code = 0;
  std::string message;
  std::vector<uint8_t> fields;
  Reader reader() const { return Reader(fields.data(), fields.size()); }
};

class RawConn {
 public:
  ~RawConn() { Close(); }
  void Close() {
    if (base_) munmap(base_, size_);
    base_ = nullptr;
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  bool Connect(const std::string& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    return fd_ >= 0 && connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  bool SendRaw(const void* p, size_t n) {
    const char* c = static_cast<const char*>(p);
    while (n > 0) {
      const ssize_t w = send(fd_, c, n, MSG_NOSIGNAL);
      if (w <= 0) return false;
      c += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  }
  bool Send(uint32_t op, const Writer& w) {
    const std::string f = w.Frame(op);
    return SendRaw(f.data(), f.size());
  }
  // One reply; ok false on the end of the stream, an error or kWaitMs.
  Reply Recv(int* passed_fd = nullptr) {
    Reply r;
    kvc::net::shm::FrameHeader h{};
    if (!RecvAll(&h, sizeof h, passed_fd)) return r;
    std::vector<uint8_t> body(h.length);
    if (h.length > shm::kMaxFrameBytes || !RecvAll(body.data(), body.size(), passed_fd)) return r;
    Reader rd(body.data(), body.size());
    r.op = h.op;
    r.code = rd.i32();
    r.message = rd.str();
    if (!rd.ok()) return r;
    r.fields.assign(body.end() - static_cast<ptrdiff_t>(rd.left()), body.end());
    r.ok = true;
    return r;
  }
  Reply Call(uint32_t op, const Writer& w) {
    if (!Send(op, w)) return Reply{};
    return Recv();
  }
  // True when the node has closed the connection (within kWaitMs), after
  // any replies still on the way.
  bool ClosedByNode() {
    char b[4096];
    for (;;) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, kWaitMs) <= 0) return false;
      const ssize_t n = recv(fd_, b, sizeof b, 0);
      if (n == 0 || (n < 0 && errno == ECONNRESET)) return true;
      if (n < 0) return false;
    }
  }
  // Hello; on OK the arena is mapped. Returns the status code (1: no reply).
  int32_t Hello(const std::string& tenant, const std::string& credential, const std::string& admin = "") {
    Writer w;
    w.u32(shm::kMagic);
    w.u32(shm::kVersion);
    w.str(tenant);
    w.str(credential);
    w.str(admin);
    if (!Send(shm::kHello, w)) return 1;
    int memfd = -1;
    Reply r = Recv(&memfd);
    if (!r.ok) return 1;
    if (r.code == 0) {
      Reader rd = r.reader();
      size_ = rd.u64();
      if (memfd < 0 || size_ == 0) return 1;
      void* p = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
      if (p == MAP_FAILED) return 1;
      base_ = static_cast<uint8_t*>(p);
    }
    got_fd_ = memfd >= 0;
    if (memfd >= 0) close(memfd);
    return r.code;
  }
  // Opens the test namespace; its handle, or UINT32_MAX.
  uint32_t Open(const char* model = "shm-wire") {
    Writer w;
    WriteSpace(w, model);
    Reply r = Call(shm::kOpen, w);
    if (!r.ok || r.code != 0) return UINT32_MAX;
    return r.reader().u32();
  }
  // Load: pin id, offset, size (pin 0 on failure; *code gets the status).
  bool Load(uint32_t ns, uint8_t key_fill, int32_t* code, uint64_t* pin, uint64_t* off, uint64_t* size) {
    Writer w;
    uint8_t k[16];
    Key(key_fill, k);
    w.u32(ns);
    w.u32(0);
    w.raw(k, 16);
    w.u32(0);
    Reply r = Call(shm::kLoad, w);
    *code = r.ok ? r.code : 1;
    if (!r.ok || r.code != 0) return false;
    Reader rd = r.reader();
    *pin = rd.u64();
    *off = rd.u64();
    *size = rd.u64();
    return rd.done();
  }
  bool StoreBegin(uint32_t ns, uint8_t key_fill, uint64_t total, int32_t* code, uint64_t* id, uint64_t* off) {
    Writer w;
    uint8_t k[16], none[16] = {};
    Key(key_fill, k);
    w.u32(ns);
    w.u32(0);
    w.raw(k, 16);
    w.u64(0);
    w.u64(total);
    w.u32(0);
    w.raw(none, 16);
    Reply r = Call(shm::kStoreBegin, w);
    *code = r.ok ? r.code : 1;
    if (!r.ok || r.code != 0) return false;
    Reader rd = r.reader();
    *id = rd.u64();
    *off = rd.u64();
    return rd.u64() == total && rd.done();
  }
  int32_t Finish(uint32_t op, uint64_t id) {
    Writer w;
    w.u64(id);
    Reply r = Call(op, w);
    return r.ok ? r.code : 1;
  }
  // A batch's answer: the request's status, then one entry per item.
  struct Item {
    int32_t code = 1;
    uint64_t id = 0, off = 0, size = 0;  // id: the pin or the reservation
  };
  struct Batch {
    int32_t code = 1;  // 1: no (whole) reply
    std::string message;
    std::vector<Item> items;
  };
  static Batch BatchOf(const Reply& r) {
    Batch b;
    if (!r.ok) return b;
    b.code = r.code;
    b.message = r.message;
    if (r.code != 0) return b;
    Reader rd = r.reader();
    const uint32_t n = rd.u32();
    for (uint32_t i = 0; i < n && rd.ok(); ++i) {
      Item it;
      it.code = rd.i32();
      it.id = rd.u64();
      it.off = rd.u64();
      it.size = rd.u64();
      b.items.push_back(it);
    }
    if (!rd.done() || b.items.size() != n) b.code = 1;
    return b;
  }
  // kLoadBatch of the blocks keyed by `fills`, shard `shard`.
  Batch LoadBatch(uint32_t ns, const std::vector<uint8_t>& fills, uint32_t flags = 0, uint32_t shard = 0) {
    Writer w;
    w.u32(ns);
    w.u32(shard);
    w.u32(flags);
    w.u32(static_cast<uint32_t>(fills.size()));
    for (uint8_t f : fills) {
      uint8_t k[16];
      Key(f, k);
      w.raw(k, 16);
    }
    return BatchOf(Call(shm::kLoadBatch, w));
  }
  // kStoreBatchBegin of the blocks keyed by `fills`, each `total` bytes.
  Batch StoreBatchBegin(uint32_t ns, const std::vector<uint8_t>& fills, uint64_t total = kShardBytes) {
    Writer w;
    w.u32(ns);
    w.u32(0);
    w.u64(0);
    w.u32(static_cast<uint32_t>(fills.size()));
    for (uint8_t f : fills) {
      uint8_t k[16], none[16] = {};
      Key(f, k);
      w.raw(k, 16);
      w.u64(total);
      w.u32(0);
      w.raw(none, 16);
    }
    return BatchOf(Call(shm::kStoreBatchBegin, w));
  }
  // kStoreBatchCommit or kStoreBatchAbort of `ids`: the request's status
  // (1: no whole reply) and, on OK, each id's in *codes.
  int32_t FinishBatch(uint32_t op, const std::vector<uint64_t>& ids, std::vector<int32_t>* codes) {
    Writer w;
    w.u32(static_cast<uint32_t>(ids.size()));
    for (uint64_t id : ids) w.u64(id);
    Reply r = Call(op, w);
    codes->clear();
    if (!r.ok) return 1;
    if (r.code != 0) return r.code;
    Reader rd = r.reader();
    const uint32_t n = rd.u32();
    for (uint32_t i = 0; i < n && rd.ok(); ++i) codes->push_back(rd.i32());
    return rd.done() && codes->size() == ids.size() ? 0 : 1;
  }
  // kRelease of `pins` (no reply).
  bool Release(const std::vector<uint64_t>& pins) {
    Writer w;
    w.u32(static_cast<uint32_t>(pins.size()));
    for (uint64_t p : pins) w.u64(p);
    return Send(shm::kRelease, w);
  }
  uint8_t* base() const { return base_; }
  uint64_t size() const { return size_; }
  bool got_fd() const { return got_fd_; }
  int fd() const { return fd_; }

 private:
  bool RecvAll(void* p, size_t n, int* passed_fd) {
    char* c = static_cast<char*>(p);
    while (n > 0) {
      pollfd pf{fd_, POLLIN, 0};
      if (poll(&pf, 1, kWaitMs) <= 0) return false;
      iovec iov{c, n};
      alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))];
      msghdr m{};
      m.msg_iov = &iov;
      m.msg_iovlen = 1;
      m.msg_control = cbuf;
      m.msg_controllen = sizeof cbuf;
      const ssize_t r = recvmsg(fd_, &m, MSG_CMSG_CLOEXEC);
      if (r <= 0) return false;
      for (cmsghdr* cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
          int got;
          std::memcpy(&got, CMSG_DATA(cm), sizeof got);
          if (passed_fd && *passed_fd < 0) *passed_fd = got;
          else close(got);
        }
      }
      c += r;
      n -= static_cast<size_t>(r);
    }
    return true;
  }
  int fd_ = -1;
  uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  bool got_fd_ = false;
};

}  // namespace shmtest

#endif  // KVC_TESTS_NODE_SHM_RAW_H_
