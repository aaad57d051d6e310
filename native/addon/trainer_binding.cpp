// The training loop exposed to JS: it is set up (optimiser state, checks) and runs on libuv's pool and reports
// through an ordered progress queue, so the event loop never waits on a step. A Trainer reports its optimiser
// state's bytes to V8 as external memory.
#include <atomic>
#include <memory>
#include <vector>

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

// What createTrainer builds on the pool and hands to the JS Trainer object.
struct Built {
  std::shared_ptr<ModelHolder> holder;
  std::shared_ptr<core::Trainer> trainer;
  int64_t bytes = 0;  // AdamW's two moments per parameter
};

Napi::FunctionReference* trainer_constructor = nullptr;

class Trainer : public Napi::ObjectWrap<Trainer> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Trainer",
                       {InstanceMethod("fit", &Trainer::Fit), InstanceMethod("abort", &Trainer::Abort),
                        InstanceMethod("timeSteps", &Trainer::TimeSteps),
                        InstanceAccessor("fingerprint", &Trainer::Fingerprint, nullptr)});
  }

  // Made by createTrainer only (from an External carrying what it built).
  explicit Trainer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Trainer>(info) {
    guarded(info, [&]() -> Napi::Value {
      if (info.Length() < 1 || !info[0].IsExternal())
        throw ArgError("Trainer: made by createTrainer(model, json, train, valid)", false);
      Built& b = *info[0].As<Napi::External<Built>>().Data();
      holder_ = std::move(b.holder);
      trainer_ = std::move(b.trainer);
      bytes_ = b.bytes;
      abort_ = std::make_shared<std::atomic<bool>>(false);
      Napi::MemoryManagement::AdjustExternalMemory(info.Env(), bytes_);
      return info.Env().Undefined();
    });
  }

  void Finalize(Napi::BasicEnv env) override {
    if (bytes_ != 0) Napi::MemoryManagement::AdjustExternalMemory(env, -bytes_);
  }

 private:
  Napi::Value Fit(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      if (info.Length() < 1 || !info[0].IsFunction()) throw ArgError("onProgress: expected a function", false);
      live_model(*holder_);
      if (holder_->busy) throw std::runtime_error("model: busy with another training or evaluation");
      *abort_ = false;
      auto* w = new FitWorker(info[0].As<Napi::Function>(), holder_, trainer_, abort_);
      Napi::Promise p = w->promise();
      w->Queue();
      return p;
    });
  }
  // timeSteps(json: { losses: loss documents, rounds, warmupRounds, firstRound }) -> Promise<number[][]> (ms,
  // round × loss).
  Napi::Value TimeSteps(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      const core::Json j = json_arg(info, 0, "audit");
      std::vector<core::Objective> objectives;
      for (const core::Json& l : core::field<core::Json>(j, "losses"))
        objectives.push_back(core::objective_from_json(l));
      const int64_t rounds = core::field<int64_t>(j, "rounds");
      const int64_t warmup = core::field<int64_t>(j, "warmupRounds");
      const int64_t first = core::field<int64_t>(j, "firstRound");
      live_model(*holder_);
      if (holder_->busy) throw std::runtime_error("model: busy with another training or evaluation");
      auto holder = holder_;
      auto trainer = trainer_;
      return run_async<std::vector<std::vector<double>>>(
          info.Env(),
          [holder, trainer, objectives, rounds, warmup, first]() {
            BusyGuard busy(holder);
            return trainer->time_steps(objectives, rounds, warmup, first);
          },
          [](Napi::Env env, std::vector<std::vector<double>>& ms) -> Napi::Value {
            Napi::Array out = Napi::Array::New(env, ms.size());
            for (size_t r = 0; r < ms.size(); ++r) {
              Napi::Array row = Napi::Array::New(env, ms[r].size());
              for (size_t i = 0; i < ms[r].size(); ++i) row.Set(static_cast<uint32_t>(i), ms[r][i]);
              out.Set(static_cast<uint32_t>(r), row);
            }
            return out;
          });
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
  int64_t bytes_ = 0;
};

// createTrainer(model: Model, json: trainer document, train, valid) -> Promise<Trainer>: the data is copied here
// (the typed arrays belong to JS), the trainer (optimiser state, the data's checks) is built on the pool.
Napi::Value CreateTrainer(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto holder = unwrap_model(info[0], "model");
    core::LanguageModel& m = live_model(*holder);
    auto cfg = std::make_shared<core::TrainConfig>(core::train_config_from_json(json_arg(info, 1, "config")));
    std::shared_ptr<const core::Dataset> train = dataset_from_js(info[2], "train", m);
    std::shared_ptr<const core::Dataset> valid = dataset_from_js(info[3], "valid", m);
    return run_async<Built>(
        info.Env(),
        [holder, cfg, train, valid]() {
          BusyGuard busy(holder);
          live_model(*holder);  // not disposed meanwhile
          Built b;
          b.holder = holder;
          b.trainer = std::make_shared<core::Trainer>(holder->model, std::move(*cfg), train, valid);
          for (const at::Tensor& p : holder->model->parameters()) b.bytes += 2 * static_cast<int64_t>(p.nbytes());
          return b;
        },
        [](Napi::Env env, Built& b) -> Napi::Value {
          return trainer_constructor->New({Napi::External<Built>::New(env, &b)});
        });
  });
}

}  // namespace

void register_trainer(Napi::Env env, Napi::Object exports) {
  Napi::Function trainer = Trainer::Define(env);
  trainer_constructor = new Napi::FunctionReference(Napi::Persistent(trainer));
  exports.Set("Trainer", trainer);
  exports.Set("createTrainer", Napi::Function::New(env, CreateTrainer, "createTrainer"));
}

}  // namespace dpsm::addon
