// ssd_segment: reading a segment file back at Open (its footer, or a record
// by record scan when the footer is missing or damaged) and building the
// footer that seals one.
//
// Free functions: thread-compatible (one caller per file at a time).
#ifndef KVC_TIER_SSD_SEGMENT_H_
#define KVC_TIER_SSD_SEGMENT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "tier/ssd_format.h"
#include "tier/ssd_io.h"
#include "util/status.h"

namespace kvc::ssd {

struct SegmentScan {
  // False: the first page is not a segment header for this number (a foreign
  // or garbage file); nothing else is filled in.
  bool valid_header = false;
  // True: the items come from a valid footer (headers verified, values not:
  // a sealed segment's values were synced before its footer was written, and
  // Read verifies them). False: from a scan that verified every value.
  bool from_footer = false;
  std::vector<RecordHeader> items;  // whole records and tombstones, in file order
  uint64_t end = 0;        // where the last whole record ends (a footer may follow)
  uint64_t file_size = 0;
  // Records dropped by the scan: a header that verified with a value that did
  // not, and one for a torn or garbage tail.
  uint64_t discarded_records = 0;
  uint64_t discarded_bytes = 0;  // bytes after `end` that are neither records nor a footer
};

// Reads segment `segno` open as fd (O_DIRECT or not). KVC_ERR_IO only when
// the file cannot be read; damage is reported in *out, never as an error.
Status ScanSegment(int fd, const std::string& path, uint64_t segno, SegmentScan* out);

// The footer of a segment whose records end at `entries_offset`: the
// `count` 128-byte header copies in `entries`, padded to a page, then the
// trailer page. *out receives FooterBytes(count) bytes.
void BuildFooter(uint64_t segno, uint64_t entries_offset, const uint8_t* entries, uint64_t count,
                 AlignedBuffer* out);

}  // namespace kvc::ssd

#endif  // KVC_TIER_SSD_SEGMENT_H_
