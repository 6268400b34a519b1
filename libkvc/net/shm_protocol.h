// The same-host path's wire format (docs/node.md, "Same-host path"): the
// frames a client and a node exchange over the node's Unix domain socket.
// The block bytes never travel here: they sit in the node's host arena, a
// memfd the node hands the client with the first reply.
//
// A frame is a FrameHeader followed by `length` bytes of body, every integer
// little-endian (the two ends run on one machine, so in host order, which is
// little-endian on every platform kvc builds for). A client sends a request
// and reads its reply before the next one, except kRelease, which has no
// reply. A reply's body opens with the kvc status (int32) and a message
// (u32 length + bytes), then the op's fields.
//
// The node trusts nothing it reads: a header with an unknown op or a length
// over kMaxFrameBytes ends the connection (after an error reply when one can
// be framed); a body whose fields do not add up is answered with
// KVC_ERR_INVALID_ARGUMENT; ids and offsets are the node's own and are
// looked up, never dereferenced.
//
// Header-only and free of libkvc types, so that test programs can speak the
// protocol raw.
#ifndef KVC_NET_SHM_PROTOCOL_H_
#define KVC_NET_SHM_PROTOCOL_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace kvc::net::shm {

inline constexpr uint32_t kMagic = 0x316d6873;  // "shm1"
inline constexpr uint32_t kVersion = 1;
// Any one frame's body: room for kMaxMatchTokens tokens and a namespace.
inline constexpr uint32_t kMaxFrameBytes = (16u << 20) + 4096;
// What one connection may hold at once.
inline constexpr size_t kMaxPinsPerConnection = 4096;
inline constexpr size_t kMaxReservationsPerConnection = 1024;
inline constexpr size_t kMaxNamespacesPerConnection = 1024;
inline constexpr size_t kMaxStringBytes = 4096;  // a namespace field, a tenant, a credential

enum Op : uint32_t {
  // u32 magic, u32 version, str tenant, str credential, str admin_token
  // -> u64 arena_bytes, with the arena's memfd attached (SCM_RIGHTS) on OK.
  // Must be the first request; a refused one ends the connection. The
  // admin token (may be empty) makes kStats the whole node's, as over gRPC.
  kHello = 1,
  // -> str json
  kStats = 2,
  // str hash, model, revision, adapter, dtype; u32 layers, kv_heads,
  // head_dim, block_tokens, shards -> u32 handle (this connection's name
  // of the namespace in the requests below).
  kOpen = 3,
  // u32 ns, u32 n, n keys of 16 bytes -> u64 blocks, u32 n, n tiers
  kMatch = 4,
  // u32 ns, u32 n, n u32 tokens -> u64 blocks, u32 n, n tiers, n keys
  kMatchTokens = 5,
  // u32 ns, u32 shard, key, u32 flags -> u64 pin, u64 offset, u64 size.
  // The block stays pinned until kRelease of `pin` or the end of the
  // connection. flags kLoadSizeOnly: no pin is kept (pin is 0).
  kLoad = 6,
  // u32 n, n u64 pins -> no reply. A pin this connection does not hold
  // ends the connection.
  kRelease = 7,
  // u32 ns, u32 shard, key, u64 ttl_ms, u64 total_bytes, u32 has_parent,
  // parent key -> u64 reservation, u64 offset, u64 size. The client writes
  // the bytes at `offset` in the arena, then commits or aborts.
  kStoreBegin = 8,
  // u64 reservation -> (status only)
  kStoreCommit = 9,
  kStoreAbort = 10,
  // u32 ns, key -> (status only)
  kDelete = 11,
  // u32 ns -> u64 epoch
  kBumpRevision = 12,
  // Batches (kvc_node_get_batch / kvc_node_put_batch): n <= kMaxBatchItems
  // block shards of one namespace and shard in one request. The reply's
  // status is the request's own (a bad ns, n, or a frame whose fields do not
  // add up); each item then has its own status (NOT_FOUND, EXISTS, ...).
  //
  // u32 ns, u32 shard, u32 flags, u32 n, n keys of 16 bytes
  //   -> u32 n, n x (i32 status, u64 pin, u64 offset, u64 size).
  // A found item stays pinned (pin != 0) until kRelease, as kLoad's; flags
  // kLoadSizeOnly keeps no pins. Pins past kMaxPinsPerConnection make the
  // item's status KVC_ERR_NO_SPACE ("too many pins"), nothing else.
  kLoadBatch = 13,
  // u32 ns, u32 shard, u64 ttl_ms, u32 n, n x (key, u64 total_bytes,
  // u32 has_parent, parent key of 16 bytes)
  //   -> u32 n, n x (i32 status, u64 reservation, u64 offset, u64 size).
  // Each reserved item (status OK) is written at its offset, then committed
  // or aborted with the two ops below, as kStoreBegin's. An item whose
  // total_bytes is not the namespace's shard size is KVC_ERR_LAYOUT;
  // reservations past kMaxReservationsPerConnection are KVC_ERR_NO_SPACE
  // ("too many reservations"). A has_parent other than 0 or 1 fails the
  // whole request, before anything is reserved; so does the node's write
  // fence.
  kStoreBatchBegin = 14,
  // u32 n, n u64 reservations -> u32 n, n x i32 status. Each is committed
  // (or aborted) on its own; a reservation this connection does not hold is
  // that item's KVC_ERR_INVALID_ARGUMENT. The write fence is asked once per
  // commit request; its refusal is each held item's status (aborted).
  kStoreBatchCommit = 15,
  kStoreBatchAbort = 16,
  kMaxOp = 16,
};

