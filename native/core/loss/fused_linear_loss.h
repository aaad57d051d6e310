// The LM head and the fused loss as one op: hidden states × output embedding (+ bias) a chunk of tokens at a
// time, each chunk's logits turned into loss, gradient and statistics by fused_loss in place and folded into
// ∂hidden, ∂weight and ∂bias at once, so the N × V logits and their gradient never exist whole.
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "fused_loss.h"

namespace dpsm::core {

// A chunk's logits stay within this many bytes on the CPU (fp32 at V = 50,257: 333 rows).
constexpr int64_t kLinearLossChunkBytes = int64_t(64) << 20;
// LinearLossOptions::chunk_bytes: kLinearLossChunkBytes on the CPU, a share of the device's free memory on CUDA.
constexpr int64_t kAutoChunkBytes = 0;

struct LinearLossOptions {
  LossOptions loss;  // reduction mean or sum (a per-token loss would need the logits again in backward)
  // The logits' dtype: bf16 where the unfused head runs under platform::AutocastBF16 (its matmul is autocast to
  // bf16 there, bias added in bf16 here), otherwise the weight's. ∂weight and ∂bias accumulate in fp32.
  at::ScalarType compute_dtype = at::kFloat;
  int64_t chunk_bytes = kAutoChunkBytes;
};

// The differentiable op: hidden [..., d], weight [V, d], bias [V] or an empty tensor (none), targets [...].
// Gradients are made in forward and scaled by the incoming gradient in backward, like dpsm_loss; `stats`, when
// given, receives the per-token statistics float32 [N, kStatCount] (ignored rows left unwritten).
at::Tensor fused_linear_loss(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& bias,
                             const at::Tensor& targets, const at::Tensor& step, const LinearLossOptions& options,
                             const at::Tensor& error_flag = {}, at::Tensor* stats = nullptr);

// Gradient-free: the per-token statistics (float32 [N, kStatCount], CE kind) of the logits (hidden·Wᵀ + b) / t
// for each temperature t, a chunk of tokens at a time (what the evaluator reads). Out-of-range targets are
// flagged in `error_flag` (see throw_if_target_flagged).
std::vector<at::Tensor> linear_head_stats(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& bias,
                                          const at::Tensor& targets, const std::vector<double>& temperatures,
                                          int64_t ignore_index, at::ScalarType compute_dtype,
                                          const at::Tensor& error_flag, int64_t chunk_bytes = kLinearLossChunkBytes);

}  // namespace dpsm::core
