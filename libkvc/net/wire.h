// Protobuf wire format read straight from a gRPC ByteBuffer's slices, for
// the messages that carry a block's bytes (kvc.v1.LoadChunk on the client,
// kvc.v1.StoreMessage on the node): their `bytes` data field is copied once,
// from gRPC's buffers to where it goes, instead of into a parsed message
// first. Only the node and its client include it.
#ifndef KVC_NET_WIRE_H_
#define KVC_NET_WIRE_H_

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>

namespace kvc::net {

// A cursor over one message's bytes. Every read is bounded by left(), the
// bytes from the cursor to the end of the current scope (the message, or a
// submessage after Enter).
class SliceReader {
 public:
  struct Mark {
    size_t slice = 0, pos = 0;
  };

  bool Reset(const grpc::ByteBuffer& bb) {
    slices_.clear();
    si_ = pos_ = 0;
    left_ = 0;
    if (!bb.Dump(&slices_).ok()) return false;
    left_ = bb.Length();
    return true;
  }
  uint64_t left() const { return left_; }
  Mark mark() const { return {si_, pos_}; }

  bool Varint(uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (left_ == 0 || !Next()) return false;
      const uint8_t b = slices_[si_].begin()[pos_++];
      --left_;
      *v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }
  // A field's tag: false at a malformed one (field 0, a group, wire type 6/7).
  bool Tag(uint64_t* field, uint32_t* wire) {
    uint64_t t;
    if (!Varint(&t)) return false;
    *field = t >> 3;
    *wire = static_cast<uint32_t>(t & 7);
    return *field != 0 && (*wire == 0 || *wire == 1 || *wire == 2 || *wire == 5);
  }
  // Skips the value of a field of wire type `wire`.
  bool SkipValue(uint32_t wire) {
    uint64_t v;
    switch (wire) {
      case 0: return Varint(&v);
      case 1: return Skip(8);
      case 5: return Skip(4);
      case 2: return Varint(&v) && Skip(v);
      default: return false;
    }
  }
  bool Skip(uint64_t n) { return Move(nullptr, n); }
  bool Copy(void* out, uint64_t n) { return Move(static_cast<char*>(out), n); }
  // Copies n bytes from `m` (a mark taken in this message) to `out`.
  void CopyFrom(Mark m, void* out, uint64_t n) {
    si_ = m.slice;
    pos_ = m.pos;
    left_ = n;
    (void)Copy(out, n);
  }
  // Narrows the scope to the next n bytes (a submessage); Leave restores the
  // outer scope past them. REQUIRES: n <= left().
  uint64_t Enter(uint64_t n) {
    const uint64_t outer = left_ - n;
    left_ = n;
    return outer;
  }
  bool Leave(uint64_t outer) {
    if (left_ != 0) return false;
    left_ = outer;
    return true;
  }

 private:
  bool Next() {  // past empty or finished slices
    while (si_ < slices_.size() && pos_ == slices_[si_].size()) {
      ++si_;
      pos_ = 0;
    }
    return si_ < slices_.size();
  }
  bool Move(char* out, uint64_t n) {
    if (n > left_) return false;
    left_ -= n;
    while (n > 0) {
      if (!Next()) return false;
      const uint64_t k = std::min<uint64_t>(n, slices_[si_].size() - pos_);
      if (out != nullptr) {
        std::memcpy(out, slices_[si_].begin() + pos_, k);
        out += k;
      }
      pos_ += k;
      n -= k;
    }
    return true;
  }

  std::vector<grpc::Slice> slices_;
  size_t si_ = 0, pos_ = 0;  // the next byte: slices_[si_].begin()[pos_]
  uint64_t left_ = 0;
};

// Appends a varint to `out`.
inline void PutVarint(std::string* out, uint64_t v) {
  for (; v >= 0x80; v >>= 7) out->push_back(static_cast<char>((v & 0x7f) | 0x80));
  out->push_back(static_cast<char>(v));
}

// Appends the key of length-delimited field `field` (wire type 2) and the
// length that follows it: what protobuf writes before a bytes, string or
// message field's `len` bytes.
inline void PutLengthPrefix(std::string* out, uint32_t field, uint64_t len) {
  PutVarint(out, (static_cast<uint64_t>(field) << 3) | 2);
  PutVarint(out, len);
}

}  // namespace kvc::net

#endif  // KVC_NET_WIRE_H_
