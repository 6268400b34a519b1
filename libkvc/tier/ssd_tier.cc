// SsdTier: see ssd_tier.h for the contract and docs/ssd-tier.md for the
// format and the rules this file implements.
#include "tier/ssd_tier.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include <absl/container/flat_hash_map.h>
#include <xxhash.h>

#include "policy/eviction_policy.h"
#include "tier/ssd_format.h"
#include "tier/ssd_io.h"
#include "tier/ssd_segment.h"
#include "util/checksum.h"

namespace kvc {

using ssd::AlignedBuffer;
using ssd::AlignUp;
using ssd::FooterBytes;
using ssd::kPage;
using ssd::kRecordHeaderBytes;
using ssd::RecordFootprint;
using ssd::RecordHeader;

namespace {

constexpr uint64_t kMinSegmentBytes = 64 << 10;
constexpr uint64_t kMaxBufferBytes = 4 << 20;
// A partly filled write buffer is written out after this long.
constexpr auto kLingerTime = std::chrono::milliseconds(50);

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool Expired(const SsdMeta& m, int64_t now) {
  return m.expires_at_unix_ms != 0 && now >= m.expires_at_unix_ms;
}

struct IdHasher {
  size_t operator()(const SsdBlockId& id) const { return ssd::IdHash(id); }
};

std::string Describe(const SsdBlockId& id) {
  return "key " + id.key.Hex() + " shard " + std::to_string(id.shard);
}

// Scratch pages for reads, one set per thread.
thread_local AlignedBuffer tls_header_page;
thread_local AlignedBuffer tls_bounce;

// Values at least this large are read as pieces of this size submitted at
// once through io_uring, hashed in order as they arrive: the device works on
// several pieces at a time and the checksum overlaps the transfer.
constexpr uint64_t kReadPiece = 256 << 10;
constexpr uint64_t kMaxReadPieces = 15;

// This thread's io_uring for reads; null when io_uring is unavailable.
ssd::IoRing* ThreadReadRing() {
  thread_local std::unique_ptr<ssd::IoRing> ring;
  thread_local bool tried = false;
  if (!tried) {
    tried = true;
    ring = ssd::IoRing::Create(kMaxReadPieces + 1);
  }
  return ring.get();
}

struct Xxh3StateFree {
  void operator()(XXH3_state_t* s) const { XXH3_freeState(s); }
};

struct Segment;

// A contiguous run of a segment's bytes on its way to the file.
struct Buf {
  std::shared_ptr<Segment> seg;
  uint64_t off = 0;  // file offset of mem.data()[0]
  AlignedBuffer mem;
  size_t len = 0;
  uint64_t ticket = 0;     // order of queueing, set when queued
  bool footer = false;     // the footer and trailer: writing it seals seg
  bool cancelled = false;  // seg broke before this was written
};

struct Segment {
  enum class State { kActive, kSealing, kSealed };
  struct Tomb {
    SsdBlockId id;
    uint64_t seq = 0;
    uint64_t offset = 0;
  };

  uint64_t no = 0;
  std::string path;
  int fd = -1;
  State state = State::kActive;
  bool deleted = false;
  bool cleaning = false;
  // Broken: a write or sync failed; records at or past data_end were dropped
  // and the file was cut there. Sealed without a footer from then on.
  bool broken = false;
  Status broken_status;
  bool has_footer = true;    // a footer follows data_end (once written)
  uint64_t data_end = 0;     // end of the records: the next append offset while active
  uint64_t flushed_end = 0;  // [0, flushed_end) has reached the file
  uint64_t synced_end = 0;   // [0, synced_end) is durable
  uint64_t items = 0;        // records and tombstones in the file (footer entries)
  uint64_t live_bytes = 0;   // footprint of live records and tombstones
  uint64_t live_items = 0;
  std::string entries;       // while active: the footer's header copies so far
  std::vector<uint64_t> record_ids;  // IdHash of every record (not tombstone) in the file
  bool ids_sorted = false;
  std::vector<std::pair<uint32_t, uint32_t>> handles;  // (handle, gen) of records put here
  std::vector<Tomb> tombs;
  std::vector<std::shared_ptr<Buf>> pending;  // unwritten buffers of records, in order

  // The bytes this segment occupies, or will once sealed.
  uint64_t Footprint() const { return data_end + (has_footer ? FooterBytes(items) : 0); }
  // Bytes cleaning it would give back.
  int64_t Reclaimable() const {
    return static_cast<int64_t>(Footprint()) - static_cast<int64_t>(live_bytes) -
           static_cast<int64_t>(live_items * kRecordHeaderBytes);
  }
  bool MayHoldRecord(uint64_t id_hash) {
    if (!ids_sorted) {
      std::sort(record_ids.begin(), record_ids.end());
      record_ids.erase(std::unique(record_ids.begin(), record_ids.end()), record_ids.end());
      ids_sorted = true;
    }
    return std::binary_search(record_ids.begin(), record_ids.end(), id_hash);
  }
  ~Segment() {
    if (fd >= 0) ::close(fd);
  }
};
using SegPtr = std::shared_ptr<Segment>;

struct Rec {
  SsdBlockId id;
  SsdMeta meta;
  uint64_t seq = 0;
  SegPtr seg;
  uint64_t offset = 0;  // of the header page
  uint32_t gen = 0;
  bool live = false;
};

struct TenantState {
  uint64_t bytes = 0, blocks = 0, quota = 0;
};

}  // namespace

class SsdTier::Impl {
 public:
  explicit Impl(const SsdOptions& o) : opts_(o) {}
  ~Impl() { Close(); }

  Status Init(std::unique_ptr<EvictionPolicy> policy);
  void Close();

  Status Put(const SsdBlockId& id, const SsdMeta& meta, const void* data, bool durable);
  bool Lookup(const SsdBlockId& id, SsdMeta* out) const;
  Status Read(const SsdBlockId& id, void* dst, uint64_t len);
  void Touch(const SsdBlockId& id);
  Status Erase(const SsdBlockId& id);
  Status BumpNamespace(const BlockKey& ns, uint64_t epoch);
  uint64_t NamespaceEpoch(const BlockKey& ns) const;
  Status Flush();
  void SetTenantQuota(uint32_t tenant, uint64_t bytes);
  uint64_t TenantBytes(uint32_t tenant) const;
  uint64_t TenantBlocks(uint32_t tenant) const;
  void ForEach(const std::function<void(const SsdBlockId&, const SsdMeta&)>& fn) const;
  SsdStats Stats() const;
  nlohmann::json StatsJson() const;

 private:
  using Lock = std::unique_lock<std::mutex>;

  Status LockDir();
  Status CheckFormat();
  Status LoadNamespaces();
  Status Recover();

  // Index and accounting. REQUIRES: mu_.
  uint32_t AddRecordLocked(const RecordHeader& h, const SegPtr& seg);
  void DropLocked(uint32_t h);
  void EvictLocked(uint32_t h, bool quota);
  Status EnforceQuotaLocked(const SsdBlockId& id, uint32_t tenant, uint64_t len);
  void AddTombLocked(const SegPtr& seg, const RecordHeader& h);

  // Appending. REQUIRES: mu_.
  uint64_t AppendCostLocked(uint64_t fp) const;
  Status AppendLocked(RecordHeader* h, const void* value, SegPtr* seg);
  Status OpenSegmentLocked();
  void SealActiveLocked();
  uint64_t QueueCurLocked();
  Status WaitDurableLocked(Lock& lk, const SegPtr& seg, uint64_t offset);
  void BreakSegmentLocked(const SegPtr& seg, uint64_t good_end, const Status& why);
  std::shared_ptr<Buf> NewBufLocked(const SegPtr& seg, uint64_t off, uint64_t size);
  void RecycleLocked(Buf* b);

  // Cleaning: relocates the live records of the segment that gives back the
  // most and deletes it. Releases mu_ while reading. REQUIRES: mu_ held
  // through lk, cleaner_busy_ false.
  Status CleanOneLocked(Lock& lk);

  void FlusherLoop();
  void Log(const std::string& line) const;

