// Module entry: build information, thread control, and the registration of each binding file.
#include <ATen/Parallel.h>
#include <torch/version.h>

#include <cstdlib>
#include <string>
#include <thread>

#include "../core/compat.h"
#include "../core/loss.h"
#include "args.h"

namespace dpsm::addon {

void register_loss(Napi::Env env, Napi::Object exports);
void register_models(Napi::Env env, Napi::Object exports);

namespace {

// libtorch starts with one intra-op thread on some builds (Debian's): default to the machine's cores,
// or DPSM_NUM_THREADS when set.
void init_threads() {
  int n = static_cast<int>(std::thread::hardware_concurrency());
  if (const char* env = std::getenv("DPSM_NUM_THREADS")) {
    const int v = std::atoi(env);
    if (v > 0) n = v;
  }
  if (n > 0) at::set_num_threads(n);
}

Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("torchVersion", TORCH_VERSION);
    o.Set("cuda", compat::built_with_cuda());
    o.Set("cudaDeviceCount", compat::cuda_device_count());
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
    if (!(n >= 1) || n != static_cast<int>(n) || n > 4096) throw ArgError("threads: expected an integer in [1, 4096]", true);
    at::set_num_threads(static_cast<int>(n));
    return info.Env().Undefined();
  });
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  init_threads();
  exports.Set("buildInfo", Napi::Function::New(env, BuildInfo, "buildInfo"));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads, "setNumThreads"));
  register_loss(env, exports);
  register_models(env, exports);
  return exports;
}

}  // namespace dpsm::addon

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return dpsm::addon::Init(env, exports); }
NODE_API_MODULE(dpsm_native, InitModule)
