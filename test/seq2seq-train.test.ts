// A BART trains through the same C++ loop as GPT-2: encoder–decoder batches from real DialogSum pairs
// (UTF-8 bytes + 3 as ids, the fixture model's vocabulary), every loss kind through the fused kernel or the
// baselines, validation metrics from the same evaluator, and an exact resume after an abort.
import path from "node:path";

import test from "ava";

import { probes } from "../dev/testing-addon.ts";
import { summarySwapSources } from "../lib/data/summary-noise.ts";
import { Evaluator } from "../lib/evaluator.ts";
import { Seq2SeqModel } from "../lib/models/bart.ts";
import { toNativeData } from "../lib/data/model-data.ts";
import { native } from "../lib/native.ts";
import { Trainer, type TrainerOptions } from "../lib/trainer.ts";
import { trainerDocument } from "../lib/trainer-options.ts";
import { killAfterCheckpoint } from "./helpers/kill-child.ts";
import { BART_FIXTURE, dialogsumBytes } from "./helpers/seq2seq-data.ts";
import { tmpDir } from "./helpers/tmp.ts";

const BART = BART_FIXTURE;
const { train, valid } = await dialogsumBytes();

const base = (runDir?: string): TrainerOptions => ({
  model: Seq2SeqModel.load(BART),
  loss: { kind: "ce" },
  data: { train, valid },
  batchSize: 8,
  maxSteps: 30,
  evalEvery: 10,
  lr: 3e-3,
  lrWarmupSteps: 3,
  progress: false,
  log: false,
  ...(runDir ? { runDir } : {}),
});

test.serial("a BART on real dialogue summaries: validation NLL falls with CE through the shared loop", async (t) => {
  const model = Seq2SeqModel.load(BART);
  const before = await new Evaluator(model, { batchSize: 8 }).evaluate(valid);
  const r = await new Trainer({ ...base(), model }).fit();
  const after = await new Evaluator(model, { batchSize: 8 }).evaluate(valid);
  t.log(
    `valid NLL ${before.nll.toFixed(3)} → ${after.nll.toFixed(3)} (PPL ${after.ppl.toFixed(1)}, ECE-10 ` +
      `${after.ece10.toFixed(4)}); ${Math.round(r.efficiency.tokensPerSecond)} target tokens/s, ` +
      `${r.efficiency.stepMs.toFixed(0)} ms/step`,
  );
  t.is(r.steps, 30);
  t.is(
    after.tokens,
    valid.targetLengths.reduce((a, b) => a + b, 0),
  );
  t.true(after.nll < before.nll - 0.5, `NLL ${before.nll} → ${after.nll}`);
  t.true(r.history.steps.at(-1)!.loss < r.history.steps[0]!.loss);
});

test.serial("every loss kind and baseline trains the BART; DPSM's α follows its schedule", async (t) => {
  for (const loss of [
    { kind: "brier" },
    { kind: "spherical" },
    { kind: "dpsm", schedule: "linear", warmupSteps: 2 },
    { kind: "label_smoothing" },
    { kind: "focal" },
  ] as TrainerOptions["loss"][]) {
    const r = await new Trainer({ ...base(), loss, maxSteps: 3, evalEvery: 3 }).fit();
    t.true(
      r.history.steps.every((s) => Number.isFinite(s.loss)),
      JSON.stringify(loss),
    );
    if (loss.kind === "dpsm")
      t.deepEqual(
        r.history.steps.map((s) => s.alpha),
        [0, 0.5, 1],
      );
  }
});

