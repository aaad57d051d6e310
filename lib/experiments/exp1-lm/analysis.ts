// What experiment 1 aggregates: the metrics of the test split and the out-of-domain sets, per job and for
// CE with post-hoc temperature scaling; tests against CE and Brier; convergence to 95 % of CE's final
// validation perplexity (its selected, best-validation checkpoint's).
import type { EvalMetrics } from "../../native.ts";
import { lowResourceName } from "../framework/low-resource.ts";
import type { AnalysisSpec, Finished, GroupKey, GroupSummary, MetricSpec, Observation } from "../framework/spec.ts";
import { TEMPSCALE } from "./config.ts";
import type { Exp1Result } from "./run-job.ts";

export const METRICS = [
  { name: "ppl", label: "PPL", digits: 2 },
  { name: "nll", label: "NLL", digits: 4 },
  { name: "accuracy", label: "acc", digits: 4, higherIsBetter: true },
  { name: "ece10", label: "ECE-10", digits: 4 },
  { name: "ece100", label: "ECE-100", digits: 4 },
  { name: "adaptiveEce10", label: "AdaECE-10", digits: 4 },
  { name: "brier", label: "Brier", digits: 4 },
  { name: "brierReliability", label: "top-1 REL", digits: 5 },
  { name: "brierResolution", label: "top-1 RES", digits: 5, higherIsBetter: true },
  { name: "spherical", label: "spherical", digits: 4, higherIsBetter: true },
] as const satisfies readonly MetricSpec[];
export type Metric = (typeof METRICS)[number]["name"];

export type Exp1Group = GroupSummary<Metric, Exp1Result>;
export type Exp1Observation = Observation<Metric, Exp1Result>;

/** An evaluation's numbers; a run saved before a metric existed reads NaN for it. */
export function metricsOf(m: EvalMetrics): Record<Metric, number> {
  const value = (name: Metric): number | undefined =>
    name === "brierReliability"
      ? m.brierDecomposition?.reliability
      : name === "brierResolution"
        ? m.brierDecomposition?.resolution
        : m[name];
  return Object.fromEntries(METRICS.map(({ name }) => [name, value(name) ?? NaN])) as Record<Metric, number>;
}

function setsOf(ood: Exp1Result["ood"]): Partial<Record<string, Record<Metric, number>>> {
  return Object.fromEntries(Object.entries(ood).map(([name, m]) => [name, metricsOf(m!)]));
}

/** The test-split evaluation an observation stands for (the temperature-scaled one for TEMPSCALE rows). */
export function testEvalOf(o: Exp1Observation): EvalMetrics {
  return o.key.variation === TEMPSCALE ? o.source.tempscale!.test : o.source.test;
}

function observe(r: Finished<Exp1Result>): Omit<Exp1Observation, "source">[] {
  const own = {
    key: r.key,
    metrics: metricsOf(r.test),
    sets: setsOf(r.ood),
    curve: r.curve,
    // The test metrics are the best validation checkpoint's (run-job.ts): the convergence target is its value.
    ...(r.fit.bestStep >= 0 ? { selectedStep: r.fit.bestStep } : {}),
    efficiency: {
      stepMs: r.fit.stepMs,
      tokensPerSecond: r.fit.tokensPerSecond,
      peakMemoryBytes: r.fit.peakMemoryBytes,
      ...(r.fit.energy?.joulesPerStep !== undefined ? { energyJoulesPerStep: r.fit.energy.joulesPerStep } : {}),
    },
  };
  if (!r.tempscale) return [own];
  const scaled = {
    key: { ...r.key, variation: TEMPSCALE },
    metrics: metricsOf(r.tempscale.test),
    sets: setsOf(r.tempscale.ood),
    extra: { temperature: r.tempscale.temperature },
  };
  return [own, scaled];
}

/**
 * "dpsm-linear (warm-up 5 %)" for a sweep run, "ce (ε 1e-12)" for an ε-ablation run, "ce (10 % of the training
 * split)" for a low-resource run; the variation otherwise.
 */
export function exp1GroupName(key: GroupKey): string {
  const lowResource = lowResourceName(key);
  if (lowResource) return lowResource;
  const { warmup, eps } = key.params ?? {};
  if (warmup !== undefined) return `${key.variation} (warm-up ${Math.round(warmup * 100)} %)`;
  if (eps !== undefined) return `${key.variation} (ε ${eps.toExponential()})`;
  return key.variation;
}

export const EXP1_ANALYSIS: AnalysisSpec<Metric, Exp1Result> = {
  metrics: METRICS,
  observe,
  references: ["ce", "brier"],
  convergence: { reference: "ce", metric: "ppl", share: 0.95 },
  name: exp1GroupName,
};
