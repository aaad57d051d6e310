// The scaffolding of an experiment's verdicts, the seed's success criteria for each DPSM variation of a model:
// finding the groups compared, one verdict per criterion or "not enough runs", the criteria every experiment
// states alike (calibration against CE and Brier, efficiency against CE), the tally of seeds × settings behind a
// robustness criterion, the number formats of the details, and the report's verdict section. What a criterion
// of one experiment measures (its task metric, its tests) stays with that experiment.
import type { MeanStd } from "../../metrics/stats.ts";
import { fmt as fmtNumber } from "../../report/table.ts";
import { type AuditResult, auditedThroughput } from "./efficiency-audit.ts";
import { verdictTable } from "./report.ts";
import type { GroupSummary, Verdict } from "./spec.ts";

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
  /** the criterion judged: met or not, and the numbers it was judged on */
  judge(criterion: string, met: boolean, detail: string): void {
    this.list.push({ criterion, status: met ? "met" : "not met", detail });
  }
  /** the criterion could not be judged: it needs `what` */
  missing(criterion: string, what: string): void {
    this.list.push({ criterion, status: "not enough runs", detail: `needs ${what}` });
  }
}

/** What every criterion compares: the DPSM variation judged, CE and, when it ran, Brier, all of one model. */
export interface Compared<G> {
  dpsm: string;
  d: G;
  ce: G;
  brier: G | undefined;
  get: GroupLookup<G>;
}
export type Criterion<G> = (groups: Compared<G>, verdicts: Verdicts) => void;

/**
 * The verdicts of the DPSM variation `dpsm`: each of `criteria` in turn, or one "not enough runs" verdict when
 * its runs or CE's are missing (`of` says whose runs, e.g. " of tiny").
 */
export function judgeVariation<G>(
  get: GroupLookup<G>,
  dpsm: string,
  criteria: readonly Criterion<G>[],
  of = "",
): Verdict[] {
  const v = new Verdicts();
  const d = get(dpsm);
  const ce = get("ce");
  if (!d || !ce) {
    v.missing("all", `${dpsm} and ce runs${of}`);
    return v.list;
  }
  const compared = { dpsm, d, ce, brier: get("brier"), get };
  for (const criterion of criteria) criterion(compared, v);
  return v.list;
}

/**
 * The report's verdict section: per DPSM variation its verdict table (each also kept in `into`, for
 * results.json).
 */
export function verdictSection(
  variations: readonly string[],
  judge: (dpsm: string) => Verdict[],
  into: Record<string, Verdict[]>,
): string[] {
  const lines = ["### Verdicts (the seed's success criteria)", ""];
  for (const dpsm of variations) {
    const v = judge(dpsm);
    into[dpsm] = v;
    lines.push(`**${dpsm}**`, "", verdictTable(v), "");
  }
  return lines;
}

type WithEce = { metrics: Record<"ece10", MeanStd> };

/** Calibration: ECE-10 at least 25 % below CE's and within 5 % of Brier's. */
export const calibrationCriterion: Criterion<WithEce> = ({ d, ce, brier }, v) => {
  const c = "Calibration: ECE-10 at least 25 % below CE's and within 5 % of Brier's";
  if (!brier) return v.missing(c, "brier runs");
  const e = d.metrics.ece10.mean;
  const reduction = 1 - e / ce.metrics.ece10.mean;
  v.judge(
    c,
    reduction >= 0.25 && e <= 1.05 * brier.metrics.ece10.mean,
    `ECE-10 ${fmt(e, 4)}: ${change(-reduction)} than CE's ${fmt(ce.metrics.ece10.mean, 4)}, ` +
      `${change(e / brier.metrics.ece10.mean - 1)} than Brier's ${fmt(brier.metrics.ece10.mean, 4)}`,
  );
};

/**
 * Efficiency: throughput at most 2 % below CE's, from the interleaved audit when there is one against CE (else
 * from the runs' own wall-clocks, and the detail says so), and peak memory at most 500 MB above CE's where runs'
 * peaks are comparable (`memoryComparable`; on the CPU a run's peak is the process's high-water mark).
 */
export function efficiencyCriterion(options: {
  audit?: AuditResult | undefined;
  memoryComparable: boolean;
}): Criterion<GroupSummary> {
  return ({ dpsm, d, ce }, v) => {
    const c = options.memoryComparable
      ? "Efficiency: throughput at most 2 % below CE's, peak memory at most 500 MB above"
      : "Efficiency: throughput at most 2 % below CE's (memory: not comparable between runs on the CPU)";
    const drop = 1 - (d.efficiency?.tokensPerSecond.mean ?? NaN) / (ce.efficiency?.tokensPerSecond.mean ?? NaN);
    const mem = (d.efficiency?.peakMemoryMB.mean ?? NaN) - (ce.efficiency?.peakMemoryMB.mean ?? NaN);
    const memory = options.memoryComparable
      ? `; peak memory ${Math.abs(mem) < 0.5 ? "equal to" : `${fmt(Math.abs(mem), 0)} MB ${mem > 0 ? "above" : "below"}`} CE's`
      : "";
    const memoryOk = !options.memoryComparable || mem <= 500;
    const audited = options.audit?.reference === "ce" ? auditedThroughput(options.audit, dpsm) : undefined;
    if (audited) v.judge(c, audited.met && memoryOk, audited.detail + memory);
    else {
      v.judge(
        c,
        drop <= 0.02 && memoryOk,
        `tokens/s ${fmt(d.efficiency?.tokensPerSecond.mean ?? NaN, 0)} ` +
          `vs CE's ${fmt(ce.efficiency?.tokensPerSecond.mean ?? NaN, 0)} ` +
          `(${change(-drop, "slower", "faster")}; separate runs' wall-clock, no audit)${memory}`,
      );
    }
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
 * A robustness criterion from its comparisons (seed × setting × evaluation set): met when the advantage holds
 * in at least 75 % of them; at least 4 are needed.
 */
export function tallyCriterion(v: Verdicts, criterion: string, checks: readonly { ok: boolean; where: string }[]) {
  const ok = checks.filter((x) => x.ok);
  if (checks.length < 4) return v.missing(criterion, "at least 4 seed × setting comparisons");
  v.judge(
    criterion,
    ok.length / checks.length >= 0.75,
    `holds in ${ok.length} of ${checks.length} (${fmt((100 * ok.length) / checks.length, 0)} %): ` +
      `${ok.map((x) => x.where).join(", ") || "none"}`,
  );
}
