// The stages of `npm run gpu:verify` (bench/gpu-verify/README.md; their order, estimates and time boxes in plan.ts):
// the kernel's e^x and compute-sanitizer (read from what run.sh's kernel probe left, beside the build), the fused
// loss's reference cases, GPT-2 against the CPU, the float64 fixture and transformers, the kernel and the autograd
// op against the memory floor, the training step beside PyTorch, 100 steps of experiment 1's wt2-small, a bf16
// training run killed and resumed, and the Python anchors with the time left; on one device, written as one JSON +
// markdown summary. pack.ts bundles this file (with esbuild) so that it runs with a bare `node` beside the built
// addons, on a host that has no node_modules.
//
//   node checks.mjs --device cuda|cpu --out DIR --assets DIR [--quick] [--budget-s S] [--started-at MS]
//                   [--host-info FILE] [--probe-dir DIR] [--no-addon] [--only a,b]
//
// Every check records pass/fail with its errors and tolerance and the run goes on past a failure; a stage that
// throws is recorded as an error, one the budget or a missing tool leaves out as skipped, with why. The summary is
// rewritten after each stage, so a run cut short still leaves what it finished. Exit code 0: no stage failed.
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";

import {
  type Case,
  describeCase,
  referenceFailures,
  relativeErrors,
  SHAPES,
  SMOOTHED_SPECS,
  SPECS,
  STEP_SPECS,
} from "../../dev/fused-loss-cases.ts";
import { killChildAfterCheckpoint } from "../../dev/kill-child.ts";
import { decide, type Need, STAGES, stage as stageSpec } from "./plan.ts";
import { randInt, rng } from "../../dev/random.ts";
import { probes } from "../../dev/testing-addon.ts";
// lib/ by module, not through lib/index.ts: pack.ts bundles this file, and the whole public API would bring the
// charts' native binary (@resvg), which esbuild cannot bundle.
import { GPT2Model } from "../../lib/models/gpt2.ts";
import type { PackedTokens } from "../../lib/data/pack.ts";
import { buildInfo } from "../../lib/native.ts";
import { fmt } from "../../lib/report/table.ts";
import { Trainer, type FitResult, type TrainerOptions } from "../../lib/trainer.ts";
import { writeFileAtomic } from "../../lib/io/atomic.ts";

// ---- the training child: one process the parent kills with SIGKILL (started with --train-child FILE) ----------
if (process.argv[2] === "--train-child") {
  const options = trainOptions(JSON.parse(fs.readFileSync(process.argv[3]!, "utf8")) as TrainSpec);
  const trainer = new Trainer(options);
  trainer.on("checkpoint", (c) => console.log(`checkpoint ${c.step}`));
  trainer.on("step", (s) => console.log(`step ${s.step}`));
  await trainer.fit();
  console.log("done");
  process.exit(0);
}

const { values: args } = parseArgs({
  options: {
    device: { type: "string", default: "cuda" },
    out: { type: "string", default: "gpu-verify-out" },
    assets: { type: "string" },
    quick: { type: "boolean", default: false },
    // seconds from the call's start (--started-at) after which no stage starts and every time box ends
    "budget-s": { type: "string", default: "450" },
    "started-at": { type: "string" },
    "host-info": { type: "string" },
    "probe-dir": { type: "string" },
    "no-addon": { type: "boolean", default: false },
    only: { type: "string" },
  },
});
const device = args.device;
if (device !== "cpu" && !/^cuda(:\d+)?$/.test(device))
  throw new Error(`--device: expected cpu or cuda[:N], got ${device}`);
const quick = args.quick;
const assets = path.resolve(args.assets ?? path.join(path.dirname(process.argv[1]!), "assets"));
const outDir = path.resolve(args.out);
const budgetMs = Number(args["budget-s"]) * 1000;
if (!(budgetMs > 0)) throw new Error(`--budget-s: expected seconds > 0, got ${args["budget-s"]}`);
const started = args["started-at"] ? Number(args["started-at"]) : Date.now();
const here = path.dirname(process.argv[1]!);
const leftS = () => (budgetMs - (Date.now() - started)) / 1000;
const only = args.only ? new Set(args.only.split(",")) : undefined;
fs.mkdirSync(outDir, { recursive: true });

// ---- the record -----------------------------------------------------------------------------------------------
interface Check {
  name: string;
  pass: boolean;
  /** the measured errors (relative unless named otherwise) */
  errors?: Record<string, number>;
  tolerance?: number;
  note?: string;
}
interface Section {
  name: string;
  status: "pass" | "fail" | "error" | "skipped";
  seconds: number;
  /** the time box it ran under (seconds) */
  boxS?: number;
  checks: Check[];
  details?: unknown;
  error?: string;
}
const sections: Section[] = [];
const hostInfo: unknown = args["host-info"] && fs.existsSync(args["host-info"]) ? readJson(args["host-info"]) : null;

function readJson(file: string): unknown {
  return JSON.parse(fs.readFileSync(file, "utf8"));
}

/** One line per stage on stdout (the device tool returns the output's end): where the call is. */
function progress(line: string): void {
  console.log(`[gpu-verify +${Math.round((Date.now() - started) / 1000)}s] ${line}`);
}

let boxEnd = Infinity; // when the running stage's time box ends (ms since the epoch)

