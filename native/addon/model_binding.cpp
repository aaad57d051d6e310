// GPT-2 models, their evaluation and their training loop, exposed to JS. Long work runs on libuv's pool:
// training reports through an ordered progress queue and never blocks the event loop.
#include <ATen/ATen.h>

#include <atomic>
#include <fstream>
#include <memory>
#include <sstream>

#include "../core/evaluator.h"
#include "../core/gpt2.h"
#include "../core/loss_probe.h"
#include "../core/trainer.h"
#include "args.h"

namespace dpsm::addon {
namespace {

using core::GPT2;
using core::GPT2Config;

// One model, shared by its JS Model object and any Trainer over it; one long job at a time.
struct ModelHolder {
  GPT2 model{nullptr};
  std::atomic<bool> busy{false};
};

class BusyGuard {
 public:
  explicit BusyGuard(std::shared_ptr<ModelHolder> h) : h_(std::move(h)) {
    bool expected = false;
    if (!h_->busy.compare_exchange_strong(expected, true))
      throw std::runtime_error("model: busy with another training or evaluation; wait for it to finish");
  }
  ~BusyGuard() { h_->busy = false; }
  BusyGuard(const BusyGuard&) = delete;
  BusyGuard& operator=(const BusyGuard&) = delete;

 private:
  std::shared_ptr<ModelHolder> h_;
};

GPT2Config config_from_js(const Napi::Object& o) {
  GPT2Config c = has(o, "size") ? core::gpt2_preset(str(o, "size", "")) : GPT2Config{};
  c.vocab_size = integer(o, "vocabSize", c.vocab_size, 2);
  c.n_positions = integer(o, "nPositions", c.n_positions, 2);
  c.n_embd = integer(o, "nEmbd", c.n_embd, 1);
  c.n_layer = integer(o, "nLayer", c.n_layer, 1);
  c.n_head = integer(o, "nHead", c.n_head, 1);
  c.dropout = num(o, "dropout", c.dropout);
  c.layer_norm_epsilon = num(o, "layerNormEpsilon", c.layer_norm_epsilon);
  core::validate_config(c);
  return c;
}

Napi::Object config_to_js(Napi::Env env, const GPT2Config& c) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("vocabSize", static_cast<double>(c.vocab_size));
  o.Set("nPositions", static_cast<double>(c.n_positions));
  o.Set("nEmbd", static_cast<double>(c.n_embd));
  o.Set("nLayer", static_cast<double>(c.n_layer));
  o.Set("nHead", static_cast<double>(c.n_head));
  o.Set("dropout", c.dropout);
  o.Set("layerNormEpsilon", c.layer_norm_epsilon);
  return o;
}

// { tokens: Int32Array (S·L), lengths: Int32Array (S), contextLength: L } → int64 tensors (copied).
core::Sequences sequences_from_js(const Napi::Value& v, const char* name) {
  if (!v.IsObject()) throw ArgError(std::string(name) + ": expected { tokens, lengths, contextLength }", false);
  const Napi::Object o = v.As<Napi::Object>();
  const Napi::Value tv = o.Get("tokens"), lv = o.Get("lengths");
  if (!tv.IsTypedArray() || tv.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw ArgError(std::string(name) + ".tokens: expected an Int32Array", false);
  if (!lv.IsTypedArray() || lv.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw ArgError(std::string(name) + ".lengths: expected an Int32Array", false);
  const int64_t L = integer(o, "contextLength", 0, 2, true);
  Napi::Int32Array tokens = tv.As<Napi::Int32Array>(), lengths = lv.As<Napi::Int32Array>();
  const int64_t S = static_cast<int64_t>(lengths.ElementLength());
  if (static_cast<int64_t>(tokens.ElementLength()) != S * L)
    throw ArgError(std::string(name) + ".tokens: expected lengths.length × contextLength = " + std::to_string(S * L) +
                       " ids, got " + std::to_string(tokens.ElementLength()),
                   true);
  core::Sequences s;
  const auto i32 = at::TensorOptions().dtype(at::kInt);
  s.tokens = at::from_blob(tokens.Data(), {S, L}, i32).to(at::kLong);
  s.lengths = at::from_blob(lengths.Data(), {S}, i32).to(at::kLong);
  return s;
}

void check_ids(const core::Sequences& s, const GPT2Config& c, const char* name) {
  if (s.count() == 0) return;
  if (s.tokens.min().item<int64_t>() < 0 || s.tokens.max().item<int64_t>() >= c.vocab_size)
    throw ArgError(std::string(name) + ".tokens: expected ids in [0, " + std::to_string(c.vocab_size) + ")", true);
  if (s.lengths.min().item<int64_t>() < 1 || s.lengths.max().item<int64_t>() > s.tokens.size(1))
    throw ArgError(std::string(name) + ".lengths: expected values in [1, contextLength]", true);
}

Napi::Object bins_to_js(Napi::Env env, const core::ReliabilityBins& b) {
  const size_t n = b.count.size();
  Napi::Array out = Napi::Array::New(env, n);
  for (size_t i = 0; i < n; ++i) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("lower", static_cast<double>(i) / n);
    o.Set("upper", static_cast<double>(i + 1) / n);
    o.Set("count", b.count[i]);
    o.Set("confidence", b.count[i] > 0 ? b.confidence_sum[i] / b.count[i] : NAN);
    o.Set("accuracy", b.count[i] > 0 ? b.hit_sum[i] / b.count[i] : NAN);
    out.Set(static_cast<uint32_t>(i), o);
  }
  return out;
}

Napi::Object eval_to_js(Napi::Env env, const core::EvalResult& r) {
  const core::EvalSums& s = r.sums;
  const double n = s.tokens > 0 ? s.tokens : NAN;
  Napi::Object o = Napi::Object::New(env);
  o.Set("temperature", r.temperature);
  o.Set("tokens", s.tokens);
  o.Set("nll", s.nll / n);
  o.Set("ppl", std::exp(s.nll / n));
  o.Set("accuracy", s.hits / n);
  o.Set("brier", s.brier / n);
  o.Set("spherical", s.spherical / n);
  o.Set("ece10", s.ece(s.bins10));
  o.Set("ece100", s.ece(s.bins100));
  o.Set("bins10", bins_to_js(env, s.bins10));
  o.Set("bins100", bins_to_js(env, s.bins100));
  return o;
}

core::EvalOptions eval_options(const Napi::Object& o) {
  core::EvalOptions e;
  e.batch_size = integer(o, "batchSize", 8, 1);
  e.max_sequences = integer(o, "maxSequences", 0, 0);
  e.autocast_bf16 = flag(o, "bf16", false);
  if (has(o, "temperatures")) {
    const Napi::Value v = o.Get("temperatures");
    if (!v.IsArray()) throw ArgError("temperatures: expected an array of numbers", false);
    const Napi::Array a = v.As<Napi::Array>();
    e.temperatures.clear();
    for (uint32_t i = 0; i < a.Length(); ++i) {
      const Napi::Value t = a.Get(i);
      if (!t.IsNumber() || !(t.As<Napi::Number>().DoubleValue() > 0))
        throw ArgError("temperatures: expected numbers > 0", true);
      e.temperatures.push_back(t.As<Napi::Number>().DoubleValue());
    }
    if (e.temperatures.empty()) throw ArgError("temperatures: expected at least one", true);
  }
  return e;
}

class Model : public Napi::ObjectWrap<Model> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Model",
                       {InstanceMethod("save", &Model::Save), InstanceMethod("logits", &Model::Logits),
                        InstanceMethod("evaluate", &Model::Evaluate),
                        InstanceMethod("fitTemperature", &Model::FitTemperature),
                        InstanceMethod("generate", &Model::Generate),
                        InstanceAccessor("config", &Model::Config, nullptr),
                        InstanceAccessor("parameterCount", &Model::ParameterCount, nullptr),
                        InstanceAccessor("device", &Model::Device, nullptr)});
  }

  // new Model({ config, seed, device }) or new Model({ load: dir, device })
  explicit Model(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Model>(info) {
    holder_ = std::make_shared<ModelHolder>();
    guarded(info, [&]() -> Napi::Value {
      const Napi::Object o = object_arg(info, 0, "options");
      const at::Device device = core::parse_device(str(o, "device", "cpu"));
      if (has(o, "load")) {
        const std::string dir = str(o, "load", "");
        std::ifstream f(dir + "/config.json");
        if (!f) throw ArgError("load: no config.json in " + dir, false);
        std::stringstream ss;
        ss << f.rdbuf();
        holder_->model = GPT2(core::config_from_hf_json(ss.str()));
        core::load_hf_weights(holder_->model, dir + "/model.safetensors");
      } else {
        if (!has(o, "config")) throw ArgError("config: required (or load: a folder)", false);
        if (!o.Get("config").IsObject()) throw ArgError("config: expected an object", false);
        holder_->model = GPT2(config_from_js(o.Get("config").As<Napi::Object>()));
        holder_->model->init_weights(static_cast<uint64_t>(integer(o, "seed", 0, 0)));
      }
      holder_->model->to(device);
      return info.Env().Undefined();
    });
  }

  std::shared_ptr<ModelHolder> holder() const { return holder_; }

 private:
  Napi::Value Config(const Napi::CallbackInfo& info) { return config_to_js(info.Env(), holder_->model->config); }
  Napi::Value ParameterCount(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(holder_->model->parameter_count()));
  }
  Napi::Value Device(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), holder_->model->parameters().front().device().str());
  }

  Napi::Value Save(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      if (info.Length() < 1 || !info[0].IsString()) throw ArgError("dir: expected a folder path", false);
      BusyGuard busy(holder_);
      core::save_hf(holder_->model, info[0].As<Napi::String>().Utf8Value());
      return info.Env().Undefined();
    });
  }

  // logits(ids: Int32Array, batch, length) -> Float32Array [batch, length, V] (eval mode, no grad)
  Napi::Value Logits(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      if (info.Length() < 3 || !info[0].IsTypedArray() ||
          info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array || !info[1].IsNumber() || !info[2].IsNumber())
        throw ArgError("logits(ids: Int32Array, batch: number, length: number)", false);
      Napi::Int32Array ids = info[0].As<Napi::Int32Array>();
      const int64_t B = info[1].As<Napi::Number>().Int64Value(), T = info[2].As<Napi::Number>().Int64Value();
      if (B < 1 || T < 1 || static_cast<int64_t>(ids.ElementLength()) != B * T)
        throw ArgError("ids: expected batch × length ids", true);
      BusyGuard busy(holder_);
      GPT2& m = holder_->model;
      const at::Tensor x = at::from_blob(ids.Data(), {B, T}, at::TensorOptions().dtype(at::kInt)).to(at::kLong);
      if (x.min().item<int64_t>() < 0 || x.max().item<int64_t>() >= m->config.vocab_size)
        throw ArgError("ids: expected values in [0, " + std::to_string(m->config.vocab_size) + ")", true);
      const bool was_training = m->is_training();
      m->eval();
      at::Tensor out;
      {
        at::NoGradGuard no_grad;
        out = m->forward(x.to(m->parameters().front().device())).to(at::kFloat).cpu().contiguous();
      }
      if (was_training) m->train();
      Napi::Float32Array a = Napi::Float32Array::New(info.Env(), static_cast<size_t>(out.numel()));
      std::memcpy(a.Data(), out.data_ptr<float>(), sizeof(float) * out.numel());
      return a;
    });
  }

  // generate(prompt: Int32Array, { maxNewTokens, topK, temperature, seed }) -> Int32Array of new tokens
  Napi::Value Generate(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      if (info.Length() < 1 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
        throw ArgError("prompt: expected an Int32Array of token ids", false);
      Napi::Int32Array p = info[0].As<Napi::Int32Array>();
      const Napi::Object o = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(info.Env());
      const int64_t max_new = integer(o, "maxNewTokens", 32, 0);
      const int64_t top_k = integer(o, "topK", 1, 1);
      const double temperature = num(o, "temperature", 1.0);
      if (!(temperature > 0)) throw ArgError("temperature: expected a number > 0", true);
      const uint64_t seed = static_cast<uint64_t>(integer(o, "seed", 0, 0));
      std::vector<int64_t> prompt(p.Data(), p.Data() + p.ElementLength());
      for (int64_t id : prompt)
        if (id < 0 || id >= holder_->model->config.vocab_size)
          throw ArgError("prompt: expected ids in [0, " + std::to_string(holder_->model->config.vocab_size) + ")", true);
      BusyGuard busy(holder_);
      const std::vector<int64_t> out = core::generate(holder_->model, prompt, max_new, top_k, temperature, seed);
      Napi::Int32Array a = Napi::Int32Array::New(info.Env(), out.size());
      for (size_t i = 0; i < out.size(); ++i) a[i] = static_cast<int32_t>(out[i]);
      return a;
    });
  }

  Napi::Value Evaluate(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      core::Sequences data = sequences_from_js(info[0], "data");
      check_ids(data, holder_->model->config, "data");
      core::EvalOptions opts = eval_options(info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>()
                                                                                    : Napi::Object::New(info.Env()));
      auto holder = holder_;
      return run_async<std::vector<core::EvalResult>>(
          info.Env(),
          [holder, data, opts]() {
            BusyGuard busy(holder);
            return core::evaluate(holder->model, data, opts);
          },
          [](Napi::Env env, std::vector<core::EvalResult>& results) -> Napi::Value {
            Napi::Array a = Napi::Array::New(env, results.size());
            for (size_t i = 0; i < results.size(); ++i) a.Set(static_cast<uint32_t>(i), eval_to_js(env, results[i]));
            return a;
          });
    });
  }

  Napi::Value FitTemperature(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      core::Sequences data = sequences_from_js(info[0], "data");
      check_ids(data, holder_->model->config, "data");
      const Napi::Object o = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(info.Env());
      core::EvalOptions opts = eval_options(o);
      const double t_min = num(o, "min", 0.5), t_max = num(o, "max", 3.0);
      const int points = static_cast<int>(integer(o, "points", 26, 3));
      auto holder = holder_;
      using Fit = std::pair<double, std::vector<core::EvalResult>>;
      return run_async<Fit>(
          info.Env(),
          [holder, data, opts, t_min, t_max, points]() {
            BusyGuard busy(holder);
            return core::fit_temperature(holder->model, data, opts, t_min, t_max, points);
          },
          [](Napi::Env env, Fit& fit) -> Napi::Value {
            Napi::Object o = Napi::Object::New(env);
            o.Set("temperature", fit.first);
            Napi::Array grid = Napi::Array::New(env, fit.second.size());
            for (size_t i = 0; i < fit.second.size(); ++i) {
              Napi::Object p = Napi::Object::New(env);
              p.Set("temperature", fit.second[i].temperature);
              p.Set("nll", fit.second[i].nll());
              grid.Set(static_cast<uint32_t>(i), p);
            }
            o.Set("grid", grid);
            return o;
          });
    });
  }

  std::shared_ptr<ModelHolder> holder_;
};

