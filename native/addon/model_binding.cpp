// Models exposed to JS: created from a config document or loaded from Hugging Face weights, saved, run for
// logits, evaluated, temperature-fitted and sampled. Long work runs on libuv's pool. Each JS Model reports its
// weights' bytes to V8 as external memory (so dropped models are collected under memory pressure) and can free
// them at once with dispose(). The addon stays N-API only (one binary for every Node version). N-API runs a
// collected object's finalizer from a later task, which a loop that never yields never reaches, but it clears the
// object's weak reference in the collection itself: so each new model first releases the weights of every model
// whose reference already reads empty (test/event-loop.test.ts: 1,000 models dropped in such a loop).
#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <unordered_set>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "../core/eval/beam_search.h"
#include "../core/eval/evaluator.h"
#include "../core/eval/generate.h"
#include "../core/platform.h"
#include "convert.h"
#include "js.h"
#include "model_holder.h"

namespace dpsm::addon {
namespace {

Napi::FunctionReference* model_constructor = nullptr;

// rows × cols token ids from a typed array, as an int64 tensor (a copy); ids outside the vocabulary would index
// outside the embedding, so they are an error naming `name`.
at::Tensor ids_tensor(Napi::Int32Array a, int64_t rows, int64_t cols, int64_t vocab, const char* name) {
  const at::Tensor t = at::from_blob(a.Data(), {rows, cols}, at::TensorOptions().dtype(at::kInt)).to(at::kLong);
  if (t.min().item<int64_t>() < 0 || t.max().item<int64_t>() >= vocab)
    throw ArgError(std::string(name) + ": expected values in [0, " + std::to_string(vocab) + ")", true);
  return t;
}

// A model as a config document asks: { config: <HF config.json>, device, seed } (initialised) or
// { config, device, weights } (loaded). Runs on any thread.
std::shared_ptr<core::LanguageModel> build_model(const core::Json& o) {
  const at::Device device = platform::parse_device(core::field<std::string>(o, "device"));
  std::shared_ptr<core::LanguageModel> m = core::make_model(core::field<core::Json>(o, "config"));
  if (o.contains("weights"))
    m->load_hf_weights(core::field<std::string>(o, "weights"));
  else
    m->init_weights(core::field<uint64_t>(o, "seed"));
  m->to(device);
  return m;
}

// Logits of a batch in evaluation mode without autograd; the model's mode is restored after.
at::Tensor eval_logits(core::LanguageModel& m, const core::Batch& b) {
  const bool was_training = m.is_training();
  m.eval();
  at::Tensor out;
  {
    at::NoGradGuard no_grad;
    out = m.logits(m.hidden(b));
  }
  if (was_training) m.train();
  return out;
}

// Drops the holder's reference to its model (a job or trainer still using it keeps its own). glibc keeps freed
// megabyte-sized blocks in its heap, scattered between small live ones, so a loop of models would grow the resident
// set anyway: once 64 MB have been freed (or on dispose(), which promises the memory back), malloc_trim hands the
// free pages back (a walk of the heap: ~10 ms).
void free_model(ModelHolder& h, bool trim_now) {
  static std::atomic<int64_t> freed_since_trim{0};
  h.model.reset();
  if ((freed_since_trim += h.external_bytes) < (int64_t{64} << 20) && !trim_now) return;
  freed_since_trim = 0;
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

class Model;

// The Model objects of this thread's JS environment (a worker has its own) whose weights are not yet released.
std::unordered_set<Model*>& unreleased_models() {
  thread_local std::unordered_set<Model*> models;
  return models;
}

class Model : public Napi::ObjectWrap<Model> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "Model",
        {InstanceMethod("save", &Model::Save), InstanceMethod("saveAsync", &Model::SaveAsync),
         InstanceMethod("dispose", &Model::Dispose), InstanceMethod("logits", &Model::Logits),
         InstanceMethod("seq2seqLogits", &Model::Seq2SeqLogits), InstanceMethod("evaluate", &Model::Evaluate),
         InstanceMethod("fitTemperature", &Model::FitTemperature), InstanceMethod("generate", &Model::Generate),
         InstanceMethod("generateSeq2Seq", &Model::GenerateSeq2Seq),
         InstanceAccessor("config", &Model::Config, nullptr),
         InstanceAccessor("parameterCount", &Model::ParameterCount, nullptr),
         InstanceAccessor("device", &Model::Device, nullptr), InstanceAccessor("disposed", &Model::Disposed, nullptr),
         InstanceAccessor("externalBytes", &Model::ExternalBytes, nullptr)});
  }