async function section(name: string, body: (checks: Check[], boxS: number) => Promise<unknown>): Promise<void> {
  if (only && !only.has(name)) return;
  const t0 = Date.now();
  const checks: Check[] = [];
  const s: Section = { name, status: "pass", seconds: 0, checks };
  const index = name === "build" ? 0 : STAGES.findIndex((x) => x.name === name) + 1;
  const label = `${index}/${STAGES.length} ${name}`;
  const decision = name === "build" ? { run: true as const, boxS: 0 } : decide(stageSpec(name), leftS(), have, why);
  if (!decision.run) {
    s.status = "skipped";
    s.error = decision.reason;
    progress(`${label}: skipped — ${decision.reason}`);
  } else {
    if (decision.boxS) s.boxS = decision.boxS;
    boxEnd = decision.boxS ? t0 + decision.boxS * 1000 : Infinity;
    progress(`${label}: start${decision.boxS ? ` (box ${decision.boxS} s, ${Math.round(leftS())} s left)` : ""}`);
    console.log(`\n== ${name} (${device})`);
    try {
      s.details = await body(checks, decision.boxS);
      s.status = checks.every((c) => c.pass) ? "pass" : "fail";
    } catch (e) {
      s.status = "error";
      s.error = e instanceof Error ? (e.stack ?? e.message) : String(e);
      console.log(`  error: ${s.error}`);
    }
    boxEnd = Infinity;
  }
  s.seconds = (Date.now() - t0) / 1000;
  sections.push(s);
  writeSummary();
  if (s.status !== "skipped") {
    const passed = checks.filter((c) => c.pass).length;
    progress(`${label}: ${s.status}, ${passed}/${checks.length} checks, ${fmt(s.seconds, 0)} s`);
  }
}

function record(checks: Check[], c: Check): void {
  checks.push(c);
  const errs = c.errors
    ? Object.entries(c.errors)
        .map(([k, v]) => `${k} ${v.toExponential(2)}`)
        .join(", ")
    : "";
  console.log(
    `  ${c.pass ? "ok  " : "FAIL"} ${c.name}${errs ? ` (${errs}${c.tolerance ? ` < ${c.tolerance}` : ""})` : ""}`,
  );
  if (!c.pass && c.note) console.log(`       ${c.note}`);
}

// ---- fused loss: the reference cases of test/fused-loss-reference.test.ts on this device ----------------------
async function referenceCase(
  checks: Check[],
  c: Case,
  tol: number,
  extra?: (r: Awaited<ReturnType<typeof probes.checkAgainstReference>>) => string[],
) {
  if (Date.now() > boxEnd || leftS() < 0)
    throw new Error(`the stage's time box ran out after ${checks.length} cases: the rest not run`);
  const full = { ...c, device };
  const r = await probes.checkAgainstReference(full);
  const failures = [...referenceFailures(full, r, tol), ...(extra ? extra(r) : [])];
  record(checks, {
    name: describeCase(full),
    pass: failures.length === 0,
    errors: { ...relativeErrors(r), lossAbs: r.lossAbsErr, gradAbs: r.gradAbsErr },
    tolerance: tol,
    ...(failures.length ? { note: failures.join("; ") } : {}),
  });
  return r;
}

async function fusedLoss(checks: Check[]): Promise<unknown> {
  const specs = quick ? [0, 1, 2, 5, 11, 16].map((i) => SPECS[i]!) : SPECS;
  const shapes = quick ? SHAPES.filter(([r, v]) => r * v <= 200_000) : SHAPES;
  let i = 0;
  for (const spec of specs) {
    for (const [rows, vocab] of [shapes[i % shapes.length]!, shapes[(i + 3) % shapes.length]!]) {
      await referenceCase(checks, { ...spec, rows, vocab, seed: 1000 + i, ignoreFraction: 0.1 }, 1e-5);
    }
    i++;
  }
  const rand = rng(7);
  for (let k = 0; k < (quick ? 2 : 10); k++) {
    const vocab = k === 0 ? 2 : k === 1 ? 50257 : randInt(rand, 2, 50257);
    const rows = Math.max(1, Math.min(randInt(rand, 1, 4096), Math.floor((quick ? 100_000 : 3_000_000) / vocab)));
    const spec = SPECS[randInt(rand, 0, SPECS.length - 1)]!;
    await referenceCase(checks, { ...spec, rows, vocab, seed: 2000 + k, ignoreFraction: rand() * 0.5 }, 1e-5);
  }
  for (const dtype of ["bfloat16", "float16"] as const) {
    i = 0;
    for (const spec of specs) {
      const [rows, vocab] = shapes[i % shapes.length]!;
      // The loss is accumulated in fp32 from the rounded logits: far tighter than the gradient's bound.
      await referenceCase(checks, { ...spec, rows, vocab, dtype, seed: 3000 + i }, 2e-2, (r) =>
        r.lossRelErr < 1e-5 ? [] : [`loss rel err ${r.lossRelErr} over 1e-5`],
      );
      i++;
    }
  }
  for (const reduction of ["mean", "sum", "none"] as const) {
    for (const spec of [SPECS[1]!, SPECS[2]!, SPECS[5]!, SPECS[10]!]) {
      await referenceCase(
        checks,
        { ...spec, rows: 200, vocab: 3001, reduction, ignoreFraction: 0.25, seed: 4000 },
        1e-5,
      );
    }
  }
  const dpsm = SPECS[5]!;
  await referenceCase(checks, { ...dpsm, rows: 300, vocab: 999, ignoreFraction: 0, seed: 5000 }, 1e-5, (r) =>
    r.count === 300 ? [] : [`count ${r.count}, expected 300`],
  );
  for (const reduction of ["mean", "sum", "none"] as const) {
    // All ignored: the reference is exactly 0, so the fused values must be exactly 0 too.
    await referenceCase(
      checks,
      { ...dpsm, rows: 64, vocab: 500, ignoreFraction: 1, reduction, seed: 5002 },
      Infinity,
      (r) =>
        r.count === 0 && r.lossAbsErr === 0 && r.gradAbsErr === 0
          ? []
          : [
              `all ignored: count ${r.count}, loss abs err ${r.lossAbsErr}, grad abs err ${r.gradAbsErr} (all must be 0)`,
            ],
    );
  }
  const bigRows = quick ? 2 : 5;
  for (const spec of [SPECS[0]!, SPECS[1]!, SPECS[2]!, SPECS[5]!, SPECS[11]!]) {
    await referenceCase(checks, { ...spec, rows: 64, vocab: 4099, extreme: true, seed: 6000 }, 1e-5);
    await referenceCase(checks, { ...spec, rows: bigRows, vocab: 262144, extreme: true, seed: 6001 }, 1e-5);
    await referenceCase(checks, { ...spec, rows: bigRows, vocab: 262144, scale: 8, seed: 6002 }, 1e-5);
  }
  for (const spec of [SPECS[0]!, SPECS[5]!, SPECS[2]!]) {
    await referenceCase(
      checks,
      { ...spec, rows: 100, vocab: 5003, inPlace: true, ignoreFraction: 0.2, seed: 7000 },
      1e-5,
    );
    await referenceCase(
      checks,
      { ...spec, rows: 100, vocab: 5003, inPlace: true, dtype: "bfloat16", seed: 7001 },
      2e-2,
    );
  }
  if (!quick) {
    // Many rows: the whole grid of a GPU launch, not only a few blocks (the CPU test never needs this).
    for (const dtype of ["float32", "bfloat16", "float16"] as const) {
      await referenceCase(
        checks,
        { ...SPECS[11]!, rows: 4096, vocab: 50257, dtype, ignoreFraction: 0.1, seed: 9000 },
        dtype === "float32" ? 1e-5 : 2e-2,
      );
    }
  }
  // Score smoothing (its Σ (z_k − z_y) rides the block reduction) and the step schedule at W − 1, W, W + 1.
  i = 0;
  for (const spec of [...SMOOTHED_SPECS, ...STEP_SPECS]) {
    for (const [rows, vocab] of [shapes[i % shapes.length]!, [31, 1] as [number, number]]) {
      await referenceCase(checks, { ...spec, rows, vocab, seed: 10_000 + i, ignoreFraction: 0.1 }, 1e-5);
    }
    i++;
  }
  i = 0;
  for (const spec of SMOOTHED_SPECS.slice(0, 5)) {
    await referenceCase(checks, { ...spec, rows: 333, vocab: 1003, dtype: "bfloat16", seed: 13_000 + i }, 2e-2, (r) =>
      r.lossRelErr < 1e-5 ? [] : [`loss rel err ${r.lossRelErr} over 1e-5`],
    );
    await referenceCase(checks, { ...spec, rows: 64, vocab: 4099, extreme: true, seed: 12_000 }, 1e-5);
    await referenceCase(
      checks,
      { ...spec, rows: 100, vocab: 5003, inPlace: true, ignoreFraction: 0.2, seed: 13_100 + i },
      1e-5,
    );
    i++;
  }
  if (!quick) {
    for (const dtype of ["float32", "bfloat16"] as const) {
      await referenceCase(
        checks,
        { ...SMOOTHED_SPECS[2]!, rows: 4096, vocab: 50257, dtype, ignoreFraction: 0.1, seed: 9100 },
        dtype === "float32" ? 1e-5 : 2e-2,
      );
    }
  }
  return { cases: checks.length };
}

