#include "convert.h"

#include <cstring>

#include "../kernels/dpsm_math.h"
#include "js.h"

namespace dpsm::addon {
namespace {

Napi::Array bins_to_js(Napi::Env env, const std::vector<core::ReliabilityBin>& bins) {
  Napi::Array out = Napi::Array::New(env, bins.size());
  for (size_t i = 0; i < bins.size(); ++i) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("lower", bins[i].lower);
    o.Set("upper", bins[i].upper);
    o.Set("count", bins[i].count);
    o.Set("confidence", bins[i].confidence);
    o.Set("accuracy", bins[i].accuracy);
    out.Set(static_cast<uint32_t>(i), o);
  }
  return out;
}

}  // namespace

Napi::Object metrics_to_js(Napi::Env env, const core::EvalMetrics& m) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("temperature", m.temperature);
  o.Set("tokens", m.tokens);
  o.Set("nll", m.nll);
  o.Set("ppl", m.ppl);
  o.Set("accuracy", m.accuracy);
  o.Set("brier", m.brier);
  o.Set("spherical", m.spherical);
  o.Set("ece10", m.ece10);
  o.Set("ece100", m.ece100);
  o.Set("adaptiveEce10", m.adaptive_ece10);
  Napi::Object d = Napi::Object::New(env);
  d.Set("top1", m.brier_top1);
  d.Set("reliability", m.brier_reliability);
  d.Set("resolution", m.brier_resolution);
  d.Set("uncertainty", m.brier_uncertainty);
  d.Set("withinVariance", m.brier_within_variance);
  d.Set("withinCovariance", m.brier_within_covariance);
  o.Set("brierDecomposition", d);
  o.Set("bins10", bins_to_js(env, m.bins10));
  o.Set("bins100", bins_to_js(env, m.bins100));
  return o;
}

Napi::Object progress_to_js(Napi::Env env, const core::ProgressRecord& r) {
  using T = core::ProgressRecord::Type;
  Napi::Object o = Napi::Object::New(env);
  const char* type = r.type == T::Step         ? "step"
                     : r.type == T::Eval       ? "eval"
                     : r.type == T::Checkpoint ? "checkpoint"
                     : r.type == T::Warning    ? "warning"
                                               : "done";
  o.Set("type", type);
  o.Set("step", static_cast<double>(r.step));
  switch (r.type) {
    case T::Step:
      o.Set("loss", r.loss);
      o.Set("alpha", r.alpha);
      o.Set("lr", r.lr);
      o.Set("gradNorm", r.grad_norm);
      o.Set("ce", r.ce);
      o.Set("brier", r.brier);
      if (r.has_update_ratio) o.Set("updateRatio", r.update_ratio);
      o.Set("stepMs", r.step_ms);
      o.Set("tokensPerSecond", r.tokens_per_s);
      o.Set("tokensSeen", static_cast<double>(r.tokens_seen));
      o.Set("elapsedSeconds", r.elapsed_s);
      o.Set("peakMemoryBytes", static_cast<double>(r.peak_memory_bytes));
      o.Set("noisy", r.noisy);
      break;
    case T::Eval:
      o.Set("metrics", metrics_to_js(env, r.eval));
      o.Set("improved", r.improved);
      o.Set("bestStep", static_cast<double>(r.best_step));
      o.Set("elapsedSeconds", r.elapsed_s);
      o.Set("peakMemoryBytes", static_cast<double>(r.peak_memory_bytes));
      break;
    case T::Checkpoint:
      o.Set("path", r.path);
      o.Set("best", r.improved);
      break;
    case T::Warning:
      o.Set("path", r.path);
      o.Set("message", r.message);
      break;
    case T::Done:
      o.Set("reason", r.reason);
      o.Set("elapsedSeconds", r.elapsed_s);
      o.Set("tokensSeen", static_cast<double>(r.tokens_seen));
      o.Set("bestStep", static_cast<double>(r.best_step));
      o.Set("bestNll", r.best_nll);
      o.Set("peakMemoryBytes", static_cast<double>(r.peak_memory_bytes));
      break;
  }
  return o;
}

Napi::Float32Array float32_array(Napi::Env env, const at::Tensor& t) {
  const at::Tensor c = t.to(at::kFloat).cpu().contiguous();
  Napi::Float32Array a = Napi::Float32Array::New(env, static_cast<size_t>(c.numel()));
  if (c.numel() > 0) std::memcpy(a.Data(), c.data_ptr<float>(), sizeof(float) * c.numel());
  return a;
}

