// The efficiency audit: its statistics (the within-round ratio to the reference, its median over rounds and a
// bootstrap interval that behaves as one should: exact where the data leave no doubt, wider with noise), and the
// step it times (the runs' own batch shape, gradient accumulation included, with the seed's fixed batch beside it).
import fs from "node:fs";
import path from "node:path";

import test, { type ExecutionContext } from "ava";

import { prepareLanguageModelData } from "../lib/data/prepare.ts";
import type { Exp1Data } from "../lib/experiments/exp1-lm/data.ts";
import { exp1 } from "../lib/experiments/exp1-lm/index.ts";
import { exp1AuditPlans } from "../lib/experiments/exp1-lm/jobs.ts";
import type { Exp2Data } from "../lib/experiments/exp2-summarization/data.ts";
import { exp2 } from "../lib/experiments/exp2-summarization/index.ts";
import { exp2AuditPlans } from "../lib/experiments/exp2-summarization/jobs.ts";
import {
  type AuditBatch,
  auditFile,
  type AuditPlan,
  type AuditResult,
  auditSection,
  type AuditShape,
  runAudits,
  runShapeAudit,
  summariseAudit,
} from "../lib/experiments/framework/efficiency-audit.ts";
import { resolveConfig } from "../lib/experiments/framework/index.ts";
import { Trainer } from "../lib/trainer.ts";
import { readHeader, readTensor } from "./helpers/safetensors.ts";
import { tmpDir } from "./helpers/tmp.ts";

test("a constant ratio gives that ratio and a point interval; the reference is 1 exactly", (t) => {
  // Rounds of very different speed (a busy machine): the within-round ratio removes the drift.
  const ms = [100, 150, 300, 120, 90, 210].map((base) => [base, 1.1 * base]);
  const [ce, brier] = summariseAudit(["ce", "brier"], ms, "ce");
  t.deepEqual(ce!.ratio, { median: 1, low: 1, high: 1 });
  t.true(Math.abs(brier!.ratio.median - 1.1) < 1e-12);
  t.true(Math.abs(brier!.ratio.low - 1.1) < 1e-12 && Math.abs(brier!.ratio.high - 1.1) < 1e-12);
  t.is(brier!.medianMs, 1.1 * 135);
});

