// What the training loop and the evaluator consume: a data set of fixed-length rows from which any set of
// rows becomes a batch on a device. Causal language modelling is one kind; encoder–decoder batches are
// another, behind the same interface.
#pragma once

#include <ATen/ATen.h>

#include <algorithm>

#include "../config.h"
#include "../platform.h"

namespace dpsm::core {

// One batch, on the model's device. Causal LM: input_ids [B, T] and targets [B, T] (targets past a row's
// length hold the ignore index). Encoder–decoder: input_ids [B, S] and attention_mask [B, S] (1 on real
// tokens) for the encoder, decoder_input_ids [B, T] (the targets shifted right) and targets [B, T].
struct Batch {
  at::Tensor input_ids;
  at::Tensor targets;
  at::Tensor attention_mask;
  at::Tensor decoder_input_ids;
};

// Rows [start, start + n) of every tensor of a host batch `b`, on `device` (a data-parallel rank's share of a
// global batch, or all of it), copied without waiting for the device (platform.h's to_device).
inline Batch slice_rows(const Batch& b, int64_t start, int64_t n, const at::Device& device) {
  auto take = [&](const at::Tensor& t) {
    return t.defined() ? platform::to_device(t.narrow(0, start, n).contiguous(), device) : t;
  };
  return {take(b.input_ids), take(b.targets), take(b.attention_mask), take(b.decoder_input_ids)};
}

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t count() const = 0;
  // Positions a batch needs (what a model's maximum length must cover).
  virtual int64_t positions() const = 0;
  virtual Batch batch(const at::Tensor& rows, int64_t ignore_index, const at::Device& device) const = 0;
  // The data's part of a run's identity (what it is and its shape; not where it came from).
  virtual Json describe() const = 0;
};

// Sequences packed by lib/data: tokens [S, L] (int64), lengths [S] (real tokens per row, ≥ 1). A row's input
// is seq[:, :-1] and its target seq[:, 1:].
class PackedSequences : public Dataset {
 public:
  PackedSequences(at::Tensor tokens, at::Tensor lengths) : tokens_(std::move(tokens)), lengths_(std::move(lengths)) {}
  int64_t count() const override { return tokens_.size(0); }
  int64_t positions() const override { return tokens_.size(1) - 1; }
  Batch batch(const at::Tensor& rows, int64_t ignore_index, const at::Device& device) const override;
  Json describe() const override;
  const at::Tensor& tokens() const { return tokens_; }

 private:
  at::Tensor tokens_, lengths_;
};

// Encoder–decoder examples packed by lib/data/summarization.ts: sources [N, S] and targets [N, T] (int64), with
// their lengths (≥ 1; a target ends with EOS when the data asked for one). The encoder reads the source under a
// padding mask; the decoder reads the target shifted right behind `decoder_start` and predicts the target.
class Seq2SeqExamples : public Dataset {
 public:
  Seq2SeqExamples(at::Tensor sources, at::Tensor source_lengths, at::Tensor targets, at::Tensor target_lengths,
                  int64_t pad_id, int64_t decoder_start_id);
  int64_t count() const override { return sources_.size(0); }
  int64_t positions() const override { return std::max(sources_.size(1), targets_.size(1)); }
  Batch batch(const at::Tensor& rows, int64_t ignore_index, const at::Device& device) const override;
  Json describe() const override;

 private:
  at::Tensor sources_, source_lengths_, targets_, target_lengths_;
  int64_t pad_, start_;
};

}  // namespace dpsm::core
