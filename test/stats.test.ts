// Statistics over seeds: mean ± sd, the paired t-test (two- and one-sided, with its interval) against an
// independent computation (t from the differences, p from the regularized incomplete beta function written out
// here, t quantiles from tables) and against scipy's values; Fieller's ratio interval against the t-test of the
// contrast it inverts; the Clopper–Pearson interval in closed form; Holm's adjustment worked by hand; stars that
// never reward the worse direction.
import test from "ava";

import {
  directionalStars,
  formatMeanStd,
  holm,
  meanStd,
  pairedRatio,
  pairedTTest,
  proportionInterval,
  stars,
  tCritical,
} from "../lib/metrics/stats.ts";

// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; ~15 significant digits).
function lnGamma(x: number): number {
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  x -= 1;
  let a = c[0]!;
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i]! / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

// Continued fraction for the incomplete beta (modified Lentz).
function betaCF(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 1000; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-15) break;
  }
  return h;
}

// Regularized incomplete beta I_x(a, b).
function betaInc(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(lnGamma(a + b) - lnGamma(a) - lnGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  return x < (a + 1) / (a + b + 2) ? (front * betaCF(a, b, x)) / a : 1 - (front * betaCF(b, a, 1 - x)) / b;
}

/** Independent two-sided paired t-test: t = mean(d) / (sd(d)/√n), p = I_{df/(df+t²)}(df/2, 1/2). */
function reference(a: number[], b: number[]) {
  const d = a.map((x, i) => x - b[i]!);
  const n = d.length;
  const m = d.reduce((s, x) => s + x, 0) / n;
  const sd = Math.sqrt(d.reduce((s, x) => s + (x - m) ** 2, 0) / (n - 1));
  const t = m / (sd / Math.sqrt(n));
  const df = n - 1;
  return { t, df, p: betaInc(df / (df + t * t), df / 2, 0.5) };
}

const close = (x: number, y: number, rel: number) => Math.abs(x - y) <= rel * Math.max(1, Math.abs(y));

// Literal paired samples, with scipy.stats.ttest_rel(a, b)'s (statistic, pvalue) for each (scipy 1.17).
const cases: { a: number[]; b: number[]; scipy: [number, number] }[] = [
  { a: [4, 4, 6, 6, 5], b: [5, 5, 5.5, 7, 5.8], scipy: [-2.2558335591813883, 0.08708095010284281] },
  { a: [30.1, 29.8, 30.5], b: [31.0, 30.9, 31.2], scipy: [-7.794228634059963, 0.01606530194334504] },
  {
    a: [0.12, 0.15, 0.11, 0.14, 0.13, 0.16],
    b: [0.1, 0.16, 0.09, 0.12, 0.13, 0.12],
    scipy: [2.0868250309207568, 0.09126712647458012],
  },
  { a: [1, 2], b: [0, 0.5], scipy: [5.0, 0.1256659163780024] },
];

test("pairedTTest matches an independent t and incomplete-beta p-value, and scipy's ttest_rel", (t) => {
  for (const { a, b, scipy } of cases) {
    const r = pairedTTest(a, b);
    const ref = reference(a, b);
    t.truthy(r);
    t.is(r!.df, a.length - 1);
    t.true(close(r!.t, ref.t, 1e-10), `t ${r!.t} vs ${ref.t}`);
    t.true(close(r!.p, ref.p, 1e-9), `p ${r!.p} vs ${ref.p}`);
    t.true(close(r!.t, scipy[0], 1e-10), `t ${r!.t} vs scipy ${scipy[0]}`);
    t.true(close(r!.p, scipy[1], 1e-9), `p ${r!.p} vs scipy ${scipy[1]}`);
    // Swapping the samples flips t and keeps p.
    const s = pairedTTest(b, a)!;
    t.true(close(s.t, -r!.t, 1e-12));
    t.true(close(s.p, r!.p, 1e-12));
  }
});

test("the reference p-value itself: t = 2.776445 with 4 df is the two-sided 5% point", (t) => {
  // t_{0.975, 4} = 2.7764451051977987 (tables); guards the reference against a shared mistake.
  t.true(close(betaInc(4 / (4 + 2.7764451051977987 ** 2), 2, 0.5), 0.05, 1e-9));
});

// Two-sided 97.5 % points of Student's t (tables), by degrees of freedom.
const T975: Record<number, number> = { 1: 12.706204736174707, 2: 4.302652729749464, 4: 2.7764451051977987 };

test("pairedTTest's one-sided p-values follow the sign of t, and its 95 % interval is mean ± t·se", (t) => {
  for (const { a, b } of cases) {
    const r = pairedTTest(a, b)!;
    const ref = reference(a, b);
    // One-sided: half the two-sided p in the direction of t, 1 − half in the other.
    const [toward, away] = [ref.p / 2, 1 - ref.p / 2];
    t.true(close(r.pLess, ref.t < 0 ? toward : away, 1e-9), `pLess ${r.pLess}`);
    t.true(close(r.pGreater, ref.t > 0 ? toward : away, 1e-9), `pGreater ${r.pGreater}`);
    const d = a.map((x, i) => x - b[i]!);
    const m = d.reduce((s, x) => s + x, 0) / d.length;
    const se = m / ref.t;
    const q = T975[ref.df];
    if (q === undefined) continue;
    t.true(close(r.mean, m, 1e-12));
    t.true(close(r.low, m - q * se, 1e-9), `low ${r.low} vs ${m - q * se}`);
    t.true(close(r.high, m + q * se, 1e-9), `high ${r.high} vs ${m + q * se}`);
  }
  // The second case: a is significantly lower than b (two-sided p 0.016): one-sided "a < b" p 0.008, "a > b" 0.992.
  const lower = pairedTTest(cases[1]!.a, cases[1]!.b)!;
  t.true(lower.pLess < 0.01 && lower.pGreater > 0.99 && lower.high < 0);
});

test("tCritical: the tables' two-sided 95 % points", (t) => {
  for (const [df, q] of Object.entries(T975)) t.true(close(tCritical(Number(df)), q, 1e-9), `df ${df}`);
});

test("pairedTTest edge cases: too few pairs, different lengths, equal differences", (t) => {
  t.is(pairedTTest([], []), undefined);
  t.is(pairedTTest([1], [2]), undefined);
  t.throws(() => pairedTTest([1, 2, 3], [1, 2]), { instanceOf: RangeError });
  const point = (m: number) => ({ mean: m, low: m, high: m });
  t.deepEqual(pairedTTest([1, 2, 3], [1, 2, 3]), { t: 0, df: 2, p: 1, pLess: 1, pGreater: 1, ...point(0) });
  t.deepEqual(pairedTTest([2, 3, 4], [1, 2, 3]), { t: Infinity, df: 2, p: 0, pLess: 1, pGreater: 0, ...point(1) });
  t.deepEqual(pairedTTest([1, 2, 3], [2, 3, 4]), { t: -Infinity, df: 2, p: 0, pLess: 0, pGreater: 1, ...point(-1) });
  // Differences equal up to floating-point rounding count as equal.
  const rounded = pairedTTest([1.1, 2.2, 3.3], [0.1, 1.2, 2.3])!;
  t.deepEqual([rounded.t, rounded.p, rounded.pLess, rounded.pGreater], [Infinity, 0, 1, 0]);
  const nan = pairedTTest([1, NaN, 3], [0, 1, 2])!;
  t.true(Number.isNaN(nan.t) && Number.isNaN(nan.p));
});

test("meanStd: sample standard deviation (n − 1), NaN where undefined", (t) => {
  const s = meanStd([2, 4, 4, 4, 5, 5, 7, 9]);
  t.is(s.n, 8);
  t.is(s.mean, 5);
  t.true(close(s.std, Math.sqrt(32 / 7), 1e-14));
  const one = meanStd([3.5]);
  t.is(one.mean, 3.5);
  t.true(Number.isNaN(one.std));
  t.is(one.n, 1);
  const none = meanStd([]);
  t.true(Number.isNaN(none.mean) && Number.isNaN(none.std));
  t.is(none.n, 0);
});

test("pairedRatio: Fieller's interval bounds are where the t-test of x − θ·y has p = 0.05", (t) => {
  const x = [0.0163, 0.0135, 0.0191];
  const y = [0.0191, 0.0141, 0.024];
  const r = pairedRatio(x, y)!;
  t.true(close(r.estimate, (0.0163 + 0.0135 + 0.0191) / (0.0191 + 0.0141 + 0.024), 1e-12));
  t.true(r.low < r.estimate && r.estimate < r.high);
  for (const theta of [r.low, r.high]) {
    const p = reference(
      x,
      y.map((v) => theta * v),
    ).p;
    t.true(close(p, 0.05, 1e-8), `p at θ = ${theta}: ${p}`);
  }
  // Inside the interval the contrast's test does not reject; outside it does.
  const mid = reference(
    x,
    y.map((v) => r.estimate * v),
  ).p;
  t.true(mid > 0.05);
  t.true(
    reference(
      x,
      y.map((v) => 1.2 * r.high * v),
    ).p < 0.05,
  );
  // A denominator not significantly away from 0: no bounded interval.
  const wide = pairedRatio([1, 2, 3], [-1, 1.5, 0.2])!;
  t.deepEqual([wide.low, wide.high], [-Infinity, Infinity]);
  // x exactly proportional to a denominator clearly away from 0 (t = 3√3 > 4.30 for every θ ≠ 0.5): the interval
  // is the ratio itself.
  const exact = pairedRatio([1, 1.5, 2], [2, 3, 4])!;
  t.deepEqual([exact.estimate, exact.low, exact.high], [0.5, 0.5, 0.5]);
  t.is(pairedRatio([1], [2]), undefined);
});

test("proportionInterval: Clopper–Pearson, in closed form at 0 and n successes", (t) => {
  const none = proportionInterval(0, 15)!;
  t.is(none.low, 0);
  t.true(close(none.high, 1 - 0.025 ** (1 / 15), 1e-9));
  const all = proportionInterval(15, 15)!;
  t.true(close(all.low, 0.025 ** (1 / 15), 1e-9));
  t.is(all.high, 1);
  t.is(proportionInterval(3, 4)!.estimate, 0.75);
  t.is(proportionInterval(0, 0), undefined);
});

test("holm: the step-down adjustment worked by hand", (t) => {
  // m = 5, sorted p: 0.01·5 = 0.05, 0.02·4 = 0.08, 0.03·3 = 0.09, 0.04·2 = 0.08 → 0.09 (monotone), 0.05·1 → 0.09.
  const adjusted = holm([0.04, 0.01, 0.05, 0.03, 0.02]);
  const expected = [0.09, 0.05, 0.09, 0.09, 0.08];
  adjusted.forEach((p, i) => t.true(close(p, expected[i]!, 1e-12), `${i}: ${p} vs ${expected[i]}`));
  // Capped at 1; a NaN is no member of the family (m = 2 here) and stays NaN.
  const capped = holm([0.6, NaN, 0.02]);
  t.true(close(capped[0]!, 0.6, 1e-12) && Number.isNaN(capped[1]!) && close(capped[2]!, 0.04, 1e-12));
  t.deepEqual(holm([]), []);
});

test("directionalStars: a significant difference in the worse direction earns no stars", (t) => {
  t.is(directionalStars(0.0048, true), "**");
  t.is(directionalStars(0.0048, false), " (worse)");
  t.is(directionalStars(0.2, false), "");
  t.is(directionalStars(undefined, true), "");
});

test("stars", (t) => {
  t.is(stars(undefined), "");
  t.is(stars(0.0001), "***");
  t.is(stars(0.001), "**");
  t.is(stars(0.009), "**");
  t.is(stars(0.01), "*");
  t.is(stars(0.049), "*");
  t.is(stars(0.05), "");
  t.is(stars(0.5), "");
  t.is(stars(NaN), "");
});

test("formatMeanStd", (t) => {
  t.is(formatMeanStd({ mean: 12.3412, std: 0.5551, n: 3 }, 2), "12.34 ± 0.56");
  t.is(formatMeanStd(meanStd([1, 2, 3]), 3), "2.000 ± 1.000");
  t.is(formatMeanStd(meanStd([7.25]), 1), "7.3");
  t.is(formatMeanStd(meanStd([]), 2), "–");
});