  const SsdOptions opts_;
  std::string dir_;
  uint64_t capacity_ = 0, seg_bytes_ = 0, buf_bytes_ = 0, max_value_ = 0;
  uint64_t put_budget_ = 0;   // disk bytes Puts may fill; the rest is cleaning's reserve
  uint64_t live_budget_ = 0;  // footprint of live records beyond which Puts evict
  bool direct_ = false;
  bool uring_reads_ = false;           // large reads go through per-thread rings
  std::unique_ptr<ssd::IoRing> ring_;  // used by the flusher thread only
  int lock_fd_ = -1;
  bool closed_ = false;

  mutable std::mutex mu_;
  std::condition_variable cv_;          // flusher progress, cleaning done
  std::condition_variable flusher_cv_;  // work for the flusher
  std::unique_ptr<EvictionPolicy> policy_;                    // GUARDED_BY(mu_)
  absl::flat_hash_map<SsdBlockId, uint32_t, IdHasher> index_;  // GUARDED_BY(mu_)
  std::vector<Rec> recs_;                                     // GUARDED_BY(mu_), by handle
  std::vector<uint32_t> free_recs_;                           // GUARDED_BY(mu_)
  std::map<uint64_t, SegPtr> segments_;                       // GUARDED_BY(mu_)
  SegPtr active_;                                             // GUARDED_BY(mu_)
  std::shared_ptr<Buf> cur_;  // active_'s buffer being filled; GUARDED_BY(mu_)
  std::chrono::steady_clock::time_point cur_since_;
  std::vector<AlignedBuffer> spare_bufs_;  // GUARDED_BY(mu_)
  uint64_t next_segno_ = 1, next_seq_ = 1;
  uint64_t disk_used_ = 0, live_footprint_ = 0, live_value_bytes_ = 0, tombstones_ = 0;
  ssd::EpochMap epochs_;                                  // GUARDED_BY(mu_)
  absl::flat_hash_map<uint32_t, TenantState> tenants_;    // GUARDED_BY(mu_)
  bool cleaner_busy_ = false;

  // Flusher state. GUARDED_BY(mu_).
  std::deque<std::shared_ptr<Buf>> queue_;
  uint64_t queued_bytes_ = 0;
  uint64_t last_ticket_ = 0;    // the last ticket handed out
  uint64_t sync_wanted_ = 0;    // sync every buffer up to this ticket
  uint64_t synced_ticket_ = 0;  // every buffer up to this ticket was written and synced
  bool dir_dirty_ = false;      // a segment file was created or removed since the last sync
  bool stop_ = false;
  Status unreported_error_;
  std::thread flusher_;

  mutable SsdStats stats_;  // counters; GUARDED_BY(mu_)

  mutable std::mutex log_mu_;
  mutable int64_t last_log_ms_ = 0;
  mutable uint64_t suppressed_logs_ = 0;
};

// ---------------------------------------------------------------- opening

Status SsdTier::Impl::Init(std::unique_ptr<EvictionPolicy> policy) {
  policy_ = std::move(policy);
  dir_ = opts_.dir;
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
  capacity_ = opts_.capacity_bytes;
  seg_bytes_ = std::min(opts_.segment_bytes, capacity_ / 8) / kPage * kPage;
  buf_bytes_ = std::min<uint64_t>(kMaxBufferBytes, seg_bytes_ / 4 / kPage * kPage);
  // A record, the segment header before it and the footer and trailer after.
  max_value_ = seg_bytes_ - 3 * kPage - AlignUp(kRecordHeaderBytes);
  put_budget_ = capacity_ - seg_bytes_ - 4 * kPage;
  const double share = opts_.max_live_share;
  live_budget_ = std::min<uint64_t>(static_cast<uint64_t>(static_cast<double>(capacity_) * share),
                                    capacity_ - 2 * seg_bytes_);

  // mkdir -p
  for (size_t pos = 1; pos <= dir_.size(); ++pos) {
    if (pos != dir_.size() && dir_[pos] != '/') continue;
    const std::string part = dir_.substr(0, pos);
    if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) {
      return ssd::ErrnoStatus("creating", part, errno);
    }
  }
  struct stat st;
  if (::stat(dir_.c_str(), &st) != 0) return ssd::ErrnoStatus("opening", dir_, errno);
  if (!S_ISDIR(st.st_mode)) return IoError(dir_ + " is not a directory");

  KVC_RETURN_IF_ERROR(LockDir());
  KVC_RETURN_IF_ERROR(CheckFormat());
  direct_ = opts_.direct_io && ssd::DirectIoWorks(dir_);
  if (opts_.io_uring) ring_ = ssd::IoRing::Create(64);
  stats_.direct_io = direct_;
  stats_.io_uring = ring_ != nullptr;
  uring_reads_ = ring_ != nullptr;
  KVC_RETURN_IF_ERROR(LoadNamespaces());
  KVC_RETURN_IF_ERROR(Recover());
  flusher_ = std::thread([this] { FlusherLoop(); });
  return Status::Ok();
}

Status SsdTier::Impl::LockDir() {
  const std::string path = dir_ + "/LOCK";
  lock_fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) return ssd::ErrnoStatus("opening", path, errno);
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::string holder;
    char buf[64] = {};
    ssize_t n = ::pread(lock_fd_, buf, sizeof(buf) - 1, 0);
    if (n > 0) {
      holder.assign(buf, static_cast<size_t>(n));
      while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    }
    ::close(lock_fd_);
    lock_fd_ = -1;
    if (err == EWOULDBLOCK) {
      return {Code::kUnavailable, dir_ + " is in use" +
                                      (holder.empty() ? std::string() : " by " + holder) +
                                      " (its LOCK is held)"};
    }
    return ssd::ErrnoStatus("locking", path, err);
  }
  const std::string me = "pid " + std::to_string(::getpid()) + "\n";
  if (::ftruncate(lock_fd_, 0) != 0 ||
      !ssd::PwriteFull(lock_fd_, me.data(), me.size(), 0, path).ok()) {
    Log("could not record this pid in " + path);
  }
  return Status::Ok();
}

Status SsdTier::Impl::CheckFormat() {
  const std::string path = dir_ + "/FORMAT";
  std::string text;
  Status st = ssd::ReadSmallFile(path, &text);
  if (st.ok()) return ssd::CheckFormatText(text, path);
  if (st.code() != Code::kNotFound) return st;
  // No FORMAT: a new directory, unless it already holds segments.
  DIR* d = ::opendir(dir_.c_str());
  if (d == nullptr) return ssd::ErrnoStatus("listing", dir_, errno);
  bool has_segments = false;
  while (dirent* e = ::readdir(d)) {
    uint64_t no;
    if (ssd::ParseSegmentFileName(e->d_name, &no)) has_segments = true;
  }
  ::closedir(d);
  if (has_segments) {
    return {Code::kUnsupported, dir_ + " holds segment files but no FORMAT file: not a kvc-ssd "
                                       "directory this build can read"};
  }
  return ssd::ReplaceFileAtomically(dir_, "FORMAT", ssd::FormatFileText());
}

Status SsdTier::Impl::LoadNamespaces() {
  const std::string path = dir_ + "/NAMESPACES";
  std::string bytes;
  Status st = ssd::ReadSmallFile(path, &bytes);
  if (st.code() == Code::kNotFound) return Status::Ok();
  KVC_RETURN_IF_ERROR(st);
  return ssd::DecodeNamespaces(bytes, path, &epochs_);
}

