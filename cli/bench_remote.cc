#include "bench_remote.h"

#if KVC_BENCH_HIREDIS
#include <hiredis/hiredis.h>
#endif
#include <malloc.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <thread>
#include <utility>

#include "bench_config.h"
#include "bench_histogram.h"
#include "bench_util.h"
#include "kvc.h"

namespace kvc::cli {
namespace {

constexpr const char* kCmd = "bench";

enum class Outcome { kOk, kExists, kMiss, kError };

// One client connection of one thread to one target. Not thread-safe: each
// worker thread owns its own.
class BlockClient {
 public:
  virtual ~BlockClient() = default;
  // Stores block `index` of this thread under `key` from `src`.
  virtual Outcome Put(size_t index, const kvc_key& key, const uint8_t* src, size_t len,
                      std::string* err) = 0;
  // Copies block `index` (`key`) into `dst` (exactly `len` bytes).
  virtual Outcome Get(size_t index, const kvc_key& key, uint8_t* dst, size_t len,
                      std::string* err) = 0;
  // n blocks in one exchange where the target has one (the node: one
  // kvc_node_put_batch / kvc_node_get_batch; Redis: n commands pipelined);
  // out[i]: block i's outcome; *err: the first failure. By default one Put /
  // Get per block.
  virtual void PutBatch(const uint32_t* index, const kvc_key* keys, uint8_t* const* srcs, size_t n, size_t len,
                        Outcome* out, std::string* err) {
    for (size_t i = 0; i < n; ++i) {
      std::string e;
      out[i] = Put(index[i], keys[i], srcs[i], len, &e);
      if (out[i] == Outcome::kError && err->empty()) *err = e;
    }
  }
  virtual void GetBatch(const uint32_t* index, const kvc_key* keys, uint8_t* const* dsts, size_t n, size_t len,
                        Outcome* out, std::string* err) {
    for (size_t i = 0; i < n; ++i) {
      std::string e;
      out[i] = Get(index[i], keys[i], dsts[i], len, &e);
      if (out[i] == Outcome::kError && err->empty()) *err = e;
    }
  }
  // How many of `keys` are present (the node: the leading blocks; Redis:
  // EXISTS, all of them). false: no match on this target.
  virtual bool HasMatch() const { return true; }
  virtual Outcome Match(const std::vector<kvc_key>& keys, size_t* present, std::string* err) = 0;
  // Removes what the run stored; not timed, errors ignored.
  virtual void Cleanup(const std::vector<kvc_key>& keys) = 0;
};

// The limit: the same pattern as memcpy into and out of a per-thread ring.
class MemcpyClient final : public BlockClient {
 public:
  MemcpyClient(size_t blocks, size_t block_bytes) : ring_(blocks * block_bytes), bb_(block_bytes) {}
  Outcome Put(size_t index, const kvc_key&, const uint8_t* src, size_t len, std::string*) override {
    std::memcpy(ring_.data() + index * bb_, src, len);
    return Outcome::kOk;
  }
  Outcome Get(size_t index, const kvc_key&, uint8_t* dst, size_t len, std::string*) override {
    std::memcpy(dst, ring_.data() + index * bb_, len);
    return Outcome::kOk;
  }
  bool HasMatch() const override { return false; }
  Outcome Match(const std::vector<kvc_key>&, size_t*, std::string*) override { return Outcome::kError; }
  void Cleanup(const std::vector<kvc_key>&) override {}

 private:
  HostBuffer ring_;
  size_t bb_;
};

std::string StatusText(int rc, const kvc_error& err) {
  std::string s = err.message[0] != '\0' ? err.message : kvc_status_str(rc);
  return s + " (" + kvc_status_name(rc) + ")";
}

// A kvc node (or a cluster address) through kvc_node_*.
class NodeBlockClient final : public BlockClient {
 public:
  // The namespace whose shard is exactly `block_bytes`: int8, one layer, one
  // KV head, one token per block, head_dim = block_bytes / 2.
  explicit NodeBlockClient(uint64_t block_bytes) : head_dim_(static_cast<uint32_t>(block_bytes / 2)) {
    ns_.model = "kvc-bench";
    ns_.revision = "remote";
    ns_.dtype = "int8";
    ns_.layers = 1;
    ns_.kv_heads = 1;
    ns_.head_dim = head_dim_;
    ns_.block_tokens = 1;
    ns_.shards = 1;
  }
  ~NodeBlockClient() override { kvc_node_close(node_); }

