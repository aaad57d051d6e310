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

// A whole number >= 1 in field `name` of `o`.
int64_t positive_field(const Napi::Object& o, const char* name) {
  const Napi::Value v = o.Get(name);
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : 0;
  if (!(d >= 1) || d != static_cast<double>(static_cast<int64_t>(d)))
    throw ArgError(std::string(name) + ": expected an integer >= 1", true);
  return static_cast<int64_t>(d);
}

// The token rows of logits() and generate(): { ids, batch, length } and, for an encoder-decoder, the source mask
// (batch × length, as int64 on the CPU). The sizes are what memory safety needs: every read stays in the arrays.
struct TokenRows {
  Napi::Int32Array ids;
  int64_t batch, length;
  at::Tensor mask;
};
TokenRows token_rows(const Napi::CallbackInfo& info, size_t i, bool with_mask) {
  if (info.Length() <= i || !info[i].IsObject()) throw ArgError("inputs: expected { ids, batch, length }", false);
  const Napi::Object o = info[i].As<Napi::Object>();
  TokenRows r{typed_array_value<Napi::Int32Array>(o.Get("ids"), "ids", napi_int32_array, "an Int32Array"),
              positive_field(o, "batch"),
              positive_field(o, "length"),
              {}};
  if (static_cast<int64_t>(r.ids.ElementLength()) != r.batch * r.length)
    throw ArgError("ids: expected batch × length ids", true);
  if (with_mask) {
    Napi::Int32Array mask = typed_array_value<Napi::Int32Array>(o.Get("mask"), "mask", napi_int32_array,
                                                                "an Int32Array (an encoder-decoder's source mask)");
    if (static_cast<int64_t>(mask.ElementLength()) != r.batch * r.length)
      throw ArgError("mask: expected batch × length values", true);
    r.mask = at::from_blob(mask.Data(), {r.batch, r.length}, at::TensorOptions().dtype(at::kInt)).to(at::kLong);
  }
  return r;
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
         InstanceMethod("evaluate", &Model::Evaluate), InstanceMethod("fitTemperature", &Model::FitTemperature),
         InstanceMethod("generate", &Model::Generate), InstanceAccessor("config", &Model::Config, nullptr),
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

  // logits({ ids, batch, length[, mask, decoderIds, decoderLength] }) -> Float32Array [batch, length, V] for a
  // causal model, [batch, decoderLength, V] for an encoder-decoder (which requires the mask and decoder inputs);
  // eval mode, no grad
  Napi::Value Logits(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      core::LanguageModel& m = model();
      const TokenRows x = token_rows(info, 0, m.is_encoder_decoder());
      core::Batch b;
      b.input_ids = ids_tensor(x.ids, x.batch, x.length, m.vocab_size(), "ids").to(m.device());
      if (m.is_encoder_decoder()) {
        const Napi::Object o = info[0].As<Napi::Object>();
        Napi::Int32Array dec =
            typed_array_value<Napi::Int32Array>(o.Get("decoderIds"), "decoderIds", napi_int32_array, "an Int32Array");
        const int64_t T = positive_field(o, "decoderLength");
        if (static_cast<int64_t>(dec.ElementLength()) != x.batch * T)
          throw ArgError("decoderIds: expected batch × decoderLength ids", true);
        b.decoder_input_ids = ids_tensor(dec, x.batch, T, m.vocab_size(), "decoderIds").to(m.device());
        b.attention_mask = x.mask.to(m.device());
      }
      BusyGuard busy(holder_);
      return float32_array(info.Env(), eval_logits(m, b));
    });
  }

  // generate({ ids, batch, length[, mask] }, json) -> Promise<Int32Array[]>, one sequence per row. A causal model
  // continues each row (json { maxNewTokens, topK, temperature, seed }; prompt and new tokens fit its positions)
  // and returns the new tokens; an encoder-decoder (mask required; json: the generation options) returns each
  // summary as core::generate_seq2seq makes it (decoder start included).
  Napi::Value Generate(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      core::LanguageModel& lm = model();
      const bool seq2seq = lm.is_encoder_decoder();
      const TokenRows x = token_rows(info, 0, seq2seq);
      // Copies: the typed arrays may be collected or changed while the work runs off the event loop.
      const at::Tensor ids = ids_tensor(x.ids, x.batch, x.length, lm.vocab_size(), "ids");
      auto holder = holder_;
      using Sequences = std::vector<std::vector<int64_t>>;
      std::function<Sequences()> work;
      if (seq2seq) {
        const core::Seq2SeqGenerateOptions opts =
            core::seq2seq_generate_options_from_json(json_arg(info, 1, "options"));
        const at::Tensor mask = x.mask;
        work = [holder, ids, mask, opts]() {
          BusyGuard busy(holder);
          return core::generate_seq2seq(live_model(*holder), ids, mask, opts);
        };
      } else {
        const core::GenerateOptions o = core::generate_options_from_json(json_arg(info, 1, "options"));
        const int64_t positions = lm.max_positions();
        if (o.max_new_tokens < 0 || o.max_new_tokens > positions - x.length)
          throw ArgError("maxNewTokens: expected at most the model's " + std::to_string(positions) +
                             " positions less the prompt's " + std::to_string(x.length) + " tokens",
                         true);
        work = [holder, ids, o]() {
          BusyGuard busy(holder);
          Sequences out;
          for (int64_t r = 0; r < ids.size(0); ++r) {
            const at::Tensor row = ids[r].contiguous();
            const std::vector<int64_t> prompt(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel());
            out.push_back(core::generate(live_model(*holder), prompt, o));
          }
          return out;
        };
      }
      return run_async<Sequences>(info.Env(), work, [](Napi::Env env, Sequences& out) -> Napi::Value {
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
