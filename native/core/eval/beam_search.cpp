#include "beam_search.h"

#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>
#include <limits>
#include <map>
#include <stdexcept>

namespace dpsm::core {

Seq2SeqGenerateOptions seq2seq_generate_options_from_json(const Json& j) {
  Seq2SeqGenerateOptions o;
  o.num_beams = field<int64_t>(j, "numBeams");
  o.max_length = field<int64_t>(j, "maxLength");
  o.min_length = field<int64_t>(j, "minLength");
  o.length_penalty = field<double>(j, "lengthPenalty");
  o.no_repeat_ngram_size = field<int64_t>(j, "noRepeatNgramSize");
  const Json& es = field<Json>(j, "earlyStopping");
  if (es.is_boolean())
    o.early_stopping =
        es.get<bool>() ? Seq2SeqGenerateOptions::EarlyStopping::kTrue : Seq2SeqGenerateOptions::EarlyStopping::kFalse;
  else if (es == "never")
    o.early_stopping = Seq2SeqGenerateOptions::EarlyStopping::kNever;
  else
    throw std::invalid_argument("config: field 'earlyStopping' must be true, false or \"never\"");
  o.decoder_start_token_id = field<int64_t>(j, "decoderStartTokenId");
  o.eos_token_id = field<int64_t>(j, "eosTokenId");
  o.pad_token_id = field<int64_t>(j, "padTokenId");
  o.forced_bos_token_id = j.contains("forcedBosTokenId") ? field<int64_t>(j, "forcedBosTokenId") : -1;
  o.forced_eos_token_id = j.contains("forcedEosTokenId") ? field<int64_t>(j, "forcedEosTokenId") : -1;
  if (o.num_beams < 1) throw std::invalid_argument("numBeams: expected at least 1");
  if (o.max_length < 2) throw std::invalid_argument("maxLength: expected at least 2 (the decoder start included)");
  if (o.min_length < 0 || o.min_length > o.max_length)
    throw std::invalid_argument("minLength: expected in [0, maxLength]");
  if (o.no_repeat_ngram_size < 0) throw std::invalid_argument("noRepeatNgramSize: expected at least 0");
  return o;
}

namespace {

using Sequences = std::vector<std::vector<int64_t>>;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// transformers' logits processors for these options, in its order, on scores [N, V] (CPU float) of the next
// token after each row of `seqs` (all of one length).
void process_scores(const Sequences& seqs, at::Tensor& scores, const Seq2SeqGenerateOptions& o) {
  const int64_t t = static_cast<int64_t>(seqs.front().size()), V = scores.size(1), n = o.no_repeat_ngram_size;
  auto s = scores.accessor<float, 2>();
  for (size_t r = 0; r < seqs.size(); ++r) {
    const std::vector<int64_t>& ids = seqs[r];
    // No n-gram twice: ban every token that followed an earlier occurrence of the last n - 1 tokens.
    if (n > 0 && t + 1 >= n) {
      for (int64_t i = 0; i + n <= t; ++i) {
        bool same = true;
        for (int64_t k = 0; k < n - 1 && same; ++k) same = ids[i + k] == ids[t - n + 1 + k];
        if (same) s[r][ids[i + n - 1]] = kNegInf;
      }
    }
    if (t < o.min_length) s[r][o.eos_token_id] = kNegInf;
    const auto force = [&](int64_t token) {
      for (int64_t v = 0; v < V; ++v) s[r][v] = kNegInf;
      s[r][token] = 0;
    };
    if (o.forced_bos_token_id >= 0 && t == 1) force(o.forced_bos_token_id);
    if (o.forced_eos_token_id >= 0 && t == o.max_length - 1) force(o.forced_eos_token_id);
  }
}

// Logits [N, V] (CPU float) of the token after each row of `seqs`, whose prefix `cache` holds but for the last.
at::Tensor next_logits(LanguageModel& model, const Sequences& seqs, LanguageModel::DecoderCache& cache,
                       const at::Device& device) {
  std::vector<int64_t> last;
  last.reserve(seqs.size());
  for (const auto& row : seqs) last.push_back(row.back());
  const at::Tensor ids = at::tensor(last, at::kLong).to(device);
  return model.logits(model.decode_next(ids, cache)).to(at::kFloat).cpu().contiguous();
}

// The decoder start, then up to and including the first EOS after it.
std::vector<int64_t> until_eos(const std::vector<int64_t>& row, int64_t eos) {
  for (size_t i = 1; i < row.size(); ++i)
    if (row[i] == eos) return {row.begin(), row.begin() + static_cast<std::ptrdiff_t>(i) + 1};
  return row;
}

Sequences greedy(LanguageModel& model, const at::Tensor& memory, const at::Tensor& mask,
                 const Seq2SeqGenerateOptions& o) {
  const int64_t B = memory.size(0);
  const auto cache = model.start_decoding(memory, mask);
  Sequences seqs(B, std::vector<int64_t>{o.decoder_start_token_id});
  std::vector<bool> unfinished(B, true);
  for (int64_t t = 1; t < o.max_length; ++t) {
    at::Tensor scores = next_logits(model, seqs, *cache, memory.device());
    process_scores(seqs, scores, o);
    const at::Tensor next = scores.argmax(1);
    bool any = false;
    for (int64_t b = 0; b < B; ++b) {
      // A finished row is padded, as transformers pads it, so every row keeps one length.
      const int64_t token = unfinished[b] ? next[b].item<int64_t>() : o.pad_token_id;
      seqs[b].push_back(token);
      if (token == o.eos_token_id) unfinished[b] = false;
      any = any || unfinished[b];
    }
    if (!any) break;
  }
  for (auto& row : seqs) row = until_eos(row, o.eos_token_id);
  return seqs;
}

// An example's best finished hypotheses (transformers' BeamHypotheses): at most num_beams, scored by their
// summed log-probabilities over generated_length ** length_penalty.
struct Hypotheses {
  struct Hyp {
    double score;
    std::vector<int64_t> tokens;  // EOS included when the hypothesis ended with one
  };
  std::vector<Hyp> beams;
  double worst = 1e9;
  bool done = false;

