#include "tier/ssd_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#if KVC_HAVE_URING
#include <liburing.h>
#endif

#include "tier/ssd_format.h"

namespace kvc::ssd {

void AlignedBuffer::Free::operator()(uint8_t* p) const { std::free(p); }

AlignedBuffer::AlignedBuffer(size_t size) { Reserve(size); }

void AlignedBuffer::Reserve(size_t size) {
  if (size <= size_) return;
  const size_t rounded = AlignUp(size);
  void* p = std::aligned_alloc(kPage, rounded);
  if (p == nullptr) throw std::bad_alloc();
  std::memset(p, 0, rounded);
  data_.reset(static_cast<uint8_t*>(p));
  size_ = rounded;
}

Status ErrnoStatus(const std::string& what, const std::string& path, int err) {
  const Code code = (err == ENOSPC || err == EDQUOT) ? Code::kNoSpace : Code::kIo;
  return {code, what + " " + path + ": " + std::strerror(err)};
}

Status PreadFull(int fd, void* buf, size_t len, uint64_t off, const std::string& path,
                 size_t* got) {
  size_t done = 0;
  auto* p = static_cast<uint8_t*>(buf);
  while (done < len) {
    ssize_t n = ::pread(fd, p + done, len - done, static_cast<off_t>(off + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("reading", path, errno);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  if (got != nullptr) {
    *got = done;
  } else if (done < len) {
    return IoError("reading " + path + ": unexpected end of file at offset " +
                   std::to_string(off + done));
  }
  return Status::Ok();
}

int WriteAll(int fd, const void* buf, size_t len, uint64_t off) {
  size_t done = 0;
  const auto* p = static_cast<const uint8_t*>(buf);
  while (done < len) {
    ssize_t n = ::pwrite(fd, p + done, len - done, static_cast<off_t>(off + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;
    done += static_cast<size_t>(n);
  }
  return 0;
}

Status PwriteFull(int fd, const void* buf, size_t len, uint64_t off, const std::string& path) {
  int err = WriteAll(fd, buf, len, off);
  return err == 0 ? Status::Ok() : ErrnoStatus("writing", path, err);
}

Status FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("opening", dir, errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return ErrnoStatus("syncing", dir, err);
  return Status::Ok();
}

Status ReplaceFileAtomically(const std::string& dir, const std::string& name,
                             const std::string& bytes) {
  const std::string path = dir + "/" + name, tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus("creating", tmp, errno);
  Status st = PwriteFull(fd, bytes.data(), bytes.size(), 0, tmp);
  if (st.ok() && ::fsync(fd) != 0) st = ErrnoStatus("syncing", tmp, errno);
  ::close(fd);
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) st = ErrnoStatus("renaming", tmp, errno);
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  return FsyncDir(dir);
}

Status ReadSmallFile(const std::string& path, std::string* out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFound(path + " does not exist");
    return ErrnoStatus("opening", path, errno);
  }
  out->clear();
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return ErrnoStatus("reading", path, err);
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
    if (out->size() > (16u << 20)) {
      ::close(fd);
      return IoError(path + " is unexpectedly large");
    }
  }
  ::close(fd);
  return Status::Ok();
}

Status OpenFile(const std::string& path, int flags, bool* direct, int* fd) {
  flags |= O_CLOEXEC;
  if (*direct) {
    int f = ::open(path.c_str(), flags | O_DIRECT, 0644);
    if (f >= 0) {
      *fd = f;
      return Status::Ok();
    }
    if (errno != EINVAL) return ErrnoStatus("opening", path, errno);
    *direct = false;
  }
  int f = ::open(path.c_str(), flags, 0644);
  if (f < 0) return ErrnoStatus("opening", path, errno);
  *fd = f;
  return Status::Ok();
}

bool DirectIoWorks(const std::string& dir) {
  const std::string path = dir + "/.direct-io-probe";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_DIRECT | O_CLOEXEC, 0644);
  if (fd < 0) {
    ::unlink(path.c_str());  // a filesystem may create the file and then refuse the flag
    return false;
  }
  AlignedBuffer page(kPage);
  bool ok = ::pwrite(fd, page.data(), kPage, 0) == static_cast<ssize_t>(kPage) &&
            ::pread(fd, page.data(), kPage, 0) == static_cast<ssize_t>(kPage);
  ::close(fd);
  ::unlink(path.c_str());
  return ok;
}

#if KVC_HAVE_URING

struct IoRing::Ring {
  io_uring ring;
  unsigned entries = 0;
  bool broken = false;  // a submission failed: everything goes synchronously from now on
};

std::unique_ptr<IoRing> IoRing::Create(unsigned entries) {
  auto ring = std::make_unique<Ring>();
  ring->entries = entries;
  if (io_uring_queue_init(entries, &ring->ring, 0) != 0) return nullptr;
  io_uring_probe* probe = io_uring_get_probe_ring(&ring->ring);
  bool ok = probe != nullptr && io_uring_opcode_supported(probe, IORING_OP_WRITE) &&
            io_uring_opcode_supported(probe, IORING_OP_FSYNC);
  if (probe != nullptr) io_uring_free_probe(probe);
  if (!ok) {
    io_uring_queue_exit(&ring->ring);
    return nullptr;
  }
  return std::unique_ptr<IoRing>(new IoRing(std::move(ring)));
}

IoRing::~IoRing() { io_uring_queue_exit(&ring_->ring); }

namespace {

// Submits up to `ring->entries` operations at a time (prep(i, sqe) fills the
// i-th), reaping each completion into on_cqe(i, res). Operations the kernel
// did not take are done by fallback(i), and the ring is not used again.
template <class Prep, class OnCqe, class Fallback>
void RunBatches(io_uring* ring, unsigned entries, bool* broken, size_t n, Prep prep,
                OnCqe on_cqe, Fallback fallback) {
  size_t next = 0;
  while (next < n) {
    if (*broken) {
      fallback(next++);
      continue;
    }
    const size_t first = next;
    unsigned queued = 0;
    while (next < n && queued < entries) {
      io_uring_sqe* sqe = io_uring_get_sqe(ring);
      if (sqe == nullptr) break;
      prep(next, sqe);
      io_uring_sqe_set_data64(sqe, next);
      ++next;
      ++queued;
    }
    int submitted = io_uring_submit(ring);
    if (submitted < 0) submitted = 0;
    std::vector<uint8_t> completed(queued, 0);
    for (int reaped = 0; reaped < submitted;) {
      io_uring_cqe* cqe = nullptr;
      int rc = io_uring_wait_cqe(ring, &cqe);
      if (rc == -EINTR) continue;
      if (rc != 0 || cqe == nullptr) {
        *broken = true;
        break;
      }
      const size_t i = io_uring_cqe_get_data64(cqe);
      on_cqe(i, cqe->res);
      completed[i - first] = 1;
      io_uring_cqe_seen(ring, cqe);
      ++reaped;
    }
    if (static_cast<unsigned>(submitted) < queued) *broken = true;
    for (size_t i = first; i < next; ++i)
      if (!completed[i - first]) fallback(i);
  }
}

}  // namespace

void IoRing::WriteAll(std::vector<Write>* writes) {
  std::vector<size_t> done(writes->size(), 0);
  RunBatches(
      &ring_->ring, ring_->entries, &ring_->broken, writes->size(),
      [&](size_t i, io_uring_sqe* sqe) {
        const Write& w = (*writes)[i];
        io_uring_prep_write(sqe, w.fd, w.data, static_cast<unsigned>(w.len), w.off);
      },
      [&](size_t i, int res) {
        if (res < 0) {
          (*writes)[i].err = -res;
        } else {
          done[i] = static_cast<size_t>(res);
        }
      },
      [&](size_t i) {
        const Write& w = (*writes)[i];
        (*writes)[i].err = ssd::WriteAll(w.fd, w.data, w.len, w.off);
        done[i] = w.len;
      });
  // Finish short writes (and retry interrupted ones) synchronously.
  for (size_t i = 0; i < writes->size(); ++i) {
    Write& w = (*writes)[i];
    if (w.err == EINTR || w.err == EAGAIN) w.err = 0;
    if (w.err != 0 || done[i] >= w.len) continue;
    const auto* p = static_cast<const uint8_t*>(w.data);
    w.err = ssd::WriteAll(w.fd, p + done[i], w.len - done[i], w.off + done[i]);
  }
}

void IoRing::SyncAll(const std::vector<int>& fds, std::vector<int>* errs) {
  errs->assign(fds.size(), 0);
  RunBatches(
      &ring_->ring, ring_->entries, &ring_->broken, fds.size(),
      [&](size_t i, io_uring_sqe* sqe) { io_uring_prep_fsync(sqe, fds[i], IORING_FSYNC_DATASYNC); },
      [&](size_t i, int res) { (*errs)[i] = res < 0 ? -res : 0; },
      [&](size_t i) { (*errs)[i] = ::fdatasync(fds[i]) == 0 ? 0 : errno; });
}

int IoRing::ReadInOrder(int fd, uint64_t off, const std::vector<iovec>& pieces,
                        const std::function<void(size_t, size_t)>& arrived) {
  constexpr int64_t kPendingRead = INT64_MIN;
  const size_t n = pieces.size();
  std::vector<int64_t> res(n, kPendingRead);
  std::vector<uint64_t> at(n);
  for (size_t i = 0, o = off; i < n; o += pieces[i].iov_len, ++i) at[i] = o;
  size_t submitted = 0;
  if (!ring_->broken && n <= ring_->entries) {
    for (size_t i = 0; i < n; ++i) {
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_->ring);
      if (sqe == nullptr) break;
      io_uring_prep_read(sqe, fd, pieces[i].iov_base, static_cast<unsigned>(pieces[i].iov_len),
                         at[i]);
      io_uring_sqe_set_data64(sqe, i);
    }
    int rc = io_uring_submit(&ring_->ring);
    submitted = rc < 0 ? 0 : static_cast<size_t>(rc);
    if (submitted < n) ring_->broken = true;
  }
  // Pieces the kernel did not take are read here, synchronously.
  for (size_t i = submitted; i < n; ++i) {
    ssize_t k;
    do {
      k = ::pread(fd, pieces[i].iov_base, pieces[i].iov_len, static_cast<off_t>(at[i]));
    } while (k < 0 && errno == EINTR);
    res[i] = k < 0 ? -errno : k;
  }
  int err = 0;
  bool stopped = false;
  size_t next = 0, reaped = 0;
  auto deliver = [&] {
    while (next < n && res[next] != kPendingRead) {
      if (!stopped) {
        if (res[next] < 0) {
          err = static_cast<int>(-res[next]);
          stopped = true;
        } else {
          size_t got = static_cast<size_t>(res[next]);
          if (got < pieces[next].iov_len) {  // finish a short read, if the file goes on
            auto* p = static_cast<uint8_t*>(pieces[next].iov_base);
            size_t more = 0;
            Status st = PreadFull(fd, p + got, pieces[next].iov_len - got, at[next] + got, "", &more);
            if (!st.ok()) {
              err = EIO;
              stopped = true;
            }
            got += more;
          }
          if (!stopped) arrived(next, got);
          if (got < pieces[next].iov_len) stopped = true;
        }
      }
      ++next;
    }
  };
  deliver();
  while (reaped < submitted) {  // every submitted read is reaped before the buffers are let go
    io_uring_cqe* cqe = nullptr;
    int rc = io_uring_wait_cqe(&ring_->ring, &cqe);
    if (rc == -EINTR) continue;
    if (rc != 0 || cqe == nullptr) {
      // The ring failed: nothing more arrives; the kernel may still write
      // into these buffers, so stop using the ring and fail this read.
      ring_->broken = true;
      return EIO;
    }
    res[io_uring_cqe_get_data64(cqe)] = cqe->res;
    io_uring_cqe_seen(&ring_->ring, cqe);
    ++reaped;
    deliver();
  }
  return err;
}

#else  // !KVC_HAVE_URING

struct IoRing::Ring {};

std::unique_ptr<IoRing> IoRing::Create(unsigned) { return nullptr; }
IoRing::~IoRing() = default;
void IoRing::WriteAll(std::vector<Write>*) {}
void IoRing::SyncAll(const std::vector<int>& fds, std::vector<int>* errs) {
  errs->assign(fds.size(), 0);
}
int IoRing::ReadInOrder(int, uint64_t, const std::vector<iovec>&,
                        const std::function<void(size_t, size_t)>&) {
  return ENOSYS;
}

#endif  // KVC_HAVE_URING

IoRing::IoRing(std::unique_ptr<Ring> ring) : ring_(std::move(ring)) {}

}  // namespace kvc::ssd
