// The fused DPSM kernel on CUDA: one block per row, one read of the row for its state and one for the
// gradient, the same formulas as the CPU (dpsm_math.h). Raw pointers and the caller's stream only, so this file
// builds with nvcc alone, without ATen's CUDA headers.
//
// Memory plan (the kernel is bound by bandwidth; see docs/design/fused-kernel.md): every row is read as
// 16-byte vectors from its first 16-byte boundary on, with at most 16/sizeof(T) − 1 scalar elements before it
// and after the last whole vector, so any vocabulary size (50,257 included) and any row offset take the vector
// path. The first read keeps the row in L2 for the second; the gradient pass reads the row for the last time
// and writes the gradient with evict-first hints, each thread issuing all its loads of a round before its
// stores. test/cuda-sass.test.ts checks the machine code for this (128-bit loads and stores, loads ahead of
// stores, no spills, a register budget).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "dpsm_kernels.h"

namespace dpsm {
namespace cuda {
namespace {

constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;
constexpr int kRoundBytes = 32;  // bytes each thread loads per round of the vector loops (2 × 16)
constexpr float kLog2e = 1.4426950408889634f;

// e^x as 2^(x·log2 e): one MUFU.EX2 instead of expf's range reduction. x − m is formed first (exact enough
// for logits of any size: the product's rounding is relative to x − m, not to the logits), and the ftz form
// only flushes results below 2^−126, which vanish beside a row sum of at least 1.
__device__ __forceinline__ float exp_diff(float x, float m) {
  float r;
#if defined(__CUDA_ARCH__)
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"((x - m) * kLog2e));
#else
  r = exp2f((x - m) * kLog2e);  // the host compiler's pass; test/cuda-emulated.test.ts runs this file on the CPU
#endif
  return r;
}

// One dtype's scalar and 16-byte vector access. kVec elements per vector; pack/unpack round like the CPU.
template <typename T>
struct Access;

template <>
struct Access<float> {
  static constexpr int kVec = 4;
  static __device__ __forceinline__ float load(const float* p) { return *p; }
  static __device__ __forceinline__ void store(float* p, float v) { *p = v; }
  static __device__ __forceinline__ void unpack(const uint4& v, float (&x)[kVec]) {
    x[0] = __uint_as_float(v.x);
    x[1] = __uint_as_float(v.y);
    x[2] = __uint_as_float(v.z);
    x[3] = __uint_as_float(v.w);
  }
  static __device__ __forceinline__ uint4 pack(const float (&x)[kVec]) {
    return make_uint4(__float_as_uint(x[0]), __float_as_uint(x[1]), __float_as_uint(x[2]), __float_as_uint(x[3]));
  }
};

// The 16-bit dtypes: a 16-byte vector is four 32-bit words of two elements each; Pair supplies the dtype's
// unpack2/pack2 of one word.
template <typename Pair>
struct PairAccess {
  static constexpr int kVec = 8;
  static __device__ __forceinline__ void unpack(const uint4& v, float (&x)[kVec]) {
    Pair::unpack2(v.x, x[0], x[1]);
    Pair::unpack2(v.y, x[2], x[3]);
    Pair::unpack2(v.z, x[4], x[5]);
    Pair::unpack2(v.w, x[6], x[7]);
  }
  static __device__ __forceinline__ uint4 pack(const float (&x)[kVec]) {
    return make_uint4(Pair::pack2(x[0], x[1]), Pair::pack2(x[2], x[3]), Pair::pack2(x[4], x[5]),
                      Pair::pack2(x[6], x[7]));
  }
};

template <>
struct Access<__nv_bfloat16> : PairAccess<Access<__nv_bfloat16>> {
  static __device__ __forceinline__ float load(const __nv_bfloat16* p) { return __bfloat162float(*p); }
  static __device__ __forceinline__ void store(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }
  static __device__ __forceinline__ void unpack2(uint32_t w, float& lo, float& hi) {
    lo = __uint_as_float(w << 16);  // bf16 → f32 is exact: the bits move up
    hi = __uint_as_float(w & 0xffff0000u);
  }
  static __device__ __forceinline__ uint32_t pack2(float lo, float hi) {
    const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);  // round to nearest even, as the CPU
    return *reinterpret_cast<const uint32_t*>(&h);
  }
};

template <>
struct Access<__half> : PairAccess<Access<__half>> {
  static __device__ __forceinline__ float load(const __half* p) { return __half2float(*p); }
  static __device__ __forceinline__ void store(__half* p, float v) { *p = __float2half_rn(v); }
  static __device__ __forceinline__ void unpack2(uint32_t w, float& lo, float& hi) {
    const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&w));
    lo = f.x;
    hi = f.y;
  }
  static __device__ __forceinline__ uint32_t pack2(float lo, float hi) {
    const __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&h);
  }
};