  void add(std::vector<int64_t> tokens, double sum_logprobs, int64_t generated_length,
           const Seq2SeqGenerateOptions& o) {
    const double score = sum_logprobs / std::pow(static_cast<double>(generated_length), o.length_penalty);
    if (static_cast<int64_t>(beams.size()) < o.num_beams || score > worst) {
      beams.push_back({score, std::move(tokens)});
      if (static_cast<int64_t>(beams.size()) > o.num_beams) {
        // Drop the worst; the next worst becomes the bar (ties: the earliest, as Python's sort of (score, index)).
        size_t lo = 0;
        for (size_t i = 1; i < beams.size(); ++i)
          if (beams[i].score < beams[lo].score) lo = i;
        beams.erase(beams.begin() + static_cast<std::ptrdiff_t>(lo));
        worst = beams.front().score;
        for (const Hyp& h : beams) worst = std::min(worst, h.score);
      } else {
        worst = std::min(score, worst);
      }
    }
  }

  // Whether no open beam can beat the worst kept hypothesis; cur_len counts the token being scored.
  bool is_done(double best_sum_logprobs, int64_t cur_len, const Seq2SeqGenerateOptions& o) const {
    using ES = Seq2SeqGenerateOptions::EarlyStopping;
    if (static_cast<int64_t>(beams.size()) < o.num_beams) return false;
    if (o.early_stopping == ES::kTrue) return true;
    const int64_t length = (o.early_stopping == ES::kNever && o.length_penalty > 0) ? o.max_length - 1 : cur_len - 1;
    return worst >= best_sum_logprobs / std::pow(static_cast<double>(length), o.length_penalty);
  }

