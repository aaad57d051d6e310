// Reads what sim-fused.cu wrote (the CUDA kernel's inputs and outputs under GPGPU-Sim), runs the CPU kernel
// (native/kernels/dpsm_cpu.cpp, its baseline build) on the same inputs and prints the largest differences per
// dtype: loss and statistics relative to max(1, |cpu|), the gradient elementwise in units of the row's largest
// CPU gradient, and normwise per case. Exits 1 when a case misses the emulated check's tolerances
// (test/helpers/cuda-emu/check.cpp: loss 2e-5, normwise gradient 2e-5 f32 / 1e-2 bf16 / 2e-3 f16).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "dpsm_kernels.h"

namespace dpsm::cpu::baseline {
void fused_rows(const FusedArgs&, int64_t, int64_t);
}

using namespace dpsm;

static float get(const uint8_t* p, int d, int64_t i) {
  if (d == 0) {
    float f;
    std::memcpy(&f, p + 4 * i, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, p + 2 * i, 2);
  if (d == 1) {
    const uint32_t u = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  _Float16 x;
  std::memcpy(&x, &h, 2);
  return static_cast<float>(x);
}

int main(int argc, char** argv) {
  FILE* in = std::fopen(argc > 1 ? argv[1] : "sim-out.bin", "rb");
  if (!in) {
    std::fprintf(stderr, "no input\n");
    return 2;
  }
  const char* names[] = {"f32", "bf16", "f16"};
  const char* kinds[] = {"ce", "brier", "spherical", "dpsm"};
  double worst_loss[3] = {}, worst_stat[3] = {}, worst_g[3] = {}, worst_norm[3] = {};
  int cases[3] = {}, failures = 0;
  int32_t hdr[6];
  while (std::fread(hdr, 4, 6, in) == 6) {
    const int d = hdr[0], kind = hdr[1], V = hdr[2], rows = hdr[3];
    const size_t es = d == 0 ? 4 : 2, n = static_cast<size_t>(rows) * V;
    double smoothing;
    std::vector<uint8_t> z(n * es), g(n * es), cg(n * es);
    std::vector<int64_t> y(rows);
    std::vector<float> loss(rows), stats(rows * kStatCount), closs(rows, -7), cstats(rows * kStatCount, -7);
    float alpha, calpha = -1;
    int64_t step = hdr[5];
    bool ok = std::fread(&smoothing, 8, 1, in) == 1 && std::fread(z.data(), 1, z.size(), in) == z.size() &&
              std::fread(y.data(), 8, rows, in) == static_cast<size_t>(rows) &&
              std::fread(loss.data(), 4, rows, in) == static_cast<size_t>(rows) &&
              std::fread(stats.data(), 4, stats.size(), in) == stats.size() && std::fread(&alpha, 4, 1, in) == 1 &&
              std::fread(g.data(), 1, g.size(), in) == g.size();
    if (!ok) {
      std::fprintf(stderr, "truncated input\n");
      return 2;
    }
    const float grad_scale = 1.0f / 7.0f;
    int32_t bad = 0;
    FusedArgs a;
    a.logits = z.data();
    a.dtype = static_cast<DType>(d);
    a.n_rows = rows;
    a.vocab = V;
    a.row_stride = V;
    a.targets = y.data();
    a.ignore_index = -100;
    a.spec = LossSpec{static_cast<Kind>(kind), static_cast<Schedule>(hdr[4]), 5.0, 0.3, smoothing};
    a.step = &step;
    a.grad_scale = &grad_scale;
    a.row_loss = closs.data();
    a.stats = cstats.data();
    a.grad = cg.data();
    a.grad_stride = V;
    a.alpha_out = &calpha;
    a.bad_target = &bad;
    cpu::baseline::fused_rows(a, 0, rows);

    double wl = 0, ws = 0, wg = 0, num = 0, den = 0;
    bool nan_mismatch = alpha != calpha;
    for (int r = 0; r < rows; ++r) {
      const auto rel = [&](double x, double ref) {
        if (std::isnan(x) || std::isnan(ref)) {
          nan_mismatch |= std::isnan(x) != std::isnan(ref);
          return 0.0;
        }
        return std::fabs(x - ref) / std::max(1.0, std::fabs(ref));
      };
      wl = std::max(wl, rel(loss[r], closs[r]));
      if (std::getenv("VERBOSE"))
        std::printf("  row %d y=%lld loss %.8g cpu %.8g | stats %g %g %g %g %g cpu %g %g %g %g %g\n", r,
                    static_cast<long long>(y[r]), loss[r], closs[r], stats[r * 5], stats[r * 5 + 1], stats[r * 5 + 2],
                    stats[r * 5 + 3], stats[r * 5 + 4], cstats[r * 5], cstats[r * 5 + 1], cstats[r * 5 + 2],
                    cstats[r * 5 + 3], cstats[r * 5 + 4]);
      for (int k = 0; k < kStatCount; ++k)
        ws = std::max(ws, rel(stats[r * kStatCount + k], cstats[r * kStatCount + k]));
      double gmax = 0;
      for (int k = 0; k < V; ++k) gmax = std::max(gmax, std::fabs(static_cast<double>(get(cg.data(), d, r * V + k))));
      for (int k = 0; k < V; ++k) {
        const double a1 = get(g.data(), d, r * V + k), b1 = get(cg.data(), d, r * V + k);
        num += (a1 - b1) * (a1 - b1);
        den += b1 * b1;
        if (gmax > 0)
          wg = std::max(wg, std::fabs(a1 - b1) / gmax);
        else if (a1 != 0)
          wg = INFINITY;  // an ignored row must stay exactly 0
      }
    }
    const double norm = den > 0 ? std::sqrt(num / den) : 0;
    const double tol = d == 0 ? 2e-5 : d == 1 ? 1e-2 : 2e-3;
    const bool fail = nan_mismatch || wl > 2e-5 || ws > 2e-5 || norm > tol || !(wg < 1);
    failures += fail;
    std::printf("%s %-5s %-9s V=%-3d alpha=%.3f eps=%.1f  loss %.2e  stats %.2e  grad max %.2e  normwise %.2e%s\n",
                fail ? "FAIL" : "ok  ", names[d], kinds[kind], V, alpha, smoothing, wl, ws, wg, norm,
                nan_mismatch ? " (alpha or NaNs differ)" : "");
    worst_loss[d] = std::max(worst_loss[d], wl);
    worst_stat[d] = std::max(worst_stat[d], ws);
    worst_g[d] = std::max(worst_g[d], wg);
    worst_norm[d] = std::max(worst_norm[d], norm);
    ++cases[d];
  }
  for (int d = 0; d < 3; ++d)
    if (cases[d])
      std::printf(
          "%s: %d cases, max rel. loss diff %.2e, stats %.2e, max grad diff %.2e of the row's max, "
          "normwise %.2e\n",
          names[d], cases[d], worst_loss[d], worst_stat[d], worst_g[d], worst_norm[d]);
  std::printf("%d failures\n", failures);
  return failures ? 1 : 0;
}
