#include "fused_loss.h"

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <sys/mman.h>

#include <cstdlib>
#include <sstream>
#include <stdexcept>

#include "../../kernels/dpsm_kernels.h"
#include "../platform.h"

namespace dpsm::core {
namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument(msg); }

DType kernel_dtype(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat: return DType::F32;
    case at::kBFloat16: return DType::BF16;
    case at::kHalf: return DType::F16;
    default: fail(std::string("logits: expected float32, bfloat16 or float16, got ") + c10::toString(t.scalar_type()));
  }
}

// The N×V gradient on the CPU: first-touch page faults of a fresh 4 KiB-paged buffer cost more than the
// kernel that fills it (411 MB at 2,048×50,257 fp32: ~0.3 s of faults vs ~0.05 s of kernel on 2 cores).
// Large buffers therefore come 2 MiB-aligned and advised for transparent huge pages.
at::Tensor empty_cpu_gradient(int64_t rows, int64_t cols, const at::TensorOptions& options) {
  constexpr size_t kHuge = size_t(2) << 20;
  const size_t bytes = static_cast<size_t>(rows) * static_cast<size_t>(cols) * options.dtype().itemsize();
  if (bytes < 16 * kHuge) return at::empty({rows, cols}, options);
  const size_t padded = (bytes + kHuge - 1) / kHuge * kHuge;
  void* p = std::aligned_alloc(kHuge, padded);
  if (p == nullptr) return at::empty({rows, cols}, options);
  madvise(p, padded, MADV_HUGEPAGE);  // advice only: without THP this is a plain allocation
  return at::from_blob(
      p, {rows, cols}, [](void* q) { std::free(q); }, options);
}

std::string target_error(int64_t vocab, int64_t ignore_index) {
  return "targets: expected class indices in [0, " + std::to_string(vocab) + ") or ignoreIndex " +
         std::to_string(ignore_index);
}

}  // namespace

void throw_if_target_flagged(const at::Tensor& error_flag, int64_t vocab, int64_t ignore_index) {
  if (error_flag.defined() && error_flag.item<int32_t>() != 0)
    fail(target_error(vocab, ignore_index) + ", got a target outside that range");
}

const char* cpu_isa() { return cpu::isa_name(); }

