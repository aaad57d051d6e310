// Trainer: configures a GPT-2 language-model run and watches it. The step loop itself runs in C++ on a
// worker thread (native/core/train/trainer.cpp); this side validates the config, prepares the data once,
// relays progress as events, draws the progress bar and writes the JSONL log. Nothing heavy runs on the event
// loop: the model (when given as options) and the native trainer are built on worker threads, and the data is
// read and hashed in small slices.
import { createHash } from "node:crypto";
import { EventEmitter } from "node:events";
import fs from "node:fs";
import path from "node:path";

import { z } from "zod";

import { isBaselineLoss, parseOrThrow, parseTrainLoss, type TrainLoss, type TrainLossInput } from "./config.ts";
import { checkDataFits, isSeq2SeqData, type ModelData, toNativeData } from "./data/model-data.ts";
import {
  type LanguageModelDataOptions,
  LanguageModelDataOptionsSchema,
  locateLanguageModelData,
  prepareLanguageModelData,
} from "./data/prepare.ts";
import { type DistributedDocument, resolveDistributed } from "./distributed.ts";
import { checkFilePath, checkFolderPath, ensureFolder } from "./io/paths.ts";
import { median } from "./metrics/stats.ts";
import { GPT2Model, type ModelOptions, ModelOptionsSchema, resolveGPT2Config } from "./models/gpt2.ts";
import { isLanguageModel, type LanguageModel } from "./models/language-model.ts";
import {
  buildInfo,
  native,
  type NativeProgress,
  type NativeTrainer,
  numericalDifferences,
  setNumThreads,
} from "./native.ts";
import { ProgressBar } from "./progress-bar.ts";
import { readRunLog, RunLogWriter } from "./runlog.ts";
import { TensorBoardLog } from "./tensorboard-log.ts";
import { StepEnergyMeter } from "./energy.ts";
import {
  checkDataOption,
  logPaths,
  type ResolvedTrainerOptions,
  trainerDocument,
  type TrainerOptions,
  TrainerOptionsSchema,
} from "./trainer-options.ts";

export type { TrainLossInput } from "./config.ts";
export {
  TrainerOptionsSchema,
  TrainerSettingsSchema,
  type TrainerOptions,
  type TrainerSettings,
} from "./trainer-options.ts";

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
    /**
     * this session's energy from its first step on (evaluations included): the GPU's through NVML on CUDA, the
     * CPU packages' through RAPL on the CPU (lib/energy.ts); `unavailable` says why not where no meter is readable
     */
    energy: { kind: "gpu" | "cpu"; joules?: number; unavailable?: string };
  };
  runDir?: string;
}

