// The Trainer's options, declared once: what a run trains (model, loss, data) and the run settings (optimiser,
// schedule, evaluation, precision, noise, logging). Experiments nest the run settings (TrainerSettingsSchema)
// instead of restating them. Also the document the native trainer receives, whose canonical dump is a run's
// resume fingerprint, and where a run's logs go.
import path from "node:path";

import { z } from "zod";

import { DeviceSchema, parseOrThrow, type TrainLoss, type TrainLossInput } from "./config.ts";
import { checkModelData, type ModelData } from "./data/model-data.ts";
import { LanguageModelDataOptionsSchema } from "./data/prepare.ts";
import { type DistributedDocument, DistributedOptionsSchema } from "./distributed.ts";
import type { ModelOptions } from "./models/gpt2.ts";
import type { LanguageModel } from "./models/language-model.ts";

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
export function checkDataOption(data: unknown): void {
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
    model: z
      .custom<LanguageModel | ModelOptions>(
        (v) => typeof v === "object" && v !== null,
        "expected a model (GPT2Model, Seq2SeqModel) or GPT-2 model options",
      )
      .describe("a model to train, or how to create one (checked by ModelOptionsSchema in the constructor)"),
    loss: z
      .custom<TrainLossInput>((v) => typeof v === "object" && v !== null, "expected a loss config object")
      .describe(
        "a DPSMLoss config (ce, brier, spherical, dpsm with its α schedule) or a baseline (label_smoothing, focal)",
      ),
    data: DataSchema.describe("where the tokens come from (prepared once, cached), or prepared splits"),
    batchSize: z
      .number()
      .int()
      .min(1)
      .default(8)
      .describe(
        "sequences (encoder–decoders: examples) per micro-batch on each rank (an experiment's: global, shared among ranks)",
      ),
    gradAccumulation: z.number().int().min(1).default(1).describe("micro-batches per optimiser step"),
    maxSteps: z.number().int().min(1).describe("optimiser steps"),
    lr: z.number().positive().finite().default(6e-4).describe("peak learning rate"),
    lrWarmupSteps: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe("linear learning-rate warm-up steps, then cosine decay to minLrRatio × lr at maxSteps"),
    minLrRatio: z
      .number()
      .min(0)
      .max(1)
      .default(0.1)
      .describe("where the cosine decay ends, as a share of the peak learning rate"),
    weightDecay: z
      .number()
      .min(0)
      .finite()
      .default(0.1)
      .describe("AdamW's decoupled weight decay, on matrices and embeddings (not biases or LayerNorms)"),
    betas: z
      .tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)])
      .default([0.9, 0.95])
      .describe("AdamW's β1, β2"),
    eps: z.number().positive().default(1e-8).describe("AdamW's ε (torch's default: 1e-8)"),
    gradClip: z
      .number()
      .min(0)
      .finite()
      .default(1)
      .describe("the gradient's global norm is clipped to this (0: no clipping)"),
    evalEvery: z.number().int().min(1).default(100).describe("steps between validation evaluations"),
    evalMaxSequences: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe("validation sequences (encoder–decoders: examples) per evaluation (0: all)"),
    patience: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe("early stopping: evaluations without a better validation NLL (0: off)"),
    seed: z.number().int().min(0).default(0).describe("model initialisation and dropout"),
    dataSeed: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe(
        "batch order and label noise; defaults to `seed`. Keep it fixed to give every variation the same batches.",
      ),
    runDir: z
      .string()
      .min(1)
      .optional()
      .describe("checkpoints (last/, best/) and the JSONL log; a run dir with a checkpoint of the same run is resumed"),
    device: DeviceSchema.default("cpu").describe("cpu, cuda or cuda:N"),
    precision: z
      .enum(["fp32", "bf16"])
      .default("fp32")
      .describe(
        "fp32, or bf16 autocast with fp32 master weights (CUDA; on the CPU it works, but is rarely faster than fp32)",
      ),
    fusedHead: z
      .union([z.boolean(), z.literal("auto")])
      .default("auto")
      .describe(
        "the LM head and loss fused, a chunk of tokens at a time, so the batch's N × V logits and their gradient never exist (auto: for the ce, brier, spherical and dpsm losses; the label_smoothing and focal baselines need the logits); the same curve to float rounding either way, so not part of the run's resume fingerprint",
      ),
    updateRatioEvery: z
      .number()
      .int()
      .min(0)
      .default(1)
      .describe(
        "the update-to-weight ratio ‖Δθ‖/‖θ‖ (a step record's updateRatio, the reports' diagnostics chart) is measured on steps 1, 1 + k, 1 + 2k, … (k = this; 0: never); it costs a copy and two norms of the weights on those steps, and the other steps' records leave it out; not part of the run's resume fingerprint",
      ),
    threads: z.number().int().min(1).optional().describe("libtorch threads (default: the machine's cores)"),
    labelNoise: z
      .object({
        stepFraction: z.number().min(0).max(1).describe("share of the steps whose batch is noisy"),
        tokenFraction: z.number().min(0).max(1).describe("share of a noisy batch's targets replaced at random"),
      })
      .strict()
      .default({ stepFraction: 0, tokenFraction: 0 })
      .describe("label noise: for this share of steps, this share of the batch's targets replaced by random tokens"),
    summarySwap: z
      .number()
      .min(0)
      .max(1)
      .default(0)
      .describe(
        "summary-swap noise (encoder–decoders): the probability that a row trains on another row's reference of the same batch, drawn per dataSeed and batch by the rule in lib/data/summary-noise.ts (the seed's robustness setting is 0.15)",
      ),
    progress: z
      .union([z.boolean(), z.literal("auto")])
      .default("auto")
      .describe("a progress bar on stderr (auto: when stderr is a terminal, else a line every 10 %)"),
    log: z
      .union([z.string().min(1), z.literal(false)])
      .optional()
      .describe("JSONL log file (default: <runDir>/train.jsonl; false: none)"),
    tensorboard: z
      .union([z.string().min(1), z.literal(false)])
      .optional()
      .describe("TensorBoard event files (default: tensorboard/ beside the JSONL log, none without one; false: none)"),
    distributed: z
      .union([z.literal(false), z.literal("env"), z.custom<z.input<typeof DistributedOptionsSchema>>(isObject)])
      .default("env")
      .describe(
        "data-parallel training, one process per rank (lib/distributed.ts): env takes RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT from the environment as `dpsm-native launch` (or torchrun) sets them, one process when they are absent; or the same as options; false: one process. batchSize and gradAccumulation are per rank. Rank 0 evaluates, checkpoints and writes the logs; every rank resumes from its checkpoint.",
      ),
  })
  .strict();