// ---- GPT-2 forward: this device against the CPU and against the float64 fixture --------------------------------
function relNorm(a: Float32Array, b: Float32Array): { rel: number; maxAbs: number } {
  let num = 0;
  let den = 0;
  let maxAbs = 0;
  for (let k = 0; k < b.length; k++) {
    const d = a[k]! - b[k]!;
    num += d * d;
    den += b[k]! * b[k]!;
    maxAbs = Math.max(maxAbs, Math.abs(d));
  }
  if (a.length !== b.length) return { rel: Infinity, maxAbs: Infinity };
  return { rel: den > 0 ? Math.sqrt(num / den) : Math.sqrt(num), maxAbs: Number.isNaN(num) ? Infinity : maxAbs };
}

interface Expected {
  input_ids: number[][];
  columns: number[];
  outputs: { logits_at_columns: number[][]; logsumexp: number[] }[];
}

async function gpt2Parity(checks: Check[]): Promise<unknown> {
  // 1. The fixture (test/fixtures/gpt2: real WikiText-2 tokens, logits from an independent float64 GPT-2).
  const fixture = path.join(assets, "gpt2");
  const expected = readJson(path.join(fixture, "expected.json")) as Expected;
  const B = expected.input_ids.length;
  const T = expected.input_ids[0]!.length;
  const ids = Int32Array.from(expected.input_ids.flat());
  const cpuModel = GPT2Model.load(fixture);
  const devModel = GPT2Model.load(fixture, { device });
  const V = devModel.config.vocab_size;
  const onDev = devModel.logits({ ids, batch: B, length: T });
  const onCpu = cpuModel.logits({ ids, batch: B, length: T });
  let maxLogitErr = 0;
  let maxLseErr = 0;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const row = onDev.subarray((b * T + t) * V, (b * T + t + 1) * V);
      expected.columns.forEach((c, j) => {
        maxLogitErr = Math.max(maxLogitErr, Math.abs(row[c]! - expected.outputs[b]!.logits_at_columns[t]![j]!));
      });
      let m = -Infinity;
      for (const z of row) m = Math.max(m, z);
      let s = 0;
      for (const z of row) s += Math.exp(z - m);
      maxLseErr = Math.max(maxLseErr, Math.abs(m + Math.log(s) - expected.outputs[b]!.logsumexp[t]!));
    }
  }
  const fixtureOk = maxLogitErr < 1e-4 && maxLseErr < 1e-4;
  record(checks, {
    name: `fixture GPT-2 (2 layers, 16 wide) on ${device} vs the float64 reference`,
    pass: fixtureOk,
    errors: { maxAbsLogit: maxLogitErr, maxAbsLogsumexp: maxLseErr },
    tolerance: 1e-4,
  });
  // Against the CPU only where there is another device: cpu against cpu could not fail.
  if (device !== "cpu") {
    const fx = relNorm(onDev, onCpu);
    record(checks, {
      name: `fixture GPT-2 logits, ${device} vs cpu`,
      pass: fx.rel < 1e-5,
      errors: { rel: fx.rel, maxAbs: fx.maxAbs },
      tolerance: 1e-5,
    });
  }

  // 2. A GPT-2 of real width (random weights, made on the CPU, saved, loaded on both) on real WikiText-2 tokens.
  const data = readPacked(assets, "valid");
  const shape = quick ? { n_embd: 64, n_layer: 2, n_head: 2 } : { n_embd: 768, n_layer: 12, n_head: 12 };
  if (device === "cpu") return { fixture: { maxLogitErr, maxLseErr } };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gpu-verify-gpt2-"));
  GPT2Model.create({ vocab_size: 50257, n_positions: data.contextLength, ...shape, seed: 11 }).save(dir);
  const b2 = quick ? 2 : 8;
  const t2 = data.contextLength;
  const ids2 = data.tokens.subarray(0, b2 * t2);
  const a = GPT2Model.load(dir, { device }).logits({ ids: ids2, batch: b2, length: t2 });
  const c = GPT2Model.load(dir).logits({ ids: ids2, batch: b2, length: t2 });
  const wide = relNorm(a, c);
  record(checks, {
    name: `GPT-2 ${shape.n_layer} layers × ${shape.n_embd} (random init), ${b2}×${t2} WikiText-2 tokens, ${device} vs cpu`,
    pass: wide.rel < 1e-4,
    errors: { rel: wide.rel, maxAbs: wide.maxAbs },
    tolerance: 1e-4,
  });
  const hf = transformersLogits(dir, ids2, b2, t2);
  if (hf.logits) {
    const vsHf = relNorm(a, hf.logits);
    record(checks, {
      name: `the same GPT-2 on ${device}: ours vs Hugging Face transformers ${hf.version} (GPT2LMHeadModel, fp32, eager)`,
      pass: vsHf.rel < 1e-4,
      errors: { rel: vsHf.rel, maxAbs: vsHf.maxAbs },
      tolerance: 1e-4,
    });
  } else if (hf.error) {
    record(checks, { name: `GPT-2 vs Hugging Face transformers on ${device}`, pass: false, note: hf.error });
  }
  fs.rmSync(dir, { recursive: true, force: true });
  return {
    fixture: { maxLogitErr, maxLseErr },
    wide: { ...shape, batch: b2, length: t2 },
    transformers: hf.version ?? (hf.error ? "failed" : "not importable: not compared"),
  };
}

