#include "bertscore.h"

#include <torch/csrc/autograd/grad_mode.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>

namespace dpsm::core {
namespace {

// Rows `rows` of `texts` right-padded with `pad` into ids [B, T], mask [B, T] and weights [B, T] (0 on padding).
struct Padded {
  at::Tensor ids, mask, idf;
};
Padded pad_rows(const std::vector<std::vector<int64_t>>& texts, const std::vector<std::vector<float>>& idf,
                const std::vector<size_t>& rows, int64_t pad) {
  size_t T = 1;
  for (size_t r : rows) T = std::max(T, texts[r].size());
  const auto B = static_cast<int64_t>(rows.size());
  at::Tensor ids = at::full({B, static_cast<int64_t>(T)}, pad, at::kLong);
  at::Tensor mask = at::zeros({B, static_cast<int64_t>(T)}, at::kLong);
  at::Tensor w = at::zeros({B, static_cast<int64_t>(T)}, at::kFloat);
  auto ia = ids.accessor<int64_t, 2>();
  auto ma = mask.accessor<int64_t, 2>();
  auto wa = w.accessor<float, 2>();
  for (int64_t b = 0; b < B; ++b) {
    const auto& t = texts[rows[b]];
    for (size_t j = 0; j < t.size(); ++j) {
      ia[b][j] = t[j];
      ma[b][j] = 1;
      wa[b][j] = idf[rows[b]][j];
    }
  }
  return {ids, mask, w};
}

}  // namespace

BertScores bertscore(TextEncoder& encoder, const BertScoreInput& in) {
  const size_t n = in.candidates.size();
  if (in.references.size() != n || in.candidate_idf.size() != n || in.reference_idf.size() != n)
    throw std::invalid_argument("bertscore: expected as many references and idf rows as candidates");
  for (size_t i = 0; i < n; ++i)
    if (in.candidate_idf[i].size() != in.candidates[i].size() || in.reference_idf[i].size() != in.references[i].size())
      throw std::invalid_argument("bertscore: text " + std::to_string(i) + ": expected one idf weight per token");
  BertScores out;
  out.precision.assign(n, 0);
  out.recall.assign(n, 0);
  out.f1.assign(n, 0);
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return in.candidates[a].size() + in.references[a].size() < in.candidates[b].size() + in.references[b].size();
  });
  const at::Device device = encoder.device();
  at::NoGradGuard no_grad;
  const auto batch = static_cast<size_t>(std::max<int64_t>(1, in.batch_size));
  for (size_t start = 0; start < n; start += batch) {
    const std::vector<size_t> rows(order.begin() + start, order.begin() + std::min(n, start + batch));
    auto embed = [&](const Padded& p) {
      at::Tensor h = encoder.hidden_states(p.ids.to(device), p.mask.to(device), in.layer).to(at::kFloat);
      return h / h.norm(2, -1, true);
    };
    const Padded c = pad_rows(in.candidates, in.candidate_idf, rows, in.pad_id);
    const Padded r = pad_rows(in.references, in.reference_idf, rows, in.pad_id);
    const at::Tensor hc = embed(c), hr = embed(r);
    // Cosines below -1 cannot win a max, so padding is filled with -2 rather than bert-score's 0 (which wins
    // over a token whose every real match is negative; see docs/metrics.md).
    const at::Tensor pair_mask = (c.mask.unsqueeze(2) * r.mask.unsqueeze(1)).to(device).to(at::kBool);
    const at::Tensor sim = at::bmm(hc, hr.transpose(1, 2)).masked_fill(pair_mask.logical_not(), -2.0);
    const at::Tensor best_for_candidate = std::get<0>(sim.max(2)).to(at::kDouble).cpu();
    const at::Tensor best_for_reference = std::get<0>(sim.max(1)).to(at::kDouble).cpu();
    const at::Tensor wc = c.idf.to(at::kDouble), wr = r.idf.to(at::kDouble);
    const at::Tensor P = (best_for_candidate * wc).sum(1) / wc.sum(1);
    const at::Tensor R = (best_for_reference * wr).sum(1) / wr.sum(1);
    for (size_t b = 0; b < rows.size(); ++b) {
      const size_t i = rows[b];
      double p = P[b].item<double>(), q = R[b].item<double>();
      // bert-score: an empty text (its two specials only) scores 0; a 0/0 F is 0.
      if (in.candidates[i].size() <= 2 || in.references[i].size() <= 2) p = q = 0;
      double f = 2 * p * q / (p + q);
      if (std::isnan(f)) f = 0;
      out.precision[i] = p;
      out.recall[i] = q;
      out.f1[i] = f;
    }
  }
  return out;
}

}  // namespace dpsm::core
