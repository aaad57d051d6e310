// Differences between the libtorch versions we build against (Debian's 1.13 CPU build; 2.x CUDA builds),
// kept here so no other file needs a version test.
#pragma once

#include <torch/version.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#if defined(DPSM_WITH_CUDA)
#include <ATen/cuda/CUDAGeneratorImpl.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
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
// Bytes a new allocation on `device` can get: the driver's free memory plus what the caching allocator holds
// reserved but unused. cudaMemGetInfo does not wait for queued work.
inline int64_t cuda_free_bytes(int device) {
  c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
  size_t free = 0, total = 0;
  C10_CUDA_CHECK(cudaMemGetInfo(&free, &total));
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device);
  return static_cast<int64_t>(free) + stats.reserved_bytes[0].current - stats.allocated_bytes[0].current;
}
inline void cuda_synchronize(int device) { c10::cuda::getCurrentCUDAStream(device).synchronize(); }
inline void cuda_empty_cache() { c10::cuda::CUDACachingAllocator::emptyCache(); }
#endif

#if defined(DPSM_WITH_CUDA)
// A CUDA event recorded on `device`'s current stream, from the runtime API (ATen's CUDAEvent.h would pull in
// the CUDA math libraries' headers, which a CUDA build against PyPI's wheels does not have).
class CudaEvent {
 public:
  CudaEvent(const at::Device& device, bool timing) {
    c10::cuda::OptionalCUDAGuard guard(device);
    C10_CUDA_CHECK(cudaEventCreateWithFlags(&event_, timing ? cudaEventDefault : cudaEventDisableTiming));
    C10_CUDA_CHECK(cudaEventRecord(event_, c10::cuda::getCurrentCUDAStream(device.index()).stream()));
  }
  ~CudaEvent() {
    if (event_) cudaEventDestroy(event_);
  }
  CudaEvent(const CudaEvent&) = delete;
  CudaEvent& operator=(const CudaEvent&) = delete;
  void synchronize() const { C10_CUDA_CHECK(cudaEventSynchronize(event_)); }
  // Milliseconds from `earlier` to this event; both must have completed (timing events only).
  double ms_since(const CudaEvent& earlier) const {
    float ms = 0;
    C10_CUDA_CHECK(cudaEventElapsedTime(&ms, earlier.event_, event_));
    return static_cast<double>(ms);
  }

 private:
  cudaEvent_t event_ = nullptr;
};
#endif

// A host tensor on `device`. To CUDA the copy goes through pinned memory and is queued without waiting: a copy
// from pageable memory first waits for everything already queued on the stream (the host-side stall a
// training step must not have). The pinned block is not reused before the copy ends (the caching host
// allocator records the copy's stream).
inline at::Tensor to_device(const at::Tensor& t, const at::Device& device) {
#if defined(DPSM_WITH_CUDA)
  if (device.is_cuda() && t.device().is_cpu()) return t.pin_memory().to(device, /*non_blocking=*/true);
#endif
  return t.to(device);
}

// A small tensor's values on the host, read later without waiting for work queued after it. On CUDA the copy
// to pinned memory is queued behind the work that makes the tensor, with an event behind it; get() waits
// for that event only, so the steps queued since keep the device busy. On the CPU get() returns the values.
class LaggedRead {
 public:
  LaggedRead() = default;
  explicit LaggedRead(const at::Tensor& t) {
#if defined(DPSM_WITH_CUDA)
    if (t.is_cuda()) {
      host_ = at::empty(t.sizes(), t.options().device(at::kCPU).pinned_memory(true));
      host_.copy_(t, /*non_blocking=*/true);
      event_ = std::make_shared<CudaEvent>(t.device(), /*timing=*/false);
      return;
    }
#endif
    host_ = t;
  }
  at::Tensor get() const {
#if defined(DPSM_WITH_CUDA)
    if (event_) event_->synchronize();
#endif
    return host_;
  }

 private:
  at::Tensor host_;
#if defined(DPSM_WITH_CUDA)
  std::shared_ptr<CudaEvent> event_;
#endif
};