  // The highest score; among equals the last in the list, as transformers' sorted(...).pop() picks it.
  const std::vector<int64_t>& best() const {
    size_t hi = 0;
    for (size_t i = 1; i < beams.size(); ++i)
      if (beams[i].score >= beams[hi].score) hi = i;
    return beams[hi].tokens;
  }
};

Sequences beam_search(LanguageModel& model, const at::Tensor& memory, const at::Tensor& mask,
                      const Seq2SeqGenerateOptions& o) {
  const int64_t K = o.num_beams, N = memory.size(0), B = N / K;
  const auto cache = model.start_decoding(memory, mask);
  Sequences seqs(N, std::vector<int64_t>{o.decoder_start_token_id});
  // Only the first beam of each example is live at the start, so the first step does not pick one token K times.
  at::Tensor beam_scores = at::zeros({B, K}, at::kFloat);
  beam_scores.slice(1, 1).fill_(-1e9);
  beam_scores = beam_scores.view({N});
  std::vector<Hypotheses> hyps(B);
  for (int64_t t = 1; t < o.max_length; ++t) {
    at::Tensor scores = at::log_softmax(next_logits(model, seqs, *cache, memory.device()), 1);
    process_scores(seqs, scores, o);
    const int64_t V = scores.size(1);
    scores = (scores + beam_scores.unsqueeze(1)).view({B, K * V});
    // Twice the beams: enough that K candidates remain after every EOS among them is set aside.
    const auto [top_scores, top_ids] = scores.topk(2 * K, 1, true, true);
    auto ts = top_scores.accessor<float, 2>();
    auto ti = top_ids.accessor<int64_t, 2>();
    const int64_t cur_len = t + 1;
    Sequences next(N);
    std::vector<int64_t> origin(N);  // the row each new row continues
    at::Tensor next_scores = at::zeros({N}, at::kFloat);
    auto ns = next_scores.accessor<float, 1>();
    for (int64_t b = 0; b < B; ++b) {
      if (hyps[b].done) {
        // A finished example's rows carry padding until the whole batch stops.
        for (int64_t k = 0; k < K; ++k) {
          origin[b * K + k] = b * K;
          next[b * K + k] = seqs[b * K];
          next[b * K + k].push_back(o.pad_token_id);
        }
        continue;
      }
      int64_t k = 0;
      for (int64_t rank = 0; rank < 2 * K && k < K; ++rank) {
        const int64_t row = b * K + ti[b][rank] / V, token = ti[b][rank] % V;
        if (token == o.eos_token_id) {
          if (rank >= K) continue;  // an EOS outside the top K candidates is not a hypothesis
          std::vector<int64_t> tokens = seqs[row];
          tokens.push_back(token);
          hyps[b].add(std::move(tokens), ts[b][rank], cur_len - 1, o);
        } else {
          origin[b * K + k] = row;
          next[b * K + k] = seqs[row];
          next[b * K + k].push_back(token);
          ns[b * K + k] = ts[b][rank];
          ++k;
        }
      }
      if (k < K) throw std::logic_error("beam search: fewer than num_beams candidates that are not EOS");
      hyps[b].done = hyps[b].is_done(ts[b][0], cur_len, o);
    }
    seqs = std::move(next);
    cache->select_rows(at::tensor(origin, at::kLong).to(memory.device()));
    beam_scores = next_scores;
    bool all_done = true;
    for (const Hypotheses& h : hyps) all_done = all_done && h.done;
    if (all_done) break;
  }
  Sequences out(B);
  for (int64_t b = 0; b < B; ++b) {
    if (!hyps[b].done) {
      auto bs = beam_scores.accessor<float, 1>();
      for (int64_t k = 0; k < K; ++k)
        hyps[b].add(seqs[b * K + k], bs[b * K + k], static_cast<int64_t>(seqs[b * K + k].size()) - 1, o);
    }
    out[b] = hyps[b].best();
  }
  return out;
}

}  // namespace

Sequences generate_seq2seq(LanguageModel& model, const at::Tensor& input_ids, const at::Tensor& attention_mask,
                           const Seq2SeqGenerateOptions& o) {
  if (!model.is_encoder_decoder()) throw std::invalid_argument("generate_seq2seq: the model is not an encoder-decoder");
  const int64_t V = model.vocab_size();
  for (int64_t id :
       {o.decoder_start_token_id, o.eos_token_id, o.pad_token_id, o.forced_bos_token_id, o.forced_eos_token_id})
    if (id >= V) throw std::invalid_argument("token ids: expected below the vocabulary size");
  const bool was_training = model.is_training();
  model.eval();
  Sequences out;
  {
    at::NoGradGuard no_grad;
    const at::Device device = model.device();
    const at::Tensor ids = input_ids.to(device), mask = attention_mask.to(device);
    const at::Tensor memory = model.encode(ids, mask);
    if (o.num_beams == 1) {
      out = greedy(model, memory, mask, o);
    } else {
      out = beam_search(model, memory.repeat_interleave(o.num_beams, 0), mask.repeat_interleave(o.num_beams, 0), o);
    }
  }
  if (was_training) model.train();
  return out;
}

}  // namespace dpsm::core
