// Trainer: configures a GPT-2 language-model run and watches it. The step loop itself runs in C++ on a
// worker thread (native/core/train/trainer.cpp); this side validates the config, prepares the data once,
// relays progress as events, draws the progress bar and writes the JSONL log. Nothing heavy runs on the event
// loop: the model (when given as options) and the native trainer are built on worker threads, and the data is
// read and hashed in small slices.
import { EventEmitter } from "node:events";
import { createRequire } from "node:module";
import path from "node:path";

import type cliProgress from "cli-progress";
import { z } from "zod";

import {
  DeviceSchema,
  isBaselineLoss,
  parseOrThrow,
  parseTrainLoss,
  type TrainLoss,
  type TrainLossInput,
} from "./config.ts";
import { median } from "./report/table.ts";
import type { PackedTokens } from "./data/pack.ts";
import {
  type LanguageModelDataOptions,
  LanguageModelDataOptionsSchema,
  locateLanguageModelData,
  prepareLanguageModelData,
} from "./data/prepare.ts";
import { type DistributedDocument, DistributedOptionsSchema, resolveDistributed } from "./distributed.ts";
import { checkDataFits, checkModelData, isSeq2SeqData, type ModelData, modelShape, toNativeData } from "./evaluator.ts";
import { GPT2Model, type ModelOptions, ModelOptionsSchema, resolveGPT2Config } from "./model.ts";
import { Seq2SeqModel } from "./models/bart.ts";
import { checkFilePath, checkFolderPath, ensureFolder } from "./io/paths.ts";
import {
  buildInfo,
  native,
  type NativeProgress,
  type NativeTrainer,
  numericalDifferences,
  setNumThreads,
} from "./native.ts";
import { readRunLog, RunLogWriter } from "./runlog.ts";
import { TensorBoardLog } from "./tensorboard-log.ts";

export type { TrainLossInput } from "./config.ts";

// Where the tokens come from: the data pipeline's own fields (lib/data/prepare.ts; checked again, per split, by its
// schema in the constructor) with a split for training and one for validation — or splits already prepared.
const { split: _split, ...pipelineFields } = LanguageModelDataOptionsSchema.shape;
const SourceDataSchema = z
  .object({
    ...pipelineFields,
    trainSplit: z.enum(["train", "valid", "test"]).default("train"),
    validSplit: z.enum(["train", "valid", "test"]).default("valid"),
  })
  .strict();
// Prepared splits: packed sequences (lib/data/prepare.ts) or encoder–decoder examples (lib/data/summarization.ts),
// each checked by checkModelData, which names what is wrong.
const PreparedDataSchema = z
  .object({
    train: z.custom<ModelData>(preparedOrIssue("train")),
    valid: z.custom<ModelData>(preparedOrIssue("valid")),
  })
  .strict();
const DataSchema = z.union([SourceDataSchema, PreparedDataSchema]);

function preparedOrIssue(name: string) {
  return (v: unknown) => {
    try {
      checkModelData(v, name);
      return true;
    } catch {
      return false;
    }
  };
}

/** `data` checked by the member of DataSchema its keys choose, so the error names the field (a union cannot). */
function checkDataOption(data: unknown): void {
  if (typeof data !== "object" || data === null) return; // the schema names it
  if ("train" in data || "valid" in data) {
    const d = data as { train?: unknown; valid?: unknown };
    parseOrThrow(z.object({ train: z.unknown(), valid: z.unknown() }).strict(), d, "Trainer options.data");
    checkModelData(d.train, "Trainer options.data.train");
    checkModelData(d.valid, "Trainer options.data.valid");
  } else {
    parseOrThrow(SourceDataSchema, data, "Trainer options.data");
  }
}