Status SsdTier::Impl::Recover() {
  std::vector<std::pair<uint64_t, std::string>> files;
  DIR* d = ::opendir(dir_.c_str());
  if (d == nullptr) return ssd::ErrnoStatus("listing", dir_, errno);
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    uint64_t no;
    if (ssd::ParseSegmentFileName(name, &no)) {
      files.emplace_back(no, name);
    } else if (name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0) {
      ::unlink((dir_ + "/" + name).c_str());  // an interrupted atomic replacement
    }
  }
  ::closedir(d);
  std::sort(files.begin(), files.end());

  struct Best {
    RecordHeader h;
    Segment* seg;
  };
  absl::flat_hash_map<SsdBlockId, Best, IdHasher> best;
  bool removed_any = false;
  uint64_t max_seq = 0;
  AlignedBuffer footer;
  for (const auto& [no, name] : files) {
    next_segno_ = std::max(next_segno_, no + 1);
    auto seg = std::make_shared<Segment>();
    seg->no = no;
    seg->path = dir_ + "/" + name;
    bool direct = direct_;
    Status st = ssd::OpenFile(seg->path, O_RDWR, &direct, &seg->fd);
    ssd::SegmentScan sc;
    if (st.ok()) st = ssd::ScanSegment(seg->fd, seg->path, no, &sc);
    if (!st.ok()) {
      // Unreadable: its blocks are lost either way; keep the file from
      // holding space nobody accounts for.
      Log("discarding unreadable segment: " + st.message());
      struct stat fst;
      if (::stat(seg->path.c_str(), &fst) == 0) {
        stats_.recovery_discarded_bytes += static_cast<uint64_t>(fst.st_size);
      }
      ++stats_.recovery_discarded_records;
      ::unlink(seg->path.c_str());
      removed_any = true;
      continue;
    }
    stats_.recovery_discarded_records += sc.discarded_records;
    stats_.recovery_discarded_bytes += sc.discarded_bytes;
    if (sc.discarded_bytes != 0 || sc.discarded_records != 0) {
      Log(seg->path + ": discarded " + std::to_string(sc.discarded_records) +
          " damaged record(s) and " + std::to_string(sc.discarded_bytes) + " byte(s) of tail");
    }
    if (!sc.valid_header || sc.items.empty()) {
      ::unlink(seg->path.c_str());
      removed_any = true;
      continue;
    }
    seg->state = Segment::State::kSealed;
    seg->data_end = sc.end;
    seg->items = sc.items.size();
    seg->has_footer = true;
    if (!sc.from_footer) {
      ++stats_.recovery_scanned_segments;
      // Cut what the scan did not accept and seal the segment with a footer
      // listing what it did, so the next Open reads the footer alone.
      std::string entries(sc.items.size() * kRecordHeaderBytes, '\0');
      for (size_t i = 0; i < sc.items.size(); ++i) {
        ssd::EncodeRecordHeader(sc.items[i],
                                reinterpret_cast<uint8_t*>(entries.data()) + i * kRecordHeaderBytes);
      }
      ssd::BuildFooter(no, sc.end, reinterpret_cast<const uint8_t*>(entries.data()),
                       sc.items.size(), &footer);
      const uint64_t fbytes = FooterBytes(sc.items.size());
      Status w;
      if (::ftruncate(seg->fd, static_cast<off_t>(sc.end)) != 0) {
        w = ssd::ErrnoStatus("truncating", seg->path, errno);
      }
      if (w.ok()) w = ssd::PwriteFull(seg->fd, footer.data(), fbytes, sc.end, seg->path);
      if (w.ok() && ::fdatasync(seg->fd) != 0) w = ssd::ErrnoStatus("syncing", seg->path, errno);
      if (!w.ok()) {
        Log("could not seal recovered segment: " + w.message());
        seg->has_footer = false;
        if (::ftruncate(seg->fd, static_cast<off_t>(sc.end)) != 0) {
          Log("could not truncate " + seg->path + " after a failed seal");
        }
      }
    }
    seg->flushed_end = seg->synced_end = seg->Footprint();
    for (const RecordHeader& h : sc.items) {
      max_seq = std::max(max_seq, h.seq);
      if (!h.tombstone()) seg->record_ids.push_back(ssd::IdHash(h.id));
      auto [it, inserted] = best.try_emplace(h.id, Best{h, seg.get()});
      if (!inserted && (h.seq > it->second.h.seq ||
                        (h.seq == it->second.h.seq && no > it->second.h.segno))) {
        it->second = Best{h, seg.get()};
      }
    }
    disk_used_ += seg->Footprint();
    segments_[no] = seg;
    // Tombstones stay until cleaning finds nothing left for them to hide.
    for (const RecordHeader& h : sc.items)
      if (h.tombstone()) AddTombLocked(seg, h);
  }
  if (removed_any) {
    Status st = ssd::FsyncDir(dir_);
    if (!st.ok()) Log(st.message());
  }

  // The newest copy of each id wins; a tombstone hides the id. Blocks below
  // their namespace's epoch or past their expiry stay dead.
  std::vector<const Best*> order;
  order.reserve(best.size());
  for (const auto& [id, b] : best)
    if (!b.h.tombstone()) order.push_back(&b);
  std::sort(order.begin(), order.end(), [](const Best* a, const Best* b) { return a->h.seq < b->h.seq; });
  const int64_t now = NowUnixMs();
  for (const Best* b : order) {
    auto ep = epochs_.find(b->h.id.ns);
    if (ep != epochs_.end() && b->h.meta.epoch < ep->second) continue;
    if (Expired(b->h.meta, now)) continue;
    AddRecordLocked(b->h, segments_.at(b->seg->no));
    ++stats_.recovered_blocks;
  }
  next_seq_ = max_seq + 1;
  return Status::Ok();
}

// ------------------------------------------------------------ bookkeeping

uint32_t SsdTier::Impl::AddRecordLocked(const RecordHeader& h, const SegPtr& seg) {
  uint32_t handle;
  if (!free_recs_.empty()) {
    handle = free_recs_.back();
    free_recs_.pop_back();
  } else {
    handle = static_cast<uint32_t>(recs_.size());
    recs_.emplace_back();
  }
  Rec& r = recs_[handle];
  r.id = h.id;
  r.meta = h.meta;
  r.seq = h.seq;
  r.seg = seg;
  r.offset = h.offset;
  r.live = true;
  index_[h.id] = handle;
  PolicyEntry pe;
  pe.key_hash = ssd::IdHash(h.id);
  pe.weight = std::max<uint64_t>(h.meta.len, 1);
  pe.expires_at = h.meta.expires_at_unix_ms;
  policy_->Insert(handle, pe);
  const uint64_t fp = RecordFootprint(h.meta.len);
  seg->live_bytes += fp;
  ++seg->live_items;
  seg->handles.emplace_back(handle, r.gen);
  live_footprint_ += fp;
  live_value_bytes_ += h.meta.len;
  TenantState& t = tenants_[h.meta.tenant];
  t.bytes += h.meta.len;
  ++t.blocks;
  return handle;
}

void SsdTier::Impl::DropLocked(uint32_t handle) {
  Rec& r = recs_[handle];
  index_.erase(r.id);
  policy_->Erase(handle);
  const uint64_t fp = RecordFootprint(r.meta.len);
  r.seg->live_bytes -= fp;
  --r.seg->live_items;
  live_footprint_ -= fp;
  live_value_bytes_ -= r.meta.len;
  TenantState& t = tenants_[r.meta.tenant];
  t.bytes -= r.meta.len;
  --t.blocks;
  r.live = false;
  r.seg.reset();
  ++r.gen;
  free_recs_.push_back(handle);
}

void SsdTier::Impl::EvictLocked(uint32_t handle, bool quota) {
  DropLocked(handle);
  ++stats_.evictions;
  if (quota) ++stats_.quota_evictions;
}

void SsdTier::Impl::AddTombLocked(const SegPtr& seg, const RecordHeader& h) {
  seg->tombs.push_back({h.id, h.seq, h.offset});
  seg->live_bytes += kPage;
  ++seg->live_items;
  live_footprint_ += kPage;
  ++tombstones_;
}

Status SsdTier::Impl::EnforceQuotaLocked(const SsdBlockId& id, uint32_t tenant, uint64_t len) {
  auto it = tenants_.find(tenant);
  if (it == tenants_.end() || it->second.quota == 0) return Status::Ok();
  const uint64_t quota = it->second.quota;
  if (len > quota) {
    return {Code::kQuota, "a block of " + std::to_string(len) + " bytes exceeds tenant " +
                              std::to_string(tenant) + "'s SSD quota of " +
                              std::to_string(quota) + " bytes"};
  }
  uint32_t replaced = kNoHandle;
  uint64_t replaced_len = 0;
  if (auto r = index_.find(id); r != index_.end() && recs_[r->second].meta.tenant == tenant) {
    replaced = r->second;
    replaced_len = recs_[replaced].meta.len;
  }
  auto own = [&](PolicyHandle h) { return h != replaced && recs_[h].meta.tenant == tenant; };
  while (it->second.bytes - replaced_len + len > quota) {
    auto victim = policy_->Victim(own);
    if (!victim) {
      return {Code::kQuota, "tenant " + std::to_string(tenant) + " is at its SSD quota of " +
                                std::to_string(quota) + " bytes and has nothing to evict"};
    }
    EvictLocked(*victim, /*quota=*/true);
  }
  return Status::Ok();
}

