// How a verdict is decided: from an effect estimate with its 95 % confidence interval and a threshold the seed's
// criterion sets on one side. Met when the whole interval lies on the criterion's side of the threshold, not met
// when the whole interval lies on the other side, inconclusive when it straddles the threshold, and not enough
// runs when there is no interval (one seed). A criterion of several parts combines them (allOf, anyOf). The
// family of p-values a report shows is adjusted together (Holm).
import { holm } from "../../metrics/stats.ts";
import { fmt } from "../../report/table.ts";

/**
 * A criterion's outcome: met (the effect's 95 % interval lies wholly on the criterion's side of its threshold), not
 * met (wholly on the other side), inconclusive (the interval straddles the threshold), not enough runs (no interval:
 * one seed, or runs missing). framework/decision.ts decides it. Not informative: whatever the effect's interval,
 * the runs cannot show what the criterion asks (an experiment's own gate says why, e.g. experiment 2's
 * summaries that do not depend on the source).
 */
export type VerdictStatus = "met" | "not met" | "inconclusive" | "not enough runs" | "not informative";

/** One effect a verdict rests on: its estimate, 95 % interval, the threshold, and the part's own decision. */
export interface Evidence {
  /** what is estimated, e.g. "PPL − CE's" */
  effect: string;
  estimate: number;
  /** the 95 % interval; NaN when there is none */
  low: number;
  high: number;
  /** how the interval was obtained, e.g. "t over 3 seeds", "paired bootstrap over 100 test examples" */
  interval: string;
  /** the part holds when the effect is `side` `threshold` */
  side: "≤" | "≥";
  threshold: number;
  status: VerdictStatus;
  /** a test's one-sided p-value in the claimed direction, raw and Holm-adjusted over the report's family */
  p?: { raw: number; adjusted: number };
  /** how its numbers print */
  digits?: number;
  percent?: boolean;
  signed?: boolean;
}

/**
 * The status of an effect whose interval is [low, high], for a criterion that holds when the effect is `side`
 * `threshold`. A NaN bound (no interval) is "not enough runs"; an infinite one is a bound like any other.
 */
export function decide(low: number, high: number, side: "≤" | "≥", threshold: number): VerdictStatus {
  if (Number.isNaN(low) || Number.isNaN(high)) return "not enough runs";
  if (side === "≤") {
    if (high <= threshold) return "met";
    if (low > threshold) return "not met";
  } else {
    if (low >= threshold) return "met";
    if (high < threshold) return "not met";
  }
  return "inconclusive";
}

/**
 * Every part must hold: not informative if any part is, else not met if any part is not met, else not enough runs,
 * else inconclusive, else met.
 */
export function allOf(statuses: readonly VerdictStatus[]): VerdictStatus {
  for (const s of ["not informative", "not met", "not enough runs", "inconclusive"] as const) {
    if (statuses.includes(s)) return s;
  }
  return "met";
}

/**
 * One part suffices: not informative if any part is (a met part the runs cannot show does not count), met if any
 * part is met, not met if every part is not met, else not enough runs / inconclusive.
 */
export function anyOf(statuses: readonly VerdictStatus[]): VerdictStatus {
  if (statuses.includes("not informative")) return "not informative";
  if (statuses.includes("met")) return "met";
  if (statuses.length > 0 && statuses.every((s) => s === "not met")) return "not met";
  return statuses.includes("not enough runs") ? "not enough runs" : "inconclusive";
}

/** An effect's interval from wherever it came, before it is compared with a threshold. */
export interface Estimated {
  estimate: number;
  low: number;
  high: number;
  /** how the interval was obtained, e.g. "t over 3 seeds" */
  interval: string;
}

/** How an effect prints: `digits` decimals, or a percentage with one decimal (signed when `signed`). */
export interface EffectFormat {
  digits?: number;
  percent?: boolean;
  signed?: boolean;
}

/** The evidence that `effect` (estimated with its interval) is `side` `threshold`, decided. */
export function evidence(
  effect: string,
  e: Estimated,
  side: "≤" | "≥",
  threshold: number,
  format: EffectFormat = {},
): Evidence {
  return { effect, ...e, side, threshold, status: decide(e.low, e.high, side, threshold), ...format };
}

/** A number of an evidence as it prints: "−0.12", "+16.8 %", "∞". */
export function formatEffect(x: number, f: EffectFormat): string {
  if (x === Infinity) return "∞";
  if (x === -Infinity) return "−∞";
  const sign = f.signed && x > 0 ? "+" : "";
  return f.percent ? `${sign}${fmt(100 * x, 1)} %` : `${sign}${fmt(x, f.digits ?? 2)}`;
}

/**
 * "PPL − CE's: 161.52 [140.10, 183.00] (t over 3 seeds); needs ≤ 0.30 → not met", plus the p-values when the
 * evidence is a test.
 */
export function describeEvidence(e: Evidence): string {
  const f = (x: number) => formatEffect(x, e);
  const p = e.p ? `, one-sided p ${formatP(e.p.raw)} (Holm ${formatP(e.p.adjusted)})` : "";
  const shown = Number.isNaN(e.low)
    ? `${f(e.estimate)} (${e.interval})`
    : `${f(e.estimate)} [${f(e.low)}, ${f(e.high)}]`;
  const how = Number.isNaN(e.low) ? "" : ` (${e.interval}${p})`;
  return `${e.effect}: ${shown}${how}; needs ${e.side} ${f(e.threshold)} → ${e.status}`;
}

/** A p-value as the reports print it: 2 significant digits, "< 0.001" style below the test's resolution. */
export function formatP(p: number): string {
  if (!Number.isFinite(p)) return "–";
  return p < 1e-4 ? p.toExponential(1) : p.toPrecision(2);
}

/**
 * The p-values a report shows, adjusted together by Holm's step-down method: every test is added first (`add`),
 * then read back adjusted (`adjusted`); adding after the first read is an error, so no table reads an adjustment
 * its own tests were left out of.
 */
export class TestFamily {
  private readonly raw = new Map<string, number>();
  private done: Map<string, number> | undefined;

  add(id: string, p: number): void {
    if (this.done) throw new Error(`TestFamily: "${id}" added after the family was adjusted`);
    if (this.raw.has(id)) throw new Error(`TestFamily: "${id}" added twice`);
    this.raw.set(id, p);
  }

  /** the number of tests with a finite p-value */
  get size(): number {
    return [...this.raw.values()].filter(Number.isFinite).length;
  }

  has(id: string): boolean {
    return this.raw.has(id);
  }

  /** `id`'s Holm-adjusted p over the whole family; an error for a test never added */
  adjusted(id: string): number {
    if (!this.done) {
      const ids = [...this.raw.keys()];
      const adjusted = holm(ids.map((k) => this.raw.get(k)!));
      this.done = new Map(ids.map((k, i) => [k, adjusted[i]!]));
    }
    const p = this.done.get(id);
    if (p === undefined) throw new Error(`TestFamily: "${id}" was never added`);
    return p;
  }
}