test.serial("aborted and resumed from its checkpoint: the same curve as an uninterrupted run", async (t) => {
  const dir = tmpDir(t, "dpsm-s2s-train-");
  const whole = await new Trainer({ ...base(path.join(dir, "whole")), maxSteps: 12, evalEvery: 4 }).fit();
  const controller = new AbortController();
  const first = new Trainer({ ...base(path.join(dir, "split")), maxSteps: 12, evalEvery: 4 });
  first.on("step", (s) => {
    if (s.step === 6) controller.abort();
  });
  const a = await first.fit({ signal: controller.signal });
  t.is(a.reason, "aborted");
  const b = await new Trainer({ ...base(path.join(dir, "split")), maxSteps: 12, evalEvery: 4 }).fit();
  const losses = [...a.history.steps, ...b.history.steps].map((s) => s.loss);
  t.deepEqual(
    losses,
    whole.history.steps.map((s) => s.loss),
  );
  const probe = {
    ids: valid.sourceTokens.slice(0, 96),
    mask: new Int32Array(96).fill(1),
    length: 96,
    decoderIds: valid.targetTokens.slice(0, 40),
    batch: 1,
    decoderLength: 40,
  };
  t.deepEqual(
    Seq2SeqModel.load(path.join(dir, "split", "last")).logits(probe),
    Seq2SeqModel.load(path.join(dir, "whole", "last")).logits(probe),
  );
});

// Issue 29: the resume fingerprint held the data's shape only, so other examples of the same shape resumed silently.
test.serial(
  "resumed on other training examples of the same shape: refused as another run; the same ones resume",
  async (t) => {
    const dir = path.join(tmpDir(t, "dpsm-s2s-data-"), "run");
    const controller = new AbortController();
    const first = new Trainer({ ...base(dir), maxSteps: 6, evalEvery: 3 });
    first.on("step", (s) => {
      if (s.step === 2) controller.abort();
    });
    const a = await first.fit({ signal: controller.signal });
    t.is(a.reason, "aborted");
    // The same arrays with the first two examples' summaries swapped: the same shape, other content.
    const width = train.maxTarget;
    const targetTokens = train.targetTokens.slice();
    targetTokens.set(train.targetTokens.subarray(0, width), width);
    targetTokens.set(train.targetTokens.subarray(width, 2 * width), 0);
    const targetLengths = train.targetLengths.slice();
    [targetLengths[0], targetLengths[1]] = [train.targetLengths[1]!, train.targetLengths[0]!];
    const other = { ...train, targetTokens, targetLengths };
    await t.throwsAsync(new Trainer({ ...base(dir), data: { train: other, valid }, maxSteps: 6, evalEvery: 3 }).fit(), {
      message: /holds a checkpoint of a different run/,
    });
    const resumed = await new Trainer({ ...base(dir), maxSteps: 6, evalEvery: 3 }).fit();
    t.is(resumed.history.steps[0]!.step, a.history.steps.at(-1)!.step + 1);
  },
);

test.serial("a checkpoint saved before the fingerprint held the data's hash still resumes", async (t) => {
  // Saved as before the hash: the native trainer made with the Trainer's document alone.
  const dir = path.join(tmpDir(t, "dpsm-s2s-legacy-"), "run");
  const options = { ...base(dir), maxSteps: 6, evalEvery: 3 };
  const old = new Trainer(options);
  const model = (await old.ready()) as Seq2SeqModel;
  const document = JSON.stringify(trainerDocument(old.options, old.loss, old.distributed));
  const trainer = await native().createTrainer(model.native, document, toNativeData(train), toNativeData(valid));
  let last = 0;
  await trainer.fit((p) => {
    if (p.type === "step" && (last = p.step) === 2) trainer.abort();
  });
  t.true(last >= 2 && last < 6, `stopped at step ${last}`);
  const resumed = await new Trainer({ ...base(dir), maxSteps: 6, evalEvery: 3 }).fit();
  t.is(resumed.history.steps[0]!.step, last + 1);
});

test("a GPT-2's data for a BART, or a BART without prepared examples, is a named error", (t) => {
  const packed = { tokens: new Int32Array(8), lengths: new Int32Array([4, 4]), contextLength: 4 };
  t.throws(() => new Trainer({ ...base(), data: { train: packed as never, valid: packed as never } }), {
    message: /^Trainer options\.data\.train: an encoder-decoder takes encoder-decoder examples/,
  });
  t.throws(() => new Trainer({ ...base(), data: { source: "wikitext-2" } }), {
    message: /an encoder-decoder takes prepared \{ train, valid \} examples/,
  });
});

