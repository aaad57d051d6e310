// Checkpoints that resume a run exactly: weights, AdamW moments, RNG states and the loop's position, in
// <run_dir>/<which>/training_state.safetensors, beside the model in Hugging Face's layout. Every file is
// written atomically; the training state alone is enough to resume.
#pragma once

#include <string>

#include "../models/language_model.h"
#include "optim.h"

namespace dpsm::core {

// The loop's position and history.
struct TrainingState {
  int64_t step = 0, epoch = 0, cursor = 0, tokens_seen = 0, bad_evals = 0, best_step = -1;
  double best_nll = 0, elapsed_s = 0;
  bool has_best = false;
};

void save_checkpoint(const std::string& dir, LanguageModel& model, const AdamW& optim, const TrainingState& state,
                     const std::string& fingerprint);

// Restores run_dir/last when it holds a checkpoint; false when there is none. A checkpoint of another run
// (another fingerprint) is refused with an error naming run_dir.
bool load_checkpoint(const std::string& run_dir, AdamW& optim, TrainingState& state, const std::string& fingerprint,
                     const at::Device& device);

}  // namespace dpsm::core
