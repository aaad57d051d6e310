#include "batch.h"

namespace dpsm::core {

Batch PackedSequences::batch(const at::Tensor& rows, int64_t ignore_index, const at::Device& device) const {
  const at::Tensor seq = tokens_.index_select(0, rows);
  const int64_t L = seq.size(1);
  at::Tensor x = seq.narrow(1, 0, L - 1);
  at::Tensor y = seq.narrow(1, 1, L - 1).clone();
  // Target j of a row predicts token j + 1: past the row's real length there is nothing to predict.
  const at::Tensor positions = at::arange(1, L, at::TensorOptions().dtype(at::kLong)).unsqueeze(0);
  const at::Tensor pad = positions >= lengths_.index_select(0, rows).unsqueeze(1);
  y.masked_fill_(pad, ignore_index);
  return {x.to(device), y.to(device)};
}

Json PackedSequences::describe() const {
  return {{"kind", "causal"}, {"sequences", count()}, {"length", tokens_.size(1)}};
}

Seq2SeqExamples::Seq2SeqExamples(at::Tensor sources, at::Tensor source_lengths, at::Tensor targets,
                                 at::Tensor target_lengths, int64_t pad_id, int64_t decoder_start_id)
    : sources_(std::move(sources)), source_lengths_(std::move(source_lengths)), targets_(std::move(targets)),
      target_lengths_(std::move(target_lengths)), pad_(pad_id), start_(decoder_start_id) {}

Batch Seq2SeqExamples::batch(const at::Tensor& rows, int64_t ignore_index, const at::Device& device) const {
  const auto i64 = at::TensorOptions().dtype(at::kLong);
  const at::Tensor src = sources_.index_select(0, rows);
  const at::Tensor tgt = targets_.index_select(0, rows);
  const int64_t S = src.size(1), T = tgt.size(1);
  const at::Tensor src_real = at::arange(S, i64).unsqueeze(0) < source_lengths_.index_select(0, rows).unsqueeze(1);
  const at::Tensor tgt_real = at::arange(T, i64).unsqueeze(0) < target_lengths_.index_select(0, rows).unsqueeze(1);
  Batch b;
  b.input_ids = src.masked_fill(src_real.logical_not(), pad_).to(device);
  b.attention_mask = src_real.to(at::kLong).to(device);
  // Teacher forcing: position t reads target t − 1 (the start id at t = 0) and predicts target t.
  at::Tensor dec = at::full({rows.size(0), T}, start_, i64);
  if (T > 1) dec.narrow(1, 1, T - 1).copy_(tgt.narrow(1, 0, T - 1));
  b.decoder_input_ids = dec.masked_fill(tgt_real.logical_not(), pad_).to(device);
  b.targets = tgt.masked_fill(tgt_real.logical_not(), ignore_index).to(device);
  return b;
}

Json Seq2SeqExamples::describe() const {
  return {{"kind", "seq2seq"}, {"examples", count()}, {"source", sources_.size(1)}, {"target", targets_.size(1)}};
}

}  // namespace dpsm::core
