// The seed's success criteria for a DPSM variation of one model, judged from experiment 2's aggregated numbers
// (ROUGE-L and ECE-10 of the last checkpoint on the test split unless a criterion says otherwise). ROUGE-L effects
// have per-example scores: with fewer than 3 seeds their intervals come from a bootstrap over the test examples
// (Koehn's paired bootstrap; per-example scores averaged over the seeds both ran, so the interval covers the test
// set's sampling, not the seeds'), from 3 seeds on from the t interval over seeds. ECE has no per-example values:
// its intervals are over seeds only. The scaffolding, the decision rule and the shared criteria:
// ../framework/verdicts.ts, ../framework/decision.ts.
import { bootstrapContrast, type PairedBootstrap, pairedBootstrap, type Stratum } from "../../metrics/bootstrap.ts";
import { pairedTTest } from "../../metrics/stats.ts";
import { anyOf, allOf, decide, type Estimated, evidence, type TestFamily } from "../framework/decision.ts";
import type { AuditResult } from "../framework/efficiency-audit.ts";
import type { Evidence, Verdict } from "../framework/spec.ts";
import {
  calibrationCriterion,
  type Criterion,
  efficiencyCriterion,
  fmt,
  type GroupLookup,
  judgeVariation,
  pairedValues,
  seedDifference,
  SEEDS_FOR_T,
  sharedSeeds,
  tallyCriterion,
  type VerdictTests,
  Verdicts,
  verdictTests,
} from "../framework/verdicts.ts";
import type { Exp2Group } from "./analysis.ts";
import type { FinetuneResult } from "./run-job.ts";
import type { SourceGate } from "./source-gate.ts";

/** From this many common seeds on, ROUGE-L effects are estimated over seeds rather than over test examples. */
export { SEEDS_FOR_T };

/** The seeds all of `groups` ran. */
const commonSeeds = (groups: readonly Exp2Group[]) =>
  groups.reduce((s, g) => s.filter((x) => g.seeds.includes(x)), groups[0]?.seeds ?? []);

/**
 * Per-example ROUGE-L F × 100 of `g` on `set` (the test split when undefined), last checkpoint, averaged over
 * `seeds` (every run of one model is evaluated on the same examples).
 */
function perExample(g: Exp2Group, seeds: readonly number[], set?: string): number[] {
  const runs = seeds.map((seed) => {
    const last = (g.observations.find((o) => o.key.seed === seed)!.source as FinetuneResult).last;
    return (set === undefined ? last.test : last.transfer[set]!).rougeLPerExample;
  });
  return runs[0]!.map((_, j) => (100 * runs.reduce((s, r) => s + r[j]!, 0)) / runs.length);
}

/** How an interval over the test examples was obtained, for the verdict. */
const overExamples = (n: number, seeds: readonly number[], what = "paired bootstrap") =>
  `${what} over ${n} test examples, seed${seeds.length === 1 ? "" : "s"} ${seeds.join(", ")} ` +
  `(${seeds.length > 1 ? "per-example scores averaged; " : ""}seed variance not covered)`;

/**
 * Koehn's paired bootstrap of ROUGE-L F (test split, last checkpoint) between two groups, on per-example scores
 * averaged over the seeds both ran (bootstrap seed: the first of them); undefined without a common seed.
 */
export function rougeBootstrap(
  a: Exp2Group,
  b: Exp2Group,
  samples: number,
): (PairedBootstrap & { seeds: number[]; examples: number }) | undefined {
  const seeds = commonSeeds([a, b]);
  if (seeds.length === 0) return undefined;
  const [x, y] = [perExample(a, seeds), perExample(b, seeds)];
  return { ...pairedBootstrap(x, y, { samples, seed: seeds[0]! }), seeds, examples: x.length };
}

/** ROUGE-L of `a` − `b` with its 95 % interval: over seeds from SEEDS_FOR_T on, else over the test examples. */
function rougeDifference(a: Exp2Group, b: Exp2Group, samples: number): Estimated {
  const seeds = commonSeeds([a, b]);
  if (seeds.length >= SEEDS_FOR_T || seeds.length === 0) {
    const vs = pairedValues(a, b, (g, i) => g.perSeed.rougeL[i]!);
    return seedDifference(vs.x, vs.y);
  }
  const r = rougeBootstrap(a, b, samples)!;
  return { estimate: r.meanDifference, low: r.low, high: r.high, interval: overExamples(r.examples, r.seeds) };
}

