// SsdTier under faults: a full filesystem (a small tmpfs), injected I/O
// errors (libfiu's POSIX preload, in a child process), a directory locked by
// another process, and formats this build does not read.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <set>

#include "ssd_test_util.h"
#include "tier/ssd_format.h"
#include "tier/ssd_tier.h"

namespace kvc {
namespace {

using namespace ssdtest;

void WriteFile(const std::string& path, uint64_t bytes) {
  std::vector<char> zeros(bytes, 'z');
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, zeros.data(), zeros.size()) == static_cast<ssize_t>(zeros.size()));
  ::close(fd);
}

bool HaveFiu() { return ::access("/usr/bin/fiu-run", X_OK) == 0; }

// libfiu's preload library and a sanitizer runtime do not load together.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

}  // namespace

TEST_CASE("ssd: a full filesystem fails Puts cleanly and keeps serving") {
  ScratchMount m("tmpfs", "size=4m");
  if (!m.ok()) {
    MESSAGE("SKIPPED LOUDLY: cannot mount a 4 MiB tmpfs for the disk-full test (" << m.why()
                                                                                << "); run as root");
    return;
  }
  const std::string dir = m.path() + "/ssd", filler = m.path() + "/filler";
  WriteFile(filler, 1 << 20);
  // The tier believes it has 64 MiB; the filesystem has 3.
  const SsdOptions o = SmallOptions(dir, 64 << 20, 1 << 20, "lru");
  std::set<uint64_t> acked;
  uint64_t failed_at = 0;
  {
    auto t = OpenTier(o);
    MESSAGE("tmpfs: direct_io=" << t->Stats().direct_io);
    Status st;
    uint64_t i = 0;
    for (; i < 400; ++i) {
      st = PutIndex(*t, i, 32000, /*durable=*/true);
      if (!st.ok()) break;
      acked.insert(i);
    }
    REQUIRE_FALSE(st.ok());
    failed_at = i;
    INFO(st.ToString());
    CHECK(st.code() == Code::kNoSpace);
    CHECK(st.message().find("No space left on device") != std::string::npos);
    CHECK(st.message().find(dir) != std::string::npos);
    CHECK_FALSE(t->Lookup(IdOf(i), nullptr));
    CHECK(t->Stats().io_errors >= 1);
    CHECK(t->Stats().put_rejects >= 1);
    // Everything stored before still reads back.
    for (uint64_t j : acked) CHECK(ReadBack(*t, j, 32000).ok());
    // Free some space: Puts work again.
    REQUIRE(::unlink(filler.c_str()) == 0);
    for (uint64_t j = 1000; j < 1010; ++j) {
      Status again = PutIndex(*t, j, 32000, true);
      INFO(again.ToString());
      CHECK(again.ok());
      if (again.ok()) acked.insert(j);
    }
    for (uint64_t j : acked) CHECK(ReadBack(*t, j, 32000).ok());
  }
  // Reopened, it serves the whole blocks, and nothing else.
  auto t = OpenTier(o);
  for (uint64_t j : acked) CHECK(ReadBack(*t, j, 32000).ok());
  CHECK_FALSE(t->Lookup(IdOf(failed_at), nullptr));
  t->ForEach([&](const SsdBlockId& id, const SsdMeta&) { CHECK(acked.count(IndexOf(id)) == 1); });
  CHECK(t->Stats().checksum_failures == 0);
}

