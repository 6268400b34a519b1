#include "bench_config.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace kvc::cli {

const std::vector<ModelPreset>& ModelPresets() {
  static const std::vector<ModelPreset> presets{
      {"llama-3-8b", "fp16", 2, 32, 8, 128},
      {"llama-3-70b", "fp16", 2, 80, 8, 128},
      {"qwen2.5-7b", "fp16", 2, 28, 4, 128},
  };
  return presets;
}

const ModelPreset* FindModel(const std::string& name) {
  for (const auto& p : ModelPresets())
    if (p.name == name) return &p;
  return nullptr;
}

uint32_t DtypeBytes(const std::string& dtype) {
  if (dtype == "fp32") return 4;
  if (dtype == "fp16" || dtype == "bf16") return 2;
  if (dtype == "fp8_e4m3" || dtype == "fp8_e5m2" || dtype == "int8") return 1;
  return 0;
}

std::optional<uint64_t> ParseSize(const std::string& text) {
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
    ++i;
  const std::string number = text.substr(0, i);
  if (number.empty() || number == "." || number.find('.') != number.rfind('.')) return std::nullopt;
  std::string suffix;
  for (size_t j = i; j < text.size(); ++j)
    suffix += static_cast<char>(std::tolower(static_cast<unsigned char>(text[j])));
  double scale = 1;
  static const struct {
    const char* unit;
    double scale;
  } kUnits[] = {
      {"", 1},           {"b", 1},
      {"k", 0x1p10},     {"kib", 0x1p10}, {"kb", 1e3},
      {"m", 0x1p20},     {"mib", 0x1p20}, {"mb", 1e6},
      {"g", 0x1p30},     {"gib", 0x1p30}, {"gb", 1e9},
      {"t", 0x1p40},     {"tib", 0x1p40}, {"tb", 1e12},
  };
  bool known = false;
  for (const auto& u : kUnits) {
    if (suffix == u.unit) {
      scale = u.scale;
      known = true;
    }
  }
  if (!known) return std::nullopt;
  const double value = std::strtod(number.c_str(), nullptr) * scale;
  if (!std::isfinite(value) || value >= 0x1p64) return std::nullopt;
  if (value != std::floor(value)) return std::nullopt;  // a fraction of a byte
  return static_cast<uint64_t>(value);
}

std::string FormatSize(uint64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0)
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  else
    std::snprintf(buf, sizeof buf, "%.2f %s", v, kUnits[u]);
  return buf;
}

}  // namespace kvc::cli
