// Checkpoints you can trust, on real short runs (a small GPT-2 on WikiText-2): every checkpoint folder carries a
// manifest (sizes, sha256) written last; a resume checks it and every metadata value, falls back from a damaged
// last/ to best/ with a warning, refuses when nothing valid is left (never restarting over the run's files), and
// removes what a killed run left half-written. A kill test SIGKILLs training 20+ times, inside and between
// checkpoint writes, and holds every resume to the uninterrupted run. Also: the clip norm accumulated in double.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";

import test, { type ExecutionContext } from "ava";

import { rng } from "../dev/random.ts";
import { probes } from "../dev/testing-addon.ts";
import { Trainer, type FitResult, type TrainerOptions, type WarningEvent } from "../lib/index.ts";
import { readRunLog } from "../lib/runlog.ts";
import { startLineChild } from "./helpers/child-lines.ts";
import { sharedTmpDir, tmpDir } from "./helpers/tmp.ts";

const MODEL = { vocab_size: 50257, n_positions: 64, n_embd: 32, n_layer: 2, n_head: 2 } as const;
const MAX_STEPS = 16;
function run(runDir: string): TrainerOptions {
  return {
    model: { ...MODEL },
    loss: { kind: "dpsm", schedule: "cosine", warmupSteps: 6 },
    data: { source: "wikitext-2", contextLength: 17 },
    maxSteps: MAX_STEPS,
    batchSize: 4,
    lr: 2e-3,
    lrWarmupSteps: 2,
    evalEvery: 4,
    evalMaxSequences: 4,
    seed: 5,
    progress: false,
    runDir,
  };
}

const sha256 = (file: string) => crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");
const losses = (r: FitResult) => r.history.steps.map((s) => [s.step, s.loss] as const);

/** Every path under `dir` whose name marks it temporary. */
function temporaries(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((p) => path.basename(p).includes(".tmp-"));
}

interface Manifest {
  format: string;
  version: number;
  step: number;
  files: { name: string; bytes: number; sha256: string }[];
}
const manifestOf = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, "manifest.json"), "utf8")) as Manifest;

/** Rewrites `file`'s entry in its folder's manifest, as a forger (or a careful editor) would. */
function reseal(file: string): void {
  const dir = path.dirname(file);
  const m = manifestOf(dir);
  const entry = m.files.find((f) => f.name === path.basename(file))!;
  entry.bytes = fs.statSync(file).size;
  entry.sha256 = sha256(file);
  fs.writeFileSync(path.join(dir, "manifest.json"), JSON.stringify(m));
}

type Header = Record<string, { dtype: string; shape: number[]; data_offsets: number[] }> & {
  __metadata__?: Record<string, string>;
};

/** Edits the `__metadata__` of a safetensors file (offsets are relative to the data, so they stay valid). */
function editMetadata(file: string, edit: (m: Record<string, string>) => void): void {
  editHeader(file, (h) => edit(h.__metadata__!));
}

/** Edits the JSON header of a safetensors file. */
function editHeader(file: string, edit: (h: Header) => void): void {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString("utf8")) as Header;
  edit(header);
  const text = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(text.length));
  fs.writeFileSync(file, Buffer.concat([len, text, buf.subarray(8 + n)]));
}

/** Overwrites the bytes of tensor `name` of a safetensors file with `fill`. */
function fillTensor(file: string, name: string, fill: number): void {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString("utf8")) as Record<string, { data_offsets: number[] }>;
  const [a, b] = header[name]!.data_offsets as [number, number];
  buf.fill(fill, 8 + n + a, 8 + n + b);
  fs.writeFileSync(file, buf);
}

const refDir = sharedTmpDir("dpsm-ckpt-ref-");
const midDir = sharedTmpDir("dpsm-ckpt-mid-");
let reference: FitResult | undefined;
let mid: { stoppedAt: number; bestStep: number } | undefined;

/** The uninterrupted run. */
async function uninterrupted(): Promise<FitResult> {
  reference ??= await new Trainer(run(refDir)).fit();
  return reference;
}

/** A run stopped (by an abort) just after its evaluation at step 8: last/ at step 8–11, best/ at step 8. */
async function midRun(): Promise<{ stoppedAt: number; bestStep: number }> {
  if (!mid) {
    const controller = new AbortController();
    const trainer = new Trainer(run(midDir));
    trainer.on("eval", (e) => e.step === 8 && controller.abort());
    const r = await trainer.fit({ signal: controller.signal });
    mid = { stoppedAt: r.steps, bestStep: manifestOf(path.join(midDir, "best")).step };
  }
  return mid;
}

