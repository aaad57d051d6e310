// The fused loss exposed to JS on Float32Array / Int32Array data, and α in closed form.
#include <ATen/ATen.h>

#include <cmath>

#include "../core/loss/objectives.h"
#include "convert.h"
#include "js.h"

namespace dpsm::addon {
namespace {

// lossForward(logits: Float32Array, targets: Int32Array, json { loss, vocabSize, step, grad, inPlace, stats })
//   -> { loss, alpha, count, grad?, stats? }
Napi::Value LossForward(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Napi::Float32Array logits_js =
        typed_array_arg<Napi::Float32Array>(info, 0, "logits", napi_float32_array, "a Float32Array");
    Napi::Int32Array targets_js =
        typed_array_arg<Napi::Int32Array>(info, 1, "targets", napi_int32_array, "an Int32Array");
    const core::Json o = json_arg(info, 2, "options");
    const core::LossOptions opt = core::fused_options_from_json(core::field<core::Json>(o, "loss"));
    const int64_t vocab = core::field<int64_t>(o, "vocabSize");
    const int64_t step = core::field<int64_t>(o, "step");
    const bool want_grad = core::field<bool>(o, "grad");
    const bool in_place = want_grad && core::field<bool>(o, "inPlace");
    const bool want_stats = core::field<bool>(o, "stats");

    const int64_t n = static_cast<int64_t>(targets_js.ElementLength());
    if (vocab < 1 || n * vocab != static_cast<int64_t>(logits_js.ElementLength()))
      throw ArgError("logits: expected targets.length × vocabSize = " + std::to_string(n) + " × " +
                         std::to_string(vocab) + " values, got " + std::to_string(logits_js.ElementLength()),
                     true);
    const auto f32 = at::TensorOptions().dtype(at::kFloat);
    at::Tensor logits = at::from_blob(logits_js.Data(), {n, vocab}, f32);
    at::Tensor targets = at::from_blob(targets_js.Data(), {n}, at::TensorOptions().dtype(at::kInt));
    at::Tensor step_t = at::full({}, step, at::TensorOptions().dtype(at::kLong));

    core::FusedRequest req;
    req.grad = want_grad;
    req.grad_inplace = in_place;
    req.stats = want_stats;
    Napi::Float32Array grad_js;
    if (want_grad && !in_place) {
      grad_js = Napi::Float32Array::New(env, static_cast<size_t>(n * vocab));
      req.grad_into = at::from_blob(grad_js.Data(), {n, vocab}, f32);
    }
    const core::FusedOutputs out = core::fused_loss(logits, targets, step_t, opt, req);

    Napi::Object r = Napi::Object::New(env);
    if (opt.reduction == core::Reduction::None)
      r.Set("loss", float32_array(env, out.loss));
    else
      r.Set("loss", out.loss.item<double>());
    r.Set("alpha", out.alpha.item<double>());
    r.Set("count", static_cast<double>(out.count.item<int64_t>()));
    if (want_grad) r.Set("grad", in_place ? Napi::Value(logits_js) : Napi::Value(grad_js));
    if (want_stats) r.Set("stats", token_stats_to_js(env, out.stats));
    return r;
  });
}

// alphaAt(lossJson, step) -> α from the kernels' closed form
Napi::Value AlphaAt(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const core::LossOptions opt = core::fused_options_from_json(json_arg(info, 0, "loss"));
    if (info.Length() < 2 || !info[1].IsNumber()) throw ArgError("step: expected a number", false);
    const double s = info[1].As<Napi::Number>().DoubleValue();
    if (!(s >= 0) || s != std::floor(s) || s > 9007199254740991.0)
      throw ArgError("step: expected an integer >= 0", true);
    return Napi::Number::New(info.Env(), alpha_at(opt.spec, static_cast<int64_t>(s)));
  });
}

}  // namespace

void register_loss(Napi::Env env, Napi::Object exports) {
  exports.Set("lossForward", Napi::Function::New(env, LossForward, "lossForward"));
  exports.Set("alphaAt", Napi::Function::New(env, AlphaAt, "alphaAt"));
}

}  // namespace dpsm::addon
