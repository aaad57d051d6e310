// The package of `npm run gpu:verify` (bench/gpu-verify) as a CUDA host receives it: packed (pack.ts), copied to a
// folder with no node_modules anywhere above it, and started by run.sh with a PATH that holds no `node`, so the
// checks can only run on the node it carries and the JavaScript it bundles. Here the host's torch is Debian's
// libtorch (CPU), the device is the CPU and the checks run in their quick form; the same fused-loss cases, GPT-2
// fixture, floor benchmark (kernel alone and autograd op), bf16 kill-and-resume and anchors run as on a GPU, and
// must pass; the CUDA-only stages (the kernel probe's exp2 and sanitizer) and those needing the runtime package
// (step, wt2-small) are skipped, each saying why. Not covered here: the compile
// (DPSM_VERIFY_PREBUILT: run.sh configures against the package's sources, then uses this checkout's build/; the
// whole build from the package was tried by hand, bench/gpu-verify/README.md) and anything CUDA.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

import test from "ava";

import { packageRoot } from "../lib/native.ts";
import { tmpDir } from "./helpers/tmp.ts";

const torchCmake = ["/usr/lib/x86_64-linux-gnu/cmake", "/usr/lib/aarch64-linux-gnu/cmake"].find((d) =>
  fs.existsSync(path.join(d, "Torch", "TorchConfig.cmake")),
);

/** A folder of links to every program on PATH except node: a machine without Node, as far as run.sh can tell. */
function pathWithoutNode(dir: string): string {
  fs.mkdirSync(dir);
  for (const bin of (process.env.PATH ?? "").split(":")) {
    if (!bin || !fs.existsSync(bin)) continue;
    for (const name of fs.readdirSync(bin)) {
      if (name === "node" || name === "nodejs" || name === "npm" || name === "npx") continue;
      const link = path.join(dir, name);
      if (!fs.existsSync(link)) fs.symlinkSync(path.join(bin, name), link);
    }
  }
  return dir;
}

interface Summary {
  device: string;
  quick: boolean;
  node: string;
  passed: number;
  failed: number;
  build: { torchVersion: string; cuda: boolean };
  sections: { name: string; status: string; error?: string; checks: { name: string; pass: boolean }[] }[];
}

