// The fused DPSM loss on libtorch tensors: device dispatch, the autograd op models use, and the plain
// composite formulation (the seed's) that tests and benchmarks hold it against.
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "../../kernels/dpsm_math.h"

namespace dpsm::core {

enum class Reduction : int32_t { Mean = 0, Sum = 1, None = 2 };

struct LossOptions {
  LossSpec spec;
  int64_t ignore_index = -100;
  Reduction reduction = Reduction::Mean;
};

struct FusedRequest {
  bool grad = true;           // write d(loss)/d(logits)
  bool grad_inplace = false;  // ... into the logits' own storage
  bool stats = false;         // per-token statistics [N, kStatCount]
  at::Tensor grad_into;       // when defined: the gradient's destination (logits' shape and dtype, rows of unit stride)
  // When defined (an int32 scalar on the logits' device): the kernel sets it to 1 on a target outside [0, V)
  // that is not ignored, and leaves it as it is otherwise, so one flag can collect a whole training step.
  at::Tensor error_flag;
};

struct FusedOutputs {
  at::Tensor loss;        // float32: a scalar (mean, sum) or one value per token (none)
  at::Tensor grad;        // logits' shape and dtype; undefined unless requested
  at::Tensor stats;       // float32 [N, kStatCount]; undefined unless requested
  at::Tensor alpha;       // float32 scalar: the α the kernel read off the step
  at::Tensor count;       // int64 scalar: tokens not ignored
  at::Tensor error_flag;  // int32 scalar: 1 if some target was out of range (the CPU throws before that)
};

// logits [..., V] (fp32/bf16/fp16, unit stride along V), targets [...] (any integer dtype), step: an int64
// scalar on the logits' device, read by the kernel and never changed by it.
FusedOutputs fused_loss(const at::Tensor& logits, const at::Tensor& targets, const at::Tensor& step,
                        const LossOptions& options, const FusedRequest& request);

// The same loss as a differentiable op. The gradient is produced in the forward pass (the row is hot
// there) and scaled by the incoming gradient in backward. With inplace_grad the gradient overwrites the
// logits' storage: only for logits that nothing else saves for its backward (an LM head's output). With
// `stats` the same pass also writes the per-token statistics there (FusedOutputs::stats).
at::Tensor dpsm_loss(const at::Tensor& logits, const at::Tensor& targets, const at::Tensor& step,
                     const LossOptions& options, bool inplace_grad = false, const at::Tensor& error_flag = {},
                     at::Tensor* stats = nullptr);

// On CUDA an out-of-range target is only flagged (checking on the host would cost a synchronisation per
// call): callers read the flag where they synchronise anyway and get the CPU's error through this.
void throw_if_target_flagged(const at::Tensor& error_flag, int64_t vocab, int64_t ignore_index);

// The seed's formulation on plain ops (log_softmax, exp, nll, one_hot, squared error, sum), extended with
// ignore_index, the reductions, the spherical score and score smoothing ε (ce, brier, dpsm): with ε > 0 the scores
// are taken against the dense smoothed target q = (1 − ε)·onehot(y) + ε/V — CE −Σ_k q_k log p_k, Brier
// E_{j~q} ‖p − e_j‖² = ‖p − q‖² + 1 − ‖q‖² — none of the kernel's closed forms. Differentiable; computes in the
// logits' dtype.
at::Tensor composite_loss(const at::Tensor& logits, const at::Tensor& targets, double alpha, Kind kind,
                          int64_t ignore_index, Reduction reduction, double smoothing = 0.0);

// Name of the CPU vector ISA in use.
const char* cpu_isa();

}  // namespace dpsm::core
