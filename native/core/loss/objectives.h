// The training objectives, parsed and computed in one place: the fused kinds (ce, brier, spherical, dpsm with
// its α schedule) through the fused kernel, and the baselines label smoothing and focal loss on plain ops.
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "../config.h"
#include "fused_linear_loss.h"
#include "fused_loss.h"

namespace dpsm::core {

struct Objective {
  enum class Type { Fused, LabelSmoothing, Focal } type = Type::Fused;
  LossOptions fused;  // Fused: the kernel's spec, ignore index and reduction; the others use ignore_index
  double smoothing = 0;
  double gamma = 0;
};

// From lib/'s loss document: { kind: "ce" | "brier" | "spherical" | "dpsm", schedule?, warmupSteps?, alpha?,
// smoothing?, ignoreIndex, reduction } or { kind: "label_smoothing", smoothing } or { kind: "focal", gamma }.
// A fused kind's `smoothing` is the kernel's score smoothing ε (LossSpec::smoothing; ce with ε is label
// smoothing computed in the fused kernel).
Objective objective_from_json(const Json& j);
// The fused kinds alone (what DPSMLoss takes).
LossOptions fused_options_from_json(const Json& j);

// α the objective puts on Brier at an optimiser step (0 for the baselines).
double objective_alpha(const Objective& o, int64_t step);

// The mean loss over non-ignored targets of logits [N, V]; `step` is the fused kernel's int64 step tensor.
// The fused kinds write their gradient over the logits (an LM head's output, which nothing else saves) and
// flag out-of-range targets in `error_flag` (see throw_if_target_flagged). With `components`, it is set to the
// sums over non-ignored tokens of the two proper scores DPSM mixes, float64 [CE, Brier] on the logits' device,
// whatever the objective: the fused kinds take them from the kernel's own pass, the baselines from a
// gradient-free pass before theirs.
at::Tensor objective_loss(const Objective& o, const at::Tensor& logits, const at::Tensor& targets,
                          const at::Tensor& step, const at::Tensor& error_flag, at::Tensor* components = nullptr);

// Whether the objective can go through the fused LM head (fused_linear_loss): a fused kind reduced to a scalar.
bool objective_fuses_head(const Objective& o);
// objective_loss of the logits hidden [N, d] · weightᵀ (+ bias), through the fused LM head; the same
// `components`. Only for objectives objective_fuses_head accepts (the caller asks it; whether a configuration may
// ask for the fused head at all is lib/'s check, lib/trainer.ts).
at::Tensor objective_head_loss(const Objective& o, const at::Tensor& hidden, const at::Tensor& weight,
                               const at::Tensor& bias, at::ScalarType compute_dtype, const at::Tensor& targets,
                               const at::Tensor& step, const at::Tensor& error_flag, at::Tensor* components = nullptr);

}  // namespace dpsm::core
