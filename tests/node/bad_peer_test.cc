// Bad peers the wire test (node_wire_test.cc) does not cover: a client that
// stalls in the middle of a store stream, and a client that disappears in
// the middle of one (its process killed with SIGKILL, or its call dropped);
// then, on a second node with a 500 ms store idle timeout, a client that
// stalls without any deadline (cancelled by the node) and one that sends
// slowly but steadily (not cancelled).
// Starts its own `kvc serve` on a free loopback port:
//   bad_peer_test KVC_BIN
// and checks that the node keeps serving others meanwhile, publishes
// nothing of the broken streams, frees their reservations at once (another
// writer stores the same key right after), holds no pin or reservation at
// the end, and exits 0 on SIGTERM. Exits 0 when every check holds.
//
// The killed client is this binary re-executed as
//   bad_peer_test --stalled-writer ADDR KEYCHAR
// which opens a store stream, sends half a block, prints "stalled" and
// waits to be killed.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>

#include "kvc/v1/kvc.grpc.pb.h"

extern char** environ;

namespace v1 = kvc::v1;
using Clock = std::chrono::steady_clock;

namespace {

int g_failures = 0;

void Check(bool ok, const std::string& what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
  std::fflush(stdout);
  if (!ok) g_failures++;
}

// 1 layer x K,V x 4 tokens x 2 heads x 64 dims x fp16 = 2 KiB a block, 1 shard.
v1::NamespaceSpec Spec() {
  v1::NamespaceSpec s;
  s.set_model("bad-peer");
  s.set_revision("r1");
  s.set_dtype("fp16");
  s.set_layers(1);
  s.set_kv_heads(2);
  s.set_head_dim(64);
  s.set_block_tokens(4);
  s.set_shards(1);
  return s;
}
constexpr uint64_t kBlock = 2ull * 1 * 4 * 2 * 64 * 2;

std::string Key(char c) { return std::string(16, c); }

void Deadline(grpc::ClientContext* ctx, int ms) {
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(ms));
}

v1::StoreMessage Begin(char key) {
  v1::StoreMessage m;
  *m.mutable_begin()->mutable_ns() = Spec();
  m.mutable_begin()->set_key(Key(key));
  m.mutable_begin()->set_total_bytes(kBlock);
  return m;
}
v1::StoreMessage Chunk(uint64_t off, uint64_t n, char fill) {
  v1::StoreMessage m;
  m.mutable_chunk()->set_offset(off);
  m.mutable_chunk()->set_data(std::string(n, fill));
  return m;
}
v1::StoreMessage Commit() {
  v1::StoreMessage m;
  m.mutable_commit();
  return m;
}

std::shared_ptr<grpc::Channel> NewChannel(const std::string& addr) {
  // A channel of its own (not shared with other stubs of this process), so
  // that dropping it drops its connection.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(addr, grpc::InsecureChannelCredentials(), args);
}

// A whole store of `key` filled with `fill`: the kvc code, 1 for a transport error.
int Store(v1::Node::Stub& stub, char key, char fill) {
  grpc::ClientContext ctx;
  Deadline(&ctx, 5000);
  v1::StoreResponse r;
  auto w = stub.Store(&ctx, &r);
  w->Write(Begin(key));
  w->Write(Chunk(0, kBlock / 2, fill));
  w->Write(Chunk(kBlock / 2, kBlock / 2, fill));
  w->Write(Commit());
  w->WritesDone();
  if (!w->Finish().ok()) return 1;
  return r.result().code();
}

// Leading blocks present of `key` (99: the call failed).
uint64_t Present(v1::Node::Stub& stub, char key) {
  grpc::ClientContext ctx;
  Deadline(&ctx, 5000);
  v1::MatchRequest q;
  *q.mutable_ns() = Spec();
  q.add_keys(Key(key));
  v1::MatchResponse r;
  if (!stub.Match(&ctx, q, &r).ok() || r.result().code() != 0) return 99;
  return r.blocks();
}

// The block's bytes, empty on a miss or an error.
std::string Load(v1::Node::Stub& stub, char key) {
  grpc::ClientContext ctx;
  Deadline(&ctx, 5000);
  v1::LoadRequest q;
  *q.mutable_ns() = Spec();
  q.set_key(Key(key));
  auto reader = stub.Load(&ctx, q);
  v1::LoadChunk c;
  std::string bytes;
  int code = 1;
  bool first = true;
  while (reader->Read(&c)) {
    if (first) code = c.result().code();
    first = false;
    bytes += c.data();
  }
  if (!reader->Finish().ok() || code != 0) return "";
  return bytes;
}

