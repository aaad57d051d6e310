// The fused CUDA kernel on a real GPU without libtorch, for `npm run gpu:verify` (bench/gpu-verify/README.md):
//
//   kernel-probe exp2       the kernel's e^x (exp_diff: one ex2.approx of (x − m)·log2 e) against double-precision
//                           exp over x − m ∈ [−87, 0] (every result a normal float) at several maxima m, as JSON; the
//                           relative error must stay under the fp32 reference tolerance (1e-5) of the fused-loss cases
//   kernel-probe sanitize   tiny shapes for compute-sanitizer (memcheck, racecheck, initcheck, synccheck): every
//                           kind and dtype, rows at every 16-byte phase, padded strides, in place and at another
//                           phase, ignored and out-of-range targets, the backward's scaling. Each row's elements are
//                           copied alone, so padding and the bytes before the first row are never written: a read
//                           of them is an initcheck error, and the buffers end where the data ends, so a read past
//                           the last row is a memcheck error. The gradient is poisoned (NaN) first; every element of
//                           a counted row must be written finite, an ignored row exactly 0. Exit 1 on any failure.
//
// The kernel's source is included, not linked, so that exp_diff (internal to that file) is the very function timed
// and checked. The sanitize stage's case grid and plumbing (native/kernels/dpsm_check_cases.h) are those of the
// emulated check (test/helpers/cuda-emu/check.cpp). Built by run.sh with the host's nvcc: nvcc -O3 -lineinfo -arch=sm_XX -I native/kernels this file.
#include "dpsm_check_cases.h"
#include "dpsm_cuda.cu"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using namespace dpsm;
using check::Case;
using check::get;
using check::put;

int failures = 0;
void fail(const std::string& what) {
  if (++failures <= 40) std::fprintf(stderr, "FAIL %s\n", what.c_str());
}

#define CHECK(call)                                                                              \
  do {                                                                                           \
    const cudaError_t e_ = (call);                                                               \
    if (e_ != cudaSuccess) {                                                                     \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
      std::exit(2);                                                                              \
    }                                                                                            \
  } while (0)

// ---- exp2 -----------------------------------------------------------------------------------------------------
__global__ void exp_kernel(const float* x, float m, float* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = dpsm::cuda::exp_diff(x[i], m);
}