/** A copy of the mid run to damage. */
function midCopy(t: ExecutionContext, prefix: string): string {
  const dir = tmpDir(t, prefix);
  fs.cpSync(midDir, dir, { recursive: true });
  return dir;
}

/** Resumes `dir`, collecting the trainer's warnings and the process warnings it raised. */
async function resume(
  dir: string,
): Promise<{ result: FitResult; warnings: WarningEvent[]; processWarnings: string[] }> {
  const warnings: WarningEvent[] = [];
  const processWarnings: string[] = [];
  const onWarning = (w: Error & { code?: string }) => w.code === "DPSM_CHECKPOINT" && processWarnings.push(w.message);
  process.on("warning", onWarning);
  try {
    const trainer = new Trainer(run(dir));
    trainer.on("warning", (w) => warnings.push(w));
    const result = await trainer.fit();
    await new Promise((r) => setImmediate(r)); // process warnings are emitted on the next tick
    return { result, warnings, processWarnings };
  } finally {
    process.off("warning", onWarning);
  }
}

/** The resumed run continued the uninterrupted curve from `from` + 1 and ended with its weights (last/, best/). */
async function sameAsUninterrupted(t: ExecutionContext, dir: string, result: FitResult, from: number) {
  const ref = await uninterrupted();
  t.deepEqual(result.history.steps[0]?.step, from + 1, "resumed at the wrong step");
  t.deepEqual(
    losses(result),
    losses(ref).filter(([s]) => s > from),
    "the resumed curve differs",
  );
  for (const which of ["last", "best"]) {
    t.deepEqual(
      sha256(path.join(dir, which, "model.safetensors")),
      sha256(path.join(refDir, which, "model.safetensors")),
      `${which}/ weights differ from the uninterrupted run's`,
    );
  }
  t.deepEqual(temporaries(dir), [], "temporary files left behind");
}

test.serial("each checkpoint folder holds a manifest, written last, of its files' sizes and sha256", async (t) => {
  const ref = await uninterrupted();
  t.is(ref.steps, MAX_STEPS);
  for (const which of ["last", "best"]) {
    const dir = path.join(refDir, which);
    const m = manifestOf(dir);
    t.is(m.format, "dpsm-native checkpoint");
    t.is(m.version, 1);
    t.is(m.step, which === "last" ? MAX_STEPS : ref.bestStep);
    t.deepEqual(
      m.files.map((f) => f.name),
      ["config.json", "model.safetensors", "training_state.safetensors"],
    );
    for (const f of m.files) {
      t.is(f.bytes, fs.statSync(path.join(dir, f.name)).size, f.name);
      t.is(f.sha256, sha256(path.join(dir, f.name)), f.name);
      // Written last: no file of the folder is newer than its manifest.
      t.true(fs.statSync(path.join(dir, f.name)).mtimeMs <= fs.statSync(path.join(dir, "manifest.json")).mtimeMs);
    }
  }
  t.deepEqual(temporaries(refDir), []);
});

