// CUDA on the CPU, just enough to run native/kernels/dpsm_cuda.cu for test/cuda-emulated.test.ts: every CUDA
// thread of a block is a fiber, __syncthreads a barrier of the block, warp shuffles a barrier of the warp over an
// exchange buffer, blocks one after another. It checks what a GPU would fault on or silently get wrong: every
// 16-byte access aligned. It does not model the GPU's memory model, its exp2 approximation or its speed.
#pragma once

#include <ucontext.h>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};
struct uint4 {
  unsigned x, y, z, w;
};
struct float2 {
  float x, y;
};
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return uint4{x, y, z, w}; }

using cudaStream_t = void*;
enum cudaError_t { cudaSuccess = 0, cudaErrorInvalidValue = 1 };
inline cudaError_t cudaGetLastError() { return cudaSuccess; }

inline float __uint_as_float(unsigned u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline unsigned __float_as_uint(float f) {
  unsigned u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float __int_as_float(int i) { return __uint_as_float(static_cast<unsigned>(i)); }

namespace emu {
// The threads of a block are fibers (ucontext) on the calling thread, switched only where a thread waits at a
// barrier: deterministic, and thousands of times cheaper than an OS thread per CUDA thread.
struct Fiber {
  ucontext_t ctx;
  std::vector<char> stack;
  bool done = false;
};
inline ucontext_t scheduler;
inline std::vector<Fiber> fibers;
inline unsigned current = 0;
inline void (*entry)(const void*) = nullptr;
inline const void* entry_args = nullptr;
inline dim3 thread_idx, block_idx, grid_dim, block_dim;

inline void yield() { swapcontext(&fibers[current].ctx, &scheduler); }

struct Barrier {
  unsigned expected = 0, count = 0;
  uint64_t generation = 0;
  void arrive_and_wait() {
    if (++count == expected) {
      count = 0;
      ++generation;
      return;
    }
    const uint64_t g = generation;
    while (generation == g) yield();
  }
};
inline Barrier block_barrier;
inline std::vector<Barrier> warp_barriers;
inline float exchange[1024];
inline int vote = 0;

inline void check_aligned(const void* p) {
  if (reinterpret_cast<uintptr_t>(p) % 16 != 0) {
    std::fprintf(stderr, "emulated CUDA: misaligned 16-byte access at %p\n", p);
    std::abort();
  }
}
inline void warp_sync() { warp_barriers[thread_idx.x / 32].arrive_and_wait(); }

inline void fiber_main() {
  entry(entry_args);
  fibers[current].done = true;  // returning resumes the scheduler (uc_link)
}

template <typename Args>
void launch(void (*kernel)(Args), unsigned blocks, unsigned threads, Args args) {
  if (threads % 32 != 0 || threads > 1024) std::abort();
  grid_dim = dim3{blocks, 1, 1};
  block_dim = dim3{threads, 1, 1};
  static void (*k)(Args);
  k = kernel;
  entry = [](const void* a) { k(*static_cast<const Args*>(a)); };
  entry_args = &args;
  fibers.resize(threads);
  for (Fiber& f : fibers) f.stack.resize(256 * 1024);
  for (unsigned b = 0; b < blocks; ++b) {
    block_idx = dim3{b, 0, 0};
    block_barrier = Barrier{threads};
    warp_barriers.assign(threads / 32, Barrier{32});
    vote = 0;
    for (Fiber& f : fibers) {
      getcontext(&f.ctx);
      f.ctx.uc_stack.ss_sp = f.stack.data();
      f.ctx.uc_stack.ss_size = f.stack.size();
      f.ctx.uc_link = &scheduler;
      f.done = false;
      makecontext(&f.ctx, fiber_main, 0);
    }
    for (unsigned left = threads; left > 0;) {
      left = 0;
      for (unsigned t = 0; t < threads; ++t) {
        if (fibers[t].done) continue;
        current = t;
        thread_idx = dim3{t, 0, 0};
        swapcontext(&scheduler, &fibers[t].ctx);
        left += fibers[t].done ? 0 : 1;
      }
    }
  }
}
}  // namespace emu

#define threadIdx (emu::thread_idx)
#define blockIdx (emu::block_idx)
#define gridDim (emu::grid_dim)
#define blockDim (emu::block_dim)

inline void __syncthreads() { emu::block_barrier.arrive_and_wait(); }
inline int __syncthreads_or(int p) {
  if (p) emu::vote = 1;
  __syncthreads();
  const int r = emu::vote;
  __syncthreads();
  if (threadIdx.x == 0) emu::vote = 0;
  __syncthreads();
  return r;
}
inline float __shfl_xor_sync(unsigned, float v, int off) {
  const unsigned t = threadIdx.x;
  emu::exchange[t] = v;
  emu::warp_sync();
  const float r = emu::exchange[t ^ static_cast<unsigned>(off)];
  emu::warp_sync();
  return r;
}
inline float __shfl_sync(unsigned, float v, int lane) {
  const unsigned t = threadIdx.x;
  emu::exchange[t] = v;
  emu::warp_sync();
  const float r = emu::exchange[(t & ~31u) + static_cast<unsigned>(lane)];
  emu::warp_sync();
  return r;
}
inline uint4 __ldcs(const uint4* p) {
  emu::check_aligned(p);
  return *p;
}
inline void __stcs(uint4* p, uint4 v) {
  emu::check_aligned(p);
  *p = v;
}
