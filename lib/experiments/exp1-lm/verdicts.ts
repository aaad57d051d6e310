// The seed's success criteria for a DPSM variation of one model, judged from experiment 1's aggregated numbers:
// each from an effect with its 95 % interval over seeds (per-sequence metrics do not exist for experiment 1, so
// every interval here is over seeds only; the scaffolding, the decision rule and the criteria every experiment
// shares: ../framework/verdicts.ts, ../framework/decision.ts).
import { pairedTTest } from "../../metrics/stats.ts";
import { allOf, anyOf, decide, evidence, type TestFamily } from "../framework/decision.ts";
import type { AuditResult } from "../framework/efficiency-audit.ts";
import type { Evidence, Verdict } from "../framework/spec.ts";
import {
  calibrationCriterion,
  type Criterion,
  efficiencyCriterion,
  fmt,
  groupLookup,
  judgeVariation,
  pairedValues,
  seedDifference,
  seedRatio,
  sharedSeeds,
  tallyCriterion,
  type VerdictTests,
  verdictTests,
} from "../framework/verdicts.ts";
import type { Exp1Group } from "./analysis.ts";
import type { Exp1Config } from "./config.ts";

/** The DPSM variations with a warm-up schedule: the ones the criteria are about. */
export function dpsmVariationsOf(c: Exp1Config): string[] {
  return c.variations.filter((v) => v === "dpsm-linear" || v === "dpsm-cosine");
}

const ppl = (g: Exp1Group, i: number) => g.perSeed.ppl[i]!;
const ece = (g: Exp1Group, i: number) => g.perSeed.ece10[i]!;

/**
 * Task quality: the mean paired PPL gap to CE, with its t interval over seeds, ≤ 0.3; and never worse than both CE
 * and Brier: shown not worse than at least one of them (the interval of PPL − theirs ≤ 0), not met when shown worse
 * than both.
 */
const quality: Criterion<Exp1Group> = ({ d, ce, brier }, v) => {
  const c = "Task quality: test PPL ≤ 0.3 above CE's, and never worse than both CE and Brier";
  if (!brier) return v.missing(c, "brier runs");
  const vsCe = pairedValues(d, ce, ppl);
  const vsBrier = pairedValues(d, brier, ppl);
  const gapCe = seedDifference(vsCe.x, vsCe.y);
  const gap = evidence("PPL − CE's", gapCe, "≤", 0.3, { signed: true });
  const notWorse = [
    evidence("never worse than both: PPL − Brier's", seedDifference(vsBrier.x, vsBrier.y), "≤", 0, { signed: true }),
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

/** What the significance criterion tests, as the report's family names it. */
const SIGNIFICANCE_TEST = "ece10 < ce (one-sided paired t)";

/** The verdicts' tests of `dpsm`: the significance criterion's one-sided p in the claimed direction. */
const exp1Tests: VerdictTests<Exp1Group> = ({ d, ce, test }) => {
  const vs = pairedValues(d, ce, ece);
  const t = pairedTTest(vs.x, vs.y);
  return t ? { [test(SIGNIFICANCE_TEST)]: t.pLess } : {};
};

/** The verdict tests of `dpsm` on `model` (family id → one-sided p), for the report to add before it adjusts. */
export function exp1VerdictTests(groups: readonly Exp1Group[], model: string, dpsm: string): Record<string, number> {
  return verdictTests(groupLookup(groups, model), model, dpsm, exp1Tests);
}

/**
 * Significance: DPSM's ECE-10 below CE's, one-sided paired t-test over seeds, Holm-adjusted over the report's
 * family: met when the adjusted p < 0.05, not met when the 95 % interval of the difference lies wholly above 0
 * (DPSM significantly worse calibrated), inconclusive otherwise.
 */
const significance: Criterion<Exp1Group> = ({ d, ce, family, test }, v) => {
  const c = "Significance: DPSM's ECE-10 below CE's (one-sided paired t-test over seeds, Holm-adjusted p < 0.05)";
  const vs = pairedValues(d, ce, ece);
  const t = pairedTTest(vs.x, vs.y);
  if (!t) return v.missing(c, "at least 2 seeds");
  const adjusted = family.adjusted(test(SIGNIFICANCE_TEST));
  const e = evidence("ECE-10 − CE's", seedDifference(vs.x, vs.y), "≤", 0, { digits: 4, signed: true });
  const worse = decide(e.low, e.high, "≤", 0) === "not met";
  e.status = adjusted < 0.05 ? "met" : worse ? "not met" : "inconclusive";
  e.p = { raw: t.pLess, adjusted };
  v.decide(c, [e], `t = ${fmt(t.t)}, df = ${t.df}; Holm over the report's ${family.size} tests`);
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
  const criteria = [quality, calibrationCriterion, convergence, efficiency, robustness, significance];
  return judgeVariation(groupLookup(groups, model), dpsm, criteria, {
    model,
    of: ` of ${model}`,
    tests: exp1Tests,
    ...(options.family ? { family: options.family } : {}),
  });
}