Napi::FunctionReference* model_constructor = nullptr;

core::TrainConfig train_config_from_js(const Napi::Object& o) {
  core::TrainConfig c;
  c.seed = static_cast<uint64_t>(integer(o, "seed", 0, 0));
  c.data_seed = static_cast<uint64_t>(integer(o, "dataSeed", 0, 0));
  c.batch_size = integer(o, "batchSize", c.batch_size, 1);
  c.grad_accum = integer(o, "gradAccumulation", c.grad_accum, 1);
  c.max_steps = integer(o, "maxSteps", c.max_steps, 1);
  c.warmup_steps = integer(o, "lrWarmupSteps", c.warmup_steps, 0);
  c.lr = num(o, "lr", c.lr);
  c.min_lr_ratio = num(o, "minLrRatio", c.min_lr_ratio);
  c.weight_decay = num(o, "weightDecay", c.weight_decay);
  c.beta1 = num(o, "beta1", c.beta1);
  c.beta2 = num(o, "beta2", c.beta2);
  c.eps = num(o, "eps", c.eps);
  c.grad_clip = num(o, "gradClip", c.grad_clip);
  c.eval_every = integer(o, "evalEvery", c.eval_every, 1);
  c.eval_max_sequences = integer(o, "evalMaxSequences", 0, 0);
  c.patience = integer(o, "patience", 0, 0);
  c.run_dir = str(o, "runDir", "");
  c.bf16 = flag(o, "bf16", false);
  c.noise_step_fraction = num(o, "noiseStepFraction", 0.0);
  c.noise_token_fraction = num(o, "noiseTokenFraction", 0.0);
  if (!has(o, "loss") || !o.Get("loss").IsObject()) throw ArgError("loss: expected an object", false);
  const Napi::Object l = o.Get("loss").As<Napi::Object>();
  c.loss.kind = str(l, "kind", "ce");
  c.loss.smoothing = num(l, "smoothing", 0.1);
  c.loss.focal_gamma = num(l, "gamma", 2.0);
  if (c.loss.kind == "dpsm") {
    c.loss.fused.spec.kind = dpsm::Kind::DPSM;
    c.loss.fused.spec.schedule = core::parse_schedule(str(l, "schedule", "linear"));
    c.loss.fused.spec.warmup_steps = num(l, "warmupSteps", 1.0);
    c.loss.fused.spec.alpha = num(l, "alpha", 0.0);
  }
  return c;
}

