// One job of experiment 2. A pretraining job trains a new encoder–decoder on denoising examples. A fine-tuning job
// trains from the pretrained (or given) checkpoint with its loss, then evaluates its last checkpoint (the seed's
// main selection) and its best-validation one on the test split and every zero-shot set: teacher-forced NLL,
// Brier and ECE on the references, and summaries generated and scored with ROUGE, Distinct-n and length. CE runs
// also get a temperature fitted on validation NLL and, for the source-dependence gate (source-gate.ts), summaries
// written from shuffled sources. Every generated summary is kept in the job folder.
import path from "node:path";

import { writeFileAtomic } from "../../io/atomic.ts";
import { Evaluator } from "../../evaluator.ts";
import { type BertScoreResult, BertScorer } from "../../metrics/bertscore.ts";
import { type DiversityStats, diversity } from "../../metrics/diversity.ts";
import { DEFAULT_ROUGE_TYPES, type RougeAggregate, rougeCorpus } from "../../metrics/rouge.ts";
import { Seq2SeqModel } from "../../models/bart.ts";
import type { EvalMetrics } from "../../native.ts";
import type { TrainerOptions, TrainLossInput } from "../../trainer.ts";
import type { Seq2SeqTokenizer } from "../../tokenizers/index.ts";
import { jobId } from "../framework/keys.ts";
import { fitJob } from "../framework/fit-job.ts";
import { type FitRecord, fitRecord } from "../framework/fit-record.ts";
import { trainingSubset } from "../framework/low-resource.ts";
import type { JobContext } from "../framework/spec.ts";
import { trainerSettings } from "../framework/trainer-settings.ts";
import { type Exp2Config, TEMPSCALE } from "./config.ts";
import type { EvalSet, Exp2Data, Exp2ModelData } from "./data.ts";
import type { Exp2Job, FinetuneJob, PretrainJob } from "./jobs.ts";
import { freshModel } from "./model.ts";
import { type AttackSetResult, attackPass } from "./attack.ts";
import { permutedSources, type ShuffledSourceResult, shuffledSourcePass } from "./shuffled-source.ts";

type RougeName = (typeof DEFAULT_ROUGE_TYPES)[number];

/** One evaluation set scored with one checkpoint. */
export interface SetResult {
  /** e.g. "dialogsum/test (jsonl)" */
  label: string;
  examples: number;
  /** teacher-forced on the first reference: NLL, ECE, Brier, reliability bins */
  teacherForced: EvalMetrics;
  /** ROUGE of the generated summaries against every reference (rouge-score's score_multi), with a bootstrap CI */
  rouge: Record<RougeName, RougeAggregate>;
  /** ROUGE-L F per example, for paired tests between variations */
  rougeLPerExample: number[];
  /**
   * BERTScore against every reference (the best of each, as bert-score does), per example and averaged with a
   * bootstrap interval; absent where no bertscore.model was given (or in results from before it existed)
   */
  bertscore?: BertScoreResult;
  diversity: DiversityStats;
  /** mean words of the first reference */
  referenceWords: number;
  sentencesPerSecond: number;
  /** the first `examples` summaries, for the report */
  summaries: string[];
}

export interface CheckpointResult {
  step: number;
  test: SetResult;
  transfer: Partial<Record<string, SetResult>>;
  /** clean CE runs' last checkpoint: the test split summarised from shuffled sources (the gate's check) */
  shuffledSource?: ShuffledSourceResult;
  /** clean runs' last checkpoint, given attack.vectors: TextFooler on the first test sources (attack.ts) */
  attack?: AttackSetResult;
}

export interface PretrainResult extends FitRecord {
  kind: "pretrain";
  parameters: number;
  examples: number;
  maskedShare: number;
}

export interface FinetuneResult extends FitRecord {
  kind: "finetune";
  loss: TrainLossInput;
  /** the seed's main selection */
  last: CheckpointResult;
  /** the best validation NLL; absent when that was the last checkpoint */
  best?: CheckpointResult;
  /** CE runs: the last checkpoint at the temperature minimising validation NLL (generation is unchanged by it) */
  tempscale?: { temperature: number; test: EvalMetrics; transfer: Partial<Record<string, EvalMetrics>> };
}

export type Exp2Result = PretrainResult | FinetuneResult;

/** The checkpoint a pretraining job leaves, for the fine-tuning job `job` in `jobDir` (both under runs/). */
export function pretrainedCheckpoint(jobDir: string, job: FinetuneJob, pretrained: PretrainJob["key"]): string {
  const runs = path.resolve(
    jobDir,
    ...jobId(job.key)
      .split("/")
      .map(() => ".."),
  );
  return path.join(runs, jobId(pretrained), "last");
}

/**
 * The Trainer options of a pretraining job: the pretraining block's Trainer settings (the machine's are the
 * experiment's), the fresh `model`, the denoising data and the block's seed.
 */
