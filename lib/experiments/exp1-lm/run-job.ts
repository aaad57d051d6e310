// One job of experiment 1: train (resuming from the job folder's checkpoint when there is one), evaluate the
// best checkpoint on the test split and the out-of-domain sets (and, for CE, with a fitted temperature),
// and continue the sample prompt. The data is tokenised once for all jobs. With fewer than SEEDS_FOR_T seeds the
// test split is also evaluated one sequence at a time, for the per-sequence sums the verdicts' bootstrap over test
// sequences needs (verdicts.ts); with more, the verdicts' intervals are over seeds and that second pass (about as
// long as the batched one on this CPU) is saved.
import path from "node:path";

import type { OodName } from "../../data/ood.ts";
import type { PackedTokens } from "../../data/pack.ts";
import { decodeGpt2, encodeGpt2 } from "../../data/tokenizer.ts";
import { Evaluator } from "../../evaluator.ts";
import { GPT2Model } from "../../models/gpt2.ts";
import { type SequenceSums, sequenceSumsOf } from "../../metrics/sequence-sums.ts";
import type { EvalMetrics } from "../../native.ts";
import type { TrainerOptions, TrainLossInput } from "../../trainer.ts";
import { fitJob } from "../framework/fit-job.ts";
import { type FitRecord, fitRecord } from "../framework/fit-record.ts";
import { trainingSubset } from "../framework/low-resource.ts";
import type { JobContext } from "../framework/spec.ts";
import { trainerSettings } from "../framework/trainer-settings.ts";
import { SEEDS_FOR_T } from "../framework/verdicts.ts";
import { type Exp1Config, lrFor, TEMPSCALE } from "./config.ts";
import type { Exp1Data } from "./data.ts";
import type { Exp1Job } from "./jobs.ts";

/** What one job of experiment 1 yields (result.json, with the framework's key and time stamp). */
export interface Exp1Result extends FitRecord {
  loss: TrainLossInput;
  /** the best checkpoint on the test split (T = 1) */
  test: EvalMetrics;
  /**
   * the same evaluation's token sums per test sequence, with fewer than SEEDS_FOR_T seeds (absent from runs saved
   * before they existed: their verdicts have intervals over seeds only)
   */
  testSequences?: SequenceSums;
  ood: Partial<Record<OodName, EvalMetrics>>;
  /** CE + post-hoc temperature scaling (clean CE runs, when that baseline is on) */
  tempscale?: { temperature: number; test: EvalMetrics; ood: Partial<Record<OodName, EvalMetrics>> };
  sample: { prompt: string; continuation: string; topK: number };
}

/**
 * The Trainer options of one job: the experiment's Trainer settings (with the learning rate of the job's model
 * size and the job's AdamW ε), and the job's model, loss, seeds, label noise and training data (a low-resource
 * run's share of the split).
 */
export function exp1TrainerOptions(ctx: JobContext<Exp1Config, Exp1Job, Exp1Data>) {
  const { config: c, job, data } = ctx;
  const { model, seed, setting } = job.key;
  return {
    ...trainerSettings(c, ctx.worldSize),
    lr: lrFor(c, model),
    eps: job.eps,
    model: { size: model, seed, device: c.device },
    loss: job.loss,
    // A low-resource run: its share of the training sequences, the same sample for every variation and seed.
    data: { train: job.trainShare ? trainingSubset(data.train, job.trainShare) : data.train, valid: data.valid },
    seed,
    // The same batch order for every variation of a seed.
    dataSeed: seed,
    ...(setting === "label-noise" && c.labelNoise
      ? { labelNoise: { stepFraction: c.labelNoise.stepFraction, tokenFraction: c.labelNoise.tokenFraction } }
      : {}),
  } satisfies TrainerOptions;
}

/**
 * The token sums of each of the first `maxSequences` (0: all) sequences of `data`, each evaluated alone (at
 * `temperature`, default 1): the native evaluator reports a set's totals only, so one call per sequence (a view of
 * its row) gives each sequence's.
 */
export async function perSequenceSums(
  ev: Evaluator,
  data: PackedTokens,
  maxSequences: number,
  options: { temperature?: number } = {},
): Promise<SequenceSums> {
  const n = maxSequences > 0 ? Math.min(maxSequences, data.sequences) : data.sequences;
  const w = data.contextLength;
  const each: EvalMetrics[] = [];
  for (let i = 0; i < n; i++) {
    const lengths = data.lengths.subarray(i, i + 1);
    const row = { ...data, sequences: 1, tokens: data.tokens.subarray(i * w, (i + 1) * w), lengths };
    each.push(await ev.evaluate({ ...row, totalTokens: lengths[0]! }, options));
  }
  return sequenceSumsOf(each);
}

export async function runExp1Job(
  ctx: JobContext<Exp1Config, Exp1Job, Exp1Data>,
): Promise<Exp1Result | null | undefined> {
  const { config: c, job, dir, data } = ctx;
  const { seed, setting, variation } = job.key;
  const fit = await fitJob(ctx, exp1TrainerOptions(ctx));
  if (!fit) return fit;

  const best = await GPT2Model.loadAsync(path.join(dir, fit.bestStep >= 0 ? "best" : "last"), { device: c.device });
  const bf16 = c.precision === "bf16";
  const ev = new Evaluator(best, { batchSize: c.batchSize, maxSequences: c.testMaxSequences, bf16 });
  const oodEval = new Evaluator(best, { batchSize: c.batchSize, maxSequences: c.oodMaxSequences, bf16 });
  const test = await ev.evaluate(data.test);
  const testSequences =
    c.seeds.length < SEEDS_FOR_T ? await perSequenceSums(ev, data.test, c.testMaxSequences) : undefined;
  const ood: Exp1Result["ood"] = {};
  for (const name of c.ood) ood[name] = await oodEval.evaluate(data.ood[name]!);

  let tempscale: Exp1Result["tempscale"];
  if (variation === "ce" && setting === "clean" && !job.key.params && c.baselines.includes(TEMPSCALE)) {
    const validEval = new Evaluator(best, { batchSize: c.batchSize, maxSequences: c.evalMaxSequences, bf16 });
    const { temperature } = await validEval.fitTemperature(data.valid);
    const scaledOod: Exp1Result["ood"] = {};
    for (const name of c.ood) scaledOod[name] = await oodEval.evaluate(data.ood[name]!, { temperature });
    tempscale = { temperature, test: await ev.evaluate(data.test, { temperature }), ood: scaledOod };
  }

  const prompt = encodeGpt2(c.sample.prompt);
  const { maxNewTokens, topK } = c.sample;
  const continuation = decodeGpt2(await best.generate(prompt, { maxNewTokens, topK, seed }));
  return {
    loss: job.loss,
    ...fitRecord(dir, fit),
    test,
    ...(testSequences ? { testSequences } : {}),
    ood,
    ...(tempscale ? { tempscale } : {}),
    sample: { prompt: c.sample.prompt, continuation, topK: c.sample.topK },
  };
}