// A point in a device's queued work, to time work without waiting for it. On CUDA a timing event on the
// stream (it completes when the device gets there); on the CPU the moment it was made (the work before it
// is done by then).
class DeviceMark {
 public:
  explicit DeviceMark(const at::Device& device) {
#if defined(DPSM_WITH_CUDA)
    if (device.is_cuda()) {
      event_ = std::make_shared<CudaEvent>(device, /*timing=*/true);
      return;
    }
#else
    (void)device;
#endif
    at_ = std::chrono::steady_clock::now();
  }
  // Milliseconds from `earlier` (a mark on the same device) to this one; waits for both.
  double ms_since(const DeviceMark& earlier) const {
#if defined(DPSM_WITH_CUDA)
    if (event_) {
      earlier.event_->synchronize();
      event_->synchronize();
      return event_->ms_since(*earlier.event_);
    }
#endif
    return std::chrono::duration<double, std::milli>(at_ - earlier.at_).count();
  }

 private:
  std::chrono::steady_clock::time_point at_;
#if defined(DPSM_WITH_CUDA)
  std::shared_ptr<CudaEvent> event_;
#endif
};

// torch's fused AdamW (ATen's _fused_adamw_: one pass over each parameter's weights, gradient and moments),
// on CUDA since 2.0 and on the CPU since 2.4; absent from 1.13, where optim.cpp does the per-tensor update.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define DPSM_FUSED_ADAMW 1
#endif
constexpr bool kFusedAdamW =
#if defined(DPSM_FUSED_ADAMW)
    true;
#else
    false;
#endif
// One update of `params` with the same hyperparameters. `step` is the update's 1-based count (a float32 scalar
// on the parameters' device, read by the kernel for the bias corrections); each gradient is divided by
// `grad_scale` first when it is defined. Throws where kFusedAdamW is false.
inline void fused_adamw(const std::vector<at::Tensor>& params, const std::vector<at::Tensor>& grads,
                        const std::vector<at::Tensor>& exp_avgs, const std::vector<at::Tensor>& exp_avg_sqs,
                        const at::Tensor& step, double lr, double beta1, double beta2, double weight_decay, double eps,
                        const at::Tensor& grad_scale) {
#if defined(DPSM_FUSED_ADAMW)
  const std::vector<at::Tensor> steps(params.size(), step);
  const c10::optional<at::Tensor> scale = grad_scale.defined() ? c10::optional<at::Tensor>(grad_scale) : c10::nullopt;
  at::_fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, /*max_exp_avg_sqs=*/{}, steps, lr, beta1, beta2, weight_decay,
                    eps, /*amsgrad=*/false, /*maximize=*/false, scale, /*found_inf=*/c10::nullopt);
#else
  (void)params, (void)grads, (void)exp_avgs, (void)exp_avg_sqs, (void)step, (void)lr, (void)beta1, (void)beta2,
      (void)weight_decay, (void)eps, (void)grad_scale;
  throw std::logic_error("fused_adamw: this libtorch has no _fused_adamw_");
#endif
}

// acc (fp32) += a · b for bf16/fp16 a, b, accumulated in fp32 inside the matrix product (cuBLAS's fp32
// accumulator written out as is, never rounded to a 16-bit product first): addmm's out_dtype overload, on CUDA
// only, in libtorch 2.9 and later (it first shipped in the 2.8 series; 2.9 is the oldest we are sure of).
// Returns false where it does not apply: the caller then adds a 16-bit product.
#if defined(DPSM_WITH_CUDA) && (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 9))
#define DPSM_ADDMM_OUT_DTYPE 1
#endif
inline bool addmm_fp32_accumulate(at::Tensor& acc, const at::Tensor& a, const at::Tensor& b) {
#if defined(DPSM_ADDMM_OUT_DTYPE)
  if (acc.is_cuda() && acc.scalar_type() == at::kFloat && a.scalar_type() == b.scalar_type() &&
      (a.scalar_type() == at::kBFloat16 || a.scalar_type() == at::kHalf)) {
    at::addmm_out(acc, acc, a, b, at::kFloat);
    return true;
  }
#else
  (void)acc, (void)a, (void)b;
#endif
  return false;
}

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
