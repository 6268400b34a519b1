// ssd_io: the file I/O the SSD tier is built on: page-aligned buffers, whole
// reads and writes that say which file and errno failed, atomic small-file
// replacement, O_DIRECT detection, and an io_uring batch writer with a
// pwrite fallback.
//
// Functions are thread-safe (they share no state); an IoRing is used by one
// thread at a time.
#ifndef KVC_TIER_SSD_IO_H_
#define KVC_TIER_SSD_IO_H_

#include <cstddef>
#include <sys/uio.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "util/status.h"

namespace kvc::ssd {

// Page-aligned, zero-filled memory (O_DIRECT buffers).
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t size);
  uint8_t* data() const { return data_.get(); }
  size_t size() const { return size_; }
  // Grows to at least `size` (contents are not kept).
  void Reserve(size_t size);

 private:
  struct Free {
    void operator()(uint8_t* p) const;
  };
  std::unique_ptr<uint8_t, Free> data_;
  size_t size_ = 0;
};

// A Status for a failed system call: KVC_ERR_NO_SPACE for ENOSPC and
// EDQUOT, KVC_ERR_IO otherwise; the message is "<what> <path>: <errno text>".
Status ErrnoStatus(const std::string& what, const std::string& path, int err);

// Reads len bytes at off; *got (if not null) says how many were read before
// end of file (then the Status is OK and *got < len). Retries EINTR.
Status PreadFull(int fd, void* buf, size_t len, uint64_t off, const std::string& path,
                 size_t* got = nullptr);
// Writes all len bytes at off, retrying EINTR and short writes: 0 or errno.
int WriteAll(int fd, const void* buf, size_t len, uint64_t off);
// The same, as a Status naming `path`.
Status PwriteFull(int fd, const void* buf, size_t len, uint64_t off, const std::string& path);

Status FsyncDir(const std::string& dir);
// Replaces dir/name with `bytes`: writes dir/name.tmp, fsyncs it, renames it
// over dir/name and fsyncs dir. A crash leaves the old file or the new one.
Status ReplaceFileAtomically(const std::string& dir, const std::string& name,
                             const std::string& bytes);
// Reads a small whole file; KVC_ERR_NOT_FOUND when it does not exist.
Status ReadSmallFile(const std::string& path, std::string* out);

// Opens `path` with `flags`, adding O_DIRECT when *direct is true; if the
// filesystem refuses O_DIRECT (EINVAL), opens it without and sets *direct to
// false. O_CLOEXEC is always added.
Status OpenFile(const std::string& path, int flags, bool* direct, int* fd);
// Whether files in `dir` accept O_DIRECT for page-aligned reads and writes
// (creates and removes a probe file).
bool DirectIoWorks(const std::string& dir);

// Batched writes, data syncs and pipelined reads through io_uring (one
// submission for each lot).
class IoRing {
 public:
  struct Write {
    int fd = -1;
    const void* data = nullptr;
    size_t len = 0;
    uint64_t off = 0;
    int err = 0;  // out: 0 or the errno of the first failure
  };
  // nullptr when io_uring is not compiled in or the kernel refuses it.
  static std::unique_ptr<IoRing> Create(unsigned entries);
  ~IoRing();

  // Performs every write (in parallel); a short write is finished with pwrite.
  void WriteAll(std::vector<Write>* writes);
  // fdatasync()s every fd; errs[i] gets 0 or the errno for fds[i].
  void SyncAll(const std::vector<int>& fds, std::vector<int>* errs);
  // Reads consecutive byte ranges of fd from `off` into pieces[i] (in
  // parallel), calling arrived(i, n) in piece order as soon as piece i and
  // all before it are in; n is the bytes read (less at end of file, and then
  // no later piece is reported). Returns 0 or the errno of a failed read.
  int ReadInOrder(int fd, uint64_t off, const std::vector<iovec>& pieces,
                  const std::function<void(size_t, size_t)>& arrived);

 private:
  struct Ring;
  explicit IoRing(std::unique_ptr<Ring> ring);
  std::unique_ptr<Ring> ring_;
};

}  // namespace kvc::ssd

#endif  // KVC_TIER_SSD_IO_H_
