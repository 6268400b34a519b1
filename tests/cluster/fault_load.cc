// fault_load: a steady read/write load on a kvc cluster through the C ABI
// (kvc_node_connect on a "peers:..." or "etcd://..." address), recording a
// history for tests/cluster/checker_history.py. One line of JSON per
// operation: its start and end (CLOCK_MONOTONIC ns, as Python's
// time.monotonic_ns), the thread, the tenant, the namespace revision, the
// logical key (prefix, block), the kvc status, and what a hit carried.
//
// Every stored block is self-describing: a header (magic, key, tenant,
// revision, writer, sequence number, payload checksum) then a payload drawn
// from (writer, seq). A reader checks the header's checksum and reports
// the header's fields; the checker then decides whether the hit was legal.
//
// Planted bugs (tests only; selected by --mode, never in the library):
//   publish-early   the header goes out before the payload is written (a
//                   store that publishes before its data is there);
//   drop-revision   the revision is left out of the key and the namespace
//                   (blocks of one revision answer for another).
//
// Usage: fault_load --cluster ADDR --tenants NAME:CRED[,NAME:CRED] --seconds S
//        --history FILE [--threads N] [--timeout-ms D] [--prefixes P]
//        [--mode real|publish-early|drop-revision] [--model NAME] [--seed N]
#include <kvc.h>

#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr uint64_t kMagic = 0x6b76632d666c7431ULL;  // "kvc-flt1"
constexpr uint32_t kBlocksPerPrefix = 4;
constexpr uint32_t kBlockTokens = 16;
const char* const kRevisions[] = {"rev-a", "rev-b"};

struct Header {
  uint64_t magic;
  uint8_t key[16];
  uint32_t tenant, revision, writer, pad;
  uint64_t seq;
  uint64_t payload_sum;
};

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t Sum(const uint8_t* p, size_t n) {  // FNV-1a 64
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}

void FillPayload(uint8_t* p, size_t n, uint32_t writer, uint64_t seq) {
  uint64_t s = Mix((static_cast<uint64_t>(writer) << 40) ^ seq);
  for (size_t i = 0; i < n; i += 8) {
    s = Mix(s);
    std::memcpy(p + i, &s, std::min<size_t>(8, n - i));
  }
}

struct Args {
  std::string cluster, history, mode = "real", model = "fault-model";
  std::vector<std::pair<std::string, std::string>> tenants;
  double seconds = 10;
  int threads = 4;
  uint32_t timeout_ms = 1000;
  uint32_t prefixes = 300;
  uint64_t seed = 1;
};

std::mutex g_out_mu;
FILE* g_out = nullptr;

void Record(const std::string& line) {
  std::lock_guard<std::mutex> lk(g_out_mu);
  std::fputs(line.c_str(), g_out);
  std::fputc('\n', g_out);
}

// ,"msg":"..." for a failed call (JSON-escaped), nothing otherwise.
std::string Msg(int rc, const kvc_error& err) {
  if (rc == KVC_OK || rc == KVC_ERR_NOT_FOUND || rc == KVC_ERR_EXISTS) return "";
  std::string out = ",\"msg\":\"";
  for (const char* p = err.message; *p; ++p) {
    if (*p == '"' || *p == '\\') out += '\\';
    if (static_cast<unsigned char>(*p) >= 0x20) out += *p;
  }
  return out + "\"";
}

std::string Hex(const uint8_t* k) {
  char h[33];
  kvc_key_to_hex(reinterpret_cast<const kvc_key*>(k), h);
  return h;
}

class Load {
 public:
  explicit Load(const Args& a) : a_(a) {
    shard_bytes_ = 2ull * 2 /*layers*/ * kBlockTokens * 2 /*heads*/ * 64 /*dim*/ * 2 /*fp16*/;
  }