test("with noise the interval holds the median, narrows with more rounds, and is reproducible", (t) => {
  // Deterministic noise around a true ratio of 1.05.
  let state = 7;
  const noise = () => ((state = (state * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5) * 0.2;
  const rounds = (n: number) => Array.from({ length: n }, () => [100, 105 * (1 + noise())]);
  const few = summariseAudit(["ce", "dpsm"], rounds(10), "ce")[1]!.ratio;
  const many = summariseAudit(["ce", "dpsm"], rounds(200), "ce")[1]!.ratio;
  for (const r of [few, many]) t.true(r.low <= r.median && r.median <= r.high, JSON.stringify(r));
  t.true(many.high - many.low < few.high - few.low, `${JSON.stringify(few)} vs ${JSON.stringify(many)}`);
  t.true(many.low < 1.05 && 1.05 < many.high, JSON.stringify(many));
  const again = rounds(10);
  t.deepEqual(summariseAudit(["ce", "dpsm"], again, "ce"), summariseAudit(["ce", "dpsm"], again, "ce"));
});

test("a reference that was not timed is named", (t) => {
  t.throws(() => summariseAudit(["brier"], [[1]], "ce"), { message: /audit reference: "ce" is not among brier/ });
});

// --- The step an audit times is the runs' own (issue 25: an audit of another batch made "audited time" unreal).

const SMALL_MODEL = { vocab_size: 50257, n_positions: 64, n_embd: 32, n_layer: 2, n_head: 2, resid_pdrop: 0 };

/** The weights after one timed CE step at `batchSize` × `gradAccumulation`, as one flat array. */
async function afterOneTimedStep(t: ExecutionContext, batchSize: number, gradAccumulation: number) {
  const data = {
    train: await prepareLanguageModelData({ source: "wikitext-2", split: "train", contextLength: 33 }),
    valid: await prepareLanguageModelData({ source: "wikitext-2", split: "valid", contextLength: 33 }),
  };
  const trainer = new Trainer({
    model: { ...SMALL_MODEL, seed: 3 },
    loss: { kind: "ce" },
    data,
    batchSize,
    gradAccumulation,
    maxSteps: 1,
    lr: 1e-3,
    progress: false,
  });
  await trainer.timeSteps([{ kind: "ce" }], { rounds: 1, warmupRounds: 0 });
  const dir = tmpDir(t, "dpsm-audit-step-");
  await trainer.model.saveAsync(dir);
  trainer.model.dispose();
  const file = path.join(dir, "model.safetensors");
  return Object.keys(readHeader(file).header)
    .sort()
    .flatMap((name) => Array.from(readTensor(file, name)));
}

test.serial(
  "timeSteps times gradAccumulation micro-batches per step: 2 × 2 sequences is the step 4 × 1 is",
  async (t) => {
    // Packed rows have as many targets each, so two micro-batches of 2 give the mean gradient one batch of 4 gives:
    // the same AdamW step. An audit that timed one micro-batch (the first 2 sequences) moves the weights as 2 × 1.
    const [four, twoByTwo, two] = [
      await afterOneTimedStep(t, 4, 1),
      await afterOneTimedStep(t, 2, 2),
      await afterOneTimedStep(t, 2, 1),
    ];
    const distance = (a: number[], b: number[]) => Math.sqrt(a.reduce((s, x, i) => s + (x - b[i]!) ** 2, 0));
    const [same, other] = [distance(four, twoByTwo), distance(four, two)];
    t.log(`‖(4 × 1) − (2 × 2)‖ = ${same.toExponential(2)}, ‖(4 × 1) − (2 × 1)‖ = ${other.toExponential(2)}`);
    t.true(other > 0, "the batch of 2 and the batch of 4 should move the weights differently");
    t.true(same < 0.01 * other, `2 × 2 should take the step 4 × 1 takes (${same} vs ${other})`);
  },
);

test("exp-1's audit times the runs' own step, and the seed's 2,048-token batch beside it", async (t) => {
  const shapes = async (profile: string) =>
    Promise.all(
      exp1AuditPlans(resolveConfig(exp1, profile), {} as Exp1Data).map(async (p) => {
        const options = await p.trainer();
        return {
          shape: p.shape,
          batch: p.batch,
          tokens: p.tokens,
          trainer: [options.batchSize, options.gradAccumulation],
        };
      }),
    );
  // cpu-study trains 8 sequences of 64 tokens per step: that step is the one timed; the seed's batch is 32 × 64.
  t.deepEqual(await shapes("cpu-study"), [
    { shape: "run", batch: { batchSize: 8, gradAccumulation: 1, sequenceTokens: 64 }, tokens: 512, trainer: [8, 1] },
    {
      shape: "fixed",
      batch: { batchSize: 32, gradAccumulation: 1, sequenceTokens: 64 },
      tokens: 2048,
      trainer: [32, 1],
    },
  ]);
  // wt2-small accumulates 4 micro-batches of 8 × 1,024 per step: the audit's step does too.
  t.deepEqual(await shapes("wt2-small"), [
    {
      shape: "run",
      batch: { batchSize: 8, gradAccumulation: 4, sequenceTokens: 1024 },
      tokens: 32768,
      trainer: [8, 4],
    },
    {
      shape: "fixed",
      batch: { batchSize: 2, gradAccumulation: 1, sequenceTokens: 1024 },
      tokens: 2048,
      trainer: [2, 1],
    },
  ]);
  // A run whose step is the seed's batch is timed once; no fixed batch asked, none timed.
  const seedShaped = resolveConfig(exp1, "cpu-study", { batchSize: 32 });
  t.deepEqual(
    exp1AuditPlans(seedShaped, {} as Exp1Data).map((p) => p.shape),
    ["run"],
  );
  const noFixed = resolveConfig(exp1, "cpu-study", { efficiencyAudit: { fixedBatchTokens: 0 } });
  t.deepEqual(
    exp1AuditPlans(noFixed, {} as Exp1Data).map((p) => p.shape),
    ["run"],
  );
});

test("exp-2's audit times the runs' own step: batchSize pairs × gradAccumulation micro-batches", async (t) => {
  const c = resolveConfig(exp2, "full");
  const targetLengths = Int32Array.from({ length: 40 }, (_, i) => 10 + i);
  const data = Object.fromEntries(c.models.map((m) => [m, { train: { targetLengths } }])) as unknown as Exp2Data;
  const [plan] = exp2AuditPlans(c, data);
  t.like(plan, { shape: "run", batch: { batchSize: 8, gradAccumulation: 4 } });
  // The first 32 pairs' target tokens: Σ (10 + i), i < 32.
  t.is(plan!.tokens, 32 * 10 + (31 * 32) / 2);
});

const audit = (shape: AuditResult["shape"], batch: AuditResult["batch"], tokens: number): AuditResult => ({
  model: "tiny",
  ...(shape ? { shape } : {}),
  tokens,
  ...(batch ? { batch } : {}),
  reference: "ce",
  rounds: 2,
  warmupRounds: 0,
  rows: summariseAudit(["ce"], [[1], [1]], "ce"),
  ms: [[1], [1]],
  finishedAt: "2026-01-01T00:00:00.000Z",
});

test("a saved audit is reused only where it timed the step asked for", async (t) => {
  const out = tmpDir(t, "dpsm-audit-saved-");
  const run = { batchSize: 8, gradAccumulation: 1, sequenceTokens: 64 };
  const plan = (shape: AuditShape, batch: AuditBatch): AuditPlan => ({
    model: "tiny",
    shape,
    batch,
    tokens: batch.batchSize * batch.gradAccumulation * 64,
    trainer: () => Promise.reject(new Error("not timed in this test")),
    losses: [{ name: "ce", loss: { kind: "ce" } }],
    reference: "ce",
    rounds: 2,
    warmupRounds: 0,
  });
  const saved = (a: AuditResult, shape: AuditShape) => {
    fs.mkdirSync(path.join(out, "audit"), { recursive: true });
    fs.writeFileSync(auditFile(out, "tiny", shape), JSON.stringify(a));
  };
  const read = () => runAudits([plan("run", run)], out, { say: () => {}, onlyFinished: true });
  // An audit saved before the shapes were told apart timed the seed's batch (32 × 64): not the runs' step.
  saved(audit(undefined, undefined, 2048), "run");
  t.deepEqual(await read(), []);
  saved(audit("run", { ...run, gradAccumulation: 2 }, 1024), "run");
  t.deepEqual(await read(), []);
  saved(audit("run", run, 512), "run");
  t.is((await read()).length, 1);
  t.is(auditFile(out, "tiny", "fixed"), path.join(out, "audit", "tiny.fixed.json"));
});

test("the report's audit section: the runs' step first (the verdicts' and audited time's), the seed's batch beside", (t) => {
  const run = audit("run", { batchSize: 8, gradAccumulation: 2, sequenceTokens: 64 }, 1024);
  const fixed = audit("fixed", { batchSize: 32, gradAccumulation: 1, sequenceTokens: 64 }, 2048);
  const md = auditSection([fixed, run], "tiny").join("\n");
  t.regex(md, /at the runs' own shape, 2 micro-batches of 8 × 64 tokens \(1,024 tokens per step/);
  t.regex(md, /The seed's fixed batch, timed the same way: 2,048 tokens, one micro-batch of 32 × 64 tokens/);
  t.true(md.indexOf("runs' own shape") < md.indexOf("seed's fixed batch"));
  t.is(runShapeAudit([fixed, run], "tiny"), run);
  t.is(runShapeAudit([fixed], "tiny"), undefined, "the seed's batch is not the runs' step");
  t.deepEqual(auditSection([run], "small"), []);
});
