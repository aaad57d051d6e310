// Measurements of the fused loss that the tests and the benchmark drive from JS: a comparison with the float64
// composite reference on random inputs, and timings of the fused and composite paths. Built into the
// testing addon only, never into the product's.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../loss/fused_loss.h"

namespace dpsm::core {

struct ProbeInputs {
  int64_t rows = 1;
  int64_t vocab = 2;
  std::string dtype = "float32";  // float32, bfloat16, float16
  std::string device = "cpu";
  double scale = 3.0;            // standard deviation of the random logits
  bool extreme = false;          // logits of magnitude up to 1e4, targets at and away from the max
  double ignore_fraction = 0.0;  // share of targets set to ignore_index (1: all)
  uint64_t seed = 0;
};

struct ReferenceCheck {
  double loss_rel_err = 0, grad_rel_err = 0;  // ‖fused − ref‖ / ‖ref‖ (absolute where ‖ref‖ = 0)
  double loss_abs_err = 0, grad_abs_err = 0;  // max |fused − ref|
  double autograd_grad_rel_err = 0;           // the autograd op, under a random incoming gradient
  double stats_rel_err[kStatCount] = {0, 0, 0, 0, 0};
  int64_t hit_mismatches = 0;  // argmax-hit flags that differ from torch.argmax == y
  double alpha_kernel = 0, alpha_closed_form = 0;
  int64_t count = 0;
  bool finite = true;    // no NaN/Inf in the fused outputs
  double smoothing = 0;  // the score smoothing ε of the spec the kernel ran with (as parsed from the document)
};

// Fused (forward + gradient + statistics) against composite_loss in float64 with autograd, on the same
// (dtype-rounded) logits. grad_inplace checks the in-place gradient path.
ReferenceCheck check_against_reference(const ProbeInputs& in, const LossOptions& options, int64_t step,
                                       bool grad_inplace);

struct Timing {
  std::vector<double> ms;        // one per timed iteration
  int64_t extra_peak_bytes = 0;  // peak memory beyond the logits (and the gradient, when there is one)
};

// path: "fused" (the autograd op), "fused-inplace" (the gradient written into the logits), "kernel" (fused_loss
// alone: loss and, with backward, the gradient in one call, no autograd) or "composite"; backward: time forward +
// backward (through autograd but for "kernel"). On CUDA the inputs are drawn on the device.
Timing time_loss(const ProbeInputs& in, const LossOptions& options, const std::string& path, bool backward, int iters,
                 int warmup);

// A device's copy bandwidth in bytes per second (bytes read + bytes written, median of `iters` copies of `bytes`):
// the rate the fused loss's floor is stated in (bench/fused-loss.ts).
double copy_bandwidth(const std::string& device, int64_t bytes, int iters);

at::ScalarType parse_dtype(const std::string& s);

}  // namespace dpsm::core
