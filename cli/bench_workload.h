// Prompt generators of `kvc bench`: synthetic token streams whose prefixes
// repeat the way real traffic's do.
//
//   chat    multi-turn sessions; each opens with a system prompt drawn
//           (Zipf) from a small popular set, and each turn's prompt is the
//           previous prompt + the previous answer + a new user message.
//   rag     an instruction, then 1-3 documents drawn Zipf-popular from a
//           corpus (reused across queries), then a per-query question.
//   random  unrelated prompts of random tokens: the no-reuse baseline.
//
// A Workload is built once from a seed and is immutable (thread-safe); each
// worker thread takes its own PromptStream (one thread at a time). Streams
// are deterministic: equal seed and stream index give equal prompts.
#ifndef KVC_CLI_BENCH_WORKLOAD_H_
#define KVC_CLI_BENCH_WORKLOAD_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kvc::cli {

// A small fast PRNG (xoshiro256**), seeded through splitmix64.
class Rng {
 public:
  explicit Rng(uint64_t seed);
  uint64_t Next();
  // Uniform in [lo, hi]. REQUIRES: lo <= hi.
  uint64_t Between(uint64_t lo, uint64_t hi);
  // Uniform in [0, 1).
  double Unit();

 private:
  uint64_t s_[4];
};

// Samples ranks 0..n-1 with P(k) proportional to 1 / (k + 1)^s.
class ZipfSampler {
 public:
  ZipfSampler(size_t n, double s);
  size_t Sample(Rng& rng) const;

 private:
  std::vector<double> cdf_;
};

struct WorkloadConfig {
  std::string kind = "chat";  // chat | rag | random
  uint64_t seed = 1;
  // No prompt is longer; a chat session that would outgrow it ends.
  uint32_t max_context = 4096;
  uint32_t vocab = 128256;  // tokens are drawn from [0, vocab)
};

// Emits the next prompt of one synthetic client. One thread at a time.
class PromptStream {
 public:
  virtual ~PromptStream() = default;
  // Replaces *tokens with the next prompt (at least 1 token, at most
  // max_context).
  virtual void Next(std::vector<uint32_t>* tokens) = 0;
};

// The shared, immutable part of a workload (system prompts, corpus).
class Workload {
 public:
  virtual ~Workload() = default;
  virtual std::unique_ptr<PromptStream> NewStream(uint32_t index) const = 0;
  // One line describing the generator's parameters, for reports.
  virtual std::string Describe() const = 0;
};

// nullptr for an unknown kind.
std::unique_ptr<Workload> MakeWorkload(const WorkloadConfig& config);

// The kinds MakeWorkload knows, in help order.
const std::vector<std::string>& WorkloadKinds();

}  // namespace kvc::cli

#endif  // KVC_CLI_BENCH_WORKLOAD_H_
