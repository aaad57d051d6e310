#include "fused_linear_loss.h"

#include <ATen/record_function.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>

#include "../platform.h"

namespace dpsm::core {
namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument(msg); }

void check_head(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& bias, const at::Tensor& targets) {
  if (!weight.defined() || weight.dim() != 2) fail("weight: expected a tensor of shape [V, d]");
  if (!hidden.defined() || hidden.dim() < 1 || hidden.size(-1) != weight.size(1))
    fail("hidden: expected a tensor of shape [..., " + std::to_string(weight.size(1)) + "]");
  if (bias.defined() && bias.numel() != 0 && bias.numel() != weight.size(0))
    fail("bias: expected " + std::to_string(weight.size(0)) + " values (one per row of weight) or none");
  const int64_t rows = hidden.numel() / hidden.size(-1);
  if (!targets.defined() || targets.numel() != rows)
    fail("targets: expected " + std::to_string(rows) + " targets (one per row of hidden)");
}

// Rows per chunk: as many as keep one chunk's logits within the byte budget (and within 2^31 values, the
// kernel's in-row indexing), at least one.
int64_t chunk_rows(int64_t vocab, at::ScalarType dtype, int64_t chunk_bytes) {
  const int64_t rows = chunk_bytes / (vocab * static_cast<int64_t>(c10::elementSize(dtype)));
  return std::clamp<int64_t>(rows, 1, std::numeric_limits<int32_t>::max() / vocab);
}

// The chunk budget of kAutoChunkBytes: kLinearLossChunkBytes on the CPU (where a chunk's logits stay in cache
// longer the smaller it is); on CUDA a quarter of what the device can still allocate when the head first runs
// there (activations live), so an 80 GB GPU takes a GPT-2 batch's logits in one or two chunks, and each chunk
// is a matrix product large enough to fill the GPU. Taken once per device, so every step chunks alike.
int64_t chunk_budget(const at::Device& device) {
#if defined(DPSM_WITH_CUDA)
  if (device.is_cuda()) {
    static std::mutex mutex;
    static std::map<int, int64_t> budgets;
    std::lock_guard<std::mutex> lock(mutex);
    const int index = device.has_index() ? device.index() : static_cast<int>(c10::cuda::current_device());
    auto it = budgets.find(index);
    if (it == budgets.end())
      it = budgets.emplace(index, std::max(kLinearLossChunkBytes, platform::cuda_free_bytes(index) / 4)).first;
    return it->second;
  }
#else
  (void)device;
#endif
  return kLinearLossChunkBytes;
}

// One chunk's logits in the compute dtype, a fresh tensor the fused kernel may overwrite with its gradient.
at::Tensor chunk_logits(const at::Tensor& h, const at::Tensor& w, const at::Tensor& b) {
  return b.defined() ? at::addmm(b, h, w.t()) : at::mm(h, w.t());
}

struct Pass {
  // grad_*: the gradients of the summed loss, to be multiplied by grad_scale (1/count for a mean; undefined for
  // a sum) and the incoming gradient in backward.
  at::Tensor loss, grad_hidden, grad_weight, grad_bias, stats, grad_scale;
};