/** The family id of the per-example bootstrap of `variation` against `reference` (the report's table shows it). */
export const bootstrapTestId = (model: string, variation: string, reference: string): string =>
  `bootstrap|${model}|${variation}|${reference}`;

/**
 * Koehn's p-value for "a is better", as a member of a family: p = 0 only says no resample went the other way, so
 * it enters as 1 / samples, the test's resolution.
 */
export const koehnP = (b: PairedBootstrap): number => Math.max(b.pA, 1 / b.samples);

const rl = (g: Exp2Group) => g.metrics.rougeL.mean;

const quality =
  (samples: number): Criterion<Exp2Group> =>
  ({ d, ce, brier }, v) => {
    const c = "Task quality: ROUGE-L at least 0.3 above CE's, and never worse than both CE and Brier";
    if (!brier) return v.missing(c, "brier runs");
    const vsCe = rougeDifference(d, ce, samples);
    const gain = evidence("ROUGE-L − CE's", vsCe, "≥", 0.3, { signed: true });
    const notWorse = [
      evidence("never worse than both: ROUGE-L − Brier's", rougeDifference(d, brier, samples), "≥", 0, {
        signed: true,
      }),
      evidence("or ROUGE-L − CE's", vsCe, "≥", 0, { signed: true }),
    ];
    v.decide(
      c,
      [gain, ...notWorse],
      `ROUGE-L ${fmt(rl(d))} vs CE ${fmt(rl(ce))}, Brier ${fmt(rl(brier))}`,
      allOf([gain.status, anyOf(notWorse.map((e) => e.status))]),
    );
  };

const robustness: Criterion<Exp2Group> = ({ dpsm, d, ce, get }, v) => {
  const checks: { ok: boolean; where: string }[] = [];
  for (const setting of ["clean", "summary-swap"] as const) {
    const a = get(dpsm, setting);
    const b = get("ce", setting);
    if (!a || !b) continue;
    for (const { seed, i, j } of sharedSeeds(a, b)) {
      const holds = (x: typeof a.perSeed, y: typeof b.perSeed) =>
        x.rougeL[i]! >= y.rougeL[j]! && x.ece10[i]! < y.ece10[j]!;
      checks.push({ ok: holds(a.perSeed, b.perSeed), where: `${setting}/test/seed${seed}` });
      for (const [set, s] of Object.entries(a.sets)) {
        const t = b.sets[set];
        if (!t || set.startsWith("best")) continue;
        checks.push({ ok: holds(s!.perSeed, t.perSeed), where: `${setting}/${set}/seed${seed}` });
      }
    }
  }
  const c = "Robustness: DPSM's advantage (ROUGE-L ≥ CE's and ECE-10 below it) holds in ≥ 75 % of seeds × settings";
  tallyCriterion(v, c, checks, sharedSeeds(d, ce).length);
};

/**
 * DPSM's ROUGE-L drop − 0.7 × CE's drop (≤ 0 is the criterion) from one clean and one degraded measurement per
 * system: over seeds (t interval of the per-seed contrast) from SEEDS_FOR_T common seeds on, else a bootstrap over
 * the examples, both systems' scores paired within each example set (`cleanSet`/`degradedSet`: undefined for the
 * test split; the two sets are resampled independently when they differ).
 */