bool Healthy(v1::Node::Stub& stub) {
  grpc::ClientContext ctx;
  Deadline(&ctx, 2000);
  v1::HealthResponse r;
  return stub.Health(&ctx, v1::HealthRequest(), &r).ok() && r.serving();
}

nlohmann::json Stats(v1::Node::Stub& stub) {
  grpc::ClientContext ctx;
  Deadline(&ctx, 2000);
  v1::StatsResponse r;
  if (!stub.Stats(&ctx, v1::StatsRequest(), &r).ok()) return nlohmann::json::object();
  return nlohmann::json::parse(r.json(), nullptr, false);
}

// Whether the node holds no reservation and no pin, waiting up to `ms`.
bool NothingHeld(v1::Node::Stub& stub, int ms) {
  const auto end = Clock::now() + std::chrono::milliseconds(ms);
  do {
    const auto j = Stats(stub);
    if (j.is_object() && j.value("pending", uint64_t{1}) == 0 && j.value("pins", uint64_t{1}) == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  } while (Clock::now() < end);
  return false;
}

// Stores `key` until it is not PENDING any more, for up to `ms`; returns
// the last code and the time it took.
int StoreWhenFree(v1::Node::Stub& stub, char key, char fill, int ms, double* took_s) {
  const auto start = Clock::now();
  int code;
  do {
    code = Store(stub, key, fill);
    if (code != -3) break;  // KVC_ERR_PENDING
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  } while (Clock::now() < start + std::chrono::milliseconds(ms));
  *took_s = std::chrono::duration<double>(Clock::now() - start).count();
  return code;
}

// Others are served while a stream stalls: a health check, a whole store
// of another key and a load of it, each well within a second.
void OthersServed(v1::Node::Stub& stub, char other, const std::string& label) {
  const auto t0 = Clock::now();
  const bool ok = Healthy(stub) && Store(stub, other, 'o') == 0 && Load(stub, other) == std::string(kBlock, 'o');
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  Check(ok && s < 1.0, label + ": other clients are served meanwhile (" + std::to_string(s) + " s)");
}

// The re-executed child: a writer that stalls mid-stream until killed.
int StalledWriter(const std::string& addr, char key) {
  auto stub = v1::Node::NewStub(NewChannel(addr));
  grpc::ClientContext ctx;  // no deadline: it stalls for as long as it lives
  v1::StoreResponse r;
  auto w = stub->Store(&ctx, &r);
  if (!w->Write(Begin(key)) || !w->Write(Chunk(0, kBlock / 2, 's'))) return 1;
  // Stalled once the node's stats show the reservation of the begin.
  for (int i = 0; i < 500; ++i) {
    if (Stats(*stub).value("pending", uint64_t{0}) > 0) {
      std::printf("stalled\n");
      std::fflush(stdout);
      pause();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return 1;
}

struct Serve {
  pid_t pid = -1;
  std::string addr;
};

Serve StartNode(const std::string& kvc, const std::string& dir, const std::string& name = "serve",
                const std::vector<std::string>& extra = {}) {
  Serve s;
  const std::string ready = dir + "/" + name + ".ready", log = dir + "/" + name + ".log";
  std::vector<std::string> args = {kvc, "serve", "--listen", "127.0.0.1:0", "--host-capacity", "16MiB",
                                   "--ready-file", ready, "--shutdown-grace-ms", "1000"};
  args.insert(args.end(), extra.begin(), extra.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (posix_spawn(&s.pid, kvc.c_str(), &fa, nullptr, argv.data(), environ) != 0) s.pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  for (int i = 0; i < 600 && s.pid > 0; ++i) {
    std::ifstream f(ready);
    if (f && std::getline(f, s.addr) && !s.addr.empty()) break;
    int st;
    if (waitpid(s.pid, &st, WNOHANG) == s.pid) {
      s.pid = -1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return s;
}

// Runs the stalled writer child; returns its pid once it reports "stalled"
// (-1 when it did not within 5 s).
pid_t SpawnStalledWriter(const char* self, const std::string& addr, char key) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  std::string k(1, key), mode = "--stalled-writer", a = addr;
  char* argv[] = {const_cast<char*>(self), mode.data(), a.data(), k.data(), nullptr};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  pid_t pid = -1;
  if (posix_spawn(&pid, self, &fa, nullptr, argv, environ) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  if (pid <= 0) {
    close(fds[0]);
    return -1;
  }
  fcntl(fds[0], F_SETFL, O_NONBLOCK);
  std::string out;
  const auto end = Clock::now() + std::chrono::seconds(5);
  while (Clock::now() < end && out.find("stalled") == std::string::npos) {
    char buf[64];
    const ssize_t n = read(fds[0], buf, sizeof buf);
    if (n > 0) out.append(buf, static_cast<size_t>(n));
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  close(fds[0]);
  if (out.find("stalled") == std::string::npos) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return -1;
  }
  return pid;
}

int StopNode(const Serve& node) {
  int status = -1;
  kill(node.pid, SIGTERM);
  waitpid(node.pid, &status, 0);
  return status;
}

double Since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// A node with a 500 ms store idle timeout (kvc serve --store-idle-timeout-ms):
// a client that stalls without a deadline is cancelled by the node, one that
// sends slowly but steadily is not.
void IdleTimeout(const std::string& kvc, const std::string& dir) {
  Serve node = StartNode(kvc, dir, "idle", {"--store-idle-timeout-ms", "500"});
  Check(node.pid > 0, "idle timeout: kvc serve --store-idle-timeout-ms 500 starts");
  if (node.pid <= 0) return;
  auto stub = v1::Node::NewStub(NewChannel(node.addr));
  double took = 0;

  // 4. A begin and half the block, then a stall with no deadline: the node
  // cancels the stream within about 1.25 timeouts and aborts its
  // reservation.
  {
    auto s = v1::Node::NewStub(NewChannel(node.addr));
    grpc::ClientContext ctx;  // no deadline
    v1::StoreResponse r;
    auto w = s->Store(&ctx, &r);
    const auto t0 = Clock::now();
    w->Write(Begin('i'));
    w->Write(Chunk(0, kBlock / 2, 's'));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    Check(Store(*stub, 'i', 'x') == -3, "idle stall: a second writer is told PENDING while the stream is young");
    const int code = StoreWhenFree(*stub, 'i', 'x', 5000, &took);
    const double freed = Since(t0);
    Check(code == 0 && freed < 1.5,
          "idle stall: the node cancels the stalled stream and the key stores " + std::to_string(freed) +
              " s after the stall began (code " + std::to_string(code) + ")");
    if (code != 0) ctx.TryCancel();  // the node did not: do not wait for ever below
    const grpc::Status st = w->Finish();
    Check(st.error_code() == grpc::StatusCode::CANCELLED,
          "idle stall: the stalled client sees CANCELLED (" + st.error_message() + ")");
    Check(Load(*stub, 'i') == std::string(kBlock, 'x'), "idle stall: the block holds the second writer's bytes");
  }

  // 5. A stream opened with nothing sent (no begin): cancelled as well, well
  // before its own 5 s deadline.
  {
    auto s = v1::Node::NewStub(NewChannel(node.addr));
    grpc::ClientContext ctx;
    Deadline(&ctx, 5000);
    v1::StoreResponse r;
    const auto t0 = Clock::now();
    auto w = s->Store(&ctx, &r);
    const grpc::Status st = w->Finish();
    const double t = Since(t0);
    Check(st.error_code() == grpc::StatusCode::CANCELLED && t < 1.5,
          "idle stall: a stream that sends nothing is cancelled after " + std::to_string(t) + " s");
  }

  // 6. Slow but steady (a chunk every 200 ms, 1.6 s in all, over three
  // timeouts): never cancelled; the block is stored whole.
  {
    grpc::ClientContext ctx;
    Deadline(&ctx, 10000);
    v1::StoreResponse r;
    auto w = stub->Store(&ctx, &r);
    bool sent = w->Write(Begin('j'));
    constexpr uint64_t kPieces = 8, kPiece = kBlock / kPieces;
    for (uint64_t i = 0; i < kPieces && sent; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      sent = w->Write(Chunk(i * kPiece, kPiece, static_cast<char>('0' + i)));
    }
    sent = sent && w->Write(Commit());
    w->WritesDone();
    const grpc::Status st = w->Finish();
    Check(sent && st.ok() && r.result().code() == 0,
          "slow but steady: a chunk every 200 ms is not cancelled (" + st.error_message() + " " +
              r.result().message() + ")");
    std::string want;
    for (uint64_t i = 0; i < kPieces; ++i) want += std::string(kPiece, static_cast<char>('0' + i));
    Check(Load(*stub, 'j') == want, "slow but steady: the block holds every chunk");
  }

  Check(NothingHeld(*stub, 2000), "idle timeout: no reservation and no pin is left on the node");
  const auto stats = Stats(*stub);
  Check(stats.value("aborts", uint64_t{0}) >= 1,
        "idle timeout: the stalled reservation was aborted (aborts = " +
            std::to_string(stats.value("aborts", uint64_t{0})) + ")");
  Check(Healthy(*stub), "idle timeout: the node is still serving");
  stub.reset();
  const int status = StopNode(node);
  Check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "idle timeout: kvc serve exits 0 on SIGTERM");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "--stalled-writer") return StalledWriter(argv[2], argv[3][0]);
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s KVC_BIN\n", argv[0]);
    return 2;
  }
  char tmpl[] = "/tmp/kvc-bad-peer-XXXXXX";
  const char* dir = mkdtemp(tmpl);
  if (dir == nullptr) return 2;
  Serve node = StartNode(argv[1], dir);
  if (node.pid <= 0) {
    std::fprintf(stderr, "kvc serve did not start (log in %s/serve.log)\n", dir);
    return 1;
  }
  std::printf("node at %s\n", node.addr.c_str());
  auto stub = v1::Node::NewStub(NewChannel(node.addr));
  double took = 0;

  // 1. A writer stalls mid-stream under a 1 s deadline: the deadline ends
  // the stream; meanwhile the same key is PENDING for others (the
  // reservation is held) and other clients are served.
  {
    auto chan = NewChannel(node.addr);
    auto s = v1::Node::NewStub(chan);
    grpc::ClientContext ctx;
    Deadline(&ctx, 1000);
    v1::StoreResponse r;
    auto w = s->Store(&ctx, &r);
    w->Write(Begin('a'));
    w->Write(Chunk(0, kBlock / 2, 's'));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    Check(Store(*stub, 'a', 'x') == -3, "deadline stall: a second writer of the key is told PENDING");
    OthersServed(*stub, 'b', "deadline stall");
    const grpc::Status st = w->Finish();  // returns once the deadline ends the call
    Check(st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED, "deadline stall: the stream ends at its deadline");
    Check(Present(*stub, 'a') == 0, "deadline stall: nothing of the stalled stream is visible");
    Check(StoreWhenFree(*stub, 'a', 'x', 2000, &took) == 0 && took < 1.0,
          "deadline stall: the key stores right after (" + std::to_string(took) + " s)");
    Check(Load(*stub, 'a') == std::string(kBlock, 'x'), "deadline stall: the block holds the second writer's bytes");
  }

  // 2. A writer without a deadline stalls, then drops its call (its
  // channel cancelled and destroyed): the reservation goes at once.
  {
    auto chan = NewChannel(node.addr);
    auto s = v1::Node::NewStub(chan);
    auto ctx = std::make_unique<grpc::ClientContext>();
    v1::StoreResponse r;
    auto w = s->Store(ctx.get(), &r);
    w->Write(Begin('c'));
    w->Write(Chunk(0, kBlock / 2, 's'));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    Check(Store(*stub, 'c', 'x') == -3, "dropped call: a second writer of the key is told PENDING while it stalls");
    OthersServed(*stub, 'd', "dropped call");
    ctx->TryCancel();
    w->Finish();
    w.reset();
    ctx.reset();
    s.reset();
    chan.reset();
    Check(StoreWhenFree(*stub, 'c', 'y', 2000, &took) == 0 && took < 1.0,
          "dropped call: the key stores right after (" + std::to_string(took) + " s)");
    Check(Load(*stub, 'c') == std::string(kBlock, 'y'), "dropped call: the block holds the second writer's bytes");
  }

  // 3. A writer process killed with SIGKILL mid-store: the node sees its
  // connection close and aborts the reservation.
  {
    const pid_t child = SpawnStalledWriter(argv[0], node.addr, 'e');
    Check(child > 0, "killed writer: the child process holds a reservation mid-stream");
    if (child > 0) {
      Check(Store(*stub, 'e', 'x') == -3, "killed writer: a second writer is told PENDING while it lives");
      OthersServed(*stub, 'f', "killed writer");
      kill(child, SIGKILL);
      waitpid(child, nullptr, 0);
      Check(StoreWhenFree(*stub, 'e', 'z', 3000, &took) == 0 && took < 1.5,
            "killed writer: the key stores right after the kill (" + std::to_string(took) + " s)");
      Check(Load(*stub, 'e') == std::string(kBlock, 'z'), "killed writer: the block holds the second writer's bytes");
    }
  }

  // Nothing leaks: no reservation or pin is left, the node still serves.
  Check(NothingHeld(*stub, 2000), "no reservation and no pin is left on the node");
  const auto stats = Stats(*stub);
  Check(stats.value("aborts", uint64_t{0}) >= 3, "the broken streams were aborted (aborts = " +
                                                     std::to_string(stats.value("aborts", uint64_t{0})) + ")");
  Check(Healthy(*stub), "the node is still serving");
  stub.reset();
  const int status = StopNode(node);
  Check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "kvc serve exits 0 on SIGTERM");

  IdleTimeout(argv[1], dir);
  std::string cmd = std::string("rm -rf ") + dir;
  if (g_failures == 0) (void)std::system(cmd.c_str());
  std::printf("%d failure(s)\n", g_failures);
  return g_failures == 0 ? 0 : 1;
}
