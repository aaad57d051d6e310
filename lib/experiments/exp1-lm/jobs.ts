// Experiment 1's jobs: every (model, variation, seed, setting) its settings imply, and the loss each trains.
import type { ModelSize } from "../../models/gpt2.ts";
import type { TrainLossInput } from "../../trainer.ts";
import type { AuditBatch, AuditPlan, AuditShape } from "../framework/efficiency-audit.ts";
import { lossForVariation } from "../framework/losses.ts";
import { LOW_RESOURCE_SETTING } from "../framework/low-resource.ts";
import type { Job } from "../framework/spec.ts";
import { trainerSettings } from "../framework/trainer-settings.ts";
import {
  type Exp1Config,
  LOSSES,
  LOW_RESOURCE_VARIATIONS,
  lrFor,
  type Setting,
  type TrainedVariation,
} from "./config.ts";
import type { Exp1Data } from "./data.ts";

export type { TrainedVariation } from "./config.ts";

export interface Exp1Job extends Job {
  readonly key: {
    model: ModelSize;
    variation: TrainedVariation;
    setting: Setting;
    seed: number;
    /** the warm-up share of a sweep run, the AdamW ε of an ablation run, or a low-resource run's training share */
    params?: Params;
  };
  readonly loss: TrainLossInput;
  /** AdamW's ε */
  readonly eps: number;
  /** the share of the training split it trains on (a low-resource run; lib/experiments/framework/low-resource.ts) */
  readonly trainShare?: number;
}

type Params = { warmup?: number; eps?: number; share?: number };

/**
 * Every job, in the order they are trained: per model the variations seed by seed, the trained baselines,
 * the label-noise runs; then the warm-up sweep, the AdamW-ε ablation and the low-resource runs on the first model.
 * Sweep and ablation jobs carry their warm-up share or ε as a key parameter, low-resource jobs their training share
 * (setting "low-resource"); the others use the configured ones.
 */
export function exp1Jobs(c: Exp1Config): Exp1Job[] {
  const jobs: Exp1Job[] = [];
  const add = (model: ModelSize, variation: TrainedVariation, seed: number, setting: Setting, params?: Params) => {
    jobs.push({
      key: { model, variation, setting, seed, ...(params ? { params } : {}) },
      // A low-resource run takes as many steps as a main run (the seed states no other budget): the same
      // schedule and α warm-up, over fewer distinct sequences.
      loss: lossForVariation(LOSSES[variation], c.maxSteps, params?.warmup ?? c.dpsmWarmup),
      eps: params?.eps ?? c.eps,
      ...(params?.share !== undefined ? { trainShare: params.share } : {}),
    });
  };
  for (const model of c.models) {
    for (const seed of c.seeds) for (const v of c.variations) add(model, v, seed, "clean");
    for (const seed of c.seeds) {
      if (c.baselines.includes("label_smoothing")) add(model, "label_smoothing", seed, "clean");
      if (c.baselines.includes("focal")) add(model, "focal", seed, "clean");
    }
    if (c.labelNoise) {
      for (const seed of c.seeds) for (const v of c.labelNoise.variations) add(model, v, seed, "label-noise");
    }
  }
  const first = c.models[0]!;
  for (const share of c.warmupSweep) {
    if (Math.abs(share - c.dpsmWarmup) < 1e-9) continue;
    for (const seed of c.seeds) add(first, "dpsm-linear", seed, "clean", { warmup: share });
  }
  if (c.epsAblation && c.epsAblation.eps !== c.eps) {
    const { eps, variations } = c.epsAblation;
    for (const seed of c.seeds) for (const v of variations) add(first, v, seed, "clean", { eps });
  }
  for (const share of c.lowResource) {
    for (const seed of c.seeds) {
      for (const v of LOW_RESOURCE_VARIATIONS) add(first, v, seed, LOW_RESOURCE_SETTING, { share });
    }
  }
  return jobs;
}

/**
 * The efficiency audit per model: every trained variation's full step at the runs' own shape (batchSize sequences
 * of contextLength tokens per micro-batch, gradAccumulation micro-batches: audited time is steps × its step time)
 * and, where `fixedBatchTokens` asks for it and it is another step, on the seed's fixed batch of about that many
 * tokens (whole sequences, one micro-batch).
 */
export function exp1AuditPlans(c: Exp1Config, data: Exp1Data): AuditPlan[] {
  if (!c.efficiencyAudit) return [];
  const { rounds, warmupRounds, fixedBatchTokens } = c.efficiencyAudit;
  const trained: TrainedVariation[] = [...c.variations];
  if (c.baselines.includes("label_smoothing")) trained.push("label_smoothing");
  if (c.baselines.includes("focal")) trained.push("focal");
  if (!trained.includes("ce")) trained.unshift("ce");
  const losses = trained.map((v) => ({ name: v, loss: lossForVariation(LOSSES[v], c.maxSteps, c.dpsmWarmup) }));
  const sequenceTokens = c.contextLength;
  const run: AuditBatch = { batchSize: c.batchSize, gradAccumulation: c.gradAccumulation, sequenceTokens };
  const fixed: AuditBatch = {
    batchSize: Math.max(1, Math.round(fixedBatchTokens / sequenceTokens)),
    gradAccumulation: 1,
    sequenceTokens,
  };
  const shapes: [AuditShape, AuditBatch][] = [["run", run]];
  // A run whose step is the seed's batch (one micro-batch of as many sequences) is timed once.
  const same = run.gradAccumulation === 1 && run.batchSize === fixed.batchSize;
  if (fixedBatchTokens > 0 && !same) shapes.push(["fixed", fixed]);
  return c.models.flatMap((model) =>
    shapes.map(([shape, batch]) => ({
      model,
      shape,
      batch,
      tokens: batch.batchSize * batch.gradAccumulation * sequenceTokens,
      reference: "ce",
      rounds,
      warmupRounds,
      losses,
      trainer: async () => ({
        ...trainerSettings(c),
        model: { size: model, seed: 0, device: c.device },
        loss: { kind: "ce" },
        data: { train: data.train, valid: data.valid },
        // One fixed step of this shape: the first batchSize × gradAccumulation training sequences.
        batchSize: batch.batchSize,
        gradAccumulation: batch.gradAccumulation,
        maxSteps: 1,
        lr: lrFor(c, model),
      }),
    })),
  );
}
