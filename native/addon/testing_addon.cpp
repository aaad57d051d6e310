// The testing addon (build/Release/dpsm_native_testing.node): the fused loss's reference check and timings,
// and the CPU kernel's ISA switch, for test/ and bench/ only. The product addon carries none of this.
#include <ATen/Parallel.h>
#include <torch/nn/utils/clip_grad.h>

#include "../core/data/sampler.h"
#include "../core/loss/objectives.h"
#include "../core/models/language_model.h"
#include "../core/platform.h"
#include "../core/testing/linear_loss_probe.h"
#include "../core/testing/loss_probe.h"
#include "../core/testing/op_recorder.h"
#include "../core/train/optim.h"
#include "../core/train/trainer.h"
#include "../kernels/dpsm_kernels.h"
#include "convert.h"
#include "js.h"

namespace dpsm::addon {
namespace {

// { rows, vocab, dtype, device, scale, extreme, ignoreFraction, seed } of a probe document.
core::ProbeInputs probe_inputs(const core::Json& o) {
  core::ProbeInputs in;
  in.rows = core::field<int64_t>(o, "rows");
  in.vocab = core::field<int64_t>(o, "vocab");
  in.dtype = o.value("dtype", std::string("float32"));
  in.device = o.value("device", std::string("cpu"));
  in.scale = o.value("scale", 3.0);
  in.extreme = o.value("extreme", false);
  in.ignore_fraction = o.value("ignoreFraction", 0.0);
  in.seed = o.value("seed", uint64_t{0});
  if (in.rows < 0 || in.vocab < 1) throw ArgError("rows, vocab: expected rows >= 0 and vocab >= 1", true);
  core::parse_dtype(in.dtype);
  return in;
}

// checkAgainstReference(json { ...probe inputs, loss, step, inPlace }) -> Promise<errors>
Napi::Value CheckAgainstReference(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const core::Json o = json_arg(info, 0, "options");
    const core::ProbeInputs in = probe_inputs(o);
    const core::LossOptions opt = core::fused_options_from_json(core::field<core::Json>(o, "loss"));
    const int64_t step = o.value("step", int64_t{0});
    const bool in_place = o.value("inPlace", false);
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
          js.Set("smoothing", r.smoothing);
          return js;
        });
  });
}

// timeLoss(json { ...probe inputs, loss, path, backward, iters, warmup }) -> Promise<{ ms[], extraPeakBytes }>
Napi::Value TimeLoss(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const core::Json o = json_arg(info, 0, "options");
    const core::ProbeInputs in = probe_inputs(o);
    const core::LossOptions opt = core::fused_options_from_json(core::field<core::Json>(o, "loss"));
    const std::string path = core::field<std::string>(o, "path");
    const bool backward = o.value("backward", true);
    const int iters = o.value("iters", 5), warmup = o.value("warmup", 1);
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

// copyBandwidth(json { device, bytes, iters }) -> Promise<bytes per second> (read + written; the fused loss's floor)
Napi::Value CopyBandwidth(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const core::Json o = json_arg(info, 0, "options");
    const std::string device = core::field<std::string>(o, "device");
    const int64_t bytes = core::field<int64_t>(o, "bytes");
    const int iters = o.value("iters", 10);
    return run_async<double>(
        info.Env(), [=]() { return core::copy_bandwidth(device, bytes, iters); },
        [](Napi::Env env, double& v) -> Napi::Value { return Napi::Number::New(env, v); });
  });
}

// releaseCachedMemory(): the CUDA caching allocator's unused blocks handed back, so that another process (the
// benchmark's Python columns) finds the device's memory free.
Napi::Value ReleaseCachedMemory(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
#if defined(DPSM_WITH_CUDA)
    platform::cuda_empty_cache();
#endif
    return info.Env().Undefined();
  });
}