export function pretrainTrainerOptions(
  ctx: JobContext<Exp2Config, Exp2Job, Exp2Data>,
  job: PretrainJob,
  model: Seq2SeqModel,
) {
  const { config: c } = ctx;
  const p = c.pretrain;
  const d = ctx.data[job.key.model]!;
  if (p === false || !d.pretrain) throw new Error(`exp2: ${job.key.model} has no pretraining settings or data`);
  return {
    ...trainerSettings({ ...c, ...p }, ctx.worldSize),
    model,
    loss: { kind: "ce" },
    data: { train: d.pretrain.train, valid: d.pretrain.valid },
    seed: p.seed,
  } satisfies TrainerOptions;
}

/** The Trainer options of a fine-tuning job: the experiment's Trainer settings, `model`, its loss, seeds and noise. */
export function finetuneTrainerOptions(
  ctx: JobContext<Exp2Config, Exp2Job, Exp2Data>,
  job: FinetuneJob,
  model: Seq2SeqModel,
) {
  const { config: c } = ctx;
  const { model: name, seed, setting } = job.key;
  const d = ctx.data[name]!;
  return {
    ...trainerSettings(c, ctx.worldSize),
    // A grid run's own learning rate (grid.ts).
    ...(job.lr !== undefined ? { lr: job.lr } : {}),
    model,
    loss: job.loss,
    // A low-resource run: its share of the training pairs, the same sample for every variation and seed.
    data: { train: job.trainShare ? trainingSubset(d.train, job.trainShare) : d.train, valid: d.valid },
    seed,
    // The same batch order (and swaps) for every variation of a seed.
    dataSeed: seed,
    ...(setting === "summary-swap" && c.summarySwap ? { summarySwap: c.summarySwap.probability } : {}),
  } satisfies TrainerOptions;
}

async function runPretrain(ctx: JobContext<Exp2Config, Exp2Job, Exp2Data>, job: PretrainJob) {
  const d = ctx.data[job.key.model]!;
  const model = await freshModel(ctx.config, d);
  const fit = await fitJob(ctx, pretrainTrainerOptions(ctx, job, model));
  if (!fit) return fit;
  return {
    kind: "pretrain",
    parameters: model.parameterCount,
    examples: d.pretrain!.train.ids.length,
    maskedShare: d.pretrain!.maskedShare,
    ...fitRecord(ctx.dir, fit),
  } satisfies PretrainResult;
}

const sourceOf = (set: EvalSet) =>
  permutedSources(
    set.arrays,
    set.records.map((_, i) => i),
  );

const words = (text: string) => text.match(/\S+/g)?.length ?? 0;

async function scoreSet(
  c: Exp2Config,
  model: Seq2SeqModel,
  tokenizer: Seq2SeqTokenizer,
  set: EvalSet,
  summariesFile: string,
  seed: number,
): Promise<SetResult> {
  const bf16 = c.precision === "bf16";
  const teacherForced = await new Evaluator(model, { batchSize: c.batchSize, bf16 }).evaluate(set.arrays);
  const t0 = performance.now();
  const generated = await model.generate(sourceOf(set), c.generation, { batchSize: c.batchSize });
  const seconds = (performance.now() - t0) / 1000;
  const summaries = generated.map((ids) => tokenizer.decode(ids, { skipSpecialTokens: true }).trim());
  writeFileAtomic(
    summariesFile,
    summaries.map((summary, i) => `${JSON.stringify({ id: set.records[i]!.id, summary })}\n`).join(""),
  );
  const rouge = rougeCorpus(
    summaries.map((candidate, i) => ({ candidate, references: set.records[i]!.references })),
    { bootstrap: { samples: c.rougeBootstrap, seed } },
  );
  const references = set.records.map((r) => r.references);
  const bertscore = await bertScorer(c)?.then((b) =>
    b.score(summaries, references, { bootstrap: { samples: c.rougeBootstrap, seed } }),
  );
  return {
    label: set.label,
    examples: summaries.length,
    teacherForced,
    rouge: rouge.scores,
    rougeLPerExample: rouge.pairs.map((p) => p.rougeL.fmeasure),
    ...(bertscore ? { bertscore } : {}),
    diversity: diversity(summaries),
    referenceWords: set.records.reduce((s, r) => s + words(r.references[0]!), 0) / set.records.length,
    sentencesPerSecond: summaries.length / seconds,
    summaries: summaries.slice(0, c.examples),
  };
}

// The BERTScore model, loaded once per process for every set and job (settings are pinned, so one per run).
let scorer: { key: string; scorer: Promise<BertScorer> } | undefined;
function bertScorer(c: Exp2Config): Promise<BertScorer> | undefined {
  const b = c.bertscore;
  if (b.model === undefined) return undefined;
  const options = {
    model: b.model,
    layer: b.layer,
    idf: b.idf,
    rescale: b.rescale,
    baseline: b.baseline,
    device: c.device,
    batchSize: c.batchSize,
  };
  const key = JSON.stringify(options);
  if (scorer?.key !== key) scorer = { key, scorer: BertScorer.load(options) };
  return scorer.scorer;
}

