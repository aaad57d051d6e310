// Differences between the libtorch versions we build against (Debian's 1.13 CPU build; 2.x CUDA builds),
// kept here so no other file needs a version test.
#pragma once

#include <torch/version.h>

#include <ATen/ATen.h>

#if defined(DPSM_WITH_CUDA)
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace dpsm::compat {

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
#endif

}  // namespace dpsm::compat
