// ssd_format: the byte layout of an SsdTier directory (docs/ssd-tier.md is
// the normative description; this file is its only encoder and decoder).
//
// Every integer is little-endian. Every structure carries its own XXH3-64
// checksum, so a decoder accepts a structure whole or not at all.
//
// Free functions and value types only: thread-compatible.
#ifndef KVC_TIER_SSD_FORMAT_H_
#define KVC_TIER_SSD_FORMAT_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "tier/ssd_tier.h"
#include "util/status.h"

namespace kvc::ssd {

// The unit of alignment: headers and values start on a page, and O_DIRECT
// transfers are whole pages.
inline constexpr uint64_t kPage = 4096;
// The version written to FORMAT; a directory with another one is refused.
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr size_t kRecordHeaderBytes = 128;

inline constexpr uint64_t AlignUp(uint64_t n, uint64_t a = kPage) { return (n + a - 1) / a * a; }

// Bytes a record occupies in a segment: a header page, then the value padded
// to whole pages. A tombstone is a header page alone.
inline constexpr uint64_t RecordFootprint(uint64_t len) { return kPage + AlignUp(len); }
// Bytes of a segment's footer listing `items` records: their header copies
// padded to whole pages, then the trailer page.
inline constexpr uint64_t FooterBytes(uint64_t items) {
  return AlignUp(items * kRecordHeaderBytes) + kPage;
}

// The 128-byte header at the start of every record's header page (and its
// copy in the segment footer).
struct RecordHeader {
  static constexpr uint16_t kTombstone = 1;  // flags: an Erase, no value
  uint16_t flags = 0;
  uint64_t seq = 0;     // write order, tier-wide; a relocated record keeps it
  uint64_t segno = 0;   // the segment this copy is written in
  uint64_t offset = 0;  // of the header page in that segment
  SsdBlockId id;
  SsdMeta meta;         // len and checksum of the value; 0 for a tombstone

  bool tombstone() const { return (flags & kTombstone) != 0; }
  uint64_t footprint() const { return tombstone() ? kPage : RecordFootprint(meta.len); }
};

void EncodeRecordHeader(const RecordHeader& h, uint8_t* out /* kRecordHeaderBytes */);
// False unless the magic, version, reserved bytes and checksum are right.
bool DecodeRecordHeader(const uint8_t* in, RecordHeader* out);

// The first page of a segment file.
void EncodeSegmentHeader(uint64_t segno, int64_t created_unix_ms, uint8_t* page);
// False unless the page is a valid segment header for `segno`.
bool DecodeSegmentHeader(const uint8_t* page, uint64_t segno);

// The last page of a sealed segment: where its footer's header copies are.
struct Trailer {
  uint64_t segno = 0;
  uint64_t count = 0;           // header copies in the footer
  uint64_t entries_offset = 0;  // where they start: the end of the records
  uint64_t entries_checksum = 0;  // XXH3-64 of count * 128 bytes
};
void EncodeTrailer(const Trailer& t, uint8_t* page);
bool DecodeTrailer(const uint8_t* page, Trailer* out);

// FORMAT: "kvc-ssd <version>\n".
std::string FormatFileText();
// OK for this version; KVC_ERR_UNSUPPORTED naming what was found otherwise.
Status CheckFormatText(std::string_view text, const std::string& path);

// NAMESPACES: epochs by namespace seed.
struct BlockKeyLess {
  bool operator()(const BlockKey& a, const BlockKey& b) const { return a.bytes < b.bytes; }
};
using EpochMap = std::map<BlockKey, uint64_t, BlockKeyLess>;
std::string EncodeNamespaces(const EpochMap& epochs);
// KVC_ERR_CORRUPT when the checksum or the structure is wrong.
Status DecodeNamespaces(std::string_view bytes, const std::string& path, EpochMap* out);

// Segment file names: "seg-<n>.kvc", n in decimal, zero-padded to 8 digits.
std::string SegmentFileName(uint64_t segno);
bool ParseSegmentFileName(std::string_view name, uint64_t* segno);

// A well-mixed 64-bit hash of a block id (policy sketches, id sets).
uint64_t IdHash(const SsdBlockId& id);

}  // namespace kvc::ssd

#endif  // KVC_TIER_SSD_FORMAT_H_
