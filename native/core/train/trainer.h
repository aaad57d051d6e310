// The training loop, all of it in C++ on one thread: sampled batches → model → objective (the fused DPSM
// kernel, or a baseline) → backward → clip → AdamW → LR schedule; evaluation, early stopping and
// checkpoints. What each of those does lives in its own file; this one only orders them. Progress leaves as
// small records through a callback.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../config.h"
#include "../data/batch.h"
#include "../data/sampler.h"
#include "../eval/evaluator.h"
#include "../loss/objectives.h"
#include "../models/language_model.h"
#include "../platform.h"
#include "checkpoint.h"
#include "data_parallel.h"
#include "optim.h"

namespace dpsm::core {

struct TrainConfig {
  uint64_t seed = 0;       // model initialisation and dropout
  uint64_t data_seed = 0;  // batch order and label noise: fixed across variations
  int64_t batch_size = 0;  // sequences per micro-batch
  int64_t grad_accum = 0;  // micro-batches per optimiser step
  int64_t max_steps = 0;
  int64_t eval_every = 0;
  int64_t eval_max_sequences = 0;  // 0: the whole validation set
  int64_t patience = 0;            // evaluations without improvement before stopping; 0: never
  std::string run_dir;             // checkpoints go to run_dir/{last,best}; empty: none
  bool bf16 = false;               // bf16 autocast (CUDA or CPU); master weights stay fp32
  OptimConfig optim;
  Objective objective;
  LabelNoiseConfig label_noise;
  double summary_swap = 0;        // encoder–decoders: the share of rows trained on another row's reference
  DistributedConfig distributed;  // batch_size and grad_accum are per rank; rank 0 evaluates and checkpoints
  // The LM head and loss fused (loss/fused_linear_loss.h), never holding the N × V logits, where the objective
  // allows it and the model's head is a linear map; false: logits, then the loss. (lib/trainer.ts refuses
  // fusedHead: true for an objective that needs the logits; here true and "auto" are the same.)
  bool fused_head = true;
  // The update-to-weight ratio is measured on steps 1, 1 + k, 1 + 2k, ... (k = this; 0: never): it costs a copy
  // and two norms of the weights (28 bytes per parameter) on those steps only.
  int64_t update_ratio_every = 1;
  Json document;  // the document all of the above came from
};
// lib/'s trainer document (lib/schemas/trainer.ts states every field and its default).
TrainConfig train_config_from_json(const Json& j);

struct ProgressRecord {
  enum class Type { Step, Eval, Checkpoint, Done, Warning } type = Type::Step;
  int64_t step = 0;
  double loss = 0, alpha = 0, lr = 0, grad_norm = 0;
  // Step diagnostics: the mean CE and Brier scores of the step's tokens (whatever the objective trained) and
  // the update-to-weight ratio ‖Δθ‖/‖θ‖.
  double ce = 0, brier = 0, update_ratio = 0;
  bool has_update_ratio = false;  // whether this step measured update_ratio (TrainConfig::update_ratio_every)
  double step_ms = 0, tokens_per_s = 0, elapsed_s = 0;
  int64_t tokens_seen = 0;
  int64_t peak_memory_bytes = -1;
  bool noisy = false;
  // Eval
  EvalMetrics eval;
  bool improved = false;
  // Checkpoint / Done / Warning
  std::string path, reason, message;
  int64_t best_step = -1;
  double best_nll = 0;
};

class Trainer {
 public:
  Trainer(std::shared_ptr<LanguageModel> model, TrainConfig config, std::shared_ptr<const Dataset> train,
          std::shared_ptr<const Dataset> valid);

  // Trains until max_steps, early stopping or `abort` (checked at each step boundary; the state is then
  // checkpointed). Resumes from the newest valid checkpoint of the same run in run_dir (checkpoint.h; a
  // fallback is reported as a Warning record) after removing what a killed run left half-written. `emit`
  // runs on the calling thread.
  void fit(const std::function<void(const ProgressRecord&)>& emit, const std::atomic<bool>& abort);