  int Connect(const std::string& address, const RemoteConfig& c, std::string* err) {
    kvc_node_options o = KVC_NODE_OPTIONS_INIT;
    o.tenant = c.tenant.empty() ? nullptr : c.tenant.c_str();
    o.credential = c.credential.empty() ? nullptr : c.credential.c_str();
    o.timeout_ms = c.timeout_ms;
    kvc_error e{};
    const int rc = kvc_node_connect(&node_, address.c_str(), &o, &e);
    if (rc != KVC_OK) *err = StatusText(rc, e);
    return rc;
  }

  Outcome Put(size_t, const kvc_key& key, const uint8_t* src, size_t len, std::string* err) override {
    kvc_buf b = KVC_HOST_BUF(src, len);
    kvc_error e{};
    const int rc = kvc_node_put(node_, &ns_, &key, 0, &b, nullptr, &e);
    if (rc == KVC_OK) return Outcome::kOk;
    if (rc == KVC_ERR_EXISTS) return Outcome::kExists;
    *err = "put: " + StatusText(rc, e);
    return Outcome::kError;
  }
  Outcome Get(size_t, const kvc_key& key, uint8_t* dst, size_t len, std::string* err) override {
    kvc_buf b = KVC_HOST_BUF(dst, len);
    kvc_error e{};
    size_t got = 0;
    const int rc = kvc_node_get(node_, &got, &ns_, &key, 0, &b, &e);
    if (rc == KVC_ERR_NOT_FOUND) return Outcome::kMiss;
    if (rc != KVC_OK) {
      *err = "get: " + StatusText(rc, e);
      return Outcome::kError;
    }
    if (got != len) {
      *err = "get: " + std::to_string(got) + " bytes where " + std::to_string(len) + " were stored";
      return Outcome::kError;
    }
    return Outcome::kOk;
  }
  void PutBatch(const uint32_t*, const kvc_key* keys, uint8_t* const* srcs, size_t n, size_t len, Outcome* out,
                std::string* err) override {
    items_.assign(n, kvc_node_item{});
    for (size_t i = 0; i < n; ++i) {
      items_[i].key = keys[i];
      items_[i].buf = KVC_HOST_BUF(srcs[i], len);
    }
    kvc_error e{};
    const int rc = kvc_node_put_batch(node_, &ns_, 0, items_.data(), n, nullptr, &e);
    for (size_t i = 0; i < n; ++i) {
      const int s = items_[i].status;
      out[i] = s == KVC_OK ? Outcome::kOk : s == KVC_ERR_EXISTS ? Outcome::kExists : Outcome::kError;
      if (out[i] == Outcome::kError && err->empty())
        *err = "put_batch: " + (rc != KVC_OK ? StatusText(rc, e) : std::string(kvc_status_name(s)));
    }
  }
  void GetBatch(const uint32_t*, const kvc_key* keys, uint8_t* const* dsts, size_t n, size_t len, Outcome* out,
                std::string* err) override {
    items_.assign(n, kvc_node_item{});
    for (size_t i = 0; i < n; ++i) {
      items_[i].key = keys[i];
      items_[i].buf = KVC_HOST_BUF(dsts[i], len);
    }
    kvc_error e{};
    const int rc = kvc_node_get_batch(node_, &ns_, 0, items_.data(), n, &e);
    for (size_t i = 0; i < n; ++i) {
      const int s = items_[i].status;
      out[i] = s == KVC_OK ? Outcome::kOk : s == KVC_ERR_NOT_FOUND ? Outcome::kMiss : Outcome::kError;
      if (out[i] == Outcome::kOk && items_[i].len != len) {
        out[i] = Outcome::kError;
        if (err->empty())
          *err = "get_batch: " + std::to_string(items_[i].len) + " bytes where " + std::to_string(len) +
                 " were stored";
      }
      if (out[i] == Outcome::kError && err->empty())
        *err = "get_batch: " + (rc != KVC_OK ? StatusText(rc, e) : std::string(kvc_status_name(s)));
    }
  }
  Outcome Match(const std::vector<kvc_key>& keys, size_t* present, std::string* err) override {
    kvc_error e{};
    const int rc = kvc_node_match(node_, present, nullptr, &ns_, keys.data(), keys.size(), &e);
    if (rc == KVC_OK) return Outcome::kOk;
    *err = "match: " + StatusText(rc, e);
    return Outcome::kError;
  }
  void Cleanup(const std::vector<kvc_key>& keys) override {
    for (const auto& k : keys) {
      kvc_error e{};
      kvc_node_delete(node_, &ns_, &k, &e);
    }
  }

