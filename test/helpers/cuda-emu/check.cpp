// Runs native/kernels/dpsm_cuda.cu on the CPU emulation beside it (cuda_runtime.h) against the CPU kernel
// (native/kernels/dpsm_cpu.cpp, its baseline build) on the same inputs, for test/cuda-emulated.test.ts: every kind,
// schedule, smoothing and dtype, vocabularies that leave rows at every 16-byte phase, in-place gradients and
// gradients at another phase (the scalar fallback), ignored and out-of-range targets, the argmax statistics, and
// the backward's scaling kernel. The case grid and its plumbing are native/kernels/dpsm_check_cases.h, shared with
// the GPU probe (bench/gpu-verify/kernel-probe.cu). Prints one line per failure and a summary; exits 1 on any failure.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "dpsm_check_cases.h"
#include "dpsm_kernels.h"

namespace dpsm::cpu::baseline {
void fused_rows(const FusedArgs&, int64_t, int64_t);
}

namespace {

using namespace dpsm;
using check::Case;
using check::get;
using check::put;

check::Rng rng{0x9e3779b97f4a7c15ull};
double uniform() { return rng.uniform(); }
double normal() { return std::sqrt(-2.0 * std::log(1.0 - uniform())) * std::cos(6.283185307179586 * uniform()); }

// A zeroed buffer whose element 0 sits `offset` elements past a 64-byte boundary.
struct Buffer {
  std::vector<uint8_t> raw;
  uint8_t* at;
  Buffer(size_t bytes, size_t offset_bytes) : raw(bytes + offset_bytes + 128, 0) {
    uintptr_t p = reinterpret_cast<uintptr_t>(raw.data());
    p = (p + 63) / 64 * 64 + offset_bytes;
    at = reinterpret_cast<uint8_t*>(p);
  }
};

int failures = 0;
void fail(const std::string& what, const std::string& name) {
  if (++failures <= 40) std::printf("FAIL %s: %s\n", name.c_str(), what.c_str());
}

// The gradient's rule, normwise over a case (as dev/fused-loss-cases.ts' rule against float64, with room for the
// two kernels' own errors), and a looser one per row: a row whose gradient cancels (a non-target p_k near 1 under
// Brier) amplifies the last-bit differences of two exps, while a wrong index or a missed element is off by O(1).
double case_tol(DType d) { return d == DType::F32 ? 2e-5 : d == DType::BF16 ? 1e-2 : 2e-3; }
double row_tol(DType d) { return d == DType::F32 ? 1e-3 : 2e-2; }

bool close(double a, double b, double rel) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return std::fabs(a - b) <= rel * std::max(1.0, std::fabs(b));
}

