// The fused DPSM kernel on CUDA: one block per row (persistent over rows), one read of the row for its
// state and one for the gradient, the same formulas as the CPU (dpsm_math.h). Raw pointers and the
// caller's stream only, so this file builds with nvcc alone, without ATen's CUDA headers.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "dpsm_kernels.h"

namespace dpsm {
namespace cuda {
namespace {

constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;
constexpr int kChunk = 4;  // elements per thread between rescales of its running sums

__device__ __forceinline__ float load1(const float* p) { return __ldg(p); }
__device__ __forceinline__ float load1(const __nv_bfloat16* p) { return __bfloat162float(*p); }
__device__ __forceinline__ float load1(const __half* p) { return __half2float(*p); }
__device__ __forceinline__ void store1(float* p, float v) { *p = v; }
__device__ __forceinline__ void store1(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }
__device__ __forceinline__ void store1(__half* p, float v) { *p = __float2half_rn(v); }

// Merges every thread's state; all threads return the row's total. Starts with a barrier so the shared
// slots of the previous row are no longer being read. `logit_sum` (the same for the whole block): whether the
// states carry sx (score smoothing); without it sx stays 0 and costs no shuffle.
__device__ RowState block_reduce(RowState s, RowState* slots, bool logit_sum) {
  for (int off = 16; off > 0; off >>= 1) {
    RowState o;
    o.m = __shfl_xor_sync(0xffffffffu, s.m, off);
    o.s1x = __shfl_xor_sync(0xffffffffu, s.s1x, off);
    o.s2x = __shfl_xor_sync(0xffffffffu, s.s2x, off);
    o.sx = logit_sum ? __shfl_xor_sync(0xffffffffu, s.sx, off) : 0.0f;
    row_state_merge(s, o);
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();
  if (lane == 0) slots[warp] = s;
  __syncthreads();
  RowState total = slots[0];
  for (int i = 1; i < kWarps; ++i) row_state_merge(total, slots[i]);
  return total;
}

template <typename T>
__global__ void __launch_bounds__(kThreads) fused_kernel(FusedArgs a) {
  __shared__ RowState slots[kWarps];
  const float alpha = static_cast<float>(alpha_at(a.spec, a.step ? *a.step : 0));
  if (blockIdx.x == 0 && threadIdx.x == 0 && a.alpha_out) *a.alpha_out = alpha;
  const float w = a.grad_scale ? *a.grad_scale : 1.0f;
  const float smoothing = static_cast<float>(a.spec.smoothing);
  const bool logit_sum = needs_logit_sum(a.spec, alpha);
  const T* logits = static_cast<const T*>(a.logits);
  T* grad = static_cast<T*>(a.grad);
  const int64_t V = a.vocab;

  for (int64_t row = blockIdx.x; row < a.n_rows; row += gridDim.x) {
    const T* z = logits + row * a.row_stride;
    T* g = grad ? grad + row * a.grad_stride : nullptr;
    const int64_t y = a.targets[row];

    if (y == a.ignore_index || y < 0 || y >= V) {
      // The whole block takes this branch together (y is the same for every thread).
      const float v = y == a.ignore_index ? 0.0f : __int_as_float(0x7fc00000);
      if (g)
        for (int64_t k = threadIdx.x; k < V; k += kThreads) store1(g + k, v);
      if (threadIdx.x == 0) {
        if (v != 0.0f && a.bad_target) *a.bad_target = 1;
        if (a.row_loss) a.row_loss[row] = v;
        if (a.stats)
          for (int k = 0; k < kStatCount; ++k) a.stats[row * kStatCount + k] = v;
      }
      continue;
    }

    const float zy = load1(z + y);
    RowState st = row_state_init(zy);
    for (int64_t base = 0; base < V; base += static_cast<int64_t>(kThreads) * kChunk) {
      float x[kChunk];
      float cm = st.m;
#pragma unroll
      for (int j = 0; j < kChunk; ++j) {
        const int64_t k = base + j * kThreads + threadIdx.x;
        x[j] = (k < V && k != y) ? load1(z + k) : -INFINITY;
        cm = x[j] > cm ? x[j] : cm;
      }
      if (cm > st.m) {
        const float r = expf(st.m - cm);
        st.s1x *= r;
        st.s2x *= r * r;
        st.m = cm;
      }
#pragma unroll
      for (int j = 0; j < kChunk; ++j) {
        const float e = expf(x[j] - st.m);  // exactly 0 for the padding (−∞)
        st.s1x += e;
        st.s2x += e * e;
      }
      if (logit_sum) {
#pragma unroll
        for (int j = 0; j < kChunk; ++j) {
          const int64_t k = base + j * kThreads + threadIdx.x;
          if (k < V && k != y) st.sx += x[j] - zy;  // the padding's −∞ left out
        }
      }
    }
    st = block_reduce(st, slots, logit_sum);
    const RowResult r = finalize_row(st, zy, a.spec.kind, alpha, smoothing, V);

    float hit = 0.0f;
    if (a.stats && zy == r.m) {
      // The target holds the max; it is the argmax unless the max also appears earlier in the row.
      int before = 0;
      for (int64_t k = threadIdx.x; k < y; k += kThreads) before |= load1(z + k) == r.m;
      hit = __syncthreads_or(before) ? 0.0f : 1.0f;
    }
    if (threadIdx.x == 0) {
      if (a.row_loss) a.row_loss[row] = r.loss;
      if (a.stats) {
        float* s = a.stats + row * kStatCount;
        s[kStatNll] = r.nll;
        s[kStatPy] = r.p_y;
        s[kStatMaxP] = r.max_p;
        s[kStatHit] = hit;
        s[kStatSqNorm] = r.sq_norm;
      }
    }
    if (g) {
      const float c1 = w * r.c1, c2 = w * r.c2, c0 = w * r.c0, gy = w * r.g_y;
      if (c0 != 0.0f) {
        // Score smoothing's CE term: the same loop with c0 added (kept apart so ε = 0 computes as it always did).
        for (int64_t k = threadIdx.x; k < V; k += kThreads) {
          const float p = expf(load1(z + k) - r.m) * r.inv_s1;
          store1(g + k, k == y ? gy : p * (c1 + c2 * p) + c0);
        }
      } else {
        for (int64_t k = threadIdx.x; k < V; k += kThreads) {
          const float p = expf(load1(z + k) - r.m) * r.inv_s1;
          store1(g + k, k == y ? gy : p * (c1 + c2 * p));
        }
      }
    }
  }
}

int sm_count() {
  int device = 0, n = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return 1;
  if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device) != cudaSuccess || n < 1) return 1;
  return n;
}

}  // namespace

int launch_fused(const FusedArgs& args, void* stream) {
  if (args.n_rows <= 0) return 0;
  const int64_t max_blocks = static_cast<int64_t>(sm_count()) * 4;
  const unsigned blocks = static_cast<unsigned>(args.n_rows < max_blocks ? args.n_rows : max_blocks);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  switch (args.dtype) {
    case DType::F32: fused_kernel<float><<<blocks, kThreads, 0, s>>>(args); break;
    case DType::BF16: fused_kernel<__nv_bfloat16><<<blocks, kThreads, 0, s>>>(args); break;
    case DType::F16: fused_kernel<__half><<<blocks, kThreads, 0, s>>>(args); break;
  }
  return static_cast<int>(cudaGetLastError());
}

}  // namespace cuda
}  // namespace dpsm