 private:
  uint32_t head_dim_;
  kvc_namespace_options ns_ = KVC_NAMESPACE_OPTIONS_INIT;
  kvc_node* node_ = nullptr;
  std::vector<kvc_node_item> items_;  // a batch's items, reused
};

#if KVC_BENCH_HIREDIS
struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyFree>;

// A Redis server through hiredis: SET/GET of the block bytes under the
// block key's 16 bytes, EXISTS for match, DEL to clean up.
class RedisBlockClient final : public BlockClient {
 public:
  ~RedisBlockClient() override {
    if (ctx_ != nullptr) redisFree(ctx_);
  }

  bool Connect(const std::string& address, std::string* err) {
    const timeval tv{2, 0};
    if (address.rfind("unix:", 0) == 0) {
      ctx_ = redisConnectUnixWithTimeout(address.c_str() + 5, tv);
    } else {
      const size_t colon = address.rfind(':');
      if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) {
        *err = "'" + address + "' is not host:port or unix:PATH";
        return false;
      }
      const std::string host = address.substr(0, colon);
      int port = 0;
      try {
        port = std::stoi(address.substr(colon + 1));
      } catch (...) {
        port = 0;
      }
      if (port <= 0 || port > 65535) {
        *err = "'" + address + "': bad port";
        return false;
      }
      ctx_ = redisConnectWithTimeout(host.c_str(), port, tv);
    }
    if (ctx_ == nullptr) {
      *err = "cannot allocate a hiredis context";
      return false;
    }
    if (ctx_->err != 0) {
      *err = std::string("cannot connect: ") + ctx_->errstr;
      return false;
    }
    const timeval call{30, 0};
    redisSetTimeout(ctx_, call);
    ReplyPtr r(static_cast<redisReply*>(redisCommand(ctx_, "PING")));
    if (!r || r->type == REDIS_REPLY_ERROR) {
      *err = "PING: " + Error(r.get());
      return false;
    }
    return true;
  }

  Outcome Put(size_t, const kvc_key& key, const uint8_t* src, size_t len, std::string* err) override {
    ReplyPtr r(static_cast<redisReply*>(
        redisCommand(ctx_, "SET %b %b", key.bytes, sizeof key.bytes, src, len)));
    if (r && r->type == REDIS_REPLY_STATUS) return Outcome::kOk;
    *err = "SET: " + Error(r.get());
    return Outcome::kError;
  }
  Outcome Get(size_t, const kvc_key& key, uint8_t* dst, size_t len, std::string* err) override {
    ReplyPtr r(static_cast<redisReply*>(redisCommand(ctx_, "GET %b", key.bytes, sizeof key.bytes)));
    if (r && r->type == REDIS_REPLY_NIL) return Outcome::kMiss;
    if (!r || r->type != REDIS_REPLY_STRING) {
      *err = "GET: " + Error(r.get());
      return Outcome::kError;
    }
    if (r->len != len) {
      *err = "GET: " + std::to_string(r->len) + " bytes where " + std::to_string(len) + " were stored";
      return Outcome::kError;
    }
    std::memcpy(dst, r->str, len);  // into the caller's buffer, as kvc_node_get does
    return Outcome::kOk;
  }
  // The fair peer of a node batch: n SETs (GETs) appended, sent together,
  // then n replies read.
  void PutBatch(const uint32_t*, const kvc_key* keys, uint8_t* const* srcs, size_t n, size_t len, Outcome* out,
                std::string* err) override {
    size_t sent = 0;
    for (; sent < n; ++sent)
      if (redisAppendCommand(ctx_, "SET %b %b", keys[sent].bytes, sizeof keys[sent].bytes, srcs[sent], len) !=
          REDIS_OK)
        break;
    for (size_t i = 0; i < n; ++i) {
      ReplyPtr r = i < sent ? Reply() : nullptr;
      out[i] = r && r->type == REDIS_REPLY_STATUS ? Outcome::kOk : Outcome::kError;
      if (out[i] == Outcome::kError && err->empty()) *err = "SET (pipelined): " + Error(r.get());
    }
  }
  void GetBatch(const uint32_t*, const kvc_key* keys, uint8_t* const* dsts, size_t n, size_t len, Outcome* out,
                std::string* err) override {
    size_t sent = 0;
    for (; sent < n; ++sent)
      if (redisAppendCommand(ctx_, "GET %b", keys[sent].bytes, sizeof keys[sent].bytes) != REDIS_OK) break;
    for (size_t i = 0; i < n; ++i) {
      ReplyPtr r = i < sent ? Reply() : nullptr;
      if (r && r->type == REDIS_REPLY_NIL) {
        out[i] = Outcome::kMiss;
      } else if (r && r->type == REDIS_REPLY_STRING && r->len == len) {
        std::memcpy(dsts[i], r->str, len);
        out[i] = Outcome::kOk;
      } else {
        out[i] = Outcome::kError;
        if (err->empty())
          *err = r && r->type == REDIS_REPLY_STRING
                     ? "GET (pipelined): " + std::to_string(r->len) + " bytes where " + std::to_string(len) +
                           " were stored"
                     : "GET (pipelined): " + Error(r.get());
      }
    }
  }
  Outcome Match(const std::vector<kvc_key>& keys, size_t* present, std::string* err) override {
    std::vector<const char*> argv{"EXISTS"};
    std::vector<size_t> lens{6};
    for (const auto& k : keys) {
      argv.push_back(reinterpret_cast<const char*>(k.bytes));
      lens.push_back(sizeof k.bytes);
    }
    ReplyPtr r(static_cast<redisReply*>(
        redisCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lens.data())));
    if (!r || r->type != REDIS_REPLY_INTEGER) {
      *err = "EXISTS: " + Error(r.get());
      return Outcome::kError;
    }
    *present = static_cast<size_t>(r->integer);
    return Outcome::kOk;
  }
  void Cleanup(const std::vector<kvc_key>& keys) override {
    for (const auto& k : keys)
      ReplyPtr(static_cast<redisReply*>(redisCommand(ctx_, "DEL %b", k.bytes, sizeof k.bytes)));
  }