function dropContrast(
  clean: [Exp2Group, Exp2Group],
  degraded: [Exp2Group, Exp2Group],
  sets: { clean?: string; degraded?: string; perSeed: (g: Exp2Group, i: number, degraded: boolean) => number },
  samples: number,
): Estimated {
  const [dc, cc] = clean;
  const [dd, cd] = degraded;
  const seeds = commonSeeds([dc, cc, dd, cd]);
  if (seeds.length >= SEEDS_FOR_T || seeds.length === 0) {
    const at = (g: Exp2Group, s: number, deg: boolean) => sets.perSeed(g, g.seeds.indexOf(s), deg);
    const contrast = seeds.map((s) => at(dc, s, false) - at(dd, s, true) - 0.7 * (at(cc, s, false) - at(cd, s, true)));
    return seedDifference(
      contrast,
      contrast.map(() => 0),
    );
  }
  const combine = (a: number[], b: number[]) => a.map((x, j) => x - 0.7 * b[j]!);
  const u = combine(perExample(dc, seeds, sets.clean), perExample(cc, seeds, sets.clean));
  const w = combine(perExample(dd, seeds, sets.degraded), perExample(cd, seeds, sets.degraded));
  const strata: Stratum[] =
    sets.clean === sets.degraded
      ? [{ values: u.map((x, j) => x - w[j]!), weight: 1 }]
      : [
          { values: u, weight: 1 },
          { values: w, weight: -1 },
        ];
  const r = bootstrapContrast(strata, { samples, seed: seeds[0]! });
  const how = sets.clean === sets.degraded ? "paired bootstrap" : "bootstrap of both sets, each paired within";
  return { estimate: r.estimate, low: r.low, high: r.high, interval: overExamples(u.length, seeds, how) };
}

/**
 * Degradation: under summary-swap noise and under domain shift (each zero-shot set), DPSM's ROUGE-L drop at most
 * 70 % of CE's: the contrast drop − 0.7 × CE's drop with its interval must be ≤ 0 (dropContrast), every part.
 */
const degradation =
  (samples: number): Criterion<Exp2Group> =>
  ({ dpsm, d, ce, get }, v) => {
    const c = "Degradation: under summary-swap noise and domain shift, DPSM's ROUGE-L drop ≤ 70 % of CE's";
    const parts: Evidence[] = [];
    const drops: string[] = [];
    const show = (what: string, dropD: number, dropCe: number) =>
      drops.push(`${what}: drop ${fmt(dropD)} vs CE's ${fmt(dropCe)}`);
    const dn = get(dpsm, "summary-swap");
    const cn = get("ce", "summary-swap");
    if (dn && cn) {
      const perSeed = (g: Exp2Group, i: number) => g.perSeed.rougeL[i]!;
      const e = dropContrast([d, ce], [dn, cn], { perSeed }, samples);
      parts.push(evidence("swap noise: drop − 0.7 × CE's drop", e, "≤", 0, { signed: true }));
      show("swap noise", rl(d) - rl(dn), rl(ce) - rl(cn));
    }
    for (const set of Object.keys(d.sets).filter((s) => !s.startsWith("best"))) {
      if (!ce.sets[set]) continue;
      const perSeed = (g: Exp2Group, i: number, degraded: boolean) =>
        degraded ? g.sets[set]!.perSeed.rougeL[i]! : g.perSeed.rougeL[i]!;
      const e = dropContrast([d, ce], [d, ce], { degraded: set, perSeed }, samples);
      parts.push(evidence(`→ ${set} (zero-shot): drop − 0.7 × CE's drop`, e, "≤", 0, { signed: true }));
      show(`→ ${set}`, rl(d) - d.sets[set]!.metrics.rougeL.mean, rl(ce) - ce.sets[set]!.metrics.rougeL.mean);
    }
    if (!parts.length) return v.missing(c, "summary-swap runs or zero-shot sets");
    v.decide(c, parts, drops.join("; "));
  };

const SIGNIFICANCE_TEST = "rougeL > ce (one-sided paired t)";

/**
 * The significance criterion's test of `dpsm`, ROUGE-L above CE's: the one-sided paired t-test over seeds from
 * SEEDS_FOR_T common seeds on, else Koehn's bootstrap over the test examples (the report's bootstrap table shows
 * the same test under the same id).
 */
function significanceTest(
  { model, dpsm, d, ce, test }: Omit<Parameters<Criterion<Exp2Group>>[0], "family">,
  samples: number,
): { id: string; p: number; how: string } | undefined {
  const seeds = commonSeeds([d, ce]);
  if (seeds.length >= SEEDS_FOR_T) {
    const vs = pairedValues(d, ce, (g, i) => g.perSeed.rougeL[i]!);
    const t = pairedTTest(vs.x, vs.y)!;
    return { id: test(SIGNIFICANCE_TEST), p: t.pGreater, how: `one-sided paired t over ${seeds.length} seeds` };
  }
  const b = rougeBootstrap(d, ce, samples);
  if (!b) return undefined;
  return {
    id: bootstrapTestId(model, dpsm, "ce"),
    p: koehnP(b),
    how: `Koehn's paired bootstrap (${b.samples} samples): ${dpsm} better in ${b.winsA}, CE in ${b.winsB}, tied in ${b.ties}`,
  };
}