// The fuzz's findings, each on a copy of a run stopped at step 8–11 (last/) with best/ at step 8.
const damages: [string, (dir: string) => void, RegExp][] = [
  [
    'step "-5" (resealed)',
    (d) => {
      editMetadata(path.join(d, "last/training_state.safetensors"), (m) => (m.step = "-5"));
      reseal(path.join(d, "last/training_state.safetensors"));
    },
    /training_state\.safetensors: metadata 'step' = -5, expected 0 to maxSteps \(16\)/,
  ],
  [
    'step "999999" (resealed)',
    (d) => {
      editMetadata(path.join(d, "last/training_state.safetensors"), (m) => (m.step = "999999"));
      reseal(path.join(d, "last/training_state.safetensors"));
    },
    /metadata 'step' = 999999, expected 0 to maxSteps \(16\)/,
  ],
  [
    "a cursor past the end of the data (resealed)",
    (d) => {
      editMetadata(path.join(d, "last/training_state.safetensors"), (m) => (m.cursor = "99999999"));
      reseal(path.join(d, "last/training_state.safetensors"));
    },
    /metadata 'cursor' = 99999999, expected \d+ \(the data's position at step \d+\)/,
  ],
  [
    "a bit flip in last/model.safetensors",
    (d) => {
      const f = path.join(d, "last/model.safetensors");
      const buf = fs.readFileSync(f);
      buf[buf.length - 1000]! ^= 0x10;
      fs.writeFileSync(f, buf);
    },
    /last\/model\.safetensors: sha256 [0-9a-f]{64} differs from the manifest's [0-9a-f]{64} \(the file is damaged\)/,
  ],
  [
    "a bit flip in last/training_state.safetensors",
    (d) => {
      const f = path.join(d, "last/training_state.safetensors");
      const buf = fs.readFileSync(f);
      buf[buf.length - 5000]! ^= 0x01;
      fs.writeFileSync(f, buf);
    },
    /last\/training_state\.safetensors: sha256 .* \(the file is damaged\)/,
  ],
  [
    "a damaged RNG state (resealed)",
    (d) => {
      fillTensor(path.join(d, "last/training_state.safetensors"), "rng.cpu", 0xff);
      reseal(path.join(d, "last/training_state.safetensors"));
    },
    /tensor 'rng\.cpu' is not a valid CPU generator state \(Invalid mt19937 state\)\); resuming/,
  ],
  [
    "a moment tensor of another shape, same bytes (resealed)",
    (d) => {
      editHeader(path.join(d, "last/training_state.safetensors"), (h) => {
        const key = Object.keys(h).find((k) => k.startsWith("optim.exp_avg.") && h[k]!.shape.length === 1)!;
        h[key]!.shape = [2, h[key]!.shape[0]! / 2];
      });
      reseal(path.join(d, "last/training_state.safetensors"));
    },
    /tensor 'optim\.exp_avg\..*' is Float \[2, \d+\], expected Float \[\d+\]/,
  ],
  [
    "last/training_state.safetensors deleted",
    (d) => fs.rmSync(path.join(d, "last/training_state.safetensors")),
    /last\/training_state\.safetensors is missing \(listed in .*manifest\.json\)/,
  ],
  ["last/ deleted", (d) => fs.rmSync(path.join(d, "last"), { recursive: true }), /last is missing; resuming from/],
  [
    "a kill before the manifest (no manifest.json)",
    (d) => fs.rmSync(path.join(d, "last/manifest.json")),
    /last\/manifest\.json is missing: the checkpoint is incomplete/,
  ],
];

for (const [name, damage, message] of damages) {
  test.serial(`damaged last/ (${name}): refused by name, resumed from best/ with a warning, same result`, async (t) => {
    const { bestStep } = await midRun();
    const dir = midCopy(t, "dpsm-ckpt-dmg-");
    damage(dir);
    const { result, warnings, processWarnings } = await resume(dir);
    t.log(warnings.map((w) => w.message).join("\n"));
    t.is(warnings.length, 1);
    t.regex(warnings[0]!.message, message);
    t.regex(warnings[0]!.message, new RegExp(`resuming from .*best at step ${bestStep}`));
    t.deepEqual(processWarnings, [warnings[0]!.message]);
    t.deepEqual(
      readRunLog(path.join(dir, "train.jsonl")).warnings.map((w) => w.message),
      [warnings[0]!.message],
    );
    t.is(result.steps, MAX_STEPS);
    await sameAsUninterrupted(t, dir, result, bestStep);
  });
}

test.serial("with no valid checkpoint left, the run is refused (not restarted over its files)", async (t) => {
  await midRun();
  const dir = midCopy(t, "dpsm-ckpt-none-");
  editMetadata(path.join(dir, "last/training_state.safetensors"), (m) => (m.step = "-5"));
  reseal(path.join(dir, "last/training_state.safetensors"));
  fs.rmSync(path.join(dir, "best/training_state.safetensors"));
  const before = Object.fromEntries(
    ["last", "best"].map((w) => [w, fs.readdirSync(path.join(dir, w)).map((f) => sha256(path.join(dir, w, f)))]),
  );
  const err = await t.throwsAsync(new Trainer(run(dir)).fit());
  t.log(err?.message);
  t.regex(err!.message, /runDir: .* holds checkpoints, but none can be resumed/);
  t.regex(err!.message, /last\/: .*metadata 'step' = -5/);
  t.regex(err!.message, /best\/: .*best\/training_state\.safetensors is missing/);
  t.regex(err!.message, /Delete .* to start the run over/);
  const after = Object.fromEntries(
    ["last", "best"].map((w) => [w, fs.readdirSync(path.join(dir, w)).map((f) => sha256(path.join(dir, w, f)))]),
  );
  t.deepEqual(after, before, "the checkpoints were touched");
});