/**
 * Logits of the model saved in `dir` from Hugging Face transformers (hf_gpt2_logits.py, beside this bundle) on this
 * device, where the Python that run.sh found (DPSM_PYTHON) imports transformers; nothing where it does not.
 */
function transformersLogits(
  dir: string,
  ids: Int32Array,
  batch: number,
  length: number,
): { logits?: Float32Array; version?: string; error?: string } {
  const python = process.env.DPSM_PYTHON ?? "python3";
  const probe = spawnSync(python, ["-c", "import transformers"], { encoding: "utf8" });
  if (probe.status !== 0) return {};
  const idsFile = path.join(dir, "ids.i32");
  const out = path.join(dir, "hf-logits.f32");
  writeFileAtomic(idsFile, Buffer.from(ids.buffer, ids.byteOffset, ids.byteLength));
  const script = path.join(path.dirname(process.argv[1]!), "hf_gpt2_logits.py");
  const r = spawnSync(python, [script, dir, idsFile, String(batch), String(length), device, out], {
    encoding: "utf8",
  });
  if (r.status !== 0) return { error: (r.stderr || String(r.error)).trim().split("\n").slice(-3).join(" | ") };
  const b = fs.readFileSync(out);
  return {
    logits: new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)),
    version: r.stdout.trim().split("\n").pop(),
  };
}

// ---- training: bf16, killed with SIGKILL after a checkpoint, resumed ---------------------------------------------
/** A split pack.ts prepared with the project's own pipeline (lib/data/prepare.ts) from WikiText-2: its first rows. */
function readPacked(assets: string, split: "train" | "valid"): PackedTokens {
  const meta = readJson(path.join(assets, "wikitext-2", `${split}.json`)) as {
    contextLength: number;
    sequences: number;
    source: string;
    of: number;
  };
  const i32 = (f: string) => {
    const b = fs.readFileSync(path.join(assets, "wikitext-2", f));
    return new Int32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  };
  const tokens = i32(`${split}.tokens.i32`);
  const lengths = i32(`${split}.lengths.i32`);
  if (tokens.length !== meta.sequences * meta.contextLength || lengths.length !== meta.sequences) {
    throw new Error(`assets/wikitext-2/${split}: the arrays do not match ${split}.json`);
  }
  const totalTokens = lengths.reduce((a, b) => a + b, 0);
  return {
    contextLength: meta.contextLength,
    sequences: meta.sequences,
    tokens,
    lengths,
    totalTokens,
    documents: 0, // a slice of the packed stream: its documents were not counted
    streamTokens: totalTokens,
    source: `${meta.source}, first ${meta.sequences} of ${meta.of} rows`,
    fromCache: false,
  };
}

interface TrainSpec {
  assets: string;
  device: string;
  quick: boolean;
  runDir: string;
}

function trainOptions(s: TrainSpec): TrainerOptions {
  const train = readPacked(s.assets, "train");
  const valid = readPacked(s.assets, "valid");
  const full = !s.quick;
  return {
    model: full
      ? { vocab_size: 50257, n_positions: train.contextLength, n_embd: 384, n_layer: 6, n_head: 6 }
      : { vocab_size: 50257, n_positions: train.contextLength, n_embd: 32, n_layer: 2, n_head: 2 },
    loss: { kind: "dpsm", schedule: "cosine", warmupSteps: full ? 30 : 6 },
    data: { train, valid },
    maxSteps: full ? 60 : 12,
    batchSize: full ? 16 : 4,
    lr: 1e-3,
    lrWarmupSteps: 4,
    evalEvery: full ? 20 : 4,
    evalMaxSequences: full ? 64 : 8,
    seed: 5,
    device: s.device,
    precision: "bf16",
    progress: false,
    runDir: s.runDir,
    tensorboard: false, // its reliability diagrams need vega and resvg, which the bundle leaves out
  };
}

