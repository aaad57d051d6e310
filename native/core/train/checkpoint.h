// Checkpoints that resume a run exactly: weights, AdamW moments, RNG states and the loop's position, in
// <run_dir>/<which>/training_state.safetensors, beside the model in Hugging Face's layout and a manifest.json
// (format, step, every file's name, size and sha256). A checkpoint folder is written whole into a temporary
// folder, its manifest last, then swapped in: <which>/ is the old checkpoint or the new one, never a mix. A
// resume trusts nothing in it: the manifest (sizes, sha256), every metadata value, every tensor's shape and
// the RNG states are checked before anything is restored.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "../models/language_model.h"
#include "optim.h"

namespace dpsm::core {

// The loop's position and history.
struct TrainingState {
  int64_t step = 0, epoch = 0, cursor = 0, tokens_seen = 0, bad_evals = 0, best_step = -1;
  double best_nll = 0, elapsed_s = 0;
  bool has_best = false;
};

// Writes run_dir/which (e.g. "last", "best") as a whole: a temporary folder run_dir/which.tmp-*, its
// manifest written last, then swapped with the old folder in one rename.
void save_checkpoint(const std::string& run_dir, const std::string& which, LanguageModel& model, const AdamW& optim,
                     const TrainingState& state, const std::string& fingerprint);

// What a run's checkpoint must agree with.
struct ResumeLimits {
  int64_t max_steps = 0;
  int64_t micro_batches_per_step = 1;
  // The sampler's (epoch, cursor) after that many micro-batches.
  std::function<std::pair<int64_t, int64_t>(int64_t)> position_after;
};

struct ResumeResult {
  bool resumed = false;
  std::string from;                   // the folder resumed from
  std::vector<std::string> warnings;  // a fallback, a damaged best/: for the run log and the user
  // The resumed checkpoint is the run's best, but best/ does not hold it: a kill fell between the two writes of
  // an improved evaluation (last/ is written first). The caller writes best/ again from the restored state.
  bool best_behind = false;
};

// Restores the newest valid checkpoint of run_dir (last/, else best/; both are full checkpoints), after
// checking it whole. A checkpoint of another run (another fingerprint) is refused with an error naming
// run_dir. A damaged last/ falls back to a valid best/ with a warning; when checkpoints exist but none is
// valid, the run is refused (never restarted from step 0 over them) with the reasons and how to proceed.
// Nothing is restored from a checkpoint that fails a check.
ResumeResult load_checkpoint(const std::string& run_dir, AdamW& optim, TrainingState& state,
                             const std::string& fingerprint, const at::Device& device, const ResumeLimits& limits);

// Removes what a killed run left half-written in run_dir, run_dir/last and run_dir/best (names holding
// ".tmp-": temporary files and folders). Returns the paths removed.
std::vector<std::string> remove_stale_temporaries(const std::string& run_dir);

// SHA-256 of a file, lowercase hex (the manifest's checksum).
std::string sha256_file(const std::string& path);

}  // namespace dpsm::core
