// npm run bench:reproducibility — what decides whether a CPU training run reproduces bit for bit. The same short
// run (tiny GPT-2 on WikiText-2, fixed seed) is trained in fresh processes that differ in one setting each: a
// second process as it is, one thread instead of all, another OpenBLAS kernel (OPENBLAS_CORETYPE: what another
// CPU model picks by itself), ATen's kernels one ISA lower (ATEN_CPU_CAPABILITY), the fused loss's AVX2 variant
// (DPSM_CPU_ISA). Each is compared step by step with the first run: the first step whose loss differs, the
// largest loss difference, the validation NLL difference, and whether the final weights are the same bytes.
//
//   npm run bench:reproducibility -- [--steps 40] [--losses ce,brier,dpsm-linear] [--json FILE]
import { spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";

import { buildInfo, formatTable, Trainer, type TrainLossInput } from "../lib/index.ts";
import { writeJsonAtomic } from "../lib/io/atomic.ts";

const LOSSES: Record<string, TrainLossInput> = {
  ce: { kind: "ce" },
  brier: { kind: "brier" },
  "dpsm-linear": { kind: "dpsm", schedule: "linear", warmupSteps: 4 },
};

const { values: args } = parseArgs({
  options: {
    steps: { type: "string", default: "40" },
    losses: { type: "string", default: "ce,brier,dpsm-linear" },
    json: { type: "string" },
    // internal: train one run in this process and print its record
    child: { type: "string" },
  },
});

interface RunRecord {
  build: ReturnType<typeof buildInfo>;
  losses: number[];
  validNll: number;
  weightsSha256: string;
}

async function trainOne(lossName: string, steps: number): Promise<RunRecord> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dpsm-repro-"));
  try {
    const trainer = new Trainer({
      model: { size: "tiny", seed: 0 },
      loss: LOSSES[lossName]!,
      data: { source: "wikitext-2", contextLength: 64 },
      batchSize: 8,
      maxSteps: steps,
      lr: 3e-3,
      lrWarmupSteps: 4,
      evalEvery: steps,
      evalMaxSequences: 32,
      seed: 0,
      progress: false,
      log: false,
    });
    const fit = await trainer.fit();
    await trainer.model.saveAsync(dir);
    const weights = fs.readFileSync(path.join(dir, "model.safetensors"));
    return {
      build: buildInfo(),
      losses: fit.history.steps.map((s) => s.loss),
      validNll: fit.history.evals.at(-1)!.metrics.nll,
      weightsSha256: crypto.createHash("sha256").update(weights).digest("hex"),
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (args.child) {
  process.stdout.write(`${JSON.stringify(await trainOne(args.child, Number(args.steps)))}\n`);
  process.exit(0);
}

const steps = Number(args.steps);
if (!Number.isInteger(steps) || steps < 1) {
  console.error(`bench:reproducibility: --steps: expected an integer >= 1, got "${args.steps}"`);
  process.exit(2);
}
const losses = args.losses.split(",").map((s) => s.trim());
for (const l of losses) {
  if (!(l in LOSSES)) {
    console.error(`bench:reproducibility: --losses: "${l}" is not one of ${Object.keys(LOSSES).join(", ")}`);
    process.exit(2);
  }
}

// Settings that another machine may differ in; the first is the reference.
const here = buildInfo();
const otherBlas = here.blasCore === "Haswell" ? "SkylakeX" : "Haswell";
const SETTINGS: { name: string; env: Record<string, string> }[] = [
  { name: "this machine as it is", env: {} },
  { name: "the same, another process", env: {} },
  { name: "1 thread", env: { DPSM_NUM_THREADS: "1", OMP_NUM_THREADS: "1" } },
  { name: `OpenBLAS kernel ${otherBlas}`, env: { OPENBLAS_CORETYPE: otherBlas } },
  { name: "ATen kernels AVX2", env: { ATEN_CPU_CAPABILITY: "avx2" } },
  { name: "loss kernel AVX2", env: { DPSM_CPU_ISA: "avx2" } },
];

function runChild(loss: string, env: Record<string, string>): RunRecord {
  const script = new URL(import.meta.url).pathname;
  const r = spawnSync(process.execPath, ["--import", "tsx", script, "--child", loss, "--steps", String(steps)], {
    env: { ...process.env, ...env },
    encoding: "utf8",
    maxBuffer: 1 << 26,
  });
  if (r.status !== 0) throw new Error(`child (${loss}, ${JSON.stringify(env)}) failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as RunRecord;
}

const rows: string[][] = [];
const results: unknown[] = [];
for (const loss of losses) {
  let reference: RunRecord | undefined;
  for (const setting of SETTINGS) {
    process.stderr.write(`${loss}: ${setting.name}…\n`);
    const run = runChild(loss, setting.env);
    reference ??= run;
    const firstDiff = run.losses.findIndex((x, i) => x !== reference!.losses[i]);
    const maxDiff = Math.max(...run.losses.map((x, i) => Math.abs(x - reference!.losses[i]!)));
    rows.push([
      loss,
      setting.name,
      `${run.build.threads}`,
      run.build.blasCore || "–",
      run.build.atenCpuCapability,
      run.build.cpuIsa,
      firstDiff < 0 ? "identical" : `step ${firstDiff + 1}`,
      maxDiff.toExponential(2),
      Math.abs(run.validNll - reference.validNll).toExponential(2),
      run.weightsSha256 === reference.weightsSha256 ? "same bytes" : "differ",
    ]);
    results.push({ loss, setting, ...run });
  }
}
console.log(
  `\n${steps} steps of tiny GPT-2 (8 × 64 tokens) on WikiText-2, seed 0; ${here.cpuModel}, libtorch ${here.torchVersion}\n`,
);
console.log(
  formatTable(
    [
      { header: "loss", align: "left" },
      { header: "setting", align: "left" },
      "threads",
      { header: "OpenBLAS kernel", align: "left" },
      { header: "ATen ISA", align: "left" },
      { header: "loss kernel", align: "left" },
      { header: "losses vs first run", align: "left" },
      "max |Δ loss|",
      "|Δ valid NLL|",
      { header: "final weights", align: "left" },
    ],
    rows,
  ),
);
if (args.json) writeJsonAtomic(args.json, { steps, results });
