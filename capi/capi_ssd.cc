// kvc_ssd_inspect_json: what an SSD cache directory holds (kvc inspect).
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>

#include "capi_internal.h"
#include "tier/ssd_tier.h"

using namespace kvc;
using namespace kvc::capi;

KVC_EXPORT int kvc_ssd_inspect_json(char** out, const char* dir, kvc_error* err) {
  return Guard(err, [&]() -> Status {
    KVC_REQUIRE_ARG(out, "out");
    *out = nullptr;
    if (dir == nullptr || *dir == '\0') return InvalidArgument("dir is NULL or empty");
    // Inspection never creates a directory.
    std::error_code ec;
    if (!std::filesystem::exists(std::filesystem::path(dir) / "FORMAT", ec))
      return NotFound(std::string(dir) + " is not a kvc cache directory (it has no FORMAT file)");
    SsdOptions o;
    o.dir = dir;
    o.capacity_bytes = UINT64_MAX / 4;  // inspect: never evict on open
    auto ssd = SsdTier::Open(o);
    if (!ssd.ok()) return ssd.status();
    struct Agg {
      uint64_t blocks = 0, bytes = 0, epoch = 0;
      std::map<uint32_t, uint64_t> tenants;
    };
    std::map<std::string, Agg> by_ns;
    (*ssd)->ForEach([&](const SsdBlockId& id, const SsdMeta& m) {
      Agg& a = by_ns[id.ns.Hex()];
      ++a.blocks;
      a.bytes += m.len;
      a.tenants[m.tenant] += m.len;
    });
    nlohmann::json nss = nlohmann::json::array();
    for (auto& [seed, a] : by_ns) {
      auto k = BlockKey::FromHex(seed);
      nlohmann::json t = nlohmann::json::object();
      for (auto& [tid, bytes] : a.tenants) t[std::to_string(tid)] = bytes;
      nss.push_back({{"seed", seed},
                     {"blocks", a.blocks},
                     {"bytes", a.bytes},
                     // A namespace never bumped is at epoch 1 (what a cache starts it at).
                     {"epoch", std::max<uint64_t>(1, k.ok() ? (*ssd)->NamespaceEpoch(*k) : 0)},
                     {"bytes_by_tenant", t}});
    }
    nlohmann::json j{{"dir", dir}, {"namespaces", nss}, {"stats", (*ssd)->StatsJson()}};
    const std::string s = j.dump();
    char* p = static_cast<char*>(std::malloc(s.size() + 1));
    if (p == nullptr) return Status(Code::kNoMemory, "out of memory");
    std::memcpy(p, s.c_str(), s.size() + 1);
    *out = p;
    return Status::Ok();
  });
}
