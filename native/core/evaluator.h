// Evaluation of a language model over packed sequences, in one pass: the fused kernel's per-token
// statistics (NLL, p_y, max p, argmax hit, ‖p‖²) accumulated into the metrics of DESIGN.md's
// "Definitions", optionally at several temperatures at once.
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <functional>
#include <vector>

#include "gpt2.h"

namespace dpsm::core {

// Sequences packed by the data pipeline: tokens [S, L] (int64), lengths [S] (real tokens per row).
struct Sequences {
  at::Tensor tokens;
  at::Tensor lengths;
  int64_t count() const { return tokens.defined() ? tokens.size(0) : 0; }
};

// Inputs and targets of a batch of rows: x = seq[:, :-1], y = seq[:, 1:], targets past a row's length
// set to `ignore_index`.
std::pair<at::Tensor, at::Tensor> lm_batch(const Sequences& data, const at::Tensor& rows, int64_t ignore_index,
                                           const at::Device& device);

struct ReliabilityBins {
  std::vector<double> count, confidence_sum, hit_sum;
  explicit ReliabilityBins(int n = 0) : count(n), confidence_sum(n), hit_sum(n) {}
};

// Sums over tokens, in double; everything reported derives from these.
struct EvalSums {
  double tokens = 0, nll = 0, hits = 0, brier = 0, spherical = 0;
  ReliabilityBins bins10{10}, bins100{100};
  void add(const at::Tensor& stats_cpu, const at::Tensor& keep_cpu);  // stats [N, kStatCount] float32
  double ece(const ReliabilityBins& b) const;
};

struct EvalResult {
  double temperature = 1.0;
  EvalSums sums;
  double nll() const { return sums.tokens > 0 ? sums.nll / sums.tokens : 0.0; }
};

struct EvalOptions {
  std::vector<double> temperatures{1.0};
  int64_t batch_size = 8;
  int64_t max_sequences = 0;  // 0: all
  bool autocast_bf16 = false;
  std::function<void(int64_t done, int64_t total)> progress;  // optional, per batch
};

// One pass of `model` (put in eval mode, restored after) over `data`; one result per temperature.
std::vector<EvalResult> evaluate(GPT2& model, const Sequences& data, const EvalOptions& options);

// The temperature minimising NLL: a log-spaced grid evaluated in one pass, refined by a parabola through
// the best grid point and its neighbours. Returns {T*, results on the grid}.
std::pair<double, std::vector<EvalResult>> fit_temperature(GPT2& model, const Sequences& data, EvalOptions options,
                                                           double t_min = 0.5, double t_max = 3.0, int points = 26);

}  // namespace dpsm::core
