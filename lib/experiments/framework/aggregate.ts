// From finished jobs to the numbers a report states, for any experiment: observations grouped by key (every
// seed of one model, setting, variation and params), mean ± std over seeds, paired t-tests against reference
// variations, convergence against a reference's selected validation value, and efficiency.
import { meanStd, type PairedTTest, pairedTTest } from "../../metrics/stats.ts";
import { type AuditResult, runShapeAudit } from "./efficiency-audit.ts";
import { defaultGroupName, groupId, groupKeyOf } from "./keys.ts";
import type { AnalysisSpec, CurvePoint, Finished, GroupSummary, Observation } from "./spec.ts";

function byMetric<M extends string, T>(metrics: readonly M[], f: (m: M) => T): Record<M, T> {
  return Object.fromEntries(metrics.map((m) => [m, f(m)])) as Record<M, T>;
}

function summarise<M extends string, R>(
  names: readonly M[],
  observations: Observation<M, R>[],
  name: string,
): GroupSummary<M, R> {
  const obs = [...observations].sort((a, b) => a.key.seed - b.key.seed);
  const perSeed = byMetric(names, (m) => obs.map((o) => o.metrics[m]));
  const sets: GroupSummary<M, R>["sets"] = {};
  for (const set of [...new Set(obs.flatMap((o) => Object.keys(o.sets ?? {})))]) {
    const values = byMetric(names, (m) => obs.map((o) => o.sets?.[set]?.[m] ?? NaN));
    sets[set] = { metrics: byMetric(names, (m) => meanStd(values[m])), perSeed: values };
  }
  const extra: GroupSummary<M, R>["extra"] = {};
  for (const k of [...new Set(obs.flatMap((o) => Object.keys(o.extra ?? {})))]) {
    extra[k] = meanStd(obs.map((o) => o.extra?.[k] ?? NaN));
  }
  const costs = obs.map((o) => o.efficiency);
  const efficiency = costs.every((e) => e !== undefined)
    ? {
        stepMs: meanStd(costs.map((e) => e.stepMs)),
        tokensPerSecond: meanStd(costs.map((e) => e.tokensPerSecond)),
        peakMemoryMB: meanStd(costs.map((e) => e.peakMemoryBytes / 2 ** 20)),
        energyJoulesPerStep: meanStd(costs.map((e) => e.energyJoulesPerStep ?? NaN)),
      }
    : undefined;
  return {
    key: groupKeyOf(obs[0]!.key),
    name,
    clock: obs.every((o) => o.clock === "audited") ? "audited" : "run",
    seeds: obs.map((o) => o.key.seed),
    metrics: byMetric(names, (m) => meanStd(perSeed[m])),
    perSeed,
    sets,
    versus: {},
    ...(efficiency ? { efficiency } : {}),
    extra,
    observations: obs,
  };
}

/**
 * Runs trained at different times share a machine with different loads, so their own clocks do not compare. Where
 * the audit timed the variation's step at the runs' own shape (the "run" audit: their batch and gradient
 * accumulation), a curve's time is steps × that median step time (evaluation excluded), and the observation says
 * so; elsewhere it keeps the run's clock. The seed's fixed-batch audit times another batch, so it never sets a
 * clock.
 */
function auditedClock<M extends string, R>(
  o: Omit<Observation<M, R>, "source">,
  audits: readonly AuditResult[],
): Omit<Observation<M, R>, "source"> {
  const ms = runShapeAudit(audits, o.key.model)?.rows.find((r) => r.name === o.key.variation)?.medianMs;
  if (ms === undefined || !o.curve) return { ...o, clock: "run" };
  return { ...o, clock: "audited", curve: o.curve.map((p) => ({ ...p, elapsedSeconds: (p.step * ms) / 1000 })) };
}

/** Where a curve first reaches a target: interpolated between the two evaluations that bracket the crossing. */
export interface Crossing {
  /** the step where the line between the bracketing evaluations meets the target */
  step: number;
  /** the time there, interpolated alike (audited or the run's clock, as the curve's) */
  seconds: number;
  /** the steps of the last evaluation short of the target (0 when the first one reaches it) and the first to reach it */
  bracket: [number, number];
}

/**
 * The first crossing of `target` by `metric` along `curve` (evaluations in step order), or null when no evaluation
 * reaches it. Evaluations are some way apart (exp-1's cpu-study: every 50 of 600 steps), and a first-reaching
 * evaluation's step overstates the time to the target by up to one interval, the same order as the 10 % a
 * convergence criterion resolves; so the step is interpolated linearly in the metric between the last evaluation
 * short of the target and the first that reaches it, and the bracket says how far the truth can be from it. Where
 * the first evaluation already reaches the target there is no value before it: the step is that evaluation's
 * (an upper bound), the bracket starts at 0.
 */
