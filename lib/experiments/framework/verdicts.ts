// The scaffolding of an experiment's verdicts, the seed's success criteria for each DPSM variation of a model:
// finding the groups compared, the effects over seeds with their 95 % intervals (framework/decision.ts decides
// from them), one verdict per criterion, the criteria every experiment states alike (calibration against CE and
// Brier, efficiency against CE), the tally of seeds × settings behind a robustness criterion, the number formats
// of the details, and the report's verdict section. What a criterion of one experiment measures (its task metric,
// its tests) stays with that experiment.
import { type MeanStd, pairedRatio, pairedTTest, proportionInterval } from "../../metrics/stats.ts";
import { fmt as fmtNumber } from "../../report/table.ts";
import { allOf, describeEvidence, type Estimated, evidence, TestFamily } from "./decision.ts";
import { type AuditResult, auditedThroughput } from "./efficiency-audit.ts";
import { verdictTable } from "./report.ts";
import type { Evidence, GroupSummary, Verdict, VerdictStatus } from "./spec.ts";

/** A number in a verdict's detail: 2 decimals unless it says otherwise. */
export const fmt = (x: number, d = 2): string => fmtNumber(x, d);
/** "12.3 % lower" / "4.5 % higher" for a relative change r (−0.123 / 0.045). */
export const change = (r: number, lower = "lower", higher = "higher"): string =>
  Number.isFinite(r) ? `${fmt(100 * Math.abs(r), 1)} % ${r <= 0 ? lower : higher}` : "–";

/** A group of one model by variation and setting (default: clean). */
export type GroupLookup<G> = (variation: string, setting?: string) => G | undefined;

/** The groups of `model`, by variation and setting; runs told apart by key params (a sweep's, an ablation's) aside. */
export function groupLookup<G extends GroupSummary>(groups: readonly G[], model: string): GroupLookup<G> {
  return (variation, setting = "clean") =>
    groups.find(({ key: k }) => k.model === model && k.setting === setting && k.variation === variation && !k.params);
}

/** The verdicts of one variation as its criteria find them. */
export class Verdicts {
  readonly list: Verdict[] = [];
  /** the criterion decided from its evidence (every part must hold unless `status` says otherwise) */
  decide(
    criterion: string,
    parts: Evidence[],
    detail: string,
    status: VerdictStatus = allOf(parts.map((e) => e.status)),
  ) {
    this.list.push({ criterion, status, detail, evidence: parts });
  }
  /** the criterion could not be judged: it needs `what` */
  missing(criterion: string, what: string): void {
    this.list.push({ criterion, status: "not enough runs", detail: `needs ${what}` });
  }
}

/** What every criterion compares: the DPSM variation judged, CE and, when it ran, Brier, all of one model. */
export interface Compared<G> {
  model: string;
  dpsm: string;
  d: G;
  ce: G;
  brier: G | undefined;
  get: GroupLookup<G>;
  /** the report's family of tests (Holm), holding this variation's tests among the others */
  family: TestFamily;
  /** the family id of one of this variation's verdict tests, e.g. `test("ece10 < ce")` */
  test: (what: string) => string;
}
/** A variation's verdict tests: family id → p-value (one-sided in the claimed direction). */
export type VerdictTests<G> = (compared: Omit<Compared<G>, "family">) => Record<string, number>;
export type Criterion<G> = (groups: Compared<G>, verdicts: Verdicts) => void;

/** The family id of a verdict's test: model, DPSM variation, what is tested. */
export const verdictTestId = (model: string, dpsm: string, what: string): string => `verdict|${model}|${dpsm}|${what}`;

/** What a variation's criteria compare, less the family; undefined when its runs or CE's are missing. */
function comparedOf<G>(get: GroupLookup<G>, model: string, dpsm: string): Omit<Compared<G>, "family"> | undefined {
  const d = get(dpsm);
  const ce = get("ce");
  if (!d || !ce) return undefined;
  return { model, dpsm, d, ce, brier: get("brier"), get, test: (what) => verdictTestId(model, dpsm, what) };
}

/** The verdict tests of `dpsm` (family id → p), for a report to add to its family before it adjusts. */
export function verdictTests<G>(
  get: GroupLookup<G>,
  model: string,
  dpsm: string,
  tests: VerdictTests<G>,
): Record<string, number> {
  const compared = comparedOf(get, model, dpsm);
  return compared ? tests(compared) : {};
}

/**
 * The verdicts of the DPSM variation `dpsm`: each of `criteria` in turn, or one "not enough runs" verdict when
 * its runs or CE's are missing (`of` says whose runs, e.g. " of tiny"). `family`: the report's tests, Holm-adjusted
 * together, holding this variation's `tests` (added before); without one, a family of this variation's tests alone.
 */
