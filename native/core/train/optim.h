// The optimiser side of a step: the learning-rate schedule (linear warm-up, cosine decay to a floor), AdamW
// as torch.optim.AdamW computes it, and gradient-norm clipping.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "../config.h"

namespace dpsm::core {

struct OptimConfig {
  double lr = 0, min_lr_ratio = 0, weight_decay = 0, beta1 = 0, beta2 = 0, eps = 0;
  double grad_clip = 0;      // ≤ 0: off
  int64_t warmup_steps = 0;  // linear LR warm-up, then cosine decay to min_lr_ratio·lr at max_steps
  int64_t max_steps = 0;
};
// From lib/'s trainer document (lr, lrWarmupSteps, minLrRatio, weightDecay, betas, eps, gradClip, maxSteps).
OptimConfig optim_config_from_json(const Json& j);

double lr_at(const OptimConfig& c, int64_t step);

// The global L2 norm of the parameters' gradients, accumulated in double.
double gradient_norm(const std::vector<at::Tensor>& params);

// Clips the global L2 norm of the gradients to c.grad_clip (when > 0); returns the norm before clipping
// (0 when clipping is off).
double clip_gradients(const std::vector<at::Tensor>& params, const OptimConfig& c);

// AdamW (Loshchilov & Hutter): decoupled decay p ← p(1 − lr·wd) on matrices and embeddings (not biases or
// LayerNorms), bias-corrected moments. Written out so its state (two tensors per parameter, keyed by the
// parameter's name) is plain to checkpoint.
class AdamW {
 public:
  AdamW(std::vector<std::string> names, std::vector<at::Tensor> params, const OptimConfig& c);
  // One update at learning rate `lr`; `step` counts updates done before this one.
  void step(double lr, int64_t step);
  // ‖θ_after − θ_before‖ / ‖θ_before‖ of the last step() over all parameters, accumulated in double (a
  // synchronisation on CUDA; read it where the step synchronises anyway).
  double last_update_ratio() const;
  void zero_grad();

  const std::vector<std::string> names;
  const std::vector<at::Tensor> params;
  std::vector<at::Tensor> exp_avg, exp_avg_sq;

 private:
  OptimConfig c_;
  std::vector<bool> decay_;
  at::Tensor update_sq_, weight_sq_;  // float64 scalars of the last step
};

}  // namespace dpsm::core
