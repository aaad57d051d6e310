// Statistics over seeds: mean ± sd, the paired t-test against an independent computation (t from the
// differences, p from the regularized incomplete beta function written out here) and against scipy's values.
import test from "ava";

import { formatMeanStd, meanStd, pairedTTest, stars } from "../lib/metrics/stats.ts";

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

test("pairedTTest edge cases: too few pairs, different lengths, equal differences", (t) => {
  t.is(pairedTTest([], []), undefined);
  t.is(pairedTTest([1], [2]), undefined);
  t.throws(() => pairedTTest([1, 2, 3], [1, 2]), { instanceOf: RangeError });
  t.deepEqual(pairedTTest([1, 2, 3], [1, 2, 3]), { t: 0, df: 2, p: 1 });
  t.deepEqual(pairedTTest([2, 3, 4], [1, 2, 3]), { t: Infinity, df: 2, p: 0 });
  t.deepEqual(pairedTTest([1, 2, 3], [2, 3, 4]), { t: -Infinity, df: 2, p: 0 });
  // Differences equal up to floating-point rounding count as equal.
  t.deepEqual(pairedTTest([1.1, 2.2, 3.3], [0.1, 1.2, 2.3]), { t: Infinity, df: 2, p: 0 });
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