// How a row of V elements of T at p splits: [0, lead) scalar, then nvec whole 16-byte vectors, then
// [tail, V) scalar. A pointer not even aligned to T (never from a tensor) gets lead = V: all scalar.
struct Span {
  int lead, nvec, tail;
  __device__ __forceinline__ int scalars(int V) const { return lead + (V - tail); }
  // The k of the j-th scalar element, j < scalars().
  __device__ __forceinline__ int scalar_index(int j) const { return j < lead ? j : tail + (j - lead); }
};

template <typename T>
__device__ __forceinline__ Span span_of(const void* p, int V) {
  constexpr int kVec = Access<T>::kVec;
  const unsigned mis = static_cast<unsigned>(reinterpret_cast<uintptr_t>(p)) & 15u;
  int lead = mis % sizeof(T) != 0 ? V : static_cast<int>(((16u - mis) & 15u) / sizeof(T));
  if (lead > V) lead = V;
  const int nvec = (V - lead) / kVec;
  return Span{lead, nvec, lead + nvec * kVec};
}

// Adds n logits (the target's already −∞) to a thread's state: the max first, then the sums at that max.
template <int N>
__device__ __forceinline__ void absorb(RowState& st, const float (&x)[N]) {
  float cm = st.m;
#pragma unroll
  for (int j = 0; j < N; ++j) cm = fmaxf(cm, x[j]);  // a NaN x is passed over, as by x > cm ? x : cm
  if (cm > st.m) {
    const float r = exp_diff(st.m, cm);
    st.s1x *= r;
    st.s2x *= r * r;
    st.m = cm;
  }
#pragma unroll
  for (int j = 0; j < N; ++j) {
    const float e = exp_diff(x[j], st.m);  // exactly 0 for the target's −∞
    st.s1x += e;
    st.s2x += e * e;
  }
}

// Sets x[rel] to v when 0 ≤ rel < N (a register array may not be indexed at run time without going to memory).
template <int N>
__device__ __forceinline__ void set_at(float (&x)[N], int rel, float v) {
  if (static_cast<unsigned>(rel) < static_cast<unsigned>(N)) {
#pragma unroll
    for (int j = 0; j < N; ++j)
      if (j == rel) x[j] = v;
  }
}

// One vector of logits starting at element k0 into the state; the target (at rel = y − k0) is left out of the
// sums; Σ (z_k − z_y) may include it, its term is exactly 0.
template <typename T>
__device__ __forceinline__ void absorb_vector(RowState& st, const uint4& v, int k0, int y, float zy, bool logit_sum) {
  float x[Access<T>::kVec];
  Access<T>::unpack(v, x);
  if (logit_sum) {
#pragma unroll
    for (int j = 0; j < Access<T>::kVec; ++j) st.sx += x[j] - zy;
  }
  set_at(x, y - k0, -INFINITY);
  absorb(st, x);
}

