#include "sim/trace.h"

#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace kvc {
namespace {

Result<Trace> ParseText(const std::string& text) {
  std::istringstream in(text);
  return Trace::Parse(in, "t.jsonl");
}

std::string Line(const std::string& hash_ids) {
  return R"({"timestamp": 0, "input_length": 512, "output_length": 4, "hash_ids": )" + hash_ids +
         "}\n";
}

// The status of parsing `text`, which must fail.
Status ParseFailure(const std::string& text) {
  auto t = ParseText(text);
  REQUIRE_FALSE(t.ok());
  return t.status();
}

}  // namespace

TEST_CASE("trace: ids become dense handles in order of first appearance") {
  auto t = ParseText(Line("[70, 71, 72]") + "\n  \n" + Line("[70, 9]") + Line("[]") +
                     R"({"timestamp": 1.5, "input_length": 0, "output_length": 0, "hash_ids": [9], "extra": "x"})");
  REQUIRE_MESSAGE(t.ok(), t.status().ToString());
  CHECK(t->requests() == 4);
  CHECK(t->blocks() == 4);
  CHECK(t->accesses().size() == 6);
  CHECK(std::vector<uint32_t>(t->request(0).begin(), t->request(0).end()) ==
        std::vector<uint32_t>{0, 1, 2});
  CHECK(std::vector<uint32_t>(t->request(1).begin(), t->request(1).end()) ==
        std::vector<uint32_t>{0, 3});
  CHECK(t->request(2).empty());
  CHECK(t->request(3).size() == 1);
  CHECK(t->id(0) == 70);
  CHECK(t->id(3) == 9);
}

TEST_CASE("trace: a malformed line is refused with its line number and why") {
  const Status s = ParseFailure(Line("[1]") + "{\"timestamp\": 0, \"hash_ids\": [1,\n");
  CHECK(s.code() == Code::kParse);
  CHECK(s.message().find("t.jsonl:2:") != std::string::npos);
  CHECK(s.message().find("malformed JSON") != std::string::npos);
  CHECK(s.message().find('\n') == std::string::npos);
}

TEST_CASE("trace: missing and ill-typed fields are named") {
  struct Case {
    std::string line, expect;
  };
  const Case cases[] = {
      {R"({"timestamp": 0, "input_length": 1, "output_length": 1})", "missing field 'hash_ids'"},
      {R"({"input_length": 1, "output_length": 1, "hash_ids": []})", "missing field 'timestamp'"},
      {R"({"timestamp": 0, "output_length": 1, "hash_ids": []})", "missing field 'input_length'"},
      {R"({"timestamp": 0, "input_length": 1, "hash_ids": []})", "missing field 'output_length'"},
      {R"({"timestamp": "0", "input_length": 1, "output_length": 1, "hash_ids": []})",
       "'timestamp' must be a number"},
      {R"({"timestamp": 0, "input_length": -1, "output_length": 1, "hash_ids": []})",
       "'input_length' must be an integer"},
      {R"({"timestamp": 0, "input_length": 1, "output_length": 1.5, "hash_ids": []})",
       "'output_length' must be an integer"},
      {R"({"timestamp": 0, "input_length": 1, "output_length": 1, "hash_ids": 5})",
       "'hash_ids' must be an array"},
      {R"({"timestamp": 0, "input_length": 1, "output_length": 1, "hash_ids": [1, "2"]})",
       "'hash_ids'[1] must be an integer"},
      {R"({"timestamp": 0, "input_length": 1, "output_length": 1, "hash_ids": [1, -2]})",
       "'hash_ids'[1] must be an integer"},
      {R"([1, 2, 3])", "expected a JSON object"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.line);
    const Status s = ParseFailure(Line("[1, 2]") + c.line + "\n");
    CHECK(s.code() == Code::kParse);
    CHECK(s.message().find("t.jsonl:2: " + c.expect) != std::string::npos);
  }
}

TEST_CASE("trace: an empty trace is refused") {
  CHECK(ParseFailure("").code() == Code::kParse);
  CHECK(ParseFailure("\n \n").message().find("empty trace") != std::string::npos);
  CHECK(ParseFailure(Line("[]") + Line("[]")).message().find("no request has hash_ids") !=
        std::string::npos);
}

TEST_CASE("trace: an unreadable file is an I/O error") {
  auto missing = Trace::Load("/nonexistent/kvc/trace.jsonl");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().code() == Code::kIo);
  CHECK(missing.status().message().find("/nonexistent/kvc/trace.jsonl") != std::string::npos);
  auto dir = Trace::Load("/");
  REQUIRE_FALSE(dir.ok());
  CHECK(dir.status().code() == Code::kIo);
}

TEST_CASE("trace: loads a file") {
  const std::string path = "kvc_trace_test.jsonl";
  {
    std::ofstream f(path);
    f << Line("[1, 2, 3]") << Line("[1, 2, 4]");
  }
  auto t = Trace::Load(path);
  std::remove(path.c_str());
  REQUIRE_MESSAGE(t.ok(), t.status().ToString());
  CHECK(t->requests() == 2);
  CHECK(t->blocks() == 4);
}

}  // namespace kvc