TEST_CASE("ssd: reopening right after the filesystem filled serves only whole blocks") {
  ScratchMount m("tmpfs", "size=3m");
  if (!m.ok()) {
    MESSAGE("SKIPPED LOUDLY: cannot mount a 3 MiB tmpfs for the disk-full test (" << m.why()
                                                                                << "); run as root");
    return;
  }
  const std::string dir = m.path() + "/ssd";
  const SsdOptions o = SmallOptions(dir, 64 << 20, 1 << 20, "lru");
  std::set<uint64_t> acked, tried;
  {
    auto t = OpenTier(o);
    for (uint64_t i = 0; i < 400; ++i) {
      tried.insert(i);
      // Mostly plain Puts: the failure is found by the flusher, and Flush reports it.
      Status st = PutIndex(*t, i, 20000 + i * 11, i % 10 == 9);
      if (st.ok() && i % 10 == 9) {
        acked.insert(i);
      } else if (!st.ok()) {
        CHECK((st.code() == Code::kNoSpace || st.code() == Code::kIo));
        break;
      }
    }
    Status fl = t->Flush();
    INFO(fl.ToString());
    CHECK((fl.ok() || fl.code() == Code::kNoSpace));
  }  // the footer of the last segment may not fit either
  auto t = OpenTier(o);
  for (uint64_t j : acked) CHECK(ReadBack(*t, j, 20000 + j * 11).ok());
  uint64_t served = 0;
  t->ForEach([&](const SsdBlockId& id, const SsdMeta& meta) {
    const uint64_t i = IndexOf(id);
    CHECK(tried.count(i) == 1);
    CHECK(ReadBack(*t, i, meta.len).ok());
    ++served;
  });
  CHECK(served >= acked.size());
  CHECK(t->Stats().checksum_failures == 0);
}

// Under fiu-run: durable Puts of blocks start.., with failures injected into
// pwrite or fdatasync. Reports "p <i>" for each Put that returned OK, "f <i>
// <code> <message>" for each that failed, and "bad <i>" if a block it had
// stored read back wrong (or not at all) after a failure.
TEST_CASE("ssd child: writer under injected faults" * doctest::skip()) {
  const std::string dir = Env("KVC_SSD_CHILD_DIR");
  if (dir.empty()) return;
  SsdOptions o = SmallOptions(dir, 32 << 20, 1 << 20, "lru");
  o.io_uring = false;  // libfiu wraps the libc calls; io_uring would go around it
  auto opened = SsdTier::Open(o);
  if (!opened.ok()) {
    Report("open-failed " + opened.status().ToString());
    return;
  }
  auto& t = *opened.value();
  std::vector<uint64_t> stored;
  for (uint64_t i = 0; i < 150; ++i) {
    Status st = PutIndex(t, i, LenOf(i, 1000, 30000), true);
    if (st.ok()) {
      stored.push_back(i);
      Report("p " + std::to_string(i));
      continue;
    }
    Report("f " + std::to_string(i) + " " + CodeName(st.code()) + " " + st.message());
    for (uint64_t j : stored) {
      if (!ReadBack(t, j, LenOf(j, 1000, 30000)).ok() && t.Lookup(IdOf(j), nullptr)) {
        Report("bad " + std::to_string(j));
      }
    }
  }
  Report("done " + std::to_string(t.Stats().io_errors));
}