export function firstCrossing(
  curve: readonly CurvePoint[],
  metric: string,
  target: number,
  higherIsBetter: boolean,
): Crossing | null {
  const reaches = (p: CurvePoint) => (higherIsBetter ? p[metric]! >= target : p[metric]! <= target);
  const k = curve.findIndex(reaches);
  if (k < 0) return null;
  const hit = curve[k]!;
  if (k === 0) return { step: hit.step, seconds: hit.elapsedSeconds, bracket: [0, hit.step] };
  const before = curve[k - 1]!;
  const span = hit[metric]! - before[metric]!;
  // The share of the interval at which the line meets the target (span ≠ 0: one side misses, the other reaches).
  const f = Math.min(1, Math.max(0, (target - before[metric]!) / span));
  return {
    step: before.step + f * (hit.step - before.step),
    seconds: before.elapsedSeconds + f * (hit.elapsedSeconds - before.elapsedSeconds),
    bracket: [before.step, hit.step],
  };
}

/**
 * The validation value the convergence target is a share of: the reference run's selected evaluation (the one
 * whose checkpoint its final metrics come from, `selectedStep`), else its last. With early stopping's patience the
 * last evaluation is past the best one, and a target from it would be looser than "95 % of final performance".
 */
export function selectedValue(o: Pick<Observation, "curve" | "selectedStep">, metric: string): number {
  const point = o.selectedStep === undefined ? undefined : o.curve?.find((p) => p.step === o.selectedStep);
  return (point ?? o.curve?.at(-1))?.[metric] ?? NaN;
}

/**
 * Every group of the results, in the order their first observation appears, with paired tests against the
 * spec's references and convergence filled in.
 */
export function aggregate<M extends string, R>(
  analysis: AnalysisSpec<M, R>,
  results: readonly Finished<R>[],
  audits: readonly AuditResult[] = [],
): GroupSummary<M, R>[] {
  const names = analysis.metrics.map((m) => m.name);
  const groups = new Map<string, Observation<M, R>[]>();
  for (const source of results) {
    for (const o of analysis.observe(source)) {
      const id = groupId(o.key);
      groups.set(id, [...(groups.get(id) ?? []), { ...auditedClock(o, audits), source }]);
    }
  }
  const nameOf = analysis.name ?? defaultGroupName;
  const out = [...groups.values()].map((obs) => summarise(names, obs, nameOf(groupKeyOf(obs[0]!.key))));

  // A reference: the group of that variation (no params) with the same model and setting.
  const reference = (g: GroupSummary<M, R>, variation: string) =>
    out.find((o) => {
      const k = o.key;
      return k.model === g.key.model && k.setting === g.key.setting && k.variation === variation && !k.params;
    });
  for (const g of out) {
    for (const variation of analysis.references) {
      const other = reference(g, variation);
      if (!other || other === g) continue;
      const seeds = g.seeds.filter((s) => other.seeds.includes(s));
      const tests: Partial<Record<M, PairedTTest>> = {};
      for (const m of names) {
        const t = pairedTTest(
          seeds.map((s) => g.perSeed[m][g.seeds.indexOf(s)]!),
          seeds.map((s) => other.perSeed[m][other.seeds.indexOf(s)]!),
        );
        if (t) tests[m] = t;
      }
      g.versus[variation] = tests;
    }
    const conv = analysis.convergence;
    const ref = conv && reference(g, conv.reference);
    if (conv && ref && g.observations.every((o) => o.curve)) {
      const higher = analysis.metrics.find((m) => m.name === conv.metric)?.higherIsBetter ?? false;
      const steps: (number | null)[] = [];
      const seconds: (number | null)[] = [];
      const brackets: ([number, number] | null)[] = [];
      for (const o of g.observations) {
        const r = ref.observations.find((x) => x.key.seed === o.key.seed);
        const final = r ? selectedValue(r, conv.metric) : NaN;
        const target = higher ? final * conv.share : final / conv.share;
        const hit = firstCrossing(o.curve!, conv.metric, target, higher);
        steps.push(hit ? hit.step : null);
        seconds.push(hit ? hit.seconds : null);
        brackets.push(hit ? hit.bracket : null);
      }
      g.convergence = { steps, seconds, brackets };
    }
  }
  return out;
}

/** Mean of per-seed values, or null unless every seed has one. */
export function meanOfAll(xs: readonly (number | null)[]): number | null {
  const v = xs.filter((x): x is number => x !== null);
  return v.length === xs.length && v.length > 0 ? v.reduce((a, b) => a + b, 0) / v.length : null;
}
