// What a finished training run contributes to its job's result.json, for any experiment: the fit's outcome with
// its cost over every session of the run (the JSONL log, not just the last session), the validation curve and the
// training loss with α and the step diagnostics.
import path from "node:path";

import { runEnergy } from "../../energy.ts";
import { type LossPoint, lossCurve, readRunLog, type RunLog, runEfficiency } from "../../runlog.ts";
import type { FitResult } from "../../trainer.ts";
import type { CurvePoint } from "./spec.ts";

export interface FitSummary {
  reason: string;
  steps: number;
  bestStep: number;
  bestNll: number;
  elapsedSeconds: number;
  tokensSeen: number;
  stepMs: number;
  tokensPerSecond: number;
  peakMemoryBytes: number;
  /**
   * training-step energy over every session's step records (lib/energy.ts runEnergy): joules per step and their
   * sum over the steps measured; or why none was measured (this session's reason)
   */
  energy?: { kind: "gpu" | "cpu"; joulesPerStep?: number; joules?: number; unavailable?: string };
}

/** A validation evaluation during training. */
export interface FitCurvePoint extends CurvePoint {
  ppl: number;
  nll: number;
  ece10: number;
  accuracy: number;
}

export interface FitRecord {
  fit: FitSummary;
  /** validation metrics at every evaluation, over all sessions of the run */
  curve: FitCurvePoint[];
  /** training loss, α and the step diagnostics, at most ~300 points */
  losses: LossPoint[];
}

function fitEnergy(steps: RunLog["steps"], session: FitResult["efficiency"]["energy"]): FitSummary["energy"] {
  const kind = session.kind;
  const measured = runEnergy(steps, kind === "gpu" ? "gpuJoulesPerStep" : "cpuJoulesPerStep");
  if (measured) return { kind, ...measured };
  return { kind, unavailable: session.unavailable ?? "no step was measured" };
}

/** The record of the run in `dir` (its train.jsonl) that ended with `fit`. */
export function fitRecord(dir: string, fit: FitResult): FitRecord {
  const log = readRunLog(path.join(dir, "train.jsonl"));
  const efficiency = runEfficiency(log);
  return {
    fit: {
      reason: fit.reason,
      steps: fit.steps,
      bestStep: fit.bestStep,
      bestNll: fit.bestNll,
      elapsedSeconds: fit.elapsedSeconds,
      tokensSeen: fit.tokensSeen,
      stepMs: efficiency.stepMs,
      tokensPerSecond: efficiency.tokensPerSecond,
      peakMemoryBytes: Math.max(efficiency.peakMemoryBytes, fit.efficiency.peakMemoryBytes),
      energy: fitEnergy(log.steps, fit.efficiency.energy),
    },
    curve: log.evals.map((e) => ({
      step: e.step,
      elapsedSeconds: e.elapsedSeconds,
      ppl: e.metrics.ppl,
      nll: e.metrics.nll,
      ece10: e.metrics.ece10,
      accuracy: e.metrics.accuracy,
    })),
    losses: lossCurve(log),
  };
}
