// SsdTier: blocks on local disk, packed into large append-only segment files
// under one directory, surviving restarts.
//
// Layout of the directory (docs/ssd-tier.md is the normative description):
//   FORMAT        "kvc-ssd <version>\n": a directory of a newer or unknown
//                 format is refused (KVC_ERR_UNSUPPORTED).
//   LOCK          flock()ed while a process has the directory open: a second
//                 opener gets KVC_ERR_UNAVAILABLE ("in use by pid N").
//   NAMESPACES    revision epochs per namespace seed, replaced atomically.
//   seg-<n>.kvc   segments: a header page, then records of (header page,
//                 value padded to 4 KiB), each value starting 4 KiB-aligned so
//                 it can be read with O_DIRECT, then (once sealed) a footer of
//                 header copies and a trailer page. A header holds the key,
//                 namespace seed, shard, tenant, epoch, expiry (unix ms),
//                 length, write sequence number, the value's XXH3-64 checksum
//                 and the header's own checksum. An Erase appends a tombstone
//                 (a header page alone).
//
// Writes append to the open segment through an in-memory write buffer;
// a background flusher writes full buffers (O_DIRECT where the filesystem
// allows it, buffered otherwise; io_uring where available), and partly
// filled ones after 50 ms. Space is reclaimed by cleaning segments: the
// tier's eviction policy names victim blocks (live values are kept below
// max_live_share of the capacity); when the segments' bytes reach the
// capacity less one segment (cleaning's reserve), the sealed segment with
// the most dead bytes has its live blocks re-appended and its file deleted.
//
// Durability: a Put is *durable* once the segment bytes up to and including
// its record have been written and fdatasync()ed. Put(..., durable=true)
// returns only then; Flush() makes every earlier Put durable. After a crash,
// Open() serves exactly the blocks whose records are whole and whose checksums
// verify: every durable block, and possibly some later ones that happened to
// reach the disk whole; a torn tail is discarded and counted. The newest
// record of an id wins (a tombstone hides it); blocks below their
// namespace's persisted epoch or past their expiry are not served. Open reads
// only the footers of sealed segments and verifies every value of a segment
// that lacks one (the one being written at a crash); other values are
// verified when read.
//
// What survives a restart: every block not removed; an Erase once a later
// Flush or durable Put returns; a BumpNamespace when it returns. A block
// *evicted* (capacity, quota) may come back after a restart until cleaning
// deletes its segment: its bytes are still the ones written for its key.
//
// Reads verify the header and the value's checksum; a mismatch is
// KVC_ERR_CORRUPT, counted and logged (stderr, at most a line a second), and
// the block is dropped: never wrong bytes.
//
// Resources: one file descriptor per segment (capacity / segment_bytes, e.g.
// 1,600 for 100 GiB), one flusher thread, write buffers of up to 4 MiB
// (at most about 4 queued), and about 250 bytes of memory per block.
//
// Thread-safe: all methods may be called from any thread at once.
#ifndef KVC_TIER_SSD_TIER_H_
#define KVC_TIER_SSD_TIER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/block_key.h"
#include "util/status.h"

namespace kvc {

struct SsdOptions {
  std::string dir;                       // created if missing
  uint64_t capacity_bytes = 0;           // required: bytes of segments on disk
  uint64_t segment_bytes = 64ull << 20;  // Default: 64 MiB (clamped to capacity/8)
  std::string policy;                    // Default: DefaultPolicyName()
  bool direct_io = true;                 // O_DIRECT when the filesystem allows
  bool io_uring = true;                  // when compiled in and the kernel allows
  // Live values are kept at or below this share of capacity_bytes (and two
  // segments below it), so cleaning finds dead space to reclaim without
  // relocating much. Default: 0.9.
  double max_live_share = 0.9;
};

// The persistent identity of a block shard.
struct SsdBlockId {
  BlockKey ns;  // the namespace seed
  BlockKey key;
  uint32_t shard = 0;
  bool operator==(const SsdBlockId& o) const { return ns == o.ns && key == o.key && shard == o.shard; }
};

struct SsdMeta {
  uint64_t epoch = 0;
  int64_t expires_at_unix_ms = 0;  // 0: never
  uint32_t tenant = 0;
  uint64_t len = 0;
  uint64_t checksum = 0;
};

// used_bytes: bytes of segment files (what the capacity bounds); live_bytes:
// value bytes of present blocks. puts: stored; put_rejects: refused (quota,
// space, I/O, bad argument). misses include checksum failures and expired
// blocks; evictions include quota_evictions; stale_removed: dropped by
// BumpNamespace. recovery_*: what the last Open found.
struct SsdStats {
  uint64_t capacity_bytes = 0, used_bytes = 0, live_bytes = 0, blocks = 0, segments = 0;
  uint64_t tombstones = 0;
  uint64_t bytes_written = 0, bytes_read = 0, puts = 0, reads = 0, hits = 0, misses = 0;
  uint64_t expired = 0, erases = 0, stale_removed = 0;
  uint64_t evictions = 0, quota_evictions = 0, segments_cleaned = 0, bytes_relocated = 0;
  uint64_t checksum_failures = 0, io_errors = 0, put_rejects = 0;
  uint64_t recovered_blocks = 0, recovery_discarded_records = 0, recovery_discarded_bytes = 0;
  uint64_t recovery_scanned_segments = 0;  // had no valid footer: read whole, values verified
  bool direct_io = false, io_uring = false;
};

class SsdTier {
 public:
  // Opens (creating or recovering) the tier in opts.dir. Errors:
  // KVC_ERR_INVALID_ARGUMENT (bad options: capacity_bytes below 512 KiB,
  // segment_bytes below 64 KiB, an unknown policy), KVC_ERR_UNSUPPORTED
  // (newer or unknown format, or segments without FORMAT),
  // KVC_ERR_UNAVAILABLE (locked by another process, or by another SsdTier
  // of this one), KVC_ERR_CORRUPT (NAMESPACES damaged: epochs unknown, so
  // nothing is served until an operator clears the directory), KVC_ERR_IO
  // (cannot create/read).
  static Result<std::unique_ptr<SsdTier>> Open(const SsdOptions& opts);
  // Flushes the write buffer (best effort) and releases the lock.
  ~SsdTier();

