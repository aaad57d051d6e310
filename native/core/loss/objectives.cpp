#include "objectives.h"

#include <stdexcept>

namespace dpsm::core {
namespace {

Kind kind_of(const std::string& s) {
  if (s == "ce") return Kind::CE;
  if (s == "brier") return Kind::Brier;
  if (s == "spherical") return Kind::Spherical;
  if (s == "dpsm") return Kind::DPSM;
  throw std::invalid_argument("loss.kind: expected ce, brier, spherical, dpsm, label_smoothing or focal, got '" + s +
                              "'");
}

Schedule schedule_of(const std::string& s) {
  if (s == "linear") return Schedule::Linear;
  if (s == "cosine") return Schedule::Cosine;
  if (s == "fixed") return Schedule::Fixed;
  if (s == "step") return Schedule::Step;
  throw std::invalid_argument("loss.schedule: expected linear, cosine, step or fixed, got '" + s + "'");
}

Reduction reduction_of(const std::string& s) {
  if (s == "mean") return Reduction::Mean;
  if (s == "sum") return Reduction::Sum;
  if (s == "none") return Reduction::None;
  throw std::invalid_argument("loss.reduction: expected mean, sum or none, got '" + s + "'");
}

// [Σ CE, Σ Brier] over the non-ignored rows of the kernel's statistics; Brier = ‖p‖² − 2·p_y + 1. These are the
// unsmoothed proper scores whatever the loss's score smoothing ε: the statistics are unsmoothed, so the trainer
// logs the same CE and Brier for every loss (a smoothed loss is then not their α-mix).
at::Tensor component_sums(const at::Tensor& stats, const at::Tensor& targets, int64_t ignore) {
  // Ignored rows' statistics are not written: selected away, never multiplied by zero (garbage may be NaN).
  const at::Tensor keep = (targets.reshape({-1}) != ignore).unsqueeze(1);
  const at::Tensor s = stats.to(at::kDouble);
  const at::Tensor ce = s.select(1, kStatNll);
  const at::Tensor brier = s.select(1, kStatSqNorm) - 2.0 * s.select(1, kStatPy) + 1.0;
  const at::Tensor both = at::stack({ce, brier}, 1);
  return at::where(keep, both, at::zeros_like(both)).sum(0);
}

}  // namespace

LossOptions fused_options_from_json(const Json& j) {
  LossOptions o;
  o.spec.kind = kind_of(field<std::string>(j, "kind"));
  if (o.spec.kind == Kind::DPSM) {
    o.spec.schedule = schedule_of(field<std::string>(j, "schedule"));
    if (o.spec.schedule == Schedule::Fixed)
      o.spec.alpha = field<double>(j, "alpha");
    else
      o.spec.warmup_steps = field<double>(j, "warmupSteps");
  }
  // Score smoothing ε: lib/ leaves the key out when there is none (so documents and fingerprints without it stay
  // as they were); absent means 0.
  if (j.contains("smoothing")) o.spec.smoothing = field<double>(j, "smoothing");
  o.ignore_index = field<int64_t>(j, "ignoreIndex");
  o.reduction = reduction_of(field<std::string>(j, "reduction"));
  return o;
}

Objective objective_from_json(const Json& j) {
  Objective o;
  const std::string kind = field<std::string>(j, "kind");
  if (kind == "label_smoothing") {
    o.type = Objective::Type::LabelSmoothing;
    o.smoothing = field<double>(j, "smoothing");
    o.fused.ignore_index = field<int64_t>(j, "ignoreIndex");
  } else if (kind == "focal") {
    o.type = Objective::Type::Focal;
    o.gamma = field<double>(j, "gamma");
    o.fused.ignore_index = field<int64_t>(j, "ignoreIndex");
  } else {
    o.fused = fused_options_from_json(j);
  }
  return o;
}

double objective_alpha(const Objective& o, int64_t step) {
  return o.type == Objective::Type::Fused ? alpha_at(o.fused.spec, step) : 0.0;
}

at::Tensor objective_loss(const Objective& o, const at::Tensor& logits, const at::Tensor& targets,
                          const at::Tensor& step, const at::Tensor& error_flag, at::Tensor* components) {
  const int64_t ignore = o.fused.ignore_index;
  if (components && o.type != Objective::Type::Fused) {
    at::NoGradGuard no_grad;
    FusedRequest req;
    req.grad = false;
    req.stats = true;
    LossOptions ce;
    ce.ignore_index = ignore;
    *components = component_sums(fused_loss(logits.detach(), targets, step, ce, req).stats, targets, ignore);
  }
  switch (o.type) {
    case Objective::Type::LabelSmoothing:
      return at::cross_entropy_loss(logits.to(at::kFloat), targets, {}, at::Reduction::Mean, ignore, o.smoothing);
    case Objective::Type::Focal: {
      // Focal loss (Lin et al. 2017) on the target: −(1 − p_y)^γ · log p_y, mean over non-ignored tokens.
      const at::Tensor keep = targets != ignore;
      const at::Tensor safe = at::where(keep, targets, at::zeros_like(targets));
      const at::Tensor log_py = at::log_softmax(logits.to(at::kFloat), -1).gather(1, safe.unsqueeze(1)).squeeze(1);
      const at::Tensor per = -(1.0 - log_py.exp()).pow(o.gamma) * log_py;
      return (per * keep).sum() / keep.sum().clamp_min(1);
    }
    case Objective::Type::Fused: break;
  }
  if (!components) return dpsm_loss(logits, targets, step, o.fused, /*inplace_grad=*/true, error_flag);
  at::Tensor stats;
  at::Tensor loss = dpsm_loss(logits, targets, step, o.fused, /*inplace_grad=*/true, error_flag, &stats);
  *components = component_sums(stats, targets, ignore);
  return loss;
}

bool objective_fuses_head(const Objective& o) {
  return o.type == Objective::Type::Fused && o.fused.reduction != Reduction::None;
}

at::Tensor objective_head_loss(const Objective& o, const at::Tensor& hidden, const at::Tensor& weight,
                               const at::Tensor& bias, at::ScalarType compute_dtype, const at::Tensor& targets,
                               const at::Tensor& step, const at::Tensor& error_flag, at::Tensor* components) {
  LinearLossOptions lo;
  lo.loss = o.fused;
  lo.compute_dtype = compute_dtype;
  if (!components) return fused_linear_loss(hidden, weight, bias, targets, step, lo, error_flag);
  at::Tensor stats;
  at::Tensor loss = fused_linear_loss(hidden, weight, bias, targets, step, lo, error_flag, &stats);
  *components = component_sums(stats, targets, o.fused.ignore_index);
  return loss;
}

}  // namespace dpsm::core