test("gpu:verify's package unpacks and runs its checks with no Node and no node_modules on the machine", async (t) => {
  if (!torchCmake) return t.fail("no Debian libtorch CMake package (npm run setup installs libtorch-dev)");
  const tmp = tmpDir(t, "dpsm-gpu-verify-");
  const packed = path.join(tmp, "packed");
  // xz -0: the test needs the package to work, not to be small (the default, -9, takes minutes on 2 cores).
  const pack = spawnSync(
    process.execPath,
    [
      "--import",
      "tsx",
      "--import",
      "./dev/checkout-env.mjs",
      "bench/gpu-verify/pack.ts",
      "--out",
      packed,
      "--xz-level",
      "0",
    ],
    { cwd: packageRoot, encoding: "utf8" },
  );
  t.is(pack.status, 0, pack.stderr);
  const size = Number(/: ([\d.]+) MiB/.exec(pack.stdout)?.[1]);
  t.true(
    size > 5 && size < 48,
    `package of ${size} MiB: with the checkout it must stay under the 64 MiB a call may send`,
  );

  // What travels is the folder alone: copied where no node_modules is above it.
  const host = path.join(tmp, "host");
  fs.cpSync(packed, path.join(host, ".gpu-verify"), { recursive: true });
  for (let d = host; d !== path.dirname(d); d = path.dirname(d))
    t.false(fs.existsSync(path.join(d, "node_modules")), d);
  const bin = pathWithoutNode(path.join(tmp, "bin"));
  t.is(spawnSync("node", ["--version"], { env: { PATH: bin } }).error?.message, "spawnSync node ENOENT");

  const out = path.join(tmp, "out");
  const prebuilt = path.dirname(
    path.dirname(process.env.DPSM_TESTING_NATIVE_PATH ?? path.join(packageRoot, "build", "testing", "x")),
  );
  const run = spawnSync("bash", [".gpu-verify/run.sh", "--device", "cpu", "--quick"], {
    cwd: host,
    encoding: "utf8",
    env: {
      PATH: bin,
      HOME: tmp,
      OUT: out,
      DPSM_VERIFY_WORK: path.join(tmp, "work"),
      DPSM_TORCH_CMAKE_PREFIX: torchCmake,
      DPSM_VERIFY_PREBUILT: prebuilt,
      ...(fs.existsSync("/usr/bin/python3") ? { PYTHON: "/usr/bin/python3" } : {}),
    },
  });
  t.log(
    run.stdout
      .split("\n")
      .filter((l) => l.startsWith("[gpu-verify"))
      .join("\n"),
  );
  t.is(run.status, 0, `${run.stdout.slice(-3000)}\n${run.stderr.slice(-2000)}`);

  // One dated folder per run, named after the card (here: the CPU).
  const folders = fs.readdirSync(out);
  t.is(folders.length, 1, folders.join(", "));
  t.regex(folders[0]!, /^\d{4}-\d{2}-\d{2}-cpu$/);
  const results = path.join(out, folders[0]!);
  const summary = JSON.parse(fs.readFileSync(path.join(results, "gpu-verify.json"), "utf8")) as Summary;
  t.like(summary, { device: "cpu", quick: true, failed: 0, build: { cuda: false } });
  t.deepEqual(
    summary.sections.map((s) => [s.name, s.status]),
    [
      ["build", "pass"],
      ["exp2", "skipped"],
      ["fused-loss", "pass"],
      ["gpt2", "pass"],
      ["sanitizer", "skipped"],
      ["floor", "pass"],
      ["step", "skipped"],
      ["wt2-small", "skipped"],
      ["train", "pass"],
      ["anchors", "pass"],
    ],
  );
  const reason = (name: string) => summary.sections.find((s) => s.name === name)?.error ?? "";
  t.is(reason("exp2"), "a CPU run: the kernel probe is CUDA's");
  t.is(reason("sanitizer"), "a CPU run: the kernel probe is CUDA's");
  t.regex(reason("step"), /npm run gpu:pack -- --runtime/);
  // The floor: the kernel alone and the autograd op, at both vocabularies, one line each.
  const floor = summary.sections.find((s) => s.name === "floor")!;
  t.is(floor.checks.filter((c) => / kernel .* autograd op /.test(c.name)).length, 4);
  t.true(floor.checks.some((c) => /50304/.test(c.name)));
  const fused = summary.sections.find((s) => s.name === "fused-loss")!;
  t.true(fused.checks.length > 40, `only ${fused.checks.length} fused-loss cases ran`);
  const train = summary.sections.find((s) => s.name === "train")!;
  t.true(train.checks.some((c) => c.name.startsWith("SIGKILL") && c.pass));
  // The node that ran the checks is the one the package carries (unpacked under DPSM_VERIFY_WORK).
  t.is(summary.node, process.version);
  t.true(fs.existsSync(path.join(tmp, "work", "bin", "node")));
  const md = fs.readFileSync(path.join(results, "gpu-verify.md"), "utf8");
  t.regex(md, /^# gpu:verify on cpu \(quick\)/);
  t.regex(md, /\| fused-loss \| pass \|/);
  t.regex(md, /\| step \| skipped \| 0\/0 \| [\d.]+ \| – \| no runtime\.tar\.xz/);
  t.regex(md, /floor \/ kernel/);
  t.true(fs.existsSync(path.join(results, "host.json")) && fs.existsSync(path.join(results, "build.log")));
  t.regex(fs.readFileSync(path.join(results, "build.log"), "utf8"), /dpsm: libtorch/);
  // What a device call brings back: at most 8 files, one folder down.
  const files = fs.readdirSync(results);
  t.true(files.length <= 8, files.join(", "));
  t.true(files.includes("stage-logs.tar.xz"));
  // One progress line per stage on stdout.
  for (const s of summary.sections.filter((x) => x.name !== "build"))
    t.regex(run.stdout, new RegExp(`\\[gpu-verify \\+\\d+s\\] \\d+/9 ${s.name}: (skipped|pass)`));
});
