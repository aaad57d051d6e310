// The fused LM head + loss (native/core/loss/fused_linear_loss.h): hidden states × output embedding a chunk of
// tokens at a time, against autograd through a float64 matmul (+ bias) and the composite loss of the same
// values, for every kind and schedule; then the trainer and the evaluator with the fused head against the
// unfused one on real WikiText-2.
import test, { type ExecutionContext } from "ava";

import { STEP_SPECS, W } from "../dev/fused-loss-cases.ts";
import { probes, type LinearProbeOptions } from "../dev/testing-addon.ts";
import { Evaluator, GPT2Model, prepareLanguageModelData, Trainer, type TrainerOptions } from "../lib/index.ts";
import { Seq2SeqModel } from "../lib/models/bart.ts";
import { readTensor } from "./helpers/safetensors.ts";
import { BART_FIXTURE, dialogsumBytes } from "./helpers/seq2seq-data.ts";
import { tmpDir } from "./helpers/tmp.ts";

type Case = LinearProbeOptions & { step?: number; temperatures?: number[] };

const KINDS: Case[] = [
  { rows: 0, dim: 0, vocab: 0, kind: "ce" },
  { rows: 0, dim: 0, vocab: 0, kind: "brier" },
  { rows: 0, dim: 0, vocab: 0, kind: "spherical" },
  ...[0, 250, 1000].map((step) => ({
    rows: 0,
    dim: 0,
    vocab: 0,
    kind: "dpsm",
    schedule: "linear",
    warmupSteps: W,
    step,
  })),
  { rows: 0, dim: 0, vocab: 0, kind: "dpsm", schedule: "cosine", warmupSteps: W, step: 400 },
  { rows: 0, dim: 0, vocab: 0, kind: "dpsm", schedule: "fixed", alpha: 0.3, step: 5 },
];

const describe = (c: Case) =>
  `${c.kind}${c.schedule ? `/${c.schedule}` : ""}${c.alpha !== undefined ? ` α=${c.alpha}` : ""}` +
  `${c.smoothing ? ` ε=${c.smoothing}` : ""}` +
  `${c.step !== undefined ? ` step ${c.step}` : ""} ${c.rows}×${c.dim}→${c.vocab}${c.bias ? " +bias" : ""}` +
  `${c.bf16 ? " bf16" : ""}${c.reduction ? ` ${c.reduction}` : ""}${c.ignoreFraction ? ` ignore ${c.ignoreFraction}` : ""}` +
  `${c.chunkBytes ? ` chunk ${c.chunkBytes} B` : ""}`;

// Every error of the case under `tol`; returns the largest, for the summary line.
async function expectClose(t: ExecutionContext, c: Case, tol: number): Promise<number> {
  const r = await probes.checkLinearAgainstReference(c);
  const name = describe(c);
  const errs: Record<string, number> = {
    loss: r.lossRelErr,
    hidden: r.hiddenGradRelErr,
    weight: r.weightGradRelErr,
    bias: r.biasGradRelErr,
    nll: r.nllRelErr,
    sqNorm: r.sqNormRelErr,
    ...Object.fromEntries(r.evalNllRelErr.map((e, i) => [`evalNll@T=${c.temperatures?.[i] ?? 1}`, e])),
  };
  t.true(r.finite, `${name}: non-finite output`);
  t.deepEqual(
    Object.entries(errs).filter(([, e]) => !(e < tol)),
    [],
    `${name}: relative error over ${tol}: ${JSON.stringify(errs)}`,
  );
  if (c.chunkBytes !== undefined) {
    // The case is meant to cut the rows into several chunks, the last one short.
    const perChunk = Math.max(1, Math.floor(c.chunkBytes / (c.vocab * (c.bf16 ? 2 : 4))));
    t.is(r.chunks, Math.ceil(c.rows / perChunk), `${name}: chunks of ${perChunk} rows`);
    t.true(
      r.chunks > 1 && (perChunk === 1 || c.rows % perChunk !== 0),
      `${name}: ${r.chunks} chunks of ${perChunk} rows`,
    );
  }
  return Math.max(...Object.values(errs));
}

test("every kind and schedule, with and without bias, ignored targets, N not a multiple of the chunk: float32 within 1e-5 of float64", async (t) => {
  let worst = 0;
  let seed = 1;
  for (const k of KINDS) {
    for (const bias of [false, true]) {
      for (const reduction of ["mean", "sum"]) {
        // 16 rows per chunk at V = 257: 7 full chunks and one of 3.
        const c: Case = {
          ...k,
          rows: 115,
          dim: 24,
          vocab: 257,
          bias,
          reduction,
          ignoreFraction: 0.25,
          chunkBytes: 257 * 4 * 16,
          temperatures: [1, 0.6, 1.7],
          seed: seed++,
        };
        worst = Math.max(worst, await expectClose(t, c, 1e-5));
      }
    }
  }
  t.log(`largest relative error: ${worst.toExponential(2)}`);
});