/** Starts the training child on `spec` and kills it with SIGKILL two steps after its first checkpoint. */
async function killAfterCheckpoint(spec: TrainSpec): Promise<{ killedAt: number; lastCheckpoint: number }> {
  const file = path.join(spec.runDir, "..", `${path.basename(spec.runDir)}.spec.json`);
  writeFileAtomic(file, JSON.stringify(spec));
  const child = spawn(process.execPath, [process.argv[1]!, "--train-child", file], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  try {
    return await killChildAfterCheckpoint(child, { minCheckpoint: 1, stepsPast: 2 });
  } catch (e) {
    throw new Error(`the training child ended by itself before the kill (${(e as Error).message})`, { cause: e });
  }
}

async function training(checks: Check[]): Promise<unknown> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "gpu-verify-train-"));
  const ref: FitResult = await new Trainer(
    trainOptions({ assets, device, quick, runDir: path.join(tmp, "uninterrupted") }),
  ).fit();
  const spec = { assets, device, quick, runDir: path.join(tmp, "killed") };
  const { killedAt, lastCheckpoint } = await killAfterCheckpoint(spec);
  const resumed = await new Trainer(trainOptions(spec)).fit();
  const first = resumed.history.steps[0]?.step ?? -1;
  const maxSteps = ref.steps;
  const refLoss = new Map(ref.history.steps.map((s) => [s.step, s.loss]));
  let maxRelDiff = 0;
  let exact = true;
  for (const s of resumed.history.steps) {
    const r = refLoss.get(s.step)!;
    maxRelDiff = Math.max(maxRelDiff, Math.abs(s.loss - r) / Math.abs(r));
    exact &&= s.loss === r;
  }
  // The objective's own value falls by construction as α moves from CE to Brier (Brier ≤ 2); the steps' CE and
  // the validation NLL are what say the model learnt.
  const losses = ref.history.steps.map((s) => s.loss);
  const ce = ref.history.steps.map((s) => s.ce);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const head = mean(ce.slice(0, 3));
  const tail = mean(ce.slice(-3));
  const nll = ref.history.evals.map((e) => e.metrics.nll);
  record(checks, {
    name: `bf16 training on ${device}: ${maxSteps} steps, finite losses, CE and validation NLL fall`,
    pass: [...losses, ...ce, ...nll].every(Number.isFinite) && tail < head && nll.length >= 2 && nll.at(-1)! < nll[0]!,
    errors: { firstStepsCe: head, lastStepsCe: tail, firstValidNll: nll[0] ?? NaN, lastValidNll: nll.at(-1) ?? NaN },
    note: `CE: mean of the first 3 steps ${head}, of the last 3 ${tail}; validation NLL ${nll.join(" → ")}`,
  });
  record(checks, {
    name: `SIGKILL at step ${killedAt} (checkpoint at ${lastCheckpoint}), resumed at step ${first} and finished`,
    // Step events reach JS while the native loop goes on, so a later checkpoint than the last one read may have
    // been written before the kill landed: the resume starts after the last one read, and no later than the kill.
    pass: first > lastCheckpoint && first <= killedAt + 1 && resumed.steps === maxSteps,
    note: `resumed at ${first}, expected in ${lastCheckpoint + 1}..${killedAt + 1}; ended at ${resumed.steps} of ${maxSteps}`,
  });
  // On the CPU a resume reproduces the uninterrupted run bit for bit (test/trainer.test.ts); CUDA's atomics
  // (embedding and bias gradients) make the order of float additions, and so the last bits, vary between runs.
  const tol = device === "cpu" ? 0 : 2e-2;
  record(checks, {
    name: `the resumed losses follow the uninterrupted run (${device === "cpu" ? "bit for bit" : `rel diff ≤ ${tol}`})`,
    pass: device === "cpu" ? exact : maxRelDiff <= tol,
    errors: { maxRelLossDiff: maxRelDiff },
    tolerance: tol,
    note: exact ? "bit for bit" : `largest relative difference ${maxRelDiff}`,
  });
  fs.rmSync(tmp, { recursive: true, force: true });
  return {
    steps: maxSteps,
    killedAt,
    lastCheckpoint,
    resumedAt: first,
    bitForBit: exact,
    stepMs: ref.efficiency.stepMs,
    tokensPerSecond: ref.efficiency.tokensPerSecond,
    peakMemoryBytes: ref.efficiency.peakMemoryBytes,
    losses: ref.history.steps.map((s) => [s.step, s.loss, s.ce]),
    validNll: ref.history.evals.map((e) => [e.step, e.metrics.nll]),
  };
}

// ---- helpers for the stages that run a program of their own ------------------------------------------------------
const work = process.env.DPSM_VERIFY_WORK ?? path.join(os.tmpdir(), "dpsm-gpu-verify");
const logDir = path.join(work, "logs");
fs.mkdirSync(logDir, { recursive: true });
const python = process.env.DPSM_PYTHON ?? "python3";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  output: string;
  seconds: number;
}

/**
 * Runs a program in a process group of its own until it ends or `timeoutS` passes (then the whole group gets
 * SIGTERM, and SIGKILL 10 s later, so nothing it started stays on the GPU). Its output goes to logs/<log>.log
 * (run.sh packs the folder into stage-logs.tar.xz) and its last lines to stdout.
 */
function runChild(exe: string, argv: string[], timeoutS: number, log: string, env: NodeJS.ProcessEnv = {}) {
  return new Promise<ChildResult>((resolve) => {
    const t0 = Date.now();
    const file = path.join(logDir, `${log}.log`);
    const sink = fs.openSync(file, "w");
    fs.writeSync(sink, `$ ${exe} ${argv.join(" ")}\n`);
    const child = spawn(exe, argv, {
      stdio: ["ignore", sink, sink],
      detached: true,
      env: { ...process.env, ...env },
    });
    let timedOut = false;
    const kill = (sig: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, sig);
      } catch {
        // the group is gone already
      }
    };
    const timer = setTimeout(
      () => {
        timedOut = true;
        kill("SIGTERM");
        setTimeout(() => kill("SIGKILL"), 10_000).unref();
      },
      Math.max(1, timeoutS) * 1000,
    );
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      kill("SIGKILL"); // anything of the group still running
      fs.closeSync(sink);
      const output = fs.readFileSync(file, "utf8");
      const tail = output.trimEnd().split("\n").slice(-25).join("\n");
      console.log(`  (${log}: ${timedOut ? `stopped at its ${timeoutS} s box` : `exit ${code ?? signal}`}; log tail)`);
      console.log(tail.replace(/^/gm, "  | "));
      resolve({ code, signal, timedOut, output, seconds: (Date.now() - t0) / 1000 });
    });
  });
}

