#include "tier/ssd_segment.h"

#include <sys/stat.h>

#include <cstring>

#include <xxhash.h>

#include "util/checksum.h"

namespace kvc::ssd {
namespace {

// The footer path: true and *items filled when the trailer, the header
// copies and their placement all check out.
bool ReadFooter(int fd, const std::string& path, uint64_t segno, uint64_t file_size,
                std::vector<RecordHeader>* items, uint64_t* end) {
  if (file_size < 3 * kPage || file_size % kPage != 0) return false;
  AlignedBuffer page(kPage);
  size_t got = 0;
  if (!PreadFull(fd, page.data(), kPage, file_size - kPage, path, &got).ok() || got != kPage) {
    return false;
  }
  Trailer t;
  if (!DecodeTrailer(page.data(), &t) || t.segno != segno) return false;
  if (t.entries_offset < kPage || t.count > file_size / kPage) return false;
  if (t.entries_offset + FooterBytes(t.count) != file_size) return false;
  const uint64_t bytes = AlignUp(t.count * kRecordHeaderBytes);
  AlignedBuffer entries(bytes == 0 ? kPage : bytes);
  if (bytes != 0) {
    if (!PreadFull(fd, entries.data(), bytes, t.entries_offset, path, &got).ok() || got != bytes) {
      return false;
    }
  }
  if (XXH3_64bits(entries.data(), t.count * kRecordHeaderBytes) != t.entries_checksum) return false;
  std::vector<RecordHeader> out;
  out.reserve(t.count);
  uint64_t next = kPage;  // records are in file order and do not overlap
  for (uint64_t i = 0; i < t.count; ++i) {
    RecordHeader h;
    if (!DecodeRecordHeader(entries.data() + i * kRecordHeaderBytes, &h)) return false;
    if (h.segno != segno || h.offset < next) return false;
    next = h.offset + h.footprint();
    if (next > t.entries_offset) return false;
    out.push_back(h);
  }
  *items = std::move(out);
  *end = t.entries_offset;
  return true;
}

}  // namespace

Status ScanSegment(int fd, const std::string& path, uint64_t segno, SegmentScan* out) {
  *out = SegmentScan();
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoStatus("inspecting", path, errno);
  out->file_size = static_cast<uint64_t>(st.st_size);

  AlignedBuffer page(kPage);
  size_t got = 0;
  KVC_RETURN_IF_ERROR(PreadFull(fd, page.data(), kPage, 0, path, &got));
  if (got != kPage || !DecodeSegmentHeader(page.data(), segno)) {
    out->discarded_bytes = out->file_size;
    out->discarded_records = out->file_size > 0 ? 1 : 0;
    return Status::Ok();
  }
  out->valid_header = true;
  if (ReadFooter(fd, path, segno, out->file_size, &out->items, &out->end)) {
    out->from_footer = true;
    return Status::Ok();
  }

  // No usable footer: walk record by record from the first page, trusting a
  // length only from a header that verifies, and verifying every value.
  AlignedBuffer value;
  uint64_t pos = kPage;
  while (pos + kPage <= out->file_size) {
    KVC_RETURN_IF_ERROR(PreadFull(fd, page.data(), kPage, pos, path, &got));
    RecordHeader h;
    if (got != kPage || !DecodeRecordHeader(page.data(), &h) || h.segno != segno ||
        h.offset != pos) {
      break;
    }
    const uint64_t fp = h.footprint();
    if (pos + fp > out->file_size) break;  // torn: the value did not all reach the file
    if (!h.tombstone()) {
      const uint64_t padded = AlignUp(h.meta.len);
      value.Reserve(padded == 0 ? kPage : padded);
      if (padded != 0) {
        KVC_RETURN_IF_ERROR(PreadFull(fd, value.data(), padded, pos + kPage, path, &got));
        if (got != padded) break;
      }
      if (Checksum64(value.data(), h.meta.len) != h.meta.checksum) {
        ++out->discarded_records;  // its header is sound, so the walk goes on
        pos += fp;
        continue;
      }
    }
    out->items.push_back(h);
    pos += fp;
  }
  out->end = pos;
  if (pos < out->file_size) {
    out->discarded_bytes = out->file_size - pos;
    // A damaged footer right after the records loses no record; anything
    // else there is a torn or garbage record.
    Trailer t;
    const bool footer_follows =
        out->file_size % kPage == 0 &&
        PreadFull(fd, page.data(), kPage, out->file_size - kPage, path, &got).ok() &&
        got == kPage && DecodeTrailer(page.data(), &t) && t.segno == segno &&
        t.entries_offset == pos;
    if (!footer_follows) ++out->discarded_records;
  }
  return Status::Ok();
}

void BuildFooter(uint64_t segno, uint64_t entries_offset, const uint8_t* entries, uint64_t count,
                 AlignedBuffer* out) {
  const uint64_t bytes = FooterBytes(count);
  out->Reserve(bytes);
  std::memset(out->data(), 0, bytes);
  if (count != 0) std::memcpy(out->data(), entries, count * kRecordHeaderBytes);
  Trailer t;
  t.segno = segno;
  t.count = count;
  t.entries_offset = entries_offset;
  t.entries_checksum = XXH3_64bits(entries, count * kRecordHeaderBytes);
  EncodeTrailer(t, out->data() + bytes - kPage);
}

}  // namespace kvc::ssd