export const TrainerOptionsSchema = z
  .object({
    /** a model to train, or how to create one (checked by ModelOptionsSchema in the constructor) */
    model: z.custom<GPT2Model | Seq2SeqModel | ModelOptions>(
      (v) => typeof v === "object" && v !== null,
      "expected a GPT2Model, a Seq2SeqModel or GPT-2 model options",
    ),
    loss: z.custom<TrainLossInput>((v) => typeof v === "object" && v !== null, "expected a loss config object"),
    /** where the tokens come from (prepared once, cached), or prepared splits */
    data: DataSchema,
    batchSize: z.number().int().min(1).default(8),
    gradAccumulation: z.number().int().min(1).default(1),
    maxSteps: z.number().int().min(1),
    lr: z.number().positive().finite().default(6e-4),
    lrWarmupSteps: z.number().int().min(0).default(0),
    minLrRatio: z.number().min(0).max(1).default(0.1),
    weightDecay: z.number().min(0).finite().default(0.1),
    betas: z.tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)]).default([0.9, 0.95]),
    eps: z.number().positive().default(1e-8),
    gradClip: z.number().min(0).finite().default(1),
    evalEvery: z.number().int().min(1).default(100),
    evalMaxSequences: z.number().int().min(0).default(0),
    /** stop after this many evaluations without a better validation NLL (0: never) */
    patience: z.number().int().min(0).default(0),
    /** model initialisation and dropout */
    seed: z.number().int().min(0).default(0),
    /** batch order and label noise; defaults to `seed`. Keep it fixed to give every variation the same batches. */
    dataSeed: z.number().int().min(0).optional(),
    /** checkpoints (last/, best/) and the JSONL log; a run dir with a checkpoint of the same run is resumed */
    runDir: z.string().min(1).optional(),
    device: DeviceSchema.default("cpu"),
    /** bf16 autocast with fp32 master weights (CUDA; on the CPU it works, but is rarely faster than fp32) */
    precision: z.enum(["fp32", "bf16"]).default("fp32"),
    /**
     * the LM head and loss fused, a chunk of tokens at a time, so the batch's N × V logits and their gradient never
     * exist ("auto": for the ce, brier, spherical and dpsm losses; the label_smoothing and focal baselines need
     * the logits). The same curve to float rounding either way: not part of the run's resume fingerprint.
     */
    fusedHead: z.union([z.boolean(), z.literal("auto")]).default("auto"),
    /** libtorch threads (default: the machine's cores) */
    threads: z.number().int().min(1).optional(),
    /** label noise: for this share of steps, this share of the batch's targets replaced by random tokens */
    labelNoise: z
      .object({ stepFraction: z.number().min(0).max(1), tokenFraction: z.number().min(0).max(1) })
      .strict()
      .default({ stepFraction: 0, tokenFraction: 0 }),
    /**
     * summary-swap noise (encoder–decoders): the probability that a row trains on another row's reference of the
     * same batch, drawn per dataSeed and batch by the rule in lib/data/summary-noise.ts (the seed's robustness
     * setting is 0.15)
     */
    summarySwap: z.number().min(0).max(1).default(0),
    /** a progress bar on stderr ("auto": when stderr is a terminal, else a line every 10 %) */
    progress: z.union([z.boolean(), z.literal("auto")]).default("auto"),
    /** JSONL log file (default: <runDir>/train.jsonl; false: none) */
    log: z.union([z.string().min(1), z.literal(false)]).optional(),
    /** TensorBoard event files (default: tensorboard/ beside the JSONL log, none without one; false: none) */
    tensorboard: z.union([z.string().min(1), z.literal(false)]).optional(),
    /**
     * data-parallel training, one process per rank (lib/distributed.ts): "env" takes RANK, WORLD_SIZE, MASTER_ADDR
     * and MASTER_PORT from the environment as `dpsm-native launch` (or torchrun) sets them, one process when they
     * are absent; or the same as options; false: one process. batchSize and gradAccumulation are per rank. Rank 0
     * evaluates, checkpoints and writes the logs; every rank resumes from its checkpoint.
     */
    distributed: z
      .union([z.literal(false), z.literal("env"), z.custom<z.input<typeof DistributedOptionsSchema>>(isObject)])
      .default("env"),
  })
  .strict();