// --------------------------------------------------------------- appending

uint64_t SsdTier::Impl::AppendCostLocked(uint64_t fp) const {
  if (active_ && active_->data_end + fp + FooterBytes(active_->items + 1) <= seg_bytes_) {
    return fp + FooterBytes(active_->items + 1) - FooterBytes(active_->items);
  }
  return kPage + fp + FooterBytes(1);  // a new segment: its header page and footer too
}

std::shared_ptr<Buf> SsdTier::Impl::NewBufLocked(const SegPtr& seg, uint64_t off, uint64_t size) {
  auto b = std::make_shared<Buf>();
  b->seg = seg;
  b->off = off;
  if (size <= buf_bytes_ && !spare_bufs_.empty()) {
    b->mem = std::move(spare_bufs_.back());
    spare_bufs_.pop_back();
  } else {
    b->mem.Reserve(std::max(size, buf_bytes_));
  }
  return b;
}

void SsdTier::Impl::RecycleLocked(Buf* b) {
  if (b->mem.size() == AlignUp(buf_bytes_) && spare_bufs_.size() < 4) {
    spare_bufs_.push_back(std::move(b->mem));
  }
  b->mem = AlignedBuffer();
}

Status SsdTier::Impl::OpenSegmentLocked() {
  auto seg = std::make_shared<Segment>();
  seg->no = next_segno_++;
  seg->path = dir_ + "/" + ssd::SegmentFileName(seg->no);
  bool direct = direct_;
  KVC_RETURN_IF_ERROR(ssd::OpenFile(seg->path, O_RDWR | O_CREAT | O_EXCL, &direct, &seg->fd));
  seg->state = Segment::State::kActive;
  seg->has_footer = true;
  seg->data_end = kPage;
  cur_ = NewBufLocked(seg, 0, buf_bytes_);
  ssd::EncodeSegmentHeader(seg->no, NowUnixMs(), cur_->mem.data());
  cur_->len = kPage;
  cur_since_ = std::chrono::steady_clock::now();
  seg->pending.push_back(cur_);
  segments_[seg->no] = seg;
  active_ = seg;
  dir_dirty_ = true;
  disk_used_ += seg->Footprint();
  return Status::Ok();
}

Status SsdTier::Impl::AppendLocked(RecordHeader* h, const void* value, SegPtr* out_seg) {
  const uint64_t fp = h->footprint();
  if (!active_ || active_->data_end + fp + FooterBytes(active_->items + 1) > seg_bytes_) {
    if (active_) SealActiveLocked();
    KVC_RETURN_IF_ERROR(OpenSegmentLocked());
  }
  Segment& seg = *active_;
  if (!cur_ || cur_->len + fp > cur_->mem.size()) {
    if (cur_) QueueCurLocked();
    cur_ = NewBufLocked(active_, seg.data_end, fp);
    cur_since_ = std::chrono::steady_clock::now();
    seg.pending.push_back(cur_);
  }
  h->segno = seg.no;
  h->offset = seg.data_end;
  uint8_t* p = cur_->mem.data() + cur_->len;
  ssd::EncodeRecordHeader(*h, p);
  std::memset(p + kRecordHeaderBytes, 0, kPage - kRecordHeaderBytes);
  if (!h->tombstone()) {
    if (h->meta.len != 0) std::memcpy(p + kPage, value, h->meta.len);
    std::memset(p + kPage + h->meta.len, 0, fp - kPage - h->meta.len);
  }
  cur_->len += fp;
  disk_used_ -= seg.Footprint();
  seg.data_end += fp;
  ++seg.items;
  seg.entries.append(reinterpret_cast<const char*>(p), kRecordHeaderBytes);
  if (!h->tombstone()) {
    seg.record_ids.push_back(ssd::IdHash(h->id));
    seg.ids_sorted = false;
  }
  disk_used_ += seg.Footprint();
  *out_seg = active_;
  return Status::Ok();
}

uint64_t SsdTier::Impl::QueueCurLocked() {
  if (cur_ && cur_->len > 0) {
    cur_->ticket = ++last_ticket_;
    queued_bytes_ += cur_->len;
    queue_.push_back(std::move(cur_));
    flusher_cv_.notify_one();
  }
  cur_.reset();
  return last_ticket_;
}

void SsdTier::Impl::SealActiveLocked() {
  SegPtr seg = active_;
  QueueCurLocked();
  cur_.reset();
  auto f = std::make_shared<Buf>();
  f->seg = seg;
  f->off = seg->data_end;
  f->footer = true;
  ssd::BuildFooter(seg->no, seg->data_end, reinterpret_cast<const uint8_t*>(seg->entries.data()),
                   seg->items, &f->mem);
  f->len = FooterBytes(seg->items);
  f->ticket = ++last_ticket_;
  queued_bytes_ += f->len;
  queue_.push_back(std::move(f));
  flusher_cv_.notify_one();
  seg->state = Segment::State::kSealing;
  std::string().swap(seg->entries);
  active_.reset();
}

Status SsdTier::Impl::WaitDurableLocked(Lock& lk, const SegPtr& seg, uint64_t offset) {
  const uint64_t t = QueueCurLocked();
  sync_wanted_ = std::max(sync_wanted_, t);
  flusher_cv_.notify_one();
  cv_.wait(lk, [&] { return synced_ticket_ >= t; });
  if (seg->broken && offset >= seg->data_end) return seg->broken_status;
  return Status::Ok();
}

void SsdTier::Impl::BreakSegmentLocked(const SegPtr& seg, uint64_t good_end, const Status& why) {
  ++stats_.io_errors;
  unreported_error_ = why;
  Log(why.message() + "; blocks written after offset " + std::to_string(good_end) + " of " +
      seg->path + " are dropped");
  if (seg->broken && good_end >= seg->data_end) return;
  seg->broken = true;
  seg->broken_status = why;
  for (auto& b : seg->pending) b->cancelled = true;
  seg->pending.clear();
  if (active_ == seg) {
    active_.reset();
    cur_.reset();
  }
  for (const auto& [handle, gen] : seg->handles) {
    Rec& r = recs_[handle];
    if (r.live && r.gen == gen && r.seg == seg && r.offset >= good_end) DropLocked(handle);
  }
  auto& tombs = seg->tombs;
  for (auto it = tombs.begin(); it != tombs.end();) {
    if (it->offset >= good_end) {
      seg->live_bytes -= kPage;
      --seg->live_items;
      live_footprint_ -= kPage;
      --tombstones_;
      it = tombs.erase(it);
    } else {
      ++it;
    }
  }
  disk_used_ -= seg->Footprint();
  seg->data_end = std::min(seg->data_end, good_end);
  seg->flushed_end = std::min(seg->flushed_end, good_end);
  seg->synced_end = std::min(seg->synced_end, good_end);
  seg->has_footer = false;
  seg->state = Segment::State::kSealed;
  std::string().swap(seg->entries);
  disk_used_ += seg->Footprint();
  if (::ftruncate(seg->fd, static_cast<off_t>(good_end)) != 0) {
    Log("could not truncate " + seg->path + ": " + std::strerror(errno));
  }
}

// ------------------------------------------------------------------ flusher

