// The fused loss, exposed to JS: forward on Float32Array/Int32Array data, α in closed form, and the probes
// (reference check, timings) that the tests and the benchmark run.
#include <ATen/ATen.h>

#include "../core/loss.h"
#include "../core/loss_probe.h"
#include "../kernels/dpsm_kernels.h"
#include "args.h"

namespace dpsm::addon {
namespace {

using core::LossOptions;

LossOptions loss_options(const Napi::Object& o) {
  LossOptions opt;
  opt.spec.kind = core::parse_kind(str(o, "kind", "ce"));
  opt.spec.schedule = core::parse_schedule(str(o, "schedule", "linear"));
  opt.spec.warmup_steps = num(o, "warmupSteps", 1.0);
  opt.spec.alpha = num(o, "alpha", 0.0);
  opt.ignore_index = integer(o, "ignoreIndex", -100, INT32_MIN);
  opt.reduction = core::parse_reduction(str(o, "reduction", "mean"));
  core::validate_spec(opt.spec);
  return opt;
}

core::ProbeInputs probe_inputs(const Napi::Object& o) {
  core::ProbeInputs in;
  in.rows = integer(o, "rows", 1, 0, true);
  in.vocab = integer(o, "vocab", 2, 1, true);
  in.dtype = str(o, "dtype", "float32");
  in.device = str(o, "device", "cpu");
  in.scale = num(o, "scale", 3.0);
  in.extreme = flag(o, "extreme", false);
  in.ignore_fraction = num(o, "ignoreFraction", 0.0);
  in.seed = static_cast<uint64_t>(integer(o, "seed", 0, 0));
  core::parse_dtype(in.dtype);
  core::parse_device(in.device);
  return in;
}

Napi::Float32Array float_array(Napi::Env env, const at::Tensor& t) {
  const at::Tensor c = t.to(at::kFloat).cpu().contiguous();
  Napi::Float32Array a = Napi::Float32Array::New(env, static_cast<size_t>(c.numel()));
  if (c.numel() > 0) std::memcpy(a.Data(), c.data_ptr<float>(), sizeof(float) * c.numel());
  return a;
}

// lossForward(logits: Float32Array, targets: Int32Array, options) -> { loss, alpha, count, grad?, stats? }
Napi::Value LossForward(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsTypedArray() ||
        info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      throw ArgError("logits: expected a Float32Array", false);
    if (info.Length() < 2 || !info[1].IsTypedArray() ||
        info[1].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
      throw ArgError("targets: expected an Int32Array", false);
    Napi::Float32Array logits_js = info[0].As<Napi::Float32Array>();
    Napi::Int32Array targets_js = info[1].As<Napi::Int32Array>();
    const Napi::Object o = object_arg(info, 2, "options");
    const LossOptions opt = loss_options(o);
    const int64_t vocab = integer(o, "vocabSize", 0, 1, true);
    const int64_t step = integer(o, "step", 0, 0);
    const bool want_grad = flag(o, "grad", true);
    const bool in_place = flag(o, "inPlace", false);
    const bool want_stats = flag(o, "stats", false);

    const int64_t n_logits = static_cast<int64_t>(logits_js.ElementLength());
    const int64_t n = static_cast<int64_t>(targets_js.ElementLength());
    if (n * vocab != n_logits)
      throw ArgError("logits: expected targets.length × vocabSize = " + std::to_string(n) + " × " +
                         std::to_string(vocab) + " = " + std::to_string(n * vocab) + " values, got " +
                         std::to_string(n_logits),
                     true);

    const auto f32 = at::TensorOptions().dtype(at::kFloat);
    at::Tensor logits = at::from_blob(logits_js.Data(), {n, vocab}, f32);
    at::Tensor targets = at::from_blob(targets_js.Data(), {n}, at::TensorOptions().dtype(at::kInt));
    at::Tensor step_t = at::full({}, step, at::TensorOptions().dtype(at::kLong));

    core::FusedRequest req;
    req.grad = want_grad;
    req.grad_inplace = want_grad && in_place;
    req.stats = want_stats;
    Napi::Float32Array grad_js;
    if (want_grad && !in_place) {
      grad_js = Napi::Float32Array::New(env, static_cast<size_t>(n * vocab));
      req.grad_into = at::from_blob(grad_js.Data(), {n, vocab}, f32);
    }
    const core::FusedOutputs out = core::fused_loss(logits, targets, step_t, opt, req);

    Napi::Object r = Napi::Object::New(env);
    if (opt.reduction == core::Reduction::None)
      r.Set("loss", float_array(env, out.loss));
    else
      r.Set("loss", out.loss.item<double>());
    r.Set("alpha", out.alpha.item<double>());
    r.Set("count", static_cast<double>(out.count.item<int64_t>()));
    if (want_grad) r.Set("grad", in_place ? Napi::Value(logits_js) : Napi::Value(grad_js));
    if (want_stats) r.Set("stats", float_array(env, out.stats));
    return r;
  });
}

// alphaAt(lossOptions, step) -> α from the kernels' closed form
Napi::Value AlphaAt(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const LossOptions opt = loss_options(object_arg(info, 0, "options"));
    if (info.Length() < 2 || !info[1].IsNumber()) throw ArgError("step: expected a number", false);
    const double s = info[1].As<Napi::Number>().DoubleValue();
    if (!(s >= 0) || s != std::floor(s) || s > 9007199254740991.0)
      throw ArgError("step: expected an integer >= 0", true);
    return Napi::Number::New(info.Env(), alpha_at(opt.spec, static_cast<int64_t>(s)));
  });
}

