// Experiment 1's settings: GPT-2 trained from scratch on WikiText with CE, Brier and DPSM, and its profiles.
import { z } from "zod";

import { DeviceSchema } from "../../config.ts";
import { OOD_NAMES, type OodName } from "../../data/ood.ts";
import { WIKITEXT_NAMES } from "../../data/prepare.ts";
import { WIKITEXT_LAYOUTS } from "../../data/wikitext.ts";
import { MODEL_SIZES } from "../../models/gpt2.ts";
import type { ConfigOf } from "../framework/spec.ts";

export const VARIATIONS = ["ce", "brier", "dpsm-linear", "dpsm-cosine", "dpsm-fixed-0.5"] as const;
export type Variation = (typeof VARIATIONS)[number];
/** Baselines: two trained (label smoothing 0.1, focal γ = 2), one post hoc (temperature scaling of the CE runs). */
export const BASELINES = ["label-smoothing", "focal", "ce+tempscale"] as const;
export type Baseline = (typeof BASELINES)[number];
/** The post-hoc baseline: clean CE runs evaluated with a temperature fitted on the validation split. */
export const TEMPSCALE = "ce+tempscale" satisfies Baseline;
export const SETTINGS = ["clean", "label-noise"] as const;
export type Setting = (typeof SETTINGS)[number];

const int = (min: number) => z.number().int().min(min);
const share = () => z.number().gt(0).max(1);

export const Exp1SettingsSchema = z
  .object({
    models: z.array(z.enum(MODEL_SIZES)).min(1).describe("GPT-2 sizes, each trained with every variation"),
    dataset: z
      .union([
        z.enum(WIKITEXT_NAMES),
        z
          .object({
            dir: z.string().min(1).describe("any WikiText folder, instead of one of the data folder"),
            layout: z.enum(WIKITEXT_LAYOUTS).optional().describe("its layout (default: the one it holds)"),
          })
          .strict(),
      ])
      .describe("a WikiText folder of the data folder"),
    dataDir: z
      .string()
      .min(1)
      .optional()
      .describe("the data folder (default: DPSM_DATA_DIR, else ~/.cache/dpsm-native/data; missing sets are fetched)"),
    contextLength: int(2).describe("tokens per training sequence"),
    batchSize: int(1).describe("sequences per micro-batch"),
    gradAccumulation: int(1).describe("micro-batches per optimiser step"),
    maxSteps: int(1).describe("optimiser steps"),
    lr: z
      .record(z.enum(MODEL_SIZES), z.number().positive())
      .or(z.number().positive())
      .describe("peak learning rate, or one per model size (GPT-2 paper: larger models, smaller rates)"),
    lrWarmupSteps: int(0).describe("linear learning-rate warm-up steps, then cosine decay"),
    adamEps: z.number().positive().describe("AdamW's ε (torch's default: 1e-8)"),
    evalEvery: int(1).describe("steps between validation evaluations"),
    evalMaxSequences: int(0).describe("validation sequences per evaluation during training (0: all)"),
    testMaxSequences: int(0).describe("test sequences for the final evaluation (0: all)"),
    oodMaxSequences: int(0).describe("sequences per out-of-domain set for the final evaluation (0: all)"),
    patience: int(0).describe("early stopping: evaluations without a better validation NLL (0: off)"),
    seeds: z.array(int(0)).min(1).describe("seeds; each gives every variation the same initialisation and batches"),
    variations: z.array(z.enum(VARIATIONS)).min(1).describe("the losses trained"),
    dpsmWarmup: share().describe("DPSM warm-up as a share of maxSteps (the seed: 0.1)"),
    warmupSweep: z.array(share()).describe("extra dpsm-linear runs at these warm-up shares, on the first model"),
    epsAblation: z
      .object({
        eps: z.number().positive().describe("the AdamW ε of the ablation runs"),
        variations: z.array(z.enum(VARIATIONS)).min(1).describe("the variations also trained with it"),
      })
      .strict()
      .or(z.literal(false))
      .describe("extra runs on the first model with another AdamW ε (Brier's gradients can be of ε's order)"),
    efficiencyAudit: z
      .object({
        tokens: int(1).describe("tokens of the one fixed batch (rounded to whole sequences)"),
        rounds: int(2).describe("timed rounds; each times one step of every variation"),
        warmupRounds: int(0).describe("untimed rounds first"),
      })
      .strict()
      .or(z.literal(false))
      .describe("the efficiency audit: every variation's full training step timed interleaved in one process"),
    baselines: z.array(z.enum(BASELINES)).describe("baselines beside the variations"),
    labelNoise: z
      .object({
        stepFraction: z.number().min(0).max(1).describe("share of the steps whose batch is noisy"),
        tokenFraction: z.number().min(0).max(1).describe("share of a noisy batch's targets replaced at random"),
        variations: z.array(z.enum(VARIATIONS)).min(1).describe("the variations also trained with label noise"),
      })
      .strict()
      .or(z.literal(false))
      .describe("robustness runs with label noise"),
    ood: z.array(z.enum(OOD_NAMES as [OodName, ...OodName[]])).describe("out-of-domain sets every run is evaluated on"),
    device: DeviceSchema.describe("cpu, cuda or cuda:N"),
    precision: z.enum(["fp32", "bf16"]).describe("fp32, or bf16 autocast with fp32 master weights"),
    threads: int(1).optional().describe("libtorch threads (default: the machine's cores)"),
    sample: z
      .object({
        prompt: z.string().min(1).describe("the prompt every variation continues"),
        maxNewTokens: int(1).describe("tokens generated"),
        topK: int(1).describe("sampling from the k most likely tokens (1: greedy)"),
      })
      .strict()
      .describe("the qualitative sample"),
  })
  .strict();