const secondsLeftInBox = () => Math.floor((Math.min(boxEnd, started + budgetMs) - Date.now()) / 1000);

// ---- what run.sh's kernel probe left (bench/gpu-verify/kernel-probe.cu, compiled and run beside the build) -------
const probeDir = args["probe-dir"] ? path.resolve(args["probe-dir"]) : undefined;
const probeFile = (f: string) => (probeDir ? path.join(probeDir, f) : "");
const probeRead = (f: string) => (probeDir && fs.existsSync(probeFile(f)) ? fs.readFileSync(probeFile(f), "utf8") : "");

/** Waits for one of the probe's files until the stage's box ends; false when it never came. */
async function probeWait(file: string): Promise<boolean> {
  while (!fs.existsSync(probeFile(file))) {
    if (fs.existsSync(probeFile("failed")) || Date.now() > boxEnd) return false;
    await sleep(250);
  }
  return true;
}

async function exp2Stage(checks: Check[]): Promise<unknown> {
  if (!(await probeWait("exp2.rc"))) {
    throw new Error(`no result from the kernel probe: ${probeRead("failed") || "it did not finish in the box"}`);
  }
  const rc = Number(probeRead("exp2.rc").trim());
  const line = probeRead("exp2.json").trim().split("\n").pop() ?? "";
  const r = (line.startsWith("{") ? JSON.parse(line) : {}) as {
    maxRelErr?: number;
    "maxRelErrAbove-20"?: number;
    tolerance?: number;
    pass?: boolean;
    points?: number;
  };
  record(checks, {
    name: `the kernel's e^x (ex2.approx of (x − m)·log2 e) vs double exp, x − m ∈ [−87, 0], ${r.points ?? "?"} points × 5 maxima`,
    pass: rc === 0 && r.pass === true,
    errors: { maxRel: r.maxRelErr ?? NaN, maxRelAboveMinus20: r["maxRelErrAbove-20"] ?? NaN },
    tolerance: r.tolerance ?? 1e-5,
    ...(rc === 0 ? {} : { note: `exit ${rc}: ${probeRead("exp2.log").trim().split("\n").slice(-3).join(" | ")}` }),
  });
  return r;
}

const SANITIZER_TOOLS = ["memcheck", "racecheck", "initcheck", "synccheck"] as const;

async function sanitizerStage(checks: Check[]): Promise<unknown> {
  const done = await probeWait("done");
  if (!done && probeRead("pgid")) {
    // Its box is over: the probe job (a process group of run.sh's making) leaves the GPU to the timed stages.
    try {
      process.kill(-Number(probeRead("pgid").trim()), "SIGKILL");
    } catch {
      // ended meanwhile
    }
  }
  if (probeRead("failed")) throw new Error(probeRead("failed").trim());
  const tool = probeRead("sanitizer-path").trim();
  const details: Record<string, unknown> = { computeSanitizer: tool };
  for (const t of SANITIZER_TOOLS) {
    const rcText = probeRead(`${t}.rc`).trim();
    const log = probeRead(`${t}.log`);
    const summary = log.split("\n").filter((l) => /SUMMARY/.test(l));
    const ran = /"pass": true/.test(log);
    details[t] = { exit: rcText === "" ? null : Number(rcText), summary };
    record(checks, {
      name: `compute-sanitizer --tool ${t}: the kernel probe's tiny shapes (every kind, dtype, 16-byte phase, in place, scaling)`,
      pass: rcText === "0" && ran,
      ...(rcText === "0" && ran
        ? {}
        : {
            note:
              rcText === ""
                ? "did not run inside the stage's box"
                : `exit ${rcText}; ${[...summary, ...log.trim().split("\n").slice(-4)].join(" | ")}`,
          }),
    });
  }
  return details;
}

// ---- the floor: the kernel alone and the autograd op beside it (bench/fused-loss.ts, bundled) -------------------
async function benchRun(log: string, extra: string[], boxS: number): Promise<unknown> {
  const bench = path.join(here, "bench-fused-loss.mjs");
  const json = path.join(work, `${log}.json`);
  fs.rmSync(json, { force: true });
  const r = await runChild(
    process.execPath,
    [bench, "--device", device === "cpu" ? "cpu" : "cuda", "--json", json, ...extra],
    boxS,
    log,
  );
  if (!fs.existsSync(json))
    throw new Error(`bench:fused-loss wrote nothing (${r.timedOut ? "stopped at its box" : `exit ${r.code}`})`);
  const text = r.output
    .split("\n")
    .filter((l) => l.startsWith("|") || /^(floor|kernel|\(CE\)|cuda|cpu|failed|peak MB|liger)/.test(l));
  return { ...(readJson(json) as object), text: text.join("\n"), exit: r.code, timedOut: r.timedOut };
}

async function floorStage(checks: Check[], boxS: number): Promise<unknown> {
  const sizes = quick ? "64x50257,64x50304" : "8192x50257,8192x50304";
  const r = (await benchRun(
    "floor",
    ["--sizes", sizes, "--head", "", "--no-python", "--iters", quick ? "2" : "20", "--warmup", quick ? "1" : "3"],
    boxS,
  )) as {
    results?: { key: string; floorMs: number; kernelMs: number; fusedMs: number; inplaceMs?: number }[];
    timedOut: boolean;
  };
  const rows = r.results ?? [];
  for (const x of rows) {
    const best = Math.min(x.fusedMs, x.inplaceMs ?? Infinity);
    record(checks, {
      name: `${x.key}: floor ${fmt(x.floorMs, 2)} ms; kernel ${fmt(x.kernelMs, 2)} ms (${fmt((100 * x.floorMs) / x.kernelMs, 0)} % of the floor), autograd op ${fmt(best, 2)} ms (${fmt((100 * x.floorMs) / best, 0)} %)`,
      pass: Number.isFinite(x.kernelMs) && Number.isFinite(x.fusedMs),
    });
  }
  record(checks, {
    name: `bench:fused-loss ${sizes} ran to its end`,
    pass: !r.timedOut && rows.length === 2 * 2 * (device === "cpu" ? 1 : 2),
  });
  return r;
}