export type TrainerOptions = z.input<typeof TrainerOptionsSchema>;

function isObject(v: unknown): boolean {
  return typeof v === "object" && v !== null;
}

export type StepEvent = Extract<NativeProgress, { type: "step" }>;
export type EvalEvent = Extract<NativeProgress, { type: "eval" }>;
export type CheckpointEvent = Extract<NativeProgress, { type: "checkpoint" }>;
export type DoneEvent = Extract<NativeProgress, { type: "done" }>;
export type WarningEvent = Extract<NativeProgress, { type: "warning" }>;

export interface TrainerEvents {
  step: [StepEvent];
  eval: [EvalEvent];
  checkpoint: [CheckpointEvent];
  done: [DoneEvent];
  /** a resume fell back to another checkpoint or found one damaged (also emitted as a process warning) */
  warning: [WarningEvent];
}

export interface FitResult {
  reason: DoneEvent["reason"];
  /** optimiser steps done (including those before a resume) */
  steps: number;
  bestStep: number;
  bestNll: number;
  /** wall-clock of the whole run, resumed parts included */
  elapsedSeconds: number;
  tokensSeen: number;
  /** this session's events (after a resume: from the resume point on) */
  history: { steps: StepEvent[]; evals: EvalEvent[] };
  efficiency: {
    /** median time per optimiser step, ms */
    stepMs: number;
    /** median tokens per second */
    tokensPerSecond: number;
    /** CUDA: peak allocated bytes; CPU: peak resident set */
    peakMemoryBytes: number;
    /** wall-clock at each evaluation */
    evalWallClock: { step: number; elapsedSeconds: number }[];
  };
  runDir?: string;
}

/**
 * Trains a GPT-2 language model with a DPSM (or baseline) loss.
 *
 * ```ts
 * const trainer = new Trainer({ model: { size: "tiny" }, loss: { kind: "dpsm", schedule: "linear", warmupSteps: 100 },
 *   data: { source: "wikitext-2", contextLength: 128 }, maxSteps: 1000, runDir: "runs/dpsm" });
 * trainer.on("eval", (e) => console.log(e.step, e.metrics.ppl));
 * const result = await trainer.fit({ signal });
 * ```
 */
export class Trainer extends EventEmitter<TrainerEvents> {
  readonly options: Readonly<
    Omit<z.output<typeof TrainerOptionsSchema>, "model"> & {
      model: GPT2Model | Seq2SeqModel | z.output<typeof ModelOptionsSchema>;
    }
  >;
  readonly loss: TrainLoss;
  #model: GPT2Model | Seq2SeqModel | undefined;
  readonly #ready: Promise<GPT2Model | Seq2SeqModel>;
  #running = false;
  /** what this trainer's model already went through: a fit, or the timing audit (which moves its weights) */
  #used: "fit" | "timeSteps" | undefined;
  #splits: [LanguageModelDataOptions, LanguageModelDataOptions] | undefined;
  /** this process's place among the ranks (one process: rank 0 of 1) */
  readonly distributed: Readonly<DistributedDocument>;

