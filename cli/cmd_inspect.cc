// kvc inspect: what a cache directory holds (SSD tier segments, namespaces,
// tenants), through kvc_ssd_inspect_json and kvc_tenant_list_json.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "bench_config.h"
#include "command.h"

namespace kvc::cli {

Registration RegisterInspect(CLI::App& root) {
  auto* app = root.add_subcommand("inspect", "Show what a cache directory holds");
  auto dir = std::make_shared<std::string>();
  auto out = std::make_shared<Output>(Output::kTable);
  app->add_option("--dir", *dir, "Cache directory (the SSD tier's)")->required();
  AddOutputFlags(app, out.get(), false);
  return {app, [dir, out]() -> int {
            kvc_error err{};
            char* raw = nullptr;
            if (kvc_ssd_inspect_json(&raw, dir->c_str(), &err) != KVC_OK)
              return FailStatus("inspect", *dir, err);
            nlohmann::json j = nlohmann::json::parse(raw);
            kvc_string_free(raw);
            char* tenants = nullptr;
            if (kvc_tenant_list_json(&tenants, dir->c_str(), &err) == KVC_OK) {
              j["tenants"] = nlohmann::json::parse(tenants);
              kvc_string_free(tenants);
            } else {
              return FailStatus("inspect", *dir + "/tenants.json", err);
            }
            if (*out == Output::kJson) {
              std::printf("%s\n", j.dump().c_str());
              return kExitOk;
            }
            const auto& st = j["stats"];
            std::printf("directory   %s\n", dir->c_str());
            for (const char* k : {"segments", "blocks", "used_bytes", "live_bytes", "capacity_bytes",
                                  "recovered_blocks", "recovery_discarded_records", "checksum_failures"}) {
              if (st.contains(k)) {
                const uint64_t v = st[k].get<uint64_t>();
                const std::string key(k);
                std::printf("%-27s %s\n", k,
                            key.find("bytes") != std::string::npos ? FormatSize(v).c_str()
                                                                   : std::to_string(v).c_str());
              }
            }
            std::printf("\n%-34s %8s %12s %6s\n", "NAMESPACE (seed)", "BLOCKS", "BYTES", "EPOCH");
            for (const auto& n : j["namespaces"]) {
              std::printf("%-34s %8llu %12s %6llu\n", n["seed"].get<std::string>().c_str(),
                          static_cast<unsigned long long>(n["blocks"].get<uint64_t>()),
                          FormatSize(n["bytes"].get<uint64_t>()).c_str(),
                          static_cast<unsigned long long>(n["epoch"].get<uint64_t>()));
            }
            std::printf("\n%zu tenant(s)\n", j["tenants"].size());
            for (const auto& t : j["tenants"])
              std::printf("  %s (%s)\n", t["name"].get<std::string>().c_str(),
                          t["isolation"].get<std::string>().c_str());
            return kExitOk;
          }};
}

}  // namespace kvc::cli