export type TrainerOptions = z.input<typeof TrainerOptionsSchema>;
/** The options as the schema resolved them, the model given or described. */
export type ResolvedTrainerOptions = Readonly<
  Omit<z.output<typeof TrainerOptionsSchema>, "model"> & { model: LanguageModel | ModelOptions }
>;

function isObject(v: unknown): boolean {
  return typeof v === "object" && v !== null;
}

// Where a run's logs go (false: nowhere): the JSONL file, by default <runDir>/train.jsonl, and the TensorBoard
// folder, by default beside the JSONL file.
export function logPaths(o: Pick<ResolvedTrainerOptions, "log" | "tensorboard" | "runDir">) {
  const log = o.log ?? (o.runDir ? path.join(o.runDir, "train.jsonl") : false);
  return { log, tensorboard: o.tensorboard ?? (log ? path.join(path.dirname(log), "tensorboard") : false) };
}

// The native trainer's document: every setting that shapes the run, as the schema resolved it. Its canonical
// dump (with the model's config and the data's shape; lib/trainer.ts adds the data's hash) is the run's resume
// fingerprint.
export function trainerDocument(options: ResolvedTrainerOptions, loss: TrainLoss, distributed: DistributedDocument) {
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

/**
 * The run settings an experiment nests (picked from the Trainer's own schema, never restated): every Trainer option
 * but what each of its jobs decides itself — the model, loss and data, the seeds, the run folder and its logs,
 * the noise settings, the process group. A new Trainer option lands here, and so on every experiment's command
 * line.
 */
export const TrainerSettingsSchema = TrainerOptionsSchema.omit({
  model: true,
  loss: true,
  data: true,
  seed: true,
  dataSeed: true,
  runDir: true,
  progress: true,
  log: true,
  tensorboard: true,
  distributed: true,
  labelNoise: true,
  summarySwap: true,
});
export type TrainerSettings = z.output<typeof TrainerSettingsSchema>;
