#include "memory/host_arena.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace kvc {

Result<std::unique_ptr<HostArena>> HostArena::Create(uint64_t bytes, bool prefault) {
  if (bytes == 0) return InvalidArgument("arena size is 0");
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  const uint64_t size = (bytes + page - 1) / page * page;
  int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, flags, -1, 0);
  if (p == MAP_FAILED) {
    return Status(Code::kNoMemory, "cannot map a host arena of " + std::to_string(size) +
                                       " bytes: " + std::strerror(errno));
  }
  madvise(p, size, MADV_HUGEPAGE);
  if (prefault) {
    // Touch every page so the first store of each block does not fault.
    // MAP_POPULATE would do the same but cannot be combined with the
    // huge-page advice issued after the mapping exists.
    auto* b = static_cast<volatile uint8_t*>(p);
    for (uint64_t off = 0; off < size; off += page) b[off] = 0;
  }
  return std::unique_ptr<HostArena>(new HostArena(static_cast<uint8_t*>(p), size));
}

HostArena::~HostArena() { munmap(base_, size_); }

}  // namespace kvc