// { rows, dim, vocab, bias, bf16, ignoreFraction, chunkBytes, seed, device } of a linear-head probe document.
core::LinearProbeInputs linear_probe_inputs(const core::Json& o) {
  core::LinearProbeInputs in;
  in.rows = core::field<int64_t>(o, "rows");
  in.dim = core::field<int64_t>(o, "dim");
  in.vocab = core::field<int64_t>(o, "vocab");
  in.bias = o.value("bias", false);
  in.bf16 = o.value("bf16", false);
  in.ignore_fraction = o.value("ignoreFraction", 0.0);
  in.chunk_bytes = o.value("chunkBytes", core::kLinearLossChunkBytes);
  in.seed = o.value("seed", uint64_t{0});
  in.device = o.value("device", std::string("cpu"));
  if (in.rows < 0 || in.dim < 1 || in.vocab < 1 || in.chunk_bytes < 1)
    throw ArgError("rows, dim, vocab, chunkBytes: expected rows >= 0 and the others >= 1", true);
  return in;
}

// checkLinearAgainstReference(json { ...linear probe inputs, loss, step, temperatures }) -> Promise<errors>
Napi::Value CheckLinearAgainstReference(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const core::Json o = json_arg(info, 0, "options");
    const core::LinearProbeInputs in = linear_probe_inputs(o);
    const core::LossOptions opt = core::fused_options_from_json(core::field<core::Json>(o, "loss"));
    const int64_t step = o.value("step", int64_t{0});
    const std::vector<double> temps = o.value("temperatures", std::vector<double>{1.0});
    return run_async<core::LinearReferenceCheck>(
        info.Env(), [=]() { return core::check_linear_against_reference(in, opt, step, temps); },
        [](Napi::Env env, core::LinearReferenceCheck& r) -> Napi::Value {
          Napi::Object js = Napi::Object::New(env);
          js.Set("lossRelErr", r.loss_rel_err);
          js.Set("hiddenGradRelErr", r.hidden_grad_rel_err);
          js.Set("weightGradRelErr", r.weight_grad_rel_err);
          js.Set("biasGradRelErr", r.bias_grad_rel_err);
          js.Set("unfusedLossRelErr", r.unfused_loss_rel_err);
          js.Set("unfusedHiddenGradRelErr", r.unfused_hidden_grad_rel_err);
          js.Set("unfusedWeightGradRelErr", r.unfused_weight_grad_rel_err);
          js.Set("nllRelErr", r.nll_rel_err);
          js.Set("sqNormRelErr", r.sq_norm_rel_err);
          Napi::Array ev = Napi::Array::New(env, r.eval_nll_rel_err.size());
          for (size_t i = 0; i < r.eval_nll_rel_err.size(); ++i)
            ev.Set(static_cast<uint32_t>(i), r.eval_nll_rel_err[i]);
          js.Set("evalNllRelErr", ev);
          js.Set("chunks", static_cast<double>(r.chunks));
          js.Set("finite", r.finite);
          js.Set("smoothing", r.smoothing);
          return js;
        });
  });
}

// timeLinearLoss(json { ...linear probe inputs, loss, path, iters, warmup }) -> Promise<{ ms[], peakBytes }>
Napi::Value TimeLinearLoss(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const core::Json o = json_arg(info, 0, "options");
    const core::LinearProbeInputs in = linear_probe_inputs(o);
    const core::LossOptions opt = core::fused_options_from_json(core::field<core::Json>(o, "loss"));
    const std::string path = core::field<std::string>(o, "path");
    const int iters = o.value("iters", 3), warmup = o.value("warmup", 1);
    return run_async<core::LinearTiming>(
        info.Env(), [=]() { return core::time_linear_loss(in, opt, path, iters, warmup); },
        [](Napi::Env env, core::LinearTiming& t) -> Napi::Value {
          Napi::Object js = Napi::Object::New(env);
          Napi::Array ms = Napi::Array::New(env, t.ms.size());
          for (size_t i = 0; i < t.ms.size(); ++i) ms.Set(static_cast<uint32_t>(i), t.ms[i]);
          js.Set("ms", ms);
          js.Set("peakBytes", static_cast<double>(t.peak_bytes));
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

// summarySwapSources(seed, batchIndex, rows, p) -> Int32Array: the C++ twin of lib/data/summary-noise.ts
Napi::Value SummarySwapSources(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    if (info.Length() < 4) throw ArgError("summarySwapSources(seed, batchIndex, rows, p)", false);
    for (size_t i = 0; i < 4; ++i)
      if (!info[i].IsNumber()) throw ArgError("summarySwapSources: expected four numbers", false);
    const auto src =
        core::summary_swap_sources(static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value()),
                                   static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value()),
                                   info[2].As<Napi::Number>().Int64Value(), info[3].As<Napi::Number>().DoubleValue());
    Napi::Int32Array a = Napi::Int32Array::New(info.Env(), src.size());
    for (size_t i = 0; i < src.size(); ++i) a[i] = static_cast<int32_t>(src[i]);
    return a;
  });
}