// checkAgainstReference({ rows, vocab, dtype, ..., loss options, step, inPlace }) -> Promise<errors>
Napi::Value CheckAgainstReference(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const Napi::Object o = object_arg(info, 0, "options");
    const core::ProbeInputs in = probe_inputs(o);
    const LossOptions opt = loss_options(o);
    const int64_t step = integer(o, "step", 0, 0);
    const bool in_place = flag(o, "inPlace", false);
    return run_async<core::ReferenceCheck>(
        info.Env(), [=]() { return core::check_against_reference(in, opt, step, in_place); },
        [](Napi::Env env, core::ReferenceCheck& r) -> Napi::Value {
          Napi::Object js = Napi::Object::New(env);
          js.Set("lossRelErr", r.loss_rel_err);
          js.Set("gradRelErr", r.grad_rel_err);
          js.Set("lossAbsErr", r.loss_abs_err);
          js.Set("gradAbsErr", r.grad_abs_err);
          js.Set("autogradGradRelErr", r.autograd_grad_rel_err);
          Napi::Object st = Napi::Object::New(env);
          const char* names[kStatCount] = {"nll", "pY", "maxP", "hit", "sqNorm"};
          for (int k = 0; k < kStatCount; ++k) st.Set(names[k], r.stats_rel_err[k]);
          js.Set("statsRelErr", st);
          js.Set("hitMismatches", static_cast<double>(r.hit_mismatches));
          js.Set("alphaKernel", r.alpha_kernel);
          js.Set("alphaClosedForm", r.alpha_closed_form);
          js.Set("count", static_cast<double>(r.count));
          js.Set("finite", r.finite);
          return js;
        });
  });
}

// timeLoss({ rows, vocab, dtype, device, loss options, path, backward, iters, warmup }) -> Promise<timing>
Napi::Value TimeLoss(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const Napi::Object o = object_arg(info, 0, "options");
    const core::ProbeInputs in = probe_inputs(o);
    const LossOptions opt = loss_options(o);
    const std::string path = str(o, "path", "fused");
    const bool backward = flag(o, "backward", true);
    const int iters = static_cast<int>(integer(o, "iters", 5, 1));
    const int warmup = static_cast<int>(integer(o, "warmup", 1, 0));
    return run_async<core::Timing>(
        info.Env(), [=]() { return core::time_loss(in, opt, path, backward, iters, warmup); },
        [](Napi::Env env, core::Timing& t) -> Napi::Value {
          Napi::Object js = Napi::Object::New(env);
          Napi::Array ms = Napi::Array::New(env, t.ms.size());
          for (size_t i = 0; i < t.ms.size(); ++i) ms.Set(static_cast<uint32_t>(i), t.ms[i]);
          js.Set("ms", ms);
          js.Set("extraPeakBytes", static_cast<double>(t.extra_peak_bytes));
          return js;
        });
  });
}

// useCpuIsa(name) -> whether the CPU kernel now runs that variant ("auto": the best available)
Napi::Value UseCpuIsa(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsString()) throw ArgError("isa: expected a string", false);
    const std::string isa = info[0].As<Napi::String>().Utf8Value();
    if (isa != "auto" && isa != "baseline" && isa != "avx2" && isa != "avx512")
      throw ArgError("isa: expected auto, baseline, avx2 or avx512, got '" + isa + "'", true);
    return Napi::Boolean::New(info.Env(), cpu::use_isa(isa.c_str()));
  });
}

}  // namespace

void register_loss(Napi::Env env, Napi::Object exports) {
  exports.Set("lossForward", Napi::Function::New(env, LossForward, "lossForward"));
  exports.Set("alphaAt", Napi::Function::New(env, AlphaAt, "alphaAt"));
  exports.Set("checkAgainstReference", Napi::Function::New(env, CheckAgainstReference, "checkAgainstReference"));
  exports.Set("timeLoss", Napi::Function::New(env, TimeLoss, "timeLoss"));
  exports.Set("useCpuIsa", Napi::Function::New(env, UseCpuIsa, "useCpuIsa"));
}

}  // namespace dpsm::addon
