// Helpers shared by the SSD tier tests: scratch directories, blocks whose
// bytes follow from their key, child processes (the test binary re-executed
// to run one "child" test case), and scratch filesystems.
#ifndef KVC_TESTS_TIER_SSD_TEST_UTIL_H_
#define KVC_TESTS_TIER_SSD_TEST_UTIL_H_

#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <xxhash.h>

#include "tier/ssd_tier.h"

namespace kvc::ssdtest {

namespace fs = std::filesystem;

// A fresh directory under /tmp (ext4 here, so O_DIRECT works), removed with
// everything in it when destroyed.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/kvc-ssd-test-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A scratch filesystem mounted on a fresh directory; unmounted when
// destroyed. ok() is false (and why() says why) when mounting is not allowed.
class ScratchMount {
 public:
  ScratchMount(const std::string& type, const std::string& options) {
    if (::mount(type.c_str(), dir_.path().c_str(), type.c_str(), 0, options.c_str()) != 0) {
      why_ = "mount -t " + type + " failed: " + std::strerror(errno);
    } else {
      mounted_ = true;
    }
  }
  ~ScratchMount() {
    if (mounted_) ::umount2(dir_.path().c_str(), MNT_DETACH);
  }
  bool ok() const { return mounted_; }
  const std::string& why() const { return why_; }
  const std::string& path() const { return dir_.path(); }

 private:
  TempDir dir_;
  bool mounted_ = false;
  std::string why_;
};

inline BlockKey Ns(uint64_t n = 1) {
  BlockKey k;
  for (size_t i = 0; i < 16; ++i) k.bytes[i] = static_cast<uint8_t>(0xA0 + n + i);
  return k;
}

inline SsdBlockId IdOf(uint64_t i, const BlockKey& ns = Ns()) {
  SsdBlockId id;
  id.ns = ns;
  uint64_t x = i * 0x9E3779B97F4A7C15ull + 7;
  std::memcpy(id.key.bytes.data(), &x, 8);
  std::memcpy(id.key.bytes.data() + 8, &i, 8);
  id.shard = static_cast<uint32_t>(i % 2);
  return id;
}

// The index a test key was made from.
inline uint64_t IndexOf(const SsdBlockId& id) {
  uint64_t i;
  std::memcpy(&i, id.key.bytes.data() + 8, 8);
  return i;
}

// The bytes block i holds in these tests: a function of i alone.
inline std::vector<uint8_t> ValueOf(uint64_t i, uint64_t len) {
  std::vector<uint8_t> v(len);
  uint64_t x = i * 0xD1B54A32D192ED03ull + 1;
  for (uint64_t j = 0; j < len; j += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(v.data() + j, &x, std::min<uint64_t>(8, len - j));
  }
  return v;
}

// A length that follows from i too (not page-aligned, mostly).
inline uint64_t LenOf(uint64_t i, uint64_t lo = 1000, uint64_t hi = 80000) {
  return lo + (i * 7919) % (hi - lo);
}

inline SsdMeta MetaOf(const std::vector<uint8_t>& v, uint32_t tenant = 0, uint64_t epoch = 0,
                      int64_t expires = 0) {
  SsdMeta m;
  m.len = v.size();
  m.checksum = XXH3_64bits(v.data(), v.size());
  m.tenant = tenant;
  m.epoch = epoch;
  m.expires_at_unix_ms = expires;
  return m;
}

inline Status PutIndex(SsdTier& t, uint64_t i, uint64_t len, bool durable, uint32_t tenant = 0) {
  auto v = ValueOf(i, len);
  return t.Put(IdOf(i), MetaOf(v, tenant), v.data(), durable);
}

// OK with the right bytes, or the failing status.
inline Status ReadBack(SsdTier& t, uint64_t i, uint64_t len) {
  std::vector<uint8_t> got(len);
  Status st = t.Read(IdOf(i), got.data(), len);
  if (!st.ok()) return st;
  if (got != ValueOf(i, len)) return Status(Code::kInternal, "WRONG BYTES for block " + std::to_string(i));
  return Status::Ok();
}

inline std::unique_ptr<SsdTier> OpenTier(const SsdOptions& o) {
  auto t = SsdTier::Open(o);
  INFO(t.status().ToString());
  REQUIRE(t.ok());
  return std::move(t).value();
}

inline SsdOptions SmallOptions(const std::string& dir, uint64_t capacity = 16 << 20,
                               uint64_t segment = 1 << 20, const std::string& policy = "lru") {
  SsdOptions o;
  o.dir = dir;
  o.capacity_bytes = capacity;
  o.segment_bytes = segment;
  o.policy = policy;
  return o;
}

// Segment files in dir, by number.
inline std::map<uint64_t, std::string> SegmentFiles(const std::string& dir) {
  std::map<uint64_t, std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("seg-", 0) == 0 && name.size() > 8 && name.substr(name.size() - 4) == ".kvc") {
      out[std::stoull(name.substr(4, name.size() - 8))] = e.path().string();
    }
  }
  return out;
}

