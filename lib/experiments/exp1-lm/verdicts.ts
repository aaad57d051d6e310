// The seed's success criteria for a DPSM variation of one model, judged from experiment 1's aggregated numbers:
// each from an effect with its 95 % interval. The effects on test PPL and ECE-10 against CE and Brier (task
// quality, calibration, significance) have per-sequence token sums (run-job.ts): with fewer than SEEDS_FOR_T
// common seeds their intervals come from Koehn's paired bootstrap over the test sequences (each resample's PPL and
// ECE-10 pooled from its sequences' sums, per seed, then averaged over the seeds both ran, so the interval covers
// the test set's sampling, not the seeds'), as experiment 2's come from its test examples; from SEEDS_FOR_T seeds
// on, and for runs saved without the sums, from the t or Fieller interval over seeds. The scaffolding, the
// decision rule and the criteria every experiment shares: ../framework/verdicts.ts, ../framework/decision.ts.
import { type BootstrapStatistic, bootstrapStatistic } from "../../metrics/bootstrap.ts";
import {
  checkSequenceSums,
  type PooledMetrics,
  pooledMetrics,
  type SequenceSums,
} from "../../metrics/sequence-sums.ts";
import { pairedTTest } from "../../metrics/stats.ts";
import { allOf, anyOf, decide, type Estimated, evidence, type TestFamily } from "../framework/decision.ts";
import type { AuditResult } from "../framework/efficiency-audit.ts";
import type { Evidence, Verdict } from "../framework/spec.ts";
import {
  calibrationFrom,
  type Criterion,
  efficiencyCriterion,
  fmt,
  groupLookup,
  judgeVariation,
  pairedValues,
  seedDifference,
  seedEceRatio,
  seedRatio,
  SEEDS_FOR_T,
  sharedSeeds,
  tallyCriterion,
  type VerdictTests,
  verdictTests,
} from "../framework/verdicts.ts";
import type { Exp1Group } from "./analysis.ts";
import { type Exp1Config, TEMPSCALE } from "./config.ts";
import type { Exp1Result } from "./run-job.ts";

/** The DPSM variations with a warm-up schedule: the ones the criteria are about. */
export function dpsmVariationsOf(c: Exp1Config): string[] {
  return c.variations.filter((v) => v === "dpsm-linear" || v === "dpsm-cosine");
}

const ppl = (g: Exp1Group, i: number) => g.perSeed.ppl[i]!;
const ece = (g: Exp1Group, i: number) => g.perSeed.ece10[i]!;

/** Resamples of the bootstrap over test sequences. */
export const SEQUENCE_BOOTSTRAP_SAMPLES = 1000;

/** The seeds all of `groups` ran, in the first group's order. */
const commonSeeds = (groups: readonly Exp1Group[]) =>
  groups.reduce((s, g) => s.filter((x) => g.seeds.includes(x)), groups[0]?.seeds ?? []);

/**
 * The test split's per-sequence sums of `g`'s run of `seed` (checked: they are read back from its result.json);
 * undefined for a run saved without them.
 */
function testSums(g: Exp1Group, seed: number): SequenceSums | undefined {
  if (g.key.variation === TEMPSCALE) return undefined; // its source's sums are CE's at T = 1
  const s = (g.observations.find((o) => o.key.seed === seed)?.source as Exp1Result | undefined)?.testSequences;
  if (s) checkSequenceSums(s, `${g.name} seed ${seed}: testSequences`);
  return s;
}

/** A bootstrap over test sequences, with what it rests on. */
export type SequenceBootstrap = BootstrapStatistic & { seeds: number[]; sequences: number };

/**
 * Koehn's paired bootstrap over the test sequences of `groups` (evaluated on the same sequences): each resample's
 * PPL, ECE-10 and Brier pooled from its sequences' sums for every group and common seed, and `statistic` of those
 * (per group, per seed; bootstrap seed: the first common seed). Undefined, so the effect is taken over seeds, from
 * SEEDS_FOR_T common seeds on, without a common seed, or when a run lacks the sums or saw other sequences.
 */
