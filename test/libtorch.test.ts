// Which libtorch the addon runs on: buildInfo() names the version it was compiled against and the library the
// process loaded. test/run.mjs runs this file twice: against build/ (Debian's libtorch 1.13) and against
// build-torch2/ (PyPI's torch wheel, native/setup-torch2.sh) with DPSM_EXPECT_TORCH="2.", where a silent
// fallback to another build would otherwise pass the 2.x subset on 1.13.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

import test from "ava";

import { probes } from "../dev/testing-addon.ts";
import { buildInfo, packageRoot } from "../lib/native.ts";
import { run } from "./helpers/run.ts";
import { tmpDir } from "./helpers/tmp.ts";

test("buildInfo names the libtorch version and the library file this process loaded", (t) => {
  const info = buildInfo();
  t.regex(info.torchVersion, /^\d+\.\d+\.\d+/);
  t.true(path.isAbsolute(info.torchLibrary), info.torchLibrary);
  t.true(fs.existsSync(info.torchLibrary), info.torchLibrary);
  t.regex(path.basename(info.torchLibrary), /^libtorch_cpu\.so/);
  // The testing addon (DPSM_TESTING_NATIVE_PATH in the 2.x run) loads beside it.
  t.regex(probes.cpuIsa(), /^(avx512|avx2|baseline)$/);
  const expected = process.env.DPSM_EXPECT_TORCH;
  if (expected) {
    t.true(info.torchVersion.startsWith(expected), `expected libtorch ${expected}x, loaded ${info.torchVersion}`);
    t.is(
      path.dirname(info.torchLibrary),
      fs.realpathSync(path.join(packageRoot, ".cache", "torch2", "torch", "lib")),
      "the 2.x run loads the wheel's libtorch from .cache/torch2",
    );
  }
});

// CUDA hosts run libtorch 2.x with CUDA, and CI has no GPU and builds the wheel's CPU side only: this compiles
// (syntax only, ~10 s) every CUDA branch of native/core/platform.h against the 2.x headers and the CUDA
// runtime headers of native/setup-nvcc.sh's toolkit, so they are compiled somewhere before a GPU sees them.
// Only in the 2.x run (no skip counted in the 1.13 one).
if (process.env.DPSM_EXPECT_TORCH)
  test("platform.h's CUDA side compiles against the libtorch 2.x headers", (t) => {
    const nvcc = spawnSync("bash", [path.join(packageRoot, "native/setup-nvcc.sh")], { encoding: "utf8" });
    t.is(nvcc.status, 0, nvcc.stderr);
    const cudaInclude = path.resolve(path.dirname(nvcc.stdout.trim().split("\n").at(-1)!), "..", "include");
    const torchInclude = path.resolve(path.dirname(buildInfo().torchLibrary), "..", "include");
    const source = path.join(tmpDir(t, "dpsm-platform-cuda-"), "probe.cpp");
    fs.writeFileSync(
      source,
      `#include "native/core/platform.h"
namespace p = dpsm::platform;
int probe() {
  const at::Device d("cuda:0");
  p::AutocastBF16 autocast(true, d);
  p::reset_peak_memory(d);
  p::cuda_synchronize(0);
  const auto g = p::default_cuda_generator(d);
  return static_cast<int>(p::peak_memory_bytes(d) + p::cuda_allocated(0)) + (g ? 1 : 0) +
         (p::current_cuda_stream(d) != nullptr) + p::cuda_device_count();
}
`,
    );
    const r = run(process.env.CXX ?? "c++", [
      "-std=c++20",
      "-fsyntax-only",
      "-Werror=deprecated-declarations",
      "-DDPSM_WITH_CUDA",
      "-I",
      packageRoot,
      "-isystem",
      torchInclude,
      "-isystem",
      path.join(torchInclude, "torch", "csrc", "api", "include"),
      "-isystem",
      cudaInclude,
      source,
    ]);
    t.is(r.code, 0, r.output.slice(-4000));
  });