inline constexpr uint32_t kMaxBatchItems = 1024;

inline constexpr uint32_t kLoadSizeOnly = 1;

struct FrameHeader {
  uint32_t op;
  uint32_t length;  // body bytes that follow
};
static_assert(sizeof(FrameHeader) == 8);

// Appends fields to a frame body.
class Writer {
 public:
  void u32(uint32_t v) { raw(&v, 4); }
  void u64(uint64_t v) { raw(&v, 8); }
  void i32(int32_t v) { raw(&v, 4); }
  void str(std::string_view s) {
    u32(static_cast<uint32_t>(s.size()));
    raw(s.data(), s.size());
  }
  void raw(const void* p, size_t n) { buf_.append(static_cast<const char*>(p), n); }
  // The whole frame: header, then body.
  std::string Frame(uint32_t op) const {
    FrameHeader h{op, static_cast<uint32_t>(buf_.size())};
    std::string f(reinterpret_cast<const char*>(&h), sizeof h);
    f += buf_;
    return f;
  }
  size_t size() const { return buf_.size(); }

 private:
  std::string buf_;
};

// Reads fields from a frame body; any read past the end (or a string over
// kMaxStringBytes) fails the reader for good, and returns zeros.
class Reader {
 public:
  Reader(const void* p, size_t n) : p_(static_cast<const uint8_t*>(p)), n_(n) {}
  bool ok() const { return ok_; }
  bool done() const { return ok_ && off_ == n_; }
  size_t left() const { return ok_ ? n_ - off_ : 0; }
  uint32_t u32() {
    uint32_t v = 0;
    raw(&v, 4);
    return v;
  }
  uint64_t u64() {
    uint64_t v = 0;
    raw(&v, 8);
    return v;
  }
  int32_t i32() {
    int32_t v = 0;
    raw(&v, 4);
    return v;
  }
  std::string str(size_t max = kMaxStringBytes) {
    const uint32_t n = u32();
    if (!ok_ || n > max || n > n_ - off_) {
      ok_ = false;
      return {};
    }
    std::string s(reinterpret_cast<const char*>(p_ + off_), n);
    off_ += n;
    return s;
  }
  // A pointer to the next n bytes (nullptr, and a failed reader, if fewer).
  const uint8_t* take(size_t n) {
    if (!ok_ || n > n_ - off_) {
      ok_ = false;
      return nullptr;
    }
    const uint8_t* p = p_ + off_;
    off_ += n;
    return p;
  }
  void raw(void* dst, size_t n) {
    const uint8_t* p = take(n);
    if (p) std::memcpy(dst, p, n);
    else std::memset(dst, 0, n);
  }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t off_ = 0;
  bool ok_ = true;
};

}  // namespace kvc::net::shm

#endif  // KVC_NET_SHM_PROTOCOL_H_
