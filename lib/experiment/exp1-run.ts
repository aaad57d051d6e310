// Runs experiment 1's jobs into one directory: each (model, variation, seed, setting) trains in
// runs/<id>/ (resumed from its checkpoint when interrupted), is evaluated on the test split and the
// out-of-domain sets at its best checkpoint, writes a sample, and ends with runs/<id>/result.json. A job
// whose result.json exists is skipped, so re-running finishes an interrupted experiment without redoing work.
import fs from "node:fs";
import path from "node:path";

import type { OodName } from "../data/ood.ts";
import type { PackedTokens } from "../data/pack.ts";
import { prepareLanguageModelData } from "../data/prepare.ts";
import { decodeGpt2, encodeGpt2 } from "../data/tokenizer.ts";
import { Evaluator } from "../evaluator.ts";
import { GPT2Model } from "../model.ts";
import type { EvalMetrics } from "../native.ts";
import { median } from "../report/table.ts";
import { type StepEvent, Trainer } from "../trainer.ts";
import { type Exp1Config, type Exp1Job, exp1Jobs, lrFor } from "./exp1-config.ts";

export interface CurvePoint {
  step: number;
  elapsedSeconds: number;
  ppl: number;
  nll: number;
  ece10: number;
  accuracy: number;
}

export interface JobResult {
  job: Exp1Job;
  fit: {
    reason: string;
    steps: number;
    bestStep: number;
    bestNll: number;
    elapsedSeconds: number;
    tokensSeen: number;
    stepMs: number;
    tokensPerSecond: number;
    peakMemoryBytes: number;
  };
  /** validation metrics at every evaluation, over all sessions of the run */
  curve: CurvePoint[];
  /** training loss and α, at most ~300 points */
  losses: { step: number; loss: number; alpha: number; elapsedSeconds: number }[];
  /** the best checkpoint on the test split (T = 1) */
  test: EvalMetrics;
  ood: Partial<Record<OodName, EvalMetrics>>;
  /** CE + post-hoc temperature scaling (CE runs, when that baseline is on) */
  tempscale?: { temperature: number; test: EvalMetrics; ood: Partial<Record<OodName, EvalMetrics>> };
  sample: { prompt: string; continuation: string; topK: number };
  finishedAt: string;
}

export interface Exp1Data {
  train: PackedTokens;
  valid: PackedTokens;
  test: PackedTokens;
  ood: Partial<Record<OodName, PackedTokens>>;
}

export async function prepareExp1Data(c: Exp1Config): Promise<Exp1Data> {
  const common = { source: c.dataset, contextLength: c.contextLength, ...(c.dataDir ? { dataDir: c.dataDir } : {}) };
  const data: Exp1Data = {
    train: await prepareLanguageModelData({ ...common, split: "train" }),
    valid: await prepareLanguageModelData({ ...common, split: "valid" }),
    test: await prepareLanguageModelData({ ...common, split: "test" }),
    ood: {},
  };
  for (const name of c.ood) {
    data.ood[name] = await prepareLanguageModelData({
      source: { ood: name },
      contextLength: c.contextLength,
      ...(c.dataDir ? { dataDir: c.dataDir } : {}),
    });
  }
  return data;
}

function writeJsonAtomic(file: string, value: unknown): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, `${JSON.stringify(value, null, 1)}\n`);
  fs.renameSync(tmp, file);
}

