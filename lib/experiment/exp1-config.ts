// Experiment 1 (the seed's "exp-1-language-modelling-scaling"): GPT-2 trained from scratch with CE, Brier and
// DPSM. Its settings, the three profiles, and the list of runs they imply.
import { z } from "zod";

import { parseOrThrow } from "../config.ts";
import { OOD_NAMES, type OodName } from "../data/ood.ts";
import { MODEL_SIZES, type ModelSize } from "../model.ts";
import type { TrainLossInput } from "../trainer.ts";

export const EXP1_VARIATIONS = ["ce", "brier", "dpsm-linear", "dpsm-cosine", "dpsm-fixed-0.5"] as const;
export type Exp1Variation = (typeof EXP1_VARIATIONS)[number];
/** Baselines: two trained (label smoothing 0.1, focal γ = 2), one post hoc (temperature scaling of the CE runs). */
export const EXP1_BASELINES = ["label-smoothing", "focal", "ce+tempscale"] as const;
export type Exp1Baseline = (typeof EXP1_BASELINES)[number];
export const PROFILES = ["quick", "wt2-small", "full"] as const;
export type Profile = (typeof PROFILES)[number];

const int = (min: number) => z.number().int().min(min);

export const Exp1ConfigSchema = z
  .object({
    profile: z.enum(PROFILES),
    /** GPT-2 sizes, each trained with every variation */
    models: z.array(z.enum(MODEL_SIZES)).min(1),
    /** "wikitext-2", "wikitext-103" (folders of the data folder) or any WikiText folder */
    dataset: z.union([z.enum(["wikitext-2", "wikitext-103"]), z.object({ dir: z.string().min(1), layout: z.enum(["tokens", "raw", "parquet"]).optional() }).strict()]),
    dataDir: z.string().min(1).optional(),
    contextLength: int(2),
    batchSize: int(1),
    gradAccumulation: int(1),
    maxSteps: int(1),
    /** learning rate per model size (GPT-2 paper: larger models, smaller rates) */
    lr: z.record(z.enum(MODEL_SIZES), z.number().positive()).or(z.number().positive()),
    lrWarmupSteps: int(0),
    evalEvery: int(1),
    /** validation sequences per evaluation during training (0: all) */
    evalMaxSequences: int(0),
    /** test / OOD sequences for the final evaluation (0: all) */
    testMaxSequences: int(0),
    oodMaxSequences: int(0),
    /** early stopping: evaluations without a better validation NLL (0: off) */
    patience: int(0),
    seeds: z.array(int(0)).min(1),
    variations: z.array(z.enum(EXP1_VARIATIONS)).min(1),
    /** DPSM warm-up as a share of maxSteps (the seed: 10 %) */
    dpsmWarmup: z.number().gt(0).max(1),
    /** extra dpsm-linear runs at these warm-up shares (the seed's sweep: 5 %, 20 %), on the first model */
    warmupSweep: z.array(z.number().gt(0).max(1)),
    baselines: z.array(z.enum(EXP1_BASELINES)),
    /** robustness: for stepFraction of the steps, tokenFraction of the batch's targets replaced at random */
    labelNoise: z
      .object({ stepFraction: z.number().min(0).max(1), tokenFraction: z.number().min(0).max(1), variations: z.array(z.enum(EXP1_VARIATIONS)).min(1) })
      .strict()
      .or(z.literal(false)),
    /** out-of-domain sets every run is evaluated on */
    ood: z.array(z.enum(OOD_NAMES as [OodName, ...OodName[]])),
    device: z.string().regex(/^(cpu|cuda(:\d+)?)$/, "expected cpu, cuda or cuda:N"),
    precision: z.enum(["fp32", "bf16"]),
    threads: int(1).optional(),
    /** the qualitative sample: every variation continues the same prompt */
    sample: z.object({ prompt: z.string().min(1), maxNewTokens: int(1), topK: int(1) }).strict(),
  })
  .strict();
export type Exp1Config = z.output<typeof Exp1ConfigSchema>;
export type Exp1ConfigInput = z.input<typeof Exp1ConfigSchema>;

const SAMPLE = { prompt: "The history of the city began", maxNewTokens: 40, topK: 1 };

const WT2_SMALL: Exp1Config = {
  profile: "wt2-small",
  models: ["small"],
  dataset: "wikitext-2",
  contextLength: 1024,
  batchSize: 8,
  gradAccumulation: 4,
  maxSteps: 3000,
  lr: 6e-4,
  lrWarmupSteps: 200,
  evalEvery: 200,
  evalMaxSequences: 0,
  testMaxSequences: 0,
  oodMaxSequences: 0,
  patience: 5,
  seeds: [0, 1, 2],
  variations: [...EXP1_VARIATIONS],
  dpsmWarmup: 0.1,
  warmupSweep: [0.05, 0.2],
  baselines: [...EXP1_BASELINES],
  labelNoise: { stepFraction: 0.05, tokenFraction: 0.1, variations: ["ce", "brier", "dpsm-linear"] },
  ood: [...OOD_NAMES],
  device: "cuda",
  precision: "bf16",
  sample: SAMPLE,
};