// Merges every thread's state in one round through shared memory: each warp reduces by shuffles and posts its
// state, then every warp reduces the kWarps posted states itself (no second round, no serial merge). All threads
// return the row's total. Starts with a barrier so the slots of the previous row are no longer being read.
// `identity` is the row's initial state (max z_y, sums 0), which merges as a no-op. `logit_sum` (the same for
// the whole block): whether the states carry sx; without it sx stays 0 and costs no shuffle.
__device__ __forceinline__ RowState warp_reduce(RowState s, int width, bool logit_sum) {
  for (int off = width / 2; off > 0; off >>= 1) {
    RowState o;
    o.m = __shfl_xor_sync(0xffffffffu, s.m, off);
    o.s1x = __shfl_xor_sync(0xffffffffu, s.s1x, off);
    o.s2x = __shfl_xor_sync(0xffffffffu, s.s2x, off);
    o.sx = logit_sum ? __shfl_xor_sync(0xffffffffu, s.sx, off) : 0.0f;
    row_state_merge(s, o);
  }
  return s;
}

__device__ RowState block_reduce(RowState s, RowState identity, RowState* slots, bool logit_sum) {
  static_assert(kWarps <= 32 && (kWarps & (kWarps - 1)) == 0, "the second stage is one warp's shuffles");
  s = warp_reduce(s, 32, logit_sum);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();
  if (lane == 0) slots[warp] = s;
  __syncthreads();
  // Lanes ≥ kWarps hold the identity; shuffles within groups of kWarps lanes leave the total in lane 0.
  RowState t = warp_reduce(lane < kWarps ? slots[lane] : identity, kWarps, logit_sum);
  t.m = __shfl_sync(0xffffffffu, t.m, 0);
  t.s1x = __shfl_sync(0xffffffffu, t.s1x, 0);
  t.s2x = __shfl_sync(0xffffffffu, t.s2x, 0);
  t.sx = logit_sum ? __shfl_sync(0xffffffffu, t.sx, 0) : 0.0f;
  return t;
}

// Writes v into every element of a row of g (ignored rows: 0; out-of-range targets: NaN).
template <typename T>
__device__ void fill_row(T* g, int V, float v) {
  using A = Access<T>;
  const Span sp = span_of<T>(g, V);
  for (int j = threadIdx.x; j < sp.scalars(V); j += kThreads) A::store(g + sp.scalar_index(j), v);
  float x[A::kVec];
#pragma unroll
  for (int j = 0; j < A::kVec; ++j) x[j] = v;
  const uint4 pv = A::pack(x);
  uint4* gv = reinterpret_cast<uint4*>(g + sp.lead);
  for (int i = threadIdx.x; i < sp.nvec; i += kThreads) __stcs(gv + i, pv);
}