 private:
  ReplyPtr Reply() {
    void* r = nullptr;
    if (redisGetReply(ctx_, &r) != REDIS_OK) return nullptr;
    return ReplyPtr(static_cast<redisReply*>(r));
  }
  std::string Error(const redisReply* r) const {
    if (r != nullptr && r->type == REDIS_REPLY_ERROR) return std::string(r->str, r->len);
    if (r != nullptr) return "unexpected reply type " + std::to_string(r->type);
    return ctx_->err != 0 ? std::string(ctx_->errstr) : "no reply";
  }
  redisContext* ctx_ = nullptr;
};
#else
// A build without hiredis: every Redis target fails to connect, saying why.
class RedisBlockClient final : public BlockClient {
 public:
  bool Connect(const std::string&, std::string* err) {
    *err = "this kvc was built without hiredis (Debian libhiredis-dev)";
    return false;
  }
  Outcome Put(size_t, const kvc_key&, const uint8_t*, size_t, std::string*) override { return Outcome::kError; }
  Outcome Get(size_t, const kvc_key&, uint8_t*, size_t, std::string*) override { return Outcome::kError; }
  Outcome Match(const std::vector<kvc_key>&, size_t*, std::string*) override { return Outcome::kError; }
  void Cleanup(const std::vector<kvc_key>&) override {}
};
#endif

// What one thread saw in one phase.
struct PhaseStats {
  LatencyHistogram latency;
  uint64_t busy_ns = 0;  // time inside the calls
  uint64_t bytes = 0;
  uint64_t ok = 0, exists = 0, misses = 0, errors = 0, short_matches = 0;
  uint64_t start_ns = 0, end_ns = 0;
  std::string first_error;

  void Merge(const PhaseStats& o) {
    latency.Merge(o.latency);
    bytes += o.bytes;
    ok += o.ok;
    exists += o.exists;
    misses += o.misses;
    errors += o.errors;
    short_matches += o.short_matches;
    if (first_error.empty()) first_error = o.first_error;
  }
};

struct ThreadResult {
  PhaseStats put, match, get;
  uint64_t verify_failures = 0;
};

nlohmann::json LatencyJson(const LatencyHistogram& h) {
  return {{"count", h.count()},
          {"mean", h.mean() / 1e3},
          {"p50", h.Quantile(0.50) / 1e3},
          {"p99", h.Quantile(0.99) / 1e3},
          {"max", static_cast<double>(h.max()) / 1e3}};
}

// A phase's figures over every thread: GB/s is the sum over threads of each
// thread's bytes over its time inside the calls; wall figures span the
// phase from the first thread's start to the last one's end.
nlohmann::json PhaseJson(const std::vector<ThreadResult>& results, PhaseStats ThreadResult::*phase,
                         bool bytes_phase) {
  PhaseStats all;
  double gbps = 0, ops_per_s = 0;
  uint64_t start = UINT64_MAX, end = 0;
  for (const auto& r : results) {
    const PhaseStats& p = r.*phase;
    all.Merge(p);
    if (p.busy_ns > 0) {
      gbps += static_cast<double>(p.bytes) / static_cast<double>(p.busy_ns);
      ops_per_s += static_cast<double>(p.latency.count()) * 1e9 / static_cast<double>(p.busy_ns);
    }
    start = std::min(start, p.start_ns);
    end = std::max(end, p.end_ns);
  }
  const double wall_s = end > start ? static_cast<double>(end - start) / 1e9 : 0;
  nlohmann::json j = {{"ops", all.latency.count()},
                      {"ops_per_s", ops_per_s},
                      {"errors", all.errors},
                      {"wall_seconds", wall_s},
                      {"latency_us", LatencyJson(all.latency)}};
  if (bytes_phase) {
    j["bytes"] = all.bytes;
    j["gbps"] = gbps;
    j["gbps_wall"] = wall_s > 0 ? static_cast<double>(all.bytes) / wall_s / 1e9 : 0.0;
  }
  if (phase == &ThreadResult::put) j["exists"] = all.exists;
  if (phase == &ThreadResult::get) j["misses"] = all.misses;
  if (phase == &ThreadResult::match) j["short"] = all.short_matches;
  return j;
}