  kvc_namespace_options Ns(uint32_t rev) const {
    kvc_namespace_options o = KVC_NAMESPACE_OPTIONS_INIT;
    o.model = a_.model.c_str();
    // The planted bug: every revision names the same namespace.
    o.revision = a_.mode == "drop-revision" ? "rev" : kRevisions[rev];
    o.dtype = "fp16";
    o.layers = 2;
    o.kv_heads = 2;
    o.head_dim = 64;
    o.block_tokens = kBlockTokens;
    o.shards = 1;
    return o;
  }

  // The keys of prefix p under revision `rev` (kvc-hash-v1 of its tokens).
  bool Keys(uint32_t rev, uint32_t p, kvc_key* out) const {
    std::vector<uint32_t> tokens(kBlocksPerPrefix * kBlockTokens);
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<uint32_t>(Mix(p * 1000003ull + i) & 0xffff);
    kvc_namespace_options o = Ns(rev);
    size_t n = 0;
    kvc_error err{};
    kvc_key seed;
    if (kvc_hash_keys(&seed, out, kBlocksPerPrefix, &n, &o, tokens.data(), tokens.size(), &err) != KVC_OK) {
      std::fprintf(stderr, "fault_load: kvc_hash_keys: %s\n", err.message);
      return false;
    }
    return n == kBlocksPerPrefix;
  }

  int Run() {
    // The key of every (revision, prefix, block), for the checker's placement.
    for (uint32_t rev = 0; rev < 2; ++rev)
      for (uint32_t p = 0; p < a_.prefixes; ++p) {
        kvc_key k[kBlocksPerPrefix];
        if (!Keys(rev, p, k)) {
          std::fprintf(stderr, "fault_load: kvc_hash_keys failed\n");
          return 2;
        }
        for (uint32_t b = 0; b < kBlocksPerPrefix; ++b)
          Record("{\"op\":\"key\",\"rev\":" + std::to_string(rev) + ",\"prefix\":" + std::to_string(p) +
                 ",\"block\":" + std::to_string(b) + ",\"key\":\"" + Hex(k[b].bytes) + "\"}");
      }
    Record("{\"op\":\"config\",\"timeout_ms\":" + std::to_string(a_.timeout_ms) + ",\"mode\":\"" + a_.mode +
           "\",\"threads\":" + std::to_string(a_.threads) + ",\"start_ns\":" + std::to_string(NowNs()) + "}");
    std::vector<std::thread> ts;
    std::atomic<int> failed{0};
    for (int t = 0; t < a_.threads; ++t)
      ts.emplace_back([this, t, &failed] {
        if (!Worker(static_cast<uint32_t>(t))) failed.fetch_add(1);
      });
    for (auto& t : ts) t.join();
    return failed.load() ? 2 : 0;
  }