const exp2Tests =
  (samples: number): VerdictTests<Exp2Group> =>
  (compared) => {
    const t = significanceTest(compared, samples);
    return t ? { [t.id]: t.p } : {};
  };

/**
 * Significance: DPSM's ROUGE-L above CE's (significanceTest), Holm-adjusted over the report's family: met when the
 * adjusted p < 0.05, not met when the 95 % interval of the difference lies wholly below 0, inconclusive otherwise.
 */
const significance =
  (samples: number): Criterion<Exp2Group> =>
  (compared, v) => {
    const c = "Significance: DPSM's ROUGE-L above CE's (one-sided, Holm-adjusted p < 0.05)";
    const t = significanceTest(compared, samples);
    if (!t) return v.missing(c, "a seed both ran");
    const adjusted = compared.family.adjusted(t.id);
    const e = evidence("ROUGE-L − CE's", rougeDifference(compared.d, compared.ce, samples), "≥", 0, { signed: true });
    const worse = decide(e.low, e.high, "≥", 0) === "not met";
    e.status = adjusted < 0.05 ? "met" : worse ? "not met" : "inconclusive";
    e.p = { raw: t.p, adjusted };
    v.decide(c, [e], `${t.how}; Holm over the report's ${compared.family.size} tests`);
  };

/** The verdict tests of `dpsm` among one model's groups (family id → one-sided p), for the report's family. */
export function exp2VerdictTests(
  get: GroupLookup<Exp2Group>,
  model: string,
  dpsm: string,
  bootstrapSamples: number,
): Record<string, number> {
  return verdictTests(get, model, dpsm, exp2Tests(bootstrapSamples));
}

/**
 * `criterion` behind the source-dependence gate: decided as before, then, when the gate failed, "not informative"
 * with the gate's reason first (the effect as measured stays beside it, for the record).
 */
function gated(criterion: Criterion<Exp2Group>, gate: SourceGate | undefined): Criterion<Exp2Group> {
  if (!gate || gate.passed) return criterion;
  return (compared, v) => {
    const own = new Verdicts();
    criterion(compared, own);
    for (const verdict of own.list) {
      v.list.push({
        ...verdict,
        status: "not informative",
        detail: `source-dependence gate failed (${gate.reason}); as measured: ${verdict.status}. ${verdict.detail}`,
      });
    }
  };
}

/**
 * The verdicts of `dpsm` among one model's groups (`get`). `memoryComparable`: false on the CPU, where a run's
 * peak is the process's resident high-water mark, which also holds what earlier runs of the same process left
 * allocated; only CUDA's allocator peaks are per run. `family`: the report's tests (exp2VerdictTests among them).
 * `gate`: the model's source-dependence gate (source-gate.ts); when it failed, every criterion that rests on what
 * the models write or predict is "not informative" — all but efficiency, whose step time does not depend on it.
 */
export function exp2Verdicts(
  get: GroupLookup<Exp2Group>,
  dpsm: string,
  options: {
    model: string;
    bootstrapSamples: number;
    memoryComparable: boolean;
    audit?: AuditResult;
    family?: TestFamily;
    gate?: SourceGate;
  },
): Verdict[] {
  const n = options.bootstrapSamples;
  const efficiency = efficiencyCriterion({ audit: options.audit, memoryComparable: options.memoryComparable });
  const g = (criterion: Criterion<Exp2Group>) => gated(criterion, options.gate);
  const criteria = [
    g(quality(n)),
    g(calibrationCriterion),
    efficiency,
    g(robustness),
    g(degradation(n)),
    g(significance(n)),
  ];
  return judgeVariation(get, dpsm, criteria, {
    model: options.model,
    tests: exp2Tests(n),
    ...(options.family ? { family: options.family } : {}),
  });
}
