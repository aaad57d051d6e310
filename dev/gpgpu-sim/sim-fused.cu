// The fused CUDA kernel (native/kernels/dpsm_cuda.cu, included, so the very source is compiled) on tiny shapes,
// for GPGPU-Sim's functional (PTX) mode: dev/gpgpu-sim.sh builds this with nvcc 11.8 and runs it on the simulator.
// Every dtype × kind on 3 rows of V = 50, 131 and 300 (in f32: one, one and three warps' worth of 16-byte vectors),
// rows starting at 0, 1 or 2 elements past the allocation (scalar head and tail), label smoothing on every other case,
// each schedule, an ignored row, and a row whose target holds the max, tied before or after it (the argmax statistic);
// the gradient in place, as the training step runs it. Writes inputs and outputs to a file for cpu-compare.cpp,
// which runs the CPU kernel on the same inputs. SIM_DTYPES="0,1,2" picks dtypes (f32, bf16, f16).
#include "dpsm_check_cases.h"
#include "dpsm_cuda.cu"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#define CHECK(call)                                                                              \
  do {                                                                                           \
    const cudaError_t e_ = (call);                                                               \
    if (e_ != cudaSuccess) {                                                                     \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
      std::exit(2);                                                                              \
    }                                                                                            \
  } while (0)

namespace {
dpsm::check::Rng rng{0x243f6a8885a308d3ull};
double normal() {
  return std::sqrt(-2.0 * std::log(1.0 - rng.uniform())) * std::cos(6.283185307179586 * rng.uniform());
}
}  // namespace

int main(int argc, char** argv) {
  const char* out_path = argc > 1 ? argv[1] : "sim-out.bin";
  const char* only = std::getenv("SIM_DTYPES");  // e.g. "0" or "0,1,2": which dtypes to run
  FILE* out = std::fopen(out_path, "wb");
  if (!out) return 2;
  using namespace dpsm;
  const int vocabs[] = {50, 131, 300};
  int i = 0, ran = 0;
  for (int di = 0; di < 3; ++di) {
    if (only && !std::strchr(only, '0' + di)) continue;
    const DType d = static_cast<DType>(di);
    const size_t es = check::elem_size(d);
    for (int ki = 0; ki < 4; ++ki)
      for (int V : vocabs) {
        ++i;
        const int64_t rows = 3, offset = i % 3;  // offset: elements past the allocation's alignment
        std::vector<uint8_t> z(rows * V * es);
        std::vector<int64_t> y(rows);
        for (int64_t r = 0; r < rows; ++r) {
          for (int k = 0; k < V; ++k) check::put(z.data(), d, r * V + k, static_cast<float>(normal() * 3.0));
          y[r] = static_cast<int64_t>(rng.uniform() * V);
        }
        if (i % 4 == 3) y[2] = -100;  // an ignored row
        // Row 1: the target holds the max, tied by an element before it (the argmax is not the target) or after.
        const auto put = [&](int64_t at, float v) { check::put(z.data(), d, at, v); };
        if (y[1] == 0) y[1] = 1;
        put(V + y[1], 40.0f);
        put(V + (i % 2 == 0 ? y[1] / 2 : (y[1] + V) / 2), 40.0f);

        const int64_t step = i % 7;
        const double smoothing = ki != 2 && i % 2 == 0 ? 0.1 : 0.0;
        const float grad_scale = 1.0f / 7.0f;
        uint8_t* dz;
        int64_t *dy, *dstep;
        float *dloss, *dstats, *dalpha, *dscale;
        int32_t* dbad;
        CHECK(cudaMalloc(&dz, z.size() + 16));
        CHECK(cudaMalloc(&dy, rows * 8));
        CHECK(cudaMalloc(&dstep, 8));
        CHECK(cudaMalloc(&dloss, rows * 4));
        CHECK(cudaMalloc(&dstats, rows * kStatCount * 4));
        CHECK(cudaMalloc(&dalpha, 4));
        CHECK(cudaMalloc(&dscale, 4));
        CHECK(cudaMalloc(&dbad, 4));
        uint8_t* zat = dz + offset * es;
        CHECK(cudaMemcpy(zat, z.data(), z.size(), cudaMemcpyHostToDevice));
        CHECK(cudaMemcpy(dy, y.data(), rows * 8, cudaMemcpyHostToDevice));
        CHECK(cudaMemcpy(dstep, &step, 8, cudaMemcpyHostToDevice));
        CHECK(cudaMemcpy(dscale, &grad_scale, 4, cudaMemcpyHostToDevice));
        CHECK(cudaMemset(dbad, 0, 4));
        FusedArgs a;
        a.logits = zat;
        a.dtype = d;
        a.n_rows = rows;
        a.vocab = V;
        a.row_stride = V;
        a.targets = dy;
        a.ignore_index = -100;
        a.spec = LossSpec{static_cast<Kind>(ki), static_cast<Schedule>(i % 4), 5.0, 0.3, smoothing};
        a.step = dstep;
        a.grad_scale = dscale;
        a.row_loss = dloss;
        a.stats = dstats;
        a.grad = zat;  // in place, as the training step runs it
        a.grad_stride = V;
        a.alpha_out = dalpha;
        a.bad_target = dbad;
        CHECK(static_cast<cudaError_t>(cuda::launch_fused(a, nullptr)));
        CHECK(cudaDeviceSynchronize());
        std::vector<float> loss(rows), stats(rows * kStatCount);
        std::vector<uint8_t> g(z.size());
        float alpha;
        CHECK(cudaMemcpy(loss.data(), dloss, rows * 4, cudaMemcpyDeviceToHost));
        CHECK(cudaMemcpy(stats.data(), dstats, rows * kStatCount * 4, cudaMemcpyDeviceToHost));
        CHECK(cudaMemcpy(&alpha, dalpha, 4, cudaMemcpyDeviceToHost));
        CHECK(cudaMemcpy(g.data(), zat, g.size(), cudaMemcpyDeviceToHost));
        const int32_t hdr[6] = {
            di, ki, V, static_cast<int32_t>(rows), static_cast<int32_t>(a.spec.schedule), static_cast<int32_t>(step)};
        std::fwrite(hdr, 4, 6, out);
        std::fwrite(&smoothing, 8, 1, out);
        std::fwrite(z.data(), 1, z.size(), out);
        std::fwrite(y.data(), 8, rows, out);
        std::fwrite(loss.data(), 4, rows, out);
        std::fwrite(stats.data(), 4, rows * kStatCount, out);
        std::fwrite(&alpha, 4, 1, out);
        std::fwrite(g.data(), 1, g.size(), out);
        std::printf("case %d dtype=%d kind=%d V=%d loss0=%.6g\n", i, di, ki, V, loss[0]);
        std::fflush(stdout);
        cudaFree(dz);
        cudaFree(dy);
        cudaFree(dstep);
        cudaFree(dloss);
        cudaFree(dstats);
        cudaFree(dalpha);
        cudaFree(dscale);
        cudaFree(dbad);
        ++ran;
      }
  }
  std::fclose(out);
  std::printf("%d cases written to %s\n", ran, out_path);
  return 0;
}