inline uint64_t SegmentBytesOnDisk(const std::string& dir) {
  uint64_t sum = 0;
  for (const auto& [no, path] : SegmentFiles(dir)) sum += fs::file_size(path);
  return sum;
}

// ------------------------------------------------------------ child processes

inline std::string SelfExe() { return fs::read_symlink("/proc/self/exe").string(); }

// A child running the test case `test_case` of this binary (decorated
// doctest::skip(), so plain runs pass over it) with `env` added, its fd 3
// the write end of a pipe the parent reads. `prefix` goes before the binary
// on the command line (e.g. fiu-run and its flags).
struct Child {
  pid_t pid = -1;
  int fd = -1;  // read end
  std::string buffered;

  Child(const std::string& test_case, const std::map<std::string, std::string>& env,
        const std::vector<std::string>& prefix = {}) {
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    const std::string exe = SelfExe();
    std::vector<std::string> args = prefix;
    args.push_back(exe);
    args.push_back("--no-skip");
    args.push_back("--test-case=" + test_case);
    args.push_back("--no-version");
    args.push_back("--minimal");
    pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::dup2(p[1], 3);  // dup2 clears O_CLOEXEC on the copy
      for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execvp(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(p[1]);
    fd = p[0];
  }
  ~Child() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    if (fd >= 0) ::close(fd);
  }

  // The next whole line, waiting up to timeout_ms; false at end of file or
  // timeout.
  bool ReadLine(std::string* line, int timeout_ms) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      auto nl = buffered.find('\n');
      if (nl != std::string::npos) {
        *line = buffered.substr(0, nl);
        buffered.erase(0, nl + 1);
        return true;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            deadline - std::chrono::steady_clock::now())
                            .count();
      if (left <= 0) return false;
      pollfd pfd{fd, POLLIN, 0};
      if (::poll(&pfd, 1, static_cast<int>(left)) <= 0) continue;
      char buf[4096];
      ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n <= 0) return false;
      buffered.append(buf, static_cast<size_t>(n));
    }
  }

  // SIGKILLs it (if still running) and reaps it; returns its wait status.
  int Kill() {
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    pid = -1;
    return status;
  }
  // Waits for it to exit; returns its wait status.
  int Wait() {
    int status = 0;
    ::waitpid(pid, &status, 0);
    pid = -1;
    return status;
  }
  // Every whole line it wrote and has not been read yet (after it ended).
  std::vector<std::string> RestLines() {
    std::vector<std::string> out;
    std::string line;
    while (ReadLine(&line, 2000)) out.push_back(line);
    return out;
  }
};

// In a child: writes one line to fd 3 (atomically: a pipe write this short
// is never split).
inline void Report(const std::string& line) {
  std::string l = line + "\n";
  ssize_t n = ::write(3, l.data(), l.size());
  (void)n;
}

inline std::string Env(const char* name, const std::string& dflt = "") {
  const char* v = ::getenv(name);
  return v == nullptr ? dflt : v;
}

}  // namespace kvc::ssdtest

#endif  // KVC_TESTS_TIER_SSD_TEST_UTIL_H_