test("the loop's summary-swap rule (C++) equals lib/data/summary-noise.ts on 2,000 batches", (t) => {
  let swapped = 0;
  let rowsSeen = 0;
  for (let k = 0; k < 2000; k++) {
    const seed = (k * 2654435761) % 2 ** 32;
    const rows = 1 + (k % 33);
    const p = [0.15, 0.5, 1, 0][k % 4]!;
    const native = probes.summarySwapSources(seed, k, rows, p);
    t.deepEqual([...native], [...summarySwapSources({ seed, batchIndex: k, rows, p })], `seed ${seed} batch ${k}`);
    if (p === 0.15) {
      rowsSeen += rows;
      swapped += native.filter((j, i) => j !== i).length;
    }
  }
  t.true(Math.abs(swapped / rowsSeen - 0.15) < 0.03, `swap rate ${swapped / rowsSeen}`);
});

test.serial(
  "summary swap trains on other rows' references: a different curve, the same one for the same seed",
  async (t) => {
    const clean = await new Trainer({ ...base(), maxSteps: 4, evalEvery: 4 }).fit();
    const a = await new Trainer({ ...base(), maxSteps: 4, evalEvery: 4, summarySwap: 0.5 }).fit();
    const b = await new Trainer({ ...base(), maxSteps: 4, evalEvery: 4, summarySwap: 0.5 }).fit();
    t.deepEqual(
      a.history.steps.map((s) => s.loss),
      b.history.steps.map((s) => s.loss),
    );
    t.notDeepEqual(
      a.history.steps.map((s) => s.loss),
      clean.history.steps.map((s) => s.loss),
    );
    t.throws(
      () =>
        new Trainer({
          model: { size: "tiny" },
          loss: { kind: "ce" },
          data: { source: "wikitext-2" },
          maxSteps: 1,
          summarySwap: 0.1,
        }),
      {
        message: /summarySwap: applies to encoder-decoders/,
      },
    );
  },
);

test.serial("killed with SIGKILL mid-run, resumed from the last checkpoint: the same curve and weights", async (t) => {
  const dir = tmpDir(t, "dpsm-s2s-kill-");
  const ref = await new Trainer({ ...base(path.join(dir, "ref")), maxSteps: 120, evalEvery: 10 }).fit();
  const { model: _m, data: _d, ...childOptions } = { ...base(path.join(dir, "killed")), maxSteps: 120, evalEvery: 10 };
  const { killedAt, lastCheckpoint } = await killAfterCheckpoint(
    "train-seq2seq-child.ts",
    JSON.stringify(childOptions),
    {
      minCheckpoint: 20,
      stepsPast: 3,
    },
  );
  t.log(`killed at step ${killedAt} or later, last checkpoint seen at step ${lastCheckpoint}`);
  const resumed = await new Trainer({ ...base(path.join(dir, "killed")), maxSteps: 120, evalEvery: 10 }).fit();
  const first = resumed.history.steps[0]!.step;
  t.true(first > 20 && first < 120, `resumed at step ${first}`);
  const curve = (r: typeof ref) => r.history.steps.map((s) => [s.step, s.loss] as const);
  t.deepEqual(
    curve(resumed),
    curve(ref).filter(([s]) => s >= first),
  );
  const probe = { ids: valid.sourceTokens.slice(0, 96), mask: new Int32Array(96).fill(1), length: 96 };
  t.deepEqual(
    Seq2SeqModel.load(path.join(dir, "killed", "last")).logits({
      ...probe,
      decoderIds: valid.targetTokens.slice(0, 40),
      batch: 1,
      decoderLength: 40,
    }),
    Seq2SeqModel.load(path.join(dir, "ref", "last")).logits({
      ...probe,
      decoderIds: valid.targetTokens.slice(0, 40),
      batch: 1,
      decoderLength: 40,
    }),
  );
});
