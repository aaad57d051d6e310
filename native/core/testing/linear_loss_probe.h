// Measurements of the fused LM head + loss (loss/fused_linear_loss.h) that the tests and the benchmark drive
// from JS: a comparison with the float64 matmul + composite_loss reference on random inputs, and timings with
// peak memory beside the unfused head (logits, then the fused loss). Built into the testing addon only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../loss/fused_linear_loss.h"

namespace dpsm::core {

struct LinearProbeInputs {
  int64_t rows = 1, dim = 1, vocab = 2;
  bool bias = false;
  bool bf16 = false;  // logits in bf16 from fp32 hidden states and weights (the trainer under bf16 autocast)
  double ignore_fraction = 0.0;
  int64_t chunk_bytes = kLinearLossChunkBytes;
  uint64_t seed = 0;
  std::string device = "cpu";  // the timings' device (the reference check runs on the CPU)
};

struct LinearReferenceCheck {
  // ‖fused − ref‖ / ‖ref‖ (absolute where ‖ref‖ = 0)
  double loss_rel_err = 0, hidden_grad_rel_err = 0, weight_grad_rel_err = 0, bias_grad_rel_err = 0;
  // The unfused head (matmul in the compute dtype, then dpsm_loss, autograd back to the fp32 inputs) against the
  // same reference: the floor that dtype's rounding sets.
  double unfused_loss_rel_err = 0, unfused_hidden_grad_rel_err = 0, unfused_weight_grad_rel_err = 0;
  double nll_rel_err = 0, sq_norm_rel_err = 0;  // the statistics the trainer's components read
  std::vector<double> eval_nll_rel_err;         // linear_head_stats at each temperature
  int64_t chunks = 0;                           // how many chunks the rows were cut into
  bool finite = true;
  double smoothing = 0;  // the score smoothing ε of the spec the head ran with (as parsed from the document)
};

// The autograd op under an incoming gradient ≠ 1 against autograd through float64 matmul (+ bias) and
// composite_loss of the same values; the evaluator's statistics at `temperatures` against log_softmax(logits/t).
LinearReferenceCheck check_linear_against_reference(const LinearProbeInputs& in, const LossOptions& options,
                                                    int64_t step, const std::vector<double>& temperatures);

struct LinearTiming {
  std::vector<double> ms;  // forward + backward, one per timed iteration
  // Peak memory of one iteration beyond what was held before it (-1: unknown): the CPU's resident-set
  // high-water mark, or CUDA's caching-allocator peak.
  int64_t peak_bytes = 0;
};

// path: "fused" (fused_linear_loss) or "unfused" (matmul, then dpsm_loss with its gradient in place, as the
// trainer's unfused head).
LinearTiming time_linear_loss(const LinearProbeInputs& in, const LossOptions& options, const std::string& path,
                              int iters, int warmup);

}  // namespace dpsm::core
