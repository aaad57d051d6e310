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
      b->confidence_sq_sum[idx] += conf * conf;
      b->confidence_hit_sum[idx] += conf * hit;
    }
    if (keep_tokens_) {
      confidence_.push_back(s[kStatMaxP]);
      hit_.push_back(hit > 0.5 ? 1 : 0);
    }
  }
}

namespace {

// ECE over `nb` equal-mass bins: the tokens sorted by max p, bin b the ranks [⌊b·N/nb⌋, ⌊(b+1)·N/nb⌋), every
// token of a run of tied max p counting the run's mean hit. Ordering tied tokens by hit would let the labels pick
// the bins where a run crosses a cut (misses below, hits above: a skewed error), and fp32 gives many tokens a max
// p of exactly 1; the mean hit is random tie-breaking's expectation per bin, deterministic and still equal-mass,
// and a run inside one bin adds its hit count as before. As lib/metrics/calibration.ts's adaptiveCalibrationError.
double adaptive_ece(const std::vector<float>& confidence, const std::vector<uint8_t>& hit, int nb) {
  const size_t n = confidence.size();
  if (n == 0) return std::numeric_limits<double>::quiet_NaN();
  // A NaN max p (a diverged model) makes the sum NaN; std::sort needs a strict weak order, which NaN breaks.
  for (const float c : confidence)
    if (std::isnan(c)) return std::numeric_limits<double>::quiet_NaN();
  std::vector<uint32_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = static_cast<uint32_t>(i);
  // Tied tokens may come in any order: they all count the same.
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return confidence[a] < confidence[b]; });
  double ece = 0;
  size_t run_start = 0, run_end = 0;  // the tied run [run_start, run_end) of sorted ranks
  double run_hits = 0;
  for (int b = 0; b < nb; ++b) {
    const size_t to = n * static_cast<size_t>(b + 1) / nb;
    double conf = 0, hits = 0;
    for (size_t r = n * static_cast<size_t>(b) / nb; r < to;) {
      if (r == run_end) {
        const float c = confidence[order[r]];
        run_start = r;
        run_hits = hit[order[r]];
        for (run_end = r + 1; run_end < n && confidence[order[run_end]] == c; ++run_end)
          run_hits += hit[order[run_end]];
      }
      const size_t end = std::min(to, run_end);
      for (size_t i = r; i < end; ++i) conf += confidence[order[i]];
      // (k·h)/m: a whole run (k = m) adds exactly its hit count h.
      hits += static_cast<double>(end - r) * run_hits / static_cast<double>(run_end - run_start);
      r = end;
    }
    ece += std::fabs(hits - conf) / static_cast<double>(n);
  }
  return ece;
}

}  // namespace

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
  m.adaptive_ece10 = keep_tokens_ ? adaptive_ece(confidence_, hit_, 10) : nan;
  // The top-1 Brier score and its decomposition over ECE-10's bins (f: max p, o: hit, ō: accuracy).
  const Bins& b = bins10_;
  const double acc = hits_ / n;
  double f2 = 0, fo = 0, rel = 0, res = 0, wbv = 0, wbc = 0;
  for (size_t i = 0; i < b.count.size(); ++i) {
    f2 += b.confidence_sq_sum[i];
    fo += b.confidence_hit_sum[i];
    if (b.count[i] == 0) continue;
    const double fb = b.confidence_sum[i] / b.count[i], ob = b.hit_sum[i] / b.count[i];
    rel += b.count[i] * (fb - ob) * (fb - ob);
    res += b.count[i] * (ob - acc) * (ob - acc);
    wbv += b.confidence_sq_sum[i] - b.count[i] * fb * fb;
    wbc += b.confidence_hit_sum[i] - b.count[i] * fb * ob;
  }
  m.brier_top1 = (f2 - 2 * fo + hits_) / n;  // o² = o
  m.brier_reliability = rel / n;
  m.brier_resolution = res / n;
  m.brier_uncertainty = acc * (1 - acc);
  m.brier_within_variance = wbv / n;
  m.brier_within_covariance = wbc / n;
  return m;
}

}  // namespace dpsm::core