export function judgeVariation<G>(
  get: GroupLookup<G>,
  dpsm: string,
  criteria: readonly Criterion<G>[],
  options: { model: string; of?: string; family?: TestFamily; tests?: VerdictTests<G> },
): Verdict[] {
  const v = new Verdicts();
  const compared = comparedOf(get, options.model, dpsm);
  if (!compared) {
    v.missing("all", `${dpsm} and ce runs${options.of ?? ""}`);
    return v.list;
  }
  let family = options.family;
  if (!family) {
    family = new TestFamily();
    for (const [id, p] of Object.entries(options.tests?.(compared) ?? {})) family.add(id, p);
  }
  for (const criterion of criteria) criterion({ ...compared, family }, v);
  return v.list;
}

/**
 * The report's verdict section: per DPSM variation its verdict table (each also kept in `into`, for
 * results.json), after how the verdicts are decided.
 */
export function verdictSection(
  variations: readonly string[],
  judge: (dpsm: string) => Verdict[],
  into: Record<string, Verdict[]>,
): string[] {
  const lines = ["### Verdicts (the seed's success criteria)", "", ...HOW_DECIDED, ""];
  for (const dpsm of variations) {
    const v = judge(dpsm);
    into[dpsm] = v;
    lines.push(`**${dpsm}**`, "", verdictTable(v), "");
  }
  return lines;
}

/** How a verdict is decided, as the report says it above the verdict tables. */
export const HOW_DECIDED = [
  "Each criterion is decided from its effect's 95 % confidence interval against the seed's threshold: " +
    "**met** when the whole interval lies on the criterion's side of the threshold, **not met** when it lies " +
    "wholly on the other side, **inconclusive** when it straddles the threshold, **not enough runs** when there " +
    "is no interval (one seed) or runs are missing, **not informative** when the runs cannot show what the " +
    "criterion asks whatever the interval (the report says why). A criterion of several parts is met when every part is; " +
    "significance is one-sided in the claimed direction, its p Holm-adjusted over every p-value this report shows.",
];

/** The per-seed values of two groups over the seeds both ran, in `a`'s seed order. */
export function pairedValues<G extends GroupSummary>(
  a: G,
  b: G,
  value: (g: G, i: number) => number,
): { x: number[]; y: number[]; seeds: number[] } {
  const pairs = sharedSeeds(a, b);
  return {
    x: pairs.map(({ i }) => value(a, i)),
    y: pairs.map(({ j }) => value(b, j)),
    seeds: pairs.map(({ seed }) => seed),
  };
}

/** The interval text of an effect over seeds, and the lack of one with fewer than 2. */
const overSeeds = (n: number, how = "t") =>
  n < 2 ? `${n} seed${n === 1 ? "" : "s"}: no interval` : `${how} over ${n} seeds`;

/** The mean paired difference x − y over seeds with its 95 % t interval (NaN bounds with fewer than 2 seeds). */
export function seedDifference(x: number[], y: number[]): Estimated {
  const t = pairedTTest(x, y);
  const estimate = x.length ? x.reduce((s, v, i) => s + v - y[i]!, 0) / x.length : NaN;
  return { estimate, low: t?.low ?? NaN, high: t?.high ?? NaN, interval: overSeeds(x.length) };
}

/** mean(x) / mean(y) over seeds with Fieller's 95 % interval (NaN bounds with fewer than 2 seeds). */
export function seedRatio(x: number[], y: number[]): Estimated {
  const r = pairedRatio(x, y);
  const estimate = x.reduce((s, v) => s + v, 0) / y.reduce((s, v) => s + v, 0);
  return { estimate, low: r?.low ?? NaN, high: r?.high ?? NaN, interval: overSeeds(x.length, "Fieller") };
}

/** An estimate shifted and scaled: a·e + b (bounds swapped when a < 0), e.g. a reduction 1 − ratio. */
export function affine(e: Estimated, a: number, b: number): Estimated {
  const [l, h] = [a * e.low + b, a * e.high + b];
  return { ...e, estimate: a * e.estimate + b, low: a < 0 ? h : l, high: a < 0 ? l : h };
}

/** The verdict's detail with its evidence spelled out first. */
export function withEvidence(parts: readonly Evidence[], detail: string): string {
  return [...parts.map(describeEvidence), detail].filter(Boolean).join("; ");
}

/**
 * From this many common seeds on, an effect is estimated over seeds (its t or Fieller interval); with fewer, an
 * experiment that keeps per-item scores (experiment 2's test examples, experiment 1's test sequences) estimates it
 * by a paired bootstrap over those items instead.
 */
export const SEEDS_FOR_T = 3;

type WithEce = GroupSummary & { metrics: Record<"ece10", MeanStd>; perSeed: Record<"ece10", number[]> };

/** mean ECE-10 of `a` / mean of `b` over the seeds both ran, with Fieller's 95 % interval over seeds. */
export function seedEceRatio(a: WithEce, b: WithEce): Estimated {
  const vs = pairedValues(a, b, (g, i) => g.perSeed.ece10[i]!);
  return seedRatio(vs.x, vs.y);
}

/**
 * Calibration: ECE-10 at least 25 % below CE's (the interval of the ratio of mean ECE-10, `ratio`: its reduction
 * 1 − ratio must be ≥ 25 % across the interval) and within 5 % of Brier's (ratio − 1 ≤ 5 %). `ratio`: Fieller's
 * over seeds unless an experiment has an interval over its test items for few seeds.
 */
