#include "memory/host_arena.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace kvc {
namespace {

Status NoMemory(uint64_t size, const char* what) {
  return Status(Code::kNoMemory, std::string("cannot ") + what + " a host arena of " + std::to_string(size) +
                                     " bytes: " + std::strerror(errno));
}

// A memfd of `size` bytes that cannot shrink or grow any more. -1 and errno
// on failure.
int SealedMemfd(uint64_t size) {
  const int fd = memfd_create("kvc-host-arena", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return -1;
  if (ftruncate(fd, static_cast<off_t>(size)) != 0 ||
      fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    const int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

}  // namespace

Result<std::unique_ptr<HostArena>> HostArena::Create(uint64_t bytes, bool prefault, bool shared) {
  if (bytes == 0) return InvalidArgument("arena size is 0");
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  const uint64_t size = (bytes + page - 1) / page * page;
  int fd = -1;
  void* p;
  if (shared) {
    fd = SealedMemfd(size);
    if (fd < 0) return NoMemory(size, "create the memfd of");
    p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  } else {
    p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  }
  if (p == MAP_FAILED) {
    Status s = NoMemory(size, "map");
    if (fd >= 0) close(fd);
    return s;
  }
  madvise(p, size, MADV_HUGEPAGE);
  if (prefault) {
    // Touch every page so the first store of each block does not fault (for
    // a memfd this also allocates its pages). MAP_POPULATE would do the same
    // but cannot be combined with the huge-page advice issued after the
    // mapping exists.
    auto* b = static_cast<volatile uint8_t*>(p);
    for (uint64_t off = 0; off < size; off += page) b[off] = 0;
  }
  return std::unique_ptr<HostArena>(new HostArena(static_cast<uint8_t*>(p), size, fd));
}

HostArena::~HostArena() {
  munmap(base_, size_);
  if (fd_ >= 0) close(fd_);
}

}  // namespace kvc
