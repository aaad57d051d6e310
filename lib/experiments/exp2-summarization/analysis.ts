// What experiment 2 aggregates: per fine-tuning run, the last checkpoint's test metrics (the seed's main
// selection) and, as further sets, the best-validation checkpoint's and every zero-shot set's; CE with post-hoc
// temperature scaling as its own row; tests against CE and Brier.
import type { EvalMetrics } from "../../native.ts";
import { lowResourceName, shareLabel } from "../framework/low-resource.ts";
import { defaultGroupName } from "../framework/keys.ts";
import type { AnalysisSpec, Finished, GroupKey, GroupSummary, MetricSpec, Observation } from "../framework/spec.ts";
import { GRID_SETTING, TEMPSCALE } from "./config.ts";
import type { Exp2Result, FinetuneResult, SetResult } from "./run-job.ts";

export const METRICS = [
  { name: "rouge1", label: "R-1", digits: 2, higherIsBetter: true },
  { name: "rouge2", label: "R-2", digits: 2, higherIsBetter: true },
  { name: "rougeL", label: "R-L", digits: 2, higherIsBetter: true },
  { name: "rougeLsum", label: "R-Lsum", digits: 2, higherIsBetter: true },
  { name: "ece10", label: "ECE-10", digits: 4 },
  { name: "ece100", label: "ECE-100", digits: 4 },
  { name: "adaptiveEce10", label: "AdaECE-10", digits: 4 },
  { name: "brier", label: "Brier", digits: 4 },
  { name: "brierReliability", label: "top-1 REL", digits: 5 },
  { name: "brierResolution", label: "top-1 RES", digits: 5, higherIsBetter: true },
  { name: "nll", label: "NLL", digits: 3 },
  { name: "distinct1", label: "Dist-1", digits: 3, higherIsBetter: true },
  { name: "distinct2", label: "Dist-2", digits: 3, higherIsBetter: true },
  { name: "length", label: "words", digits: 1 },
] as const satisfies readonly MetricSpec[];
export type Metric = (typeof METRICS)[number]["name"];

export type Exp2Group = GroupSummary<Metric, Exp2Result>;
export type Exp2Observation = Observation<Metric, Exp2Result>;

/** The set name of the best-validation checkpoint's evaluation of `set` ("best" for the test split). */
export const bestSet = (set?: string) => (set === undefined ? "best" : `best:${set}`);

/** ROUGE F × 100, generation statistics, and the teacher-forced numbers (those of `calibration` when given). */
function metricsOf(s: SetResult, calibration: EvalMetrics = s.teacherForced): Record<Metric, number> {
  return {
    rouge1: 100 * s.rouge.rouge1.mean.fmeasure,
    rouge2: 100 * s.rouge.rouge2.mean.fmeasure,
    rougeL: 100 * s.rouge.rougeL.mean.fmeasure,
    rougeLsum: 100 * s.rouge.rougeLsum.mean.fmeasure,
    ece10: calibration.ece10,
    ece100: calibration.ece100,
    // NaN for a run saved before these metrics existed.
    adaptiveEce10: calibration.adaptiveEce10 ?? NaN,
    brier: calibration.brier,
    brierReliability: calibration.brierDecomposition?.reliability ?? NaN,
    brierResolution: calibration.brierDecomposition?.resolution ?? NaN,
    nll: calibration.nll,
    distinct1: s.diversity.distinct1,
    distinct2: s.diversity.distinct2,
    length: s.diversity.meanWords,
  };
}

function observe(r: Finished<Exp2Result>): Omit<Exp2Observation, "source">[] {
  if (r.kind !== "finetune") return [];
  const f: FinetuneResult = r;
  const sets: Record<string, Record<Metric, number>> = {};
  for (const [name, s] of Object.entries(f.last.transfer)) sets[name] = metricsOf(s!);
  const best = f.best ?? f.last;
  sets[bestSet()] = metricsOf(best.test);
  for (const [name, s] of Object.entries(best.transfer)) sets[bestSet(name)] = metricsOf(s!);
  const own: Omit<Exp2Observation, "source"> = {
    key: r.key,
    metrics: metricsOf(f.last.test),
    sets,
    curve: f.curve,
    efficiency: {
      stepMs: f.fit.stepMs,
      tokensPerSecond: f.fit.tokensPerSecond,
      peakMemoryBytes: f.fit.peakMemoryBytes,
      ...(f.fit.energy?.joulesPerStep !== undefined ? { energyJoulesPerStep: f.fit.energy.joulesPerStep } : {}),
    },
    extra: { sentencesPerSecond: f.last.test.sentencesPerSecond, bestStep: best.step },
  };
  if (!f.tempscale) return [own];
  const t = f.tempscale;
  const scaledSets: Record<string, Record<Metric, number>> = {};
  for (const [name, s] of Object.entries(f.last.transfer)) scaledSets[name] = metricsOf(s!, t.transfer[name]);
  const scaled = {
    key: { ...r.key, variation: TEMPSCALE },
    metrics: metricsOf(f.last.test, t.test),
    sets: scaledSets,
    extra: { temperature: t.temperature },
  };
  return [own, scaled];
}

/**
 * "ce (10 % of the training split)" for a low-resource run, "dpsm-warm (lr 3e-5, ε 0.1, warm-up 20 %)" for a grid
 * run; the variation otherwise.
 */
export function exp2GroupName(key: GroupKey): string {
  const p = key.params;
  if (key.setting === GRID_SETTING && p) {
    return `${key.variation} (lr ${p.lr?.toExponential()}, ε ${p.smoothing}, warm-up ${shareLabel(p.warmup ?? NaN)})`;
  }
  return lowResourceName(key) ?? defaultGroupName(key);
}

export const EXP2_ANALYSIS: AnalysisSpec<Metric, Exp2Result> = {
  metrics: METRICS,
  observe,
  references: ["ce", "brier"],
  name: exp2GroupName,
};
