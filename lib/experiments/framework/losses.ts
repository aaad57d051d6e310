// A variation's loss as an experiment states it, and the Trainer's loss it becomes. The seed states DPSM's α
// warm-up as a share of a run's steps; the rule that turns a share into steps is here, once.
import type { TrainLossInput } from "../../config.ts";

/**
 * A loss as a variation states it: any Trainer loss, where a DPSM warm-up schedule (linear, cosine, step) may give its
 * warm-up as `warmupShare` of the run's steps instead of `warmupSteps`, or leave it to the experiment's default share.
 */
export type VariationLoss = TrainLossInput & { warmupShare?: number };

/** α's warm-up steps for `share` of a run's `maxSteps`: rounded, and at least one. */
export function warmupStepsOf(share: number, maxSteps: number): number {
  return Math.max(1, Math.round(share * maxSteps));
}

/**
 * The Trainer's loss for `loss` in a run of `maxSteps`: a DPSM warm-up schedule without warm-up steps gets its
 * `warmupShare` of them, or `defaultShare` (the experiment's) when it states none.
 */
export function lossForVariation(loss: VariationLoss, maxSteps: number, defaultShare?: number): TrainLossInput {
  const { warmupShare, ...trainLoss } = loss;
  const warmsUp = trainLoss.kind === "dpsm" && trainLoss.schedule !== "fixed" && trainLoss.warmupSteps === undefined;
  if (!warmsUp) {
    if (warmupShare !== undefined) {
      throw new RangeError(`warmupShare: only for a DPSM warm-up schedule without warmupSteps (${trainLoss.kind})`);
    }
    return trainLoss;
  }
  const share = warmupShare ?? defaultShare;
  if (share === undefined) throw new RangeError("a DPSM warm-up schedule needs warmupSteps or a warm-up share");
  return { ...trainLoss, warmupSteps: warmupStepsOf(share, maxSteps) };
}

/**
 * The literature's recipe beside DPSM (Shao et al., ICML 2024, "Language Generation with Strictly Proper Scoring
 * Rules"): the log score first, then the Brier score for the last part of training, with score smoothing. Here
 * the switch comes at 80 % of the steps (the α step schedule: CE before it, Brier from it on) and ε = 0.1 in both
 * phases (label smoothing is the log score's score smoothing); docs/loss.md has the smoothed scores. No DPSM
 * claim is judged on it: the reports show it beside the others.
 */
export const SHAO_RECIPE = {
  kind: "dpsm",
  schedule: "step",
  warmupShare: 0.8,
  smoothing: 0.1,
} as const satisfies VariationLoss;

/** What SHAO_RECIPE trains with, as a report's "What was run" says it of `variation`. */
export function shaoRecipeNote(variation: string): string {
  const switchAt = Math.round(100 * SHAO_RECIPE.warmupShare);
  return (
    `${variation}: the recipe of Shao et al. (ICML 2024) beside DPSM — CE for the first ${switchAt} % of the steps, ` +
    `then the Brier score, both with score smoothing ε = ${SHAO_RECIPE.smoothing} ` +
    "(label smoothing of the log score); shown beside the others and judged by no criterion."
  );
}