TEST_CASE("ssd: injected write and sync errors fail Puts cleanly and nothing half-written is served") {
  if (!HaveFiu()) {
    MESSAGE("SKIPPED LOUDLY: fiu-run (fiu-utils) is not installed; I/O error injection untested");
    return;
  }
  if (kSanitized) {
    MESSAGE("SKIPPED LOUDLY: a sanitizer build cannot run under fiu-run's preload library; "
            "I/O error injection is tested by the plain build");
    return;
  }
  for (const std::string point : {"posix/io/rw/pwrite", "posix/io/sync/fdatasync"}) {
    CAPTURE(point);
    TempDir d;
    const std::string dir = d.sub("ssd");
    { auto t = OpenTier(SmallOptions(dir, 32 << 20, 1 << 20, "lru")); }  // FORMAT, LOCK
    Child child("ssd child: writer under injected faults", {{"KVC_SSD_CHILD_DIR", dir}},
                {"fiu-run", "-x", "-c",
                 "enable_random name=" + point + ",probability=0.08,failinfo=5"});
    std::set<uint64_t> acked, failed;
    bool done = false;
    uint64_t lost_after_error = 0;
    for (const std::string& l : child.RestLines()) {
      if (l.rfind("p ", 0) == 0) {
        acked.insert(std::stoull(l.substr(2)));
      } else if (l.rfind("f ", 0) == 0) {
        std::istringstream in(l.substr(2));
        uint64_t i;
        std::string code;
        in >> i >> code;
        failed.insert(i);
        INFO(l);
        CHECK(code == "KVC_ERR_IO");
        CHECK(l.find("Input/output error") != std::string::npos);
        CHECK(l.find(dir) != std::string::npos);
      } else if (l.rfind("bad ", 0) == 0) {
        ++lost_after_error;
      } else if (l.rfind("done", 0) == 0) {
        done = true;
      } else {
        FAIL_CHECK("unexpected line from the child: " << l);
      }
    }
    CHECK(child.Wait() == 0);
    CHECK(done);
    CHECK(lost_after_error == 0);
    CHECK(failed.size() > 0);
    CHECK(acked.size() > 0);
    MESSAGE(point << ": " << acked.size() << " Puts stored, " << failed.size() << " failed");
    // Reopened without faults: every stored block, none of the failed ones.
    auto t = OpenTier(SmallOptions(dir, 32 << 20, 1 << 20, "lru"));
    for (uint64_t i : acked) CHECK(ReadBack(*t, i, LenOf(i, 1000, 30000)).ok());
    for (uint64_t i : failed) CHECK_FALSE(t->Lookup(IdOf(i), nullptr));
    t->ForEach([&](const SsdBlockId& id, const SsdMeta& m) {
      CHECK(ReadBack(*t, IndexOf(id), m.len).ok());
    });
    CHECK(t->Stats().checksum_failures == 0);
  }
}

// Tries to open the directory and reports "<code name> <message>".
TEST_CASE("ssd child: second opener" * doctest::skip()) {
  const std::string dir = Env("KVC_SSD_CHILD_DIR");
  if (dir.empty()) return;
  auto t = SsdTier::Open(SmallOptions(dir));
  Report(std::string(CodeName(t.status().code())) + " " + t.status().message());
}

TEST_CASE("ssd: a directory in use by another process or SsdTier is refused") {
  TempDir d;
  auto t = OpenTier(SmallOptions(d.path()));
  Child child("ssd child: second opener", {{"KVC_SSD_CHILD_DIR", d.path()}});
  std::string line;
  REQUIRE(child.ReadLine(&line, 20000));
  CHECK(line.rfind("KVC_ERR_UNAVAILABLE ", 0) == 0);
  CHECK(line.find("pid " + std::to_string(::getpid())) != std::string::npos);
  child.Wait();
  // A second opener in this process (another open file description) too.
  Status st = SsdTier::Open(SmallOptions(d.path())).status();
  CHECK(st.code() == Code::kUnavailable);
  t.reset();
  CHECK(SsdTier::Open(SmallOptions(d.path())).ok());  // released on close
}

TEST_CASE("ssd: formats this build does not read are refused") {
  TempDir d;
  { auto t = OpenTier(SmallOptions(d.path())); }
  std::string format;
  {
    std::ifstream in(d.path() + "/FORMAT");
    std::getline(in, format);
  }
  CHECK(format == "kvc-ssd 1");
  auto with_format = [&](const std::string& text) {
    std::ofstream(d.path() + "/FORMAT", std::ios::trunc) << text;
    return SsdTier::Open(SmallOptions(d.path())).status();
  };
  Status st = with_format("kvc-ssd 2\n");
  CHECK(st.code() == Code::kUnsupported);
  CHECK(st.message().find("newer") != std::string::npos);
  CHECK(with_format("kvc-ssd 0\n").code() == Code::kUnsupported);
  CHECK(with_format("something else\n").code() == Code::kUnsupported);
  CHECK(with_format("kvc-ssd one\n").code() == Code::kUnsupported);
  CHECK(with_format("kvc-ssd 1\n").ok());
  // Segments without a FORMAT file: not ours to read.
  TempDir e;
  WriteFile(e.path() + "/" + ssd::SegmentFileName(1), 8192);
  st = SsdTier::Open(SmallOptions(e.path())).status();
  CHECK(st.code() == Code::kUnsupported);
}

}  // namespace kvc