void SsdTier::Impl::FlusherLoop() {
  Lock lk(mu_);
  for (;;) {
    if (queue_.empty() && sync_wanted_ <= synced_ticket_) {
      if (stop_) break;
      flusher_cv_.wait_for(lk, kLingerTime);
      if (queue_.empty() && cur_ && cur_->len > 0 &&
          std::chrono::steady_clock::now() - cur_since_ >= kLingerTime) {
        QueueCurLocked();
      }
      continue;
    }
    std::vector<std::shared_ptr<Buf>> batch(queue_.begin(), queue_.end());
    queue_.clear();
    const uint64_t target = last_ticket_;
    const bool want_sync = sync_wanted_ > synced_ticket_;
    bool any_footer = false;

    // 1. Record bytes.
    std::vector<ssd::IoRing::Write> writes;
    std::vector<Buf*> wbufs;
    for (auto& b : batch) {
      if (b->footer) {
        any_footer = true;
      } else if (!b->cancelled) {
        writes.push_back({b->seg->fd, b->mem.data(), b->len, b->off, 0});
        wbufs.push_back(b.get());
      }
    }
    lk.unlock();
    if (ring_) {
      ring_->WriteAll(&writes);
    } else {
      for (auto& w : writes) w.err = ssd::WriteAll(w.fd, w.data, w.len, w.off);
    }
    lk.lock();
    for (size_t i = 0; i < wbufs.size(); ++i) {
      Buf* b = wbufs[i];
      if (b->cancelled) continue;
      Segment& seg = *b->seg;
      if (writes[i].err != 0) {
        BreakSegmentLocked(b->seg, b->off, ssd::ErrnoStatus("writing", seg.path, writes[i].err));
        continue;
      }
      stats_.bytes_written += b->len;
      seg.flushed_end = std::max(seg.flushed_end, b->off + b->len);
      auto& pend = seg.pending;
      pend.erase(std::remove_if(pend.begin(), pend.end(),
                                [&](const std::shared_ptr<Buf>& p) { return p.get() == b; }),
                 pend.end());
    }

    // 2. Sync what a waiter asked for, and every segment about to be sealed
    // (its records must be durable before its footer says they exist).
    auto sync = [&](std::vector<SegPtr> segs) {
      std::vector<int> fds;
      std::vector<uint64_t> upto;
      for (auto& s : segs) {
        fds.push_back(s->fd);
        upto.push_back(s->flushed_end);
      }
      const bool dir = dir_dirty_;
      dir_dirty_ = false;
      lk.unlock();
      Status dst = dir ? ssd::FsyncDir(dir_) : Status::Ok();
      std::vector<int> errs;
      if (ring_) {
        ring_->SyncAll(fds, &errs);
      } else {
        errs.assign(fds.size(), 0);
        for (size_t i = 0; i < fds.size(); ++i) errs[i] = ::fdatasync(fds[i]) == 0 ? 0 : errno;
      }
      lk.lock();
      if (!dst.ok()) {
        dir_dirty_ = true;
        ++stats_.io_errors;
        Log(dst.message());
      }
      for (size_t i = 0; i < segs.size(); ++i) {
        if (errs[i] != 0) {
          BreakSegmentLocked(segs[i], segs[i]->synced_end,
                             ssd::ErrnoStatus("syncing", segs[i]->path, errs[i]));
        } else if (!segs[i]->broken) {
          segs[i]->synced_end = std::max(segs[i]->synced_end, upto[i]);
        }
      }
    };
    if (want_sync || any_footer) {
      std::vector<SegPtr> dirty;
      for (auto& [no, s] : segments_)
        if (s->flushed_end > s->synced_end) dirty.push_back(s);
      sync(std::move(dirty));
    }

    // 3. Footers, then their sync: a segment is sealed once both are done.
    if (any_footer) {
      std::vector<ssd::IoRing::Write> fw;
      std::vector<Buf*> fbufs;
      for (auto& b : batch) {
        if (!b->footer || b->cancelled || b->seg->broken) continue;
        fw.push_back({b->seg->fd, b->mem.data(), b->len, b->off, 0});
        fbufs.push_back(b.get());
      }
      lk.unlock();
      if (ring_) {
        ring_->WriteAll(&fw);
      } else {
        for (auto& w : fw) w.err = ssd::WriteAll(w.fd, w.data, w.len, w.off);
      }
      lk.lock();
      std::vector<SegPtr> sealed;
      for (size_t i = 0; i < fbufs.size(); ++i) {
        const SegPtr& seg = fbufs[i]->seg;
        if (seg->broken) continue;
        if (fw[i].err != 0) {
          // The records are durable; only the footer is missing, which the
          // next Open makes up for by scanning this segment.
          ++stats_.io_errors;
          Log(ssd::ErrnoStatus("writing the footer of", seg->path, fw[i].err).message());
          disk_used_ -= seg->Footprint();
          seg->has_footer = false;
          disk_used_ += seg->Footprint();
          if (::ftruncate(seg->fd, static_cast<off_t>(seg->data_end)) != 0) {
            Log("could not truncate " + seg->path + ": " + std::strerror(errno));
          }
          seg->state = Segment::State::kSealed;
          continue;
        }
        stats_.bytes_written += fbufs[i]->len;
        seg->flushed_end = seg->Footprint();
        sealed.push_back(seg);
      }
      sync(sealed);
      for (auto& s : sealed) s->state = Segment::State::kSealed;
    }

    for (auto& b : batch) {
      queued_bytes_ -= b->len;
      RecycleLocked(b.get());
    }
    if (want_sync) synced_ticket_ = std::max(synced_ticket_, target);
    cv_.notify_all();
  }
}

// ----------------------------------------------------------------- cleaning

Status SsdTier::Impl::CleanOneLocked(Lock& lk) {
  SegPtr victim;
  bool sealing = false;
  for (auto& [no, s] : segments_) {
    if (s != active_ && (s->state == Segment::State::kSealing || !s->pending.empty())) {
      sealing = true;
    }
    if (s->state != Segment::State::kSealed || !s->pending.empty() || s->cleaning) continue;
    if (s->Reclaimable() <= 0) continue;
    if (!victim || s->Reclaimable() > victim->Reclaimable()) victim = s;
  }
  if (!victim) {
    if (sealing) {
      // Segments on their way to the disk become candidates once written.
      const uint64_t t = QueueCurLocked();
      sync_wanted_ = std::max(sync_wanted_, t);
      flusher_cv_.notify_one();
      cv_.wait(lk, [&] { return synced_ticket_ >= t; });
      return Status::Ok();
    }
    if (active_ && active_->items > 0 &&
        active_->Reclaimable() > static_cast<int64_t>(2 * kPage)) {
      SealActiveLocked();  // its dead space can only be cleaned once sealed
      return Status::Ok();
    }
    return {Code::kNoSpace, "the SSD tier in " + dir_ + " is full (" +
                                std::to_string(disk_used_) + " of " + std::to_string(capacity_) +
                                " bytes) and no segment can be cleaned"};
  }

  cleaner_busy_ = true;
  victim->cleaning = true;
  struct Item {
    uint32_t handle, gen;
    uint64_t offset, seq;
    SsdBlockId id;
    SsdMeta meta;
  };
  std::vector<Item> items;
  for (const auto& [handle, gen] : victim->handles) {
    const Rec& r = recs_[handle];
    if (r.live && r.gen == gen && r.seg == victim) {
      items.push_back({handle, gen, r.offset, r.seq, r.id, r.meta});
    }
  }
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.offset < b.offset; });
  // A tombstone moves on while some other segment may still hold a record it hides.
  std::vector<Segment::Tomb> keep;
  for (const Segment::Tomb& t : victim->tombs) {
    const uint64_t h = ssd::IdHash(t.id);
    for (auto& [no, s] : segments_) {
      if (s != victim && s->MayHoldRecord(h)) {
        keep.push_back(t);
        break;
      }
    }
  }
  const uint64_t max_ticket_before = last_ticket_;
  bool appended = false;

  AlignedBuffer buf;
  for (const Item& it : items) {
    const uint64_t fp = RecordFootprint(it.meta.len);
    lk.unlock();
    buf.Reserve(fp);
    size_t got = 0;
    Status st = ssd::PreadFull(victim->fd, buf.data(), fp, it.offset, victim->path, &got);
    RecordHeader disk;
    const bool sound = st.ok() && got == fp && ssd::DecodeRecordHeader(buf.data(), &disk) &&
                       disk.seq == it.seq && disk.id == it.id && disk.offset == it.offset &&
                       disk.meta.len == it.meta.len && disk.meta.checksum == it.meta.checksum &&
                       Checksum64(buf.data() + kPage, it.meta.len) == it.meta.checksum;
    lk.lock();
    stats_.bytes_read += got;
    Rec& r = recs_[it.handle];
    if (!r.live || r.gen != it.gen || r.seg != victim) continue;  // gone meanwhile
    if (!sound) {
      if (st.ok()) {
        ++stats_.checksum_failures;
        Log("checksum mismatch while cleaning " + victim->path + " at offset " +
            std::to_string(it.offset) + " (" + Describe(it.id) + "): block dropped");
      } else {
        ++stats_.io_errors;
        Log(st.message());
      }
      DropLocked(it.handle);
      continue;
    }
    RecordHeader h = disk;
    SegPtr to;
    Status a = disk_used_ + AppendCostLocked(fp) <= capacity_ ? AppendLocked(&h, buf.data() + kPage, &to)
                                                               : Status(Code::kNoSpace, "");
    if (!a.ok()) {
      EvictLocked(it.handle, false);
      continue;
    }
    appended = true;
    victim->live_bytes -= fp;
    --victim->live_items;
    r.seg = to;
    r.offset = h.offset;
    to->live_bytes += fp;
    ++to->live_items;
    to->handles.emplace_back(it.handle, r.gen);
    stats_.bytes_relocated += fp;
  }
  for (const Segment::Tomb& t : keep) {
    RecordHeader h;
    h.flags = RecordHeader::kTombstone;
    h.seq = t.seq;
    h.id = t.id;
    SegPtr to;
    if (disk_used_ + AppendCostLocked(kPage) > capacity_ || !AppendLocked(&h, nullptr, &to).ok()) {
      continue;
    }
    AddTombLocked(to, h);
    appended = true;
  }
  // The copies must be durable before the originals go.
  if (appended || last_ticket_ != max_ticket_before) {
    const uint64_t t = QueueCurLocked();
    sync_wanted_ = std::max(sync_wanted_, t);
    flusher_cv_.notify_one();
    cv_.wait(lk, [&] { return synced_ticket_ >= t; });
  }
  // Whatever is still here (a failed relocation) goes with the file.
  for (const auto& [handle, gen] : victim->handles) {
    Rec& r = recs_[handle];
    if (r.live && r.gen == gen && r.seg == victim) EvictLocked(handle, false);
  }
  live_footprint_ -= kPage * victim->tombs.size();
  tombstones_ -= victim->tombs.size();
  victim->tombs.clear();
  segments_.erase(victim->no);
  disk_used_ -= victim->Footprint();
  victim->deleted = true;
  ++stats_.segments_cleaned;
  lk.unlock();
  Status st;
  if (::unlink(victim->path.c_str()) != 0) st = ssd::ErrnoStatus("removing", victim->path, errno);
  if (st.ok()) st = ssd::FsyncDir(dir_);
  lk.lock();
  if (!st.ok()) {
    ++stats_.io_errors;
    Log(st.message());
  }
  victim->cleaning = false;
  cleaner_busy_ = false;
  cv_.notify_all();
  return Status::Ok();
}