test("shapes: one row, a single chunk, one row per chunk, V larger than the chunk budget, every target ignored", async (t) => {
  const base = { kind: "dpsm", schedule: "linear", warmupSteps: W, step: 600 } as const;
  let worst = 0;
  for (const c of [
    { ...base, rows: 1, dim: 5, vocab: 3, bias: true },
    { ...base, rows: 64, dim: 16, vocab: 1000 },
    { ...base, rows: 9, dim: 7, vocab: 100, chunkBytes: 1 }, // the budget fits no row: one row per chunk
    { ...base, rows: 33, dim: 12, vocab: 5000, bias: true, chunkBytes: 5000 * 4 * 8 },
    { ...base, rows: 20, dim: 8, vocab: 50, ignoreFraction: 1, bias: true },
  ] as Case[]) {
    worst = Math.max(worst, await expectClose(t, { ...c, seed: c.rows }, 1e-5));
  }
  t.log(`largest relative error: ${worst.toExponential(2)}`);
});

// bf16 logits are a rounding of ~0.4 % each: against float64 the gradients of the Brier and spherical terms
// (differences of probabilities) are off by ~2 % in either head, so the bound is 5 %. Without a bias both heads
// round the same products, and the fused one must be as close to float64 as the unfused (within 10 % of its
// error, + 1e-4); with a bias the fused head rounds once (addmm) where the unfused rounds twice, a different
// draw of the same size of error, held to the float64 bound alone.
test("bf16 logits from fp32 hidden states and weights (the trainer under bf16 autocast): within 5e-2 of float64, as close as the unfused head", async (t) => {
  let worst = 0;
  let seed = 100;
  for (const k of KINDS) {
    for (const bias of [false, true]) {
      const c: Case = {
        ...k,
        rows: 70,
        dim: 32,
        vocab: 513,
        bias,
        bf16: true,
        ignoreFraction: 0.2,
        chunkBytes: 513 * 2 * 16,
        temperatures: [1, 1.5],
        seed: seed++,
      };
      worst = Math.max(worst, await expectClose(t, c, 5e-2));
      if (bias) continue;
      const r = await probes.checkLinearAgainstReference(c);
      for (const [fused, unfused, what] of [
        [r.lossRelErr, r.unfusedLossRelErr, "loss"],
        [r.hiddenGradRelErr, r.unfusedHiddenGradRelErr, "∂hidden"],
        [r.weightGradRelErr, r.unfusedWeightGradRelErr, "∂weight"],
      ] as const) {
        t.true(fused <= 1.1 * unfused + 1e-4, `${describe(c)} ${what}: fused ${fused}, unfused ${unfused}`);
      }
    }
  }
  t.log(`largest relative error: ${worst.toExponential(2)}`);
});

// Score smoothing ε carried through the fused head (LossSpec::smoothing reaches every chunk's kernel call), and the
// step schedule on each side of its switch: against float64 matmul + the composite's expected scores under the
// smoothed target, the statistics (NLL, ‖p‖²) still the unsmoothed ones.
test("score smoothing (ce, brier, dpsm) and the step schedule through the fused head: float32 within 1e-5 of float64", async (t) => {
  let worst = 0;
  let seed = 200;
  const cases: Case[] = [
    { rows: 0, dim: 0, vocab: 0, kind: "ce", smoothing: 0.1 },
    { rows: 0, dim: 0, vocab: 0, kind: "brier", smoothing: 0.1 },
    { rows: 0, dim: 0, vocab: 0, kind: "dpsm", schedule: "linear", warmupSteps: W, step: 250, smoothing: 0.2 },
    // The step schedule (dev/fused-loss-cases.ts): smoothed on each side of its switch, unsmoothed at it.
    ...STEP_SPECS.filter((c) => c.step !== W).map((c) => ({ ...c, dim: 0, smoothing: 0.1 })),
    ...STEP_SPECS.filter((c) => c.step === W).map((c) => ({ ...c, dim: 0 })),
  ];
  for (const k of cases) {
    for (const [bias, reduction] of [
      [false, "mean"],
      [true, "sum"],
    ] as const) {
      const c: Case = {
        ...k,
        rows: 115,
        dim: 24,
        vocab: 257,
        bias,
        reduction,
        ignoreFraction: 0.25,
        chunkBytes: 257 * 4 * 16,
        seed: seed++,
      };
      worst = Math.max(worst, await expectClose(t, c, 1e-5));
      const r = await probes.checkLinearAgainstReference(c);
      t.is(r.smoothing, k.smoothing ?? 0, `${describe(c)}: the head ran with smoothing ${r.smoothing}`);
      t.true(r.unfusedLossRelErr < 1e-5, `${describe(c)}: unfused loss rel err ${r.unfusedLossRelErr}`);
    }
  }
  // One row, V = 1: q = onehot(y) whatever ε, so loss and gradients are 0.
  const one = await probes.checkLinearAgainstReference({ rows: 3, dim: 4, vocab: 1, kind: "ce", smoothing: 0.3 });
  t.true(one.finite && one.lossRelErr < 1e-6 && one.hiddenGradRelErr < 1e-6 && one.weightGradRelErr < 1e-6);
  t.log(`largest relative error: ${worst.toExponential(2)}`);
});

