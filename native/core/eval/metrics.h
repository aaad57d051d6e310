// The evaluation metrics of docs/metrics.md, from the fused kernel's per-token statistics: token sums in
// double, then the final numbers. Computed here and only here; lib/ reports them as they come.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace dpsm::core {

struct ReliabilityBin {
  double lower = 0, upper = 0, count = 0;
  double confidence = 0, accuracy = 0;  // means over the bin's tokens; NaN when it is empty
};

struct EvalMetrics {
  double temperature = 1.0;
  double tokens = 0, nll = 0, ppl = 0, accuracy = 0, brier = 0, spherical = 0, ece10 = 0, ece100 = 0;
  // ECE over 10 equal-mass bins of the tokens sorted by max p, a tied run counting its mean hit (NaN when the sums
  // kept no tokens).
  double adaptive_ece10 = 0;
  // Murphy's decomposition of the top-1 Brier score mean (max p − hit)² over ECE-10's bins, with Stephenson's
  // within-bin terms: top1 = reliability − resolution + uncertainty + within_variance − 2·within_covariance.
  double brier_top1 = 0, brier_reliability = 0, brier_resolution = 0, brier_uncertainty = 0;
  double brier_within_variance = 0, brier_within_covariance = 0;
  std::vector<ReliabilityBin> bins10, bins100;
};

// Running sums over tokens; everything reported derives from these.
class EvalSums {
 public:
  // keep_tokens: also keep every token's (max p, hit), 5 bytes a token, for the equal-mass bins of adaptive
  // ECE (a temperature fit, which needs only the NLL, does without).
  explicit EvalSums(bool keep_tokens = true) : keep_tokens_(keep_tokens) {}
  // stats [N, kStatCount] float32 and keep [N] bool, both on the CPU and contiguous.
  void add(const at::Tensor& stats, const at::Tensor& keep);
  EvalMetrics finish(double temperature) const;
  double mean_nll() const { return tokens_ > 0 ? nll_ / tokens_ : 0.0; }

 private:
  struct Bins {
    std::vector<double> count, confidence_sum, hit_sum, confidence_sq_sum, confidence_hit_sum;
    explicit Bins(int n) : count(n), confidence_sum(n), hit_sum(n), confidence_sq_sum(n), confidence_hit_sum(n) {}
  };
  bool keep_tokens_;
  double tokens_ = 0, nll_ = 0, hits_ = 0, brier_ = 0, spherical_ = 0;
  Bins bins10_{10}, bins100_{100};
  std::vector<float> confidence_;
  std::vector<uint8_t> hit_;
};

}  // namespace dpsm::core