async function anchorsStage(checks: Check[], boxS: number): Promise<unknown> {
  const sizes = quick ? "256x50257" : "8192x50257";
  const head = quick ? "256x64x1000" : "32768x768x50257";
  // The Python side gets what is left after this process's own rows (~20 s on a GPU), and a minute to end its case.
  const r = (await benchRun(
    "anchors",
    [
      "--sizes",
      sizes,
      "--head",
      head,
      "--iters",
      quick ? "2" : "10",
      "--warmup",
      quick ? "1" : "3",
      "--python-budget-s",
      String(Math.max(10, boxS - 70)),
    ],
    boxS,
  )) as { timedOut: boolean; pythonPackages?: unknown };
  record(checks, { name: `bench:fused-loss ${sizes}, head ${head}, Python anchors with ${boxS} s`, pass: !r.timedOut });
  return r;
}

// ---- the training step beside PyTorch (bench/train-step.ts through in-tree.sh) ----------------------------------
async function stepStage(checks: Check[]): Promise<unknown> {
  const out: Record<string, unknown> = {};
  // Medium first: the 2026-11-23 call's trustworthy row; each size ~70 s, torch.compile's cold compile most of it.
  for (const size of ["medium", "small"]) {
    const left = secondsLeftInBox();
    if (left < 60) {
      record(checks, { name: `train-step ${size}: not run, ${left} s left in the box (needs ~70)`, pass: true });
      continue;
    }
    const json = path.join(work, `step-${size}.json`);
    fs.rmSync(json, { force: true });
    const r = await runChild(
      "bash",
      [path.join(here, "in-tree.sh"), "bench/train-step.ts", "--device", "cuda", "--sizes", size, "--json", json],
      left,
      `step-${size}`,
    );
    const ok = fs.existsSync(json);
    const doc = ok ? (readJson(json) as { rows: { impl: string; ms: number[]; error?: string }[] }) : undefined;
    const ms = (impl: string) => {
      const xs = [...(doc?.rows.find((x) => x.impl === impl)?.ms ?? [])].sort((a, b) => a - b);
      return xs.length ? xs[Math.floor(xs.length / 2)]! : NaN;
    };
    const ours = ms("dpsm-native");
    record(checks, {
      name: `train-step GPT-2 ${size} bf16: dpsm-native ${fmt(ours)} ms, eager ${fmt(ms("PyTorch eager"))} ms, torch.compile ${fmt(ms("PyTorch torch.compile"))} ms`,
      pass: ok && Number.isFinite(ours),
      errors: { oursOverEager: ours / ms("PyTorch eager"), oursOverCompile: ours / ms("PyTorch torch.compile") },
      ...(ok
        ? {}
        : {
            note: r.timedOut
              ? "stopped at its box"
              : `exit ${r.code}: ${r.output.trim().split("\n").slice(-3).join(" | ")}`,
          }),
    });
    out[size] = {
      ...(doc ?? {}),
      table: r.output
        .split("\n")
        .filter((l) => l.startsWith("|"))
        .join("\n"),
    };
  }
  return out;
}

// ---- 100 steps of experiment 1's wt2-small (bin/dpsm-native.mjs exp1 through in-tree.sh) ------------------------
// Every variation in the order that matters most, one seed; the profile's extra runs (sweeps, label noise, low
// resource, baselines) and its out-of-domain sets (not carried) left out. A run stopped at the box is resumed by
// nothing: the report is rewritten from the runs that finished.
const WT2_VARIATIONS = "ce,dpsm-linear,brier,dpsm-cosine,dpsm-fixed-0.5,ce-then-brier,dpsm-fixed-0.25,dpsm-fixed-0.75";
async function wt2Stage(checks: Check[], boxS: number): Promise<unknown> {
  const dir = path.join(work, "exp1-wt2-small");
  // The same settings again for --report-only: the experiment's folder pins its configuration.
  const settings = [
    ...["bin/dpsm-native.mjs", "exp1", "--profile", "wt2-small", "--out", dir, "--seeds", "0", "--max-steps", "100"],
    ...["--lr-warmup-steps", "10", "--eval-every", "50", "--variations", WT2_VARIATIONS, "--baselines", "none"],
    ...["--no-label-noise", "--low-resource", "none", "--warmup-sweep", "none", "--ood", "none"],
    "--no-efficiency-audit",
  ];
  const inTree = path.join(here, "in-tree.sh");
  const r = await runChild("bash", [inTree, ...settings], Math.max(20, boxS - 35), "wt2-small");
  if (r.timedOut) await runChild("bash", [inTree, ...settings, "--report-only"], 30, "wt2-small-report");
  const finished: { run: string; result: unknown }[] = [];
  const walk = (d: string): void => {
    if (!fs.existsSync(d)) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name === "result.json") finished.push({ run: path.relative(dir, d), result: readJson(p) });
    }
  };
  walk(path.join(dir, "runs"));
  const report = path.join(dir, "report.md");
  if (fs.existsSync(report)) fs.copyFileSync(report, path.join(outDir, "wt2-small-report.md"));
  record(checks, {
    name: `exp1 wt2-small, 100 steps: ${finished.length} of ${WT2_VARIATIONS.split(",").length} variations finished (${finished.map((f) => f.run.split("/").at(-2)).join(", ") || "none"})`,
    pass: finished.length > 0 && (r.code === 0 || r.timedOut),
    ...(finished.length > 0 ? {} : { note: `exit ${r.code}: ${r.output.trim().split("\n").slice(-3).join(" | ")}` }),
  });
  record(checks, { name: "exp1 wrote its report.md", pass: fs.existsSync(report) });
  return { finished, timedOut: r.timedOut, exit: r.code };
}

