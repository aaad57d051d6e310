// Text encoders exposed to JS for metrics (BERTScore): loaded from Hugging Face weights on libuv's pool, and run
// there, off the event loop. One job at a time per encoder; dispose() frees the weights at once.
#include <ATen/ATen.h>

#include <atomic>
#include <memory>
#include <mutex>

#include "../core/eval/bertscore.h"
#include "../core/models/text_encoder.h"
#include "../core/platform.h"
#include "js.h"

namespace dpsm::addon {
namespace {

Napi::FunctionReference* encoder_constructor = nullptr;

struct EncoderHolder {
  std::shared_ptr<core::TextEncoder> encoder;
  std::mutex busy;
};

// Texts as flat ids with offsets (n + 1, from 0 to ids.length) and one weight per id, as vectors.
void texts_from_js(const Napi::Object& o, const char* which, std::vector<std::vector<int64_t>>& texts,
                   std::vector<std::vector<float>>& idf, int64_t vocab) {
  const std::string w(which);
  auto ids = typed_array_value<Napi::Int32Array>(o.Get(w + "Ids"), w + "Ids", napi_int32_array, "an Int32Array");
  auto off =
      typed_array_value<Napi::Int32Array>(o.Get(w + "Offsets"), w + "Offsets", napi_int32_array, "an Int32Array");
  auto weights =
      typed_array_value<Napi::Float32Array>(o.Get(w + "Idf"), w + "Idf", napi_float32_array, "a Float32Array");
  if (off.ElementLength() < 1 || off[0] != 0 ||
      static_cast<size_t>(off[off.ElementLength() - 1]) != ids.ElementLength())
    throw ArgError(w + "Offsets: expected offsets from 0 to " + w + "Ids.length", true);
  if (weights.ElementLength() != ids.ElementLength()) throw ArgError(w + "Idf: expected one weight per id", true);
  for (size_t i = 0; i + 1 < off.ElementLength(); ++i) {
    if (off[i + 1] < off[i]) throw ArgError(w + "Offsets: expected non-decreasing offsets", true);
    std::vector<int64_t> t;
    std::vector<float> f;
    for (int32_t k = off[i]; k < off[i + 1]; ++k) {
      if (ids[k] < 0 || ids[k] >= vocab)
        throw ArgError(w + "Ids: expected values in [0, " + std::to_string(vocab) + ")", true);
      t.push_back(ids[k]);
      f.push_back(weights[k]);
    }
    texts.push_back(std::move(t));
    idf.push_back(std::move(f));
  }
}

Napi::Float64Array doubles(Napi::Env env, const std::vector<double>& v) {
  Napi::Float64Array a = Napi::Float64Array::New(env, v.size());
  std::copy(v.begin(), v.end(), a.Data());
  return a;
}

class TextEncoder : public Napi::ObjectWrap<TextEncoder> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "TextEncoder",
        {InstanceMethod("bertScore", &TextEncoder::BertScore),
         InstanceMethod("hiddenStates", &TextEncoder::HiddenStates), InstanceMethod("dispose", &TextEncoder::Dispose),
         InstanceAccessor("numLayers", &TextEncoder::NumLayers, nullptr),
         InstanceAccessor("maxTokens", &TextEncoder::MaxTokens, nullptr),
         InstanceAccessor("device", &TextEncoder::Device, nullptr)});
  }

  explicit TextEncoder(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TextEncoder>(info) {
    holder_ = std::make_shared<EncoderHolder>();
    guarded(info, [&]() -> Napi::Value {
      if (info.Length() < 1 || !info[0].IsExternal()) throw ArgError("TextEncoder: use loadTextEncoder()", false);
      holder_->encoder = std::move(*info[0].As<Napi::External<std::shared_ptr<core::TextEncoder>>>().Data());
      return info.Env().Undefined();
    });
  }

 private:
  core::TextEncoder& encoder() {
    if (!holder_->encoder) throw std::runtime_error("text encoder: disposed (dispose() was called); load a new one");
    return *holder_->encoder;
  }

  Napi::Value NumLayers(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      return Napi::Number::New(info.Env(), static_cast<double>(encoder().num_layers()));
    });
  }
  Napi::Value MaxTokens(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      return Napi::Number::New(info.Env(), static_cast<double>(encoder().max_tokens()));
    });
  }
  Napi::Value Device(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value { return Napi::String::New(info.Env(), encoder().device().str()); });
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      std::unique_lock<std::mutex> lock(holder_->busy, std::try_to_lock);
      if (!lock.owns_lock()) throw std::runtime_error("text encoder: busy; wait for its job to finish");
      holder_->encoder.reset();
      return info.Env().Undefined();
    });
  }

  // bertScore({ candidateIds, candidateOffsets, candidateIdf, referenceIds, referenceOffsets, referenceIdf },
  // json { layer, batchSize, padId }) -> Promise<{ precision, recall, f1 }> (Float64Array each).
  Napi::Value BertScore(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      if (info.Length() < 1 || !info[0].IsObject()) throw ArgError("texts: expected an object", false);
      const int64_t vocab = encoder().vocab_size();
      core::BertScoreInput in;
      texts_from_js(info[0].As<Napi::Object>(), "candidate", in.candidates, in.candidate_idf, vocab);
      texts_from_js(info[0].As<Napi::Object>(), "reference", in.references, in.reference_idf, vocab);
      if (in.candidates.size() != in.references.size())
        throw ArgError("referenceOffsets: expected as many references as candidates", true);
      const core::Json o = json_arg(info, 1, "options");
      in.layer = core::field<int64_t>(o, "layer");
      in.batch_size = core::field<int64_t>(o, "batchSize");
      in.pad_id = core::field<int64_t>(o, "padId");
      auto holder = holder_;
      return run_async<core::BertScores>(
          info.Env(),
          [holder, in]() {
            std::unique_lock<std::mutex> lock(holder->busy, std::try_to_lock);
            if (!lock.owns_lock()) throw std::runtime_error("text encoder: busy with another job; wait for it");
            if (!holder->encoder) throw std::runtime_error("text encoder: disposed");
            return core::bertscore(*holder->encoder, in);
          },
          [](Napi::Env env, core::BertScores& s) -> Napi::Value {
            Napi::Object r = Napi::Object::New(env);
            r.Set("precision", doubles(env, s.precision));
            r.Set("recall", doubles(env, s.recall));
            r.Set("f1", doubles(env, s.f1));
            return r;
          });
    });
  }

  // hiddenStates({ ids, mask, batch, length }, layer) -> Promise<Float32Array [batch, length, d]>
  Napi::Value HiddenStates(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsNumber())
        throw ArgError("hiddenStates: expected ({ ids, mask, batch, length }, layer)", false);
      const Napi::Object o = info[0].As<Napi::Object>();
      auto ids = typed_array_value<Napi::Int32Array>(o.Get("ids"), "ids", napi_int32_array, "an Int32Array");
      auto mask = typed_array_value<Napi::Int32Array>(o.Get("mask"), "mask", napi_int32_array, "an Int32Array");
      const int64_t B = o.Get("batch").ToNumber().Int64Value(), T = o.Get("length").ToNumber().Int64Value();
      if (B < 1 || T < 1 || static_cast<int64_t>(ids.ElementLength()) != B * T ||
          static_cast<int64_t>(mask.ElementLength()) != B * T)
        throw ArgError("ids, mask: expected batch × length values each", true);
      const int64_t vocab = encoder().vocab_size();
      const auto opts = at::TensorOptions().dtype(at::kInt);
      const at::Tensor t_ids = at::from_blob(ids.Data(), {B, T}, opts).to(at::kLong);
      if (t_ids.min().item<int64_t>() < 0 || t_ids.max().item<int64_t>() >= vocab)
        throw ArgError("ids: expected values in [0, " + std::to_string(vocab) + ")", true);
      const at::Tensor t_mask = at::from_blob(mask.Data(), {B, T}, opts).to(at::kLong);
      const int64_t layer = info[1].As<Napi::Number>().Int64Value();
      auto holder = holder_;
      return run_async<at::Tensor>(
          info.Env(),
          [holder, t_ids, t_mask, layer]() {
            std::unique_lock<std::mutex> lock(holder->busy, std::try_to_lock);
            if (!lock.owns_lock()) throw std::runtime_error("text encoder: busy with another job; wait for it");
            if (!holder->encoder) throw std::runtime_error("text encoder: disposed");
            const at::Device d = holder->encoder->device();
            return holder->encoder->hidden_states(t_ids.to(d), t_mask.to(d), layer).to(at::kFloat).cpu().contiguous();
          },
          [](Napi::Env env, at::Tensor& t) -> Napi::Value {
            Napi::Float32Array a = Napi::Float32Array::New(env, t.numel());
            std::memcpy(a.Data(), t.data_ptr<float>(), t.numel() * sizeof(float));
            return a;
          });
    });
  }

  std::shared_ptr<EncoderHolder> holder_;
};

// loadTextEncoder(json { config, weights, device }) -> Promise<TextEncoder>, built and loaded on libuv's pool.
Napi::Value LoadTextEncoder(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const core::Json o = json_arg(info, 0, "encoder");
    using Ptr = std::shared_ptr<core::TextEncoder>;
    return run_async<Ptr>(
        info.Env(),
        [o]() {
          const at::Device device = platform::parse_device(core::field<std::string>(o, "device"));
          Ptr e = core::make_encoder(core::field<core::Json>(o, "config"));
          e->load_hf_weights(core::field<std::string>(o, "weights"));
          e->to(device);
          e->eval();
          return e;
        },
        [](Napi::Env env, Ptr& e) -> Napi::Value {
          Ptr moved = std::move(e);
          Napi::External<Ptr> ext = Napi::External<Ptr>::New(env, &moved);
          return encoder_constructor->New({ext});
        });
  });
}

}  // namespace

void register_encoders(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = TextEncoder::Define(env);
  encoder_constructor = new Napi::FunctionReference(Napi::Persistent(cls));
  exports.Set("TextEncoder", cls);
  exports.Set("loadTextEncoder", Napi::Function::New(env, LoadTextEncoder, "loadTextEncoder"));
}

}  // namespace dpsm::addon
