// The language-model training loop, all of it in C++ on one thread: seeded batches → GPT-2 → loss (the
// fused DPSM kernel, or a baseline) → backward → clip → AdamW → LR schedule; evaluation, early stopping
// and atomic, exactly-resumable checkpoints. Progress leaves as small records through a callback.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "evaluator.h"
#include "gpt2.h"
#include "loss.h"

namespace dpsm::core {

struct LossChoice {
  std::string kind = "ce";  // ce, brier, spherical, dpsm (fused); label_smoothing, focal (baselines)
  LossOptions fused;        // the fused kinds' spec
  double smoothing = 0.1;   // label_smoothing
  double focal_gamma = 2.0; // focal
};

struct TrainConfig {
  uint64_t seed = 0;       // model initialisation and dropout
  uint64_t data_seed = 0;  // batch order and label noise: keep it fixed across variations
  int64_t batch_size = 8;  // sequences per micro-batch
  int64_t grad_accum = 1;  // micro-batches per optimiser step
  int64_t max_steps = 100;
  int64_t warmup_steps = 10;  // linear LR warm-up, then cosine decay to min_lr_ratio·lr
  double lr = 6e-4, min_lr_ratio = 0.1, weight_decay = 0.1, beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double grad_clip = 1.0;  // ≤ 0: off
  int64_t eval_every = 50;
  int64_t eval_max_sequences = 0;  // 0: the whole validation set
  int64_t patience = 0;            // evaluations without improvement before stopping; 0: never
  std::string run_dir;             // checkpoints go to run_dir/{last,best}; empty: none
  bool bf16 = false;               // bf16 autocast (CUDA or CPU); master weights stay fp32
  LossChoice loss;
  double noise_step_fraction = 0;   // label noise: share of optimiser steps whose batch is corrupted
  double noise_token_fraction = 0;  // ... and the share of its targets replaced by random tokens
};

struct ProgressRecord {
  enum class Type { Step, Eval, Checkpoint, Done } type = Type::Step;
  int64_t step = 0;
  double loss = 0, alpha = 0, lr = 0, grad_norm = 0;
  double step_ms = 0, tokens_per_s = 0, elapsed_s = 0;
  int64_t tokens_seen = 0;
  int64_t peak_memory_bytes = -1;
  bool noisy = false;
  // Eval
  EvalResult eval;
  bool improved = false;
  // Checkpoint / Done
  std::string path, reason;
  int64_t best_step = -1;
  double best_nll = 0;
};

class Trainer {
 public:
  Trainer(GPT2 model, TrainConfig config, Sequences train, Sequences valid);

  // Trains until max_steps, early stopping or `abort` (checked at each step boundary; the state is then
  // checkpointed). Resumes from run_dir/last when it holds a checkpoint of the same run. `emit` runs on
  // the calling thread.
  void fit(const std::function<void(const ProgressRecord&)>& emit, const std::atomic<bool>& abort);

  // The run's identity: every setting that changes the loss curve. A checkpoint of another run is refused.
  std::string fingerprint() const;

 private:
  at::Tensor next_batch_rows();
  at::Tensor compute_loss(const at::Tensor& logits, const at::Tensor& targets);
  void corrupt_targets(at::Tensor& targets);
  double lr_at(int64_t step) const;
  void adamw_step(double lr);
  void save_checkpoint(const std::string& which, double elapsed_s);
  bool try_resume();

  GPT2 model_;
  TrainConfig cfg_;
  Sequences train_, valid_;
  at::Device device_;
  std::vector<at::Tensor> params_, exp_avg_, exp_avg_sq_;
  std::vector<std::string> names_;
  std::vector<bool> decay_;
  at::Tensor loss_step_;  // the fused kernel's step counter, on the model's device
  // Position and history, all saved in checkpoints.
  int64_t step_ = 0, epoch_ = 0, cursor_ = 0, tokens_seen_ = 0, bad_evals_ = 0, best_step_ = -1;
  double best_nll_ = 0, elapsed_before_ = 0;
  bool has_best_ = false;
  at::Tensor perm_;
  int64_t perm_epoch_ = -1;
};

}  // namespace dpsm::core