using ClientFactory = std::function<std::unique_ptr<BlockClient>(std::string* err)>;

// One target: `threads` workers, each with its own client, run put, match
// and get of their blocks, phases separated by barriers.
nlohmann::json MeasureTarget(const RemoteConfig& c, const std::string& name, const std::string& address,
                             uint64_t key_base, const ClientFactory& make, std::string* fatal) {
  nlohmann::json row = {{"name", name}, {"address", address}};
  std::vector<std::unique_ptr<BlockClient>> clients(c.threads);
  for (uint32_t t = 0; t < c.threads; ++t) {
    std::string err;
    clients[t] = make(&err);
    if (!clients[t]) {
      *fatal = name + " " + address + ": " + err;
      row["error"] = err;
      return row;
    }
  }
  std::vector<ThreadResult> results(c.threads);
  std::barrier sync(static_cast<std::ptrdiff_t>(c.threads));
  const size_t bb = c.block_bytes;
  auto worker = [&](uint32_t t) {
    BlockClient& cl = *clients[t];
    ThreadResult& res = results[t];
    std::vector<kvc_key> keys(c.blocks);
    for (uint32_t i = 0; i < c.blocks; ++i)
      keys[i] = SyntheticKey(key_base | (uint64_t{t} << 20) | i);
    // A call moves `batch` blocks (the last call of a phase the rest).
    const size_t batch = c.batch;
    HostBuffer src(bb * batch), dst(bb * batch);
    std::vector<uint8_t*> srcs(batch), dsts(batch);
    for (size_t k = 0; k < batch; ++k) {
      srcs[k] = src.data() + k * bb;
      dsts[k] = dst.data() + k * bb;
    }
    std::vector<Outcome> outs(batch);
    std::vector<uint32_t> idx(batch);
    std::vector<kvc_key> bkeys(batch);
    auto note = [](PhaseStats& p, const std::string& err) {
      p.errors++;
      if (p.first_error.empty()) p.first_error = err;
    };
    // put
    sync.arrive_and_wait();
    res.put.start_ns = NowNs();
    for (uint32_t i0 = 0; i0 < c.blocks; i0 += static_cast<uint32_t>(batch)) {
      const size_t n = std::min<size_t>(batch, c.blocks - i0);
      for (size_t k = 0; k < n; ++k) {
        idx[k] = i0 + static_cast<uint32_t>(k);
        bkeys[k] = keys[idx[k]];
        FillBlock(srcs[k], bb, bkeys[k]);
      }
      std::string err;
      const uint64_t t0 = NowNs();
      if (batch == 1)
        outs[0] = cl.Put(idx[0], bkeys[0], srcs[0], bb, &err);
      else
        cl.PutBatch(idx.data(), bkeys.data(), srcs.data(), n, bb, outs.data(), &err);
      const uint64_t dt = NowNs() - t0;
      res.put.latency.Record(dt);
      res.put.busy_ns += dt;
      for (size_t k = 0; k < n; ++k) {
        if (outs[k] == Outcome::kOk) {
          res.put.ok++;
          res.put.bytes += bb;
        } else if (outs[k] == Outcome::kExists) {
          res.put.exists++;
        } else {
          note(res.put, err);
        }
      }
    }
    res.put.end_ns = NowNs();
    // match: the thread's whole chain, `passes` times
    sync.arrive_and_wait();
    res.match.start_ns = NowNs();
    if (cl.HasMatch()) {
      for (uint32_t p = 0; p < c.passes; ++p) {
        std::string err;
        size_t present = 0;
        const uint64_t t0 = NowNs();
        const Outcome o = cl.Match(keys, &present, &err);
        const uint64_t dt = NowNs() - t0;
        res.match.latency.Record(dt);
        res.match.busy_ns += dt;
        if (o != Outcome::kOk)
          note(res.match, err);
        else if (present != keys.size())
          res.match.short_matches++;
      }
    }
    res.match.end_ns = NowNs();
    // get: every block `passes` times, in a shuffled order, bytes verified
    std::vector<uint32_t> order(c.blocks);
    std::iota(order.begin(), order.end(), 0u);
    std::mt19937_64 rng(key_base ^ t);
    sync.arrive_and_wait();
    res.get.start_ns = NowNs();
    for (uint32_t p = 0; p < c.passes; ++p) {
      std::shuffle(order.begin(), order.end(), rng);
      for (size_t j0 = 0; j0 < order.size(); j0 += batch) {
        const size_t n = std::min<size_t>(batch, order.size() - j0);
        for (size_t k = 0; k < n; ++k) {
          idx[k] = order[j0 + k];
          bkeys[k] = keys[idx[k]];
        }
        std::string err;
        const uint64_t t0 = NowNs();
        if (batch == 1)
          outs[0] = cl.Get(idx[0], bkeys[0], dsts[0], bb, &err);
        else
          cl.GetBatch(idx.data(), bkeys.data(), dsts.data(), n, bb, outs.data(), &err);
        const uint64_t dt = NowNs() - t0;
        res.get.latency.Record(dt);
        res.get.busy_ns += dt;
        for (size_t k = 0; k < n; ++k) {
          if (outs[k] == Outcome::kOk) {
            res.get.ok++;
            res.get.bytes += bb;
            if (!CheckBlock(dsts[k], bb, bkeys[k], true)) res.verify_failures++;
            std::memset(dsts[k], 0, 64);  // a stale buffer must not pass the next check
          } else if (outs[k] == Outcome::kMiss) {
            res.get.misses++;
          } else {
            note(res.get, err);
          }
        }
      }
    }
    res.get.end_ns = NowNs();
    cl.Cleanup(keys);
  };
  std::vector<std::thread> pool;
  for (uint32_t t = 1; t < c.threads; ++t) pool.emplace_back(worker, t);
  worker(0);
  for (auto& th : pool) th.join();

  row["put"] = PhaseJson(results, &ThreadResult::put, true);
  row["get"] = PhaseJson(results, &ThreadResult::get, true);
  row["match"] = clients[0]->HasMatch() ? PhaseJson(results, &ThreadResult::match, false)
                                        : nlohmann::json(nullptr);
  uint64_t verify = 0, errors = 0;
  std::string first;
  for (const auto& r : results) {
    verify += r.verify_failures;
    errors += r.put.errors + r.get.errors + r.match.errors;
    for (const auto* p : {&r.put, &r.match, &r.get})
      if (first.empty()) first = p->first_error;
  }
  row["verify_failures"] = verify;
  row["errors"] = errors;
  if (!first.empty()) row["first_error"] = first;
  return row;
}

