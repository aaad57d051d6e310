#include "optim.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <numeric>

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

// Σ (a − b)² (b null: Σ a²) over n values, in double: fixed chunks of 2^16 values summed on any thread, then the
// chunks in order, so the result does not depend on the thread count; four accumulators per chunk keep the adds
// independent.
template <typename T>
double host_sum_squares(const T* a, const T* b, int64_t n) {
  constexpr int64_t kChunk = int64_t{1} << 16;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> part(static_cast<size_t>(chunks), 0.0);
  at::parallel_for(0, chunks, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c) {
      const int64_t begin = c * kChunk, end = std::min(n, begin + kChunk);
      double s[4] = {0, 0, 0, 0};
      int64_t i = begin;
      for (; i + 4 <= end; i += 4)
        for (int k = 0; k < 4; ++k) {
          const double d = static_cast<double>(a[i + k]) - (b ? static_cast<double>(b[i + k]) : 0.0);
          s[k] += d * d;
        }
      for (; i < end; ++i) {
        const double d = static_cast<double>(a[i]) - (b ? static_cast<double>(b[i]) : 0.0);
        s[0] += d * d;
      }
      part[static_cast<size_t>(c)] = (s[0] + s[1]) + (s[2] + s[3]);
    }
  });
  return std::accumulate(part.begin(), part.end(), 0.0);
}

// Σ (a − b)² (b undefined: Σ a²) of CPU tensors of one shape, on the host. The trainer's contiguous fp32 or
// fp64 tensors are read in place (no ATen call: a per-tensor op here is what the op-list guard looks for).
double host_sum_squares(const at::Tensor& a_in, const at::Tensor& b_in = at::Tensor()) {
  const at::ScalarType st = a_in.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  auto ready = [&](const at::Tensor& x) { return (x.scalar_type() == st ? x : x.to(st)).contiguous(); };
  const at::Tensor a = ready(a_in);
  const at::Tensor b = b_in.defined() ? ready(b_in) : at::Tensor();
  if (st == at::kDouble)
    return host_sum_squares(a.data_ptr<double>(), b.defined() ? b.data_ptr<double>() : nullptr, a.numel());
  return host_sum_squares(a.data_ptr<float>(), b.defined() ? b.data_ptr<float>() : nullptr, a.numel());
}

// A scalar float64 tensor holding v, on the CPU.
at::Tensor host_scalar(double v) {
  at::Tensor t = at::empty({}, at::TensorOptions().dtype(at::kDouble));
  *t.data_ptr<double>() = v;
  return t;
}