FusedOutputs fused_loss(const at::Tensor& logits_in, const at::Tensor& targets_in, const at::Tensor& step,
                        const LossOptions& options, const FusedRequest& request) {
  // The spec's values (α in [0, 1], W > 0) are lib/'s schema's to check (lib/config.ts); they only enter the
  // arithmetic. What is checked here is what memory safety needs: shapes, dtypes, devices, strides, targets.
  if (!logits_in.defined() || logits_in.dim() < 1) fail("logits: expected a tensor of shape [..., V]");
  const DType dtype = kernel_dtype(logits_in);
  const int64_t vocab = logits_in.size(-1);
  if (vocab < 1) fail("logits: the last dimension (V) must be at least 1");
  const int64_t n_rows = vocab == 0 ? 0 : logits_in.numel() / vocab;
  if (!targets_in.defined() || targets_in.numel() != n_rows) {
    std::ostringstream os;
    os << "targets: expected " << n_rows << " targets (one per row of logits), got "
       << (targets_in.defined() ? targets_in.numel() : 0);
    fail(os.str());
  }
  if (at::isFloatingType(targets_in.scalar_type()) || targets_in.scalar_type() == at::kBool)
    fail("targets: expected an integer tensor");
  if (targets_in.device() != logits_in.device()) fail("targets: expected a tensor on the logits' device");
  if (!step.defined() || step.numel() != 1 || step.scalar_type() != at::kLong || step.device() != logits_in.device())
    fail("step: expected a one-element int64 tensor on the logits' device");

  // Rows must be addressable as [N, V] with unit stride along V; anything else is copied (never in place).
  at::Tensor logits = logits_in.reshape({n_rows, vocab});
  if (logits.stride(1) != 1 || (n_rows > 1 && logits.stride(0) < vocab)) {
    if (request.grad_inplace) fail("logits: an in-place gradient needs rows with unit stride along V");
    logits = logits.contiguous();
  }
  if (request.grad_inplace && logits.data_ptr() != logits_in.data_ptr())
    fail("logits: an in-place gradient needs logits whose rows are a view of their storage");
  const at::Tensor targets = targets_in.reshape({n_rows}).to(at::kLong).contiguous();
  const bool cuda = logits.is_cuda();

  if (!cuda && n_rows > 0) {
    const at::Tensor bad = (targets != options.ignore_index) & ((targets < 0) | (targets >= vocab));
    if (bad.any().item<bool>()) {
      const int64_t at_row = bad.nonzero().min().item<int64_t>();
      fail(target_error(vocab, options.ignore_index) + ", got " + std::to_string(targets[at_row].item<int64_t>()) +
           " at position " + std::to_string(at_row));
    }
  }

  const auto f32 = logits.options().dtype(at::kFloat);
  FusedOutputs out;
  out.count = (targets != options.ignore_index).sum();
  out.alpha = at::zeros({}, f32);
  out.error_flag = request.error_flag.defined() ? request.error_flag : at::zeros({}, logits.options().dtype(at::kInt));
  at::Tensor row_loss = at::empty({n_rows}, f32);
  at::Tensor grad_scale;
  if (options.reduction == Reduction::Mean) grad_scale = out.count.clamp_min(1).to(at::kFloat).reciprocal();
  if (request.stats) out.stats = at::empty({n_rows, kStatCount}, f32);
  at::Tensor grad2d;
  if (request.grad) {
    if (request.grad_inplace) {
      grad2d = logits;
    } else if (request.grad_into.defined()) {
      const at::Tensor& g = request.grad_into;
      if (g.numel() != logits.numel() || g.scalar_type() != logits.scalar_type() || g.device() != logits.device())
        fail("grad: expected a destination with the logits' size, dtype and device");
      grad2d = g.view({n_rows, vocab});
      if (grad2d.stride(1) != 1) fail("grad: expected a destination with rows of unit stride");
    } else if (cuda) {
      grad2d = at::empty({n_rows, vocab}, logits.options());
    } else {
      grad2d = empty_cpu_gradient(n_rows, vocab, logits.options());
    }
  }

  FusedArgs args;
  args.logits = logits.data_ptr();
  args.dtype = dtype;
  args.n_rows = n_rows;
  args.vocab = vocab;
  args.row_stride = n_rows > 1 ? logits.stride(0) : vocab;
  args.targets = targets.data_ptr<int64_t>();
  args.ignore_index = options.ignore_index;
  args.spec = options.spec;
  args.step = step.data_ptr<int64_t>();
  args.grad_scale = grad_scale.defined() ? grad_scale.data_ptr<float>() : nullptr;
  args.row_loss = row_loss.data_ptr<float>();
  args.stats = request.stats ? out.stats.data_ptr<float>() : nullptr;
  args.grad = request.grad ? grad2d.data_ptr() : nullptr;
  args.grad_stride = request.grad ? (n_rows > 1 ? grad2d.stride(0) : vocab) : 0;
  args.alpha_out = out.alpha.data_ptr<float>();
  args.bad_target = out.error_flag.data_ptr<int32_t>();

  if (cuda) {
#if defined(DPSM_WITH_CUDA)
    const int err = cuda::launch_fused(args, platform::current_cuda_stream(logits.device()));
    if (err != 0) throw std::runtime_error("dpsm: CUDA kernel launch failed (cudaError " + std::to_string(err) + ")");
#else
    fail("logits: this build of dpsm-native has no CUDA kernels (rebuild with `npm run build:cuda`)");
#endif
  } else if (n_rows > 0) {
    // Enough work per task that the split pays for itself on short rows.
    const int64_t grain = std::max<int64_t>(1, 16384 / vocab);
    at::parallel_for(0, n_rows, grain, [&](int64_t begin, int64_t end) { cpu::fused_rows(args, begin, end); });
  } else {
    out.alpha.fill_(alpha_at(options.spec, step.item<int64_t>()));
  }

  switch (options.reduction) {
    case Reduction::None: out.loss = row_loss.reshape(targets_in.sizes()); break;
    case Reduction::Sum: out.loss = row_loss.sum(at::kDouble).to(at::kFloat); break;
    case Reduction::Mean: out.loss = (row_loss.sum(at::kDouble) / out.count.clamp_min(1)).to(at::kFloat); break;
  }
  if (request.grad) out.grad = grad2d.view(logits_in.sizes());
  return out;
}

