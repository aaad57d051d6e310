#include "optim.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <algorithm>
#include <cmath>

namespace dpsm::core {
namespace {

// ‖x‖², summed in double. ATen's norm with dtype double first makes a double copy of the whole tensor (about 40 ms
// for 2^24 floats on 2 CPU cores, against ~1 ms for this, on libtorch 1.13 and 2.x alike; three such norms of every
// weight made up ~0.6 s of a 2.4 s GPT-2 small step), and a float norm of a whole 2^24-element tensor is off by
// ~1e-3 relative. Norms of 4,096-element rows in float, squared and summed in double, are within ~1e-8 of the
// float64 norm.
at::Tensor squared_norm(const at::Tensor& x) {
  if (x.scalar_type() == at::kDouble) return at::linalg_vector_norm(x, 2, c10::nullopt, false, at::kDouble).square();
  constexpr int64_t kRow = 4096;
  const at::Tensor flat = x.reshape({-1});
  const int64_t n = flat.numel(), whole = n / kRow * kRow;
  at::Tensor total;
  if (whole > 0) {
    const at::Tensor rows = flat.narrow(0, 0, whole).view({whole / kRow, kRow});
    total = at::linalg_vector_norm(rows, 2, at::IntArrayRef{1}, false, at::kFloat).to(at::kDouble).square().sum();
  }
  if (whole < n) {
    const at::Tensor tail =
        at::linalg_vector_norm(flat.narrow(0, whole, n - whole), 2, c10::nullopt, false, at::kDouble).square();
    total = total.defined() ? total + tail : tail;
  }
  return total.defined() ? total : at::zeros({}, x.options().dtype(at::kDouble));
}

}  // namespace

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

at::Tensor gradient_norm(const std::vector<at::Tensor>& params) {
  // Each parameter's squared norm, and their sum, in double: fp32 (clip_grad_norm_) loses ~1e-4 of it
  // relative at small-model size and more at GPT-2's embedding size.
  at::NoGradGuard no_grad;
  at::Tensor total;
  for (const at::Tensor& p : params) {
    const at::Tensor& g = p.grad();
    if (!g.defined()) continue;
    const at::Tensor sq = squared_norm(g);
    total = total.defined() ? total + sq.to(total.device()) : sq;
  }
  if (!total.defined())
    return at::zeros({}, at::TensorOptions().dtype(at::kDouble).device(params.empty() ? at::kCPU : params[0].device()));
  return total.sqrt();
}

at::Tensor clip_coefficient(const at::Tensor& norm, const OptimConfig& c) {
  if (!(c.grad_clip > 0)) return at::Tensor();
  // On the device: deciding on the host whether to clip would wait for the whole backward pass. A factor of
  // exactly 1 leaves every gradient unchanged.
  return (c.grad_clip / (norm + 1e-6)).clamp_max(1.0);
}

AdamW::AdamW(std::vector<std::string> n, std::vector<at::Tensor> p, const OptimConfig& c, int64_t group_elements)
    : names(std::move(n)), params(std::move(p)), c_(c), group_elements_(group_elements) {
  for (const at::Tensor& t : params) {
    exp_avg.push_back(at::zeros_like(t));
    exp_avg_sq.push_back(at::zeros_like(t));
    decay_.push_back(t.dim() >= 2);  // matrices and embeddings decay; biases and LayerNorms do not
  }
  const at::Device device = params.empty() ? at::Device(at::kCPU) : params[0].device();
  step_count_ = at::zeros({}, at::TensorOptions().dtype(at::kFloat).device(device));
  update_norms_ = at::zeros({2}, at::TensorOptions().dtype(at::kDouble).device(device));
}

void AdamW::step(double lr, int64_t step, const at::Tensor& clip) {
  at::NoGradGuard no_grad;
  const double t = static_cast<double>(step + 1);
  const double bc1 = 1.0 - std::pow(c_.beta1, t), bc2 = 1.0 - std::pow(c_.beta2, t);
  // The fused kernel divides each gradient by its grad_scale: the clip factor's reciprocal. Tensor by tensor on
  // the CPU, where reading the clip factor costs no wait, gradients are scaled only when it is below 1.
  const at::Tensor scale = fused() && clip.defined() ? clip.reciprocal().to(at::kFloat) : at::Tensor();
  const bool host_clip = !fused() && clip.defined() && clip.device().is_cpu();
  const double coef = host_clip ? clip.item<double>() : 1.0;
  if (fused()) step_count_.fill_(t);
  // Updates the parameters `group` (all of one decay setting): one fused call, or tensor by tensor.
  auto update = [&](const std::vector<size_t>& group, bool decay) {
    if (fused()) {
      std::vector<at::Tensor> ps, gs, ms, vs;
      for (const size_t i : group) {
        ps.push_back(params[i]);
        gs.push_back(params[i].grad());
        ms.push_back(exp_avg[i]);
        vs.push_back(exp_avg_sq[i]);
      }
      platform::fused_adamw(ps, gs, ms, vs, step_count_, lr, c_.beta1, c_.beta2, decay ? c_.weight_decay : 0.0, c_.eps,
                            scale);
      return;
    }
    for (const size_t i : group) {
      at::Tensor p = params[i];
      at::Tensor g = p.grad();
      if (host_clip) {
        if (coef < 1.0) g.mul_(coef);
      } else if (clip.defined()) {
        g.mul_(clip);
      }
      exp_avg[i].mul_(c_.beta1).add_(g, 1.0 - c_.beta1);
      exp_avg_sq[i].mul_(c_.beta2).addcmul_(g, g, 1.0 - c_.beta2);
      if (decay && c_.weight_decay > 0) p.mul_(1.0 - lr * c_.weight_decay);
      const at::Tensor denom = (exp_avg_sq[i].sqrt() / std::sqrt(bc2)).add_(c_.eps);
      p.addcdiv_(exp_avg[i], denom, -lr / bc1);
    }
  };

  // The update-to-weight ratio, from the update actually applied: parameters in groups that fit one buffer
  // (group_elements_ weights or fewer, at least the largest parameter) are copied into it, updated, and the copy turned
  // into the update they received: a copy, a subtraction and two norms, with no allocation per step. (Rebuilding it
  // from the moments after the update took about 19 passes over the weights, a third of a GPT-2 small step on two CPU
  // cores.)
  if (!before_.defined() && !params.empty()) {
    int64_t largest = 0, total = 0;
    for (const at::Tensor& p : params) {
      largest = std::max(largest, p.numel());
      total += p.numel();
    }
    before_ = at::empty({std::max(largest, std::min(total, group_elements_))}, params.front().options());
  }
  at::Tensor update_sq, weight_sq;
  for (const bool decay : {true, false}) {
    std::vector<size_t> group;
    int64_t elements = 0;
    auto flush = [&] {
      if (group.empty()) return;
      std::vector<at::Tensor> before;
      int64_t offset = 0;
      for (const size_t i : group) {
        const at::Tensor& p = params[i];
        if (p.scalar_type() != before_.scalar_type()) {
          before.push_back(p.clone());  // a parameter of another dtype than the first: its own copy
          continue;
        }
        before.push_back(before_.narrow(0, offset, p.numel()).view_as(p).copy_(p));
        offset += p.numel();
      }
      update(group, decay);
      for (size_t j = 0; j < group.size(); ++j) {
        const at::Tensor w = squared_norm(before[j]), u = squared_norm(before[j].sub_(params[group[j]]));
        update_sq = update_sq.defined() ? update_sq + u : u;
        weight_sq = weight_sq.defined() ? weight_sq + w : w;
      }
      group.clear();
      elements = 0;
    };
    for (size_t i = 0; i < params.size(); ++i) {
      if (decay_[i] != decay || !params[i].grad().defined()) continue;
      if (!group.empty() && elements + params[i].numel() > before_.numel()) flush();
      group.push_back(i);
      elements += params[i].numel();
    }
    flush();
  }
  if (update_sq.defined())
    update_norms_ = at::stack({update_sq, weight_sq});
  else
    update_norms_.zero_();
}

void AdamW::zero_grad() {
  for (at::Tensor p : params) p.mutable_grad() = at::Tensor();
}

}  // namespace dpsm::core