test("bad probe arguments and a per-token reduction are refused with the argument named", async (t) => {
  await t.throwsAsync(async () => probes.checkLinearAgainstReference({ rows: 4, dim: 0, vocab: 5, kind: "ce" }), {
    message: /dim/,
  });
  await t.throwsAsync(
    probes.checkLinearAgainstReference({ rows: 4, dim: 3, vocab: 5, kind: "ce", reduction: "none" }),
    { message: /reduction: the fused LM head takes mean or sum/ },
  );
});

// Training and evaluation on real WikiText-2: a small GPT-2 with the full vocabulary (the head is most of it).
// 24 sequences × 32 targets = 768 tokens, three chunks of the fused head at its default budget (333 fp32 rows
// of 50,257): the chunked accumulation of ∂weight is what is compared.
const MODEL = { vocab_size: 50257, n_positions: 64, n_embd: 32, n_layer: 2, n_head: 2 } as const;
function run(fusedHead: boolean | "auto", extra: Partial<TrainerOptions> = {}): TrainerOptions {
  return {
    model: { ...MODEL },
    loss: { kind: "dpsm", schedule: "linear", warmupSteps: 4 },
    data: { source: "wikitext-2", contextLength: 33 },
    maxSteps: 6,
    batchSize: 24,
    lr: 2e-3,
    evalEvery: 3,
    evalMaxSequences: 8,
    seed: 5,
    progress: false,
    fusedHead,
    ...extra,
  };
}