// startOpRecording(): from now on every thread's ATen ops and user scopes are recorded (core/testing/op_recorder.h).
Napi::Value StartOpRecording(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    core::start_op_recording();
    return info.Env().Undefined();
  });
}

// stopOpRecording() -> [{ kind: "op" | "begin" | "end", name, depth, thread, inputs?, outputs? }], each tensor
// { sizes, dtype, bytes }: what was recorded since startOpRecording.
Napi::Value StopOpRecording(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const Napi::Env env = info.Env();
    const std::vector<core::RecordedEvent> events = core::stop_op_recording();
    auto tensors = [&](const std::vector<core::RecordedTensor>& ts) {
      Napi::Array a = Napi::Array::New(env, ts.size());
      for (size_t i = 0; i < ts.size(); ++i) {
        Napi::Object t = Napi::Object::New(env);
        Napi::Array sizes = Napi::Array::New(env, ts[i].sizes.size());
        for (size_t k = 0; k < ts[i].sizes.size(); ++k)
          sizes.Set(static_cast<uint32_t>(k), static_cast<double>(ts[i].sizes[k]));
        t.Set("sizes", sizes);
        t.Set("dtype", ts[i].dtype);
        t.Set("bytes", static_cast<double>(ts[i].bytes));
        a.Set(static_cast<uint32_t>(i), t);
      }
      return a;
    };
    Napi::Array out = Napi::Array::New(env, events.size());
    for (size_t i = 0; i < events.size(); ++i) {
      const core::RecordedEvent& e = events[i];
      Napi::Object o = Napi::Object::New(env);
      using K = core::RecordedEvent::Kind;
      o.Set("kind", e.kind == K::Op ? "op" : e.kind == K::Begin ? "begin" : "end");
      o.Set("name", e.name);
      o.Set("thread", static_cast<double>(e.thread));
      if (e.kind == K::Op) {
        o.Set("depth", e.depth);
        o.Set("inputs", tensors(e.inputs));
        o.Set("outputs", tensors(e.outputs));
      }
      out.Set(static_cast<uint32_t>(i), o);
    }
    return out;
  });
}

// A copy of the Float32Array `v` as a 1-D float tensor; `what` names it in the error.
at::Tensor float_tensor(const Napi::Value& v, const std::string& what) {
  const auto f = typed_array_value<Napi::Float32Array>(v, what, napi_float32_array, "a Float32Array");
  return at::from_blob(const_cast<float*>(f.Data()), {static_cast<int64_t>(f.ElementLength())}, at::kFloat).clone();
}

// gradientNorm(grads: Float32Array[]) -> { norm, fp32Norm }: the trainer's global gradient norm (double
// accumulation, train/optim.cpp) and libtorch's clip_grad_norm_ (fp32) of the same gradients.
Napi::Value GradientNorm(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsArray()) throw ArgError("grads: expected an array of Float32Array", false);
    const Napi::Array a = info[0].As<Napi::Array>();
    std::vector<at::Tensor> params;
    for (uint32_t i = 0; i < a.Length(); ++i) {
      const at::Tensor g = float_tensor(a.Get(i), "grads[" + std::to_string(i) + "]");
      at::Tensor p = at::zeros_like(g);
      p.mutable_grad() = g;
      params.push_back(p);
    }
    Napi::Object js = Napi::Object::New(info.Env());
    js.Set("norm", core::gradient_norm(params).item<double>());
    js.Set("fp32Norm", static_cast<double>(torch::nn::utils::clip_grad_norm_(params, 1e30)));
    return js;
  });
}