  constructor(options: TrainerOptions) {
    super();
    checkDataOption((options as { data?: unknown } | null)?.data);
    const parsed = parseOrThrow(TrainerOptionsSchema, options, "Trainer options");
    const o = {
      ...parsed,
      model:
        parsed.model instanceof GPT2Model || parsed.model instanceof Seq2SeqModel
          ? parsed.model
          : parseOrThrow(ModelOptionsSchema, parsed.model, "Trainer options.model"),
    };
    this.loss = parseTrainLoss(o.loss, "Trainer options.loss");
    this.distributed = resolveDistributed(o.distributed, "Trainer options.distributed");
    const { worldSize } = this.distributed;
    if (worldSize > 1 && buildInfo().distributed === "") {
      throw new RangeError(
        `Trainer options.distributed: ${worldSize} ranks, but this build of dpsm-native has no process-group ` +
          "backend (built without Gloo's headers; see native/setup.sh)",
      );
    }
    const given = o.model instanceof GPT2Model || o.model instanceof Seq2SeqModel ? o.model : undefined;
    const device = given ? given.device : ((o.model as { device?: string }).device ?? "cpu");
    if (o.device !== device && given) {
      throw new RangeError(`Trainer options.device: "${o.device}" but the model lives on "${device}"`);
    }
    if (o.device.startsWith("cuda") && buildInfo().cudaDeviceCount === 0) {
      throw new RangeError(
        `Trainer options.device: "${o.device}", but this build sees no CUDA device (${buildInfo().cuda ? "none visible" : "built without CUDA"})`,
      );
    }
    if (!("train" in o.data)) {
      // Checked now, so a bad source fails before any work; kept, so fit() prepares exactly these.
      const { trainSplit, validSplit, ...common } = o.data;
      const split = (name: typeof trainSplit) =>
        parseOrThrow(LanguageModelDataOptionsSchema, { ...common, split: name }, "Trainer options.data");
      this.#splits = [split(trainSplit), split(validSplit)];
      for (const options of this.#splits) {
        try {
          locateLanguageModelData(options);
        } catch (e) {
          throw new Error(`Trainer options.data: ${(e as Error).message}`, { cause: e });
        }
      }
    }
    const seq2seq = o.model instanceof Seq2SeqModel;
    if ("train" in o.data) {
      // Known data against the model (given, or the one the options describe), before any work.
      const model = o.model as GPT2Model | Seq2SeqModel | z.output<typeof ModelOptionsSchema>;
      const shape =
        model instanceof GPT2Model || model instanceof Seq2SeqModel
          ? modelShape(model)
          : {
              seq2seq: false,
              vocabSize: resolveGPT2Config(model).vocabSize,
              positions: resolveGPT2Config(model).nPositions,
            };
      checkDataFits(o.data.train, shape, "Trainer options.data.train");
      checkDataFits(o.data.valid, shape, "Trainer options.data.valid");
      const rows = isSeq2SeqData(o.data.train) ? o.data.train.sourceLengths.length : o.data.train.lengths.length;
      if (o.batchSize * worldSize > rows) {
        const global = worldSize > 1 ? ` × ${worldSize} ranks` : "";
        throw new RangeError(
          `Trainer options.batchSize: ${o.batchSize}${global} is more than the ${rows} training examples`,
        );
      }
    }
    if (o.fusedHead === true && isBaselineLoss(this.loss)) {
      throw new RangeError(
        `Trainer options.fusedHead: true needs a ce, brier, spherical or dpsm loss, got "${this.loss.kind}"`,
      );
    }
    if (!seq2seq && o.summarySwap > 0) {
      throw new RangeError("Trainer options.summarySwap: applies to encoder-decoders; a GPT-2 takes labelNoise");
    }
    if (seq2seq && !("train" in o.data)) {
      throw new TypeError("Trainer options.data: a Seq2SeqModel takes prepared { train, valid } examples");
    }
    if (!seq2seq) {
      const data = o.data as { contextLength: number } | { train: PackedTokens };
      const contextLength = "train" in data ? data.train.contextLength : data.contextLength;
      const model = o.model as GPT2Model | z.output<typeof ModelOptionsSchema>;
      const nPositions = model instanceof GPT2Model ? model.config.nPositions : resolveGPT2Config(model).nPositions;
      if (contextLength > nPositions) {
        throw new RangeError(
          `Trainer options.data.contextLength: ${contextLength} is larger than the model's ${nPositions} positions`,
        );
      }
    }
    if (o.runDir !== undefined) checkFolderPath(o.runDir, "Trainer options.runDir");
    if (typeof o.log === "string") checkFilePath(o.log, "Trainer options.log");
    else if (o.log === undefined && o.runDir !== undefined) {
      checkFilePath(path.join(o.runDir, "train.jsonl"), "Trainer options.runDir (its train.jsonl)");
    }
    const { tensorboard } = logPaths(o);
    if (tensorboard) {
      checkFolderPath(
        tensorboard,
        o.tensorboard ? "Trainer options.tensorboard" : "Trainer options (its TensorBoard folder)",
      );
    }
    if (o.threads !== undefined) setNumThreads(o.threads);
    this.options = o;
    // A model given as options is built on a worker thread from here on; fit() and ready() wait for it.
    this.#model = given;
    this.#ready = given
      ? Promise.resolve(given)
      : GPT2Model.createAsync({
          ...(o.model as ModelOptions),
          device: o.device,
          // The model's own seed when the options give one, else the run's (the parsed options default it to 0).
          seed: (parsed.model as ModelOptions).seed ?? o.seed,
        }).then((m) => (this.#model = m));
    // A failure surfaces from fit() or ready(); it must not also be reported as an unhandled rejection.
    this.#ready.catch(() => {});
  }

  /**
   * The model trained. A model given as options is built off the event loop after the constructor returns:
   * until it is there (`await trainer.ready()`, or fit() started), reading this throws.
   */
  get model(): GPT2Model | Seq2SeqModel {
    if (!this.#model) {
      throw new Error("Trainer.model: the model is still being built off the event loop; await trainer.ready() first");
    }
    return this.#model;
  }

  /** The model, once built (rejects with the reason it could not be). */
  ready(): Promise<GPT2Model | Seq2SeqModel> {
    return this.#ready;
  }

  /** Prepares the data (cached), then trains until maxSteps, early stopping or `signal` (checkpointed). */
  async fit(options: { signal?: AbortSignal } = {}): Promise<FitResult> {
    if (this.#running) throw new Error("Trainer.fit: already running");
    this.#running = true;
    const o = this.options;
    // Rank 0 writes the run's logs; the other ranks train beside it quietly.
    const root = this.distributed.rank === 0;
    const { log, tensorboard } = root ? logPaths(o) : { log: false as const, tensorboard: false as const };
    let runLog: RunLogWriter | undefined;
    let tensorboardLog: TensorBoardLog | undefined;
    let bar: Progress | undefined;
    try {
      if (this.#used === "timeSteps") throw new Error("Trainer.fit: this trainer's model was moved by timeSteps()");
      const trainer = await this.#nativeTrainer(options.signal);
      this.#used = "fit";
      const config = trainerDocument(this.options, this.loss, this.distributed);
      const start = { time: new Date().toISOString(), fingerprint: trainer.fingerprint, config, build: buildInfo() };
      if (log) {
        const earlier = readRunLog(log).starts.at(-1)?.build;
        const changed = earlier ? numericalDifferences(earlier, start.build) : [];
        if (changed.length) {
          process.emitWarning(
            `Trainer: an earlier session of this run computed with other numerics (${changed.join(", ")}); from ` +
              "the resumed step on its curve will not match an uninterrupted run bit for bit (README: What reproduces)",
            { code: "DPSM_NUMERICS_CHANGED" },
          );
        }
        runLog = new RunLogWriter(log);
        runLog.start(start);
      }
      if (tensorboard) {
        tensorboardLog = new TensorBoardLog(tensorboard, "train" in o.data ? "valid" : o.data.validSplit);
        tensorboardLog.start(start);
      }
      bar =
        o.progress === false || !root
          ? undefined
          : new Progress(o.maxSteps, o.progress === true || process.stderr.isTTY);
      const history = { steps: [] as StepEvent[], evals: [] as EvalEvent[] };
      let done: DoneEvent | undefined;
      const onAbort = () => trainer.abort();
      options.signal?.addEventListener("abort", onAbort, { once: true });
      try {
        await trainer.fit((p) => {
          runLog?.progress(p);
          tensorboardLog?.progress(p);
          switch (p.type) {
            case "step":
              history.steps.push(p);
              bar?.step(p);
              this.emit("step", p);
              break;
            case "eval":
              history.evals.push(p);
              bar?.eval(p);
              this.emit("eval", p);
              break;
            case "checkpoint":
              this.emit("checkpoint", p);
              break;
            case "done":
              done = p;
              this.emit("done", p);
              break;
            case "warning":
              process.emitWarning(p.message, { code: "DPSM_CHECKPOINT" });
              this.emit("warning", p);
              break;
          }
        });
      } finally {
        options.signal?.removeEventListener("abort", onAbort);
      }
      if (!done) throw new Error("Trainer.fit: the native loop ended without a final record");
      return {
        reason: done.reason,
        steps: done.step,
        bestStep: done.bestStep,
        bestNll: done.bestNll,
        elapsedSeconds: done.elapsedSeconds,
        tokensSeen: done.tokensSeen,
        history,
        efficiency: {
          stepMs: median(history.steps.map((s) => s.stepMs)),
          tokensPerSecond: median(history.steps.map((s) => s.tokensPerSecond)),
          peakMemoryBytes: done.peakMemoryBytes,
          evalWallClock: history.evals.map((e) => ({ step: e.step, elapsedSeconds: e.elapsedSeconds })),
        },
        ...(o.runDir ? { runDir: o.runDir } : {}),
      };
    } finally {
      bar?.stop();
      runLog?.close();
      try {
        await tensorboardLog?.close();
      } finally {
        this.#running = false;
      }
    }
  }

  /**
   * The efficiency audit: one full training step (forward, loss, backward, clipping, AdamW) under each of
   * `losses`, timed interleaved in this process on one fixed batch (the first `batchSize` training sequences),
   * after `warmupRounds` untimed rounds. Returns milliseconds per round × loss. It moves the model's weights,
   * so a trainer that timed steps does not fit().
   */
  async timeSteps(
    losses: readonly TrainLossInput[],
    options: { rounds?: number; warmupRounds?: number } = {},
  ): Promise<number[][]> {
    if (this.#running) throw new Error("Trainer.timeSteps: the trainer is busy");
    if (this.#used) throw new Error(`Trainer.timeSteps: this trainer already ran ${this.#used}()`);
    const parsedLosses = parseOrThrow(z.array(z.unknown()).min(1), losses, "Trainer.timeSteps losses").map((l, i) =>
      parseTrainLoss(l as TrainLossInput, `Trainer.timeSteps losses[${i}]`),
    );
    const baseline = parsedLosses.findIndex(isBaselineLoss);
    if (this.options.fusedHead === true && baseline >= 0) {
      throw new RangeError(
        `Trainer.timeSteps losses[${baseline}]: "${parsedLosses[baseline]!.kind}" needs the logits, and this trainer has fusedHead: true`,
      );
    }
    const { rounds, warmupRounds } = parseOrThrow(
      z
        .object({ rounds: z.number().int().min(1).default(30), warmupRounds: z.number().int().min(0).default(3) })
        .strict(),
      options,
      "Trainer.timeSteps options",
    );
    this.#running = true;
    try {
      const trainer = await this.#nativeTrainer();
      this.#used = "timeSteps";
      return await trainer.timeSteps(JSON.stringify({ losses: parsedLosses, rounds, warmupRounds }));
    } finally {
      this.#running = false;
    }
  }

  // The model and the data (prepared and checked), then the native trainer over them.
  async #nativeTrainer(signal?: AbortSignal): Promise<NativeTrainer> {
    const [model, { train, valid }] = await Promise.all([this.#ready, this.#data()]);
    if (signal?.aborted) throw abortError(signal);
    if (this.#splits) {
      // Data prepared here is known only now: checked against the model before the native trainer exists.
      checkDataFits(train, modelShape(model), "Trainer options.data (train split)");
      checkDataFits(valid, modelShape(model), "Trainer options.data (valid split)");
    }
    if (this.options.runDir) ensureFolder(this.options.runDir, "Trainer options.runDir");
    const config = trainerDocument(this.options, this.loss, this.distributed);
    const trainer = await native().createTrainer(
      model.native,
      JSON.stringify(config),
      toNativeData(train),
      toNativeData(valid),
    );
    if (signal?.aborted) throw abortError(signal);
    return trainer;
  }

  async #data(): Promise<{ train: ModelData; valid: ModelData }> {
    const d = this.options.data;
    if ("train" in d) return d;
    const [train, valid] = this.#splits!;
    return { train: await prepareLanguageModelData(train), valid: await prepareLanguageModelData(valid) };
  }
}

// Where a run's logs go (false: nowhere): the JSONL file, by default <runDir>/train.jsonl, and the TensorBoard
// folder, by default beside the JSONL file.
function logPaths(o: Pick<Trainer["options"], "log" | "tensorboard" | "runDir">) {
  const log = o.log ?? (o.runDir ? path.join(o.runDir, "train.jsonl") : false);
  return { log, tensorboard: o.tensorboard ?? (log ? path.join(path.dirname(log), "tensorboard") : false) };
}

// The native trainer's document: every setting that shapes the run, as the schema resolved it. Its canonical
// dump (with the model's config and the data's shape) is the run's resume fingerprint.
function trainerDocument(options: Trainer["options"], loss: TrainLoss, distributed: DistributedDocument) {
  const {
    model: _m,
    data: _d,
    device: _dev,
    threads: _t,
    progress: _p,
    log: _l,
    tensorboard: _tb,
    distributed: _dist,
    ...run
  } = options;
  return {
    ...run,
    dataSeed: run.dataSeed ?? run.seed,
    runDir: run.runDir ? path.resolve(run.runDir) : "",
    loss,
    distributed,
  };
}
/** What the native trainer receives, and what the run log's start record holds. */
export type TrainerDocument = ReturnType<typeof trainerDocument>;

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error("Trainer.fit: aborted before training started");
}

// The terminal view of a run: a bar with the latest loss, α, lr and throughput; without a terminal, a line
// every 10 % of the steps.
class Progress {
  #bar: cliProgress.SingleBar | undefined;
  #lastLine = 0;
  #eval = "";

  constructor(
    private readonly total: number,
    tty: boolean,
  ) {
    if (tty) {
      // Loaded here, for a terminal's bar only, not when the package is imported (test/package.test.ts).
      const { SingleBar, Presets } = createRequire(import.meta.url)("cli-progress") as typeof cliProgress;
      this.#bar = new SingleBar(
        {
          format: "{bar} {value}/{total} | loss {loss} | α {alpha} | lr {lr} | {tps} tok/s | {elapsed}s{eval}",
          hideCursor: true,
          stream: process.stderr,
          barsize: 24,
        },
        Presets.shades_classic,
      );
      this.#bar.start(total, 0, { loss: "–", alpha: "–", lr: "–", tps: "–", elapsed: "0", eval: "" });
    }
  }

  step(p: StepEvent): void {
    const fields = {
      loss: p.loss.toFixed(4),
      alpha: p.alpha.toFixed(3),
      lr: p.lr.toExponential(2),
      tps: Math.round(p.tokensPerSecond).toLocaleString("en-US"),
      elapsed: p.elapsedSeconds.toFixed(0),
      eval: this.#eval,
    };
    if (this.#bar) {
      this.#bar.update(p.step, fields);
    } else if (p.step === this.total || p.step - this.#lastLine >= Math.max(1, Math.ceil(this.total / 10))) {
      this.#lastLine = p.step;
      process.stderr.write(
        `step ${p.step}/${this.total}  loss ${fields.loss}  α ${fields.alpha}  lr ${fields.lr}  ${fields.tps} tok/s  ${fields.elapsed}s${this.#eval}\n`,
      );
    }
  }

  eval(e: EvalEvent): void {
    this.#eval = ` | val ppl ${e.metrics.ppl.toFixed(1)} ece ${e.metrics.ece10.toFixed(3)}${e.improved ? " *" : ""}`;
  }

  stop(): void {
    this.#bar?.stop();
  }
}
