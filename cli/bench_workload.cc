#include "bench_workload.h"

#include <algorithm>
#include <cmath>

namespace kvc::cli {
namespace {

uint64_t SplitMix64(uint64_t* x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

// Appends `n` random tokens.
void AppendRandom(Rng& rng, uint32_t vocab, size_t n, std::vector<uint32_t>* out) {
  for (size_t i = 0; i < n; ++i) out->push_back(static_cast<uint32_t>(rng.Next() % vocab));
}

std::vector<uint32_t> RandomTokens(Rng& rng, uint32_t vocab, size_t n) {
  std::vector<uint32_t> v;
  v.reserve(n);
  AppendRandom(rng, vocab, n, &v);
  return v;
}

// Keys of the sub-streams drawn from one seed.
constexpr uint64_t kSharedStream = 0x5348415245440000ull;  // "SHARED"
constexpr uint64_t kClientStream = 0x434c49454e540000ull;  // "CLIENT"

// --- chat -------------------------------------------------------------------

struct ChatParams {
  static constexpr size_t kSystemPrompts = 8;
  static constexpr double kSystemZipf = 1.0;
  static constexpr uint32_t kSystemMin = 256, kSystemMax = 1024;
  static constexpr uint32_t kUserMin = 16, kUserMax = 192;
  static constexpr uint32_t kAnswerMin = 32, kAnswerMax = 384;
  static constexpr uint32_t kTurnsMin = 1, kTurnsMax = 8;
  static constexpr size_t kSessionsPerClient = 8;  // interleaved per stream
};

class ChatWorkload;

class ChatStream : public PromptStream {
 public:
  ChatStream(const ChatWorkload& w, uint32_t index);
  void Next(std::vector<uint32_t>* tokens) override;

 private:
  struct Session {
    std::vector<uint32_t> prompt;  // empty: start a new session
    uint32_t turns_left = 0;
  };
  void Start(Session* s);

  const ChatWorkload& w_;
  Rng rng_;
  std::vector<Session> sessions_;
};

class ChatWorkload : public Workload {
 public:
  explicit ChatWorkload(const WorkloadConfig& c)
      : config_(c), zipf_(ChatParams::kSystemPrompts, ChatParams::kSystemZipf) {
    Rng rng(c.seed ^ kSharedStream);
    for (size_t i = 0; i < ChatParams::kSystemPrompts; ++i)
      system_.push_back(RandomTokens(
          rng, c.vocab, rng.Between(ChatParams::kSystemMin, ChatParams::kSystemMax)));
  }
  std::unique_ptr<PromptStream> NewStream(uint32_t index) const override {
    return std::make_unique<ChatStream>(*this, index);
  }
  std::string Describe() const override {
    return "chat: 8 system prompts (256-1024 tokens, Zipf 1.0), 8 interleaved sessions per "
           "thread, 1-8 turns, user 16-192 tokens, answer 32-384 tokens";
  }

  const WorkloadConfig& config() const { return config_; }
  const ZipfSampler& zipf() const { return zipf_; }
  const std::vector<uint32_t>& system(size_t i) const { return system_[i]; }

 private:
  WorkloadConfig config_;
  ZipfSampler zipf_;
  std::vector<std::vector<uint32_t>> system_;
};

ChatStream::ChatStream(const ChatWorkload& w, uint32_t index)
    : w_(w), rng_(w.config().seed ^ kClientStream ^ (uint64_t{index} << 1)),
      sessions_(ChatParams::kSessionsPerClient) {}

void ChatStream::Start(Session* s) {
  const auto& sys = w_.system(w_.zipf().Sample(rng_));
  s->prompt.assign(sys.begin(), sys.end());
  AppendRandom(rng_, w_.config().vocab, rng_.Between(ChatParams::kUserMin, ChatParams::kUserMax),
               &s->prompt);
  s->turns_left =
      static_cast<uint32_t>(rng_.Between(ChatParams::kTurnsMin, ChatParams::kTurnsMax));
}

void ChatStream::Next(std::vector<uint32_t>* tokens) {
  Session& s = sessions_[rng_.Between(0, sessions_.size() - 1)];
  const size_t max = w_.config().max_context;
  if (s.turns_left == 0) {
    Start(&s);
  } else {
    AppendRandom(rng_, w_.config().vocab,
                 rng_.Between(ChatParams::kAnswerMin, ChatParams::kAnswerMax), &s.prompt);
    AppendRandom(rng_, w_.config().vocab,
                 rng_.Between(ChatParams::kUserMin, ChatParams::kUserMax), &s.prompt);
    if (s.prompt.size() > max) Start(&s);  // the conversation outgrew the context
  }
  --s.turns_left;
  if (s.prompt.size() > max) s.prompt.resize(max);
  tokens->assign(s.prompt.begin(), s.prompt.end());
}

// --- rag --------------------------------------------------------------------

struct RagParams {
  static constexpr size_t kDocuments = 1000;
  static constexpr double kDocZipf = 1.0;
  static constexpr uint32_t kDocMin = 256, kDocMax = 1536;
  static constexpr uint32_t kInstructionMin = 64, kInstructionMax = 128;
  static constexpr uint32_t kDocsMin = 1, kDocsMax = 3;
  static constexpr uint32_t kQuestionMin = 16, kQuestionMax = 64;
};

class RagWorkload;

class RagStream : public PromptStream {
 public:
  RagStream(const RagWorkload& w, uint32_t index);
  void Next(std::vector<uint32_t>* tokens) override;

 private:
  const RagWorkload& w_;
  Rng rng_;
};

class RagWorkload : public Workload {
 public:
  explicit RagWorkload(const WorkloadConfig& c)
      : config_(c), zipf_(RagParams::kDocuments, RagParams::kDocZipf) {
    Rng rng(c.seed ^ kSharedStream);
    instruction_ = RandomTokens(
        rng, c.vocab, rng.Between(RagParams::kInstructionMin, RagParams::kInstructionMax));
    for (size_t i = 0; i < RagParams::kDocuments; ++i)
      docs_.push_back(
          RandomTokens(rng, c.vocab, rng.Between(RagParams::kDocMin, RagParams::kDocMax)));
  }
  std::unique_ptr<PromptStream> NewStream(uint32_t index) const override {
    return std::make_unique<RagStream>(*this, index);
  }
  std::string Describe() const override {
    return "rag: 1 instruction (64-128 tokens), 1-3 documents per query from a corpus of 1000 "
           "(256-1536 tokens, Zipf 1.0), question 16-64 tokens";
  }

  const WorkloadConfig& config() const { return config_; }
  const ZipfSampler& zipf() const { return zipf_; }
  const std::vector<uint32_t>& instruction() const { return instruction_; }
  const std::vector<uint32_t>& doc(size_t i) const { return docs_[i]; }

 private:
  WorkloadConfig config_;
  ZipfSampler zipf_;
  std::vector<uint32_t> instruction_;
  std::vector<std::vector<uint32_t>> docs_;
};

RagStream::RagStream(const RagWorkload& w, uint32_t index)
    : w_(w), rng_(w.config().seed ^ kClientStream ^ (uint64_t{index} << 1)) {}

void RagStream::Next(std::vector<uint32_t>* tokens) {
  const size_t max = w_.config().max_context;
  tokens->assign(w_.instruction().begin(), w_.instruction().end());
  const uint32_t n_docs =
      static_cast<uint32_t>(rng_.Between(RagParams::kDocsMin, RagParams::kDocsMax));
  size_t chosen[RagParams::kDocsMax];
  for (uint32_t i = 0; i < n_docs; ++i) {
    size_t d = w_.zipf().Sample(rng_);
    for (int tries = 0; tries < 8 && std::find(chosen, chosen + i, d) != chosen + i; ++tries)
      d = w_.zipf().Sample(rng_);  // prefer distinct documents
    chosen[i] = d;
    const auto& doc = w_.doc(d);
    if (tokens->size() + doc.size() > max) break;
    tokens->insert(tokens->end(), doc.begin(), doc.end());
  }
  AppendRandom(rng_, w_.config().vocab,
               rng_.Between(RagParams::kQuestionMin, RagParams::kQuestionMax), tokens);
  if (tokens->size() > max) tokens->resize(max);
}

// --- random -----------------------------------------------------------------

class RandomStream : public PromptStream {
 public:
  RandomStream(const WorkloadConfig& c, uint32_t index)
      : c_(c), rng_(c.seed ^ kClientStream ^ (uint64_t{index} << 1)) {}
  void Next(std::vector<uint32_t>* tokens) override {
    tokens->clear();
    const size_t n = std::min<uint64_t>(rng_.Between(kMin, kMax), c_.max_context);
    AppendRandom(rng_, c_.vocab, n, tokens);
  }
  static constexpr uint32_t kMin = 256, kMax = 2048;

 private:
  WorkloadConfig c_;
  Rng rng_;
};

class RandomWorkload : public Workload {
 public:
  explicit RandomWorkload(const WorkloadConfig& c) : config_(c) {}
  std::unique_ptr<PromptStream> NewStream(uint32_t index) const override {
    return std::make_unique<RandomStream>(config_, index);
  }
  std::string Describe() const override {
    return "random: unrelated prompts of 256-2048 random tokens";
  }

 private:
  WorkloadConfig config_;
};

}  // namespace

Rng::Rng(uint64_t seed) {
  for (auto& s : s_) s = SplitMix64(&seed);
}

uint64_t Rng::Next() {
  const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = Rotl(s_[3], 45);
  return result;
}

uint64_t Rng::Between(uint64_t lo, uint64_t hi) {
  const uint64_t span = hi - lo + 1;
  return span == 0 ? Next() : lo + Next() % span;
}

double Rng::Unit() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

ZipfSampler::ZipfSampler(size_t n, double s) : cdf_(n) {
  double sum = 0;
  for (size_t k = 0; k < n; ++k) {
    sum += 1.0 / std::pow(static_cast<double>(k + 1), s);
    cdf_[k] = sum;
  }
  for (auto& c : cdf_) c /= sum;
}

size_t ZipfSampler::Sample(Rng& rng) const {
  const double u = rng.Unit();
  const auto it = std::upper_bound(cdf_.begin(), cdf_.end(), u);
  return std::min<size_t>(static_cast<size_t>(it - cdf_.begin()), cdf_.size() - 1);
}

std::unique_ptr<Workload> MakeWorkload(const WorkloadConfig& config) {
  if (config.kind == "chat") return std::make_unique<ChatWorkload>(config);
  if (config.kind == "rag") return std::make_unique<RagWorkload>(config);
  if (config.kind == "random") return std::make_unique<RandomWorkload>(config);
  return nullptr;
}

const std::vector<std::string>& WorkloadKinds() {
  static const std::vector<std::string> kinds{"chat", "rag", "random"};
  return kinds;
}

}  // namespace kvc::cli
