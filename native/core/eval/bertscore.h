// BERTScore (Zhang et al. 2020) as the bert-score package computes it (bert_score/utils.py, greedy_cos_idf):
// each token's hidden state at one layer of a text encoder, cosine similarity between the candidate's and the
// reference's tokens, each candidate token matched to its most similar reference token (precision) and each
// reference token to its most similar candidate token (recall), weighted by per-token idf weights that the caller
// gives (lib/metrics/bertscore.ts: 1, or bert-score's idf, with <s> and </s> at 0). Rescaling is the caller's.
#pragma once

#include <cstdint>
#include <vector>

#include "../models/text_encoder.h"

namespace dpsm::core {

struct BertScoreInput {
  // Token ids of each text, specials included, and one weight per id.
  std::vector<std::vector<int64_t>> candidates, references;
  std::vector<std::vector<float>> candidate_idf, reference_idf;
  int64_t layer = 0, batch_size = 64, pad_id = 1;
};

struct BertScores {
  std::vector<double> precision, recall, f1;
};

// Pairs are encoded batch_size at a time, in order of length (less padding), on the encoder's device. A text of
// only its two special tokens scores 0 (bert-score's warning case); an F of 0/0 is 0 as there.
BertScores bertscore(TextEncoder& encoder, const BertScoreInput& in);

}  // namespace dpsm::core