export function sequenceBootstrap(
  groups: readonly Exp1Group[],
  statistic: (pooled: PooledMetrics[][]) => number,
  samples = SEQUENCE_BOOTSTRAP_SAMPLES,
): SequenceBootstrap | undefined {
  const seeds = commonSeeds(groups);
  if (seeds.length === 0 || seeds.length >= SEEDS_FOR_T) return undefined;
  const sums = groups.map((g) => seeds.map((seed) => testSums(g, seed)));
  const first = sums[0]![0];
  if (!first || first.tokens.length === 0) return undefined;
  const same = (s: SequenceSums | undefined) =>
    s !== undefined && s.tokens.length === first.tokens.length && s.tokens.every((n, i) => n === first.tokens[i]);
  if (!sums.every((gs) => gs.every(same))) return undefined;
  const r = bootstrapStatistic(
    [first.tokens.length],
    ([idx]) => statistic(sums.map((gs) => gs.map((s) => pooledMetrics(s!, idx!)))),
    { samples, seed: seeds[0]! },
  );
  return { ...r, seeds, sequences: first.tokens.length };
}

/** How an interval over the test sequences was obtained, for the verdict. */
const overSequences = (b: SequenceBootstrap) =>
  `paired bootstrap over ${b.sequences} test sequences (${b.samples} resamples), ` +
  `seed${b.seeds.length === 1 ? "" : "s"} ${b.seeds.join(", ")} ` +
  `(${b.seeds.length > 1 ? "per-seed metrics averaged; " : ""}seed variance not covered)`;

const asEstimated = (b: SequenceBootstrap): Estimated => ({
  estimate: b.estimate,
  low: b.low,
  high: b.high,
  interval: overSequences(b),
});

const meanOf = (ms: readonly PooledMetrics[], metric: "ppl" | "ece10") =>
  ms.reduce((s, m) => s + m[metric], 0) / ms.length;

/** Mean PPL of `a` − `b`: over test sequences with fewer than SEEDS_FOR_T seeds (when saved), else over seeds. */
export function pplDifference(a: Exp1Group, b: Exp1Group): Estimated {
  const r = sequenceBootstrap([a, b], ([x, y]) => meanOf(x!, "ppl") - meanOf(y!, "ppl"));
  if (r) return asEstimated(r);
  const vs = pairedValues(a, b, ppl);
  return seedDifference(vs.x, vs.y);
}

/** Mean ECE-10 of `a` / `b`: over test sequences with fewer than SEEDS_FOR_T seeds (when saved), else Fieller's. */
export function eceRatio(a: Exp1Group, b: Exp1Group): Estimated {
  const r = sequenceBootstrap([a, b], ([x, y]) => meanOf(x!, "ece10") / meanOf(y!, "ece10"));
  return r ? asEstimated(r) : seedEceRatio(a, b);
}

/**
 * Task quality: the mean paired PPL gap to CE, with its interval (pplDifference), ≤ 0.3; and never worse than both
 * CE and Brier: shown not worse than at least one of them (the interval of PPL − theirs ≤ 0), not met when shown
 * worse than both.
 */
const quality: Criterion<Exp1Group> = ({ d, ce, brier }, v) => {
  const c = "Task quality: test PPL ≤ 0.3 above CE's, and never worse than both CE and Brier";
  if (!brier) return v.missing(c, "brier runs");
  const gapCe = pplDifference(d, ce);
  const gap = evidence("PPL − CE's", gapCe, "≤", 0.3, { signed: true });
  const notWorse = [
    evidence("never worse than both: PPL − Brier's", pplDifference(d, brier), "≤", 0, { signed: true }),
    evidence("or PPL − CE's", gapCe, "≤", 0, { signed: true }),
  ];
  v.decide(
    c,
    [gap, ...notWorse],
    `PPL ${fmt(d.metrics.ppl.mean)} vs CE ${fmt(ce.metrics.ppl.mean)}, Brier ${fmt(brier.metrics.ppl.mean)}`,
    allOf([gap.status, anyOf(notWorse.map((e) => e.status))]),
  );
};

/**
 * A ratio of times to target over seeds where some runs never reached the target: such a run's time is at least
 * its run's length (its last evaluation's time), so with it in the numerator the ratio is a lower bound (it can
 * show the criterion fails, never that it holds) and in the denominator an upper bound (the other way round).
 */
