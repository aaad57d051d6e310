// Statistics over seeds for the experiment reports: mean ± sample standard deviation; the paired t-test
// (scipy.stats.ttest_rel) with its one-sided p-values and the t interval of the mean difference; Fieller's interval
// for a ratio of paired means; the Clopper–Pearson interval of a proportion; the exact sign test; Holm's
// adjustment of a family of p-values; and significance stars that only a difference in the better direction earns.
import { createRequire } from "node:module";

import type tQuantileFunction from "@stdlib/stats-base-dists-t-quantile";
import type binomialTestFunction from "@stdlib/stats-binomial-test";
import type padjustFunction from "@stdlib/stats-padjust";
import type ttestFunction from "@stdlib/stats-ttest";

// Loaded on first use, not when the package is imported (test/package.test.ts).
const load = createRequire(import.meta.url);
let ttest: typeof ttestFunction | undefined;
let tQuantile: typeof tQuantileFunction | undefined;
let binomialTest: typeof binomialTestFunction | undefined;
let padjust: typeof padjustFunction | undefined;

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

/** An estimate with its confidence interval. */
export interface Interval {
  estimate: number;
  low: number;
  high: number;
  /** e.g. 0.95 */
  confidence: number;
}

export interface PairedTTest {
  /** t statistic of the differences a − b */
  t: number;
  /** degrees of freedom, n − 1 */
  df: number;
  /** two-sided p-value */
  p: number;
  /** one-sided p-value of the alternative mean(a − b) < 0 */
  pLess: number;
  /** one-sided p-value of the alternative mean(a − b) > 0 */
  pGreater: number;
  /** mean of a − b */
  mean: number;
  /** two-sided 95 % t interval of the mean of a − b */
  low: number;
  high: number;
}

/**
 * Paired Student t-test of a against b (the test on the differences a[i] − b[i]), as scipy.stats.ttest_rel: the
 * two-sided p-value, both one-sided ones, and the 95 % t interval of the mean difference. undefined with fewer
 * than 2 pairs; RangeError when the lengths differ.
 *
 * When all differences are equal (their spread is zero, or only floating-point rounding: at most 1e-12 of their
 * largest magnitude) the t statistic is not defined: the interval is the point itself; when the differences are 0,
 * t = 0 and every p-value is 1 (no direction is supported); otherwise t = ±Infinity with the sign of the mean
 * difference, p = 0 two-sided and in that direction, 1 in the other. Non-finite inputs give NaN throughout.
 */
export function pairedTTest(a: number[], b: number[]): PairedTTest | undefined {
  if (a.length !== b.length) throw new RangeError(`pairedTTest: samples differ in length (${a.length} vs ${b.length})`);
  const n = a.length;
  if (n < 2) return undefined;
  const df = n - 1;
  const d = a.map((x, i) => x - b[i]!);
  if (!d.every(Number.isFinite))
    return { t: NaN, df, p: NaN, pLess: NaN, pGreater: NaN, mean: NaN, low: NaN, high: NaN };
  const { mean, std } = meanStd(d);
  const scale = Math.max(...d.map(Math.abs));
  if (std <= 1e-12 * scale) {
    const point = { mean, low: mean, high: mean };
    if (scale === 0) return { t: 0, df, p: 1, pLess: 1, pGreater: 1, ...point };
    const up = mean > 0;
    return { t: up ? Infinity : -Infinity, df, p: 0, pLess: up ? 1 : 0, pGreater: up ? 0 : 1, ...point };
  }
  ttest ??= load("@stdlib/stats-ttest") as typeof ttestFunction;
  const two = ttest(a, b, { alternative: "two-sided", alpha: 0.05 });
  const less = ttest(a, b, { alternative: "less" });
  const greater = ttest(a, b, { alternative: "greater" });
  return {
    t: two.statistic,
    df: two.df,
    p: two.pValue,
    pLess: less.pValue,
    pGreater: greater.pValue,
    mean,
    low: two.ci[0]!,
    high: two.ci[1]!,
  };
}

/** The two-sided `confidence` quantile of Student's t with `df` degrees of freedom (e.g. 4.303 for 0.95, df 2). */
export function tCritical(df: number, confidence = 0.95): number {
  tQuantile ??= load("@stdlib/stats-base-dists-t-quantile") as typeof tQuantileFunction;
  return tQuantile(1 - (1 - confidence) / 2, df);
}

