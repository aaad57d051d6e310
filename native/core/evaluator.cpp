#include "evaluator.h"

#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>
#include <stdexcept>

#include "compat.h"
#include "loss.h"

namespace dpsm::core {

std::pair<at::Tensor, at::Tensor> lm_batch(const Sequences& data, const at::Tensor& rows, int64_t ignore_index,
                                           const at::Device& device) {
  const at::Tensor seq = data.tokens.index_select(0, rows);
  const int64_t L = seq.size(1);
  at::Tensor x = seq.narrow(1, 0, L - 1);
  at::Tensor y = seq.narrow(1, 1, L - 1).clone();
  // Target j of a row predicts token j + 1: past the row's real length there is nothing to predict.
  const at::Tensor positions = at::arange(1, L, at::TensorOptions().dtype(at::kLong)).unsqueeze(0);
  const at::Tensor pad = positions >= data.lengths.index_select(0, rows).unsqueeze(1);
  y.masked_fill_(pad, ignore_index);
  return {x.to(device), y.to(device)};
}

void EvalSums::add(const at::Tensor& stats, const at::Tensor& keep) {
  const float* s = stats.data_ptr<float>();
  const bool* k = keep.data_ptr<bool>();
  const int64_t n = stats.size(0);
  for (int64_t i = 0; i < n; ++i, s += kStatCount) {
    if (!k[i]) continue;
    const double py = s[kStatPy], q = s[kStatSqNorm], conf = s[kStatMaxP], hit = s[kStatHit];
    tokens += 1;
    nll += s[kStatNll];
    hits += hit;
    brier += 1.0 - 2.0 * py + q;
    spherical += py / std::sqrt(q);
    for (ReliabilityBins* b : {&bins10, &bins100}) {
      const int nb = static_cast<int>(b->count.size());
      const int idx = std::min(nb - 1, std::max(0, static_cast<int>(std::floor(conf * nb))));
      b->count[idx] += 1;
      b->confidence_sum[idx] += conf;
      b->hit_sum[idx] += hit;
    }
  }
}

double EvalSums::ece(const ReliabilityBins& b) const {
  if (tokens <= 0) return 0.0;
  double e = 0;
  for (size_t i = 0; i < b.count.size(); ++i)
    if (b.count[i] > 0) e += std::fabs(b.hit_sum[i] - b.confidence_sum[i]) / tokens;
  return e;
}

std::vector<EvalResult> evaluate(GPT2& model, const Sequences& data, const EvalOptions& options) {
  if (options.temperatures.empty()) throw std::invalid_argument("temperatures: expected at least one");
  for (double t : options.temperatures)
    if (!(t > 0) || !std::isfinite(t)) throw std::invalid_argument("temperature: expected a finite number > 0");
  const bool was_training = model->is_training();
  model->eval();
  at::NoGradGuard no_grad;
  const at::Device device = model->parameters().front().device();
  const int64_t total = options.max_sequences > 0 ? std::min(options.max_sequences, data.count()) : data.count();
  std::vector<EvalResult> results(options.temperatures.size());
  for (size_t i = 0; i < results.size(); ++i) results[i].temperature = options.temperatures[i];

  LossOptions lo;
  lo.spec.kind = Kind::CE;
  const at::Tensor step = at::zeros({}, at::TensorOptions().dtype(at::kLong).device(device));
  FusedRequest req;
  req.grad = false;
  req.stats = true;
  for (int64_t begin = 0; begin < total; begin += options.batch_size) {
    const int64_t n = std::min(options.batch_size, total - begin);
    const at::Tensor rows = at::arange(begin, begin + n, at::TensorOptions().dtype(at::kLong));
    auto [x, y] = lm_batch(data, rows, lo.ignore_index, device);
    at::Tensor logits;
    {
      compat::AutocastBF16 autocast(options.autocast_bf16, device);
      logits = model->logits(model->hidden(x));
    }
    logits = logits.reshape({-1, logits.size(-1)});
    const at::Tensor targets = y.reshape({-1});
    const at::Tensor keep = (targets != lo.ignore_index).cpu();
    for (EvalResult& r : results) {
      const at::Tensor scaled = r.temperature == 1.0 ? logits : logits.to(at::kFloat) / r.temperature;
      const FusedOutputs out = fused_loss(scaled, targets, step, lo, req);
      r.sums.add(out.stats.cpu().contiguous(), keep);
    }
    if (options.progress) options.progress(begin + n, total);
  }
  if (was_training) model->train();
  return results;
}

std::pair<double, std::vector<EvalResult>> fit_temperature(GPT2& model, const Sequences& data, EvalOptions options,
                                                           double t_min, double t_max, int points) {
  if (!(t_min > 0) || !(t_max > t_min) || points < 3)
    throw std::invalid_argument("temperature grid: expected 0 < min < max and at least 3 points");
  options.temperatures.clear();
  for (int i = 0; i < points; ++i)
    options.temperatures.push_back(t_min * std::pow(t_max / t_min, static_cast<double>(i) / (points - 1)));
  std::vector<EvalResult> grid = evaluate(model, data, options);
  size_t best = 0;
  for (size_t i = 1; i < grid.size(); ++i)
    if (grid[i].nll() < grid[best].nll()) best = i;
  double t_star = grid[best].temperature;
  if (best > 0 && best + 1 < grid.size()) {
    // Vertex of the parabola through the three points, in log T (the grid is uniform there).
    const double a = grid[best - 1].nll(), b = grid[best].nll(), c = grid[best + 1].nll();
    const double denom = a - 2 * b + c;
    if (denom > 0) {
      const double h = std::log(grid[best + 1].temperature / grid[best].temperature);
      t_star = grid[best].temperature * std::exp(0.5 * h * (a - c) / denom);
    }
  }
  return {t_star, grid};
}

}  // namespace dpsm::core
