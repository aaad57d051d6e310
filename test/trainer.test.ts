// The Trainer on real WikiText-2: it learns, it is deterministic, it survives a SIGKILL and an abort with
// the same loss curve, it keeps the event loop free, and it refuses bad configs before doing any work.
import { spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";

import test from "ava";

import {
  buildInfo,
  GPT2Model,
  prepareLanguageModelData,
  Trainer,
  type FitResult,
  type PackedTokens,
  type TrainerOptions,
} from "../lib/index.ts";
import { packageRoot } from "../lib/native.ts";
import { trainerDocument } from "../lib/trainer-options.ts";
import { killAfterCheckpoint } from "./helpers/kill-child.ts";
import { readHeader, readTensor } from "./helpers/safetensors.ts";
import { sharedTmpDir, tmpDir } from "./helpers/tmp.ts";

let small: { train: PackedTokens; valid: PackedTokens } | undefined;
async function smallData() {
  small ??= {
    train: await prepareLanguageModelData({ source: "wikitext-2", split: "train", contextLength: 33 }),
    valid: await prepareLanguageModelData({ source: "wikitext-2", split: "valid", contextLength: 33 }),
  };
  return small;
}

// A small GPT-2 (full GPT-2 vocabulary) that trains fast enough on two cores for curve comparisons.
const SMALL_MODEL = { vocab_size: 50257, n_positions: 64, n_embd: 32, n_layer: 2, n_head: 2 } as const;
function smallRun(runDir?: string): TrainerOptions {
  return {
    model: { ...SMALL_MODEL },
    loss: { kind: "dpsm", schedule: "cosine", warmupSteps: 10 },
    data: { source: "wikitext-2", contextLength: 33 },
    maxSteps: 24,
    batchSize: 8,
    lr: 2e-3,
    lrWarmupSteps: 4,
    evalEvery: 6,
    evalMaxSequences: 8,
    seed: 11,
    progress: false,
    ...(runDir ? { runDir } : {}),
  };
}

const losses = (r: FitResult) => r.history.steps.map((s) => [s.step, s.loss] as const);

let reference: FitResult | undefined;
// The reference run's folder, kept for the later serial tests that compare with it or reuse it.
const referenceDir = sharedTmpDir("dpsm-ref-");
async function uninterrupted(): Promise<FitResult> {
  if (!reference) {
    reference = await new Trainer(smallRun(referenceDir)).fit();
  }
  return reference;
}

test.serial("a tiny GPT-2 on real WikiText-2: validation loss falls well below the unigram level", async (t) => {
  const train = await prepareLanguageModelData({ source: "wikitext-2", split: "train", contextLength: 64 });
  const valid = await prepareLanguageModelData({ source: "wikitext-2", split: "valid", contextLength: 64 });
  const evalSequences = 64;
  // The unigram level: train-split token frequencies (add-one) scored on the same validation targets.
  const counts = new Float64Array(50257).fill(1);
  for (let s = 0; s < train.sequences; s++)
    for (let j = 0; j < train.lengths[s]!; j++) counts[train.tokens[s * 64 + j]!]! += 1;
  const total = counts.reduce((a, b) => a + b, 0);
  let nll = 0;
  let n = 0;
  for (let s = 0; s < evalSequences; s++) {
    for (let j = 1; j < valid.lengths[s]!; j++) {
      nll -= Math.log(counts[valid.tokens[s * 64 + j]!]! / total);
      n++;
    }
  }
  const unigramPpl = Math.exp(nll / n);

  const result = await new Trainer({
    model: { size: "tiny" },
    loss: { kind: "ce" },
    data: { train, valid },
    maxSteps: 50,
    batchSize: 16,
    lr: 3e-3,
    lrWarmupSteps: 10,
    evalEvery: 25,
    evalMaxSequences: evalSequences,
    progress: false,
  }).fit();
  const evals = result.history.evals.map((e) => e.metrics.ppl);
  t.log(
    `unigram PPL ${unigramPpl.toFixed(1)}; tiny GPT-2 PPL after 25/50 steps: ${evals.map((p) => p.toFixed(1)).join(" / ")}; ` +
      `${Math.round(result.efficiency.tokensPerSecond)} tokens/s, ${result.efficiency.stepMs.toFixed(0)} ms/step, ` +
      `peak RSS ${(result.efficiency.peakMemoryBytes / 2 ** 20).toFixed(0)} MiB`,
  );
  t.is(result.reason, "max_steps");
  t.is(result.history.evals.at(-1)!.metrics.tokens, n);
  t.true(evals.at(-1)! < 0.8 * unigramPpl, `PPL ${evals.at(-1)} not well below the unigram ${unigramPpl}`);
  t.true(evals.at(-1)! < evals[0]!);
  t.true(result.efficiency.tokensPerSecond > 0 && result.efficiency.peakMemoryBytes > 0);
});

test.serial("same seed: the same batches for every loss, and on the CPU the same curve bit for bit", async (t) => {
  const a = await uninterrupted();
  const b = await new Trainer(smallRun()).fit();
  t.deepEqual(losses(a), losses(b));
  t.deepEqual(
    a.history.evals.map((e) => e.metrics.nll),
    b.history.evals.map((e) => e.metrics.nll),
  );
  // α is 0 at step 0: DPSM's first step is CE's first step, on the same batch from the same weights.
  const ce = await new Trainer({ ...smallRun(), loss: { kind: "ce" }, maxSteps: 2, evalEvery: 2 }).fit();
  t.is(ce.history.steps[0]!.loss, a.history.steps[0]!.loss);
  t.is(a.history.steps[0]!.alpha, 0);
  t.true(a.history.steps[5]!.alpha > 0 && a.history.steps[5]!.alpha < 1);
  t.is(a.history.steps[23]!.alpha, 1);
});

// What docs/design/reproducibility.md promises: the same machine, thread count and build give the same run bit
// for bit in any process; and what a run's environment note names is what decides it.
test.serial("two processes, same machine, threads and build: Brier's losses and weights bit for bit", async (t) => {
  const runOnce = () => {
    const runDir = tmpDir(t, "dpsm-repro-");
    const options = { ...smallRun(runDir), loss: { kind: "brier" }, maxSteps: 12, evalEvery: 12 };
    const r = spawnSync(process.execPath, ["--import", "tsx", "test/helpers/train-child.ts", JSON.stringify(options)], {
      cwd: packageRoot,
      encoding: "utf8",
    });
    t.is(r.status, 0, r.stderr);
    const steps = r.stdout.split("\n").filter((l) => l.startsWith("step "));
    const weights = fs.readFileSync(path.join(runDir, "last", "model.safetensors"));
    return { steps, sha256: crypto.createHash("sha256").update(weights).digest("hex") };
  };
  const [a, b] = [runOnce(), runOnce()];
  t.is(a.steps.length, 12);
  t.deepEqual(a.steps, b.steps);
  t.is(a.sha256, b.sha256);
});

test("buildInfo names the OpenBLAS kernel, ATen's ISA and the loss kernel, and follows the variables that pin them", (t) => {
  const here = buildInfo();
  t.regex(here.atenCpuCapability, /^(default|avx2|avx512)$/);
  t.true(here.cpuModel.length > 0);
  const r = spawnSync(
    process.execPath,
    ["--import", "tsx", "-e", 'import("./lib/native.ts").then((m) => console.log(JSON.stringify(m.buildInfo())))'],
    {
      cwd: packageRoot,
      encoding: "utf8",
      env: { ...process.env, OPENBLAS_CORETYPE: "Haswell", ATEN_CPU_CAPABILITY: "default", DPSM_CPU_ISA: "baseline" },
    },
  );
  t.is(r.status, 0, r.stderr);
  const pinned = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as ReturnType<typeof buildInfo>;
  // An OpenBLAS built for this CPU family takes any kernel the CPU can run; Haswell (AVX2) is one where x86 has AVX2.
  if (here.blasCore && here.cpuIsa !== "baseline") t.is(pinned.blasCore, "Haswell");
  t.is(pinned.atenCpuCapability, "default");
  t.is(pinned.cpuIsa, "baseline");
});

test.serial("a run resumed under other numerics (threads, BLAS or loss kernel, libtorch) says so", async (t) => {
  const { train, valid } = await smallData();
  const runDir = tmpDir(t, "dpsm-numerics-");
  const options = { ...smallRun(runDir), data: { train, valid }, maxSteps: 2, evalEvery: 2 };
  await new Trainer(options).fit();
  const warnings: Error[] = [];
  const listen = (w: Error) => warnings.push(w);
  process.on("warning", listen);
  try {
    await new Trainer(options).fit(); // same numerics: nothing to say
    const log = path.join(runDir, "train.jsonl");
    const lines = fs.readFileSync(log, "utf8").trimEnd().split("\n");
    const last = lines.map((l) => l.includes('"type":"start"')).lastIndexOf(true);
    const start = JSON.parse(lines[last]!) as { build: { threads: number; blasCore: string } };
    start.build = { ...start.build, threads: 64, blasCore: "SkylakeX" };
    lines[last] = JSON.stringify(start);
    fs.writeFileSync(log, `${lines.join("\n")}\n`);
    await new Trainer(options).fit();
    await new Promise((r) => setImmediate(r));
  } finally {
    process.off("warning", listen);
  }
  const ours = warnings.filter((w) => (w as Error & { code?: string }).code === "DPSM_NUMERICS_CHANGED");
  t.is(ours.length, 1);
  t.regex(ours[0]!.message, /threads 64 → \d+, blasCore "SkylakeX" → /);
});

test.serial("killed with SIGKILL mid-run, resumed from the last checkpoint: the same curve and weights", async (t) => {
  const ref = await uninterrupted();
  const dir = tmpDir(t, "dpsm-kill-");
  const { killedAt, lastCheckpoint } = await killAfterCheckpoint("train-child.ts", JSON.stringify(smallRun(dir)), {
    minCheckpoint: 6,
    stepsPast: 2,
  });
  t.log(`killed at step ${killedAt}, last checkpoint at step ${lastCheckpoint}`);

  const resumed = await new Trainer(smallRun(dir)).fit();
  const first = resumed.history.steps[0]!.step;
  t.true(first > 6 && first <= killedAt, `resumed at step ${first}`);
  t.deepEqual(
    losses(resumed),
    losses(ref).filter(([s]) => s >= first),
  );
  t.deepEqual(
    resumed.history.evals.map((e) => e.metrics.nll),
    ref.history.evals.filter((e) => e.step >= first).map((e) => e.metrics.nll),
  );
  t.is(resumed.steps, 24);
  const ids = Int32Array.from(ref.history.steps.slice(0, 16).map((s) => s.step * 1000));
  t.deepEqual(
    GPT2Model.load(path.join(dir, "last")).logits({ ids, batch: 1, length: 16 }),
    GPT2Model.load(path.join(referenceDir, "last")).logits({ ids, batch: 1, length: 16 }),
  );
  // Nothing half-written is left behind by the kill.
  t.deepEqual(fs.readdirSync(path.join(dir, "last")).sort(), [
    "config.json",
    "manifest.json",
    "model.safetensors",
    "training_state.safetensors",
  ]);
});

test.serial(
  "an AbortSignal stops at a step boundary with a checkpoint; fit() again continues the same curve",
  async (t) => {
    const ref = await uninterrupted();
    const dir = tmpDir(t, "dpsm-abort-");
    const controller = new AbortController();
    const trainer = new Trainer(smallRun(dir));
    trainer.on("step", (s) => s.step === 9 && controller.abort());
    const stopped = await trainer.fit({ signal: controller.signal });
    t.is(stopped.reason, "aborted");
    // Progress reaches JS while the native loop goes on, so the loop may finish the step it is in.
    t.true(stopped.steps >= 9 && stopped.steps <= 11, `stopped at step ${stopped.steps}`);
    t.is(stopped.history.steps.at(-1)!.step, stopped.steps);
    const resumed = await new Trainer(smallRun(dir)).fit();
    t.is(resumed.history.steps[0]!.step, stopped.steps + 1);
    t.deepEqual([...losses(stopped), ...losses(resumed)], losses(ref));
    t.true(resumed.elapsedSeconds > stopped.elapsedSeconds, "wall-clock carries over a resume");
    const log = fs
      .readFileSync(path.join(dir, "train.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { type: string });
    t.is(log.filter((r) => r.type === "start").length, 2);
    t.is(log.filter((r) => r.type === "step").length, 24);
    t.true(
      log.some((r) => r.type === "eval") &&
        log.some((r) => r.type === "checkpoint") &&
        log.some((r) => r.type === "done"),
    );
  },
);

test.serial("a run dir holding another run's checkpoint is refused, not silently resumed", async (t) => {
  await uninterrupted();
  const other = new Trainer({ ...smallRun(referenceDir), lr: 1e-3 });
  await t.throwsAsync(other.fit(), { message: /holds a checkpoint of a different run/ });
});

test.serial("score smoothing is part of the run: a smoothed loss is refused another run's checkpoint", async (t) => {
  await uninterrupted();
  const loss = { kind: "dpsm", schedule: "cosine", warmupSteps: 10 } as const;
  const smoothed = new Trainer({ ...smallRun(referenceDir), loss: { ...loss, smoothing: 0.1 } });
  t.is((smoothed.loss as { smoothing?: number }).smoothing, 0.1);
  await t.throwsAsync(smoothed.fit(), { message: /holds a checkpoint of a different run/ });
  // No smoothing, or a smoothing of 0, leaves the loss document (and so the resume fingerprint) as it always was.
  const document = (tr: Trainer) => JSON.stringify(trainerDocument(tr.options, tr.loss, tr.distributed));
  const plain = new Trainer(smallRun(referenceDir));
  t.false("smoothing" in plain.loss);
  t.is(document(new Trainer({ ...smallRun(referenceDir), loss: { ...loss, smoothing: 0 } })), document(plain));
  t.not(document(smoothed), document(plain));
});

test.serial("the event loop stays responsive while the native loop trains", async (t) => {
  let ticks = 0;
  const timer = setInterval(() => ticks++, 10);
  const t0 = performance.now();
  await new Trainer({ ...smallRun(), maxSteps: 10, evalEvery: 10 }).fit();
  const ms = performance.now() - t0;
  clearInterval(timer);
  t.log(`${ticks} timer ticks in ${ms.toFixed(0)} ms of training`);
  t.true(ticks > (ms / 10) * 0.5, `only ${ticks} ticks in ${ms} ms`);
});

test.serial("every loss variant and baseline trains through the same loop", async (t) => {
  const { train, valid } = await smallData();
  const variants = [
    { kind: "ce" },
    { kind: "brier" },
    { kind: "spherical" },
    { kind: "dpsm", schedule: "linear", warmupSteps: 3 },
    { kind: "dpsm", schedule: "fixed", alpha: 0.5 },
    { kind: "dpsm", schedule: "step", warmupSteps: 3, smoothing: 0.1 },
    { kind: "ce", smoothing: 0.1 },
    { kind: "label_smoothing", smoothing: 0.1 },
    { kind: "focal", gamma: 2 },
  ] as const;
  const firstSteps: { ce: number; brier: number; loss: number }[] = [];
  for (const loss of variants) {
    const r = await new Trainer({
      ...smallRun(),
      loss,
      data: { train, valid },
      maxSteps: 6,
      evalEvery: 6,
      lr: 5e-3,
    }).fit();
    t.true(
      r.history.steps.every((s) => Number.isFinite(s.loss)),
      loss.kind,
    );
    t.true(r.history.steps.at(-1)!.loss < r.history.steps[0]!.loss, `${loss.kind} did not learn`);
    // The diagnostics' CE and Brier scores against the loss the kernel reduced on its own (float32 sum):
    // the fused kinds' loss is their α-mix.
    for (const s of r.history.steps) {
      const ratio = s.updateRatio ?? Number.NaN;
      t.true(ratio > 0 && ratio < 1, `${loss.kind} update ratio ${s.updateRatio}`);
      // The logged CE and Brier are the unsmoothed scores: a smoothed loss is not their mix.
      if (loss.kind === "spherical" || loss.kind === "label_smoothing" || loss.kind === "focal") continue;
      if ("smoothing" in loss) continue;
      const mix = (1 - s.alpha) * s.ce + s.alpha * s.brier;
      t.true(Math.abs(mix - s.loss) <= 2e-6 * Math.max(1, s.loss), `${loss.kind} step ${s.step}: ${mix} vs ${s.loss}`);
    }
    firstSteps.push(r.history.steps[0]!);
  }
  // Step 1 of every run sees the same weights and batch: the same CE and Brier, whatever the run trains on.
  // ce with score smoothing ε is label smoothing: the fused kernel's step-1 loss is libtorch's cross_entropy with
  // label_smoothing ε (the baseline) to float rounding.
  const smoothedCe = firstSteps[variants.findIndex((l) => l.kind === "ce" && "smoothing" in l)]!.loss;
  const labelSmoothing = firstSteps[variants.findIndex((l) => l.kind === "label_smoothing")]!.loss;
  t.true(Math.abs(smoothedCe - labelSmoothing) <= 1e-6 * labelSmoothing, `${smoothedCe} vs ${labelSmoothing}`);
  t.log(`step 1: ce ${firstSteps[0]!.loss}, ce ε = 0.1 ${smoothedCe}, label_smoothing 0.1 ${labelSmoothing}`);
  t.not(smoothedCe, firstSteps[0]!.loss, "the smoothed ce's loss is plain ce's");
  for (const s of firstSteps) {
    t.is(s.ce, firstSteps[0]!.ce);
    t.is(s.brier, firstSteps[0]!.brier);
  }
});

test.serial(
  "the update-to-weight ratio is the step's ‖Δθ‖/‖θ‖, checked in float64 from the saved weights",
  async (t) => {
    const { train, valid } = await smallData();
    const dir = tmpDir(t, "dpsm-update-ratio-");
    const model = await GPT2Model.createAsync({ ...SMALL_MODEL, seed: 5 });
    await model.saveAsync(path.join(dir, "before"));
    const r = await new Trainer({ ...smallRun(), model, data: { train, valid }, maxSteps: 1, evalEvery: 1 }).fit();
    await model.saveAsync(path.join(dir, "after"));
    const file = (which: string) => path.join(dir, which, "model.safetensors");
    let delta = 0;
    let weight = 0;
    for (const name of Object.keys(readHeader(file("before")).header)) {
      const a = readTensor(file("before"), name);
      const b = readTensor(file("after"), name);
      for (let i = 0; i < a.length; i++) {
        delta += (b[i]! - a[i]!) ** 2;
        weight += a[i]! ** 2;
      }
    }
    const expected = Math.sqrt(delta / weight);
    const got = r.history.steps[0]!.updateRatio ?? Number.NaN;
    t.true(Math.abs(got - expected) <= 1e-6 * expected, `${got} vs ${expected}`);
  },
);

test.serial("updateRatioEvery measures the ratio on steps 1, 1 + k, ... only, and changes nothing else", async (t) => {
  const ref = (await uninterrupted()).history.steps;
  // Steps 1-5 are warm-up or use its learning rates, so a 5-step run retraces the reference's first five.
  const r = await new Trainer({ ...smallRun(), maxSteps: 5, updateRatioEvery: 2 }).fit();
  t.deepEqual(
    r.history.steps.map((s) => s.updateRatio !== undefined),
    [true, false, true, false, true],
  );
  for (const [i, s] of r.history.steps.entries()) {
    t.is(s.loss, ref[i]!.loss, `step ${s.step}`);
    t.is(s.gradNorm, ref[i]!.gradNorm, `step ${s.step}`);
    if (s.updateRatio !== undefined) t.is(s.updateRatio, ref[i]!.updateRatio ?? Number.NaN, `step ${s.step}`);
  }
});

test.serial("timeSteps: every loss's full step timed interleaved on one batch; misuse named", async (t) => {
  const { train, valid } = await smallData();
  const options = { ...smallRun(), data: { train, valid } };
  const losses = [{ kind: "ce" }, { kind: "brier" }, { kind: "focal", gamma: 2 }] as const;
  const trainer = new Trainer(options);
  const rounds: [number, number][] = [];
  const ms = await trainer.timeSteps(losses, { rounds: 3, warmupRounds: 1, onRound: (d, n) => rounds.push([d, n]) });
  t.deepEqual(
    rounds,
    [
      [1, 4],
      [2, 4],
      [3, 4],
      [4, 4],
    ],
    "progress after every round, the warm-up's included",
  );
  t.is(ms.length, 3);
  t.true(ms.every((row) => row.length === 3 && row.every((x) => x > 0 && Number.isFinite(x))));
  await t.throwsAsync(trainer.fit(), { message: /model was moved by timeSteps/ });
  await t.throwsAsync(trainer.timeSteps(losses), { message: /already ran timeSteps/ });
  const fresh = () => new Trainer(options);
  await t.throwsAsync(fresh().timeSteps([]), { message: /timeSteps losses: .*>=1 items/ });
  await t.throwsAsync(fresh().timeSteps([{ kind: "hinge" } as never]), { message: /losses\[0\]/ });
  await t.throwsAsync(fresh().timeSteps(losses, { rounds: 0 }), { message: /options\.rounds/ });
  await t.throwsAsync(fresh().timeSteps(losses, { round: 3 } as never), { message: /round/ });
  await t.throwsAsync(fresh().timeSteps(losses, { onRound: 1 } as never), {
    message: /options\.onRound: expected a function/,
  });
});

test.serial("bf16 autocast on the CPU trains with fp32 master weights, close to fp32 at the start", async (t) => {
  const { train, valid } = await smallData();
  const run = (precision: "fp32" | "bf16") =>
    new Trainer({ ...smallRun(), data: { train, valid }, maxSteps: 4, evalEvery: 4, precision }).fit();
  const [fp32, bf16] = [await run("fp32"), await run("bf16")];
  const first = [fp32.history.steps[0]!.loss, bf16.history.steps[0]!.loss];
  t.log(`first-step loss fp32 ${first[0]}, bf16 ${first[1]}`);
  t.true(Math.abs(first[0]! - first[1]!) < 0.02 * first[0]!, "bf16 autocast should stay near fp32 on step 1");
  t.not(first[0], first[1], "bf16 autocast changed nothing: was it applied?");
  t.true(bf16.history.steps.every((s) => Number.isFinite(s.loss)));
  t.true(bf16.history.steps.at(-1)!.loss < bf16.history.steps[0]!.loss, "bf16 training did not learn");
});

test.serial("bad configs are rejected with a named error before any work starts", async (t) => {
  const base = smallRun();
  const bad: [string, TrainerOptions, RegExp][] = [
    ["unknown model size", { ...base, model: { size: "xl" as "tiny" } }, /Trainer options\.model\.size: .*got "xl"/],
    ["negative lr", { ...base, lr: -1e-3 }, /Trainer options\.lr: Too small.*got -0\.001/],
    [
      "context longer than the model's positions",
      { ...base, data: { source: "wikitext-2", contextLength: 300 }, model: { size: "tiny" } },
      /contextLength: 300 is larger than the model's 256 positions/,
    ],
    ["no maxSteps", { ...base, maxSteps: undefined as unknown as number }, /maxSteps/],
    ["unknown loss", { ...base, loss: { kind: "hinge" as "ce" } }, /loss\.kind/],
    ["warm-up 0", { ...base, loss: { kind: "dpsm", schedule: "linear", warmupSteps: 0 } }, /loss\.warmupSteps/],
    ["unknown precision", { ...base, precision: "fp8" as "bf16" }, /precision/],
    ["unknown data source", { ...base, data: { source: "wikitext-3" as "wikitext-2" } }, /data\.source/],
    ["unknown option", { ...base, learningRate: 1 } as TrainerOptions, /unknown option\(s\) "learningRate"/],
    [
      "contextLength as text",
      { ...base, data: { source: "wikitext-2", contextLength: "32" as unknown as number } },
      /^Trainer options\.data\.contextLength: .*expected number/,
    ],
    [
      "unknown split",
      { ...base, data: { source: "wikitext-2", trainSplit: "foo" as "train" } },
      /^Trainer options\.data\.trainSplit: /,
    ],
    ["data null", { ...base, data: null as never }, /^Trainer options\.data: /],
  ];
  for (const [name, options, message] of bad) t.throws(() => new Trainer(options), { message }, name);

  // Prepared data that does not fit the model is named in the constructor, before any model exists.
  const { train, valid } = await smallData();
  const prepared: [string, Partial<TrainerOptions>, RegExp][] = [
    ["train null", { data: { train: null as never, valid } }, /^Trainer options\.data\.train: expected packed/],
    [
      "ids beyond the vocabulary",
      { model: { ...SMALL_MODEL, vocab_size: 1000 }, data: { train, valid } },
      /^Trainer options\.data\.train: sequence 0 holds id \d+ at position \d+, outside the model's vocabulary \[0, 1000\)/,
    ],
    [
      "a length beyond the rows",
      { data: { train: { ...train, lengths: train.lengths.map((n, i) => (i === 2 ? 99 : n)) }, valid } },
      /^Trainer options\.data\.train: sequence 2 has length 99, outside \[0, 33\]/,
    ],
    [
      "a batch larger than the data",
      {
        batchSize: 64,
        data: {
          train: { ...train, tokens: train.tokens.slice(0, 33 * 10), lengths: train.lengths.slice(0, 10) },
          valid,
        },
      },
      /^Trainer options\.batchSize: 64 is more than the 10 training examples/,
    ],
  ];
  for (const [name, over, message] of prepared) {
    t.throws(() => new Trainer({ ...base, ...over } as TrainerOptions), { message }, name);
  }

  // Data prepared by fit() is checked against the model as soon as it is known, before any native trainer.
  const narrow = new Trainer({ ...base, model: { ...SMALL_MODEL, vocab_size: 1000 } });
  await t.throwsAsync(narrow.fit(), {
    message: /^Trainer options\.data \(train split\): sequence 0 holds id \d+ .*vocabulary \[0, 1000\)/,
  });

  const dir = tmpDir(t, "dpsm-missing-");
  const empty = tmpDir(t, "dpsm-nodata-");
  t.throws(
    () =>
      new Trainer({
        ...base,
        data: { source: "wikitext-2", dataDir: empty, contextLength: 33 },
        runDir: path.join(dir, "run"),
      }),
    {
      message: new RegExp(
        `^Trainer options\\.data: wikitext-2 not found: ${empty.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`,
      ),
    },
  );
  t.false(fs.existsSync(path.join(dir, "run")), "a run dir was created before the data was found");
});

test("a model given as options is initialised from the run's seed unless it names its own", async (t) => {
  const opts = { loss: { kind: "ce" }, data: { source: "wikitext-2", contextLength: 33 }, maxSteps: 1 } as const;
  const ids = Int32Array.from([464, 3290, 286, 262]);
  const logits = async (tr: Trainer) => (await tr.ready()).native.logits({ ids, batch: 1, length: 4 });
  const run5 = new Trainer({ ...opts, model: { size: "tiny" }, seed: 5 });
  t.deepEqual(await logits(run5), GPT2Model.create({ size: "tiny", seed: 5 }).logits({ ids, batch: 1, length: 4 }));
  t.is(run5.model, await run5.ready(), "trainer.model is the built model once ready() resolved");
  const own = new Trainer({ ...opts, model: { size: "tiny", seed: 7 }, seed: 5 });
  t.deepEqual(await logits(own), GPT2Model.create({ size: "tiny", seed: 7 }).logits({ ids, batch: 1, length: 4 }));
});