// Two blocks per SM at least: a cap of 64 registers. Left to itself, ptxas for sm_90 aims at three blocks (40
// registers) and spills; two blocks keep 32 KB of 16-byte loads in flight per SM, more than HBM's latency needs.
template <typename T>
__global__ void __launch_bounds__(kThreads, 2) fused_kernel(FusedArgs a) {
  using A = Access<T>;
  constexpr int kVec = A::kVec;
  constexpr int kRound = kRoundBytes / 16;  // vectors per thread per round
  __shared__ RowState slots[kWarps];
  const float alpha = static_cast<float>(alpha_at(a.spec, a.step ? *a.step : 0));
  if (blockIdx.x == 0 && threadIdx.x == 0 && a.alpha_out) *a.alpha_out = alpha;
  const float w = a.grad_scale ? *a.grad_scale : 1.0f;
  const float smoothing = static_cast<float>(a.spec.smoothing);
  const bool logit_sum = needs_logit_sum(a.spec, alpha);
  const T* logits = static_cast<const T*>(a.logits);
  T* grad = static_cast<T*>(a.grad);
  const int V = static_cast<int>(a.vocab);  // launch_fused refuses V ≥ 2^30: in-row indices are 32-bit
  const int tid = threadIdx.x;

  for (int64_t row = blockIdx.x; row < a.n_rows; row += gridDim.x) {
    const T* z = logits + row * a.row_stride;
    T* g = grad ? grad + row * a.grad_stride : nullptr;
    const int64_t y64 = a.targets[row];

    if (y64 == a.ignore_index || y64 < 0 || y64 >= V) {
      // The whole block takes this branch together (y is the same for every thread).
      const float v = y64 == a.ignore_index ? 0.0f : __int_as_float(0x7fc00000);
      if (g) fill_row(g, V, v);
      if (tid == 0) {
        if (v != 0.0f && a.bad_target) *a.bad_target = 1;
        if (a.row_loss) a.row_loss[row] = v;
        if (a.stats)
          for (int k = 0; k < kStatCount; ++k) a.stats[row * kStatCount + k] = v;
      }
      continue;
    }
    const int y = static_cast<int>(y64);

    // The state: scalar head and tail, then whole vectors, kRound of them in flight per thread.
    const float zy = A::load(z + y);
    const RowState init = row_state_init(zy);
    RowState st = init;
    const Span sp = span_of<T>(z, V);
    for (int j = tid; j < sp.scalars(V); j += kThreads) {
      const int k = sp.scalar_index(j);
      const float x1[1] = {k == y ? -INFINITY : A::load(z + k)};
      if (logit_sum && k != y) st.sx += x1[0] - zy;
      absorb(st, x1);
    }
    const uint4* zv = reinterpret_cast<const uint4*>(z + sp.lead);
    int i = tid;
    for (; i + (kRound - 1) * kThreads < sp.nvec; i += kRound * kThreads) {
      uint4 v[kRound];
#pragma unroll
      for (int u = 0; u < kRound; ++u) v[u] = zv[i + u * kThreads];
#pragma unroll
      for (int u = 0; u < kRound; ++u)
        absorb_vector<T>(st, v[u], sp.lead + (i + u * kThreads) * kVec, y, zy, logit_sum);
    }
    for (; i < sp.nvec; i += kThreads) absorb_vector<T>(st, zv[i], sp.lead + i * kVec, y, zy, logit_sum);

    st = block_reduce(st, init, slots, logit_sum);
    const RowResult r = finalize_row(st, zy, a.spec.kind, alpha, smoothing, V);

    float hit = 0.0f;
    if (a.stats && zy == r.m) {
      // The target holds the max; it is the argmax unless the max also appears earlier in the row. The row is
      // still in L2 from the state pass: 16-byte loads of the vectors that start before y.
      int before = 0;
      for (int j = tid; j < sp.scalars(V); j += kThreads) {
        const int k = sp.scalar_index(j);
        if (k < y) before |= A::load(z + k) == r.m;
      }
      const int below = y > sp.lead ? (y - sp.lead + kVec - 1) / kVec : 0;
      for (int i = tid; i < (below < sp.nvec ? below : sp.nvec); i += kThreads) {
        float x[kVec];
        A::unpack(zv[i], x);
        const int k0 = sp.lead + i * kVec;
#pragma unroll
        for (int j = 0; j < kVec; ++j) before |= (k0 + j < y) & (x[j] == r.m);
      }
      hit = __syncthreads_or(before) ? 0.0f : 1.0f;
    }
    if (tid == 0) {
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
    if (!g) continue;

    // ∂L/∂z_k = w·(p_k(c1 + c2·p_k) + c0) for k ≠ y, w·g_y at y; c0 = 0 without smoothing adds exactly nothing.
    const float c1 = w * r.c1, c2 = w * r.c2, c0 = w * r.c0, gy = w * r.g_y, m = r.m, inv = r.inv_s1;
    const auto grad_of = [&](float x) {
      const float p = exp_diff(x, m) * inv;
      return fmaf(p, fmaf(c2, p, c1), c0);
    };
    if (span_of<T>(g, V).lead != sp.lead) {
      // g and z are not 16-byte aligned alike (a gradient buffer at another offset): scalar, loads first.
      for (int k = tid; k < V; k += kThreads) {
        const float x = A::load(z + k);
        A::store(g + k, k == y ? gy : grad_of(x));
      }
      continue;
    }
    for (int j = tid; j < sp.scalars(V); j += kThreads) {
      const int k = sp.scalar_index(j);
      const float x = A::load(z + k);
      A::store(g + k, k == y ? gy : grad_of(x));
    }
    // Each thread reads only the elements it writes, so loading a round before storing it is right in place too
    // (g == z); the loads are the row's last use and the stores are not read again here: evict-first for both.
    uint4* gv = reinterpret_cast<uint4*>(g + sp.lead);
    const auto grad_vector = [&](const uint4& v, int k0) {
      float x[kVec];
      A::unpack(v, x);
#pragma unroll
      for (int j = 0; j < kVec; ++j) x[j] = grad_of(x[j]);
      set_at(x, y - k0, gy);
      return A::pack(x);
    };
    i = tid;
    for (; i + (kRound - 1) * kThreads < sp.nvec; i += kRound * kThreads) {
      uint4 v[kRound];
#pragma unroll
      for (int u = 0; u < kRound; ++u) v[u] = __ldcs(zv + i + u * kThreads);
#pragma unroll
      for (int u = 0; u < kRound; ++u)
        __stcs(gv + i + u * kThreads, grad_vector(v[u], sp.lead + (i + u * kThreads) * kVec));
    }
    for (; i < sp.nvec; i += kThreads) __stcs(gv + i, grad_vector(__ldcs(zv + i), sp.lead + i * kVec));
  }
}

// grad[row, :] *= s, s = go[row·go_stride], skipped where s is 1: d loss/d loss = 1 (the training step's case)
// costs a read of one float per block, decided here on the device, with no host read and no N×V pass.
template <typename T>
__global__ void __launch_bounds__(256) scale_kernel(ScaleArgs a) {
  using A = Access<T>;
  constexpr int kVec = A::kVec;
  const int V = static_cast<int>(a.vocab);
  for (int64_t row = blockIdx.x; row < a.n_rows; row += gridDim.x) {
    const float s = a.go[row * a.go_stride];
    if (s == 1.0f) continue;  // the same for the whole block
    T* g = static_cast<T*>(a.grad) + row * a.grad_stride;
    const Span sp = span_of<T>(g, V);
    for (int j = threadIdx.x; j < sp.scalars(V); j += blockDim.x) {
      const int k = sp.scalar_index(j);
      A::store(g + k, A::load(g + k) * s);
    }
    uint4* gv = reinterpret_cast<uint4*>(g + sp.lead);
    for (int i = threadIdx.x; i < sp.nvec; i += blockDim.x) {
      float x[kVec];
      A::unpack(__ldcs(gv + i), x);
#pragma unroll
      for (int j = 0; j < kVec; ++j) x[j] *= s;
      __stcs(gv + i, A::pack(x));
    }
  }
}

constexpr int64_t kMaxGrid = 0x7fffffff;  // gridDim.x's limit; more rows than that loop inside the blocks

unsigned grid_for(int64_t rows) { return static_cast<unsigned>(rows < kMaxGrid ? rows : kMaxGrid); }

}  // namespace

