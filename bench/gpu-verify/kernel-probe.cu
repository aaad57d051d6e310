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
// and checked. Built by run.sh with the host's nvcc: nvcc -O3 -lineinfo -arch=sm_XX -I native/kernels this file.
#include "dpsm_cuda.cu"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using namespace dpsm;

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
size_t elem_size(DType d) { return d == DType::F32 ? 4 : 2; }

uint64_t rng_state = 0x2545f4914f6cdd1dull;
double uniform() {  // xorshift64*, in [0, 1)
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return static_cast<double>((rng_state * 2685821657736338717ull) >> 11) * 0x1.0p-53;
}

void put(std::vector<uint8_t>& b, DType d, int64_t i, float v) {
  if (d == DType::F32) {
    std::memcpy(b.data() + 4 * i, &v, 4);
  } else if (d == DType::BF16) {
    const uint16_t h = float_to_bf16_bits(v);
    std::memcpy(b.data() + 2 * i, &h, 2);
  } else {
    const __half x = __float2half(v);
    std::memcpy(b.data() + 2 * i, &x, 2);
  }
}

float get(const std::vector<uint8_t>& b, DType d, int64_t i) {
  if (d == DType::F32) {
    float f;
    std::memcpy(&f, b.data() + 4 * i, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, b.data() + 2 * i, 2);
  if (d == DType::BF16) return bf16_bits_to_float(h);
  __half x;
  std::memcpy(&x, &h, 2);
  return __half2float(x);
}

struct Case {
  Kind kind;
  DType dtype;
  int64_t vocab, rows, pad;
  int offset, grad_offset;  // elements past the allocation's (256-byte aligned) start
  bool inplace;
  double smoothing;
  int64_t step;
};

std::string name_of(const Case& c) {
  static const char* kinds[] = {"ce", "brier", "spherical", "dpsm"};
  static const char* dtypes[] = {"f32", "bf16", "f16"};
  char buf[200];
  std::snprintf(buf, sizeof buf, "%s %s V=%lld rows=%lld pad=%lld off=%d goff=%d%s eps=%.2f",
                kinds[static_cast<int>(c.kind)], dtypes[static_cast<int>(c.dtype)], (long long)c.vocab,
                (long long)c.rows, (long long)c.pad, c.offset, c.grad_offset, c.inplace ? " in-place" : "",
                c.smoothing);
  return buf;
}

void run_case(const Case& c) {
  const std::string name = name_of(c);
  const DType d = c.dtype;
  const size_t es = elem_size(d);
  const int64_t V = c.vocab, N = c.rows, stride = V + c.pad;
  // Exactly as many bytes as the data spans: the last row's last element ends the allocation.
  const size_t span = static_cast<size_t>((N - 1) * stride + V) * es;
  std::vector<uint8_t> host(static_cast<size_t>(N * stride) * es, 0);
  std::vector<int64_t> targets(N);
  for (int64_t r = 0; r < N; ++r) {
    for (int64_t k = 0; k < V; ++k) put(host, d, r * stride + k, static_cast<float>((uniform() - 0.5) * 12.0));
    targets[r] = static_cast<int64_t>(uniform() * static_cast<double>(V));
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
    for (int64_t k = 0; k < V; ++k) put(poison, d, k, NAN);
    for (int64_t r = 0; r < N; ++r)
      CHECK(cudaMemcpy(g + r * stride * es, poison.data(), V * es, cudaMemcpyHostToDevice));
  }
  int64_t *dt = nullptr, *dstep = nullptr;
  float *loss = nullptr, *stats = nullptr, *alpha = nullptr, *scale = nullptr, *go = nullptr;
  int32_t* bad = nullptr;
  CHECK(cudaMalloc(&dt, N * sizeof(int64_t)));
  CHECK(cudaMemcpy(dt, targets.data(), N * sizeof(int64_t), cudaMemcpyHostToDevice));
  CHECK(cudaMalloc(&dstep, sizeof(int64_t)));
  CHECK(cudaMemcpy(dstep, &c.step, sizeof(int64_t), cudaMemcpyHostToDevice));
  CHECK(cudaMalloc(&loss, N * sizeof(float)));
  CHECK(cudaMalloc(&stats, N * kStatCount * sizeof(float)));
  // NaN bytes: initialised for initcheck, and a loss the kernel leaves unwritten fails the finite check below.
  CHECK(cudaMemset(loss, 0xff, N * sizeof(float)));
  CHECK(cudaMemset(stats, 0xff, N * kStatCount * sizeof(float)));
  CHECK(cudaMalloc(&alpha, sizeof(float)));
  CHECK(cudaMalloc(&bad, sizeof(int32_t)));
  CHECK(cudaMemset(bad, 0, sizeof(int32_t)));
  const float w = 1.0f / 7.0f;
  CHECK(cudaMalloc(&scale, sizeof(float)));
  CHECK(cudaMemcpy(scale, &w, sizeof(float), cudaMemcpyHostToDevice));

  FusedArgs a;
  a.logits = zd;
  a.dtype = d;
  a.n_rows = N;
  a.vocab = V;
  a.row_stride = stride;
  a.targets = dt;
  a.ignore_index = -100;
  a.spec = LossSpec{c.kind, Schedule::Linear, 5.0, 0.3, c.smoothing};
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
      const float v = get(out, d, r * stride + k);
      if (!std::isfinite(v) || (ignored && v != 0.0f)) {
        fail(name + ": row " + std::to_string(r) + " element " + std::to_string(k) + " = " + std::to_string(v));
        break;
      }
    }
  }

  // The backward's scaling: one factor for all rows, then one per row.
  std::vector<float> factors(N);
  for (int64_t r = 0; r < N; ++r) factors[r] = r % 2 == 0 ? 1.0f : 0.5f;
  CHECK(cudaMalloc(&go, N * sizeof(float)));
  CHECK(cudaMemcpy(go, factors.data(), N * sizeof(float), cudaMemcpyHostToDevice));
  for (int mode = 0; mode < 2; ++mode) {
    ScaleArgs s;
    s.grad = g;
    s.dtype = d;
    s.n_rows = N;
    s.vocab = V;
    s.grad_stride = stride;
    s.go = go + (mode == 0 ? 1 : 0);
    s.go_stride = mode == 0 ? 0 : 1;
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
        Case c{};
        c.kind = kind;
        c.dtype = d;
        c.vocab = V;
        c.rows = V > 1000 ? 5 : 7;
        c.pad = i % 5 == 0 ? 3 : 0;
        c.offset = i % 7;
        c.grad_offset = i % 4 == 3 ? (c.offset + 1) % 8 : c.offset;  // every 4th: a gradient at another phase
        c.inplace = i % 4 == 1;
        c.smoothing = kind != Kind::Spherical && i % 3 == 0 ? 0.1 : 0.0;
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
