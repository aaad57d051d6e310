#include "metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "../../kernels/dpsm_math.h"

namespace dpsm::core {

void EvalSums::add(const at::Tensor& stats, const at::Tensor& keep) {
  const float* s = stats.data_ptr<float>();
  const bool* k = keep.data_ptr<bool>();
  const int64_t n = stats.size(0);
  for (int64_t i = 0; i < n; ++i, s += kStatCount) {
    if (!k[i]) continue;
    const double py = s[kStatPy], q = s[kStatSqNorm], conf = s[kStatMaxP], hit = s[kStatHit];
    tokens_ += 1;
    nll_ += s[kStatNll];
    hits_ += hit;
    brier_ += 1.0 - 2.0 * py + q;
    spherical_ += py / std::sqrt(q);
    for (Bins* b : {&bins10_, &bins100_}) {
      const int nb = static_cast<int>(b->count.size());
      const int idx = std::min(nb - 1, std::max(0, static_cast<int>(std::floor(conf * nb))));
      b->count[idx] += 1;
      b->confidence_sum[idx] += conf;
      b->hit_sum[idx] += hit;
    }
  }
}

EvalMetrics EvalSums::finish(double temperature) const {
  constexpr double nan = std::numeric_limits<double>::quiet_NaN();
  const double n = tokens_ > 0 ? tokens_ : nan;
  auto bins = [&](const Bins& b, double& ece) {
    const size_t nb = b.count.size();
    std::vector<ReliabilityBin> out(nb);
    ece = 0;
    for (size_t i = 0; i < nb; ++i) {
      out[i].lower = static_cast<double>(i) / nb;
      out[i].upper = static_cast<double>(i + 1) / nb;
      out[i].count = b.count[i];
      out[i].confidence = b.count[i] > 0 ? b.confidence_sum[i] / b.count[i] : nan;
      out[i].accuracy = b.count[i] > 0 ? b.hit_sum[i] / b.count[i] : nan;
      if (b.count[i] > 0 && tokens_ > 0) ece += std::fabs(b.hit_sum[i] - b.confidence_sum[i]) / tokens_;
    }
    return out;
  };
  EvalMetrics m;
  m.temperature = temperature;
  m.tokens = tokens_;
  m.nll = nll_ / n;
  m.ppl = std::exp(nll_ / n);
  m.accuracy = hits_ / n;
  m.brier = brier_ / n;
  m.spherical = spherical_ / n;
  m.bins10 = bins(bins10_, m.ece10);
  m.bins100 = bins(bins100_, m.ece100);
  return m;
}

}  // namespace dpsm::core