export function calibrationFrom<G extends WithEce>(ratio: (a: G, b: G) => Estimated): Criterion<G> {
  return ({ d, ce, brier }, v) => {
    const c = "Calibration: ECE-10 at least 25 % below CE's and within 5 % of Brier's";
    if (!brier) return v.missing(c, "brier runs");
    const parts = [
      evidence("ECE-10 reduction vs CE's", affine(ratio(d, ce), -1, 1), "≥", 0.25, { percent: true, signed: true }),
      evidence("ECE-10 vs Brier's", affine(ratio(d, brier), 1, -1), "≤", 0.05, { percent: true, signed: true }),
    ];
    const e = d.metrics.ece10.mean;
    v.decide(
      c,
      parts,
      `ECE-10 ${fmt(e, 4)} vs CE's ${fmt(ce.metrics.ece10.mean, 4)} and Brier's ${fmt(brier.metrics.ece10.mean, 4)}`,
    );
  };
}

/** The calibration criterion with Fieller's intervals over seeds (calibrationFrom). */
export const calibrationCriterion: Criterion<WithEce> = calibrationFrom(seedEceRatio);

/** The seed's efficiency bound on a step-time ratio: throughput at most 2 % below, i.e. step time ≤ 1/0.98. */
export const STEP_TIME_BOUND = 1 / 0.98;

/**
 * Efficiency: throughput at most 2 % below CE's, from the interleaved audit when there is one against CE (its
 * median step-time ratio with the bootstrap interval over rounds), else from the runs' own tokens/s (Fieller's
 * interval of the ratio over seeds; the detail says so), and peak memory at most 500 MB above CE's (t interval
 * of the paired difference over seeds) where runs' peaks are comparable (`memoryComparable`; on the CPU a run's
 * peak is the process's high-water mark).
 */
export function efficiencyCriterion(options: {
  audit?: AuditResult | undefined;
  memoryComparable: boolean;
}): Criterion<GroupSummary> {
  return ({ dpsm, d, ce }, v) => {
    const c = options.memoryComparable
      ? "Efficiency: throughput at most 2 % below CE's, peak memory at most 500 MB above"
      : "Efficiency: throughput at most 2 % below CE's (memory: not comparable between runs on the CPU)";
    const parts: Evidence[] = [];
    const details: string[] = [];
    const audited = options.audit?.reference === "ce" ? auditedThroughput(options.audit, dpsm) : undefined;
    if (audited) {
      parts.push(audited.evidence);
      details.push(audited.detail);
    } else {
      const tps = pairedValues(d, ce, (g, i) => g.observations[i]?.efficiency?.tokensPerSecond ?? NaN);
      parts.push(
        evidence("tokens/s vs CE's", affine(seedRatio(tps.x, tps.y), 1, -1), "≥", -0.02, {
          percent: true,
          signed: true,
        }),
      );
      details.push(
        `tokens/s ${fmt(d.efficiency?.tokensPerSecond.mean ?? NaN, 0)} vs CE's ` +
          `${fmt(ce.efficiency?.tokensPerSecond.mean ?? NaN, 0)} (separate runs' wall-clock, no audit)`,
      );
    }
    if (options.memoryComparable) {
      const mb = pairedValues(d, ce, (g, i) => (g.observations[i]?.efficiency?.peakMemoryBytes ?? NaN) / 2 ** 20);
      parts.push(evidence("peak memory − CE's (MB)", seedDifference(mb.x, mb.y), "≤", 500, { digits: 0 }));
    }
    v.decide(c, parts, details.join("; "));
  };
}

/** The seeds two groups both ran: each seed with its index in `a`'s and in `b`'s per-seed numbers. */
export function sharedSeeds(a: GroupSummary, b: GroupSummary): { seed: number; i: number; j: number }[] {
  return a.seeds.flatMap((seed, i) => {
    const j = b.seeds.indexOf(seed);
    return j < 0 ? [] : [{ seed, i, j }];
  });
}

/**
 * A robustness criterion from its comparisons (seed × setting × evaluation set): the share in which the advantage
 * holds, with its exact (Clopper–Pearson) 95 % interval, must be ≥ 75 %. It needs at least 2 seeds (the seed's
 * "across settings and seeds"); the comparisons of one trained model on several sets are not independent, so the
 * interval is, if anything, too narrow.
 */
export function tallyCriterion(
  v: Verdicts,
  criterion: string,
  checks: readonly { ok: boolean; where: string }[],
  seeds: number,
) {
  if (seeds < 2) return v.missing(criterion, "at least 2 seeds");
  const ok = checks.filter((x) => x.ok);
  const share = proportionInterval(ok.length, checks.length);
  if (!share) return v.missing(criterion, "at least one seed × setting comparison");
  const e = evidence(
    "share of comparisons where it holds",
    { ...share, interval: `Clopper–Pearson, ${checks.length} comparisons` },
    "≥",
    0.75,
    { percent: true },
  );
  v.decide(criterion, [e], `holds in ${ok.length} of ${checks.length}: ${ok.map((x) => x.where).join(", ") || "none"}`);
}