/** The profiles: quick (this 2-core CPU, ≤ 15 min), wt2-small (one GPU), full (the seed's design). */
export const PROFILE_DEFAULTS: Record<Profile, Exp1Config> = {
  quick: {
    profile: "quick",
    models: ["tiny"],
    dataset: "wikitext-2",
    contextLength: 128,
    batchSize: 8,
    gradAccumulation: 1,
    maxSteps: 150,
    lr: 3e-3,
    lrWarmupSteps: 15,
    evalEvery: 25,
    evalMaxSequences: 32,
    testMaxSequences: 96,
    oodMaxSequences: 24,
    patience: 0,
    seeds: [0],
    variations: [...EXP1_VARIATIONS],
    dpsmWarmup: 0.1,
    warmupSweep: [],
    baselines: ["ce+tempscale"],
    labelNoise: { stepFraction: 0.05, tokenFraction: 0.1, variations: ["ce", "dpsm-linear"] },
    ood: [...OOD_NAMES],
    device: "cpu",
    precision: "fp32",
    sample: SAMPLE,
  },
  "wt2-small": WT2_SMALL,
  // The seed's design: wt2-small's settings at three scales on WikiText-103.
  full: {
    ...WT2_SMALL,
    profile: "full",
    models: ["small", "medium", "large"],
    dataset: "wikitext-103",
    gradAccumulation: 8,
    maxSteps: 20000,
    lr: { tiny: 3e-3, small: 6e-4, medium: 3e-4, large: 2.5e-4 },
    lrWarmupSteps: 700,
    evalEvery: 1000,
  },
};

/** A profile's settings with `overrides` applied, validated. */
export function resolveExp1Config(profile: Profile, overrides: Partial<Exp1ConfigInput> = {}): Exp1Config {
  const base = PROFILE_DEFAULTS[profile];
  if (!base) throw new RangeError(`profile: expected one of ${PROFILES.join(", ")}, got ${JSON.stringify(profile)}`);
  return parseOrThrow(Exp1ConfigSchema, { ...base, ...overrides, profile }, "exp1 config");
}

export type Setting = "clean" | "label-noise";

/** One training run of the experiment. */
export interface Exp1Job {
  id: string;
  model: ModelSize;
  variation: Exp1Variation | "label-smoothing" | "focal";
  seed: number;
  setting: Setting;
  /** DPSM warm-up share of maxSteps (DPSM variations only) */
  warmup?: number;
  loss: TrainLossInput;
}

function lossOf(variation: Exp1Job["variation"], warmupSteps: number): TrainLossInput {
  switch (variation) {
    case "ce":
      return { kind: "ce" };
    case "brier":
      return { kind: "brier" };
    case "dpsm-linear":
      return { kind: "dpsm", schedule: "linear", warmupSteps };
    case "dpsm-cosine":
      return { kind: "dpsm", schedule: "cosine", warmupSteps };
    case "dpsm-fixed-0.5":
      return { kind: "dpsm", schedule: "fixed", alpha: 0.5 };
    case "label-smoothing":
      return { kind: "label_smoothing", smoothing: 0.1 };
    case "focal":
      return { kind: "focal", gamma: 2 };
  }
}

/** Every run the config implies, in the order they are trained (main variations first, seed by seed). */
export function exp1Jobs(c: Exp1Config): Exp1Job[] {
  const jobs: Exp1Job[] = [];
  const warmupSteps = (share: number) => Math.max(1, Math.round(share * c.maxSteps));
  const add = (model: ModelSize, variation: Exp1Job["variation"], seed: number, setting: Setting, warmup?: number) => {
    const dpsm = variation === "dpsm-linear" || variation === "dpsm-cosine";
    const w = dpsm ? (warmup ?? c.dpsmWarmup) : undefined;
    const tag = dpsm && warmup !== undefined ? `-w${Math.round(warmup * 100)}` : "";
    jobs.push({
      id: `${model}/${variation}${tag}${setting === "label-noise" ? "-noise" : ""}/seed${seed}`,
      model,
      variation,
      seed,
      setting,
      ...(w !== undefined ? { warmup: w } : {}),
      loss: lossOf(variation, warmupSteps(w ?? c.dpsmWarmup)),
    });
  };
  for (const model of c.models) {
    for (const seed of c.seeds) for (const v of c.variations) add(model, v, seed, "clean");
    for (const seed of c.seeds) {
      if (c.baselines.includes("label-smoothing")) add(model, "label-smoothing", seed, "clean");
      if (c.baselines.includes("focal")) add(model, "focal", seed, "clean");
    }
    if (c.labelNoise) for (const seed of c.seeds) for (const v of c.labelNoise.variations) add(model, v, seed, "label-noise");
  }
  const first = c.models[0]!;
  for (const share of c.warmupSweep) {
    if (Math.abs(share - c.dpsmWarmup) < 1e-9) continue;
    for (const seed of c.seeds) add(first, "dpsm-linear", seed, "clean", share);
  }
  return jobs;
}

export function lrFor(c: Exp1Config, model: ModelSize): number {
  return typeof c.lr === "number" ? c.lr : (c.lr[model] ?? 6e-4);
}
