// Module entry: build information, thread control, and the registration of each binding file.
#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <torch/version.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>

#include "../core/loss/fused_loss.h"
#include "../core/platform.h"
#include "../core/train/data_parallel.h"
#include "../kernels/dpsm_kernels.h"
#include "js.h"

namespace dpsm::addon {

void register_loss(Napi::Env env, Napi::Object exports);
void register_models(Napi::Env env, Napi::Object exports);
void register_trainer(Napi::Env env, Napi::Object exports);
void register_encoders(Napi::Env env, Napi::Object exports);
void register_energy(Napi::Env env, Napi::Object exports);

namespace {

// The kernel OpenBLAS picked for this CPU (its DYNAMIC_ARCH choice, or OPENBLAS_CORETYPE's): matmuls round
// differently per kernel, so it is part of what makes a CPU run reproducible. Empty when the BLAS libtorch
// loaded is not OpenBLAS.
std::string blas_core() {
  for (const char* lib : {"libblas.so.3", "libopenblas.so.0", "libopenblas.so"}) {
    void* handle = dlopen(lib, RTLD_LAZY | RTLD_NOLOAD);
    if (!handle) continue;
    using CoreName = char* (*)();
    auto core_name = reinterpret_cast<CoreName>(dlsym(handle, "openblas_get_corename"));
    std::string name = core_name ? core_name() : "";
    dlclose(handle);
    if (!name.empty()) return name;
  }
  return "";
}

// The ISA of ATen's own CPU kernels (softmax, layer norm, GELU, …), which round differently per ISA. libtorch
// 1.13 does not export its choice, so this states its rule (ATen/native/DispatchStub.cpp): ATEN_CPU_CAPABILITY
// when set to avx512, avx2 or default; else AVX-512 with VL, BW, DQ and FMA; else AVX2 with FMA.
const char* aten_cpu_capability() {
  if (const char* env = std::getenv("ATEN_CPU_CAPABILITY")) {
    for (const char* isa : {"avx512", "avx2", "default"})
      if (std::strcmp(env, isa) == 0) return isa;
  }
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  const bool fma = __builtin_cpu_supports("fma");
  if (__builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
      fma)
    return "avx512";
  if (__builtin_cpu_supports("avx2") && fma) return "avx2";
#endif
  return "default";
}

// The file libtorch's CPU library was loaded from, found from the address of one of its functions: which
// libtorch this process runs on (Debian's 1.13 in /usr/lib, or a torch wheel's). "" if it cannot be told.
std::string torch_library() {
  Dl_info where{};
  if (dladdr(reinterpret_cast<void*>(&at::get_num_threads), &where) == 0 || where.dli_fname == nullptr) return "";
  std::error_code ec;
  const auto resolved = std::filesystem::canonical(where.dli_fname, ec);
  return ec ? std::string(where.dli_fname) : resolved.string();
}

Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("torchVersion", TORCH_VERSION);
    o.Set("torchLibrary", torch_library());
    o.Set("cuda", platform::built_with_cuda());
    o.Set("cudaDeviceCount", platform::cuda_device_count());
    o.Set("threads", at::get_num_threads());
    o.Set("cpuIsa", core::cpu_isa());
    o.Set("cpuKernelRevision", cpu::kArithmeticRevision);
    o.Set("blasCore", blas_core());
    o.Set("atenCpuCapability", aten_cpu_capability());
    o.Set("parallel", at::get_parallel_info());
    o.Set("distributed", core::distributed_backends());
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
  register_encoders(env, exports);
  register_energy(env, exports);
  return exports;
}

}  // namespace dpsm::addon

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return dpsm::addon::Init(env, exports); }
NODE_API_MODULE(dpsm_native, InitModule)