// The whole forward (and, where asked, the gradients of the loss itself) of hidden [N, d] against targets [N].
Pass linear_loss_pass(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& bias,
                      const at::Tensor& targets, const at::Tensor& step, const LinearLossOptions& options,
                      const at::Tensor& error_flag, bool grad_h, bool grad_w, bool grad_b, bool want_stats) {
  const at::ScalarType ct = options.compute_dtype;
  const int64_t n = hidden.size(0), vocab = weight.size(0);
  const at::Tensor w = weight.to(ct);
  const at::Tensor b = bias.defined() && bias.numel() > 0 ? bias.reshape({vocab}).to(ct) : at::Tensor();
  const bool any_grad = grad_h || grad_w || grad_b;
  const auto f32 = hidden.options().dtype(at::kFloat);

  // The chunks are summed; the mean's 1/count is applied once at the end, from a count taken up front.
  LossOptions per_chunk = options.loss;
  per_chunk.reduction = Reduction::Sum;
  FusedRequest req;
  req.grad = any_grad;
  req.grad_inplace = true;
  req.stats = want_stats;
  req.error_flag = error_flag;

  Pass p;
  at::Tensor loss_sum = at::zeros({}, hidden.options().dtype(at::kDouble));
  if (grad_h) p.grad_hidden = at::empty({n, hidden.size(1)}, hidden.options());
  // fp32 accumulators: a bf16 ∂weight summed over chunks would lose the later chunks' small contributions.
  if (grad_w) p.grad_weight = at::zeros(weight.sizes(), f32);
  if (grad_b) p.grad_bias = at::zeros({vocab}, f32);
  if (want_stats) p.stats = at::empty({n, kStatCount}, f32);

  const int64_t budget = options.chunk_bytes == kAutoChunkBytes ? chunk_budget(hidden.device()) : options.chunk_bytes;
  const int64_t rows = chunk_rows(vocab, ct, budget);
  for (int64_t start = 0; start < n; start += rows) {
    // Named for the roofline benchmark (bench/step-roofline.ts): what a chunk costs beside its rows' share.
    RECORD_USER_SCOPE("dpsm::head_chunk");
    const int64_t len = std::min(rows, n - start);
    const at::Tensor h = hidden.narrow(0, start, len).to(ct);
    at::Tensor logits = chunk_logits(h, w, b);
    const at::Tensor chunk_targets = targets.narrow(0, start, len);
    // The kernel call named in the op list, with its logits, for the step's roofline (bench/step-roofline.ts).
    std::optional<FusedOutputs> result;
    [&] {
      RECORD_FUNCTION("dpsm::fused_loss", std::vector<c10::IValue>({logits, chunk_targets}));
      result.emplace(fused_loss(logits, chunk_targets, step, per_chunk, req));
    }();
    const FusedOutputs& out = *result;
    loss_sum.add_(out.loss);
    if (want_stats) p.stats.narrow(0, start, len).copy_(out.stats);
    if (!any_grad) continue;
    const at::Tensor& g = out.grad;  // the chunk's logits, now d(sum of losses)/d(logits)
    if (grad_h) {
      at::Tensor rows_out = p.grad_hidden.narrow(0, start, len);  // contiguous: whole rows of a fresh tensor
      if (rows_out.scalar_type() == ct)
        at::mm_out(rows_out, g, w);
      else
        rows_out.copy_(at::mm(g, w));
    }
    if (grad_w) {
      if (ct == at::kFloat)
        p.grad_weight.addmm_(g.t(), h);
      else if (!platform::addmm_fp32_accumulate(p.grad_weight, g.t(), h))
        p.grad_weight.add_(at::mm(g.t(), h));  // the CPU and older libtorch: a 16-bit product per chunk
    }
    if (grad_b) p.grad_bias.add_(g.sum(0, /*keepdim=*/false, at::kFloat));
  }

  if (options.loss.reduction == Reduction::Mean) {
    const at::Tensor count = (targets != options.loss.ignore_index).sum().clamp_min(1);
    p.loss = (loss_sum / count).to(at::kFloat);
    if (any_grad) p.grad_scale = count.to(at::kFloat).reciprocal();
  } else {
    p.loss = loss_sum.to(at::kFloat);
  }
  return p;
}

class FusedLinearLossFunction : public torch::autograd::Function<FusedLinearLossFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& hidden, const at::Tensor& weight,
                            const at::Tensor& bias, const at::Tensor& targets, const at::Tensor& step,
                            const LinearLossOptions& options, const at::Tensor& error_flag, at::Tensor* stats) {
    const int64_t d = hidden.size(-1);
    const bool has_bias = bias.numel() > 0;
    const bool gh = hidden.requires_grad(), gw = weight.requires_grad(), gb = has_bias && bias.requires_grad();
    Pass p = linear_loss_pass(hidden.reshape({-1, d}), weight, has_bias ? bias : at::Tensor(), targets.reshape({-1}),
                              step, options, error_flag, gh, gw, gb, stats != nullptr);
    if (stats) *stats = p.stats;
    if (gh) ctx->saved_data["grad_hidden"] = p.grad_hidden.view(hidden.sizes());
    if (gw) ctx->saved_data["grad_weight"] = p.grad_weight;
    if (gb) ctx->saved_data["grad_bias"] = p.grad_bias;
    if (p.grad_scale.defined()) ctx->saved_data["grad_scale"] = p.grad_scale;
    ctx->saved_data["weight_dtype"] = static_cast<int64_t>(weight.scalar_type());
    ctx->saved_data["bias_dtype"] = static_cast<int64_t>(bias.scalar_type());
    ctx->saved_data["bias_sizes"] = bias.sizes().vec();
    return p.loss;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    // The mean's 1/count and the incoming gradient in one factor on the device, applied in the one pass a mean
    // needs anyway: no host read of the incoming gradient (on a device, a synchronisation).
    const auto found = ctx->saved_data.find("grad_scale");
    const at::Tensor go = grad_outputs[0].to(at::kFloat);
    const at::Tensor factor = found == ctx->saved_data.end() ? go : found->second.toTensor() * go;
    const auto dtype = [&](const char* key) { return static_cast<at::ScalarType>(ctx->saved_data[key].toInt()); };
    torch::autograd::variable_list grads(8);
    const char* names[3] = {"grad_hidden", "grad_weight", "grad_bias"};
    for (int i = 0; i < 3; ++i) {
      const auto it = ctx->saved_data.find(names[i]);
      if (it == ctx->saved_data.end()) continue;  // that input needs no gradient
      at::Tensor g = it->second.toTensor();
      ctx->saved_data.erase(it);
      g.mul_(factor.to(g.scalar_type()));
      // ∂weight and ∂bias were accumulated in fp32: to the parameters' dtype after scaling (no-ops for fp32).
      if (i == 1) g = g.to(dtype("weight_dtype"));
      if (i == 2) g = g.to(dtype("bias_dtype")).view(ctx->saved_data["bias_sizes"].toIntVector());
      grads[static_cast<size_t>(i)] = g;
    }
    return grads;
  }
};

}  // namespace

