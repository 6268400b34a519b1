#include "bench_util.h"

#include <sys/mman.h>

#include <cstring>
#include <fstream>
#include <new>
#include <utility>

namespace kvc::cli {
namespace {
constexpr size_t kHugePage = size_t{2} << 20;
}  // namespace

HostBuffer::HostBuffer(size_t bytes) : size_(bytes) {
  if (bytes == 0) return;
  mapped_ = bytes + kHugePage;
  void* p = mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  auto base = reinterpret_cast<uintptr_t>(p);
  data_ = reinterpret_cast<uint8_t*>((base + kHugePage - 1) & ~(kHugePage - 1));
  madvise(data_, bytes, MADV_HUGEPAGE);
  std::memset(data_, 0, bytes);
  base_ = p;
}

HostBuffer::HostBuffer(HostBuffer&& other) noexcept { *this = std::move(other); }

HostBuffer& HostBuffer::operator=(HostBuffer&& other) noexcept {
  if (this != &other) {
    if (base_ != nullptr) munmap(base_, mapped_);
    base_ = std::exchange(other.base_, nullptr);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_ = std::exchange(other.mapped_, 0);
  }
  return *this;
}

HostBuffer::~HostBuffer() {
  if (base_ != nullptr) munmap(base_, mapped_);
}

void FillBlock(void* dst, size_t len, const kvc_key& key) {
  auto* p = static_cast<uint8_t*>(dst);
  size_t done = len < KVC_KEY_BYTES ? len : KVC_KEY_BYTES;
  std::memcpy(p, key.bytes, done);
  while (done < len) {  // double the filled prefix: memcpy speed, no loop per byte
    const size_t n = done < len - done ? done : len - done;
    std::memcpy(p + done, p, n);
    done += n;
  }
}

bool CheckBlock(const void* p, size_t len, const kvc_key& key, bool full) {
  const auto* b = static_cast<const uint8_t*>(p);
  const size_t head = len < KVC_KEY_BYTES ? len : KVC_KEY_BYTES;
  if (std::memcmp(b, key.bytes, head) != 0) return false;
  if (len == 0) return true;
  if (b[len - 1] != key.bytes[(len - 1) % KVC_KEY_BYTES]) return false;
  // Period 16 everywhere and the right first 16 bytes: the whole pattern.
  return !full || len <= KVC_KEY_BYTES ||
         std::memcmp(b, b + KVC_KEY_BYTES, len - KVC_KEY_BYTES) == 0;
}

kvc_key SyntheticKey(uint64_t n) {
  kvc_key k;
  for (int i = 0; i < 8; ++i) k.bytes[i] = static_cast<uint8_t>(n >> (8 * i));
  std::memcpy(k.bytes + 8, "kvcbench", 8);
  return k;
}

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) {
        const auto start = line.find_first_not_of(" \t", colon + 1);
        return start == std::string::npos ? "unknown" : line.substr(start);
      }
    }
  }
  return "unknown";
}

}  // namespace kvc::cli