// ----------------------------------------------------------- the contract

Status SsdTier::Impl::Put(const SsdBlockId& id, const SsdMeta& meta, const void* data,
                          bool durable) {
  if (data == nullptr && meta.len != 0) return InvalidArgument("Put: data is null");
  if (meta.len > max_value_) {
    return InvalidArgument("a value of " + std::to_string(meta.len) +
                           " bytes exceeds the largest this SSD tier stores (" +
                           std::to_string(max_value_) + " bytes with segments of " +
                           std::to_string(seg_bytes_) + ")");
  }
  if (Checksum64(data, meta.len) != meta.checksum) {
    return InvalidArgument("Put: meta.checksum is not the XXH3-64 of the value (" + Describe(id) +
                           ")");
  }
  const uint64_t fp = RecordFootprint(meta.len);
  Lock lk(mu_);
  auto reject = [&](Status st) {
    ++stats_.put_rejects;
    return st;
  };
  if (auto ep = epochs_.find(id.ns); ep != epochs_.end() && meta.epoch < ep->second) {
    return reject(InvalidArgument("epoch " + std::to_string(meta.epoch) +
                                  " is below namespace " + id.ns.Hex() + "'s epoch " +
                                  std::to_string(ep->second)));
  }
  for (;;) {
    if (queued_bytes_ > 4 * buf_bytes_ + fp) {  // the flusher is behind: wait for it
      cv_.wait(lk);
      continue;
    }
    Status q = EnforceQuotaLocked(id, meta.tenant, meta.len);
    if (!q.ok()) return reject(q);
    // Under global pressure a tenant evicts its own blocks, blocks of
    // tenants without a quota or over theirs, never a block that would take
    // another tenant below its quota (its guaranteed share).
    auto allowed = [&](PolicyHandle h) {
      const uint32_t owner = recs_[h].meta.tenant;
      if (owner == meta.tenant) return true;
      auto t = tenants_.find(owner);
      return t == tenants_.end() || t->second.quota == 0 || t->second.bytes > t->second.quota;
    };
    while (live_footprint_ + fp > live_budget_) {
      auto victim = policy_->Victim(allowed);
      if (!victim) {
        return reject({Code::kNoSpace, "the SSD tier in " + dir_ +
                                           " has no room for a block of " +
                                           std::to_string(meta.len) +
                                           " bytes and nothing it may evict"});
      }
      EvictLocked(*victim, false);
    }
    if (disk_used_ + AppendCostLocked(fp) > put_budget_) {
      if (cleaner_busy_) {
        cv_.wait(lk);
        continue;
      }
      Status c = CleanOneLocked(lk);
      if (!c.ok()) return reject(c);
      continue;
    }
    break;
  }
  RecordHeader h;
  h.seq = next_seq_++;
  h.id = id;
  h.meta = meta;
  SegPtr seg;
  Status a = AppendLocked(&h, data, &seg);
  if (!a.ok()) {
    ++stats_.io_errors;
    return reject(a);
  }
  if (auto old = index_.find(id); old != index_.end()) DropLocked(old->second);
  AddRecordLocked(h, seg);
  ++stats_.puts;
  if (!durable) return Status::Ok();
  Status st = WaitDurableLocked(lk, seg, h.offset);
  if (!st.ok()) return reject(st);
  return Status::Ok();
}

bool SsdTier::Impl::Lookup(const SsdBlockId& id, SsdMeta* out) const {
  Lock lk(mu_);
  auto it = index_.find(id);
  if (it == index_.end()) return false;
  const Rec& r = recs_[it->second];
  if (Expired(r.meta, NowUnixMs())) return false;
  if (out != nullptr) *out = r.meta;
  return true;
}

