// Statistics over seeds for the experiment reports: mean ± sample standard deviation, and the two-sided
// paired t-test (scipy.stats.ttest_rel) for comparing two losses run on the same seeds.
import { createRequire } from "node:module";

import type ttestFunction from "@stdlib/stats-ttest";

// Loaded on the first test, not when the package is imported (test/package.test.ts).
let ttest: typeof ttestFunction | undefined;

export interface MeanStd {
  mean: number;
  /** sample standard deviation (n − 1 in the denominator); NaN when n < 2 */
  std: number;
  n: number;
}

/** Mean and sample standard deviation (n − 1). mean is NaN when n = 0, std NaN when n < 2. */
export function meanStd(xs: number[]): MeanStd {
  const n = xs.length;
  if (n === 0) return { mean: NaN, std: NaN, n };
  let sum = 0;
  for (const x of xs) sum += x;
  const mean = sum / n;
  if (n < 2) return { mean, std: NaN, n };
  let ss = 0;
  for (const x of xs) ss += (x - mean) * (x - mean);
  return { mean, std: Math.sqrt(ss / (n - 1)), n };
}

export interface PairedTTest {
  /** t statistic of the differences a − b */
  t: number;
  /** degrees of freedom, n − 1 */
  df: number;
  /** two-sided p-value */
  p: number;
}

/**
 * Two-sided paired Student t-test of a against b (the test on the differences a[i] − b[i]), as
 * scipy.stats.ttest_rel. undefined with fewer than 2 pairs; RangeError when the lengths differ.
 *
 * When all differences are equal (their spread is zero, or only floating-point rounding: at most 1e-12
 * of their largest magnitude) the t statistic is not defined: p = 1 (t = 0) when the differences are 0,
 * otherwise p = 0 and t = ±Infinity with the sign of the mean difference. Non-finite inputs give NaN.
 */
export function pairedTTest(a: number[], b: number[]): PairedTTest | undefined {
  if (a.length !== b.length) throw new RangeError(`pairedTTest: samples differ in length (${a.length} vs ${b.length})`);
  const n = a.length;
  if (n < 2) return undefined;
  const df = n - 1;
  const d = a.map((x, i) => x - b[i]!);
  if (!d.every(Number.isFinite)) return { t: NaN, df, p: NaN };
  const { mean, std } = meanStd(d);
  const scale = Math.max(...d.map(Math.abs));
  if (std <= 1e-12 * scale) {
    if (scale === 0) return { t: 0, df, p: 1 };
    return { t: mean > 0 ? Infinity : -Infinity, df, p: 0 };
  }
  ttest ??= createRequire(import.meta.url)("@stdlib/stats-ttest") as typeof ttestFunction;
  const r = ttest(a, b, { alternative: "two-sided" });
  return { t: r.statistic, df: r.df, p: r.pValue };
}

/** Significance stars: "***" p < 0.001, "**" p < 0.01, "*" p < 0.05, "" otherwise (or no test). */
export function stars(p: number | undefined): string {
  if (p === undefined || !Number.isFinite(p)) return "";
  if (p < 0.001) return "***";
  if (p < 0.01) return "**";
  if (p < 0.05) return "*";
  return "";
}

/** "12.34 ± 0.56" with `digits` decimals; just the mean when n < 2 (no spread to show), "–" when n = 0. */
export function formatMeanStd(s: MeanStd, digits: number): string {
  if (s.n === 0 || Number.isNaN(s.mean)) return "–";
  if (s.n < 2 || !Number.isFinite(s.std)) return s.mean.toFixed(digits);
  return `${s.mean.toFixed(digits)} ± ${s.std.toFixed(digits)}`;
}

/** The middle value of `xs` (the mean of the two middle ones for an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