  // new Model(json) builds the model on the calling thread (see build_model); createModel(json) builds it on
  // libuv's pool and hands it over here as an External.
  explicit Model(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Model>(info) {
    holder_ = std::make_shared<ModelHolder>();
    release_collected(info.Env());
    guarded(info, [&]() -> Napi::Value {
      if (info.Length() >= 1 && info[0].IsExternal())
        holder_->model = std::move(*info[0].As<Napi::External<std::shared_ptr<core::LanguageModel>>>().Data());
      else
        holder_->model = build_model(json_arg(info, 0, "model"));
      if (!holder_->model) throw std::runtime_error("model: expected a model");
      holder_->external_bytes = model_bytes(*holder_->model);
      Napi::MemoryManagement::AdjustExternalMemory(info.Env(), holder_->external_bytes);
      unreleased_models().insert(this);
      return info.Env().Undefined();
    });
  }

  void Finalize(Napi::BasicEnv env) override { release(env); }

  std::shared_ptr<ModelHolder> holder() const { return holder_; }

 private:
  core::LanguageModel& model() { return live_model(*holder_); }

  // Collected (or found collected before the finalizer ran): this object's reference to the weights goes (a job
  // still running holds its own reference to the holder, which frees the model when it ends), then V8 stops
  // counting them. In that order: free_model counts the bytes towards its next malloc_trim.
  void release(Napi::BasicEnv env) {
    unreleased_models().erase(this);
    bool expected = false;
    if (holder_->busy.compare_exchange_strong(expected, true)) {
      free_model(*holder_, false);
      holder_->busy = false;
    }
    forget_bytes(env);
  }

  static void release_collected(Napi::Env env) {
    std::vector<Model*> collected;
    for (Model* m : unreleased_models())
      if (m->Value().IsEmpty()) collected.push_back(m);
    for (Model* m : collected) m->release(env);
  }

  void forget_bytes(Napi::BasicEnv env) {
    if (holder_->external_bytes != 0) Napi::MemoryManagement::AdjustExternalMemory(env, -holder_->external_bytes);
    holder_->external_bytes = 0;
  }

  // dispose(): drops this object's reference to the weights now (a Trainer built over the model keeps its own
  // until it is collected); idempotent. Refused while a job runs on the model.
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      if (!holder_->model) return info.Env().Undefined();
      bool expected = false;
      if (!holder_->busy.compare_exchange_strong(expected, true))
        throw std::runtime_error(
            "model.dispose: the model is busy (training, evaluation, generation or saving); "
            "wait for it to finish");
      free_model(*holder_, true);
      holder_->busy = false;
      forget_bytes(info.Env());
      unreleased_models().erase(this);
      return info.Env().Undefined();
    });
  }
  Napi::Value Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !holder_->model); }
  Napi::Value ExternalBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(holder_->external_bytes));
  }

  Napi::Value Config(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value { return Napi::String::New(info.Env(), model().config().dump()); });
  }
  Napi::Value ParameterCount(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      return Napi::Number::New(info.Env(), static_cast<double>(model().parameter_count()));
    });
  }
  Napi::Value Device(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value { return Napi::String::New(info.Env(), model().device().str()); });
  }

  // save(dir, json { maxShardBytes? }) on the calling thread; saveAsync(dir, json) -> Promise<void> on the pool.
  Napi::Value Save(const Napi::CallbackInfo& info) { return save(info, false); }
  Napi::Value SaveAsync(const Napi::CallbackInfo& info) { return save(info, true); }
  Napi::Value save(const Napi::CallbackInfo& info, bool async) {
    return guarded(info, [&]() -> Napi::Value {
      if (info.Length() < 1 || !info[0].IsString()) throw ArgError("dir: expected a folder path", false);
      const core::Json o = json_arg(info, 1, "options");
      const int64_t shard = o.contains("maxShardBytes") ? core::field<int64_t>(o, "maxShardBytes")
                                                        : core::LanguageModel::kHfMaxShardBytes;
      const std::string dir = info[0].As<Napi::String>().Utf8Value();
      auto holder = holder_;
      auto work = [holder, dir, shard]() {
        BusyGuard busy(holder);
        live_model(*holder).save_hf(dir, shard);
        return true;
      };
      if (!async) return work(), info.Env().Undefined();
      return run_async<bool>(info.Env(), work, [](Napi::Env env, bool&) -> Napi::Value { return env.Undefined(); });
    });
  }

  // logits(ids: Int32Array, batch, length) -> Float32Array [batch, length, V] (eval mode, no grad)
  Napi::Value Logits(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      Napi::Int32Array ids = typed_array_arg<Napi::Int32Array>(info, 0, "ids", napi_int32_array, "an Int32Array");
      if (info.Length() < 3 || !info[1].IsNumber() || !info[2].IsNumber())
        throw ArgError("logits(ids: Int32Array, batch: number, length: number)", false);
      const int64_t B = info[1].As<Napi::Number>().Int64Value(), T = info[2].As<Napi::Number>().Int64Value();
      if (B < 1 || T < 1 || static_cast<int64_t>(ids.ElementLength()) != B * T)
        throw ArgError("ids: expected batch × length ids", true);
      core::LanguageModel& m = model();
      if (m.is_encoder_decoder()) throw ArgError("logits: an encoder-decoder takes seq2seqLogits", false);
      BusyGuard busy(holder_);
      core::Batch b;
      b.input_ids = ids_tensor(ids, B, T, m.vocab_size(), "ids").to(m.device());
      return float32_array(info.Env(), eval_logits(m, b));
    });
  }

  // seq2seqLogits(sourceIds, sourceMask, decoderIds: Int32Array, batch, sourceLength, decoderLength)
  //   -> Float32Array [batch, decoderLength, V] (eval mode, no grad)
  Napi::Value Seq2SeqLogits(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      core::LanguageModel& m = model();
      if (!m.is_encoder_decoder()) throw ArgError("seq2seqLogits: this model is not an encoder-decoder", false);
      Napi::Int32Array src = typed_array_arg<Napi::Int32Array>(info, 0, "sourceIds", napi_int32_array, "an Int32Array");
      Napi::Int32Array mask =
          typed_array_arg<Napi::Int32Array>(info, 1, "sourceMask", napi_int32_array, "an Int32Array");
      Napi::Int32Array dec =
          typed_array_arg<Napi::Int32Array>(info, 2, "decoderIds", napi_int32_array, "an Int32Array");
      if (info.Length() < 6 || !info[3].IsNumber() || !info[4].IsNumber() || !info[5].IsNumber())
        throw ArgError("seq2seqLogits(sourceIds, sourceMask, decoderIds, batch, sourceLength, decoderLength)", false);
      const int64_t B = info[3].As<Napi::Number>().Int64Value(), S = info[4].As<Napi::Number>().Int64Value(),
                    T = info[5].As<Napi::Number>().Int64Value();
      if (B < 1 || S < 1 || T < 1 || static_cast<int64_t>(src.ElementLength()) != B * S ||
          static_cast<int64_t>(mask.ElementLength()) != B * S || static_cast<int64_t>(dec.ElementLength()) != B * T)
        throw ArgError("sourceIds, sourceMask: expected batch × sourceLength values; decoderIds: batch × decoderLength",
                       true);
      core::Batch b;
      b.input_ids = ids_tensor(src, B, S, m.vocab_size(), "ids").to(m.device());
      b.decoder_input_ids = ids_tensor(dec, B, T, m.vocab_size(), "ids").to(m.device());
      b.attention_mask =
          at::from_blob(mask.Data(), {B, S}, at::TensorOptions().dtype(at::kInt)).to(at::kLong).to(m.device());
      BusyGuard busy(holder_);
      return float32_array(info.Env(), eval_logits(m, b));
    });
  }

  // generate(prompt: Int32Array, json { maxNewTokens, topK, temperature, seed }) -> Promise<Int32Array> of the
  // new tokens; prompt and new tokens fit the model's positions.
  Napi::Value Generate(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      Napi::Int32Array p =
          typed_array_arg<Napi::Int32Array>(info, 0, "prompt", napi_int32_array, "an Int32Array of token ids");
      const core::GenerateOptions o = core::generate_options_from_json(json_arg(info, 1, "options"));
      std::vector<int64_t> prompt(p.Data(), p.Data() + p.ElementLength());
      if (model().is_encoder_decoder()) throw ArgError("generate: an encoder-decoder takes generateSeq2Seq", false);
      const int64_t vocab = model().vocab_size(), positions = model().max_positions();
      const int64_t length = static_cast<int64_t>(prompt.size());
      if (prompt.empty()) throw ArgError("prompt: expected at least one token", true);
      for (int64_t id : prompt)
        if (id < 0 || id >= vocab) throw ArgError("prompt: expected ids in [0, " + std::to_string(vocab) + ")", true);
      if (o.max_new_tokens < 0 || o.max_new_tokens > positions - length)
        throw ArgError("maxNewTokens: expected at most the model's " + std::to_string(positions) +
                           " positions less the prompt's " + std::to_string(length) + " tokens",
                       true);
      auto holder = holder_;
      return run_async<std::vector<int64_t>>(
          info.Env(),
          [holder, prompt, o]() {
            BusyGuard busy(holder);
            return core::generate(live_model(*holder), prompt, o);
          },
          [](Napi::Env env, std::vector<int64_t>& out) -> Napi::Value {
            Napi::Int32Array a = Napi::Int32Array::New(env, out.size());
            for (size_t i = 0; i < out.size(); ++i) a[i] = static_cast<int32_t>(out[i]);
            return a;
          });
    });
  }

  // generateSeq2Seq(sourceIds, sourceMask: Int32Array, batch, sourceLength, json) -> Promise<Int32Array[]>, one
  // sequence per example as core::generate_seq2seq returns it (decoder start included)
  Napi::Value GenerateSeq2Seq(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      if (!model().is_encoder_decoder())
        throw ArgError("generateSeq2Seq: this model is not an encoder-decoder (GPT-2 takes generate)", false);
      Napi::Int32Array src = typed_array_arg<Napi::Int32Array>(info, 0, "sourceIds", napi_int32_array, "an Int32Array");
      Napi::Int32Array mask =
          typed_array_arg<Napi::Int32Array>(info, 1, "sourceMask", napi_int32_array, "an Int32Array");
      if (info.Length() < 4 || !info[2].IsNumber() || !info[3].IsNumber())
        throw ArgError("generateSeq2Seq(sourceIds, sourceMask, batch, sourceLength, options)", false);
      const int64_t B = info[2].As<Napi::Number>().Int64Value(), S = info[3].As<Napi::Number>().Int64Value();
      if (B < 1 || S < 1 || static_cast<int64_t>(src.ElementLength()) != B * S ||
          static_cast<int64_t>(mask.ElementLength()) != B * S)
        throw ArgError("sourceIds, sourceMask: expected batch × sourceLength values", true);
      const core::Seq2SeqGenerateOptions opts = core::seq2seq_generate_options_from_json(json_arg(info, 4, "options"));
      // Copies: the typed arrays may be collected or changed while the work runs off the event loop.
      const at::Tensor x = ids_tensor(src, B, S, model().vocab_size(), "sourceIds");
      const at::Tensor m = at::from_blob(mask.Data(), {B, S}, at::TensorOptions().dtype(at::kInt)).to(at::kLong);
      auto holder = holder_;
      using Sequences = std::vector<std::vector<int64_t>>;
      return run_async<Sequences>(
          info.Env(),
          [holder, x, m, opts]() {
            BusyGuard busy(holder);
            return core::generate_seq2seq(live_model(*holder), x, m, opts);
          },
          [](Napi::Env env, Sequences& out) -> Napi::Value {
            Napi::Array a = Napi::Array::New(env, out.size());
            for (size_t i = 0; i < out.size(); ++i) {
              Napi::Int32Array row = Napi::Int32Array::New(env, out[i].size());
              for (size_t k = 0; k < out[i].size(); ++k) row[k] = static_cast<int32_t>(out[i][k]);
              a.Set(static_cast<uint32_t>(i), row);
            }
            return a;
          });
    });
  }

  // evaluate(data, json) -> Promise<metrics[]>, one per temperature
  Napi::Value Evaluate(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      auto data = dataset_from_js(info[0], "data", model());
      const core::EvalOptions opts = core::eval_options_from_json(json_arg(info, 1, "options"));
      auto holder = holder_;
      return run_async<std::vector<core::EvalMetrics>>(
          info.Env(),
          [holder, data, opts]() {
            BusyGuard busy(holder);
            return core::evaluate(live_model(*holder), *data, opts);
          },
          [](Napi::Env env, std::vector<core::EvalMetrics>& results) -> Napi::Value {
            Napi::Array a = Napi::Array::New(env, results.size());
            for (size_t i = 0; i < results.size(); ++i) a.Set(static_cast<uint32_t>(i), metrics_to_js(env, results[i]));
            return a;
          });
    });
  }

  // fitTemperature(data, json { ...evaluator, min, max, points }) -> Promise<{ temperature, grid }>
  Napi::Value FitTemperature(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      auto data = dataset_from_js(info[0], "data", model());
      const core::Json j = json_arg(info, 1, "options");
      const core::EvalOptions opts = core::eval_options_from_json(j);
      const double t_min = core::field<double>(j, "min"), t_max = core::field<double>(j, "max");
      const int points = core::field<int>(j, "points");
      auto holder = holder_;
      return run_async<core::TemperatureFit>(
          info.Env(),
          [holder, data, opts, t_min, t_max, points]() {
            BusyGuard busy(holder);
            return core::fit_temperature(live_model(*holder), *data, opts, t_min, t_max, points);
          },
          [](Napi::Env env, core::TemperatureFit& fit) -> Napi::Value {
            Napi::Object o = Napi::Object::New(env);
            o.Set("temperature", fit.temperature);
            Napi::Array grid = Napi::Array::New(env, fit.grid.size());
            for (size_t i = 0; i < fit.grid.size(); ++i) {
              Napi::Object p = Napi::Object::New(env);
              p.Set("temperature", fit.grid[i].first);
              p.Set("nll", fit.grid[i].second);
              grid.Set(static_cast<uint32_t>(i), p);
            }
            o.Set("grid", grid);
            return o;
          });
    });
  }

  std::shared_ptr<ModelHolder> holder_;
};

