#include "linear_loss_probe.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <chrono>
#include <stdexcept>

#include "../platform.h"

namespace dpsm::core {
namespace {

struct Inputs {
  at::Tensor hidden, weight, bias, targets, step;  // fp32 / int64 on the CPU; bias undefined when none
};

Inputs make_inputs(const LinearProbeInputs& in, const LossOptions& options, int64_t step) {
  if (in.rows < 0 || in.dim < 1 || in.vocab < 1 || in.chunk_bytes < 1)
    throw std::invalid_argument("rows, dim, vocab, chunkBytes: expected rows >= 0 and the others >= 1");
  at::Generator gen = at::detail::createCPUGenerator(in.seed);
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  Inputs x;
  // Scales that give logits of standard deviation ~3 (peaked and flat rows both occur).
  x.hidden = at::randn({in.rows, in.dim}, gen, f32);
  x.weight = at::randn({in.vocab, in.dim}, gen, f32) * (3.0 / std::sqrt(static_cast<double>(in.dim)));
  if (in.bias) x.bias = at::randn({in.vocab}, gen, f32);
  x.targets = at::randint(0, in.vocab, {in.rows}, gen, at::TensorOptions().dtype(at::kLong));
  if (in.ignore_fraction > 0) {
    const at::Tensor drop = at::rand({in.rows}, gen, f32) < in.ignore_fraction;
    x.targets = at::where(drop, at::full_like(x.targets, options.ignore_index), x.targets);
  }
  x.step = at::full({}, step, at::TensorOptions().dtype(at::kLong));
  return x;
}

double norm_rel(const at::Tensor& a, const at::Tensor& ref) {
  const double num = (a.to(at::kDouble) - ref).norm().item<double>();
  const double den = ref.norm().item<double>();
  return den > 0 ? num / den : num;
}

bool all_finite(const at::Tensor& t) { return !t.defined() || t.numel() == 0 || at::isfinite(t).all().item<bool>(); }

LinearLossOptions linear_options(const LinearProbeInputs& in, const LossOptions& options) {
  LinearLossOptions lo;
  lo.loss = options;
  lo.compute_dtype = in.bf16 ? at::kBFloat16 : at::kFloat;
  lo.chunk_bytes = in.chunk_bytes;
  return lo;
}

}  // namespace

LinearReferenceCheck check_linear_against_reference(const LinearProbeInputs& in, const LossOptions& options,
                                                    int64_t step, const std::vector<double>& temperatures) {
  const Inputs x = make_inputs(in, options, step);
  const LinearLossOptions lo = linear_options(in, options);
  LinearReferenceCheck r;
  r.smoothing = options.spec.smoothing;
  const int64_t per_chunk =
      std::max<int64_t>(1, in.chunk_bytes / (in.vocab * static_cast<int64_t>(c10::elementSize(lo.compute_dtype))));
  r.chunks = (in.rows + per_chunk - 1) / per_chunk;

  // A scalar incoming gradient that is not 1, so backward's scaling is exercised.
  const double go = 0.75;
  at::Tensor h = x.hidden.clone().requires_grad_(true);
  at::Tensor w = x.weight.clone().requires_grad_(true);
  at::Tensor b = in.bias ? x.bias.clone().requires_grad_(true) : at::Tensor();
  at::Tensor stats;
  const at::Tensor loss = fused_linear_loss(h, w, b, x.targets, x.step, lo, {}, &stats);
  std::vector<at::Tensor> wrt = {h, w};
  if (in.bias) wrt.push_back(b);
  const auto grads = torch::autograd::grad({loss}, wrt, {at::full({}, go, loss.options())});

  at::Tensor hd = x.hidden.to(at::kDouble).requires_grad_(true);
  at::Tensor wd = x.weight.to(at::kDouble).requires_grad_(true);
  at::Tensor bd = in.bias ? x.bias.to(at::kDouble).requires_grad_(true) : at::Tensor();
  at::Tensor logits = at::matmul(hd, wd.t());
  if (in.bias) logits = logits + bd;
  const at::Tensor ref = composite_loss(logits, x.targets, alpha_at(options.spec, step), options.spec.kind,
                                        options.ignore_index, options.reduction, options.spec.smoothing);
  std::vector<at::Tensor> wrt_d = {hd, wd};
  if (in.bias) wrt_d.push_back(bd);
  const auto ref_grads = torch::autograd::grad({ref}, wrt_d, {at::full({}, go, ref.options())});

  r.loss_rel_err = norm_rel(loss.detach(), ref.detach());
  r.hidden_grad_rel_err = norm_rel(grads[0], ref_grads[0]);
  r.weight_grad_rel_err = norm_rel(grads[1], ref_grads[1]);
  if (in.bias) r.bias_grad_rel_err = norm_rel(grads[2], ref_grads[2]);
  r.finite = all_finite(loss) && all_finite(grads[0]) && all_finite(grads[1]) && (!in.bias || all_finite(grads[2]));

  {
    at::Tensor hu = x.hidden.clone().requires_grad_(true);
    at::Tensor wu = x.weight.clone().requires_grad_(true);
    at::Tensor lu = at::matmul(hu.to(lo.compute_dtype), wu.to(lo.compute_dtype).t());
    if (in.bias) lu = lu + x.bias.to(lo.compute_dtype);
    const at::Tensor loss_u = dpsm_loss(lu, x.targets, x.step, options, /*inplace_grad=*/true);
    const auto gu = torch::autograd::grad({loss_u}, {hu, wu}, {at::full({}, go, loss_u.options())});
    r.unfused_loss_rel_err = norm_rel(loss_u.detach(), ref.detach());
    r.unfused_hidden_grad_rel_err = norm_rel(gu[0], ref_grads[0]);
    r.unfused_weight_grad_rel_err = norm_rel(gu[1], ref_grads[1]);
  }

  at::NoGradGuard no_grad;
  const at::Tensor kept = (x.targets != options.ignore_index).nonzero().squeeze(1);
  const at::Tensor y = x.targets.index_select(0, kept).unsqueeze(1);
  const at::Tensor ld = logits.detach().index_select(0, kept);
  if (kept.numel() > 0) {
    const at::Tensor log_p = at::log_softmax(ld, -1);
    const at::Tensor st = stats.index_select(0, kept).to(at::kDouble);
    r.nll_rel_err = norm_rel(st.select(1, kStatNll), -log_p.gather(1, y).squeeze(1));
    r.sq_norm_rel_err = norm_rel(st.select(1, kStatSqNorm), log_p.exp().pow(2).sum(1));
    r.finite = r.finite && all_finite(stats.index_select(0, kept));
  }
  const at::Tensor flag = at::zeros({}, at::TensorOptions().dtype(at::kInt));
  const auto eval_stats = linear_head_stats(x.hidden, x.weight, in.bias ? x.bias : at::Tensor(), x.targets,
                                            temperatures, options.ignore_index, lo.compute_dtype, flag, in.chunk_bytes);
  throw_if_target_flagged(flag, in.vocab, options.ignore_index);
  for (size_t i = 0; i < temperatures.size(); ++i) {
    if (kept.numel() == 0) {
      r.eval_nll_rel_err.push_back(0.0);
      continue;
    }
    const at::Tensor ref_nll = -at::log_softmax(ld / temperatures[i], -1).gather(1, y).squeeze(1);
    r.eval_nll_rel_err.push_back(
        norm_rel(eval_stats[i].index_select(0, kept).select(1, kStatNll).to(at::kDouble), ref_nll));
  }
  return r;
}

LinearTiming time_linear_loss(const LinearProbeInputs& in, const LossOptions& options, const std::string& path,
                              int iters, int warmup) {
  if (path != "fused" && path != "unfused")
    throw std::invalid_argument("path: expected 'fused' or 'unfused', got '" + path + "'");
  Inputs x = make_inputs(in, options, 0);
  const at::Device target = platform::parse_device(in.device);
  x.targets = x.targets.to(target);
  x.step = x.step.to(target);
  const LinearLossOptions lo = linear_options(in, options);
  at::Tensor h = x.hidden.to(target).requires_grad_(true);
  at::Tensor w = x.weight.to(target).requires_grad_(true);
  at::Tensor b = in.bias ? x.bias.to(target).requires_grad_(true) : at::Tensor();
  // "cuda" parses to index -1; the allocator's statistics want the device the tensors are on (cuda:0).
  const at::Device device = h.device();

  auto run_once = [&]() {
    h.mutable_grad() = at::Tensor();
    w.mutable_grad() = at::Tensor();
    if (in.bias) b.mutable_grad() = at::Tensor();
    at::Tensor loss;
    if (path == "fused") {
      loss = fused_linear_loss(h, w, b, x.targets, x.step, lo);
    } else {
      at::Tensor logits;
      {
        platform::AutocastBF16 autocast(in.bf16, h.device());
        logits = at::matmul(h, w.t());
        if (in.bias) logits = logits + b.to(logits.scalar_type());
      }
      loss = dpsm_loss(logits, x.targets, x.step, options, /*inplace_grad=*/true);
    }
    loss.backward();
#if defined(DPSM_WITH_CUDA)
    if (device.is_cuda()) platform::cuda_synchronize(device.index());
#endif
  };

  LinearTiming t;
  for (int i = 0; i < warmup; ++i) run_once();
  h.mutable_grad() = at::Tensor();
  w.mutable_grad() = at::Tensor();
  if (device.is_cuda()) {
#if defined(DPSM_WITH_CUDA)
    const int64_t before = platform::cuda_allocated(device.index());
    platform::cuda_reset_peak(device.index());
    run_once();
    t.peak_bytes = platform::cuda_peak_allocated(device.index()) - before;
#endif
  } else if (platform::reset_cpu_peak()) {
    const int64_t before = platform::proc_memory_bytes("VmRSS");
    run_once();
    t.peak_bytes = platform::proc_memory_bytes("VmHWM") - before;
  } else {
    t.peak_bytes = -1;  // no way to read a peak on this system
  }
  for (int i = 0; i < iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    run_once();
    t.ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return t;
}

}  // namespace dpsm::core
