#include "tier/ssd_format.h"

#include <bit>
#include <charconv>
#include <cstring>

#include <xxhash.h>

namespace kvc::ssd {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the on-disk format is little-endian and is encoded by memcpy");

constexpr uint32_t kRecordMagic = 0x5243564b;  // "KVCR"
constexpr char kSegmentMagic[8] = {'K', 'V', 'C', 'S', 'E', 'G', '0', '1'};
constexpr char kTrailerMagic[8] = {'K', 'V', 'C', 'S', 'E', 'G', 'F', 'T'};
constexpr char kNamespacesMagic[8] = {'K', 'V', 'C', 'N', 'S', 'E', 'P', '1'};

template <class T>
void Put(uint8_t* p, size_t off, T v) {
  std::memcpy(p + off, &v, sizeof(T));
}
template <class T>
T Get(const uint8_t* p, size_t off) {
  T v;
  std::memcpy(&v, p + off, sizeof(T));
  return v;
}

bool AllZero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (p[i] != 0) return false;
  return true;
}

}  // namespace

// Record header, 128 bytes:
//   0 magic u32 | 4 version u16 | 6 flags u16 | 8 seq u64 | 16 segno u64 |
//   24 offset u64 | 32 ns[16] | 48 key[16] | 64 shard u32 | 68 tenant u32 |
//   72 epoch u64 | 80 expires_at_unix_ms i64 | 88 len u64 | 96 checksum u64 |
//   104 reserved[16] = 0 | 120 XXH3-64 of bytes [0,120)
void EncodeRecordHeader(const RecordHeader& h, uint8_t* out) {
  std::memset(out, 0, kRecordHeaderBytes);
  Put<uint32_t>(out, 0, kRecordMagic);
  Put<uint16_t>(out, 4, static_cast<uint16_t>(kFormatVersion));
  Put<uint16_t>(out, 6, h.flags);
  Put<uint64_t>(out, 8, h.seq);
  Put<uint64_t>(out, 16, h.segno);
  Put<uint64_t>(out, 24, h.offset);
  std::memcpy(out + 32, h.id.ns.bytes.data(), 16);
  std::memcpy(out + 48, h.id.key.bytes.data(), 16);
  Put<uint32_t>(out, 64, h.id.shard);
  Put<uint32_t>(out, 68, h.meta.tenant);
  Put<uint64_t>(out, 72, h.meta.epoch);
  Put<int64_t>(out, 80, h.meta.expires_at_unix_ms);
  Put<uint64_t>(out, 88, h.meta.len);
  Put<uint64_t>(out, 96, h.meta.checksum);
  Put<uint64_t>(out, 120, XXH3_64bits(out, 120));
}

bool DecodeRecordHeader(const uint8_t* in, RecordHeader* out) {
  if (Get<uint32_t>(in, 0) != kRecordMagic) return false;
  if (Get<uint16_t>(in, 4) != kFormatVersion) return false;
  if (Get<uint64_t>(in, 120) != XXH3_64bits(in, 120)) return false;
  if (!AllZero(in + 104, 16)) return false;
  RecordHeader h;
  h.flags = Get<uint16_t>(in, 6);
  if ((h.flags & ~RecordHeader::kTombstone) != 0) return false;
  h.seq = Get<uint64_t>(in, 8);
  h.segno = Get<uint64_t>(in, 16);
  h.offset = Get<uint64_t>(in, 24);
  std::memcpy(h.id.ns.bytes.data(), in + 32, 16);
  std::memcpy(h.id.key.bytes.data(), in + 48, 16);
  h.id.shard = Get<uint32_t>(in, 64);
  h.meta.tenant = Get<uint32_t>(in, 68);
  h.meta.epoch = Get<uint64_t>(in, 72);
  h.meta.expires_at_unix_ms = Get<int64_t>(in, 80);
  h.meta.len = Get<uint64_t>(in, 88);
  h.meta.checksum = Get<uint64_t>(in, 96);
  if (h.offset % kPage != 0) return false;
  if (h.tombstone() && h.meta.len != 0) return false;
  *out = h;
  return true;
}

// Segment header page: 0 magic[8] | 8 version u32 | 12 zero u32 | 16 segno u64 |
//   24 created_unix_ms i64 | 32 XXH3-64 of [0,32) | rest zero.
void EncodeSegmentHeader(uint64_t segno, int64_t created_unix_ms, uint8_t* page) {
  std::memset(page, 0, kPage);
  std::memcpy(page, kSegmentMagic, 8);
  Put<uint32_t>(page, 8, kFormatVersion);
  Put<uint64_t>(page, 16, segno);
  Put<int64_t>(page, 24, created_unix_ms);
  Put<uint64_t>(page, 32, XXH3_64bits(page, 32));
}

bool DecodeSegmentHeader(const uint8_t* page, uint64_t segno) {
  return std::memcmp(page, kSegmentMagic, 8) == 0 && Get<uint32_t>(page, 8) == kFormatVersion &&
         Get<uint32_t>(page, 12) == 0 && Get<uint64_t>(page, 16) == segno &&
         Get<uint64_t>(page, 32) == XXH3_64bits(page, 32);
}

// Trailer page: 0 magic[8] | 8 version u32 | 12 zero u32 | 16 segno u64 |
//   24 count u64 | 32 entries_offset u64 | 40 entries_checksum u64 |
//   48 XXH3-64 of [0,48) | rest zero.
void EncodeTrailer(const Trailer& t, uint8_t* page) {
  std::memset(page, 0, kPage);
  std::memcpy(page, kTrailerMagic, 8);
  Put<uint32_t>(page, 8, kFormatVersion);
  Put<uint64_t>(page, 16, t.segno);
  Put<uint64_t>(page, 24, t.count);
  Put<uint64_t>(page, 32, t.entries_offset);
  Put<uint64_t>(page, 40, t.entries_checksum);
  Put<uint64_t>(page, 48, XXH3_64bits(page, 48));
}

