// The training loop exposed to JS: it runs on libuv's pool and reports through an ordered progress queue,
// so the event loop never waits on a step.
#include <atomic>
#include <memory>

#include "../core/train/trainer.h"
#include "convert.h"
#include "js.h"
#include "model_holder.h"

namespace dpsm::addon {
namespace {

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

  // new Trainer(model: Model, json: trainer document, train: sequences, valid: sequences)
  explicit Trainer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Trainer>(info) {
    guarded(info, [&]() -> Napi::Value {
      holder_ = unwrap_model(info[0], "model");
      core::TrainConfig cfg = core::train_config_from_json(json_arg(info, 1, "config"));
      auto train = dataset_from_js(info[2], "train", *holder_->model);
      auto valid = dataset_from_js(info[3], "valid", *holder_->model);
      trainer_ = std::make_shared<core::Trainer>(holder_->model, std::move(cfg), std::move(train), std::move(valid));
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
  Napi::Value Fingerprint(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), trainer_->fingerprint());
  }

  std::shared_ptr<ModelHolder> holder_;
  std::shared_ptr<core::Trainer> trainer_;
  std::shared_ptr<std::atomic<bool>> abort_;
};

}  // namespace

void register_trainer(Napi::Env env, Napi::Object exports) { exports.Set("Trainer", Trainer::Define(env)); }

}  // namespace dpsm::addon
