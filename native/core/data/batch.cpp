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

}  // namespace dpsm::core