// Σ over the per-tensor norms (float32 [k], or several such) of their squares, in double.
at::Tensor sum_of_squares(const std::vector<at::Tensor>& norm_lists) {
  return at::cat(norm_lists).to(at::kDouble).square().sum();
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

Reductions reductions_for(const at::Device& device) {
  if (const char* env = std::getenv("DPSM_STEP_REDUCTIONS")) {
    const std::string v(env);
    if (v == "per-tensor") return Reductions::PerTensor;
    if (v == "multi-tensor") return Reductions::MultiTensor;
    if (v == "host" && device.is_cpu()) return Reductions::Host;
  }
  return device.is_cpu() ? Reductions::Host : Reductions::MultiTensor;
}

at::Tensor gradient_norm(const std::vector<at::Tensor>& params) {
  // Each parameter's squared norm, and their sum, in double: fp32 (clip_grad_norm_) loses ~1e-4 of it
  // relative at small-model size and more at GPT-2's embedding size.
  RECORD_USER_SCOPE("dpsm::gradient_norm");
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> grads;
  for (const at::Tensor& p : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  const at::Device device = params.empty() ? at::Device(at::kCPU) : params[0].device();
  if (grads.empty()) return at::zeros({}, at::TensorOptions().dtype(at::kDouble).device(device));
  switch (reductions_for(device)) {
    case Reductions::Host: {
      double total = 0;
      for (const at::Tensor& g : grads) total += host_sum_squares(g);
      return host_scalar(std::sqrt(total));
    }
    case Reductions::MultiTensor: return sum_of_squares({at::stack(at::_foreach_norm(grads, 2))}).sqrt();
    case Reductions::PerTensor: break;
  }
  at::Tensor total;
  for (const at::Tensor& g : grads) {
    const at::Tensor sq = squared_norm(g);
    total = total.defined() ? total + sq.to(total.device()) : sq;
  }
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
  if (group_elements_ <= 0) {
    const bool cpu = params.empty() || params[0].device().is_cpu();
    group_elements_ = cpu ? int64_t{1} << 24 : int64_t{1} << 28;
  }
  for (const at::Tensor& t : params) {
    exp_avg.push_back(at::zeros_like(t));
    exp_avg_sq.push_back(at::zeros_like(t));
    decay_.push_back(t.dim() >= 2);  // matrices and embeddings decay; biases and LayerNorms do not
  }
  const at::Device device = params.empty() ? at::Device(at::kCPU) : params[0].device();
  step_count_ = at::zeros({}, at::TensorOptions().dtype(at::kFloat).device(device));
  update_norms_ = at::zeros({2}, at::TensorOptions().dtype(at::kDouble).device(device));
}

void AdamW::step(double lr, int64_t step, const at::Tensor& clip, bool measure_ratio) {
  at::NoGradGuard no_grad;
  const double t = static_cast<double>(step + 1);
  const double bc1 = 1.0 - std::pow(c_.beta1, t), bc2 = 1.0 - std::pow(c_.beta2, t);
  // The fused kernel divides each gradient by its grad_scale: the clip factor's reciprocal. Tensor by tensor on
  // the CPU, where the clip factor lies in host memory (no wait), gradients are scaled only when it is below 1;
  // it is read from the tensor's memory, not by item(), which on a device would be a host synchronisation (the
  // op-list guard, test/step-ops.test.ts, counts every item()).
  const at::Tensor scale = fused() && clip.defined() ? clip.reciprocal().to(at::kFloat) : at::Tensor();
  const bool host_clip = !fused() && clip.defined() && clip.device().is_cpu();
  const double coef =
      host_clip ? *(clip.scalar_type() == at::kDouble ? clip : clip.to(at::kDouble)).contiguous().data_ptr<double>()
                : 1.0;
  if (fused()) step_count_.fill_(t);
  // Updates the parameters `group` (all of one decay setting): one fused call, or tensor by tensor.
  auto update = [&](const std::vector<size_t>& group, bool decay) {
    RECORD_USER_SCOPE("dpsm::adamw_update");
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

  // The update-to-weight ratio, from the update actually applied: parameters in groups of at most group_elements_
  // weights (at least the largest parameter) are copied, updated, and the copy turned into the update they
  // received: a copy, a subtraction and two norms, 28 bytes per parameter (the host's single pass reads 8 of
  // them twice less). (Rebuilding it from the moments after the update took about 19 passes over the weights.)
  // Without `measure_ratio` the parameters are updated in one group per decay setting.
  const at::Device device = params.empty() ? at::Device(at::kCPU) : params[0].device();
  const Reductions how = reductions_for(device);
  const int64_t bound = measure_ratio ? group_elements_ : std::numeric_limits<int64_t>::max();
  if (measure_ratio && how != Reductions::MultiTensor && !before_.defined() && !params.empty()) {
    int64_t largest = 0, total = 0;
    for (const at::Tensor& p : params) {
      largest = std::max(largest, p.numel());
      total += p.numel();
    }
    before_ = at::empty({std::max(largest, std::min(total, group_elements_))}, params.front().options());
  }
  double host_update = 0, host_weight = 0;
  at::Tensor update_sq, weight_sq;             // PerTensor
  std::vector<at::Tensor> update_n, weight_n;  // MultiTensor: per-tensor fp32 norms of each group
  auto measured = [&](const std::vector<size_t>& group, bool decay) {
    RECORD_USER_SCOPE("dpsm::update_ratio");
    if (how == Reductions::MultiTensor) {
      std::vector<at::Tensor> ps;
      for (const size_t i : group) ps.push_back(params[i]);
      std::vector<at::Tensor> before = at::_foreach_mul(ps, 1.0);  // a copy, in one multi-tensor call
      weight_n.push_back(at::stack(at::_foreach_norm(before, 2)));
      update(group, decay);
      at::_foreach_sub_(before, ps);
      update_n.push_back(at::stack(at::_foreach_norm(before, 2)));
      return;
    }
    if (how == Reductions::Host) {
      // Raw copies into the buffer, then one pass over copy and weights per parameter (no ATen call).
      const bool raw = before_.scalar_type() == at::kFloat || before_.scalar_type() == at::kDouble;
      std::vector<at::Tensor> copies;
      std::vector<int64_t> offsets;
      int64_t offset = 0;
      for (const size_t i : group) {
        const at::Tensor& p = params[i];
        if (!raw || p.scalar_type() != before_.scalar_type() || !p.is_contiguous()) {
          copies.push_back(p.clone());  // another dtype or layout than the buffer's: its own copy
          offsets.push_back(-1);
          continue;
        }
        const size_t bytes = static_cast<size_t>(p.numel()) * p.element_size();
        std::memcpy(static_cast<char*>(before_.data_ptr()) + offset * p.element_size(), p.data_ptr(), bytes);
        copies.emplace_back();
        offsets.push_back(offset);
        offset += p.numel();
      }
      update(group, decay);
      for (size_t j = 0; j < group.size(); ++j) {
        const at::Tensor& p = params[group[j]];
        if (offsets[j] < 0) {
          host_weight += host_sum_squares(copies[j]);
          host_update += host_sum_squares(copies[j], p);
        } else if (p.scalar_type() == at::kDouble) {
          const double* b = before_.data_ptr<double>() + offsets[j];
          host_weight += host_sum_squares(b, static_cast<const double*>(nullptr), p.numel());
          host_update += host_sum_squares(b, p.data_ptr<double>(), p.numel());
        } else {
          const float* b = before_.data_ptr<float>() + offsets[j];
          host_weight += host_sum_squares(b, static_cast<const float*>(nullptr), p.numel());
          host_update += host_sum_squares(b, p.data_ptr<float>(), p.numel());
        }
      }
      return;
    }
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
  };
  for (const bool decay : {true, false}) {
    std::vector<size_t> group;
    int64_t elements = 0;
    auto flush = [&] {
      if (group.empty()) return;
      if (measure_ratio)
        measured(group, decay);
      else
        update(group, decay);
      group.clear();
      elements = 0;
    };
    for (size_t i = 0; i < params.size(); ++i) {
      if (decay_[i] != decay || !params[i].grad().defined()) continue;
      if (!group.empty() && elements + params[i].numel() > bound) flush();
      group.push_back(i);
      elements += params[i].numel();
    }
    flush();
  }
  if (!measure_ratio) return;
  RECORD_USER_SCOPE("dpsm::update_ratio");
  switch (how) {
    case Reductions::Host: {
      at::Tensor u = at::empty({2}, at::TensorOptions().dtype(at::kDouble));
      u.data_ptr<double>()[0] = host_update;
      u.data_ptr<double>()[1] = host_weight;
      update_norms_ = u;
      return;
    }
    case Reductions::MultiTensor:
      if (!update_n.empty()) {
        update_norms_ = at::stack({sum_of_squares(update_n), sum_of_squares(weight_n)});
        return;
      }
      break;
    case Reductions::PerTensor:
      if (update_sq.defined()) {
        update_norms_ = at::stack({update_sq, weight_sq});
        return;
      }
      break;
  }
  update_norms_ = at::zeros({2}, at::TensorOptions().dtype(at::kDouble).device(device));
}

void AdamW::zero_grad() {
  for (at::Tensor p : params) p.mutable_grad() = at::Tensor();
}

}  // namespace dpsm::core