test.serial("a damaged best/ beside a valid last/: resumed from last/, warned about best/", async (t) => {
  const { stoppedAt } = await midRun();
  const dir = midCopy(t, "dpsm-ckpt-best-");
  fs.rmSync(path.join(dir, "best/model.safetensors"));
  const { result, warnings } = await resume(dir);
  t.is(warnings.length, 1);
  t.regex(warnings[0]!.message, /best is damaged \(.*best\/model\.safetensors is missing/);
  await sameAsUninterrupted(t, dir, result, stoppedAt);
});

test.serial(
  "a kill between an improved evaluation's writes of last/ and best/: the resume writes best/ again",
  async (t) => {
    // last/ is written first: a kill after it leaves last/ at the new best step and best/ one improvement behind.
    // At the run's final evaluation nothing later would ever rewrite best/.
    await uninterrupted();
    const { bestStep } = await midRun();
    t.is(manifestOf(path.join(refDir, "best")).step, MAX_STEPS, "this case needs a run that improves at its end");
    const dir = tmpDir(t, "dpsm-ckpt-behind-");
    fs.cpSync(refDir, dir, { recursive: true });
    fs.rmSync(path.join(dir, "best"), { recursive: true });
    fs.cpSync(path.join(midDir, "best"), path.join(dir, "best"), { recursive: true });
    t.true(bestStep < MAX_STEPS);
    const { result, warnings } = await resume(dir);
    t.deepEqual(warnings, []);
    t.is(result.history.steps.length, 0, "a finished run trained again");
    t.is(manifestOf(path.join(dir, "best")).step, MAX_STEPS);
    t.is(
      sha256(path.join(dir, "best", "model.safetensors")),
      sha256(path.join(refDir, "best", "model.safetensors")),
      "best/ still holds the earlier best",
    );
    t.deepEqual(temporaries(dir), [], "temporary files left behind");
  },
);

test.serial("stale temporary files and folders of a killed run are removed on the next start", async (t) => {
  const { stoppedAt } = await midRun();
  const dir = midCopy(t, "dpsm-ckpt-stale-");
  const stale = [
    "last/model.safetensors.tmp-123-456",
    "best/training_state.safetensors.tmp-1-2",
    "last.tmp-99-1/model.safetensors",
    "best.tmp-98-7-old/config.json",
  ];
  for (const s of stale) {
    fs.mkdirSync(path.dirname(path.join(dir, s)), { recursive: true });
    fs.writeFileSync(path.join(dir, s), Buffer.alloc(1 << 20, 7));
  }
  t.is(temporaries(dir).length, stale.length);
  const { result, warnings } = await resume(dir);
  t.deepEqual(warnings, []);
  await sameAsUninterrupted(t, dir, result, stoppedAt);
});

// ---- The kill test ----

interface KillPlan {
  /** the output line that arms the kill: "eval" lines come just before the checkpoint writes */
  on: "eval" | "checkpoint" | "step";
  /** ms after that line */
  delayMs: number;
}

/**
 * Runs the training child on `dir`, killing it with SIGKILL `plan.delayMs` after its first `plan.on` line.
 * Resolves with the steps and losses it printed and whether it was killed (false: it finished first).
 */
async function segment(
  dir: string,
  plan: KillPlan | undefined,
): Promise<{ killed: boolean; steps: [number, number][]; warnings: string[]; inWrite: boolean }> {
  const steps: [number, number][] = [];
  const warnings: string[] = [];
  let armed = false;
  let lastKind = "";
  let inWrite = false;
  const { child, exited } = startLineChild("train-child.ts", JSON.stringify(run(dir)), ([kind, a, ...rest]) => {
    if (kind === "step") steps.push([Number(a), Number(rest[0])]);
    if (kind === "warning") warnings.push(rest.join(" "));
    lastKind = kind ?? "";
    if (plan && !armed && kind === plan.on) {
      armed = true;
      setTimeout(() => {
        // Between an "eval" line and its "checkpoint" line: the checkpoint writes were under way.
        inWrite = lastKind === "eval";
        child.kill("SIGKILL");
      }, plan.delayMs);
    }
  });
  const { killed } = await exited;
  return { killed, steps, warnings, inWrite };
}

test.serial(
  "SIGKILL at 22 moments, inside and between checkpoint writes: every resume continues exactly",
  async (t) => {
    const ref = await uninterrupted();
    const refLoss = new Map(losses(ref));
    const random = rng(12);
    const plans: KillPlan[] = [];
    for (let i = 0; i < 22; i++) {
      const r = random();
      // A third right after a checkpoint event; a third at the evaluation, 0–150 ms into the checkpoint
      // writes; a third at random moments of the steps.
      plans.push(
        r < 1 / 3
          ? { on: "checkpoint", delayMs: 0 }
          : r < 2 / 3
            ? { on: "eval", delayMs: Math.floor(random() * 150) }
            : { on: "step", delayMs: Math.floor(random() * 400) },
      );
    }
    const failures: string[] = [];
    let kills = 0;
    let chains = 0;
    let spawned = 0;
    let inWrites = 0;
    while (kills < plans.length) {
      chains++;
      const dir = tmpDir(t, "dpsm-ckpt-kill-");
      let lastStep = 0; // the highest step any segment of this chain reached
      for (;;) {
        const plan = kills < plans.length ? plans[kills] : undefined;
        const seg = await segment(dir, plan);
        spawned++;
        const tag = `chain ${chains}, segment ${spawned}${plan ? ` (kill ${JSON.stringify(plan)})` : ""}`;
        // Every step this segment printed is the uninterrupted run's step, and it resumed no earlier than the
        // last checkpoint that a previous segment saw completed (checkpoints every 4 steps).
        for (const [step, loss] of seg.steps) {
          if (refLoss.get(step) !== loss)
            failures.push(`${tag}: step ${step} loss ${loss}, expected ${refLoss.get(step)}`);
        }
        const first = seg.steps[0]?.[0];
        if (first !== undefined && first <= Math.floor(lastStep / 4) * 4 - 4)
          failures.push(`${tag}: resumed at step ${first} after a segment had reached step ${lastStep}`);
        if (seg.warnings.length > 0) failures.push(`${tag}: warnings ${seg.warnings.join("; ")}`);
        lastStep = Math.max(lastStep, seg.steps.at(-1)?.[0] ?? 0);
        if (seg.killed) {
          kills++;
          if (seg.inWrite) inWrites++;
          continue;
        }
        // Finished: the same final weights (last/, best/) as the uninterrupted run, nothing half-written left.
        for (const which of ["last", "best"]) {
          if (
            sha256(path.join(dir, which, "model.safetensors")) !== sha256(path.join(refDir, which, "model.safetensors"))
          )
            failures.push(`chain ${chains}: ${which}/ weights differ from the uninterrupted run's`);
        }
        if (temporaries(dir).length > 0) failures.push(`chain ${chains}: left ${temporaries(dir).join(", ")}`);
        break;
      }
    }
    t.log(
      `${kills} kills (${inWrites} during checkpoint writes) in ${chains} chains (${spawned} processes); failures: ${failures.length}`,
    );
    for (const f of failures) t.log(f);
    t.deepEqual(failures, []);
  },
);

// ---- The clip norm ----

test("the global gradient norm is accumulated in double: < 1e-7 relative to a float64 replay", (t) => {
  // Random gradients with the tiny GPT-2's parameter sizes (wte 50257×64 … ), of mixed scales.
  const random = rng(3);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const sizes = [50257 * 64, 256 * 64];
  for (let l = 0; l < 2; l++) sizes.push(64, 64, 64 * 192, 192, 64 * 64, 64, 64, 64, 64 * 256, 256, 256 * 64, 64);
  sizes.push(64, 64);
  let worstOurs = 0;
  let worstFp32 = 0;
  for (let trial = 0; trial < 3; trial++) {
    const grads = sizes.map((n, i) => {
      const scale = 10 ** (-3 + 3 * random()) * (i === 0 ? 0.1 : 1);
      return Float32Array.from({ length: n }, () => scale * gauss());
    });
    let sumSq = 0;
    for (const g of grads) for (const v of g) sumSq += v * v;
    const replay = Math.sqrt(sumSq);
    const { norm, fp32Norm } = probes.gradientNorm(grads);
    const ours = Math.abs(norm - replay) / replay;
    const fp32 = Math.abs(fp32Norm - replay) / replay;
    t.log(
      `trial ${trial}: float64 replay ${replay}; double accumulation rel. err ${ours.toExponential(2)}, fp32 clip_grad_norm_ ${fp32.toExponential(2)}`,
    );
    worstOurs = Math.max(worstOurs, ours);
    worstFp32 = Math.max(worstFp32, fp32);
  }
  t.log(`worst relative error: double ${worstOurs.toExponential(2)}, fp32 ${worstFp32.toExponential(2)}`);
  t.true(worstOurs < 1e-7, `relative error ${worstOurs}`);
});