 private:
  bool Worker(uint32_t id) {
    const uint32_t tenant = id % static_cast<uint32_t>(a_.tenants.size());
    kvc_node_options o = KVC_NODE_OPTIONS_INIT;
    o.tenant = a_.tenants[tenant].first.c_str();
    o.credential = a_.tenants[tenant].second.c_str();
    o.timeout_ms = a_.timeout_ms;
    o.connect_timeout_ms = a_.timeout_ms;
    kvc_node* node = nullptr;
    kvc_error err{};
    if (kvc_node_connect(&node, a_.cluster.c_str(), &o, &err) != KVC_OK) {
      std::fprintf(stderr, "fault_load: connect %s: %s\n", a_.cluster.c_str(), err.message);
      return false;
    }
    const uint32_t writer = id + 1;
    uint64_t seq = 0, rng = Mix(a_.seed * 7919 + id);
    std::vector<uint8_t> buf(shard_bytes_), out(shard_bytes_);
    const uint64_t end = NowNs() + static_cast<uint64_t>(a_.seconds * 1e9);
    while (NowNs() < end) {
      rng = Mix(rng);
      const uint32_t rev = static_cast<uint32_t>(rng & 1);
      const uint32_t p = static_cast<uint32_t>((rng >> 8) % a_.prefixes);
      const uint32_t dice = static_cast<uint32_t>((rng >> 40) % 10000);
      kvc_key keys[kBlocksPerPrefix];
      Keys(rev, p, keys);
      kvc_namespace_options ns = Ns(rev);
      const std::string common = ",\"th\":" + std::to_string(id) + ",\"tenant\":" + std::to_string(tenant) +
                                 ",\"rev\":" + std::to_string(rev) + ",\"prefix\":" + std::to_string(p);
      if (dice < 3500) {  // store the prefix's blocks in order
        for (uint32_t b = 0; b < kBlocksPerPrefix; ++b) {
          ++seq;
          Header h{};
          h.magic = kMagic;
          std::memcpy(h.key, keys[b].bytes, 16);
          h.tenant = tenant;
          h.revision = rev;
          h.writer = writer;
          h.seq = seq;
          uint8_t* payload = buf.data() + sizeof(Header);
          const size_t plen = buf.size() - sizeof(Header);
          const bool early = a_.mode == "publish-early";
          std::vector<uint8_t> intended(plen);
          FillPayload(intended.data(), plen, writer, seq);
          h.payload_sum = Sum(intended.data(), plen);
          std::memcpy(buf.data(), &h, sizeof(h));
          // The planted bug: the block goes out with the previous block's payload.
          if (!early) std::memcpy(payload, intended.data(), plen);
          kvc_buf src = KVC_HOST_BUF(buf.data(), buf.size());
          kvc_store_options so = KVC_STORE_OPTIONS_INIT;
          if (b > 0) so.parent = &keys[b - 1];
          const uint64_t t0 = NowNs();
          const int rc = kvc_node_put(node, &ns, &keys[b], 0, &src, &so, &err);
          const uint64_t t1 = NowNs();
          if (early) std::memcpy(payload, intended.data(), plen);
          Record("{\"op\":\"put\",\"t0\":" + std::to_string(t0) + ",\"t1\":" + std::to_string(t1) + common +
                 ",\"block\":" + std::to_string(b) + ",\"code\":" + std::to_string(rc) + ",\"writer\":" +
                 std::to_string(writer) + ",\"seq\":" + std::to_string(seq) + Msg(rc, err) + "}");
          if (rc != KVC_OK && rc != KVC_ERR_EXISTS) break;
        }
      } else if (dice < 9000) {  // read one block
        const uint32_t b = static_cast<uint32_t>((rng >> 20) % kBlocksPerPrefix);
        kvc_buf dst = KVC_HOST_BUF(out.data(), out.size());
        size_t len = 0;
        std::memset(out.data(), 0, out.size());
        const uint64_t t0 = NowNs();
        const int rc = kvc_node_get(node, &len, &ns, &keys[b], 0, &dst, &err);
        const uint64_t t1 = NowNs();
        std::string hit;
        if (rc == KVC_OK) {
          Header h;
          std::memcpy(&h, out.data(), sizeof(h));
          const bool whole = len == out.size() && h.magic == kMagic &&
                             Sum(out.data() + sizeof(Header), out.size() - sizeof(Header)) == h.payload_sum;
          hit = ",\"whole\":" + std::string(whole ? "true" : "false") + ",\"h_key\":\"" + Hex(h.key) +
                "\",\"h_tenant\":" + std::to_string(h.tenant) + ",\"h_rev\":" + std::to_string(h.revision) +
                ",\"h_writer\":" + std::to_string(h.writer) + ",\"h_seq\":" + std::to_string(h.seq);
        }
        Record("{\"op\":\"get\",\"t0\":" + std::to_string(t0) + ",\"t1\":" + std::to_string(t1) + common +
               ",\"block\":" + std::to_string(b) + ",\"code\":" + std::to_string(rc) + hit + Msg(rc, err) + "}");
      } else if (dice < 9800) {  // match the chain
        size_t blocks = 0;
        uint8_t tiers[kBlocksPerPrefix];
        const uint64_t t0 = NowNs();
        const int rc = kvc_node_match(node, &blocks, tiers, &ns, keys, kBlocksPerPrefix, &err);
        const uint64_t t1 = NowNs();
        Record("{\"op\":\"match\",\"t0\":" + std::to_string(t0) + ",\"t1\":" + std::to_string(t1) + common +
               ",\"code\":" + std::to_string(rc) + ",\"blocks\":" + std::to_string(blocks) + Msg(rc, err) + "}");
      } else if (dice < 9990) {  // delete one block
        const uint32_t b = static_cast<uint32_t>((rng >> 20) % kBlocksPerPrefix);
        const uint64_t t0 = NowNs();
        const int rc = kvc_node_delete(node, &ns, &keys[b], &err);
        const uint64_t t1 = NowNs();
        Record("{\"op\":\"delete\",\"t0\":" + std::to_string(t0) + ",\"t1\":" + std::to_string(t1) + common +
               ",\"block\":" + std::to_string(b) + ",\"code\":" + std::to_string(rc) + Msg(rc, err) + "}");
      } else {  // bump the namespace's revision epoch
        uint64_t epoch = 0;
        const uint64_t t0 = NowNs();
        const int rc = kvc_node_bump_revision(node, &ns, &epoch, &err);
        const uint64_t t1 = NowNs();
        Record("{\"op\":\"bump\",\"t0\":" + std::to_string(t0) + ",\"t1\":" + std::to_string(t1) + common +
               ",\"code\":" + std::to_string(rc) + Msg(rc, err) + "}");
      }
    }
    kvc_node_close(node);
    return true;
  }