int launch_fused(const FusedArgs& args, void* stream) {
  if (args.n_rows <= 0) return 0;
  if (args.vocab >= (int64_t{1} << 30)) return static_cast<int>(cudaErrorInvalidValue);
  // One block per row: rows take equal time, so a grid of N blocks is the schedule the hardware balances best,
  // with no block left holding two rows while others idle.
  const unsigned blocks = grid_for(args.n_rows);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  switch (args.dtype) {
    case DType::F32: fused_kernel<float><<<blocks, kThreads, 0, s>>>(args); break;
    case DType::BF16: fused_kernel<__nv_bfloat16><<<blocks, kThreads, 0, s>>>(args); break;
    case DType::F16: fused_kernel<__half><<<blocks, kThreads, 0, s>>>(args); break;
  }
  return static_cast<int>(cudaGetLastError());
}

int launch_scale(const ScaleArgs& args, void* stream) {
  if (args.n_rows <= 0) return 0;
  if (args.vocab >= (int64_t{1} << 30)) return static_cast<int>(cudaErrorInvalidValue);
  const unsigned blocks = grid_for(args.n_rows);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  switch (args.dtype) {
    case DType::F32: scale_kernel<float><<<blocks, 256, 0, s>>>(args); break;
    case DType::BF16: scale_kernel<__nv_bfloat16><<<blocks, 256, 0, s>>>(args); break;
    case DType::F16: scale_kernel<__half><<<blocks, 256, 0, s>>>(args); break;
  }
  return static_cast<int>(cudaGetLastError());
}

}  // namespace cuda
}  // namespace dpsm