function timeRatio(
  effect: string,
  num: readonly (number | null)[],
  numRun: readonly number[],
  den: readonly (number | null)[],
  denRun: readonly number[],
  bound: number,
): Evidence {
  const x = num.map((t, i) => t ?? numRun[i]!);
  const y = den.map((t, i) => t ?? denRun[i]!);
  const numCensored = num.filter((t) => t === null).length;
  const denCensored = den.filter((t) => t === null).length;
  const r = seedRatio(x, y);
  const notes = [
    numCensored
      ? `${effect.split(" /")[0]} not reached in ${numCensored} of ${num.length} seeds: its run length counted`
      : "",
    denCensored ? `the reference not reached in ${denCensored} of ${den.length} seeds: its run length counted` : "",
  ].filter(Boolean);
  const e = evidence(effect, { ...r, interval: [r.interval, ...notes].join("; ") }, "≤", bound);
  // A lower bound of the ratio cannot show "met"; an upper bound cannot show "not met"; with both, neither.
  if ((numCensored && e.status === "met") || (denCensored && e.status === "not met")) e.status = "inconclusive";
  return e;
}

/**
 * Convergence: time to the target (95 % of CE's final validation performance, same seed) over CE's time ≤ 1.1 and
 * over Brier's ≤ 0.6, each from Fieller's interval of the ratio of mean times over seeds (runs that never reached
 * the target count with their run length, as bounds: timeRatio).
 */
const convergence: Criterion<Exp1Group> = ({ dpsm, d, ce, brier }, v) => {
  const c =
    "Convergence: 95 % of CE's final validation performance within 110 % of CE's wall-clock and ≤ 60 % of Brier's";
  if (!brier) return v.missing(c, "brier runs");
  if (!d.convergence || !ce.convergence || !brier.convergence) return v.missing(c, "validation curves");
  const seeds = [d, ce, brier].reduce((s, g) => s.filter((x) => g.seeds.includes(x)), d.seeds);
  const at = (g: Exp1Group, xs: readonly (number | null)[]) => seeds.map((s) => xs[g.seeds.indexOf(s)]!);
  const runLength = (g: Exp1Group) =>
    seeds.map((s) => g.observations[g.seeds.indexOf(s)]!.curve?.at(-1)?.elapsedSeconds ?? NaN);
  const [td, tc, tb] = [d, ce, brier].map((g) => at(g, g.convergence!.seconds));
  if (tc!.some((t) => t === null)) return v.missing(c, "CE runs that reach their own target in every seed");
  const clock =
    d.clock === "audited" && ce.clock === "audited" ? "steps × the audit's step time" : "the runs' own clocks";
  const show = (ts: readonly (number | null)[]) => ts.map((t) => (t === null ? "not reached" : fmt(t, 1))).join(", ");
  v.decide(
    c,
    [
      timeRatio(`${dpsm}'s time / CE's`, td!, runLength(d), tc!, runLength(ce), 1.1),
      timeRatio(`${dpsm}'s time / Brier's`, td!, runLength(d), tb!, runLength(brier), 0.6),
    ],
    `seconds to target per seed (${seeds.join(", ")}): ${dpsm} ${show(td!)}; CE ${show(tc!)}; Brier ${show(tb!)} ` +
      `(target: validation PPL ≤ CE's final / 0.95; ${clock})`,
  );
};

const robustness: Criterion<Exp1Group> = ({ dpsm, d, ce, get }, v) => {
  const checks: { ok: boolean; where: string }[] = [];
  const holds = (pd: number, pc: number, ed: number, ec: number) => ed < ec && pd <= pc + 0.3;
  for (const { seed, i, j } of sharedSeeds(d, ce)) {
    checks.push({
      ok: holds(d.perSeed.ppl[i]!, ce.perSeed.ppl[j]!, d.perSeed.ece10[i]!, ce.perSeed.ece10[j]!),
      where: `test/seed${seed}`,
    });
    for (const [set, a] of Object.entries(d.sets)) {
      const b = ce.sets[set];
      if (!b) continue;
      checks.push({
        ok: holds(a!.perSeed.ppl[i]!, b.perSeed.ppl[j]!, a!.perSeed.ece10[i]!, b.perSeed.ece10[j]!),
        where: `${set}/seed${seed}`,
      });
    }
  }
  const dn = get(dpsm, "label-noise");
  const cn = get("ce", "label-noise");
  if (dn && cn) {
    for (const { seed, i, j } of sharedSeeds(dn, cn)) {
      checks.push({
        ok: holds(dn.perSeed.ppl[i]!, cn.perSeed.ppl[j]!, dn.perSeed.ece10[i]!, cn.perSeed.ece10[j]!),
        where: `label-noise/seed${seed}`,
      });
    }
  }
  const c = "Robustness: DPSM's advantage (ECE below CE's, PPL within 0.3) holds in ≥ 75 % of seeds × settings";
  tallyCriterion(v, c, checks, sharedSeeds(d, ce).length);
};

