// The gRPC remote tier (libkvc/net/remote_tier.cc) on its own: the bounded
// send queue drops and counts what does not fit, Flush returns once the queue
// was sent or given up, and after a failure lookups fail at once until the
// back-off is over, then try again. Against a port nothing listens on.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "core/cache.h"
#include "net/remote_tier.h"

namespace kvc {
namespace {

// A loopback port that was free a moment ago (nothing listens on it).
std::string DeadAddress() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  close(fd);
  return "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
}

NamespaceFields Fields() {
  NamespaceFields f;
  f.model = "queue";
  f.revision = "r";
  f.layout.dtype = "fp16";
  f.layout.layers = 2;
  f.layout.kv_heads = 1;
  f.layout.head_dim = 64;
  f.layout.block_tokens = 16;
  return f;  // 8 KiB blocks
}

BlockKey K(uint64_t i) {
  BlockKey k;
  k.bytes.fill(static_cast<uint8_t>(i));
  return k;
}

double Seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TEST_CASE("a full send queue drops and counts, and flush gives up on a dead node quickly") {
  NamespaceState ns(0, Fields());
  CacheOptions o;
  o.remote_address = DeadAddress();
  o.remote_timeout_ms = 300;
  o.remote_backoff_ms = 5000;
  o.remote_queue_bytes = 2 * ns.shard_bytes;  // two blocks
  auto r = net::NewRemoteTier(o);
  REQUIRE(r.ok());
  RemoteTier& tier = **r;
  for (uint64_t i = 0; i < 10; ++i) tier.Put(ns, 0, 1, K(i), 0, std::vector<uint8_t>(ns.shard_bytes, 1), 0);
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(tier.Flush().ok());
  CHECK(Seconds(t0) < 2.0);
  const RemoteStats s = tier.Stats();
  // At most one in flight and two queued escaped the bound.
  CHECK(s.sends_dropped >= 7);
  CHECK(s.sends_dropped + s.send_failures == 10);
  CHECK(s.sends == 0);
  CHECK(s.queue_bytes == 0);
  CHECK(s.queue_capacity_bytes == 2 * ns.shard_bytes);
}

TEST_CASE("after a failure lookups fail at once until the back-off is over, then try again") {
  NamespaceState ns(0, Fields());
  CacheOptions o;
  o.remote_address = DeadAddress();
  o.remote_timeout_ms = 300;
  o.remote_backoff_ms = 600;
  auto r = net::NewRemoteTier(o);
  REQUIRE(r.ok());
  RemoteTier& tier = **r;
  std::vector<BlockKey> keys{K(1)};
  auto t0 = std::chrono::steady_clock::now();
  auto m = tier.Match(ns, 0, keys);
  CHECK(IsNodeDown(m.status()));
  CHECK(Seconds(t0) < 0.3 + 0.5);  // within remote_timeout_ms, with slack
  t0 = std::chrono::steady_clock::now();
  std::vector<uint8_t> dst(ns.shard_bytes);
  CHECK(IsNodeDown(tier.Get(ns, 0, K(1), 0, dst.data(), dst.size())));
  CHECK(IsNodeDown(tier.Match(ns, 0, keys).status()));
  CHECK(Seconds(t0) < 0.05);  // backing off: no attempt
  CHECK(tier.Stats().node_down == 3);
  CHECK(tier.Stats().connects == 0);
  usleep(700 * 1000);  // past the back-off: a new attempt, which takes its deadline
  t0 = std::chrono::steady_clock::now();
  CHECK(IsNodeDown(tier.Match(ns, 0, keys).status()));
  CHECK(Seconds(t0) > 0.1);
  CHECK(tier.Stats().node_down == 4);
}

TEST_CASE("remote options are checked at open") {
  CacheOptions o;
  o.remote_address = "unix:";
  CHECK(net::NewRemoteTier(o).status().code() == Code::kInvalidArgument);
  o.remote_address = "127.0.0.1:1";
  o.remote_timeout_ms = 0;
  CHECK(net::NewRemoteTier(o).status().code() == Code::kInvalidArgument);
  o.remote_timeout_ms = 100;
  o.remote_credential = "secret";
  CHECK(net::NewRemoteTier(o).status().code() == Code::kInvalidArgument);
  o.remote_credential.clear();
  o.remote_tls_ca_path = "/nonexistent/ca.pem";
  CHECK(net::NewRemoteTier(o).status().code() == Code::kInvalidArgument);
}

}  // namespace
}  // namespace kvc