  // Appends (id -> data) with its metadata, replacing an older record of the
  // same id. `meta.checksum` must be XXH3-64 of data (the caller computed it
  // at commit; it is checked: KVC_ERR_INVALID_ARGUMENT otherwise, as for a
  // value larger than a segment holds or an epoch below the namespace's).
  // Returns once the block is visible to Read; with durable=true, once it is
  // durable. KVC_ERR_NO_SPACE when nothing can be cleaned to make room or the
  // filesystem is full (the block is not stored), KVC_ERR_QUOTA (see
  // SetTenantQuota), KVC_ERR_IO on a write error (the block is not stored and
  // nothing half-written is ever served). A write error found after a
  // non-durable Put returned drops that block and is reported by the next
  // Flush.
  Status Put(const SsdBlockId& id, const SsdMeta& meta, const void* data, bool durable);

  // Whether `id` is present and not expired; its metadata in *out (may be
  // null). Not an access: the policy is not told.
  bool Lookup(const SsdBlockId& id, SsdMeta* out) const;
  // Copies the value into dst (exactly meta.len bytes), verifying the
  // checksum. KVC_ERR_NOT_FOUND (absent or expired), KVC_ERR_CORRUPT (the
  // block is dropped; dst is zeroed), KVC_ERR_IO, KVC_ERR_LAYOUT (len
  // differs). Fastest with a 4 KiB-aligned dst and len: O_DIRECT then reads
  // straight into it.
  Status Read(const SsdBlockId& id, void* dst, uint64_t len);
  // Records a hit for the eviction policy without reading.
  void Touch(const SsdBlockId& id);
  // Removes `id` (appending a tombstone, durable with the next Flush).
  // KVC_ERR_NOT_FOUND if absent.
  Status Erase(const SsdBlockId& id);
  // Removes every block of namespace `ns` whose epoch is below `epoch`, and
  // persists `epoch` as the namespace's current epoch (see NamespaceEpoch)
  // before returning. Epochs only grow: a lower one is
  // KVC_ERR_INVALID_ARGUMENT; Puts below the current epoch are refused.
  Status BumpNamespace(const BlockKey& ns, uint64_t epoch);
  // The epoch persisted for `ns` (0 if none): a reopened cache resumes there.
  uint64_t NamespaceEpoch(const BlockKey& ns) const;
  // Makes every earlier Put and Erase durable. Returns the first write error
  // since the last Flush, if any (its blocks were dropped).
  Status Flush();

  // Per-tenant hard quota (bytes of live values) in this tier; 0 = none. A
  // Put of a tenant at its quota evicts that tenant's own blocks (in policy
  // order) and never another tenant's; if it cannot, KVC_ERR_QUOTA. Setting
  // a quota below the tenant's bytes evicts its blocks down to it at once.
  // Quotas live in memory only: set them again after Open.
  void SetTenantQuota(uint32_t tenant, uint64_t bytes);
  // Live bytes and blocks of `tenant`.
  uint64_t TenantBytes(uint32_t tenant) const;
  uint64_t TenantBlocks(uint32_t tenant) const;

  // Calls fn for every present, unexpired block (inspection, warm index
  // rebuild, a drain's hand-off), hottest first in the tier policy's order
  // (EvictionPolicy::HottestFirst), on a snapshot taken under the lock: fn
  // may call the tier.
  void ForEach(const std::function<void(const SsdBlockId&, const SsdMeta&)>& fn) const;

  SsdStats Stats() const;
  nlohmann::json StatsJson() const;

  class Impl;

 private:
  explicit SsdTier(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kvc

#endif  // KVC_TIER_SSD_TIER_H_
