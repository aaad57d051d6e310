// What crosses from the core to JS: metrics, progress records and tensors, as plain JS values.
#pragma once

#include <napi.h>

#include <ATen/ATen.h>

#include "../core/data/batch.h"
#include "../core/eval/metrics.h"
#include "../core/models/language_model.h"
#include "../core/train/trainer.h"

namespace dpsm::addon {

Napi::Object metrics_to_js(Napi::Env env, const core::EvalMetrics& m);
Napi::Object progress_to_js(Napi::Env env, const core::ProgressRecord& r);
Napi::Float32Array float32_array(Napi::Env env, const at::Tensor& t);
// Per-token statistics [N, kStatCount] as { nll, pY, maxP, hit, sqNorm } arrays.
Napi::Object token_stats_to_js(Napi::Env env, const at::Tensor& stats);

// A data set (copied) for `model`, its ids checked against the vocabulary (out-of-range ids would index outside
// the embedding): { tokens: Int32Array (S·L), lengths: Int32Array (S), contextLength: L } for a causal model,
// { sourceTokens, sourceLengths, targetTokens, targetLengths, maxSource, maxTarget } for an encoder–decoder.
std::shared_ptr<core::Dataset> dataset_from_js(const Napi::Value& v, const char* name, core::LanguageModel& model);

}  // namespace dpsm::addon