Napi::Object token_stats_to_js(Napi::Env env, const at::Tensor& stats) {
  const at::Tensor s = stats.to(at::kFloat).cpu().contiguous();
  Napi::Object o = Napi::Object::New(env);
  o.Set("nll", float32_array(env, s.select(1, kStatNll)));
  o.Set("pY", float32_array(env, s.select(1, kStatPy)));
  o.Set("maxP", float32_array(env, s.select(1, kStatMaxP)));
  const at::Tensor hit = s.select(1, kStatHit).to(at::kByte).contiguous();
  Napi::Uint8Array h = Napi::Uint8Array::New(env, static_cast<size_t>(hit.numel()));
  if (hit.numel() > 0) std::memcpy(h.Data(), hit.data_ptr<uint8_t>(), static_cast<size_t>(hit.numel()));
  o.Set("hit", h);
  o.Set("sqNorm", float32_array(env, s.select(1, kStatSqNorm)));
  return o;
}

namespace {

// rows × width ids from an Int32Array field, and their lengths (each in [1, width]), as int64 tensors.
std::pair<at::Tensor, at::Tensor> rows_from_js(const Napi::Object& o, const std::string& name, const char* ids_key,
                                               const char* lengths_key, const char* width_key, int64_t vocab) {
  const Napi::Value tv = o.Get(ids_key), lv = o.Get(lengths_key), wv = o.Get(width_key);
  Napi::Int32Array tokens =
      typed_array_value<Napi::Int32Array>(tv, name + "." + ids_key, napi_int32_array, "an Int32Array");
  Napi::Int32Array lengths =
      typed_array_value<Napi::Int32Array>(lv, name + "." + lengths_key, napi_int32_array, "an Int32Array");
  if (!wv.IsNumber()) throw ArgError(name + "." + width_key + ": expected a number", false);
  const int64_t W = wv.As<Napi::Number>().Int64Value();
  const int64_t N = static_cast<int64_t>(lengths.ElementLength());
  if (W < 1 || static_cast<int64_t>(tokens.ElementLength()) != N * W)
    throw ArgError(name + "." + ids_key + ": expected " + lengths_key + ".length × " + width_key + " = " +
                       std::to_string(N * W) + " ids, got " + std::to_string(tokens.ElementLength()),
                   true);
  const auto i32 = at::TensorOptions().dtype(at::kInt);
  at::Tensor t = at::from_blob(tokens.Data(), {N, W}, i32).to(at::kLong);
  at::Tensor l = at::from_blob(lengths.Data(), {N}, i32).to(at::kLong);
  if (N > 0) {
    if (t.min().item<int64_t>() < 0 || t.max().item<int64_t>() >= vocab)
      throw ArgError(name + "." + ids_key + ": expected ids in [0, " + std::to_string(vocab) + ")", true);
    if (l.min().item<int64_t>() < 1 || l.max().item<int64_t>() > W)
      throw ArgError(name + "." + lengths_key + ": expected values in [1, " + width_key + "]", true);
  }
  return {std::move(t), std::move(l)};
}

}  // namespace

std::shared_ptr<core::Dataset> dataset_from_js(const Napi::Value& v, const char* name, core::LanguageModel& model) {
  const std::string n(name);
  const int64_t vocab = model.vocab_size();
  if (!v.IsObject()) throw ArgError(n + ": expected packed sequences or encoder-decoder examples", false);
  const Napi::Object o = v.As<Napi::Object>();
  if (!model.is_encoder_decoder()) {
    auto [t, l] = rows_from_js(o, n, "tokens", "lengths", "contextLength", vocab);
    if (t.size(1) < 2) throw ArgError(n + ".contextLength: expected at least 2", true);
    return std::make_shared<core::PackedSequences>(std::move(t), std::move(l));
  }
  auto [src, src_len] = rows_from_js(o, n, "sourceTokens", "sourceLengths", "maxSource", vocab);
  auto [tgt, tgt_len] = rows_from_js(o, n, "targetTokens", "targetLengths", "maxTarget", vocab);
  if (src.size(0) != tgt.size(0)) throw ArgError(n + ": expected as many targets as sources", true);
  const core::Json c = model.config();
  return std::make_shared<core::Seq2SeqExamples>(std::move(src), std::move(src_len), std::move(tgt), std::move(tgt_len),
                                                 core::field<int64_t>(c, "pad_token_id"),
                                                 core::field<int64_t>(c, "decoder_start_token_id"));
}

}  // namespace dpsm::addon
