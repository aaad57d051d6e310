// Generation for encoder–decoders with Hugging Face transformers 4.40's semantics (greedy search when
// num_beams is 1, else beam search with its BeamSearchScorer), checked token for token against transformers'
// own `generate` by test/seq2seq-generate.test.ts. The encoder runs once per batch; every example's beams are
// decoded together, one token per step, the decoder keeping its prefix's keys and values.
#pragma once

#include <cstdint>
#include <vector>

#include "../models/language_model.h"

namespace dpsm::core {

// transformers' GenerationConfig fields, validated with their defaults by lib/models/bart.ts. Lengths count the
// decoder start token, as transformers counts them for encoder–decoders.
struct Seq2SeqGenerateOptions {
  int64_t num_beams = 1;
  int64_t max_length = 20;
  int64_t min_length = 0;
  double length_penalty = 1.0;
  int64_t no_repeat_ngram_size = 0;
  enum class EarlyStopping { kFalse, kTrue, kNever } early_stopping = EarlyStopping::kFalse;
  int64_t decoder_start_token_id = 0, eos_token_id = 0, pad_token_id = 0;
  int64_t forced_bos_token_id = -1, forced_eos_token_id = -1;  // -1: none
};
Seq2SeqGenerateOptions seq2seq_generate_options_from_json(const Json& j);

// One sequence per example of input_ids [B, S] (attention_mask [B, S]: 1 on real tokens), as transformers'
// `generate` returns it: the decoder start first, up to and including EOS (absent when max_length ended it),
// without the padding that aligns a batch's rows. Throws std::invalid_argument for a causal model.
std::vector<std::vector<int64_t>> generate_seq2seq(LanguageModel& model, const at::Tensor& input_ids,
                                                   const at::Tensor& attention_mask, const Seq2SeqGenerateOptions& o);

}  // namespace dpsm::core