export type Exp1Settings = z.output<typeof Exp1SettingsSchema>;
export type Exp1Config = ConfigOf<typeof Exp1SettingsSchema>;

const SAMPLE = { prompt: "The history of the city began", maxNewTokens: 40, topK: 1 };
// The seed's audit: a fixed batch of 2,048 tokens.
const AUDIT = { tokens: 2048, rounds: 30, warmupRounds: 3 };

const WT2_SMALL: Exp1Settings = {
  models: ["small"],
  dataset: "wikitext-2",
  contextLength: 1024,
  batchSize: 8,
  gradAccumulation: 4,
  maxSteps: 3000,
  lr: 6e-4,
  lrWarmupSteps: 200,
  adamEps: 1e-8,
  evalEvery: 200,
  evalMaxSequences: 0,
  testMaxSequences: 0,
  oodMaxSequences: 0,
  patience: 5,
  seeds: [0, 1, 2],
  variations: [...VARIATIONS],
  dpsmWarmup: 0.1,
  warmupSweep: [0.05, 0.2],
  epsAblation: false,
  efficiencyAudit: AUDIT,
  baselines: [...BASELINES],
  labelNoise: { stepFraction: 0.05, tokenFraction: 0.1, variations: ["ce", "brier", "dpsm-linear"] },
  ood: [...OOD_NAMES],
  device: "cuda",
  precision: "bf16",
  sample: SAMPLE,
};

/**
 * The profiles: quick (this 2-core CPU, ≤ 15 min), cpu-study (this CPU, ≤ 2 hours), wt2-small (one GPU), full
 * (the seed's design).
 */
export const PROFILES = {
  quick: {
    models: ["tiny"],
    dataset: "wikitext-2",
    contextLength: 128,
    batchSize: 8,
    gradAccumulation: 1,
    maxSteps: 150,
    lr: 3e-3,
    lrWarmupSteps: 15,
    adamEps: 1e-8,
    evalEvery: 25,
    evalMaxSequences: 32,
    testMaxSequences: 96,
    oodMaxSequences: 24,
    patience: 0,
    seeds: [0],
    variations: [...VARIATIONS],
    dpsmWarmup: 0.1,
    warmupSweep: [],
    epsAblation: false,
    efficiencyAudit: { ...AUDIT, rounds: 15 },
    baselines: ["ce+tempscale"],
    labelNoise: { stepFraction: 0.05, tokenFraction: 0.1, variations: ["ce", "dpsm-linear"] },
    ood: [...OOD_NAMES],
    device: "cpu",
    precision: "fp32",
    sample: SAMPLE,
  },
  // Issue 13's study on this CPU (≤ 2 hours here): 3 seeds, steps enough for CE to flatten, the warm-up sweep
  // and the AdamW-ε ablation; no label noise or trained baselines (their time went to seeds and steps).
  "cpu-study": {
    models: ["tiny"],
    dataset: "wikitext-2",
    contextLength: 64,
    batchSize: 8,
    gradAccumulation: 1,
    maxSteps: 600,
    lr: 3e-3,
    lrWarmupSteps: 30,
    adamEps: 1e-8,
    evalEvery: 50,
    evalMaxSequences: 64,
    testMaxSequences: 256,
    oodMaxSequences: 48,
    patience: 0,
    seeds: [0, 1, 2],
    variations: [...VARIATIONS],
    dpsmWarmup: 0.1,
    warmupSweep: [0.05, 0.2],
    epsAblation: { eps: 1e-12, variations: ["ce", "brier", "dpsm-linear"] },
    efficiencyAudit: AUDIT,
    baselines: ["ce+tempscale"],
    labelNoise: false,
    ood: [...OOD_NAMES],
    device: "cpu",
    precision: "fp32",
    sample: SAMPLE,
  },
  "wt2-small": WT2_SMALL,
  // The seed's design: wt2-small's settings at three scales on WikiText-103.
  full: {
    ...WT2_SMALL,
    models: ["small", "medium", "large"],
    dataset: "wikitext-103",
    gradAccumulation: 8,
    maxSteps: 20000,
    lr: { tiny: 3e-3, small: 6e-4, medium: 3e-4, large: 2.5e-4 },
    lrWarmupSteps: 700,
    evalEvery: 1000,
  },
} satisfies Record<string, Exp1Settings>;

export function lrFor(c: Exp1Settings, model: Exp1Settings["models"][number]): number {
  return typeof c.lr === "number" ? c.lr : (c.lr[model] ?? 6e-4);
}