const loadCheckpoint = (c: Exp2Config, dir: string, which: "last" | "best") =>
  Seq2SeqModel.loadAsync(path.join(dir, which), { device: c.device });

async function scoreCheckpoint(
  c: Exp2Config,
  d: Exp2ModelData,
  model: Seq2SeqModel,
  dir: string,
  which: "last" | "best",
  step: number,
  seed: number,
): Promise<CheckpointResult> {
  const file = (set: string) => path.join(dir, `summaries-${which}-${set}.jsonl`);
  const test = await scoreSet(c, model, d.tokenizer, d.test, file("test"), seed);
  const transfer: CheckpointResult["transfer"] = {};
  for (const [name, set] of Object.entries(d.transfer)) {
    transfer[name] = await scoreSet(c, model, d.tokenizer, set!, file(name), seed);
  }
  return { step, test, transfer };
}

async function runFinetune(ctx: JobContext<Exp2Config, Exp2Job, Exp2Data>, job: FinetuneJob) {
  const { config: c, dir } = ctx;
  const { model: name, seed, setting, variation } = job.key;
  const d = ctx.data[name]!;
  const from = job.pretrained ? pretrainedCheckpoint(dir, job, job.pretrained) : d.checkpoint!;
  const model = await Seq2SeqModel.loadAsync(from, { device: c.device });
  const fit = await fitJob(ctx, finetuneTrainerOptions(ctx, job, model));
  if (!fit) return fit;

  // The saved checkpoints are what is evaluated; the last one, loaded once, also serves the temperature fit.
  const lastModel = await loadCheckpoint(c, dir, "last");
  const last = await scoreCheckpoint(c, d, lastModel, dir, "last", fit.steps, seed);
  if (variation === "ce" && setting === "clean" && d.test.records.length >= 2) {
    const file = path.join(dir, "summaries-last-test-shuffled-source.jsonl");
    last.shuffledSource = await shuffledSourcePass(c, lastModel, d.tokenizer, d.test, file);
  }
  if (setting === "clean") {
    const file = path.join(dir, "summaries-last-test-attacked.jsonl");
    const attack = await attackPass(c, lastModel, d.tokenizer, d.test, file);
    if (attack) last.attack = attack;
  }
  const best =
    fit.bestStep >= 0 && fit.bestStep !== fit.steps
      ? await scoreCheckpoint(c, d, await loadCheckpoint(c, dir, "best"), dir, "best", fit.bestStep, seed)
      : undefined;

  let tempscale: FinetuneResult["tempscale"];
  if (variation === "ce" && setting === "clean" && c.baselines.includes(TEMPSCALE)) {
    const model = lastModel;
    const options = { batchSize: c.batchSize, bf16: c.precision === "bf16" };
    const { temperature } = await new Evaluator(model, { ...options, maxSequences: c.evalMaxSequences }).fitTemperature(
      d.valid,
    );
    const ev = new Evaluator(model, options);
    const transfer: Record<string, EvalMetrics> = {};
    for (const [set, s] of Object.entries(d.transfer)) transfer[set] = await ev.evaluate(s!.arrays, { temperature });
    tempscale = { temperature, test: await ev.evaluate(d.test.arrays, { temperature }), transfer };
  }
  return {
    kind: "finetune",
    loss: job.loss,
    ...fitRecord(dir, fit),
    last,
    ...(best ? { best } : {}),
    ...(tempscale ? { tempscale } : {}),
  } satisfies FinetuneResult;
}

export async function runExp2Job(
  ctx: JobContext<Exp2Config, Exp2Job, Exp2Data>,
): Promise<Exp2Result | null | undefined> {
  return ctx.job.kind === "pretrain" ? runPretrain(ctx, ctx.job) : runFinetune(ctx, ctx.job);
}

export function describeExp2Result(r: Exp2Result): string {
  const time = `${r.fit.elapsedSeconds.toFixed(0)} s`;
  if (r.kind === "pretrain") {
    const nll = r.curve.at(-1)?.nll;
    return `pretrained ${r.fit.steps} steps, validation denoising NLL ${nll?.toFixed(3) ?? "–"}, ${time}`;
  }
  const t = r.last.test;
  return (
    `ROUGE-1/2/L ${[t.rouge.rouge1, t.rouge.rouge2, t.rouge.rougeL].map((x) => (100 * x.mean.fmeasure).toFixed(2)).join("/")}, ` +
    `ECE-10 ${t.teacherForced.ece10.toFixed(4)}, NLL ${t.teacherForced.nll.toFixed(3)}, ${time}`
  );
}
