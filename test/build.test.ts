// The build paths other than `npm run build`: the CUDA kernels compile with nvcc (no GPU needed), and
// binding.gyp hands node-gyp's rebuild (what node-gyp-build runs at install without a prebuilt binary)
// to CMakeLists.txt, producing an addon that loads.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

import test from "ava";

import { probes } from "../dev/testing-addon.ts";
import { native, packageRoot } from "../lib/native.ts";
import { run } from "./helpers/run.ts";
import { tmpDir } from "./helpers/tmp.ts";

// nvcc from the machine, or NVIDIA's compiler wheels installed by native/setup-nvcc.sh: the test never
// skips for want of a compiler.
function findNvcc(): string {
  const r = spawnSync("bash", [path.join(packageRoot, "native/setup-nvcc.sh")], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`native/setup-nvcc.sh failed:\n${(r.stderr ?? "").slice(-2000)}`);
  return r.stdout.trim().split("\n").at(-1)!;
}

test("the CUDA kernels compile with nvcc for A100 (sm_80) and H100/H200 (sm_90)", (t) => {
  const nvcc = findNvcc();
  const out = path.join(tmpDir(t, "dpsm-cuda-"), "dpsm_cuda.o");
  const r = run(nvcc, [
    "-std=c++17",
    "-O3",
    "-c",
    path.join(packageRoot, "native/kernels/dpsm_cuda.cu"),
    "-I",
    path.join(packageRoot, "native/kernels"),
    "-gencode",
    "arch=compute_80,code=sm_80",
    "-gencode",
    "arch=compute_90,code=sm_90",
    "-Werror",
    "all-warnings",
    "-o",
    out,
  ]);
  t.is(r.code, 0, r.output);
  t.true(fs.statSync(out).size > 10_000);
});

function findNodeGyp(): string | undefined {
  const candidates = [
    process.env.npm_config_node_gyp,
    path.join(
      path.dirname(process.execPath),
      "..",
      "lib",
      "node_modules",
      "npm",
      "node_modules",
      "node-gyp",
      "bin",
      "node-gyp.js",
    ),
  ];
  return candidates.find((p): p is string => !!p && fs.existsSync(p));
}

const nodeGyp = findNodeGyp();
(nodeGyp ? test : test.skip)(
  "binding.gyp: node-gyp rebuild (the install fallback) builds a loadable addon via cmake-js",
  (t) => {
    const dir = tmpDir(t, "dpsm-gyp-");
    for (const f of ["package.json", "binding.gyp", "CMakeLists.txt"])
      fs.copyFileSync(path.join(packageRoot, f), path.join(dir, f));
    fs.cpSync(path.join(packageRoot, "native"), path.join(dir, "native"), { recursive: true });
    fs.symlinkSync(path.join(packageRoot, "node_modules"), path.join(dir, "node_modules"), "dir");
    const nodedir = process.env.npm_config_nodedir ?? (fs.existsSync("/usr/include/node/node.h") ? "/usr" : undefined);
    const r = run(process.execPath, [nodeGyp!, "rebuild", ...(nodedir ? [`--nodedir=${nodedir}`] : [])], {
      cwd: dir,
    });
    t.is(r.code, 0, r.output.slice(-4000));
    const addon = path.join(dir, "build", "Release", "dpsm_native.node");
    t.true(fs.existsSync(addon), "node-gyp's build/Release/dpsm_native.node is missing");
    const load = run(process.execPath, [
      "-e",
      `console.log(require(${JSON.stringify(addon)}).buildInfo().torchVersion)`,
    ]);
    t.is(load.code, 0, load.output);
    t.regex(load.output, /^\d+\.\d+/);
  },
);

test("the product addon carries no test probes; the testing addon does", (t) => {
  const product = Object.keys(native());
  for (const probe of ["checkAgainstReference", "timeLoss", "useCpuIsa"]) t.false(product.includes(probe), probe);
  t.true(product.includes("lossForward"));
  t.is(typeof probes.useCpuIsa("auto"), "boolean");
  t.regex(probes.cpuIsa(), /^(avx512|avx2|baseline)$/);
});
