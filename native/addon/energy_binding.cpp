// GPU energy from NVML, loaded when first asked for (dlopen of the driver's libnvidia-ml.so.1): no build
// dependency, and a machine without the driver says why instead of failing to load the addon. lib/energy.ts turns
// the counter into energy per run and per step (and reads the CPU's RAPL counters itself).
#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "js.h"

namespace dpsm::addon {
namespace {

// NVML's C API as nvml.h declares it (types reduced to what crosses the calls).
using nvmlReturn = int;
using nvmlDevice = void*;
constexpr nvmlReturn kNvmlSuccess = 0;

struct Nvml {
  std::string error;  // why NVML cannot be used; empty when it can
  nvmlReturn (*init)() = nullptr;
  nvmlReturn (*by_index)(unsigned, nvmlDevice*) = nullptr;
  nvmlReturn (*by_uuid)(const char*, nvmlDevice*) = nullptr;
  nvmlReturn (*by_pci)(const char*, nvmlDevice*) = nullptr;
  nvmlReturn (*energy)(nvmlDevice, unsigned long long*) = nullptr;
  const char* (*error_string)(nvmlReturn) = nullptr;
  std::string describe(nvmlReturn r) const {
    return error_string ? error_string(r) : "NVML error " + std::to_string(r);
  }
};

const Nvml& nvml() {
  static Nvml n;
  static std::once_flag once;
  std::call_once(once, [] {
    void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      const char* e = dlerror();
      n.error = std::string("libnvidia-ml.so.1 (NVIDIA's driver) could not be loaded: ") + (e ? e : "not found");
      return;
    }
    auto sym = [&](const char* name) { return dlsym(lib, name); };
    n.init = reinterpret_cast<nvmlReturn (*)()>(sym("nvmlInit_v2"));
    n.by_index = reinterpret_cast<nvmlReturn (*)(unsigned, nvmlDevice*)>(sym("nvmlDeviceGetHandleByIndex_v2"));
    n.by_uuid = reinterpret_cast<nvmlReturn (*)(const char*, nvmlDevice*)>(sym("nvmlDeviceGetHandleByUUID"));
    n.by_pci = reinterpret_cast<nvmlReturn (*)(const char*, nvmlDevice*)>(sym("nvmlDeviceGetHandleByPciBusId_v2"));
    n.energy =
        reinterpret_cast<nvmlReturn (*)(nvmlDevice, unsigned long long*)>(sym("nvmlDeviceGetTotalEnergyConsumption"));
    n.error_string = reinterpret_cast<const char* (*)(nvmlReturn)>(sym("nvmlErrorString"));
    if (!n.init || !n.by_index || !n.energy) {
      n.error =
          "libnvidia-ml.so.1 lacks nvmlInit_v2, nvmlDeviceGetHandleByIndex_v2 or "
          "nvmlDeviceGetTotalEnergyConsumption (a driver older than Volta's)";
      return;
    }
    if (const nvmlReturn r = n.init(); r != kNvmlSuccess) n.error = "nvmlInit failed: " + n.describe(r);
  });
  return n;
}

// The NVML handle of CUDA device `index`. NVML numbers every GPU in PCI order while CUDA numbers the visible ones
// (CUDA_VISIBLE_DEVICES) fastest first, so the device is found by its PCI bus id from the CUDA runtime already in
// the process where there is one; else through CUDA_VISIBLE_DEVICES (indices or UUIDs), else by the same index.
nvmlDevice device_handle(const Nvml& n, int index, std::string& error) {
  nvmlDevice d = nullptr;
  using BusId = int (*)(char*, int, int);
  if (auto bus_id = reinterpret_cast<BusId>(dlsym(RTLD_DEFAULT, "cudaDeviceGetPCIBusId")); bus_id && n.by_pci) {
    char id[64] = {0};
    if (bus_id(id, sizeof id, index) == 0 && n.by_pci(id, &d) == kNvmlSuccess) return d;
  }
  std::string entry = std::to_string(index);
  if (const char* visible = std::getenv("CUDA_VISIBLE_DEVICES")) {
    std::vector<std::string> entries;
    std::stringstream ss(visible);
    for (std::string e; std::getline(ss, e, ',');) entries.push_back(e);
    if (index < static_cast<int>(entries.size())) entry = entries[index];
  }
  nvmlReturn r;
  if (!entry.empty() && entry.find_first_not_of("0123456789") == std::string::npos)
    r = n.by_index(static_cast<unsigned>(std::stoul(entry)), &d);
  else
    r = n.by_uuid ? n.by_uuid(entry.c_str(), &d) : 1;
  if (r != kNvmlSuccess) {
    error = "NVML has no device for CUDA device " + std::to_string(index) + " (" + entry + "): " + n.describe(r);
    return nullptr;
  }
  return d;
}

// gpuEnergy(index) -> { millijoules } (the device's counter since the driver loaded) or { error }.
Napi::Value GpuEnergy(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsNumber()) throw ArgError("device: expected a CUDA device index", false);
    const int index = info[0].As<Napi::Number>().Int32Value();
    if (index < 0) throw ArgError("device: expected a CUDA device index >= 0", true);
    Napi::Object out = Napi::Object::New(info.Env());
    const Nvml& n = nvml();
    std::string error = n.error;
    if (error.empty()) {
      if (nvmlDevice d = device_handle(n, index, error)) {
        unsigned long long mj = 0;
        if (const nvmlReturn r = n.energy(d, &mj); r == kNvmlSuccess) {
          out.Set("millijoules", static_cast<double>(mj));
          return out;
        } else {
          error = "nvmlDeviceGetTotalEnergyConsumption: " + n.describe(r);
        }
      }
    }
    out.Set("error", error);
    return out;
  });
}

}  // namespace

void register_energy(Napi::Env env, Napi::Object exports) {
  exports.Set("gpuEnergy", Napi::Function::New(env, GpuEnergy, "gpuEnergy"));
}

}  // namespace dpsm::addon
