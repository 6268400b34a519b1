#include "sim/trace.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <unordered_map>

#include <nlohmann/json.hpp>

namespace kvc {
namespace {

using json = nlohmann::json;

bool IsNonNegativeInteger(const json& v) {
  return v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
}

// Why `line` (a parsed request) is not one, or "" when it is.
std::string CheckRequest(const json& line) {
  if (!line.is_object()) return std::string("expected a JSON object, got ") + line.type_name();
  const auto& obj = line;
  if (!obj.contains("timestamp")) return "missing field 'timestamp'";
  if (!obj["timestamp"].is_number() || obj["timestamp"].get<double>() < 0)
    return "'timestamp' must be a number >= 0";
  for (const char* field : {"input_length", "output_length"}) {
    if (!obj.contains(field)) return std::string("missing field '") + field + "'";
    if (!IsNonNegativeInteger(obj[field]))
      return std::string("'") + field + "' must be an integer >= 0";
  }
  if (!obj.contains("hash_ids")) return "missing field 'hash_ids'";
  const json& ids = obj["hash_ids"];
  if (!ids.is_array()) return std::string("'hash_ids' must be an array, got ") + ids.type_name();
  for (size_t i = 0; i < ids.size(); ++i)
    if (!IsNonNegativeInteger(ids[i]))
      return "'hash_ids'[" + std::to_string(i) + "] must be an integer >= 0";
  return "";
}

// nlohmann's message without its "[json.exception...] parse error at line 1, " prefix.
std::string ShortJsonError(const json::parse_error& e) {
  std::string m = e.what();
  const size_t at = m.find("column ");
  if (at != std::string::npos) return m.substr(at);
  const size_t close = m.find("] ");
  return close == std::string::npos ? m : m.substr(close + 2);
}

}  // namespace

Result<Trace> Trace::Load(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    return IoError("cannot read trace '" + path + "': is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError("cannot open trace '" + path + "': " + std::strerror(errno));
  return Parse(in, path);
}

Result<Trace> Trace::Parse(std::istream& in, const std::string& source) {
  Trace trace;
  std::unordered_map<uint64_t, uint32_t> handles;
  std::string text;
  size_t line_no = 0;
  while (std::getline(in, text)) {
    ++line_no;
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = source + ":" + std::to_string(line_no) + ": ";
    json line;
    try {
      line = json::parse(text);
    } catch (const json::parse_error& e) {
      return ParseError(where + "malformed JSON at " + ShortJsonError(e));
    }
    if (std::string why = CheckRequest(line); !why.empty()) return ParseError(where + why);
    for (const json& v : line["hash_ids"]) {
      const uint64_t id = v.get<uint64_t>();
      auto [it, fresh] = handles.try_emplace(id, static_cast<uint32_t>(trace.ids_.size()));
      if (fresh) {
        if (trace.ids_.size() >= kMaxBlocks) return ParseError(where + "too many distinct hash_ids");
        trace.ids_.push_back(id);
      }
      trace.blocks_.push_back(it->second);
    }
    trace.offsets_.push_back(trace.blocks_.size());
  }
  if (in.bad()) return IoError("cannot read trace '" + source + "': " + std::strerror(errno));
  if (trace.requests() == 0) return ParseError(source + ": empty trace: no requests");
  if (trace.blocks_.empty()) return ParseError(source + ": empty trace: no request has hash_ids");
  return trace;
}

}  // namespace kvc
