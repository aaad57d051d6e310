// Evaluation of a language model over a data set in one pass: the fused kernel's per-token statistics
// accumulated into metrics (eval/metrics.h), optionally at several temperatures at once; and the
// temperature that minimises NLL (post-hoc temperature scaling).
#pragma once

#include <functional>
#include <vector>

#include "../config.h"
#include "../data/batch.h"
#include "../models/language_model.h"
#include "metrics.h"

namespace dpsm::core {

struct EvalOptions {
  std::vector<double> temperatures;
  int64_t batch_size = 0;
  int64_t max_sequences = 0;  // 0: all
  bool bf16 = false;
  // Logits a chunk of tokens at a time from the model's linear head (loss/fused_linear_loss.h), never the
  // batch's N × V at once; every metric is per-token statistics, so none is lost. Off: the unfused head.
  bool fused_head = true;
};
// lib/'s evaluator document: { batchSize, maxSequences, bf16, temperatures }.
EvalOptions eval_options_from_json(const Json& j);

// One pass of `model` (put in eval mode, restored after) over `data`; one result per temperature.
std::vector<EvalMetrics> evaluate(LanguageModel& model, const Dataset& data, const EvalOptions& options);

struct TemperatureFit {
  double temperature = 1.0;
  std::vector<std::pair<double, double>> grid;  // (T, NLL)
};
// A log-spaced grid of `points` temperatures in [t_min, t_max] evaluated in one pass, refined by a parabola
// through the best grid point and its neighbours.
TemperatureFit fit_temperature(LanguageModel& model, const Dataset& data, EvalOptions options, double t_min,
                               double t_max, int points);

}  // namespace dpsm::core
