// gpu:verify's plan (bench/gpu-verify/plan.ts) without a GPU: the stages in the order of what matters most, each
// skipped with its reason when the budget or a tool is missing, time boxes cut to what is left, the expected
// timeline inside one call of ≤ 8 minutes; the kernel probe (bench/gpu-verify/kernel-probe.cu) compiles for sm_90
// with the nvcc wheels, and the scripts parse. What the stages measure needs the device (README.md beside them).
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import test from "ava";

import { BESIDE_BUILD, decide, expectedTimeline, type Need, STAGES, stage } from "../bench/gpu-verify/plan.ts";
import { cudaTool } from "../dev/cuda-sass.ts";
import { packageRoot } from "../lib/native.ts";

const ALL = new Set<Need>(["addon", "probe", "sanitizer", "runtime", "python"]);
const dir = path.join(packageRoot, "bench", "gpu-verify");

test("the stages run in the order of the issue: correctness, the floor, the step, sanitizer, wt2-small, anchors last", (t) => {
  const order = STAGES.map((s) => s.name);
  const at = (n: string) => order.indexOf(n);
  for (const n of ["exp2", "fused-loss", "gpt2", "sanitizer", "floor", "step", "wt2-small", "train", "anchors"])
    t.true(at(n) >= 0, n);
  t.true(at("fused-loss") < at("floor") && at("exp2") < at("floor"));
  t.true(at("floor") < at("step") && at("step") < at("wt2-small"));
  t.true(at("sanitizer") < at("floor"), "the sanitizer is collected before the timed stages");
  t.is(order.at(-1), "anchors");
  t.is(stage("anchors").boxS, 0, "the anchors take whatever is left");
  t.throws(() => stage("nope"), { message: /no gpu:verify stage named nope/ });
});

test("a stage is skipped, with its reason, when the budget or a tool is missing; its box is cut to what is left", (t) => {
  const floor = stage("floor");
  t.deepEqual(decide(floor, 400, ALL), { run: true, boxS: floor.boxS });
  t.deepEqual(decide(floor, 30.7, ALL), { run: true, boxS: 30 });
  const late = decide(floor, floor.minS - 1, ALL);
  t.false(late.run);
  t.regex(!late.run ? late.reason : "", new RegExp(`the budget ran out: ${floor.minS - 1} s left`));
  t.regex(!decide(floor, -20, ALL).run ? (decide(floor, -20, ALL) as { reason: string }).reason : "", /: 0 s left/);

  const noRuntime = decide(stage("step"), 400, new Set<Need>(["addon", "python"]));
  t.false(noRuntime.run);
  t.regex((noRuntime as { reason: string }).reason, /npm run gpu:pack -- --runtime/);
  const noSan = decide(stage("sanitizer"), 400, new Set<Need>(["addon", "probe"]));
  t.regex((noSan as { reason: string }).reason, /nvidia-cuda-sanitizer-api/);
  const told = decide(stage("exp2"), 400, new Set<Need>(), { probe: "a CPU run: the kernel probe is CUDA's" });
  t.deepEqual(told, { run: false, reason: "a CPU run: the kernel probe is CUDA's" });
  // The sanitizer already ran beside the build: collecting it needs no minimum.
  t.deepEqual(decide(stage("sanitizer"), 0, ALL), { run: true, boxS: 0 });
  t.deepEqual(decide(stage("anchors"), 75.2, ALL), { run: true, boxS: 75 });
});

test("the expected timeline: correctness, the floor and the step fit a budget of 450 s; the beside-build stages are hidden", (t) => {
  const line = expectedTimeline(450);
  const get = (n: string) => line.find((x) => x.name === n)!;
  for (const n of BESIDE_BUILD) t.is(get(n).startS, 0);
  for (const n of ["fused-loss", "gpt2", "floor", "step", "wt2-small"]) t.true(get(n).fits, `${n} must fit 450 s`);
  t.true(get("step").endS <= 450);
  t.log(
    line
      .map((x) => `${x.name} ${x.startS}–${x.endS} s${x.fits ? "" : " (skipped unless earlier ones were quicker)"}`)
      .join("\n"),
  );
});

test("checks.ts runs every stage of the plan and no other", (t) => {
  const src = fs.readFileSync(path.join(dir, "checks.ts"), "utf8");
  const bodies = /const BODIES[\s\S]*?> = \{([\s\S]*?)\n\};/.exec(src)?.[1] ?? "";
  const names = [...bodies.matchAll(/^\s*"?([\w-]+)"?:/gm)].map((m) => m[1]);
  t.deepEqual(names.sort(), STAGES.map((s) => s.name).sort());
});

test("the device scripts parse, and the kernel probe compiles for sm_90", (t) => {
  for (const f of ["run.sh", "probe.sh", "in-tree.sh", "verify.sh"]) {
    const r = spawnSync("bash", ["-n", path.join(dir, f)], { encoding: "utf8" });
    t.is(r.status, 0, `${f}: ${r.stderr}`);
  }
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "dpsm-kernel-probe-"));
  try {
    const r = spawnSync(
      cudaTool("nvcc"),
      [
        "-O3",
        "-lineinfo",
        "-std=c++17",
        "-arch=sm_90",
        "-I",
        path.join(packageRoot, "native", "kernels"),
        "-o",
        path.join(out, "kernel-probe"),
        path.join(dir, "kernel-probe.cu"),
      ],
      { encoding: "utf8" },
    );
    t.is(r.status, 0, r.stderr.slice(-3000));
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