namespace {

class DPSMLossFunction : public torch::autograd::Function<DPSMLossFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& logits, const at::Tensor& targets,
                            const at::Tensor& step, const LossOptions& options, bool inplace_grad,
                            const at::Tensor& error_flag, at::Tensor* stats) {
    FusedRequest req;
    req.error_flag = error_flag;
    req.grad = logits.requires_grad();
    req.grad_inplace = inplace_grad && req.grad;
    req.stats = stats != nullptr;
    FusedOutputs out = fused_loss(logits, targets, step, options, req);
    if (stats) *stats = out.stats;
    if (req.grad) ctx->saved_data["grad"] = out.grad;
    ctx->saved_data["per_token"] = options.reduction == Reduction::None;
    return out.loss;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    at::Tensor grad = ctx->saved_data["grad"].toTensor();
    ctx->saved_data.erase("grad");
    const at::Tensor& go = grad_outputs[0];
    const bool per_token = ctx->saved_data["per_token"].toBool();
    if (go.is_cuda()) {
#if defined(DPSM_WITH_CUDA)
      // The factor is read on the device (reading it here would sync): rows whose factor is 1 — every row in the
      // training step, where d loss / d loss = 1 — are left as they are, with no N×V pass.
      const int64_t vocab = grad.size(-1);
      const at::Tensor grad2d = grad.view({-1, vocab});
      const at::Tensor factor = go.to(at::kFloat).reshape({-1}).contiguous();
      ScaleArgs args;
      args.grad = grad2d.data_ptr();
      args.dtype = kernel_dtype(grad2d);
      args.n_rows = grad2d.size(0);
      args.vocab = vocab;
      args.grad_stride = grad2d.size(0) > 1 ? grad2d.stride(0) : vocab;
      args.go = factor.data_ptr<float>();
      args.go_stride = per_token ? 1 : 0;
      const int err = cuda::launch_scale(args, platform::current_cuda_stream(grad.device()));
      if (err != 0) throw std::runtime_error("dpsm: CUDA kernel launch failed (cudaError " + std::to_string(err) + ")");
#else
      grad.mul_(per_token ? go.unsqueeze(-1) : go);
#endif
    } else if (per_token) {
      grad.mul_(go.unsqueeze(-1));
    } else if (go.item<double>() != 1.0) {
      grad.mul_(go);  // on the CPU the common case (d loss / d loss = 1) costs nothing
    }
    return {grad, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor dpsm_loss(const at::Tensor& logits, const at::Tensor& targets, const at::Tensor& step,
                     const LossOptions& options, bool inplace_grad, const at::Tensor& error_flag, at::Tensor* stats) {
  // autograd's apply cannot take an undefined tensor: a flag nobody reads is a fresh zero.
  const at::Tensor flag =
      error_flag.defined() ? error_flag : at::zeros({}, at::TensorOptions().dtype(at::kInt).device(logits.device()));
  return DPSMLossFunction::apply(logits, targets, step, options, inplace_grad, flag, stats);
}

at::Tensor composite_loss(const at::Tensor& logits_in, const at::Tensor& targets_in, double alpha, Kind kind,
                          int64_t ignore_index, Reduction reduction, double smoothing) {
  const int64_t vocab = logits_in.size(-1);
  const at::Tensor logits = logits_in.reshape({-1, vocab});
  const at::Tensor targets = targets_in.reshape({-1}).to(at::kLong);
  const at::Tensor keep = targets != ignore_index;
  const at::Tensor safe = at::where(keep, targets, at::zeros_like(targets));

  const at::Tensor log_p = at::log_softmax(logits, -1);
  const at::Tensor p = log_p.exp();
  at::Tensor per_token;
  if (kind == Kind::Spherical) {
    const at::Tensor p_y = p.gather(1, safe.unsqueeze(1)).squeeze(1);
    per_token = -p_y / p.norm(2, {1});
  } else if (smoothing > 0.0) {
    // The expected scores under the smoothed target q: CE −Σ q log p; Brier Σ_j q_j‖p − e_j‖², by the
    // bias–variance identity E_j‖p − e_j‖² = ‖p − q‖² + E_j‖e_j − q‖² = ‖p − q‖² + 1 − ‖q‖².
    const at::Tensor q =
        at::one_hot(safe, vocab).to(p.scalar_type()) * (1.0 - smoothing) + smoothing / static_cast<double>(vocab);
    const at::Tensor ce = -(q * log_p).sum(-1);
    const at::Tensor brier = (p - q).pow(2).sum(-1) + 1.0 - q.pow(2).sum(-1);
    per_token = (1.0 - alpha) * ce + alpha * brier;
  } else {
    const at::Tensor ce = at::nll_loss(log_p, safe, {}, at::Reduction::None);
    const at::Tensor one_hot = at::one_hot(safe, vocab).to(p.scalar_type());
    const at::Tensor brier = (p - one_hot).pow(2).sum(-1);
    per_token = (1.0 - alpha) * ce + alpha * brier;
  }
  per_token = per_token * keep.to(per_token.scalar_type());
  switch (reduction) {
    case Reduction::None: return per_token.reshape(targets_in.sizes());
    case Reduction::Sum: return per_token.sum();
    case Reduction::Mean: break;
  }
  return per_token.sum() / keep.sum().clamp_min(1).to(per_token.scalar_type());
}

}  // namespace dpsm::core