Napi::Object progress_to_js(Napi::Env env, const core::ProgressRecord& r) {
  using T = core::ProgressRecord::Type;
  Napi::Object o = Napi::Object::New(env);
  const char* type = r.type == T::Step ? "step" : r.type == T::Eval ? "eval" : r.type == T::Checkpoint ? "checkpoint" : "done";
  o.Set("type", type);
  o.Set("step", static_cast<double>(r.step));
  switch (r.type) {
    case T::Step:
      o.Set("loss", r.loss);
      o.Set("alpha", r.alpha);
      o.Set("lr", r.lr);
      o.Set("gradNorm", r.grad_norm);
      o.Set("stepMs", r.step_ms);
      o.Set("tokensPerSecond", r.tokens_per_s);
      o.Set("tokensSeen", static_cast<double>(r.tokens_seen));
      o.Set("elapsedSeconds", r.elapsed_s);
      o.Set("peakMemoryBytes", static_cast<double>(r.peak_memory_bytes));
      o.Set("noisy", r.noisy);
      break;
    case T::Eval:
      o.Set("metrics", eval_to_js(env, r.eval));
      o.Set("improved", r.improved);
      o.Set("bestStep", static_cast<double>(r.best_step));
      o.Set("elapsedSeconds", r.elapsed_s);
      o.Set("peakMemoryBytes", static_cast<double>(r.peak_memory_bytes));
      break;
    case T::Checkpoint:
      o.Set("path", r.path);
      o.Set("best", r.improved);
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

class FitWorker : public Napi::AsyncProgressQueueWorker<core::ProgressRecord> {
 public:
  FitWorker(Napi::Function on_progress, std::shared_ptr<ModelHolder> holder, std::shared_ptr<core::Trainer> trainer,
            std::shared_ptr<std::atomic<bool>> abort)
      : Napi::AsyncProgressQueueWorker<core::ProgressRecord>(on_progress.Env()),
        deferred_(Napi::Promise::Deferred::New(on_progress.Env())), holder_(std::move(holder)),
        trainer_(std::move(trainer)), abort_(std::move(abort)) {
    on_progress_ = Napi::Persistent(on_progress);
  }
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute(const ExecutionProgress& progress) override {
    try {
      BusyGuard busy(holder_);
      trainer_->fit([&](const core::ProgressRecord& r) { progress.Send(&r, 1); }, *abort_);
    } catch (const std::exception& e) {
      error_ = e.what();
      if (auto* c = dynamic_cast<const c10::Error*>(&e)) error_ = c->what_without_backtrace();
      SetError(error_);
    }
  }
  void OnProgress(const core::ProgressRecord* data, size_t count) override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    for (size_t i = 0; i < count; ++i) {
      try {
        on_progress_.Call({progress_to_js(env, data[i])});
      } catch (const Napi::Error& e) {
        // A throwing listener must not take the training thread down; it ends the run instead.
        *abort_ = true;
        listener_error_ = e.Message();
      }
    }
  }
  void OnOK() override {
    if (!listener_error_.empty()) {
      deferred_.Reject(Napi::Error::New(Env(), "progress listener threw: " + listener_error_).Value());
      return;
    }
    deferred_.Resolve(Env().Undefined());
  }
  void OnError(const Napi::Error&) override { deferred_.Reject(Napi::Error::New(Env(), error_).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::FunctionReference on_progress_;
  std::shared_ptr<ModelHolder> holder_;
  std::shared_ptr<core::Trainer> trainer_;
  std::shared_ptr<std::atomic<bool>> abort_;
  std::string error_, listener_error_;
};

class Trainer : public Napi::ObjectWrap<Trainer> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Trainer",
                       {InstanceMethod("fit", &Trainer::Fit), InstanceMethod("abort", &Trainer::Abort),
                        InstanceAccessor("fingerprint", &Trainer::Fingerprint, nullptr)});
  }

  // new Trainer(model: Model, config, train: sequences, valid: sequences)
  explicit Trainer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Trainer>(info) {
    guarded(info, [&]() -> Napi::Value {
      if (info.Length() < 1 || !info[0].IsObject() || !info[0].As<Napi::Object>().InstanceOf(model_constructor->Value()))
        throw ArgError("model: expected a native Model", false);
      holder_ = Napi::ObjectWrap<Model>::Unwrap(info[0].As<Napi::Object>())->holder();
      const core::TrainConfig cfg = train_config_from_js(object_arg(info, 1, "config"));
      core::Sequences train = sequences_from_js(info[2], "train");
      core::Sequences valid = sequences_from_js(info[3], "valid");
      check_ids(train, holder_->model->config, "train");
      check_ids(valid, holder_->model->config, "valid");
      trainer_ = std::make_shared<core::Trainer>(holder_->model, cfg, std::move(train), std::move(valid));
      abort_ = std::make_shared<std::atomic<bool>>(false);
      return info.Env().Undefined();
    });
  }

 private:
  Napi::Value Fit(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      if (info.Length() < 1 || !info[0].IsFunction()) throw ArgError("onProgress: expected a function", false);
      if (holder_->busy) throw std::runtime_error("model: busy with another training or evaluation");
      *abort_ = false;
      auto* w = new FitWorker(info[0].As<Napi::Function>(), holder_, trainer_, abort_);
      Napi::Promise p = w->promise();
      w->Queue();
      return p;
    });
  }
  Napi::Value Abort(const Napi::CallbackInfo& info) {
    *abort_ = true;
    return info.Env().Undefined();
  }
  Napi::Value Fingerprint(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), trainer_->fingerprint()); }

  std::shared_ptr<ModelHolder> holder_;
  std::shared_ptr<core::Trainer> trainer_;
  std::shared_ptr<std::atomic<bool>> abort_;
};

// modelPreset(size) -> the preset's GPT2Config, so JS never keeps a second copy of the table
Napi::Value ModelPreset(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsString()) throw ArgError("size: expected a string", false);
    return config_to_js(info.Env(), core::gpt2_preset(info[0].As<Napi::String>().Utf8Value()));
  });
}

}  // namespace

void register_models(Napi::Env env, Napi::Object exports) {
  Napi::Function model = Model::Define(env);
  model_constructor = new Napi::FunctionReference(Napi::Persistent(model));
  exports.Set("Model", model);
  exports.Set("Trainer", Trainer::Define(env));
  exports.Set("modelPreset", Napi::Function::New(env, ModelPreset, "modelPreset"));
}

}  // namespace dpsm::addon