// adamwSteps({ shapes, params, grads, lrs, weightDecay, betas, eps, gradClip, groupElements? }) -> { params, expAvg,
// expAvgSq, gradNorms, updateRatios, fused }: the trainer's AdamW (train/optim.cpp, with its clipping) from `params`
// (Float32Array per parameter, of `shapes`) over len(lrs) steps, step s with gradients grads[s] and lr lrs[s].
Napi::Value AdamwSteps(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsObject()) throw ArgError("options: expected an object", false);
    const Napi::Object o = info[0].As<Napi::Object>();
    auto array = [](const Napi::Value& v, const std::string& what) {
      if (!v.IsArray()) throw ArgError(what + ": expected an array", false);
      return v.As<Napi::Array>();
    };
    auto floats = [](const Napi::Value& v, const std::vector<int64_t>& shape, const std::string& what) {
      return float_tensor(v, what).reshape(shape);
    };
    auto numbers = [&](const std::string& key) {
      std::vector<double> out;
      const Napi::Array a = array(o.Get(key), key);
      for (uint32_t i = 0; i < a.Length(); ++i) out.push_back(a.Get(i).As<Napi::Number>().DoubleValue());
      return out;
    };
    const Napi::Array shapes = array(o.Get("shapes"), "shapes");
    const Napi::Array init = array(o.Get("params"), "params");
    const Napi::Array grads = array(o.Get("grads"), "grads");
    const std::vector<double> lrs = numbers("lrs"), betas = numbers("betas");
    std::vector<std::vector<int64_t>> dims;
    std::vector<std::string> names;
    std::vector<at::Tensor> params;
    for (uint32_t i = 0; i < shapes.Length(); ++i) {
      std::vector<int64_t> d;
      const Napi::Array s = array(shapes.Get(i), "shapes[" + std::to_string(i) + "]");
      for (uint32_t k = 0; k < s.Length(); ++k) d.push_back(s.Get(k).As<Napi::Number>().Int64Value());
      dims.push_back(d);
      names.push_back("p" + std::to_string(i));
      params.push_back(floats(init.Get(i), d, "params[" + std::to_string(i) + "]"));
    }
    core::OptimConfig c;
    c.weight_decay = o.Get("weightDecay").As<Napi::Number>().DoubleValue();
    c.beta1 = betas.at(0);
    c.beta2 = betas.at(1);
    c.eps = o.Get("eps").As<Napi::Number>().DoubleValue();
    c.grad_clip = o.Get("gradClip").As<Napi::Number>().DoubleValue();
    const Napi::Value group = o.Get("groupElements");
    core::AdamW optim = group.IsUndefined() ? core::AdamW(names, params, c)
                                            : core::AdamW(names, params, c, group.As<Napi::Number>().Int64Value());
    std::vector<double> norms, ratios;
    for (uint32_t s = 0; s < lrs.size(); ++s) {
      const Napi::Array g = array(grads.Get(s), "grads[" + std::to_string(s) + "]");
      for (size_t i = 0; i < params.size(); ++i)
        params[i].mutable_grad() = floats(g.Get(static_cast<uint32_t>(i)), dims[i], "grads[][]");
      const at::Tensor norm = core::gradient_norm(params);
      optim.step(lrs[s], s, core::clip_coefficient(norm, c));
      optim.zero_grad();
      norms.push_back(norm.item<double>());
      const at::Tensor u = optim.update_norms().cpu();
      ratios.push_back(core::AdamW::update_ratio(u[0].item<double>(), u[1].item<double>()));
    }
    auto out_arrays = [&](const std::vector<at::Tensor>& ts) {
      Napi::Array a = Napi::Array::New(info.Env(), ts.size());
      for (size_t i = 0; i < ts.size(); ++i) a.Set(static_cast<uint32_t>(i), float32_array(info.Env(), ts[i]));
      return a;
    };
    auto out_numbers = [&](const std::vector<double>& v) {
      Napi::Array a = Napi::Array::New(info.Env(), v.size());
      for (size_t i = 0; i < v.size(); ++i) a.Set(static_cast<uint32_t>(i), v[i]);
      return a;
    };
    Napi::Object js = Napi::Object::New(info.Env());
    js.Set("params", out_arrays(params));
    js.Set("expAvg", out_arrays(optim.exp_avg));
    js.Set("expAvgSq", out_arrays(optim.exp_avg_sq));
    js.Set("gradNorms", out_numbers(norms));
    js.Set("updateRatios", out_numbers(ratios));
    js.Set("fused", core::AdamW::fused());
    return js;
  });
}