  // The run's identity: the canonical dump of the model's config, the trainer document (less the settings
  // that do not change the curve: where the run and the ranks live) and the data's shape. A checkpoint of
  // another run is refused; every rank of a run has the same identity.
  std::string fingerprint() const;

  // The efficiency audit: the wall-clock milliseconds of one full training step (forward, loss, backward,
  // clipping, AdamW, the step's synchronisations) under each objective, on one fixed step of the trainer's
  // shape (grad_accum micro-batches of batch_size sequences, made on the device beforehand), interleaved:
  // `warmup_rounds` untimed rounds, then `rounds` rows of one time per objective. Changes the weights: for a
  // trainer that is not fitted afterwards. `first_round` continues an audit run in parts (the caller reports
  // progress between them): the rounds already run, so the objectives' rotation and the step count go on as in
  // one call.
  std::vector<std::vector<double>> time_steps(const std::vector<Objective>& objectives, int64_t rounds,
                                              int64_t warmup_rounds, int64_t first_round = 0);

  // The loss and the gradients one batch gives under the run's objective, by parameter name: a step's own
  // forward and backward (fused head included when the step uses it), before clipping and the update, for
  // tests against a reference implementation. The weights are left unchanged and the gradients cleared.
  std::pair<double, std::vector<std::pair<std::string, at::Tensor>>> gradients(const Batch& b);

 private:
  bool evaluate_and_checkpoint(const std::function<void(const ProgressRecord&)>& emit, double elapsed_s);
  void checkpoint(const std::string& which, double elapsed_s);
  // Whether this objective's steps go through the fused LM head (TrainConfig::fused_head).
  bool fuses_head(const Objective& objective);
  // One micro-batch: forward, `objective`'s loss (a mean over the batch's targets) times `weight`, backward of
  // that / accumulation; adds the weighted loss to loss_sum and the [CE, Brier] sums to component_sum.
  void forward_backward(const Objective& objective, const Batch& b, double accumulation, at::Tensor& loss_sum,
                        at::Tensor& component_sum, double weight = 1.0);
  // Clipping, the AdamW update and clearing the gradients; returns the gradient norm before clipping (a
  // device scalar; undefined when clipping is off).
  at::Tensor update(double lr, int64_t step, bool measure_ratio);
  // Whether the 0-based optimiser step `step` measures the update-to-weight ratio.
  bool measures_ratio(int64_t step) const { return cfg_.update_ratio_every > 0 && step % cfg_.update_ratio_every == 0; }
  // A step's numbers in one float64 device tensor, read back in one copy: [loss sum, CE sum, Brier sum,
  // gradient norm (0 when clipping is off), ‖Δθ‖², ‖θ‖² (of the last step that measured them), the kernel's error
  // flag].
  at::Tensor step_numbers(const at::Tensor& loss_sum, const at::Tensor& component_sum,
                          const at::Tensor& grad_norm) const;
  // A step whose record waits for its numbers (fit reads them one step late).
  struct PendingStep {
    ProgressRecord record;  // what the host knows already
    int64_t tokens = 0;     // this rank's targets
    bool abort_asked = false;
    bool measured_ratio = false;
    platform::LaggedRead numbers;  // step_numbers
    std::optional<platform::DeviceMark> started, ended;
  };

  std::shared_ptr<LanguageModel> model_;
  TrainConfig cfg_;
  std::shared_ptr<const Dataset> train_, valid_;
  at::Device device_;
  AdamW optim_;
  DataParallel dp_;
  BatchSampler sampler_;
  LabelNoise noise_;
  at::Tensor loss_step_;   // the fused kernel's step counter, on the model's device
  at::Tensor error_flag_;  // set by the kernel on an out-of-range target; read with the step's numbers
  TrainingState state_;
};

}  // namespace dpsm::core
