// Experiment 2's jobs: per model, its denoising pretraining when it has no checkpoint (first, shared by every
// fine-tuning run of that model), then every (variation, seed) fine-tuned on clean pairs and, for the noise
// variations, with summary-swap noise.
import type { TrainLossInput } from "../../trainer.ts";
import type { Job } from "../framework/spec.ts";
import { DPSM_WARMUP, type Exp2Config, PRETRAIN, type Setting, type Variation } from "./config.ts";

export interface PretrainJob extends Job {
  readonly kind: "pretrain";
  readonly key: { model: string; variation: typeof PRETRAIN.variation; setting: typeof PRETRAIN.setting; seed: number };
}

export interface FinetuneJob extends Job {
  readonly kind: "finetune";
  readonly key: { model: string; variation: Variation; setting: Setting; seed: number };
  readonly loss: TrainLossInput;
  /** the pretraining job whose checkpoint this run starts from (none: the model's checkpoint folder) */
  readonly pretrained?: PretrainJob["key"];
}

export type Exp2Job = PretrainJob | FinetuneJob;

export function lossOf(variation: Variation, maxSteps: number): TrainLossInput {
  const share = DPSM_WARMUP[variation];
  if (share !== undefined) {
    return { kind: "dpsm", schedule: "linear", warmupSteps: Math.max(1, Math.round(share * maxSteps)) };
  }
  return { kind: variation === "brier" ? "brier" : "ce" };
}

export function exp2Jobs(c: Exp2Config): Exp2Job[] {
  const jobs: Exp2Job[] = [];
  for (const model of c.models) {
    let pretrained: PretrainJob["key"] | undefined;
    if (c.checkpointDir === undefined && c.pretrain !== false) {
      pretrained = { model, ...PRETRAIN, seed: c.pretrain.seed };
      jobs.push({ kind: "pretrain", key: pretrained });
    }
    const add = (variation: Variation, seed: number, setting: Setting) =>
      jobs.push({
        kind: "finetune",
        key: { model, variation, setting, seed },
        loss: lossOf(variation, c.maxSteps),
        ...(pretrained ? { pretrained } : {}),
      });
    for (const seed of c.seeds) for (const v of c.variations) add(v, seed, "clean");
    if (c.summarySwap) {
      for (const seed of c.seeds) for (const v of c.summarySwap.variations) add(v, seed, "summary-swap");
    }
  }
  return jobs;
}