// createModel(json) -> Promise<Model>: build_model on libuv's pool.
Napi::Value CreateModel(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const core::Json o = json_arg(info, 0, "model");
    using Ptr = std::shared_ptr<core::LanguageModel>;
    return run_async<Ptr>(
        info.Env(), [o]() { return build_model(o); },
        [](Napi::Env env, Ptr& m) -> Napi::Value {
          Ptr moved = std::move(m);
          // The constructor moves the model out; the External only carries it across.
          Napi::External<Ptr> e = Napi::External<Ptr>::New(env, &moved);
          return model_constructor->New({e});
        });
  });
}

}  // namespace

int64_t model_bytes(core::LanguageModel& m) {
  int64_t n = 0;
  for (const at::Tensor& t : m.parameters()) n += static_cast<int64_t>(t.nbytes());
  for (const at::Tensor& t : m.buffers()) n += static_cast<int64_t>(t.nbytes());
  return n;
}

std::shared_ptr<ModelHolder> unwrap_model(const Napi::Value& v, const char* name) {
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(model_constructor->Value()))
    throw ArgError(std::string(name) + ": expected a native Model", false);
  return Napi::ObjectWrap<Model>::Unwrap(v.As<Napi::Object>())->holder();
}

void register_models(Napi::Env env, Napi::Object exports) {
  Napi::Function model = Model::Define(env);
  model_constructor = new Napi::FunctionReference(Napi::Persistent(model));
  exports.Set("Model", model);
  exports.Set("createModel", Napi::Function::New(env, CreateModel, "createModel"));
}

}  // namespace dpsm::addon
