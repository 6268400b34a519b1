#include "bench_report.h"

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace kvc::cli {
namespace {

// A CSV field: quoted when it holds a comma, quote or line break.
std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) {
    if (c == '"') q += '"';
    q += c;
  }
  return q + "\"";
}

std::string Scalar(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  if (v.is_number_float()) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%.6g", v.get<double>());
    return buf;
  }
  return v.dump();
}

void Flatten(const nlohmann::json& j, const std::string& prefix,
             std::vector<std::pair<std::string, std::string>>* out) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string name = prefix.empty() ? it.key() : prefix + "_" + it.key();
    if (it->is_object()) {
      Flatten(*it, name, out);
    } else if (it->is_array() && !it->empty() && it->front().is_object() &&
               it->front().contains("name")) {
      // Named rows (the tenants): "tenants_t0_requests", ...
      for (const auto& row : *it) {
        nlohmann::json rest = row;
        rest.erase("name");
        Flatten(rest, name + "_" + row.at("name").get<std::string>(), out);
      }
    } else
      out->emplace_back(name, Scalar(*it));
  }
}

void PrintCsvLine(const std::vector<std::string>& fields) {
  std::string line;
  for (size_t i = 0; i < fields.size(); ++i) line += (i ? "," : "") + CsvField(fields[i]);
  std::printf("%s\n", line.c_str());
}

// 1234567 -> "1.23M".
std::string Human(double v) {
  char buf[32];
  if (v >= 1e9)
    std::snprintf(buf, sizeof buf, "%.2fG", v / 1e9);
  else if (v >= 1e6)
    std::snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
  else if (v >= 1e4)
    std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

std::string Bytes(uint64_t b) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.2f %s" : "%.0f %s", v, kUnits[u]);
  return buf;
}

double D(const nlohmann::json& j, const char* k) { return j.at(k).get<double>(); }
uint64_t U(const nlohmann::json& j, const char* k) { return j.at(k).get<uint64_t>(); }
std::string S(const nlohmann::json& j, const char* k) { return j.at(k).get<std::string>(); }

void PrintLoadTable(const nlohmann::json& r) {
  std::printf("workload   %s\n", S(r, "workload_detail").c_str());
  std::printf("model      %s (%s), %s per token, %s per block\n", S(r, "model").c_str(),
              S(r, "layout").c_str(), Bytes(U(r, "bytes_per_token")).c_str(),
              Bytes(U(r, "block_bytes")).c_str());
  std::printf("cache      %s host tier (opened in %.2f s), policy %s, hash %s; %llu threads, "
              "seed %llu\n",
              Bytes(U(r, "capacity_bytes")).c_str(), D(r, "open_seconds"), S(r, "policy").c_str(),
              S(r, "hash").c_str(), static_cast<unsigned long long>(U(r, "threads")),
              static_cast<unsigned long long>(U(r, "seed")));
  std::printf("requests   %llu in %.2f s: %.1f requests/s\n",
              static_cast<unsigned long long>(U(r, "requests")), D(r, "seconds"),
              D(r, "ops_per_s"));
  std::printf("hit ratio  %.4f of blocks (%llu of %llu), %.4f of tokens\n",
              D(r, "hit_ratio_blocks"), static_cast<unsigned long long>(U(r, "hit_blocks")),
              static_cast<unsigned long long>(U(r, "prompt_blocks")), D(r, "hit_ratio_tokens"));
  std::printf("tokens     %llu saved, %llu computed\n",
              static_cast<unsigned long long>(U(r, "tokens_saved")),
              static_cast<unsigned long long>(U(r, "tokens_computed")));
  std::printf("load       %.2f GB/s in call = %.2f x memcpy (%.2f GB/s per thread); %.2f GB/s "
              "over the run\n",
              D(r, "load_gbps"), D(r, "load_vs_memcpy"), D(r, "memcpy_gbps"),
              D(r, "load_gbps_wall"));
  std::printf("store      %.2f GB/s in call = %.2f x memcpy; %.2f GB/s over the run; %llu "
              "stored, %llu exists, %llu pending, %llu no space\n",
              D(r, "store_gbps"), D(r, "store_vs_memcpy"), D(r, "store_gbps_wall"),
              static_cast<unsigned long long>(U(r, "stored_blocks")),
              static_cast<unsigned long long>(U(r, "store_exists")),
              static_cast<unsigned long long>(U(r, "store_pending")),
              static_cast<unsigned long long>(U(r, "store_no_space")));
  std::printf("latency    %-8s %10s %10s %10s %10s %10s %10s\n", "(us)", "count", "mean", "p50",
              "p99", "p99.9", "max");
  for (const char* op : {"match", "load", "store", "request"}) {
    const auto& l = r.at("latency_us").at(op);
    std::printf("           %-8s %10llu %10.1f %10.1f %10.1f %10.1f %10.1f\n", op,
                static_cast<unsigned long long>(U(l, "count")), D(l, "mean"), D(l, "p50"),
                D(l, "p99"), D(l, "p999"), D(l, "max"));
  }
  const auto& c = r.at("cache");
  std::printf("cache      %llu blocks, %s used of %s; %llu stores, %llu evictions\n",
              static_cast<unsigned long long>(U(c, "blocks")), Bytes(U(c, "used_bytes")).c_str(),
              Bytes(U(c, "capacity_bytes")).c_str(),
              static_cast<unsigned long long>(U(c, "stores")),
              static_cast<unsigned long long>(U(c, "evictions")));
  std::string reasons;
  for (auto it = c.at("misses_by_reason").begin(); it != c.at("misses_by_reason").end(); ++it)
    if (it->get<uint64_t>() != 0) reasons += " " + it.key() + " " + Scalar(*it);
  std::printf("           %llu hits, %llu misses%s%s\n",
              static_cast<unsigned long long>(U(c, "hits")),
              static_cast<unsigned long long>(U(c, "misses")), reasons.empty() ? "" : ":",
              reasons.c_str());
  if (r.contains("tiers")) {
    const auto& h = r.at("tiers").at("host");
    std::printf("tier host  %llu blocks, %s; %llu hits (loaded blocks), %llu evictions\n",
                static_cast<unsigned long long>(U(h, "blocks")), Bytes(U(h, "bytes")).c_str(),
                static_cast<unsigned long long>(U(h, "hits")),
                static_cast<unsigned long long>(U(h, "evictions")));
    if (r.at("tiers").contains("ssd")) {
      const auto& d = r.at("tiers").at("ssd");
      std::printf("tier ssd   %llu blocks, %s of %s; %llu hits (loaded blocks, %.4f of loads), "
                  "%s read, %s written (%s)\n",
                  static_cast<unsigned long long>(U(d, "blocks")), Bytes(U(d, "bytes")).c_str(),
                  Bytes(U(d, "capacity_bytes")).c_str(),
                  static_cast<unsigned long long>(U(d, "hits")), D(r, "ssd_load_ratio"),
                  Bytes(U(d, "bytes_read")).c_str(), Bytes(U(d, "bytes_written")).c_str(),
                  ("write-" + S(r, "write_mode")).c_str());
      std::printf("           %llu promotions, %llu demotions, %llu demotions dropped, %llu "
                  "checksum failures\n",
                  static_cast<unsigned long long>(U(d, "promotions")),
                  static_cast<unsigned long long>(U(d, "demotions")),
                  static_cast<unsigned long long>(U(d, "demotions_dropped")),
                  static_cast<unsigned long long>(U(d, "checksum_failures")));
    }
  }
  if (r.contains("tenants")) {
    const auto& iso = r.at("isolation");
    std::printf("tenants    %zu isolated (Zipf 1.0); %llu first blocks sent by several, %llu "
                "keys stored by several\n",
                r.at("tenants").size(),
                static_cast<unsigned long long>(U(iso, "shared_first_blocks")),
                static_cast<unsigned long long>(U(iso, "shared_keys")));
    std::printf("           %-6s %9s %9s %12s %10s %12s %12s %8s\n", "name", "requests",
                "hit ratio", "tokens saved", "ssd hits", "host bytes", "ssd bytes", "foreign");
    for (const auto& t : r.at("tenants"))
      std::printf("           %-6s %9llu %9.4f %12llu %10llu %12s %12s %8llu\n",
                  S(t, "name").c_str(), static_cast<unsigned long long>(U(t, "requests")),
                  D(t, "hit_ratio_blocks"), static_cast<unsigned long long>(U(t, "tokens_saved")),
                  static_cast<unsigned long long>(U(t, "ssd_hit_blocks")),
                  Bytes(U(t, "host_bytes")).c_str(), Bytes(U(t, "ssd_bytes")).c_str(),
                  static_cast<unsigned long long>(U(t, "foreign_hits")));
  }
  if (U(r, "verify_failures") != 0)
    std::printf("verify     %llu loaded blocks held the wrong bytes\n",
                static_cast<unsigned long long>(U(r, "verify_failures")));
}

