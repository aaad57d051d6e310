// The fused CUDA kernel's machine code, checked without a GPU (dev/cuda-sass.ts): native/kernels/dpsm_cuda.cu
// compiled for A100 (sm_80) and H100/H200 (sm_90) with the nvcc of native/setup-nvcc.sh, read back with nvdisasm.
// Every kernel: no spills, registers within the budget; the fused kernel's hot loops: 16-byte loads (state), 16-byte
// loads and stores with a round's loads issued before its first store (gradient), each within a budget of
// instructions per element. A scalar kernel must fail (the kernel before these checks did, on both architectures).
import path from "node:path";
import fs from "node:fs";

import test from "ava";

import { checkKernel, compileAndRead, hotLoops } from "../dev/cuda-sass.ts";
import { packageRoot } from "../lib/native.ts";
import { tmpDir } from "./helpers/tmp.ts";

const source = path.join(packageRoot, "native/kernels/dpsm_cuda.cu");

for (const arch of ["80", "90"]) {
  test(`sm_${arch}: no spills, registers within budget, 16-byte loads and stores in the hot loops, loads before stores, instructions per element`, (t) => {
    const c = compileAndRead(source, arch, tmpDir(t, `dpsm-sass-${arch}-`));
    const names = c.kernels.map((k) => k.name);
    for (const kernel of ["fused_kernel", "scale_kernel"])
      for (const dtype of ["If", "I13__nv_bfloat16", "I6__half"])
        t.true(
          names.some((n) => n.includes(`${kernel}${dtype}`)),
          `${kernel}<${dtype}> missing from ${names.join(", ")}`,
        );
    for (const k of c.kernels) {
      t.deepEqual(checkKernel(k), [], JSON.stringify(hotLoops(k)));
    }
  });
}

// The guard's own negative case: the previous kernel's loop shape (one scalar load, its exp, its store, element by
// element) must be refused, so a reintroduced scalar loop cannot pass.
test("a scalar loop (the kernel before 16-byte access) fails the checks", (t) => {
  const dir = tmpDir(t, "dpsm-sass-scalar-");
  const file = path.join(dir, "scalar.cu");
  fs.writeFileSync(
    file,
    `#include <cuda_bf16.h>
template <typename T>
__global__ void __launch_bounds__(512) fused_kernel(const T* z, T* g, int V, float m, float inv) {
  float s = 0.0f;
  for (int k = threadIdx.x; k < V; k += blockDim.x) s += expf(__bfloat162float(z[k]) - m);
  if (s < 0.0f) return;
  for (int k = threadIdx.x; k < V; k += blockDim.x) g[k] = __float2bfloat16_rn(expf(__bfloat162float(z[k]) - m) * inv);
}
template __global__ void fused_kernel<__nv_bfloat16>(const __nv_bfloat16*, __nv_bfloat16*, int, float, float);
`,
  );
  const c = compileAndRead(file, "90", dir);
  t.is(c.kernels.length, 1);
  const fails = checkKernel(c.kernels[0]!);
  t.true(
    fails.some((f) => f.includes("no state loop")),
    fails.join("\n"),
  );
  t.true(
    fails.some((f) => f.includes("no gradient loop")),
    fails.join("\n"),
  );
});
