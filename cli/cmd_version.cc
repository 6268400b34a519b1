// kvc version: the library's version and compiled-in features.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "command.h"

namespace kvc::cli {

Registration RegisterVersion(CLI::App& root) {
  auto* app = root.add_subcommand("version", "Print the library version and features");
  auto out = std::make_shared<Output>(Output::kTable);
  AddOutputFlags(app, out.get(), false);
  return {app, [out] {
            uint32_t f = kvc_features();
            nlohmann::json features = nlohmann::json::array();
            const std::pair<uint32_t, const char*> names[] = {
                {KVC_FEATURE_SHA256, "sha256"}, {KVC_FEATURE_XXH3, "xxh3-128"},
                {KVC_FEATURE_CUDA, "cuda"},     {KVC_FEATURE_GRPC, "grpc"},
                {KVC_FEATURE_IO_URING, "io_uring"}, {KVC_FEATURE_SSD, "ssd"}};
            for (auto& [bit, name] : names)
              if (f & bit) features.push_back(name);
            if (*out == Output::kJson) {
              nlohmann::json j{{"version", kvc_version()},
                               {"version_number", kvc_version_number()},
                               {"features", features},
                               {"policies", kvc_policy_names()},
                               {"default_policy", kvc_policy_default()}};
              std::printf("%s\n", j.dump().c_str());
            } else {
              std::string fl;
              for (auto& x : features) fl += (fl.empty() ? "" : " ") + x.get<std::string>();
              std::printf("kvc %s\nfeatures: %s\npolicies: %s (default %s)\n", kvc_version(),
                          fl.c_str(), kvc_policy_names(), kvc_policy_default());
            }
            return kExitOk;
          }};
}

}  // namespace kvc::cli
