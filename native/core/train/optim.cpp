#include "optim.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <algorithm>
#include <cmath>

namespace dpsm::core {

OptimConfig optim_config_from_json(const Json& j) {
  OptimConfig c;
  c.lr = field<double>(j, "lr");
  c.min_lr_ratio = field<double>(j, "minLrRatio");
  c.weight_decay = field<double>(j, "weightDecay");
  const auto betas = field<std::vector<double>>(j, "betas");
  if (betas.size() != 2) throw std::invalid_argument("config: field 'betas' must hold two numbers");
  c.beta1 = betas[0];
  c.beta2 = betas[1];
  c.eps = field<double>(j, "eps");
  c.grad_clip = field<double>(j, "gradClip");
  c.warmup_steps = field<int64_t>(j, "lrWarmupSteps");
  c.max_steps = field<int64_t>(j, "maxSteps");
  return c;
}

double lr_at(const OptimConfig& c, int64_t step) {
  if (c.warmup_steps > 0 && step < c.warmup_steps)
    return c.lr * static_cast<double>(step + 1) / static_cast<double>(c.warmup_steps);
  const double span = std::max<int64_t>(1, c.max_steps - c.warmup_steps);
  const double progress = std::min(1.0, static_cast<double>(step - c.warmup_steps) / span);
  const double min_lr = c.lr * c.min_lr_ratio;
  return min_lr + 0.5 * (c.lr - min_lr) * (1.0 + std::cos(M_PI * progress));
}

double gradient_norm(const std::vector<at::Tensor>& params) {
  // Each parameter's squared norm, and their sum, in double: fp32 (clip_grad_norm_) loses ~1e-4 of it
  // relative at small-model size and more at GPT-2's embedding size. One synchronisation for the total.
  at::NoGradGuard no_grad;
  at::Tensor total;
  for (const at::Tensor& p : params) {
    const at::Tensor& g = p.grad();
    if (!g.defined()) continue;
    const at::Tensor sq = at::linalg_vector_norm(g, 2, c10::nullopt, false, at::kDouble).square();
    total = total.defined() ? total + sq.to(total.device()) : sq;
  }
  return total.defined() ? std::sqrt(total.item<double>()) : 0.0;
}

double clip_gradients(const std::vector<at::Tensor>& params, const OptimConfig& c) {
  if (!(c.grad_clip > 0)) return 0;
  const double norm = gradient_norm(params);
  const double coef = c.grad_clip / (norm + 1e-6);
  if (coef < 1) {
    at::NoGradGuard no_grad;
    for (const at::Tensor& p : params)
      if (p.grad().defined()) p.grad().mul_(coef);
  }
  return norm;
}

AdamW::AdamW(std::vector<std::string> n, std::vector<at::Tensor> p, const OptimConfig& c)
    : names(std::move(n)), params(std::move(p)), c_(c) {
  for (const at::Tensor& t : params) {
    exp_avg.push_back(at::zeros_like(t));
    exp_avg_sq.push_back(at::zeros_like(t));
    decay_.push_back(t.dim() >= 2);  // matrices and embeddings decay; biases and LayerNorms do not
  }
}

void AdamW::step(double lr, int64_t step) {
  at::NoGradGuard no_grad;
  const double t = static_cast<double>(step + 1);
  const double bc1 = 1.0 - std::pow(c_.beta1, t), bc2 = 1.0 - std::pow(c_.beta2, t);
  at::Tensor update_sq, weight_sq;
  auto sq = [](const at::Tensor& t) { return at::linalg_vector_norm(t, 2, c10::nullopt, false, at::kDouble).square(); };
  for (size_t i = 0; i < params.size(); ++i) {
    at::Tensor p = params[i];
    const at::Tensor& g = p.grad();
    if (!g.defined()) continue;
    // The update actually applied (one parameter's copy at a time): the diagnostic that shows whether ε, not
    // the gradient, sets the step size.
    const at::Tensor before = p.clone();
    exp_avg[i].mul_(c_.beta1).add_(g, 1.0 - c_.beta1);
    exp_avg_sq[i].mul_(c_.beta2).addcmul_(g, g, 1.0 - c_.beta2);
    if (decay_[i] && c_.weight_decay > 0) p.mul_(1.0 - lr * c_.weight_decay);
    const at::Tensor denom = (exp_avg_sq[i].sqrt() / std::sqrt(bc2)).add_(c_.eps);
    p.addcdiv_(exp_avg[i], denom, -lr / bc1);
    const at::Tensor u = sq(p - before), w = sq(before);
    update_sq = update_sq.defined() ? update_sq + u : u;
    weight_sq = weight_sq.defined() ? weight_sq + w : w;
  }
  update_sq_ = update_sq;
  weight_sq_ = weight_sq;
}

double AdamW::last_update_ratio() const {
  if (!update_sq_.defined()) return 0;
  const double w = weight_sq_.item<double>();
  return w > 0 ? std::sqrt(update_sq_.item<double>() / w) : 0.0;
}

void AdamW::zero_grad() {
  for (at::Tensor p : params) p.mutable_grad() = at::Tensor();
}

}  // namespace dpsm::core
