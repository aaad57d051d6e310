// Module entry: build information, thread control, and the registration of each binding file.
#include <ATen/Parallel.h>
#include <torch/version.h>

#include <string>

#include "../core/loss/fused_loss.h"
#include "../core/platform.h"
#include "js.h"

namespace dpsm::addon {

void register_loss(Napi::Env env, Napi::Object exports);
void register_models(Napi::Env env, Napi::Object exports);
void register_trainer(Napi::Env env, Napi::Object exports);

namespace {

Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("torchVersion", TORCH_VERSION);
    o.Set("cuda", platform::built_with_cuda());
    o.Set("cudaDeviceCount", platform::cuda_device_count());
    o.Set("threads", at::get_num_threads());
    o.Set("cpuIsa", core::cpu_isa());
    o.Set("parallel", at::get_parallel_info());
    return o;
  });
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsNumber()) throw ArgError("threads: expected a number", false);
    const double n = info[0].As<Napi::Number>().DoubleValue();
    if (!(n >= 1) || n != static_cast<int>(n) || n > 4096)
      throw ArgError("threads: expected an integer in [1, 4096]", true);
    at::set_num_threads(static_cast<int>(n));
    return info.Env().Undefined();
  });
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  platform::init_threads();
  exports.Set("buildInfo", Napi::Function::New(env, BuildInfo, "buildInfo"));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads, "setNumThreads"));
  register_loss(env, exports);
  register_models(env, exports);
  register_trainer(env, exports);
  return exports;
}

}  // namespace dpsm::addon

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return dpsm::addon::Init(env, exports); }
NODE_API_MODULE(dpsm_native, InitModule)