Status SsdTier::Impl::Read(const SsdBlockId& id, void* dst, uint64_t len) {
  Lock lk(mu_);
  ++stats_.reads;
  auto it = index_.find(id);
  if (it == index_.end()) {
    ++stats_.misses;
    policy_->RecordMiss(ssd::IdHash(id));
    return NotFound("no block " + Describe(id) + " in the SSD tier");
  }
  const uint32_t handle = it->second;
  Rec& r = recs_[handle];
  if (Expired(r.meta, NowUnixMs())) {
    ++stats_.misses;
    ++stats_.expired;
    DropLocked(handle);
    return NotFound("block " + Describe(id) + " expired");
  }
  if (r.meta.len != len) {
    return LayoutError("block " + Describe(id) + " holds " + std::to_string(r.meta.len) +
                       " bytes, not " + std::to_string(len));
  }
  // Still in a write buffer: copy it from memory.
  for (const auto& b : r.seg->pending) {
    if (r.offset >= b->off && r.offset + RecordFootprint(len) <= b->off + b->len) {
      if (len != 0) std::memcpy(dst, b->mem.data() + (r.offset - b->off) + kPage, len);
      ++stats_.hits;
      policy_->Touch(handle);
      return Status::Ok();
    }
  }
  const SegPtr seg = r.seg;
  const uint64_t offset = r.offset, seq = r.seq, checksum = r.meta.checksum;
  const uint32_t gen = r.gen;
  lk.unlock();  // r must not be used from here on

  // Header page and value in one read, straight into dst when O_DIRECT
  // allows it (page-aligned destination and length) or is off.
  tls_header_page.Reserve(kPage);
  const bool direct_into_dst =
      !direct_ || (reinterpret_cast<uintptr_t>(dst) % kPage == 0 && len % kPage == 0);
  uint8_t* value = static_cast<uint8_t*>(dst);
  iovec iov[2];
  iov[0] = {tls_header_page.data(), kPage};
  uint64_t want = kPage;
  if (direct_into_dst) {
    iov[1] = {dst, len};
    want += len;
  } else {
    tls_bounce.Reserve(AlignUp(len));
    value = tls_bounce.data();
    iov[1] = {value, AlignUp(len)};
    want += AlignUp(len);
  }
  uint64_t got = 0;
  int err = 0;
  bool hashed = false;  // the pipelined path hashes as the pieces arrive
  uint64_t hash = 0;
  ssd::IoRing* ring = nullptr;
  if (uring_reads_ && direct_ && len >= 2 * kReadPiece) ring = ThreadReadRing();
  if (ring != nullptr) {
    thread_local std::unique_ptr<XXH3_state_t, Xxh3StateFree> state(XXH3_createState());
    const uint64_t padded = AlignUp(len);
    const uint64_t piece =
        std::max(kReadPiece, AlignUp((padded + kMaxReadPieces - 1) / kMaxReadPieces));
    std::vector<iovec> pieces;
    pieces.push_back(iov[0]);
    auto* base = static_cast<uint8_t*>(iov[1].iov_base);
    for (uint64_t o = 0; o < iov[1].iov_len; o += piece) {
      pieces.push_back({base + o, std::min<uint64_t>(piece, iov[1].iov_len - o)});
    }
    XXH3_64bits_reset(state.get());
    uint64_t hashed_bytes = 0;
    err = ring->ReadInOrder(seg->fd, offset, pieces, [&](size_t i, size_t n) {
      got += n;
      if (i == 0 || hashed_bytes >= len) return;
      const uint64_t take = std::min<uint64_t>(n, len - hashed_bytes);
      XXH3_64bits_update(state.get(), static_cast<uint8_t*>(pieces[i].iov_base), take);
      hashed_bytes += take;
    });
    hash = XXH3_64bits_digest(state.get());
    hashed = hashed_bytes == len;
    if (err != 0 || got < want) hashed = false;
    got = std::min(got, want);
  }
  while (ring == nullptr && got < want) {
    // Advance the two-entry vector past what is already read.
    iovec v[2];
    int n = 0;
    uint64_t skip = got;
    for (const iovec& e : iov) {
      if (skip >= e.iov_len) {
        skip -= e.iov_len;
        continue;
      }
      v[n++] = {static_cast<uint8_t*>(e.iov_base) + skip, e.iov_len - skip};
      skip = 0;
    }
    ssize_t k = ::preadv(seg->fd, v, n, static_cast<off_t>(offset + got));
    if (k < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    if (k == 0) break;
    got += static_cast<uint64_t>(k);
  }
  RecordHeader h;
  const bool complete = err == 0 && got == want;
  const bool sound = complete && ssd::DecodeRecordHeader(tls_header_page.data(), &h) &&
                     h.seq == seq && h.segno == seg->no && h.offset == offset && h.id == id &&
                     h.meta.len == len && h.meta.checksum == checksum &&
                     (hashed ? hash : Checksum64(value, len)) == checksum;
  if (sound && value != dst && len != 0) std::memcpy(dst, value, len);
  if (!sound && value == dst && len != 0) std::memset(dst, 0, len);  // never leave wrong bytes

  lk.lock();
  stats_.bytes_read += got;
  const Rec& now = recs_[handle];  // recs_ may have moved while unlocked
  const bool same = now.live && now.gen == gen && now.seg == seg && now.offset == offset;
  if (sound) {
    ++stats_.hits;
    if (same) policy_->Touch(handle);
    return Status::Ok();
  }
  ++stats_.misses;
  if (err != 0) {
    ++stats_.io_errors;
    Status st = ssd::ErrnoStatus("reading", seg->path, err);
    Log(st.message());
    return st;
  }
  ++stats_.checksum_failures;
  if (same) DropLocked(handle);
  Log("checksum mismatch reading " + seg->path + " at offset " + std::to_string(offset) + " (" +
      Describe(id) + "): block dropped");
  return {Code::kCorrupt, "block " + Describe(id) + " failed its checksum in " + seg->path +
                              " at offset " + std::to_string(offset) + "; it was dropped"};
}

void SsdTier::Impl::Touch(const SsdBlockId& id) {
  Lock lk(mu_);
  auto it = index_.find(id);
  if (it != index_.end()) policy_->Touch(it->second);
}

Status SsdTier::Impl::Erase(const SsdBlockId& id) {
  Lock lk(mu_);
  auto it = index_.find(id);
  if (it == index_.end()) return NotFound("no block " + Describe(id) + " in the SSD tier");
  DropLocked(it->second);
  ++stats_.erases;
  // A tombstone keeps the erased block from coming back at the next Open. It
  // may use the cleaning reserve; without room the erase holds until restart.
  RecordHeader h;
  h.flags = RecordHeader::kTombstone;
  h.seq = next_seq_++;
  h.id = id;
  SegPtr seg;
  if (disk_used_ + AppendCostLocked(kPage) <= capacity_ && AppendLocked(&h, nullptr, &seg).ok()) {
    AddTombLocked(seg, h);
  } else {
    Log("no room for the tombstone of " + Describe(id) + ": it may reappear after a restart");
  }
  return Status::Ok();
}

Status SsdTier::Impl::BumpNamespace(const BlockKey& ns, uint64_t epoch) {
  Lock lk(mu_);
  auto cur = epochs_.find(ns);
  const uint64_t old = cur == epochs_.end() ? 0 : cur->second;
  if (epoch < old) {
    return InvalidArgument("namespace " + ns.Hex() + " is at epoch " + std::to_string(old) +
                           "; epochs only grow (asked for " + std::to_string(epoch) + ")");
  }
  if (epoch > old) {
    ssd::EpochMap next = epochs_;
    next[ns] = epoch;
    KVC_RETURN_IF_ERROR(ssd::ReplaceFileAtomically(dir_, "NAMESPACES", ssd::EncodeNamespaces(next)));
    epochs_ = std::move(next);
  }
  std::vector<uint32_t> stale;
  for (const auto& [id, handle] : index_)
    if (id.ns == ns && recs_[handle].meta.epoch < epoch) stale.push_back(handle);
  for (uint32_t handle : stale) DropLocked(handle);
  stats_.stale_removed += stale.size();
  return Status::Ok();
}

uint64_t SsdTier::Impl::NamespaceEpoch(const BlockKey& ns) const {
  Lock lk(mu_);
  auto it = epochs_.find(ns);
  return it == epochs_.end() ? 0 : it->second;
}

Status SsdTier::Impl::Flush() {
  Lock lk(mu_);
  const uint64_t t = QueueCurLocked();
  sync_wanted_ = std::max(sync_wanted_, t);
  flusher_cv_.notify_one();
  cv_.wait(lk, [&] { return synced_ticket_ >= t; });
  Status st = std::move(unreported_error_);
  unreported_error_ = Status::Ok();
  return st;
}

void SsdTier::Impl::SetTenantQuota(uint32_t tenant, uint64_t bytes) {
  Lock lk(mu_);
  TenantState& t = tenants_[tenant];
  t.quota = bytes;
  if (bytes == 0) return;
  auto own = [&](PolicyHandle h) { return recs_[h].meta.tenant == tenant; };
  while (t.bytes > bytes) {
    auto victim = policy_->Victim(own);
    if (!victim) break;
    EvictLocked(*victim, /*quota=*/true);
  }
}

uint64_t SsdTier::Impl::TenantBytes(uint32_t tenant) const {
  Lock lk(mu_);
  auto it = tenants_.find(tenant);
  return it == tenants_.end() ? 0 : it->second.bytes;
}

uint64_t SsdTier::Impl::TenantBlocks(uint32_t tenant) const {
  Lock lk(mu_);
  auto it = tenants_.find(tenant);
  return it == tenants_.end() ? 0 : it->second.blocks;
}

void SsdTier::Impl::ForEach(
    const std::function<void(const SsdBlockId&, const SsdMeta&)>& fn) const {
  std::vector<std::pair<SsdBlockId, SsdMeta>> all;
  {
    Lock lk(mu_);
    const int64_t now = NowUnixMs();
    all.reserve(index_.size());
    // Hottest first: the policy tracks every indexed record (handle = its
    // slot in recs_).
    for (const PolicyHandle handle : policy_->HottestFirst()) {
      if (handle >= recs_.size()) continue;
      const Rec& r = recs_[handle];
      if (r.live && !Expired(r.meta, now)) all.emplace_back(r.id, r.meta);
    }
  }
  for (const auto& [id, meta] : all) fn(id, meta);
}

SsdStats SsdTier::Impl::Stats() const {
  Lock lk(mu_);
  SsdStats s = stats_;
  s.capacity_bytes = capacity_;
  s.used_bytes = disk_used_;
  s.live_bytes = live_value_bytes_;
  s.blocks = index_.size();
  s.segments = segments_.size();
  s.tombstones = tombstones_;
  return s;
}

nlohmann::json SsdTier::Impl::StatsJson() const {
  const SsdStats s = Stats();
  nlohmann::json j{
      {"dir", dir_},
      {"capacity_bytes", s.capacity_bytes},
      {"segment_bytes", seg_bytes_},
      {"used_bytes", s.used_bytes},
      {"live_bytes", s.live_bytes},
      {"blocks", s.blocks},
      {"segments", s.segments},
      {"tombstones", s.tombstones},
      {"puts", s.puts},
      {"put_rejects", s.put_rejects},
      {"reads", s.reads},
      {"hits", s.hits},
      {"misses", s.misses},
      {"expired", s.expired},
      {"erases", s.erases},
      {"evictions", s.evictions},
      {"quota_evictions", s.quota_evictions},
      {"stale_removed", s.stale_removed},
      {"bytes_written", s.bytes_written},
      {"bytes_read", s.bytes_read},
      {"segments_cleaned", s.segments_cleaned},
      {"bytes_relocated", s.bytes_relocated},
      {"checksum_failures", s.checksum_failures},
      {"io_errors", s.io_errors},
      {"recovered_blocks", s.recovered_blocks},
      {"recovery_discarded_records", s.recovery_discarded_records},
      {"recovery_discarded_bytes", s.recovery_discarded_bytes},
      {"recovery_scanned_segments", s.recovery_scanned_segments},
      {"io", {{"direct", s.direct_io}, {"io_uring", s.io_uring}}},
  };
  Lock lk(mu_);
  nlohmann::json policy{{"name", std::string(policy_->name())}, {"tracked", policy_->size()}};
  for (const auto& [k, v] : policy_->Gauges()) policy[k] = v;
  j["policy"] = std::move(policy);
  nlohmann::json tenants = nlohmann::json::object();
  for (const auto& [id, t] : tenants_) {
    if (t.blocks == 0 && t.quota == 0) continue;
    tenants[std::to_string(id)] = {{"bytes", t.bytes}, {"blocks", t.blocks}, {"quota", t.quota}};
  }
  j["tenants"] = std::move(tenants);
  return j;
}

void SsdTier::Impl::Log(const std::string& line) const {
  std::lock_guard<std::mutex> g(log_mu_);
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  if (last_log_ms_ != 0 && now - last_log_ms_ < 1000) {
    ++suppressed_logs_;
    return;
  }
  if (suppressed_logs_ != 0) {
    std::fprintf(stderr, "kvc ssd: %s (and %llu similar lines suppressed)\n", line.c_str(),
                 static_cast<unsigned long long>(suppressed_logs_));
  } else {
    std::fprintf(stderr, "kvc ssd: %s\n", line.c_str());
  }
  suppressed_logs_ = 0;
  last_log_ms_ = now;
}

void SsdTier::Impl::Close() {
  if (closed_) return;
  closed_ = true;
  if (flusher_.joinable()) {
    Lock lk(mu_);
    if (active_) {
      if (active_->items == 0) {
        // Nothing but its header page: remove it instead of sealing it.
        SegPtr seg = active_;
        for (auto& b : seg->pending) b->cancelled = true;
        seg->pending.clear();
        cur_.reset();
        active_.reset();
        segments_.erase(seg->no);
        disk_used_ -= seg->Footprint();
        ::unlink(seg->path.c_str());
        dir_dirty_ = true;
      } else {
        SealActiveLocked();
      }
    }
    sync_wanted_ = std::max(sync_wanted_, last_ticket_);
    stop_ = true;
    flusher_cv_.notify_one();
    lk.unlock();
    flusher_.join();
    if (dir_dirty_) {
      Status st = ssd::FsyncDir(dir_);
      if (!st.ok()) Log(st.message());
    }
  }
  for (auto& [no, seg] : segments_) seg->pending.clear();  // buffers point back at segments
  active_.reset();
  cur_.reset();
  queue_.clear();
  segments_.clear();
  recs_.clear();
  if (lock_fd_ >= 0) {
    ::close(lock_fd_);  // releases the flock
    lock_fd_ = -1;
  }
}

// ------------------------------------------------------------ the facade

Result<std::unique_ptr<SsdTier>> SsdTier::Open(const SsdOptions& opts) {
  if (opts.dir.empty()) return InvalidArgument("SsdOptions.dir is required");
  if (opts.capacity_bytes == 0) return InvalidArgument("SsdOptions.capacity_bytes is required");
  if (opts.segment_bytes < kMinSegmentBytes) {
    return InvalidArgument("SsdOptions.segment_bytes must be at least " +
                           std::to_string(kMinSegmentBytes));
  }
  if (opts.capacity_bytes / 8 < kMinSegmentBytes) {
    return InvalidArgument("SsdOptions.capacity_bytes must be at least " +
                           std::to_string(8 * kMinSegmentBytes) +
                           " (eight segments of the smallest size)");
  }
  if (!(opts.max_live_share > 0.0 && opts.max_live_share <= 1.0)) {
    return InvalidArgument("SsdOptions.max_live_share must be in (0, 1]");
  }
  auto policy = MakePolicy(opts.policy.empty() ? DefaultPolicyName() : opts.policy,
                           opts.capacity_bytes);
  if (!policy.ok()) return policy.status();
  auto impl = std::make_unique<Impl>(opts);
  Status st;
  try {
    st = impl->Init(std::move(policy).value());
  } catch (const std::bad_alloc&) {
    st = Status(Code::kNoMemory, "out of memory opening the SSD tier in " + opts.dir);
  }
  if (!st.ok()) return st;
  return std::unique_ptr<SsdTier>(new SsdTier(std::move(impl)));
}

SsdTier::SsdTier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SsdTier::~SsdTier() = default;

Status SsdTier::Put(const SsdBlockId& id, const SsdMeta& meta, const void* data, bool durable) {
  return impl_->Put(id, meta, data, durable);
}
bool SsdTier::Lookup(const SsdBlockId& id, SsdMeta* out) const { return impl_->Lookup(id, out); }
Status SsdTier::Read(const SsdBlockId& id, void* dst, uint64_t len) {
  return impl_->Read(id, dst, len);
}
void SsdTier::Touch(const SsdBlockId& id) { impl_->Touch(id); }
Status SsdTier::Erase(const SsdBlockId& id) { return impl_->Erase(id); }
Status SsdTier::BumpNamespace(const BlockKey& ns, uint64_t epoch) {
  return impl_->BumpNamespace(ns, epoch);
}
uint64_t SsdTier::NamespaceEpoch(const BlockKey& ns) const { return impl_->NamespaceEpoch(ns); }
Status SsdTier::Flush() { return impl_->Flush(); }
void SsdTier::SetTenantQuota(uint32_t tenant, uint64_t bytes) {
  impl_->SetTenantQuota(tenant, bytes);
}
uint64_t SsdTier::TenantBytes(uint32_t tenant) const { return impl_->TenantBytes(tenant); }
uint64_t SsdTier::TenantBlocks(uint32_t tenant) const { return impl_->TenantBlocks(tenant); }
void SsdTier::ForEach(const std::function<void(const SsdBlockId&, const SsdMeta&)>& fn) const {
  impl_->ForEach(fn);
}
SsdStats SsdTier::Stats() const { return impl_->Stats(); }
nlohmann::json SsdTier::StatsJson() const { return impl_->StatsJson(); }

}  // namespace kvc