/** The run's evaluations and losses from its JSONL log; a step repeated after a resume keeps its last record. */
export function readRunLog(file: string): {
  curve: CurvePoint[];
  losses: JobResult["losses"];
  stepMs: number;
  tokensPerSecond: number;
  peakMemoryBytes: number;
} {
  const evals = new Map<number, CurvePoint>();
  const steps = new Map<number, JobResult["losses"][number] & { stepMs: number; tokensPerSecond: number; peak: number }>();
  if (fs.existsSync(file)) {
    for (const line of fs.readFileSync(file, "utf8").split("\n")) {
      if (!line.trim()) continue;
      let r: {
        type?: string;
        step?: number;
        elapsedSeconds?: number;
        loss?: number;
        alpha?: number;
        metrics?: EvalMetrics;
        stepMs?: number;
        tokensPerSecond?: number;
        peakMemoryBytes?: number;
      };
      try {
        r = JSON.parse(line) as typeof r;
      } catch {
        continue; // a line cut short by a kill
      }
      if (r.type === "eval" && r.metrics && r.step !== undefined) {
        evals.set(r.step, { step: r.step, elapsedSeconds: r.elapsedSeconds ?? 0, ppl: r.metrics.ppl, nll: r.metrics.nll, ece10: r.metrics.ece10, accuracy: r.metrics.accuracy });
      } else if (r.type === "step" && r.step !== undefined) {
        steps.set(r.step, {
          step: r.step,
          loss: r.loss ?? NaN,
          alpha: r.alpha ?? 0,
          elapsedSeconds: r.elapsedSeconds ?? 0,
          stepMs: r.stepMs ?? NaN,
          tokensPerSecond: r.tokensPerSecond ?? NaN,
          peak: r.peakMemoryBytes ?? -1,
        });
      }
    }
  }
  const all = [...steps.values()].sort((a, b) => a.step - b.step);
  const every = Math.max(1, Math.ceil(all.length / 300));
  return {
    curve: [...evals.values()].sort((a, b) => a.step - b.step),
    losses: all
      .filter((_, i) => i % every === 0 || i === all.length - 1)
      .map(({ step, loss, alpha, elapsedSeconds }) => ({ step, loss, alpha, elapsedSeconds })),
    stepMs: median(all.map((s) => s.stepMs)),
    tokensPerSecond: median(all.map((s) => s.tokensPerSecond)),
    peakMemoryBytes: Math.max(-1, ...all.map((s) => s.peak)),
  };
}

export interface RunOptions {
  signal?: AbortSignal;
  /** progress lines (default: stderr) */
  say?: (line: string) => void;
  /** the Trainer's progress display ("auto": a bar on a terminal) */
  progress?: boolean | "auto";
  /** collect the finished runs only; train nothing */
  onlyFinished?: boolean;
  /** each training step of each run, as the Trainer reports it */
  onStep?: (job: Exp1Job, step: StepEvent) => void;
}

/**
 * Trains and evaluates every job of `c` into `out` (resuming and skipping as described above) and returns all
 * results. `out/config.json` pins the configuration: a directory holding another configuration is refused.
 */
export async function runExp1(c: Exp1Config, out: string, options: RunOptions = {}): Promise<{ results: JobResult[]; data: Exp1Data }> {
  const say = options.say ?? ((line: string) => process.stderr.write(`${line}\n`));
  fs.mkdirSync(path.join(out, "runs"), { recursive: true });
  const pinned = path.join(out, "config.json");
  const { threads: _threads, ...identity } = c;
  if (fs.existsSync(pinned)) {
    const { threads: _t, ...before } = JSON.parse(fs.readFileSync(pinned, "utf8")) as Exp1Config;
    if (JSON.stringify(before) !== JSON.stringify(identity)) {
      throw new Error(`out: ${out} holds an experiment with another configuration (${pinned}); use another --out or delete it`);
    }
  } else {
    writeJsonAtomic(pinned, identity);
  }

  const jobs = exp1Jobs(c);
  say(`experiment 1 (${c.profile}): ${jobs.length} runs into ${out}; preparing data…`);
  const data = await prepareExp1Data(c);
  say(
    `data: ${typeof c.dataset === "string" ? c.dataset : c.dataset.dir} train ${data.train.totalTokens.toLocaleString("en-US")} tokens, ` +
      `valid ${data.valid.totalTokens.toLocaleString("en-US")}, test ${data.test.totalTokens.toLocaleString("en-US")}` +
      `${c.ood.length ? `; OOD ${c.ood.map((n) => `${n} ${data.ood[n]!.totalTokens.toLocaleString("en-US")}`).join(", ")}` : ""}`,
  );
  const results: JobResult[] = [];
  for (const [i, job] of jobs.entries()) {
    const dir = path.join(out, "runs", job.id);
    const resultFile = path.join(dir, "result.json");
    if (fs.existsSync(resultFile)) {
      say(`[${i + 1}/${jobs.length}] ${job.id}: done before, skipped`);
      results.push(JSON.parse(fs.readFileSync(resultFile, "utf8")) as JobResult);
      continue;
    }
    if (options.signal?.aborted || options.onlyFinished) continue;
    const resuming = fs.existsSync(path.join(dir, "last", "training_state.safetensors"));
    say(`[${i + 1}/${jobs.length}] ${job.id}: ${resuming ? "resuming" : "training"}`);
    const result = await runJob(c, job, dir, data, options);
    if (!result) break; // interrupted: checkpointed, picked up by the next run
    writeJsonAtomic(resultFile, result);
    say(
      `[${i + 1}/${jobs.length}] ${job.id}: test PPL ${result.test.ppl.toFixed(2)}, ECE-10 ${result.test.ece10.toFixed(4)}, ` +
        `${Math.round(result.fit.tokensPerSecond).toLocaleString("en-US")} tokens/s, ${result.fit.elapsedSeconds.toFixed(0)} s`,
    );
    results.push(result);
  }
  return { results, data };
}

