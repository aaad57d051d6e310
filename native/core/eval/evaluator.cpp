#include "evaluator.h"

#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>

#include "../loss/fused_linear_loss.h"
#include "../loss/fused_loss.h"
#include "../platform.h"

namespace dpsm::core {
namespace {

std::vector<EvalSums> evaluate_sums(LanguageModel& model, const Dataset& data, const EvalOptions& options,
                                    bool keep_tokens) {
  const bool was_training = model.is_training();
  model.eval();
  at::NoGradGuard no_grad;
  const at::Device device = model.device();
  const int64_t total = options.max_sequences > 0 ? std::min(options.max_sequences, data.count()) : data.count();
  std::vector<EvalSums> sums(options.temperatures.size(), EvalSums(keep_tokens));

  LossOptions lo;
  lo.spec.kind = Kind::CE;
  const at::Tensor step = at::zeros({}, at::TensorOptions().dtype(at::kLong).device(device));
  FusedRequest req;
  req.grad = false;
  req.stats = true;
  for (int64_t begin = 0; begin < total; begin += options.batch_size) {
    const int64_t n = std::min(options.batch_size, total - begin);
    const at::Tensor rows = at::arange(begin, begin + n, at::TensorOptions().dtype(at::kLong));
    const Batch b = data.batch(rows, lo.ignore_index, device);
    const LanguageModel::OutputHead head = model.output_head();
    const at::Tensor targets = b.targets.reshape({-1});
    const at::Tensor keep = (targets != lo.ignore_index).cpu();
    if (options.fused_head && head.weight.defined()) {
      at::Tensor hidden;
      {
        platform::AutocastBF16 autocast(options.bf16, device);
        hidden = model.hidden(b);
      }
      // The unfused head's matmul runs in bf16 under autocast: the chunks' logits take the same dtype.
      const at::ScalarType dtype = options.bf16 ? at::kBFloat16 : head.weight.scalar_type();
      const at::Tensor flag = at::zeros({}, at::TensorOptions().dtype(at::kInt).device(device));
      const std::vector<at::Tensor> stats = linear_head_stats(hidden, head.weight, head.bias, targets,
                                                              options.temperatures, lo.ignore_index, dtype, flag);
      for (size_t i = 0; i < sums.size(); ++i) {
        const at::Tensor s = stats[i].cpu().contiguous();  // synchronises: the flag costs nothing more
        throw_if_target_flagged(flag, head.weight.size(0), lo.ignore_index);
        sums[i].add(s, keep);
      }
      continue;
    }
    at::Tensor logits;
    {
      platform::AutocastBF16 autocast(options.bf16, device);
      logits = model.logits(model.hidden(b));
    }
    logits = logits.reshape({-1, logits.size(-1)});
    for (size_t i = 0; i < sums.size(); ++i) {
      const double t = options.temperatures[i];
      const at::Tensor scaled = t == 1.0 ? logits : logits.to(at::kFloat) / t;
      const FusedOutputs out = fused_loss(scaled, targets, step, lo, req);
      const at::Tensor stats = out.stats.cpu().contiguous();  // synchronises: the flag costs nothing more
      throw_if_target_flagged(out.error_flag, logits.size(-1), lo.ignore_index);
      sums[i].add(stats, keep);
    }
  }
  if (was_training) model.train();
  return sums;
}

}  // namespace

EvalOptions eval_options_from_json(const Json& j) {
  EvalOptions o;
  o.temperatures = field<std::vector<double>>(j, "temperatures");
  o.batch_size = field<int64_t>(j, "batchSize");
  o.max_sequences = field<int64_t>(j, "maxSequences");
  o.bf16 = field<bool>(j, "bf16");
  o.fused_head = field<bool>(j, "fusedHead");
  return o;
}

std::vector<EvalMetrics> evaluate(LanguageModel& model, const Dataset& data, const EvalOptions& options) {
  const std::vector<EvalSums> sums = evaluate_sums(model, data, options, true);
  std::vector<EvalMetrics> out;
  for (size_t i = 0; i < sums.size(); ++i) out.push_back(sums[i].finish(options.temperatures[i]));
  return out;
}

TemperatureFit fit_temperature(LanguageModel& model, const Dataset& data, EvalOptions options, double t_min,
                               double t_max, int points) {
  options.temperatures.clear();
  for (int i = 0; i < points; ++i)
    options.temperatures.push_back(t_min * std::pow(t_max / t_min, static_cast<double>(i) / (points - 1)));
  const std::vector<EvalSums> sums = evaluate_sums(model, data, options, false);
  TemperatureFit fit;
  for (size_t i = 0; i < sums.size(); ++i) fit.grid.emplace_back(options.temperatures[i], sums[i].mean_nll());
  size_t best = 0;
  for (size_t i = 1; i < fit.grid.size(); ++i)
    if (fit.grid[i].second < fit.grid[best].second) best = i;
  fit.temperature = fit.grid[best].first;
  if (best > 0 && best + 1 < fit.grid.size()) {
    // Vertex of the parabola through the three points, in log T (the grid is uniform there).
    const double a = fit.grid[best - 1].second, b = fit.grid[best].second, c = fit.grid[best + 1].second;
    const double denom = a - 2 * b + c;
    if (denom > 0) {
      const double h = std::log(fit.grid[best + 1].first / fit.grid[best].first);
      fit.temperature = fit.grid[best].first * std::exp(0.5 * h * (a - c) / denom);
    }
  }
  return fit;
}

}  // namespace dpsm::core
