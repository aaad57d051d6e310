// Experiment 1's jobs: every (model, variation, seed, setting) its settings imply, and the loss each trains.
import type { ModelSize } from "../../model.ts";
import type { TrainLossInput } from "../../trainer.ts";
import type { Job } from "../framework/spec.ts";
import type { Exp1Config, Setting, Variation } from "./config.ts";

/** Variations trained: the main ones and the two trained baselines. */
export type TrainedVariation = Variation | "label-smoothing" | "focal";

export interface Exp1Job extends Job {
  readonly key: {
    model: ModelSize;
    variation: TrainedVariation;
    setting: Setting;
    seed: number;
    /** the warm-up share of a sweep run */
    params?: { warmup: number };
  };
  readonly loss: TrainLossInput;
}

function lossOf(variation: TrainedVariation, warmupSteps: number): TrainLossInput {
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

/**
 * Every job, in the order they are trained: per model the variations seed by seed, the trained baselines,
 * the label-noise runs; then the warm-up sweep on the first model. Sweep jobs carry their warm-up share as
 * a key parameter; the other DPSM jobs use the configured warm-up.
 */
export function exp1Jobs(c: Exp1Config): Exp1Job[] {
  const jobs: Exp1Job[] = [];
  const warmupSteps = (share: number) => Math.max(1, Math.round(share * c.maxSteps));
  const add = (model: ModelSize, variation: TrainedVariation, seed: number, setting: Setting, warmup?: number) => {
    jobs.push({
      key: { model, variation, setting, seed, ...(warmup !== undefined ? { params: { warmup } } : {}) },
      loss: lossOf(variation, warmupSteps(warmup ?? c.dpsmWarmup)),
    });
  };
  for (const model of c.models) {
    for (const seed of c.seeds) for (const v of c.variations) add(model, v, seed, "clean");
    for (const seed of c.seeds) {
      if (c.baselines.includes("label-smoothing")) add(model, "label-smoothing", seed, "clean");
      if (c.baselines.includes("focal")) add(model, "focal", seed, "clean");
    }
    if (c.labelNoise) {
      for (const seed of c.seeds) for (const v of c.labelNoise.variations) add(model, v, seed, "label-noise");
    }
  }
  const first = c.models[0]!;
  for (const share of c.warmupSweep) {
    if (Math.abs(share - c.dpsmWarmup) < 1e-9) continue;
    for (const seed of c.seeds) add(first, "dpsm-linear", seed, "clean", share);
  }
  return jobs;
}
