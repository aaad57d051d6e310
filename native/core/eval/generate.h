// Text continuation for any causal language model: greedy, or seeded top-k sampling.
#pragma once

#include <cstdint>
#include <vector>

#include "../models/language_model.h"

namespace dpsm::core {

struct GenerateOptions {
  int64_t max_new_tokens = 0;
  int64_t top_k = 1;  // 1: greedy
  double temperature = 1.0;
  uint64_t seed = 0;
};
GenerateOptions generate_options_from_json(const Json& j);

// Continues `prompt` (non-empty, ids in range: checked by the caller) by max_new_tokens tokens: greedy when
// top_k == 1, else top-k sampling at `temperature` from a generator seeded with `seed` (the same text every
// run). The context is cropped to the model's positions.
std::vector<int64_t> generate(LanguageModel& model, const std::vector<int64_t>& prompt, const GenerateOptions& o);

}  // namespace dpsm::core
