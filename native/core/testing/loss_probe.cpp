#include "loss_probe.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <string>

#include "../platform.h"

namespace dpsm::core {

at::ScalarType parse_dtype(const std::string& s) {
  if (s == "float32") return at::kFloat;
  if (s == "bfloat16") return at::kBFloat16;
  if (s == "float16") return at::kHalf;
  throw std::invalid_argument("dtype: expected float32, bfloat16 or float16, got '" + s + "'");
}

namespace {

struct Inputs {
  at::Tensor logits, targets, step;
};

Inputs make_inputs(const ProbeInputs& in, const LossOptions& options, int64_t step) {
  at::Generator gen = at::detail::createCPUGenerator(in.seed);
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  at::Tensor logits = at::randn({in.rows, in.vocab}, gen, f32) * in.scale;
  at::Tensor targets = at::randint(0, in.vocab, {in.rows}, gen, at::TensorOptions().dtype(at::kLong));
  if (in.extreme) {
    // Magnitudes up to 1e4: a few huge entries per row, and every other row's target made the (huge) max.
    const at::Tensor spikes = at::rand({in.rows, in.vocab}, gen, f32) < 0.01;
    const at::Tensor signs = at::where(at::rand({in.rows, in.vocab}, gen, f32) < 0.5, -1.0, 1.0);
    logits = at::where(spikes, signs * 1e4, logits * 100.0);
    const at::Tensor rows = at::arange(0, in.rows, 2, at::TensorOptions().dtype(at::kLong));
    logits.index_put_({rows, targets.index({rows})}, 1e4);
  }
  if (in.ignore_fraction > 0) {
    const at::Tensor drop = at::rand({in.rows}, gen, f32) < in.ignore_fraction;
    targets = at::where(drop, at::full_like(targets, options.ignore_index), targets);
  }
  const at::Device device = platform::parse_device(in.device);
  Inputs out;
  out.logits = logits.to(parse_dtype(in.dtype)).to(device);
  out.targets = targets.to(device);
  out.step = at::full({}, step, at::TensorOptions().dtype(at::kLong).device(device));
  return out;
}

// Timing inputs drawn on the device itself (standard normal × scale, uniform targets, the ignored share).
Inputs device_inputs(const ProbeInputs& in, const LossOptions& options, const at::Device& device) {
  at::manual_seed(in.seed);
  const auto f32 = at::TensorOptions().dtype(at::kFloat).device(device);
  Inputs out;
  out.logits = (at::randn({in.rows, in.vocab}, f32) * in.scale).to(parse_dtype(in.dtype));
  out.targets = at::randint(0, in.vocab, {in.rows}, f32.dtype(at::kLong));
  if (in.ignore_fraction > 0) {
    const at::Tensor drop = at::rand({in.rows}, f32) < in.ignore_fraction;
    out.targets = at::where(drop, at::full_like(out.targets, options.ignore_index), out.targets);
  }
  out.step = at::full({}, int64_t{0}, at::TensorOptions().dtype(at::kLong).device(device));
  return out;
}

double norm_rel(const at::Tensor& a, const at::Tensor& ref) {
  const double num = (a.to(at::kDouble) - ref).norm().item<double>();
  const double den = ref.norm().item<double>();
  return den > 0 ? num / den : num;
}

double max_abs(const at::Tensor& a, const at::Tensor& ref) {
  if (a.numel() == 0) return 0.0;
  return (a.to(at::kDouble) - ref).abs().max().item<double>();
}

bool all_finite(const at::Tensor& t) { return t.numel() == 0 || at::isfinite(t).all().item<bool>(); }

void sync(const at::Device& d) {
#if defined(DPSM_WITH_CUDA)
  if (d.is_cuda()) platform::cuda_synchronize(d.index());
#else
  (void)d;
#endif
}

}  // namespace

ReferenceCheck check_against_reference(const ProbeInputs& in, const LossOptions& options, int64_t step,
                                       bool grad_inplace) {
  const Inputs x = make_inputs(in, options, step);
  FusedRequest req;
  req.grad = true;
  req.grad_inplace = grad_inplace;
  req.stats = true;
  at::Tensor logits_for_fused = grad_inplace ? x.logits.clone() : x.logits;
  const FusedOutputs f = fused_loss(logits_for_fused, x.targets, x.step, options, req);

  ReferenceCheck r;
  r.alpha_kernel = f.alpha.item<double>();
  throw_if_target_flagged(f.error_flag, in.vocab, options.ignore_index);
  r.alpha_closed_form = alpha_at(options.spec, step);
  r.count = f.count.item<int64_t>();
  r.smoothing = options.spec.smoothing;

  // Reference: float64 on the CPU, from the very values the kernel saw.
  at::Tensor ld = x.logits.to(at::kDouble).cpu().requires_grad_(true);
  const at::Tensor targets = x.targets.cpu();
  const at::Tensor ref = composite_loss(ld, targets, r.alpha_closed_form, options.spec.kind, options.ignore_index,
                                        options.reduction, options.spec.smoothing);
  const at::Tensor ref_grad = torch::autograd::grad({ref.sum()}, {ld}, {}, /*retain_graph=*/true)[0];

  const at::Tensor loss = f.loss.cpu(), grad = f.grad.cpu();
  r.finite = all_finite(loss) && all_finite(grad) && all_finite(f.stats);
  r.loss_rel_err = norm_rel(loss, ref.detach());
  r.loss_abs_err = max_abs(loss, ref.detach());
  r.grad_rel_err = norm_rel(grad, ref_grad);
  r.grad_abs_err = max_abs(grad, ref_grad);
  if (grad_inplace && logits_for_fused.data_ptr() != f.grad.data_ptr()) r.finite = false;  // not in place

  // The autograd op, scaled by an incoming gradient that is not 1 (per token for reduction none).
  {
    at::Generator gen = at::detail::createCPUGenerator(in.seed + 1);
    const at::Tensor go = (at::rand(ref.sizes(), gen, at::TensorOptions().dtype(at::kDouble)) + 0.5);
    at::Tensor la = x.logits.detach().clone().requires_grad_(true);
    const at::Tensor l = dpsm_loss(la, x.targets, x.step, options);
    const at::Tensor g = torch::autograd::grad({l}, {la}, {go.to(l.scalar_type()).to(l.device())})[0];
    const at::Tensor ref_g = torch::autograd::grad({ref}, {ld}, {go})[0];
    r.autograd_grad_rel_err = norm_rel(g.cpu(), ref_g);
    r.finite = r.finite && all_finite(g);
  }

  // Statistics against the same reference probabilities (rows that are not ignored).
  at::NoGradGuard no_grad;
  const at::Tensor keep = targets != options.ignore_index;
  const at::Tensor kept_rows = keep.nonzero().squeeze(1);
  if (kept_rows.numel() > 0) {
    const at::Tensor log_p = at::log_softmax(ld.detach(), -1).index_select(0, kept_rows);
    const at::Tensor p = log_p.exp();
    const at::Tensor y = targets.index_select(0, kept_rows).unsqueeze(1);
    const at::Tensor st = f.stats.cpu().index_select(0, kept_rows).to(at::kDouble);
    const at::Tensor ref_stats[kStatCount] = {
        -log_p.gather(1, y).squeeze(1),
        p.gather(1, y).squeeze(1),
        std::get<0>(p.max(1)),
        (p.argmax(1) == y.squeeze(1)).to(at::kDouble),
        (p * p).sum(1),
    };
    for (int k = 0; k < kStatCount; ++k) r.stats_rel_err[k] = norm_rel(st.select(1, k), ref_stats[k]);
    r.hit_mismatches = (st.select(1, kStatHit) != ref_stats[kStatHit]).sum().item<int64_t>();
  }
  return r;
}

Timing time_loss(const ProbeInputs& in, const LossOptions& options, const std::string& path, bool backward, int iters,
                 int warmup) {
  if (path != "fused" && path != "fused-inplace" && path != "kernel" && path != "composite")
    throw std::invalid_argument("path: expected 'fused', 'fused-inplace', 'kernel' or 'composite', got '" + path + "'");
  const at::Device device = platform::parse_device(in.device);
  // On a GPU the timed inputs are drawn there: the CPU's generator takes seconds for 8,192 × 50,304 logits, and a
  // timing needs random values (never zeros), not the reference cases' exact ones.
  const Inputs x = device.is_cuda() ? device_inputs(in, options, device) : make_inputs(in, options, 0);
  const double alpha = alpha_at(options.spec, 0);
  // In place, the gradient overwrites the logits: each pass starts from a fresh copy of them, made before the clock
  // starts (as a training step's logits are freshly written by the head's matmul).
  const bool inplace = path == "fused-inplace";
  at::Tensor logits = x.logits.detach().clone().requires_grad_(backward && path != "kernel");

  auto prepare = [&]() {
    logits.mutable_grad() = at::Tensor();
    if (inplace) {
      at::NoGradGuard no_grad;
      logits.copy_(x.logits);
      sync(device);
    }
  };
  // The kernel alone (fused_loss: loss and, with backward, the gradient in one launch, no autograd) beside the
  // autograd op that models call (dpsm_loss, then its backward).
  const bool kernel = path == "kernel";
  FusedRequest request;
  request.grad = backward;
  auto run_once = [&]() {
    if (kernel) {
      at::NoGradGuard no_grad;
      (void)fused_loss(logits, x.targets, x.step, options, request);
      sync(device);
      return;
    }
    at::Tensor loss = path == "composite"
                          ? composite_loss(logits, x.targets, alpha, options.spec.kind, options.ignore_index,
                                           options.reduction, options.spec.smoothing)
                          : dpsm_loss(logits, x.targets, x.step, options, inplace && backward);
    if (backward) loss.backward();
    sync(device);
  };

  Timing t;
  for (int i = 0; i < warmup; ++i) {
    prepare();
    run_once();
  }

  // Peak memory of one iteration, beyond what is already held (the logits) and the gradient it returns (none
  // beyond the logits when it is written in place).
  const int64_t grad_bytes = backward && !inplace ? logits.numel() * logits.element_size() : 0;
  prepare();
  if (device.is_cuda()) {
#if defined(DPSM_WITH_CUDA)
    const int64_t before = platform::cuda_allocated(device.index());
    platform::cuda_reset_peak(device.index());
    run_once();
    t.extra_peak_bytes = platform::cuda_peak_allocated(device.index()) - before - grad_bytes;
#endif
  } else if (platform::reset_cpu_peak()) {
    const int64_t before = platform::proc_memory_bytes("VmRSS");
    run_once();
    t.extra_peak_bytes = platform::proc_memory_bytes("VmHWM") - before - grad_bytes;
  } else {
    t.extra_peak_bytes = -1;  // no way to read a peak on this system
  }

  for (int i = 0; i < iters; ++i) {
    prepare();
    const auto t0 = std::chrono::steady_clock::now();
    run_once();
    const auto t1 = std::chrono::steady_clock::now();
    t.ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  return t;
}

double copy_bandwidth(const std::string& device_name, int64_t bytes, int iters) {
  const at::Device device = platform::parse_device(device_name);
  const int64_t n = std::max<int64_t>(bytes / 4, 1);
  // Random values (never zeros: a copy of zeros can run faster than one of real data), written once before
  // timing so that no page fault of a fresh buffer is counted.
  const at::Tensor src = at::rand({n}, at::TensorOptions().dtype(at::kFloat)).to(device);
  at::Tensor dst = at::empty_like(src);
  dst.copy_(src);
  sync(device);
  std::vector<double> seconds;
  for (int i = 0; i < iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    dst.copy_(src);
    sync(device);
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(seconds.begin(), seconds.end());
  // Bytes read plus bytes written, over the median pass.
  return 2.0 * static_cast<double>(n) * 4.0 / seconds[seconds.size() / 2];
}

}  // namespace dpsm::core
