// Which rows make each batch, and which targets label noise replaces: both drawn from generators seeded by
// (data seed, purpose, index), so every variation of a seed sees the same batches and the same noise, on any
// device, and a resumed run continues the same sequence.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "../config.h"

namespace dpsm::core {

// A generator for one purpose (a salt) and one index (an epoch, a step).
at::Generator seeded_generator(uint64_t seed, uint64_t salt, uint64_t index);

// Seeded shuffles, one per epoch; an epoch's remainder smaller than a global batch is skipped. With world > 1
// each global batch is batch_size·world rows, of which rank r's share is the r-th batch_size: the rows one
// process with batch_size·world would take, in the same order.
class BatchSampler {
 public:
  BatchSampler(int64_t rows, int64_t batch_size, uint64_t seed, int64_t world = 1)
      : rows_(rows), batch_(batch_size), seed_(seed), world_(world) {}
  // The next global batch's rows (every rank's share).
  at::Tensor next();
  // Position, for checkpoints.
  int64_t epoch = 0, cursor = 0;
  // The (epoch, cursor) after `batches` calls of next() from the start: what a checkpoint must hold.
  std::pair<int64_t, int64_t> position_after(int64_t batches) const;

 private:
  int64_t rows_, batch_;
  uint64_t seed_;
  int64_t world_;
  at::Tensor perm_;
  int64_t perm_epoch_ = -1;
};

struct LabelNoiseConfig {
  double step_fraction = 0;   // share of optimiser steps whose batches are corrupted
  double token_fraction = 0;  // ... and the share of their targets replaced by random tokens
};
LabelNoiseConfig label_noise_from_json(const Json& j);

class LabelNoise {
 public:
  LabelNoise(LabelNoiseConfig c, uint64_t seed, int64_t vocab, int64_t ignore_index)
      : c_(c), seed_(seed), vocab_(vocab), ignore_(ignore_index) {}
  bool step_is_noisy(int64_t step) const;
  // Replaces the chosen targets of a noisy step (never ignored ones) by uniform random tokens.
  void corrupt(at::Tensor& targets, int64_t step) const;

 private:
  LabelNoiseConfig c_;
  uint64_t seed_;
  int64_t vocab_, ignore_;
};

// Summary-swap noise for encoder–decoder batches: for each row, the row whose reference it trains on (itself
// unless swapped). The rule (SplitMix64 from (seed << 32) | batch_index; row i draws a, b; swapped when
// (a >> 11)·2^−53 < p, to row b mod (rows − 1), skipping itself) is stated in full in lib/data/summary-noise.ts,
// whose TypeScript twin the tests hold this one to.
std::vector<int64_t> summary_swap_sources(uint64_t seed, uint64_t batch_index, int64_t rows, double p);

}  // namespace dpsm::core