/** What the significance criterion tests, as the report's family names it: over seeds, or over test sequences. */
const SIGNIFICANCE_TEST = "ece10 < ce (one-sided paired t)";
const SIGNIFICANCE_BOOTSTRAP = "ece10 < ce (Koehn's paired bootstrap over test sequences)";

/**
 * The significance criterion's test of DPSM's ECE-10 below CE's: Koehn's paired bootstrap over the test sequences
 * with fewer than SEEDS_FOR_T common seeds (when saved: its p is the share of resamples in which DPSM's mean ECE-10
 * is not below CE's, at least 1 / samples, the test's resolution), else the one-sided paired t-test over seeds.
 */
function significanceTest({
  d,
  ce,
  test,
}: Pick<Parameters<Criterion<Exp1Group>>[0], "d" | "ce" | "test">):
  { id: string; p: number; effect: Estimated; how: string } | undefined {
  const b = sequenceBootstrap([d, ce], ([x, y]) => meanOf(x!, "ece10") - meanOf(y!, "ece10"));
  if (b) {
    return {
      id: test(SIGNIFICANCE_BOOTSTRAP),
      p: Math.max(1 - b.below / b.samples, 1 / b.samples),
      effect: asEstimated(b),
      how: `Koehn's paired bootstrap: DPSM's ECE-10 lower in ${b.below} of ${b.samples} resamples, higher in ${b.above}`,
    };
  }
  const vs = pairedValues(d, ce, ece);
  const t = pairedTTest(vs.x, vs.y);
  if (!t) return undefined;
  return {
    id: test(SIGNIFICANCE_TEST),
    p: t.pLess,
    effect: seedDifference(vs.x, vs.y),
    how: `one-sided paired t over ${vs.x.length} seeds: t = ${fmt(t.t)}, df = ${t.df}`,
  };
}

/** The verdicts' tests of `dpsm`: the significance criterion's one-sided p in the claimed direction. */
const exp1Tests: VerdictTests<Exp1Group> = (compared) => {
  const t = significanceTest(compared);
  return t ? { [t.id]: t.p } : {};
};

/** The verdict tests of `dpsm` on `model` (family id → one-sided p), for the report to add before it adjusts. */
export function exp1VerdictTests(groups: readonly Exp1Group[], model: string, dpsm: string): Record<string, number> {
  return verdictTests(groupLookup(groups, model), model, dpsm, exp1Tests);
}

/**
 * Significance: DPSM's ECE-10 below CE's (significanceTest), Holm-adjusted over the report's family: met when the
 * adjusted p < 0.05, not met when the 95 % interval of the difference lies wholly above 0 (DPSM significantly
 * worse calibrated), inconclusive otherwise.
 */
const significance: Criterion<Exp1Group> = (compared, v) => {
  const c = "Significance: DPSM's ECE-10 below CE's (one-sided; Holm-adjusted p < 0.05)";
  const t = significanceTest(compared);
  if (!t) return v.missing(c, "at least 2 seeds, or 1 with per-sequence test sums");
  const { family } = compared;
  const adjusted = family.adjusted(t.id);
  const e = evidence("ECE-10 − CE's", t.effect, "≤", 0, { digits: 4, signed: true });
  const worse = decide(e.low, e.high, "≤", 0) === "not met";
  e.status = adjusted < 0.05 ? "met" : worse ? "not met" : "inconclusive";
  e.p = { raw: t.p, adjusted };
  v.decide(c, [e], `${t.how}; Holm over the report's ${family.size} tests`);
};

/**
 * The verdicts of `dpsm` on `model`. Efficiency is judged from the interleaved audit when there is one (the
 * seed's), else from the runs' own wall-clocks (and says so). `family`: the report's tests, this variation's
 * (exp1VerdictTests) among them; without it, the significance test is adjusted over this variation's tests alone.
 */
export function exp1Verdicts(
  groups: readonly Exp1Group[],
  model: string,
  dpsm: string,
  options: { audit?: AuditResult | undefined; family?: TestFamily } = {},
): Verdict[] {
  const efficiency = efficiencyCriterion({ audit: options.audit, memoryComparable: true });
  const criteria = [quality, calibrationFrom(eceRatio), convergence, efficiency, robustness, significance];
  return judgeVariation(groupLookup(groups, model), dpsm, criteria, {
    model,
    of: ` of ${model}`,
    tests: exp1Tests,
    ...(options.family ? { family: options.family } : {}),
  });
}
