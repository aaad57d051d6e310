// The optimiser side of a step: the learning-rate schedule (linear warm-up, cosine decay to a floor), AdamW
// as torch.optim.AdamW computes it, and gradient-norm clipping; none of it waits for the device.
#pragma once

#include <ATen/ATen.h>

#include <cmath>
#include <string>
#include <vector>

#include "../config.h"
#include "../platform.h"

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

// How a step's reductions over all parameters (the gradient norm, the update-to-weight ratio) are computed:
// - MultiTensor: libtorch's multi-tensor (_foreach_*) ops, a constant number of calls whatever the number of
//   parameters (on CUDA, a few launches instead of several per parameter); fp32 norms per tensor, summed in
//   double. The default off the CPU.
// - Host: one pass over the raw weights on the CPU, squares summed in double (no ATen op at all). The default on
//   the CPU: libtorch's fp32 norm of a whole GPT-2 embedding gradient (38.6 M floats) is off by 2.7e-3 relative,
//   its float64 norm copies to double first (440 ms against 22 ms for fp32, libtorch 1.13 and 2.15 alike;
//   measured on this 2-core machine), where this pass is exact to ~1e-13 and as fast as the fp32 norm.
// - PerTensor: several ATen calls per parameter (what a step did before the multi-tensor ops): kept only so the
//   op-list guard (test/step-ops.test.ts) and the roofline benchmark (bench/step-roofline.ts) can show the
//   difference; never a default.
// DPSM_STEP_REDUCTIONS=multi-tensor|host|per-tensor picks one for every device (read at each call).
enum class Reductions { MultiTensor, Host, PerTensor };
Reductions reductions_for(const at::Device& device);

// The global L2 norm of the parameters' gradients, accumulated in double: a float64 scalar on their device
// (no synchronisation: the step reads it later, with the step's other numbers).
at::Tensor gradient_norm(const std::vector<at::Tensor>& params);

// The factor min(1, c.grad_clip / (norm + 1e-6)) that clips the global norm `norm` (gradient_norm's) to
// c.grad_clip, on norm's device; undefined when clipping is off (c.grad_clip <= 0).
at::Tensor clip_coefficient(const at::Tensor& norm, const OptimConfig& c);

// AdamW (Loshchilov & Hutter) as torch.optim.AdamW computes it: decoupled decay p ← p(1 − lr·wd) on matrices
// and embeddings (not biases or LayerNorms), bias-corrected moments. Where libtorch has it (platform.h's
// kFusedAdamW: 2.4 and later) one fused kernel call per group of parameters updates them in one pass; on 1.13
// the same arithmetic runs tensor by tensor. Its state (two tensors per parameter, keyed by the parameter's
// name) is plain to checkpoint.
class AdamW {
 public:
  // `group_elements`: the most weights copied at once for the update ratio (more where one parameter is larger;
  // tests make it small to split a few tensors into several groups); 0: 2^24 on the CPU, 2^28 (1 GiB of fp32)
  // elsewhere, where each group costs a few launches.
  AdamW(std::vector<std::string> names, std::vector<at::Tensor> params, const OptimConfig& c,
        int64_t group_elements = 0);
  // One update at learning rate `lr`; `step` counts updates done before this one. Each gradient is first
  // multiplied by `clip` when it is defined (clip_coefficient's). With `measure_ratio`, update_norms() then holds
  // this update's norms (a copy of the weights and two norms: 28 bytes per parameter); without, it keeps the
  // last measured ones. Queues work and returns: nothing is read back.
  void step(double lr, int64_t step, const at::Tensor& clip = at::Tensor(), bool measure_ratio = true);
  // The last measured step's [‖θ_after − θ_before‖², ‖θ_before‖²] over all parameters, float64 on their device;
  // update_ratio turns them into ‖Δθ‖ / ‖θ‖.
  const at::Tensor& update_norms() const { return update_norms_; }
  static double update_ratio(double update_sq, double weight_sq) {
    return weight_sq > 0 ? std::sqrt(update_sq / weight_sq) : 0.0;
  }
  void zero_grad();
  // Whether step() runs libtorch's fused kernel (platform.h's kFusedAdamW).
  static bool fused() { return platform::kFusedAdamW; }

  const std::vector<std::string> names;
  const std::vector<at::Tensor> params;
  std::vector<at::Tensor> exp_avg, exp_avg_sq;

 private:
  OptimConfig c_;
  std::vector<bool> decay_;
  at::Tensor step_count_;    // the fused kernel's 1-based step, float32 on the parameters' device
  at::Tensor update_norms_;  // float64 [2] of the last step
  int64_t group_elements_;
  at::Tensor before_;  // Host and PerTensor: a copy of one group of weights before their update (kept: no allocation
                       // per step)
};

}  // namespace dpsm::core