function sessionEnergy(meter: StepEnergyMeter | undefined): FitResult["efficiency"]["energy"] {
  if (!meter) return { kind: "cpu", unavailable: "measured by rank 0 only" };
  const joules = meter.total();
  const why = meter.unavailable;
  return { kind: meter.source.kind, ...(joules !== undefined ? { joules } : {}), ...(why ? { unavailable: why } : {}) };
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
  readonly options: ResolvedTrainerOptions;
  readonly loss: TrainLoss;
  #model: LanguageModel | undefined;
  readonly #ready: Promise<LanguageModel>;
  #running = false;
  /** what this trainer's model already went through: a fit, or the timing audit (which moves its weights) */
  #used: "fit" | "timeSteps" | undefined;
  #splits: [LanguageModelDataOptions, LanguageModelDataOptions] | undefined;
  /** the document the native trainer was made with (trainerDocument and the training data's hash) */
  #document: ReturnType<typeof trainerDocument> | undefined;
  /** this process's place among the ranks (one process: rank 0 of 1) */
  readonly distributed: Readonly<DistributedDocument>;

  constructor(options: TrainerOptions) {
    super();
    checkDataOption((options as { data?: unknown } | null)?.data);
    const parsed = parseOrThrow(TrainerOptionsSchema, options, "Trainer options");
    const given = isLanguageModel(parsed.model) ? parsed.model : undefined;
    const described = given ? undefined : parseOrThrow(ModelOptionsSchema, parsed.model, "Trainer options.model");
    const o = { ...parsed, model: given ?? described! };
    this.loss = parseTrainLoss(o.loss, "Trainer options.loss");
    this.distributed = resolveDistributed(o.distributed, "Trainer options.distributed");
    const { worldSize } = this.distributed;
    if (worldSize > 1 && buildInfo().distributed === "") {
      throw new RangeError(
        `Trainer options.distributed: ${worldSize} ranks, but this build of dpsm-native has no process-group ` +
          "backend (built without Gloo's headers; see native/setup.sh)",
      );
    }
    const device = given ? given.device : (described!.device ?? "cpu");
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
    // What data the model takes: the given model's, or that of the GPT-2 the options describe.
    const shape = given?.shape ?? describedShape(described!);
    const { seq2seq } = shape;
    if ("train" in o.data) {
      // Known data against the model (given, or the one the options describe), before any work.
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
      throw new TypeError("Trainer options.data: an encoder-decoder takes prepared { train, valid } examples");
    }
    if (!seq2seq && !("train" in o.data) && o.data.contextLength > shape.positions) {
      throw new RangeError(
        `Trainer options.data.contextLength: ${o.data.contextLength} is larger than the model's ${shape.positions} positions`,
      );
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
          ...described!,
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
  get model(): LanguageModel {
    if (!this.#model) {
      throw new Error("Trainer.model: the model is still being built off the event loop; await trainer.ready() first");
    }
    return this.#model;
  }

  /** The model, once built (rejects with the reason it could not be). */
  ready(): Promise<LanguageModel> {
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
    let bar: ProgressBar | undefined;
    try {
      if (this.#used === "timeSteps") throw new Error("Trainer.fit: this trainer's model was moved by timeSteps()");
      const trainer = await this.#nativeTrainer(options.signal);
      this.#used = "fit";
      const config = this.#document!;
      const start = { time: new Date().toISOString(), fingerprint: trainer.fingerprint, config, build: buildInfo() };
      if (log) {
        const earlier = readRunLog(log).starts.at(-1)?.build;
        const changed = earlier ? numericalDifferences(earlier, start.build) : [];
        if (changed.length) {
          process.emitWarning(
            `Trainer: an earlier session of this run computed with other numerics (${changed.join(", ")}); from ` +
              "the resumed step on its curve will not match an uninterrupted run bit for bit (docs/design/reproducibility.md)",
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
          : new ProgressBar(o.maxSteps, o.progress === true || process.stderr.isTTY);
      const history = { steps: [] as StepEvent[], evals: [] as EvalEvent[] };
      let done: DoneEvent | undefined;
      const meter = root ? new StepEnergyMeter(o.device) : undefined;
      const onAbort = () => trainer.abort();
      options.signal?.addEventListener("abort", onAbort, { once: true });
      try {
        await trainer.fit((p) => {
          if (p.type === "step") Object.assign(p, meter?.sample(p.step));
          else meter?.rebase();
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
          energy: sessionEnergy(meter),
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
   * `losses`, timed interleaved in this process on one fixed step of this trainer's shape (`gradAccumulation`
   * micro-batches of `batchSize` sequences: the first `batchSize × gradAccumulation` training sequences, made on
   * the device beforehand), after `warmupRounds` untimed rounds. Returns milliseconds per round × loss. It moves
   * the model's weights, so a trainer that timed steps does not fit(). `onRound(done, total)` is called after each
   * round (warm-up rounds included), for progress: the rounds run one native call each, continuing one sequence.
   */
  async timeSteps(
    losses: readonly TrainLossInput[],
    options: { rounds?: number; warmupRounds?: number; onRound?: (done: number, total: number) => void } = {},
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
    const { onRound, ...counts } = options ?? {};
    if (onRound !== undefined && typeof onRound !== "function") {
      throw new TypeError("Trainer.timeSteps options.onRound: expected a function (done, total) => void");
    }
    const { rounds, warmupRounds } = parseOrThrow(
      z
        .object({ rounds: z.number().int().min(1).default(30), warmupRounds: z.number().int().min(0).default(3) })
        .strict(),
      counts,
      "Trainer.timeSteps options",
    );
    this.#running = true;
    try {
      const trainer = await this.#nativeTrainer();
      this.#used = "timeSteps";
      const total = warmupRounds + rounds;
      const ms: number[][] = [];
      for (let done = 0; done < total; done++) {
        const warmup = done < warmupRounds;
        const part = { losses: parsedLosses, rounds: warmup ? 0 : 1, warmupRounds: warmup ? 1 : 0, firstRound: done };
        ms.push(...(await trainer.timeSteps(JSON.stringify(part))));
        onRound?.(done + 1, total);
      }
      return ms;
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
      checkDataFits(train, model.shape, "Trainer options.data (train split)");
      checkDataFits(valid, model.shape, "Trainer options.data (valid split)");
    }
    if (this.options.runDir) ensureFolder(this.options.runDir, "Trainer options.runDir");
    // The resume fingerprint (the native trainer's document, the model's config, the data's shape) covers the
    // training examples' content too: resumed on other examples of the same shape, a run is refused as another
    // run. A checkpoint saved before the fingerprint held the hash resumes as it did (its data cannot be checked).
    const legacy = this.options.runDir ? savedWithoutDataHash(this.options.runDir) : false;
    const config = {
      ...trainerDocument(this.options, this.loss, this.distributed),
      ...(legacy ? {} : { dataHash: await dataHash(train) }),
    };
    if (signal?.aborted) throw abortError(signal);
    this.#document = config;
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

// SHA-256 of the training examples' arrays (ids and lengths), in slices of 4 MiB (~8 ms each on these 2 cores)
// with a turn of the event loop between them: WikiText-103's ~470 MB of ids take about a second, never holding
// the loop for long.
async function dataHash(d: ModelData): Promise<string> {
  const arrays = isSeq2SeqData(d)
    ? [d.sourceTokens, d.sourceLengths, d.targetTokens, d.targetLengths]
    : [d.tokens, d.lengths];
  const hash = createHash("sha256");
  const SLICE = 4 << 20;
  for (const a of arrays) {
    const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    for (let off = 0; off < bytes.length; off += SLICE) {
      if (off > 0) await new Promise((resolve) => setImmediate(resolve));
      hash.update(bytes.subarray(off, off + SLICE));
    }
    hash.update(`;${a.length};`); // where one array ends and the next begins
  }
  return hash.digest("hex");
}

// Whether runDir's checkpoint (last/, else best/) was saved with a fingerprint that holds no data hash: one made
// before the fingerprint covered the data's content. Reads only the safetensors header's metadata; anything
// unreadable is left for the native resume to judge (false).
function savedWithoutDataHash(runDir: string): boolean {
  for (const which of ["last", "best"]) {
    const file = path.join(runDir, which, "training_state.safetensors");
    let fd: number | undefined;
    try {
      if (!fs.statSync(file).isFile()) continue; // a FIFO would block the read
      fd = fs.openSync(file, "r");
      const head = Buffer.alloc(8);
      if (fs.readSync(fd, head, 0, 8, 0) !== 8) continue;
      const n = head.readBigUInt64LE(0);
      if (n > 64n << 20n) continue;
      const header = Buffer.alloc(Number(n));
      if (fs.readSync(fd, header, 0, header.length, 8) !== header.length) continue;
      const meta = (JSON.parse(header.toString("utf8")) as { __metadata__?: { fingerprint?: string } }).__metadata__;
      const fingerprint = JSON.parse(meta?.fingerprint ?? "null") as { trainer?: Record<string, unknown> } | null;
      if (fingerprint?.trainer) return !Object.hasOwn(fingerprint.trainer, "dataHash");
    } catch {
      // unreadable: the native resume names what is wrong
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  }
  return false;
}

// The data shape of the GPT-2 that model options describe (before it is built).
function describedShape(options: z.output<typeof ModelOptionsSchema>) {
  const c = resolveGPT2Config(options);
  return {
    seq2seq: false,
    vocabSize: c.vocab_size,
    positions: c.n_positions,
  };
}

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error("Trainer.fit: aborted before training started");
}