const char* kMicroColumns[] = {"name", "unit",  "kvc",    "limit",       "ratio",
                               "target", "target_met", "threads", "block_bytes", "layout",
                               "what",  "limit_what"};

}  // namespace

void PrintLoadReport(const nlohmann::json& report, Output format) {
  if (format == Output::kJson) {
    std::printf("%s\n", report.dump(2).c_str());
  } else if (format == Output::kCsv) {
    std::vector<std::pair<std::string, std::string>> fields;
    Flatten(report, "", &fields);
    std::vector<std::string> names, values;
    for (auto& [n, v] : fields) {
      names.push_back(n);
      values.push_back(v);
    }
    PrintCsvLine(names);
    PrintCsvLine(values);
  } else {
    PrintLoadTable(report);
  }
  std::fflush(stdout);
}

void PrintMicroReport(const nlohmann::json& report, Output format) {
  const auto& rows = report.at("rows");
  if (format == Output::kJson) {
    std::printf("%s\n", report.dump(2).c_str());
  } else if (format == Output::kCsv) {
    PrintCsvLine(std::vector<std::string>(std::begin(kMicroColumns), std::end(kMicroColumns)));
    for (const auto& row : rows) {
      std::vector<std::string> v;
      for (const char* c : kMicroColumns) v.push_back(Scalar(row.value(c, nlohmann::json())));
      PrintCsvLine(v);
    }
  } else {
    std::printf("%s, %u cpus; best of %d rounds of %.2f s per figure%s\n",
                S(report, "cpu").c_str(), report.at("cpus").get<unsigned>(),
                report.at("rounds").get<int>(), D(report, "round_seconds"),
                report.at("quick").get<bool>() ? " (--quick: rough figures)" : "");
    std::printf("%-22s %10s %10s %-9s %6s  %-22s %s\n", "name", "kvc", "limit", "unit", "ratio",
                "target", "met");
    for (const auto& row : rows) {
      const auto& met = row.at("target_met");
      std::printf("%-22s %10s %10s %-9s %6.2f  %-22s %s\n", S(row, "name").c_str(),
                  Human(D(row, "kvc")).c_str(), Human(D(row, "limit")).c_str(),
                  S(row, "unit").c_str(), D(row, "ratio"),
                  row.at("target").is_null() ? "-" : S(row, "target").c_str(),
                  met.is_null() ? "-" : met.get<bool>() ? "yes" : "NO");
    }
  }
  std::fflush(stdout);
}

}  // namespace kvc::cli