async function runJob(c: Exp1Config, job: Exp1Job, dir: string, data: Exp1Data, options: RunOptions): Promise<JobResult | undefined> {
  const trainer = new Trainer({
    model: { size: job.model, seed: job.seed, device: c.device },
    loss: job.loss,
    data: { train: data.train, valid: data.valid },
    batchSize: c.batchSize,
    gradAccumulation: c.gradAccumulation,
    maxSteps: c.maxSteps,
    lr: lrFor(c, job.model),
    lrWarmupSteps: c.lrWarmupSteps,
    evalEvery: c.evalEvery,
    evalMaxSequences: c.evalMaxSequences,
    patience: c.patience,
    seed: job.seed,
    // The same batch order for every variation of a seed.
    dataSeed: job.seed,
    runDir: dir,
    device: c.device,
    precision: c.precision,
    ...(c.threads ? { threads: c.threads } : {}),
    ...(job.setting === "label-noise" && c.labelNoise
      ? { labelNoise: { stepFraction: c.labelNoise.stepFraction, tokenFraction: c.labelNoise.tokenFraction } }
      : {}),
    progress: options.progress ?? "auto",
  });
  if (options.onStep) trainer.on("step", (e) => options.onStep!(job, e));
  // Interrupted before this run started: nothing to do until the next invocation.
  if (options.signal?.aborted) return undefined;
  const fit = await trainer.fit(options.signal ? { signal: options.signal } : {});
  if (fit.reason === "aborted") return undefined;

  const best = GPT2Model.load(path.join(dir, fit.bestStep >= 0 ? "best" : "last"), { device: c.device });
  const ev = new Evaluator(best, { batchSize: c.batchSize, maxSequences: c.testMaxSequences, bf16: c.precision === "bf16" });
  const oodEval = new Evaluator(best, { batchSize: c.batchSize, maxSequences: c.oodMaxSequences, bf16: c.precision === "bf16" });
  const test = await ev.evaluate(data.test);
  const ood: JobResult["ood"] = {};
  for (const name of c.ood) ood[name] = await oodEval.evaluate(data.ood[name]!);

  let tempscale: JobResult["tempscale"];
  if (job.variation === "ce" && job.setting === "clean" && c.baselines.includes("ce+tempscale")) {
    const validEval = new Evaluator(best, { batchSize: c.batchSize, maxSequences: c.evalMaxSequences, bf16: c.precision === "bf16" });
    const { temperature } = await validEval.fitTemperature(data.valid);
    const scaledOod: JobResult["ood"] = {};
    for (const name of c.ood) scaledOod[name] = await oodEval.evaluate(data.ood[name]!, { temperature });
    tempscale = { temperature, test: await ev.evaluate(data.test, { temperature }), ood: scaledOod };
  }

  const prompt = encodeGpt2(c.sample.prompt);
  const continuation = decodeGpt2(best.generate(prompt, { maxNewTokens: c.sample.maxNewTokens, topK: c.sample.topK, seed: job.seed }));
  const log = readRunLog(path.join(dir, "train.jsonl"));
  return {
    job,
    fit: {
      reason: fit.reason,
      steps: fit.steps,
      bestStep: fit.bestStep,
      bestNll: fit.bestNll,
      elapsedSeconds: fit.elapsedSeconds,
      tokensSeen: fit.tokensSeen,
      // Over every session of the run (the log), not just the last one.
      stepMs: log.stepMs,
      tokensPerSecond: log.tokensPerSecond,
      peakMemoryBytes: Math.max(log.peakMemoryBytes, fit.efficiency.peakMemoryBytes),
    },
    curve: log.curve,
    losses: log.losses,
    test,
    ood,
    ...(tempscale ? { tempscale } : {}),
    sample: { prompt: c.sample.prompt, continuation, topK: c.sample.topK },
    finishedAt: new Date().toISOString(),
  };
}