function relDiff(a: Float64Array, b: Float64Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

test.serial(
  "the trainer: six steps with the fused head give the unfused run's losses, CE/Brier, evaluations and weights",
  async (t) => {
    const dirs = [tmpDir(t, "dpsm-unfused-"), tmpDir(t, "dpsm-fused-")];
    const [unfused, fused] = [
      await new Trainer(run(false, { runDir: dirs[0] })).fit(),
      await new Trainer(run(true, { runDir: dirs[1] })).fit(),
    ];
    t.is(fused.history.steps.length, 6);
    for (const [i, s] of fused.history.steps.entries()) {
      const u = unfused.history.steps[i]!;
      for (const key of ["loss", "ce", "brier", "alpha", "gradNorm"] as const) {
        t.true(
          Math.abs(s[key] - u[key]) <= 1e-4 * Math.max(1, Math.abs(u[key])),
          `step ${s.step} ${key}: fused ${s[key]}, unfused ${u[key]}`,
        );
      }
    }
    for (const [i, e] of fused.history.evals.entries()) {
      const u = unfused.history.evals[i]!;
      for (const key of ["nll", "brier", "accuracy", "ece10"] as const) {
        t.true(
          Math.abs(e.metrics[key] - u.metrics[key]) <= 1e-4,
          `eval ${e.step} ${key}: ${e.metrics[key]} vs ${u.metrics[key]}`,
        );
      }
    }
    const weights = (dir: string) => readTensor(`${dir}/last/model.safetensors`, "transformer.wte.weight");
    const diff = relDiff(weights(dirs[1]!), weights(dirs[0]!));
    t.true(diff < 1e-4, `tied embedding after 6 steps: ‖fused − unfused‖/‖unfused‖ = ${diff}`);
    t.log(`tied embedding after 6 steps: relative difference ${diff.toExponential(2)}`);
  },
);

test.serial("fusedHead is not part of the run's identity: an unfused run resumes with the fused head", async (t) => {
  const dir = tmpDir(t, "dpsm-switch-");
  const whole = await new Trainer(run(true)).fit();
  const controller = new AbortController();
  const first = new Trainer(run(false, { runDir: dir }));
  first.on("step", (s) => s.step === 2 && controller.abort());
  const stopped = await first.fit({ signal: controller.signal });
  t.is(stopped.reason, "aborted");
  const resumed = await new Trainer(run(true, { runDir: dir })).fit();
  t.is(resumed.history.steps[0]!.step, stopped.steps + 1);
  t.is(resumed.history.steps.at(-1)!.step, 6);
  for (const s of [...stopped.history.steps, ...resumed.history.steps]) {
    const w = whole.history.steps[s.step - 1]!;
    t.true(
      Math.abs(s.loss - w.loss) <= 1e-4 * w.loss,
      `step ${s.step}: switched ${s.loss}, fused throughout ${w.loss}`,
    );
  }
});

test("fusedHead is validated before any work: a baseline loss needs the logits, and only true, false or auto", (t) => {
  t.throws(() => new Trainer(run(true, { loss: { kind: "label_smoothing", smoothing: 0.1 } })), {
    instanceOf: RangeError,
    message: /options\.fusedHead: true needs a ce, brier, spherical or dpsm loss, got "label_smoothing"/,
  });
  t.throws(() => new Trainer(run("yes" as unknown as boolean)), { message: /options\.fusedHead/ });
  t.notThrows(() => new Trainer(run("auto", { loss: { kind: "focal", gamma: 2 } })));
});

test("the evaluator: chunked logits from the head give the whole batch's metrics at several temperatures", async (t) => {
  const valid = await prepareLanguageModelData({ source: "wikitext-2", split: "valid", contextLength: 33 });
  const model = await GPT2Model.createAsync({ ...MODEL, seed: 3 });
  const ts = [1, 0.7, 1.4];
  const opts = { batchSize: 16, maxSequences: 48 };
  const fused = await new Evaluator(model, { ...opts, fusedHead: true }).evaluateAt(valid, ts);
  const unfused = await new Evaluator(model, { ...opts, fusedHead: false }).evaluateAt(valid, ts);
  for (const [i, f] of fused.entries()) {
    const u = unfused[i]!;
    t.is(f.tokens, u.tokens);
    for (const key of ["nll", "accuracy", "brier", "spherical", "ece10", "ece100"] as const) {
      t.true(Math.abs(f[key] - u[key]) <= 1e-5, `T=${ts[i]} ${key}: fused ${f[key]}, unfused ${u[key]}`);
    }
  }
});

test.serial("bf16 autocast: the fused and unfused heads give the same curve to 1e-4", async (t) => {
  const [unfused, fused] = [
    await new Trainer(run(false, { precision: "bf16", maxSteps: 4 })).fit(),
    await new Trainer(run(true, { precision: "bf16", maxSteps: 4 })).fit(),
  ];
  const worst = Math.max(
    ...fused.history.steps.map(
      (s, i) => Math.abs(s.loss - unfused.history.steps[i]!.loss) / unfused.history.steps[i]!.loss,
    ),
  );
  t.true(worst < 1e-4, `largest relative loss difference over 4 bf16 steps: ${worst}`);
  t.log(`bf16, 4 steps: largest relative loss difference ${worst.toExponential(2)}`);
});

test.serial("a BART (its final_logits_bias in the head) trains the same with and without the fused head", async (t) => {
  const { train, valid } = await dialogsumBytes();
  const options = (fusedHead: boolean): TrainerOptions => ({
    model: Seq2SeqModel.load(BART_FIXTURE),
    loss: { kind: "dpsm", schedule: "linear", warmupSteps: 2 },
    data: { train, valid },
    batchSize: 8,
    maxSteps: 4,
    evalEvery: 2,
    lr: 3e-3,
    progress: false,
    log: false,
    fusedHead,
  });
  const [unfused, fused] = [await new Trainer(options(false)).fit(), await new Trainer(options(true)).fit()];
  for (const [i, s] of fused.history.steps.entries()) {
    const u = unfused.history.steps[i]!;
    t.true(Math.abs(s.loss - u.loss) <= 1e-4 * u.loss, `step ${s.step}: fused ${s.loss}, unfused ${u.loss}`);
  }
  for (const [i, e] of fused.history.evals.entries()) {
    const u = unfused.history.evals[i]!;
    t.true(Math.abs(e.metrics.nll - u.metrics.nll) <= 1e-4, `eval ${e.step}: ${e.metrics.nll} vs ${u.metrics.nll}`);
  }
});