double Ratio(const nlohmann::json& a, const nlohmann::json& b, const char* phase, const char* field) {
  if (!a.contains(phase) || !b.contains(phase) || a[phase].is_null() || b[phase].is_null()) return 0;
  const double den = b[phase][field].get<double>();
  return den > 0 ? a[phase][field].get<double>() / den : 0;
}


// Keeps, per phase, the round with the higher figure; sums what must be
// counted over every round (verify failures, errors).
void KeepBest(nlohmann::json& best, const nlohmann::json& row) {
  if (best.is_null()) {
    best = row;
    return;
  }
  if (row.contains("error") || best.contains("error")) return;
  for (const char* phase : {"put", "get"})
    if (row[phase]["gbps"].get<double>() > best[phase]["gbps"].get<double>()) best[phase] = row[phase];
  if (!row["match"].is_null() && row["match"]["ops_per_s"].get<double>() > best["match"]["ops_per_s"].get<double>())
    best["match"] = row["match"];
  best["verify_failures"] = best["verify_failures"].get<uint64_t>() + row["verify_failures"].get<uint64_t>();
  best["errors"] = best["errors"].get<uint64_t>() + row["errors"].get<uint64_t>();
  if (!best.contains("first_error") && row.contains("first_error")) best["first_error"] = row["first_error"];
}

}  // namespace