/**
 * The ratio of paired means mean(x) / mean(y) with Fieller's (1954) interval: the θ for which the paired t-test
 * of x − θ·y does not reject mean 0 at 1 − `confidence`. It is the interval the seed's relative thresholds need
 * (ECE at least 25 % below CE's, i.e. ratio ≤ 0.75): a threshold lies outside it exactly when that t-test of the
 * contrast at the threshold rejects. Unbounded (−∞, ∞) when mean(y) itself is not significantly away from 0 (the
 * set is then not an interval). undefined with fewer than 2 pairs. No statistics package has Fieller's interval
 * (@stdlib has the t quantile, used here), so it is written out: the roots of
 * (m_y² − q·s_yy)·θ² − 2(m_x·m_y − q·s_xy)·θ + (m_x² − q·s_xx) = 0 with q = t²/n and sample (co)variances.
 */
export function pairedRatio(x: readonly number[], y: readonly number[], confidence = 0.95): Interval | undefined {
  if (x.length !== y.length) throw new RangeError(`pairedRatio: samples differ in length (${x.length} vs ${y.length})`);
  const n = x.length;
  if (n < 2) return undefined;
  if (![...x, ...y].every(Number.isFinite)) return { estimate: NaN, low: NaN, high: NaN, confidence };
  const mx = x.reduce((s, v) => s + v, 0) / n;
  const my = y.reduce((s, v) => s + v, 0) / n;
  let sxx = 0;
  let syy = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    sxx += (x[i]! - mx) ** 2;
    syy += (y[i]! - my) ** 2;
    sxy += (x[i]! - mx) * (y[i]! - my);
  }
  [sxx, syy, sxy] = [sxx / (n - 1), syy / (n - 1), sxy / (n - 1)];
  const q = tCritical(n - 1, confidence) ** 2 / n;
  const a = my * my - q * syy;
  const b = mx * my - q * sxy;
  const c = mx * mx - q * sxx;
  const estimate = mx / my;
  if (!(a > 0)) return { estimate, low: -Infinity, high: Infinity, confidence };
  // a > 0: the quadratic is ≤ 0 at θ = mx/my (there it is −q·var(x − θy)), so the discriminant is ≥ 0.
  const root = Math.sqrt(Math.max(0, b * b - a * c));
  return { estimate, low: (b - root) / a, high: (b + root) / a, confidence };
}

/** The share successes / n with its exact (Clopper–Pearson) two-sided `confidence` interval; undefined when n = 0. */
export function proportionInterval(successes: number, n: number, confidence = 0.95): Interval | undefined {
  if (n === 0) return undefined;
  binomialTest ??= load("@stdlib/stats-binomial-test") as typeof binomialTestFunction;
  const r = binomialTest(successes, n, { alpha: 1 - confidence });
  return { estimate: successes / n, low: r.ci[0]!, high: r.ci[1]!, confidence };
}

/**
 * The two-sided exact sign test of `wins` against `losses` (ties left out before): the binomial test of
 * wins out of wins + losses against p = 1/2, as scipy.stats.binomtest(wins, wins + losses).pvalue. NaN when both
 * are 0 (nothing to test).
 */
export function signTest(wins: number, losses: number): number {
  if (wins + losses === 0) return NaN;
  binomialTest ??= load("@stdlib/stats-binomial-test") as typeof binomialTestFunction;
  return binomialTest(wins, wins + losses, { p: 0.5, alternative: "two-sided" }).pValue;
}

/**
 * Holm's (1979) step-down adjustment of a family of p-values (as R's p.adjust(p, "holm")), in their order.
 * Non-finite p-values are left out of the family and stay NaN.
 */
export function holm(ps: readonly number[]): number[] {
  const finite = ps.flatMap((p, i) => (Number.isFinite(p) ? [i] : []));
  const out = ps.map(() => NaN);
  if (finite.length === 0) return out;
  padjust ??= load("@stdlib/stats-padjust") as typeof padjustFunction;
  const adjusted = padjust(
    finite.map((i) => ps[i]!),
    "holm",
  );
  finite.forEach((i, k) => (out[i] = adjusted[k]!));
  return out;
}

/** Significance stars: "***" p < 0.001, "**" p < 0.01, "*" p < 0.05, "" otherwise (or no test). */
export function stars(p: number | undefined): string {
  if (p === undefined || !Number.isFinite(p)) return "";
  if (p < 0.001) return "***";
  if (p < 0.01) return "**";
  if (p < 0.05) return "*";
  return "";
}

/**
 * Stars for a comparison whose difference points `better` or not: a significant difference in the worse direction
 * earns none; it is marked "(worse)" instead, so a table never rewards the wrong direction.
 */
export function directionalStars(p: number | undefined, better: boolean): string {
  const s = stars(p);
  if (!s) return "";
  return better ? s : " (worse)";
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