// trainingGradients(model: json { config, weights }, trainer: json (lib's trainer document), data) -> { loss,
// grads: { [name]: Float32Array } }: the model loaded from Hugging Face weights on the CPU, and the loss and
// gradients of one step of a Trainer over it (Trainer::gradients) on all of `data` as one batch (data as the
// Trainer takes it: toNativeData's arrays). A parameter with no gradient is absent.
Napi::Value TrainingGradients(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const core::Json m = json_arg(info, 0, "model");
    const core::Json doc = json_arg(info, 1, "trainer");
    std::shared_ptr<core::LanguageModel> model = core::make_model(core::field<core::Json>(m, "config"));
    model->load_hf_weights(core::field<std::string>(m, "weights"));
    if (info.Length() < 3) throw ArgError("data: expected the training data", false);
    const std::shared_ptr<const core::Dataset> data = dataset_from_js(info[2], "data", *model);
    const core::TrainConfig cfg = core::train_config_from_json(doc);
    core::Trainer trainer(model, cfg, data, data);
    const at::Tensor rows = at::arange(data->count(), at::TensorOptions().dtype(at::kLong));
    const auto [loss, grads] =
        trainer.gradients(data->batch(rows, cfg.objective.fused.ignore_index, at::Device(at::kCPU)));
    Napi::Object named = Napi::Object::New(info.Env());
    for (const auto& [name, g] : grads)
      if (g.defined()) named.Set(name, float32_array(info.Env(), g.to(at::kFloat).contiguous().reshape({-1})));
    Napi::Object js = Napi::Object::New(info.Env());
    js.Set("loss", loss);
    js.Set("grads", named);
    return js;
  });
}

Napi::Value CpuIsa(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), cpu::isa_name()); }

}  // namespace

Napi::Object InitTesting(Napi::Env env, Napi::Object exports) {
  platform::init_threads();
  exports.Set("checkAgainstReference", Napi::Function::New(env, CheckAgainstReference, "checkAgainstReference"));
  exports.Set("timeLoss", Napi::Function::New(env, TimeLoss, "timeLoss"));
  exports.Set("copyBandwidth", Napi::Function::New(env, CopyBandwidth, "copyBandwidth"));
  exports.Set("releaseCachedMemory", Napi::Function::New(env, ReleaseCachedMemory, "releaseCachedMemory"));
  exports.Set("checkLinearAgainstReference",
              Napi::Function::New(env, CheckLinearAgainstReference, "checkLinearAgainstReference"));
  exports.Set("timeLinearLoss", Napi::Function::New(env, TimeLinearLoss, "timeLinearLoss"));
  exports.Set("useCpuIsa", Napi::Function::New(env, UseCpuIsa, "useCpuIsa"));
  exports.Set("gradientNorm", Napi::Function::New(env, GradientNorm, "gradientNorm"));
  exports.Set("adamwSteps", Napi::Function::New(env, AdamwSteps, "adamwSteps"));
  exports.Set("startOpRecording", Napi::Function::New(env, StartOpRecording, "startOpRecording"));
  exports.Set("stopOpRecording", Napi::Function::New(env, StopOpRecording, "stopOpRecording"));
  exports.Set("trainingGradients", Napi::Function::New(env, TrainingGradients, "trainingGradients"));
  exports.Set("cpuIsa", Napi::Function::New(env, CpuIsa, "cpuIsa"));
  exports.Set("summarySwapSources", Napi::Function::New(env, SummarySwapSources, "summarySwapSources"));
  return exports;
}

}  // namespace dpsm::addon

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return dpsm::addon::InitTesting(env, exports); }
NODE_API_MODULE(dpsm_native_testing, InitModule)