  const Args& a_;
  size_t shard_bytes_ = 0;
};

bool ParseArgs(int argc, char** argv, Args* a) {
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (i + 1 >= argc) return false;
    const std::string v = argv[++i];
    if (k == "--cluster") a->cluster = v;
    else if (k == "--history") a->history = v;
    else if (k == "--mode") a->mode = v;
    else if (k == "--model") a->model = v;
    else if (k == "--seconds") a->seconds = std::atof(v.c_str());
    else if (k == "--threads") a->threads = std::atoi(v.c_str());
    else if (k == "--timeout-ms") a->timeout_ms = static_cast<uint32_t>(std::atoi(v.c_str()));
    else if (k == "--prefixes") a->prefixes = static_cast<uint32_t>(std::atoi(v.c_str()));
    else if (k == "--seed") a->seed = std::strtoull(v.c_str(), nullptr, 10);
    else if (k == "--tenants") {
      size_t pos = 0;
      while (pos <= v.size()) {
        size_t comma = v.find(',', pos);
        if (comma == std::string::npos) comma = v.size();
        const std::string item = v.substr(pos, comma - pos);
        const size_t colon = item.find(':');
        if (colon == std::string::npos) return false;
        a->tenants.emplace_back(item.substr(0, colon), item.substr(colon + 1));
        pos = comma + 1;
      }
    } else {
      return false;
    }
  }
  return !a->cluster.empty() && !a->history.empty() && !a->tenants.empty() && a->threads > 0 && a->prefixes > 0 &&
         (a->mode == "real" || a->mode == "publish-early" || a->mode == "drop-revision");
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (!ParseArgs(argc, argv, &a)) {
    std::fprintf(stderr,
                 "usage: fault_load --cluster ADDR --tenants NAME:CRED[,NAME:CRED] --seconds S --history FILE "
                 "[--threads N] [--timeout-ms D] [--prefixes P] [--mode real|publish-early|drop-revision] "
                 "[--model NAME] [--seed N]\n");
    return 2;
  }
  g_out = std::fopen(a.history.c_str(), "w");
  if (!g_out) {
    std::fprintf(stderr, "fault_load: %s: %s\n", a.history.c_str(), std::strerror(errno));
    return 2;
  }
  Load load(a);
  const int rc = load.Run();
  std::fclose(g_out);
  return rc;
}
