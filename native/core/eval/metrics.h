// The evaluation metrics of docs/metrics.md, from the fused kernel's per-token statistics: token sums in
// double, then the final numbers. Computed here and only here; lib/ reports them as they come.
#pragma once

#include <ATen/ATen.h>

#include <vector>

namespace dpsm::core {

struct ReliabilityBin {
  double lower = 0, upper = 0, count = 0;
  double confidence = 0, accuracy = 0;  // means over the bin's tokens; NaN when it is empty
};

struct EvalMetrics {
  double temperature = 1.0;
  double tokens = 0, nll = 0, ppl = 0, accuracy = 0, brier = 0, spherical = 0, ece10 = 0, ece100 = 0;
  std::vector<ReliabilityBin> bins10, bins100;
};

// Running sums over tokens; everything reported derives from these.
class EvalSums {
 public:
  // stats [N, kStatCount] float32 and keep [N] bool, both on the CPU and contiguous.
  void add(const at::Tensor& stats, const at::Tensor& keep);
  EvalMetrics finish(double temperature) const;
  double mean_nll() const { return tokens_ > 0 ? nll_ / tokens_ : 0.0; }

 private:
  struct Bins {
    std::vector<double> count, confidence_sum, hit_sum;
    explicit Bins(int n) : count(n), confidence_sum(n), hit_sum(n) {}
  };
  double tokens_ = 0, nll_ = 0, hits_ = 0, brier_ = 0, spherical_ = 0;
  Bins bins10_{10}, bins100_{100};
};

}  // namespace dpsm::core
