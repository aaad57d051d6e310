// The CUDA kernels' logic run without a GPU: native/kernels/dpsm_cuda.cu, its launches rewritten as calls, compiled
// with the host compiler against the CPU emulation of test/helpers/cuda-emu/ (512 OS threads a block, real
// barriers and warp shuffles, every 16-byte access checked for alignment) and compared with the CPU kernel on the
// same inputs (check.cpp there: kinds, schedules, smoothing, dtypes, every 16-byte phase of a row, in place,
// gradients at another phase, ignored and out-of-range targets, the argmax statistic, the backward's scaling).
// The GPU's exp2 approximation, memory model and speed are bench/gpu-verify's to check on a device.
import fs from "node:fs";
import path from "node:path";

import test from "ava";

import { packageRoot } from "../lib/native.ts";
import { run } from "./helpers/run.ts";
import { tmpDir } from "./helpers/tmp.ts";

test("the CUDA kernel, emulated on the CPU, matches the CPU kernel", (t) => {
  const dir = tmpDir(t, "dpsm-cuda-emu-");
  const kernels = path.join(packageRoot, "native/kernels");
  const emu = path.join(packageRoot, "test/helpers/cuda-emu");
  const source = fs.readFileSync(path.join(kernels, "dpsm_cuda.cu"), "utf8");
  // kernel<T><<<blocks, threads, 0, s>>>(args) → emu::launch(kernel<T>, blocks, threads, args)
  const launch = /(\w+<[\w:]+>)<<<([^,]+),\s*([^,]+),[^>]*>>>\((\w+)\)/g;
  const rewritten = source.replace(launch, "emu::launch($1, $2, $3, $4)");
  t.is(rewritten.match(/emu::launch\(/g)?.length, 6, "expected 3 dtypes × 2 kernels launched");
  t.false(rewritten.includes("<<<"));
  const cu = path.join(dir, "dpsm_cuda_emulated.cpp");
  fs.writeFileSync(cu, rewritten);
  const exe = path.join(dir, "check");
  const build = run(process.env.CXX ?? "c++", [
    "-std=c++20",
    "-O2",
    "-pthread",
    "-I",
    emu,
    "-I",
    kernels,
    "-DDPSM_CPU_VARIANT=baseline",
    "-DDPSM_VEC_WIDTH=4",
    cu,
    path.join(kernels, "dpsm_cpu.cpp"),
    path.join(emu, "check.cpp"),
    "-o",
    exe,
  ]);
  t.is(build.code, 0, build.output.slice(-4000));
  const r = run(exe, []);
  t.is(r.code, 0, r.output.slice(-4000));
  t.regex(r.output, /^\d+ cases, 0 failures$/m);
  t.log(r.output.trim().split("\n").at(-1));
});
