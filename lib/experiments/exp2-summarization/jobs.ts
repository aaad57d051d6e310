// Experiment 2's jobs: per model, its denoising pretraining when it has no checkpoint (first, shared by every
// fine-tuning run of that model), then every (variation, seed) fine-tuned on clean pairs, the trained baselines
// (label smoothing, focal), and, for the noise variations, the runs with summary-swap noise; on the first model
// also the low-resource runs and the hyper-parameter grid's.
import { Seq2SeqModel } from "../../models/bart.ts";
import type { TrainLossInput } from "../../trainer.ts";
import type { AuditPlan } from "../framework/efficiency-audit.ts";
import { lossForVariation } from "../framework/losses.ts";
import { LOW_RESOURCE_SETTING } from "../framework/low-resource.ts";
import type { Job } from "../framework/spec.ts";
import { trainerSettings } from "../framework/trainer-settings.ts";
import {
  type Exp2Config,
  GRID_SETTING,
  GRID_VARIATION,
  LOSSES,
  LOW_RESOURCE_VARIATIONS,
  PRETRAIN,
  type Setting,
  type TrainedVariation,
} from "./config.ts";
import type { Exp2Data } from "./data.ts";
import { gridCells, gridLoss, gridParams, gridSeeds } from "./grid.ts";
import { freshModel } from "./model.ts";

export interface PretrainJob extends Job {
  readonly kind: "pretrain";
  readonly key: { model: string; variation: typeof PRETRAIN.variation; setting: typeof PRETRAIN.setting; seed: number };
}

export interface FinetuneJob extends Job {
  readonly kind: "finetune";
  readonly key: {
    model: string;
    variation: TrainedVariation | typeof GRID_VARIATION;
    setting: Setting;
    seed: number;
    /** a low-resource run's training share, or a grid cell's lr, smoothing and warm-up share */
    params?: { share?: number; lr?: number; smoothing?: number; warmup?: number };
  };
  readonly loss: TrainLossInput;
  /** the pretraining job whose checkpoint this run starts from (none: the model's checkpoint folder) */
  readonly pretrained?: PretrainJob["key"];
  /** a grid run's peak learning rate, in place of the experiment's */
  readonly lr?: number;
  /** the share of the training pairs it trains on (a low-resource run; lib/experiments/framework/low-resource.ts) */
  readonly trainShare?: number;
}

export type Exp2Job = PretrainJob | FinetuneJob;

export function exp2Jobs(c: Exp2Config): Exp2Job[] {
  const jobs: Exp2Job[] = [];
  for (const model of c.models) {
    let pretrained: PretrainJob["key"] | undefined;
    if (c.checkpointDir === undefined && c.pretrain !== false) {
      pretrained = { model, ...PRETRAIN, seed: c.pretrain.seed };
      jobs.push({ kind: "pretrain", key: pretrained });
    }
    const add = (variation: TrainedVariation, seed: number, setting: Setting) =>
      jobs.push({
        kind: "finetune",
        key: { model, variation, setting, seed },
        loss: lossForVariation(LOSSES[variation], c.maxSteps),
        ...(pretrained ? { pretrained } : {}),
      });
    for (const seed of c.seeds) for (const v of c.variations) add(v, seed, "clean");
    for (const seed of c.seeds) {
      if (c.baselines.includes("label_smoothing")) add("label_smoothing", seed, "clean");
      if (c.baselines.includes("focal")) add("focal", seed, "clean");
    }
    if (c.summarySwap) {
      for (const seed of c.seeds) for (const v of c.summarySwap.variations) add(v, seed, "summary-swap");
    }
    if (model !== c.models[0]) continue;
    const from = pretrained ? { pretrained } : {};
    // As many steps as a main run (the seed states no other budget for low-resource splits), on fewer pairs.
    for (const share of c.lowResource) {
      for (const seed of c.seeds) {
        for (const v of LOW_RESOURCE_VARIATIONS) {
          jobs.push({
            kind: "finetune",
            key: { model, variation: v, setting: LOW_RESOURCE_SETTING, seed, params: { share } },
            loss: lossForVariation(LOSSES[v], c.maxSteps),
            ...from,
            trainShare: share,
          });
        }
      }
    }
    for (const cell of gridCells(c).filter((x) => !x.main)) {
      for (const seed of gridSeeds(c)) {
        jobs.push({
          kind: "finetune",
          key: { model, variation: GRID_VARIATION, setting: GRID_SETTING, seed, params: gridParams(cell) },
          loss: gridLoss(c, cell),
          ...from,
          lr: cell.lr,
        });
      }
    }
  }
  return jobs;
}

/**
 * The efficiency audit per model: every variation's fine-tuning step at the runs' own shape (gradAccumulation
 * micro-batches of batchSize training pairs: the first batchSize × gradAccumulation), on the model's checkpoint or,
 * for a model pretrained here, a fresh one of the same shape (a step's cost does not depend on the weights' values).
 */
export function exp2AuditPlans(c: Exp2Config, data: Exp2Data): AuditPlan[] {
  if (!c.efficiencyAudit) return [];
  const { rounds, warmupRounds } = c.efficiencyAudit;
  const variations: TrainedVariation[] = c.variations.includes("ce") ? [...c.variations] : ["ce", ...c.variations];
  if (c.baselines.includes("label_smoothing")) variations.push("label_smoothing");
  if (c.baselines.includes("focal")) variations.push("focal");
  return c.models.map((name) => {
    const d = data[name]!;
    const pairs = d.train.targetLengths.length;
    const batch = { batchSize: Math.min(c.batchSize, pairs), gradAccumulation: c.gradAccumulation };
    // The pairs the native audit takes, wrapping round as it does where there are fewer.
    const rows = Array.from({ length: batch.batchSize * batch.gradAccumulation }, (_, i) => i % pairs);
    return {
      model: name,
      shape: "run" as const,
      batch,
      tokens: rows.reduce((a, i) => a + d.train.targetLengths[i]!, 0),
      reference: "ce",
      rounds,
      warmupRounds,
      losses: variations.map((v) => ({ name: v, loss: lossForVariation(LOSSES[v], c.maxSteps) })),
      trainer: async () => ({
        ...trainerSettings(c),
        model: d.checkpoint ? await Seq2SeqModel.loadAsync(d.checkpoint, { device: c.device }) : await freshModel(c, d),
        loss: { kind: "ce" },
        data: { train: d.train, valid: d.valid },
        // One fixed step of the runs' shape: the first batchSize × gradAccumulation training pairs.
        ...batch,
        maxSteps: 1,
      }),
    };
  });
}