void run_case(const Case& c) {
  const std::string name = check::name_of(c);
  const DType d = c.dtype;
  const size_t es = check::elem_size(d);
  const int64_t V = c.vocab, N = c.rows, stride = c.stride();
  Buffer logits(static_cast<size_t>(N * stride) * es, c.offset * es);
  std::vector<int64_t> targets(N);
  const double scale = c.extreme ? 100.0 : 3.0;
  for (int64_t r = 0; r < N; ++r) {
    for (int64_t k = 0; k < V; ++k) {
      double x = normal() * scale;
      if (c.extreme && uniform() < 0.01) x = uniform() < 0.5 ? -1e4 : 1e4;
      put(logits.at, d, r * stride + k, static_cast<float>(x));
    }
    const int64_t y = static_cast<int64_t>(uniform() * static_cast<double>(V));
    targets[r] = y;
    if (r % 3 == 1) put(logits.at, d, r * stride + y, c.extreme ? 1e4f : 40.0f);  // the target holds the max
    if (r % 6 == 1 && y > 0) put(logits.at, d, r * stride + y / 2, c.extreme ? 1e4f : 40.0f);  // ... tied earlier
    if (r % 6 == 4 && y + 1 < V) put(logits.at, d, r * stride + (y + V) / 2, c.extreme ? 1e4f : 40.0f);  // ... later
  }
  if (N > 2) targets[2] = -100;                  // ignored
  if (N > 4 && c.step % 2 == 1) targets[4] = V;  // out of range: NaN row, flag set

  const float grad_scale = 1.0f / 7.0f;
  struct Out {
    std::vector<float> loss, stats;
    float alpha = -1;
    int32_t bad = 0;
  } cpu, gpu;
  auto make_args = [&](Out& o, const void* z, void* g, int64_t g_stride) {
    o.loss.assign(N, -7.0f);
    o.stats.assign(N * kStatCount, -7.0f);
    FusedArgs a = check::fused_args(c, z, targets.data());
    a.step = &c.step;
    a.grad_scale = &grad_scale;
    a.row_loss = o.loss.data();
    a.stats = o.stats.data();
    a.grad = g;
    a.grad_stride = g_stride;
    a.alpha_out = &o.alpha;
    a.bad_target = &o.bad;
    return a;
  };

  // The CPU kernel: a contiguous gradient of its own.
  Buffer cpu_grad(static_cast<size_t>(N * V) * es, 0);
  cpu::baseline::fused_rows(make_args(cpu, logits.at, cpu_grad.at, V), 0, N);

  // The CUDA kernel, emulated: in place in a copy of the logits, or into a buffer at its own phase.
  Buffer work(static_cast<size_t>(N * stride) * es, c.offset * es);
  std::memcpy(work.at, logits.at, static_cast<size_t>(N * stride) * es);
  Buffer sep(static_cast<size_t>(N * stride) * es, c.grad_offset * es);
  uint8_t* g = c.inplace ? work.at : sep.at;
  if (cuda::launch_fused(make_args(gpu, work.at, g, stride), nullptr) != 0) fail("launch_fused refused", name);

  if (cpu.alpha != gpu.alpha) fail("alpha " + std::to_string(gpu.alpha) + " vs " + std::to_string(cpu.alpha), name);
  if (cpu.bad != gpu.bad) fail("bad_target flag differs", name);
  double case_num = 0, case_den = 0;
  for (int64_t r = 0; r < N; ++r) {
    if (!close(gpu.loss[r], cpu.loss[r], 2e-5))
      fail("row " + std::to_string(r) + " loss " + std::to_string(gpu.loss[r]) + " vs " + std::to_string(cpu.loss[r]),
           name);
    for (int k = 0; k < kStatCount; ++k)
      if (!close(gpu.stats[r * kStatCount + k], cpu.stats[r * kStatCount + k], 2e-5))
        fail("row " + std::to_string(r) + " stat " + std::to_string(k) + ": " +
                 std::to_string(gpu.stats[r * kStatCount + k]) + " vs " + std::to_string(cpu.stats[r * kStatCount + k]),
             name);
    double num = 0, den = 0;
    bool nan_ok = true, zero_ok = true;
    for (int64_t k = 0; k < V; ++k) {
      const double a = get(g, d, r * stride + k), b = get(cpu_grad.at, d, r * V + k);
      if (std::isnan(b) || std::isnan(a)) {
        nan_ok = nan_ok && std::isnan(a) && std::isnan(b);
        continue;
      }
      if (targets[r] == -100) zero_ok = zero_ok && a == 0.0;
      num += (a - b) * (a - b);
      den += b * b;
    }
    if (!nan_ok) fail("row " + std::to_string(r) + ": NaNs differ", name);
    if (!zero_ok) fail("row " + std::to_string(r) + ": ignored row not exactly 0", name);
    if (den > 0 && std::sqrt(num / den) > row_tol(d))
      fail("row " + std::to_string(r) + " gradient rel. err " + std::to_string(std::sqrt(num / den)), name);
    case_num += num;
    case_den += den;
    // Padding between rows is never written (in place it keeps the logits).
    for (int64_t k = V; k < stride; ++k)
      if (!c.inplace && get(g, d, r * stride + k) != 0.0f) fail("padding written", name);
  }

  if (case_den > 0 && std::sqrt(case_num / case_den) > case_tol(d))
    fail("gradient rel. err " + std::to_string(std::sqrt(case_num / case_den)), name);

  // The backward's scaling: a factor of 1 leaves the gradient bit for bit, others scale (per row or all rows).
  const size_t bytes = static_cast<size_t>(N * stride) * es;
  std::vector<uint8_t> before(g, g + bytes);
  std::vector<float> go(N);
  for (int64_t r = 0; r < N; ++r) go[r] = r % 2 == 0 ? 1.0f : 0.5f + static_cast<float>(r);
  const float one = 1.0f, half = 0.5f;
  for (int mode = 0; mode < 3; ++mode) {
    std::memcpy(g, before.data(), bytes);
    const ScaleArgs s = check::scale_args(c, g, mode == 0 ? &one : mode == 1 ? &half : go.data(), mode == 2 ? 1 : 0);
    if (cuda::launch_scale(s, nullptr) != 0) fail("launch_scale refused", name);
    for (int64_t r = 0; r < N; ++r) {
      const float f = mode == 0 ? 1.0f : mode == 1 ? 0.5f : go[r];
      for (int64_t k = 0; k < stride; ++k) {
        const int64_t i = r * stride + k;
        const float was = get(before.data(), d, i), now = get(g, d, i);
        Buffer one_elem(4, 0);
        put(one_elem.at, d, 0, k < V ? was * f : was);
        const float want = get(one_elem.at, d, 0);
        if (!(now == want || (std::isnan(now) && std::isnan(want)))) {
          fail("scale mode " + std::to_string(mode) + " row " + std::to_string(r) + " k " + std::to_string(k) + ": " +
                   std::to_string(now) + " vs " + std::to_string(want),
               name);
          r = N;
          break;
        }
      }
    }
  }
}

}  // namespace

int main() {
  std::vector<Case> cases;
  // Vocabularies: below one vector, odd, one past a round, GPT-2's 50,257 is covered by the shapes' phases
  // (rows of odd V start at every 2-byte phase); pads and offsets move the rows' 16-byte phase.
  const int64_t vocabs[] = {1, 3, 8, 9, 37, 1000, 4103, 9001};
  int i = 0;
  for (DType d : {DType::F32, DType::BF16, DType::F16})
    for (Kind kind : {Kind::CE, Kind::Brier, Kind::Spherical, Kind::DPSM})
      for (int64_t V : vocabs) {
        Case c = check::grid_case(i, d, kind, V);
        c.schedule = static_cast<Schedule>(i % 4);
        c.rows = V > 4000 ? 6 : 9;
        c.extreme = i % 9 == 4;
        c.step = i % 7;
        cases.push_back(c);
        ++i;
      }
  for (const Case& c : cases) run_case(c);
  std::printf("%zu cases, %d failures\n", cases.size(), failures);
  return failures == 0 ? 0 : 1;
}