int exp2_accuracy() {
  // x = m + d for d on a dense grid of [−87, 0]: e^d ≥ 1.6e-38, a normal float, so the ftz form never flushes it.
  const int n = 1 << 22;
  const float maxima[] = {0.0f, 3.25f, -50.0f, 1e4f, -1e4f};
  std::vector<float> x(n), out(n);
  float *dx = nullptr, *dout = nullptr;
  CHECK(cudaMalloc(&dx, n * sizeof(float)));
  CHECK(cudaMalloc(&dout, n * sizeof(float)));
  double worst = 0, worst_near = 0, worst_d = 0, worst_m = 0;
  for (float m : maxima) {
    for (int i = 0; i < n; ++i) x[i] = m + (-87.0f * static_cast<float>(i) / static_cast<float>(n - 1));
    CHECK(cudaMemcpy(dx, x.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    exp_kernel<<<(n + 255) / 256, 256>>>(dx, m, dout, n);
    CHECK(cudaGetLastError());
    CHECK(cudaMemcpy(out.data(), dout, n * sizeof(float), cudaMemcpyDeviceToHost));
    for (int i = 0; i < n; ++i) {
      // The reference at the float difference x − m, formed as the kernel forms it (one rounded subtraction).
      const double d = static_cast<double>(x[i] - m);
      const double ref = std::exp(d);
      const double rel = std::fabs(static_cast<double>(out[i]) - ref) / ref;
      if (!(rel <= worst)) {
        worst = std::isnan(rel) ? INFINITY : rel;
        worst_d = d;
        worst_m = m;
      }
      if (d >= -20 && rel > worst_near) worst_near = rel;
    }
  }
  CHECK(cudaFree(dx));
  CHECK(cudaFree(dout));
  const double tol = 1e-5;
  std::printf(
      "{\"points\": %d, \"maxima\": %zu, \"maxRelErr\": %.6e, \"maxRelErrAbove-20\": %.6e, \"worstAt\": {\"d\": %.6f, "
      "\"m\": %.1f}, \"tolerance\": %g, \"pass\": %s}\n",
      n, sizeof maxima / sizeof maxima[0], worst, worst_near, worst_d, worst_m, tol, worst < tol ? "true" : "false");
  return worst < tol ? 0 : 1;
}

// ---- sanitize -------------------------------------------------------------------------------------------------
check::Rng rng{0x2545f4914f6cdd1dull};

// A device copy of n host values.
template <typename T>
T* to_device(const T* host, size_t n) {
  T* p = nullptr;
  CHECK(cudaMalloc(&p, n * sizeof(T)));
  CHECK(cudaMemcpy(p, host, n * sizeof(T), cudaMemcpyHostToDevice));
  return p;
}

// n device values of the byte b repeated.
template <typename T>
T* filled(size_t n, int b) {
  T* p = nullptr;
  CHECK(cudaMalloc(&p, n * sizeof(T)));
  CHECK(cudaMemset(p, b, n * sizeof(T)));
  return p;
}

void run_case(const Case& c) {
  const std::string name = check::name_of(c);
  const DType d = c.dtype;
  const size_t es = check::elem_size(d);
  const int64_t V = c.vocab, N = c.rows, stride = c.stride();
  // Exactly as many bytes as the data spans: the last row's last element ends the allocation.
  const size_t span = static_cast<size_t>((N - 1) * stride + V) * es;
  std::vector<uint8_t> host(static_cast<size_t>(N * stride) * es, 0);
  std::vector<int64_t> targets(N);
  for (int64_t r = 0; r < N; ++r) {
    for (int64_t k = 0; k < V; ++k) put(host.data(), d, r * stride + k, static_cast<float>((rng.uniform() - 0.5) * 12.0));
    targets[r] = static_cast<int64_t>(rng.uniform() * static_cast<double>(V));
  }
  if (N > 2) targets[2] = -100;  // ignored
  if (N > 4) targets[4] = V;     // out of range: flagged

  uint8_t *z = nullptr, *g_sep = nullptr;
  CHECK(cudaMalloc(&z, c.offset * es + span));
  uint8_t* zd = z + c.offset * es;
  for (int64_t r = 0; r < N; ++r)  // row by row: the padding stays unwritten
    CHECK(cudaMemcpy(zd + r * stride * es, host.data() + r * stride * es, V * es, cudaMemcpyHostToDevice));
  uint8_t* g = zd;
  if (!c.inplace) {
    CHECK(cudaMalloc(&g_sep, c.grad_offset * es + span));
    g = g_sep + c.grad_offset * es;
    std::vector<uint8_t> poison(V * es);
    for (int64_t k = 0; k < V; ++k) put(poison.data(), d, k, NAN);
    for (int64_t r = 0; r < N; ++r)
      CHECK(cudaMemcpy(g + r * stride * es, poison.data(), V * es, cudaMemcpyHostToDevice));
  }
  int64_t* dt = to_device(targets.data(), N);
  int64_t* dstep = to_device(&c.step, 1);
  // NaN bytes: initialised for initcheck, and a loss the kernel leaves unwritten fails the finite check below.
  float* loss = filled<float>(N, 0xff);
  float* stats = filled<float>(N * kStatCount, 0xff);
  float* alpha = nullptr;
  CHECK(cudaMalloc(&alpha, sizeof(float)));
  int32_t* bad = filled<int32_t>(1, 0);
  const float w = 1.0f / 7.0f;
  float* scale = to_device(&w, 1);

  FusedArgs a = check::fused_args(c, zd, dt);
  a.step = dstep;
  a.grad_scale = scale;
  a.row_loss = loss;
  a.stats = stats;
  a.grad = g;
  a.grad_stride = stride;
  a.alpha_out = alpha;
  a.bad_target = bad;
  if (cuda::launch_fused(a, nullptr) != 0) fail(name + ": launch_fused refused");
  CHECK(cudaDeviceSynchronize());

  std::vector<float> l(N);
  int32_t flag = 0;
  CHECK(cudaMemcpy(l.data(), loss, N * sizeof(float), cudaMemcpyDeviceToHost));
  CHECK(cudaMemcpy(&flag, bad, sizeof flag, cudaMemcpyDeviceToHost));
  std::vector<uint8_t> out(host.size(), 0);
  for (int64_t r = 0; r < N; ++r)
    CHECK(cudaMemcpy(out.data() + r * stride * es, g + r * stride * es, V * es, cudaMemcpyDeviceToHost));
  if ((N > 4) != (flag == 1)) fail(name + ": out-of-range flag " + std::to_string(flag));
  for (int64_t r = 0; r < N; ++r) {
    const bool ignored = targets[r] == -100, bad_row = targets[r] == V;
    if (bad_row) continue;
    if (!std::isfinite(l[r]) || (ignored && l[r] != 0.0f)) fail(name + ": row " + std::to_string(r) + " loss");
    for (int64_t k = 0; k < V; ++k) {
      const float v = get(out.data(), d, r * stride + k);
      if (!std::isfinite(v) || (ignored && v != 0.0f)) {
        fail(name + ": row " + std::to_string(r) + " element " + std::to_string(k) + " = " + std::to_string(v));
        break;
      }
    }
  }

  // The backward's scaling: one factor for all rows, then one per row.
  std::vector<float> factors(N);
  for (int64_t r = 0; r < N; ++r) factors[r] = r % 2 == 0 ? 1.0f : 0.5f;
  float* go = to_device(factors.data(), N);
  for (int mode = 0; mode < 2; ++mode) {
    const ScaleArgs s = check::scale_args(c, g, go + (mode == 0 ? 1 : 0), mode == 0 ? 0 : 1);
    if (cuda::launch_scale(s, nullptr) != 0) fail(name + ": launch_scale refused");
  }
  CHECK(cudaDeviceSynchronize());
  CHECK(cudaGetLastError());
  for (void* p : {static_cast<void*>(z), static_cast<void*>(g_sep), static_cast<void*>(dt), static_cast<void*>(dstep),
                  static_cast<void*>(loss), static_cast<void*>(stats), static_cast<void*>(alpha),
                  static_cast<void*>(bad), static_cast<void*>(scale), static_cast<void*>(go)})
    if (p) CHECK(cudaFree(p));
}

int sanitize() {
  const int64_t vocabs[] = {1, 3, 8, 9, 37, 1000, 4103};
  int i = 0, n = 0;
  for (DType d : {DType::F32, DType::BF16, DType::F16})
    for (Kind kind : {Kind::CE, Kind::Brier, Kind::Spherical, Kind::DPSM})
      for (int64_t V : vocabs) {
        Case c = check::grid_case(i, d, kind, V);
        c.rows = V > 1000 ? 5 : 7;
        c.step = i % 9;
        run_case(c);
        ++i;
        ++n;
      }
  std::printf("{\"cases\": %d, \"failures\": %d, \"pass\": %s}\n", n, failures, failures == 0 ? "true" : "false");
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "exp2") return exp2_accuracy();
  if (mode == "sanitize") return sanitize();
  std::fprintf(stderr, "usage: kernel-probe exp2|sanitize\n");
  return 2;
}
