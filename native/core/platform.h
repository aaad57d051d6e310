// Differences between the libtorch versions we build against (Debian's 1.13 CPU build; 2.x CUDA builds),
// kept here so no other file needs a version test.
#pragma once

#include <torch/version.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#if defined(DPSM_WITH_CUDA)
#include <ATen/cuda/CUDAGeneratorImpl.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace dpsm::platform {

constexpr bool kTorch2 = TORCH_VERSION_MAJOR >= 2;

inline bool built_with_cuda() {
#if defined(DPSM_WITH_CUDA)
  return true;
#else
  return false;
#endif
}

inline int cuda_device_count() {
#if defined(DPSM_WITH_CUDA)
  return static_cast<int>(c10::cuda::device_count());
#else
  return 0;
#endif
}

// Causal scaled-dot-product attention of q, k, v [B, H, T, D] (1.13 has only the underscored op).
inline at::Tensor causal_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double dropout_p) {
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(q, k, v, {}, dropout_p, /*is_causal=*/true);
#else
  return std::get<0>(at::_scaled_dot_product_attention(q, k, v, {}, dropout_p, /*need_attn_weights=*/false,
                                                       /*is_causal=*/true));
#endif
}

// bf16 autocast on `device`'s type (CUDA or CPU) for the guard's lifetime; a no-op when disabled.
class AutocastBF16 {
 public:
  AutocastBF16(bool enable, const at::Device& device) : enabled_(enable), cuda_(device.is_cuda()) {
    if (!enabled_) return;
#if TORCH_VERSION_MAJOR >= 2
    const auto type = cuda_ ? at::kCUDA : at::kCPU;
    prev_dtype_ = at::autocast::get_autocast_dtype(type);
    prev_ = at::autocast::is_autocast_enabled(type);
    at::autocast::set_autocast_dtype(type, at::kBFloat16);
    at::autocast::set_autocast_enabled(type, true);
#else
    if (cuda_) {
      prev_dtype_ = at::autocast::get_autocast_gpu_dtype();
      prev_ = at::autocast::is_enabled();
      at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
      at::autocast::set_enabled(true);
    } else {
      prev_dtype_ = at::autocast::get_autocast_cpu_dtype();
      prev_ = at::autocast::is_cpu_enabled();
      at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
      at::autocast::set_cpu_enabled(true);
    }
#endif
    at::autocast::increment_nesting();
  }
  ~AutocastBF16() {
    if (!enabled_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
#if TORCH_VERSION_MAJOR >= 2
    const auto type = cuda_ ? at::kCUDA : at::kCPU;
    at::autocast::set_autocast_enabled(type, prev_);
    at::autocast::set_autocast_dtype(type, prev_dtype_);
#else
    if (cuda_) {
      at::autocast::set_enabled(prev_);
      at::autocast::set_autocast_gpu_dtype(prev_dtype_);
    } else {
      at::autocast::set_cpu_enabled(prev_);
      at::autocast::set_autocast_cpu_dtype(prev_dtype_);
    }
#endif
  }
  AutocastBF16(const AutocastBF16&) = delete;
  AutocastBF16& operator=(const AutocastBF16&) = delete;

 private:
  bool enabled_, cuda_;
  bool prev_ = false;
  at::ScalarType prev_dtype_ = at::kBFloat16;
};

// This process's resident memory from /proc/self/status ("VmRSS" now, "VmHWM" peak), in bytes; -1 where
// there is no /proc.
inline int64_t proc_memory_bytes(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const std::string k = std::string(key) + ":";
  while (std::getline(f, line))
    if (line.rfind(k, 0) == 0) return std::stoll(line.substr(k.size())) * 1024;
  return -1;
}
// Resets VmHWM to the current resident size, so a later peak measures one piece of work.
inline bool reset_cpu_peak() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  return static_cast<bool>(f);
}

#if defined(DPSM_WITH_CUDA)
inline void* current_cuda_stream(const at::Device& device) {
  return static_cast<void*>(c10::cuda::getCurrentCUDAStream(device.index()).stream());
}
// Peak bytes held by tensors on `device` since the last reset (the allocator's aggregate pool is index 0
// of its stat arrays in every version we support).
inline int64_t cuda_peak_allocated(int device) {
  return c10::cuda::CUDACachingAllocator::getDeviceStats(device).allocated_bytes[0].peak;
}
inline int64_t cuda_allocated(int device) {
  return c10::cuda::CUDACachingAllocator::getDeviceStats(device).allocated_bytes[0].current;
}
inline void cuda_reset_peak(int device) { c10::cuda::CUDACachingAllocator::resetPeakStats(device); }
inline void cuda_synchronize(int device) { c10::cuda::getCurrentCUDAStream(device).synchronize(); }
inline void cuda_empty_cache() { c10::cuda::CUDACachingAllocator::emptyCache(); }
#endif

// libtorch starts with one intra-op thread on some builds (Debian's): use the machine's cores, or
// DPSM_NUM_THREADS when set. Called when an addon loads.
inline void init_threads() {
  int n = static_cast<int>(std::thread::hardware_concurrency());
  if (const char* env = std::getenv("DPSM_NUM_THREADS")) {
    const int v = std::atoi(env);
    if (v > 0) n = v;
  }
  if (n > 0) at::set_num_threads(n);
}

// The device of a "cpu" / "cuda" / "cuda:N" string (its form is checked in lib/; its existence here).
inline at::Device parse_device(const std::string& s) {
  if (s.rfind("cuda", 0) == 0 && cuda_device_count() == 0)
    throw std::invalid_argument("device: '" + s + "' requested, but this build sees no CUDA device");
  return at::Device(s);
}

// The device's default generator on CUDA (dropout there draws from it); none on the CPU.
inline std::optional<at::Generator> default_cuda_generator(const at::Device& device) {
#if defined(DPSM_WITH_CUDA)
  if (device.is_cuda()) return at::cuda::detail::getDefaultCUDAGenerator(device.index());
#else
  (void)device;
#endif
  return std::nullopt;
}

// Peak memory of the run so far: CUDA, bytes allocated by tensors on the device; CPU, the process's
// resident high-water mark. reset_peak_memory starts a new measurement.
inline int64_t peak_memory_bytes(const at::Device& device) {
#if defined(DPSM_WITH_CUDA)
  if (device.is_cuda()) return cuda_peak_allocated(device.index());
#else
  (void)device;
#endif
  return proc_memory_bytes("VmHWM");
}
inline void reset_peak_memory(const at::Device& device) {
#if defined(DPSM_WITH_CUDA)
  if (device.is_cuda()) {
    cuda_reset_peak(device.index());
    return;
  }
#else
  (void)device;
#endif
  reset_cpu_peak();
}

}  // namespace dpsm::platform
