// Trace: a Mooncake-format request trace, loaded for `kvc sim`.
//
// Input is JSONL, one request per line, an object with
//   timestamp      number >= 0 (ms; read, not used)
//   input_length   integer >= 0 (tokens; read, not used)
//   output_length  integer >= 0 (tokens; read, not used)
//   hash_ids       array of integers >= 0, one per prompt block, prefix-
//                  chained: two requests share an id only if they share the
//                  whole prefix up to that block
// Other fields are ignored; blank lines are skipped. The trace's ids are
// mapped to dense block handles 0..blocks()-1 in order of first appearance.
//
// Thread safety: immutable after Load/Parse; share freely.
#ifndef KVC_SIM_TRACE_H_
#define KVC_SIM_TRACE_H_

#include <cstdint>
#include <istream>
#include <span>
#include <string>
#include <vector>

#include "util/status.h"

namespace kvc {

class Trace {
 public:
  // Reads the file at `path`. KVC_ERR_IO if it cannot be read; KVC_ERR_PARSE
  // naming the line and the reason for a malformed line or an empty trace
  // (no requests, or no blocks in any request).
  static Result<Trace> Load(const std::string& path);
  // Parses JSONL from `in`; `source` names it in error messages.
  static Result<Trace> Parse(std::istream& in, const std::string& source);

  size_t requests() const { return offsets_.size() - 1; }
  // The handles of request `i`'s blocks, in prompt order. REQUIRES: i < requests().
  std::span<const uint32_t> request(size_t i) const {
    return {blocks_.data() + offsets_[i], blocks_.data() + offsets_[i + 1]};
  }
  // Every block access, request after request.
  std::span<const uint32_t> accesses() const { return blocks_; }
  // The number of distinct blocks (handles are below it).
  size_t blocks() const { return ids_.size(); }
  // The trace's own id of handle `h`.
  uint64_t id(uint32_t h) const { return ids_[h]; }

 private:
  // Handles stay well below kNoHandle.
  static constexpr size_t kMaxBlocks = size_t{1} << 31;

  Trace() = default;

  std::vector<uint32_t> blocks_;        // every request's handles, concatenated
  std::vector<size_t> offsets_{0};      // request i is blocks_[offsets_[i], offsets_[i+1])
  std::vector<uint64_t> ids_;           // by handle
};

}  // namespace kvc

#endif  // KVC_SIM_TRACE_H_