int RunRemoteBench(const RemoteConfig& c, nlohmann::json* out) {
  // Block-sized buffers stay in the heap between calls (glibc would map
  // each one anew above its default 128 KiB threshold and trim the heap
  // after it, so that every call page-faults its buffers afresh).
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  // Keys unique to this run, so that reruns against a live node or Redis
  // never meet their own earlier blocks.
  const uint64_t nonce =
      (std::random_device{}() ^ NowNs() ^ static_cast<uint64_t>(getpid())) & 0xFFFF;
  nlohmann::json report = {{"bench", "remote"},
                           {"block_bytes", c.block_bytes},
                           {"batch", c.batch},
                           {"threads", c.threads},
                           {"blocks_per_thread", c.blocks},
                           {"passes", c.passes},
                           {"rounds", c.rounds},
                           {"cpu", CpuModel()},
                           {"hardware_threads", std::thread::hardware_concurrency()}};
  struct Slot {
    std::string name, address;
    bool redis = false;
    nlohmann::json best;  // null until measured
  };
  std::vector<Slot> slots{{"memcpy", "", false, nullptr}};
  for (const auto& t : c.targets) slots.push_back({t.kind, t.address, t.kind == "redis", nullptr});
  for (uint32_t round = 0; round < c.rounds; ++round) {
    for (size_t i = 0; i < slots.size(); ++i) {
      Slot& s = slots[i];
      if (!s.best.is_null() && s.best.contains("error")) continue;  // unreachable: once is enough
      if (c.progress)
        std::fprintf(stderr, "kvc bench: round %u, %s %s\n", round + 1, s.name.c_str(), s.address.c_str());
      ClientFactory make;
      if (i == 0) {
        make = [&](std::string*) -> std::unique_ptr<BlockClient> {
          return std::make_unique<MemcpyClient>(c.blocks, c.block_bytes);
        };
      } else if (s.redis) {
        make = [&](std::string* err) -> std::unique_ptr<BlockClient> {
          auto cl = std::make_unique<RedisBlockClient>();
          if (!cl->Connect(s.address, err)) return nullptr;
          return cl;
        };
      } else {
        make = [&](std::string* err) -> std::unique_ptr<BlockClient> {
          auto cl = std::make_unique<NodeBlockClient>(c.block_bytes);
          if (cl->Connect(s.address, c, err) != KVC_OK) return nullptr;
          return cl;
        };
      }
      std::string fatal;
      const uint64_t base = (nonce << 40) | (uint64_t{round} << 36) | (uint64_t{i} << 32);
      KeepBest(s.best, MeasureTarget(c, s.name, s.address, base, make, &fatal));
    }
  }
  int rc = kExitOk;
  nlohmann::json rows = nlohmann::json::array();
  for (auto& s : slots) {
    const nlohmann::json& row = s.best;
    if (row.contains("error")) {
      rc = Fail(kCmd, s.name + " " + s.address + ": " + row["error"].get<std::string>());
    } else {
      const uint64_t v = row["verify_failures"].get<uint64_t>();
      const uint64_t e = row["errors"].get<uint64_t>();
      if (v != 0)
        rc = Fail(kCmd, s.name + " " + s.address + ": " + std::to_string(v) +
                            " blocks read back did not hold the bytes stored");
      if (e != 0)
        rc = Fail(kCmd, s.name + " " + s.address + ": " + std::to_string(e) +
                            " failed calls, the first: " + row["first_error"].get<std::string>());
    }
    rows.push_back(std::move(s.best));
  }
  // Ratios to the first Redis row and to memcpy.
  const nlohmann::json* redis = nullptr;
  for (const auto& r : rows)
    if (r["name"] == "redis" && !r.contains("error")) {
      redis = &r;
      break;
    }
  const nlohmann::json& memcpy_row = rows.front();
  for (auto& r : rows) {
    if (r.contains("error") || r["name"] == "memcpy") continue;
    r["vs_memcpy"] = {{"put_gbps", Ratio(r, memcpy_row, "put", "gbps")},
                      {"get_gbps", Ratio(r, memcpy_row, "get", "gbps")}};
    if (redis != nullptr && &r != redis) {
      r["vs_redis"] = {{"put_gbps", Ratio(r, *redis, "put", "gbps")},
                       {"get_gbps", Ratio(r, *redis, "get", "gbps")},
                       {"match_ops", Ratio(r, *redis, "match", "ops_per_s")}};
    }
  }
  report["targets"] = std::move(rows);
  *out = std::move(report);
  return rc;
}

namespace {

void FlattenRow(const nlohmann::json& j, const std::string& prefix,
                std::vector<std::pair<std::string, std::string>>* out) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string name = prefix.empty() ? it.key() : prefix + "_" + it.key();
    if (it->is_object()) {
      FlattenRow(*it, name, out);
    } else if (it->is_string()) {
      out->emplace_back(name, it->get<std::string>());
    } else if (it->is_null()) {
      out->emplace_back(name, "");
    } else if (it->is_number_float()) {
      char buf[48];
      std::snprintf(buf, sizeof buf, "%.6g", it->get<double>());
      out->emplace_back(name, buf);
    } else {
      out->emplace_back(name, it->dump());
    }
  }
}

std::string Csv(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char ch : s) {
    if (ch == '"') q += '"';
    q += ch;
  }
  return q + "\"";
}