// ---- the summary --------------------------------------------------------------------------------------------------
function writeSummary(): void {
  const failed = sections.flatMap((s) => s.checks).filter((c) => !c.pass).length;
  const summary = {
    date: new Date().toISOString(),
    device,
    quick,
    elapsedSeconds: (Date.now() - started) / 1000,
    host: hostInfo,
    build: safeBuildInfo(),
    node: process.version,
    passed: sections.flatMap((s) => s.checks).filter((c) => c.pass).length,
    failed,
    sectionsNotPassed: sections.filter((s) => s.status !== "pass").map((s) => `${s.name}: ${s.status}`),
    sections,
  };
  writeFileAtomic(path.join(outDir, "gpu-verify.json"), `${JSON.stringify(summary, null, 1)}\n`);
  writeFileAtomic(path.join(outDir, "gpu-verify.md"), markdown(summary));
}

function safeBuildInfo(): unknown {
  try {
    return buildInfo();
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
}

function markdown(s: {
  date: string;
  passed: number;
  failed: number;
  elapsedSeconds: number;
  host: unknown;
  build: unknown;
}): string {
  const lines = [
    `# gpu:verify on ${device}${quick ? " (quick)" : ""}`,
    "",
    `${s.date}: ${s.passed} checks passed, ${s.failed} failed, in ${fmt(s.elapsedSeconds)} s.`,
    "",
    `Budget ${args["budget-s"]} s from the call's start; stages in plan.ts's order (the most important first).`,
    "",
    "| stage | status | checks passed | seconds | box s | why skipped |",
    "| --- | --- | --- | --- | --- | --- |",
    ...sections.map(
      (x) =>
        `| ${x.name} | ${x.status} | ${x.checks.filter((c) => c.pass).length}/${x.checks.length} | ${fmt(x.seconds)} | ` +
        `${x.boxS ?? "–"} | ${x.status === "skipped" ? (x.error ?? "") : ""} |`,
    ),
    "",
  ];
  for (const x of sections) {
    lines.push(`## ${x.name}: ${x.status}`, "");
    if (x.error) lines.push("```", x.error.split("\n").slice(0, 8).join("\n"), "```", "");
    const bad = x.checks.filter((c) => !c.pass);
    const shown = x.name === "fused-loss" ? bad : x.checks;
    if (x.name === "fused-loss") {
      const worst = (k: string) => Math.max(...x.checks.map((c) => c.errors?.[k] ?? 0));
      lines.push(
        `${x.checks.length} cases; worst relative errors: loss ${worst("loss").toExponential(2)}, gradient ` +
          `${worst("grad").toExponential(2)}, autograd op ${worst("autograd").toExponential(2)}.`,
        "",
      );
    }
    for (const c of shown) {
      const errs = c.errors
        ? Object.entries(c.errors)
            .map(([k, v]) => `${k} ${v.toExponential(2)}`)
            .join(", ")
        : "";
      lines.push(
        `- ${c.pass ? "pass" : "**FAIL**"}: ${c.name}${errs ? ` (${errs}${c.tolerance !== undefined ? `; tolerance ${c.tolerance}` : ""})` : ""}${!c.pass && c.note ? ` — ${c.note}` : ""}`,
      );
    }
    // The benchmarks' own tables and the notes under them, as they printed them.
    const d = x.details as { text?: string } | Record<string, { table?: string }> | undefined;
    if ((x.name === "floor" || x.name === "anchors") && d && typeof d.text === "string") lines.push("", d.text);
    if (x.name === "step" && d) {
      for (const [size, v] of Object.entries(d as Record<string, { table?: string }>))
        if (v.table) lines.push("", `GPT-2 ${size}:`, "", v.table);
    }
    lines.push("");
  }
  lines.push("```json", JSON.stringify({ host: s.host, build: s.build }, null, 1), "```", "");
  return lines.join("\n");
}

// What the stages need, and why a missing one is missing (plan.ts names it in the skip).
const have = new Set<Need>();
const why: Partial<Record<Need, string>> = {};
if (!args["no-addon"]) have.add("addon");
if (probeDir && fs.existsSync(probeFile("started"))) have.add("probe");
else if (probeRead("why")) why.probe = probeRead("why").trim();
if (probeRead("sanitizer-path").trim()) have.add("sanitizer");
else if (probeRead("no-sanitizer")) why.sanitizer = probeRead("no-sanitizer").trim();
if (fs.existsSync(path.join(here, "runtime.tar.xz")) && fs.existsSync(path.join(here, "in-tree.sh")))
  have.add("runtime");
if (spawnSync(python, ["-c", "import torch"], { stdio: "ignore" }).status === 0) have.add("python");

await section("build", async (checks) => {
  if (args["no-addon"]) {
    record(checks, { name: "the addons built", pass: false, note: "the build failed: see build.log" });
    return null;
  }
  const info = buildInfo();
  record(checks, {
    name: `the addon loaded: libtorch ${info.torchVersion}, ${info.cuda ? "CUDA kernels" : "CPU only"}, ${info.cudaDeviceCount} CUDA devices`,
    pass: device === "cpu" || (info.cuda && info.cudaDeviceCount > 0),
    ...(device !== "cpu" && !info.cuda
      ? { note: "built without CUDA kernels (DPSM_WITH_CUDA off): see build.log" }
      : {}),
  });
  return info;
});
if (sections[0]?.status !== "pass") have.delete("addon");
const BODIES: Record<string, (checks: Check[], boxS: number) => Promise<unknown>> = {
  exp2: exp2Stage,
  "fused-loss": fusedLoss,
  gpt2: gpt2Parity,
  sanitizer: sanitizerStage,
  floor: floorStage,
  step: stepStage,
  "wt2-small": wt2Stage,
  train: training,
  anchors: anchorsStage,
};
for (const s of STAGES) await section(s.name, BODIES[s.name]!);
writeSummary();
// A stage skipped for want of time or a tool is said in the summary, not counted as a failure.
const failed = sections.filter((s) => s.status === "fail" || s.status === "error");
progress(`done: ${sections.map((s) => `${s.name} ${s.status}`).join(", ")}; summary in ${outDir}/gpu-verify.{json,md}`);
process.exit(failed.length ? 1 : 0);