at::Tensor fused_linear_loss(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& bias,
                             const at::Tensor& targets, const at::Tensor& step, const LinearLossOptions& options,
                             const at::Tensor& error_flag, at::Tensor* stats) {
  check_head(hidden, weight, bias, targets);
  if (options.loss.reduction == Reduction::None)
    fail("reduction: the fused LM head takes mean or sum (a per-token loss needs the unfused head)");
  // autograd's apply cannot take an undefined tensor: "no bias" and "no flag" are fresh placeholders.
  const auto on = at::TensorOptions().device(hidden.device());
  const at::Tensor b = bias.defined() ? bias : at::empty({0}, on.dtype(weight.scalar_type()));
  const at::Tensor flag = error_flag.defined() ? error_flag : at::zeros({}, on.dtype(at::kInt));
  return FusedLinearLossFunction::apply(hidden, weight, b, targets, step, options, flag, stats);
}

std::vector<at::Tensor> linear_head_stats(const at::Tensor& hidden_in, const at::Tensor& weight, const at::Tensor& bias,
                                          const at::Tensor& targets_in, const std::vector<double>& temperatures,
                                          int64_t ignore_index, at::ScalarType compute_dtype,
                                          const at::Tensor& error_flag, int64_t chunk_bytes) {
  check_head(hidden_in, weight, bias, targets_in);
  at::NoGradGuard no_grad;
  const at::Tensor hidden = hidden_in.reshape({-1, hidden_in.size(-1)});
  const at::Tensor targets = targets_in.reshape({-1});
  const int64_t n = hidden.size(0), vocab = weight.size(0);
  const at::Tensor w = weight.to(compute_dtype);
  const at::Tensor b = bias.defined() && bias.numel() > 0 ? bias.reshape({vocab}).to(compute_dtype) : at::Tensor();
  LossOptions lo;
  lo.spec.kind = Kind::CE;
  lo.ignore_index = ignore_index;
  const at::Tensor step = at::zeros({}, hidden.options().dtype(at::kLong));
  FusedRequest req;
  req.grad = false;
  req.stats = true;
  req.error_flag = error_flag;
  std::vector<at::Tensor> out;
  for (size_t i = 0; i < temperatures.size(); ++i)
    out.push_back(at::empty({n, kStatCount}, hidden.options().dtype(at::kFloat)));
  const int64_t rows = chunk_rows(vocab, compute_dtype, chunk_bytes);
  for (int64_t start = 0; start < n; start += rows) {
    const int64_t len = std::min(rows, n - start);
    const at::Tensor logits = chunk_logits(hidden.narrow(0, start, len).to(compute_dtype), w, b);
    const at::Tensor t_rows = targets.narrow(0, start, len);
    for (size_t i = 0; i < temperatures.size(); ++i) {
      // As the unfused evaluator: the logits as they are at T = 1, else divided in fp32.
      const double t = temperatures[i];
      const at::Tensor scaled = t == 1.0 ? logits : logits.to(at::kFloat) / t;
      out[i].narrow(0, start, len).copy_(fused_loss(scaled, t_rows, step, lo, req).stats);
    }
  }
  return out;
}

}  // namespace dpsm::core