double Num(const nlohmann::json& j, std::initializer_list<const char*> path) {
  const nlohmann::json* p = &j;
  for (const char* k : path) {
    if (!p->is_object() || !p->contains(k) || (*p)[k].is_null()) return -1;
    p = &(*p)[k];
  }
  return p->get<double>();
}

std::string Fmt(double v, const char* fmt) {
  if (v < 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

}  // namespace

void PrintRemoteReport(const nlohmann::json& r, Output format) {
  if (format == Output::kJson) {
    std::printf("%s\n", r.dump(2).c_str());
    return;
  }
  // Every row flattened against the same columns (a row lacking one prints
  // it empty): the union of the rows' fields, in the order first seen.
  std::vector<std::string> columns{"name", "address"};
  std::vector<std::vector<std::pair<std::string, std::string>>> flat;
  for (const auto& row : r["targets"]) {
    nlohmann::json with = row;
    with["block_bytes"] = r["block_bytes"];
    with["batch"] = r["batch"];
    with["threads"] = r["threads"];
    flat.emplace_back();
    FlattenRow(with, "", &flat.back());
    for (const auto& [k, v] : flat.back())
      if (std::find(columns.begin(), columns.end(), k) == columns.end()) columns.push_back(k);
  }
  if (format == Output::kCsv) {
    std::string line;
    for (size_t i = 0; i < columns.size(); ++i) line += (i ? "," : "") + Csv(columns[i]);
    std::printf("%s\n", line.c_str());
    for (const auto& f : flat) {
      line.clear();
      for (size_t i = 0; i < columns.size(); ++i) {
        std::string v;
        for (const auto& [k, x] : f)
          if (k == columns[i]) v = x;
        line += (i ? "," : "") + Csv(v);
      }
      std::printf("%s\n", line.c_str());
    }
    return;
  }
  const uint64_t batch = r.value("batch", uint64_t{1});
  std::printf("blocks     %s each, %llu threads x %llu blocks, %llu match and get passes, %llu %s a call%s; %s\n",
              FormatSize(r["block_bytes"].get<uint64_t>()).c_str(),
              static_cast<unsigned long long>(r["threads"].get<uint64_t>()),
              static_cast<unsigned long long>(r["blocks_per_thread"].get<uint64_t>()),
              static_cast<unsigned long long>(r["passes"].get<uint64_t>()),
              static_cast<unsigned long long>(batch), batch == 1 ? "block" : "blocks",
              batch == 1 ? "" : " (latency per call)", r["cpu"].get<std::string>().c_str());
  std::printf("%-8s %-24s %9s %8s %8s %9s %8s %8s %9s %8s %6s %7s %7s %7s %7s\n", "target", "address",
              "put GB/s", "p50 us", "p99 us", "get GB/s", "p50 us", "p99 us", "match/s", "p50 us",
              "verify", "put/rds", "get/rds", "put/mem", "get/mem");
  for (const auto& row : r["targets"]) {
    const std::string name = row["name"].get<std::string>();
    const std::string addr = row["address"].get<std::string>();
    if (row.contains("error")) {
      std::printf("%-8s %-24s error: %s\n", name.c_str(), addr.c_str(),
                  row["error"].get<std::string>().c_str());
      continue;
    }
    std::printf("%-8s %-24s %9s %8s %8s %9s %8s %8s %9s %8s %6s %7s %7s %7s %7s\n", name.c_str(),
                addr.c_str(), Fmt(Num(row, {"put", "gbps"}), "%.2f").c_str(),
                Fmt(Num(row, {"put", "latency_us", "p50"}), "%.0f").c_str(),
                Fmt(Num(row, {"put", "latency_us", "p99"}), "%.0f").c_str(),
                Fmt(Num(row, {"get", "gbps"}), "%.2f").c_str(),
                Fmt(Num(row, {"get", "latency_us", "p50"}), "%.0f").c_str(),
                Fmt(Num(row, {"get", "latency_us", "p99"}), "%.0f").c_str(),
                Fmt(Num(row, {"match", "ops_per_s"}), "%.0f").c_str(),
                Fmt(Num(row, {"match", "latency_us", "p50"}), "%.0f").c_str(),
                std::to_string(row["verify_failures"].get<uint64_t>()).c_str(),
                Fmt(Num(row, {"vs_redis", "put_gbps"}), "%.2f").c_str(),
                Fmt(Num(row, {"vs_redis", "get_gbps"}), "%.2f").c_str(),
                Fmt(Num(row, {"vs_memcpy", "put_gbps"}), "%.2f").c_str(),
                Fmt(Num(row, {"vs_memcpy", "get_gbps"}), "%.2f").c_str());
  }
}

}  // namespace kvc::cli