bool DecodeTrailer(const uint8_t* page, Trailer* out) {
  if (std::memcmp(page, kTrailerMagic, 8) != 0 || Get<uint32_t>(page, 8) != kFormatVersion ||
      Get<uint32_t>(page, 12) != 0 || Get<uint64_t>(page, 48) != XXH3_64bits(page, 48)) {
    return false;
  }
  out->segno = Get<uint64_t>(page, 16);
  out->count = Get<uint64_t>(page, 24);
  out->entries_offset = Get<uint64_t>(page, 32);
  out->entries_checksum = Get<uint64_t>(page, 40);
  return out->entries_offset % kPage == 0;
}

std::string FormatFileText() { return "kvc-ssd " + std::to_string(kFormatVersion) + "\n"; }

Status CheckFormatText(std::string_view text, const std::string& path) {
  constexpr std::string_view kPrefix = "kvc-ssd ";
  std::string_view shown = text.substr(0, 40);
  while (!shown.empty() && (shown.back() == '\n' || shown.back() == '\r')) shown.remove_suffix(1);
  if (text.substr(0, kPrefix.size()) != kPrefix || text.empty() || text.back() != '\n') {
    return {Code::kUnsupported, path + " is not a kvc-ssd format file (it reads \"" +
                                    std::string(shown) + "\")"};
  }
  std::string_view digits = text.substr(kPrefix.size(), text.size() - kPrefix.size() - 1);
  uint64_t version = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), version);
  if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty()) {
    return {Code::kUnsupported, path + " names an unknown format \"" + std::string(shown) + "\""};
  }
  if (version > kFormatVersion) {
    return {Code::kUnsupported, path + " is format " + std::to_string(version) +
                                    ", newer than this build's " +
                                    std::to_string(kFormatVersion)};
  }
  if (version != kFormatVersion) {
    return {Code::kUnsupported, path + " is format " + std::to_string(version) +
                                    ", which this build does not read (it reads " +
                                    std::to_string(kFormatVersion) + ")"};
  }
  return Status::Ok();
}

// NAMESPACES: 0 magic[8] | 8 version u32 | 12 count u32 |
//   count x (seed[16] | epoch u64) | XXH3-64 of everything before it.
std::string EncodeNamespaces(const EpochMap& epochs) {
  std::string out(16 + 24 * epochs.size() + 8, '\0');
  auto* p = reinterpret_cast<uint8_t*>(out.data());
  std::memcpy(p, kNamespacesMagic, 8);
  Put<uint32_t>(p, 8, kFormatVersion);
  Put<uint32_t>(p, 12, static_cast<uint32_t>(epochs.size()));
  size_t off = 16;
  for (const auto& [seed, epoch] : epochs) {
    std::memcpy(p + off, seed.bytes.data(), 16);
    Put<uint64_t>(p, off + 16, epoch);
    off += 24;
  }
  Put<uint64_t>(p, off, XXH3_64bits(p, off));
  return out;
}

Status DecodeNamespaces(std::string_view bytes, const std::string& path, EpochMap* out) {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  auto corrupt = [&](const std::string& why) {
    return Status(Code::kCorrupt, path + " is damaged (" + why +
                                      "): namespace epochs are unknown, so its blocks cannot be "
                                      "trusted; remove the directory's contents to start empty");
  };
  if (bytes.size() < 24 || std::memcmp(p, kNamespacesMagic, 8) != 0) return corrupt("bad magic");
  if (Get<uint32_t>(p, 8) != kFormatVersion) return corrupt("unknown version");
  const uint64_t count = Get<uint32_t>(p, 12);
  if (bytes.size() != 16 + 24 * count + 8) return corrupt("wrong length");
  const size_t end = 16 + 24 * count;
  if (Get<uint64_t>(p, end) != XXH3_64bits(p, end)) return corrupt("checksum mismatch");
  out->clear();
  for (size_t off = 16; off < end; off += 24) {
    BlockKey seed;
    std::memcpy(seed.bytes.data(), p + off, 16);
    (*out)[seed] = Get<uint64_t>(p, off + 16);
  }
  return Status::Ok();
}

std::string SegmentFileName(uint64_t segno) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "seg-%08llu.kvc", static_cast<unsigned long long>(segno));
  return buf;
}

bool ParseSegmentFileName(std::string_view name, uint64_t* segno) {
  constexpr std::string_view kPrefix = "seg-", kSuffix = ".kvc";
  if (name.size() <= kPrefix.size() + kSuffix.size()) return false;
  if (name.substr(0, kPrefix.size()) != kPrefix) return false;
  if (name.substr(name.size() - kSuffix.size()) != kSuffix) return false;
  std::string_view digits = name.substr(kPrefix.size(), name.size() - kPrefix.size() - kSuffix.size());
  for (char c : digits)
    if (c < '0' || c > '9') return false;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), *segno);
  return ec == std::errc() && end == digits.data() + digits.size();
}

uint64_t IdHash(const SsdBlockId& id) {
  uint8_t buf[36];
  std::memcpy(buf, id.ns.bytes.data(), 16);
  std::memcpy(buf + 16, id.key.bytes.data(), 16);
  std::memcpy(buf + 32, &id.shard, 4);
  return XXH3_64bits(buf, sizeof(buf));
}

}  // namespace kvc::ssd
