// Koehn's (2004) paired bootstrap resampling on per-example scores (lib/metrics/bootstrap.ts): its win counts and
// percentile interval against bootstrap distributions small enough to enumerate by hand, exact on degenerate
// inputs, the direction of its p-values, and on random scores (numeric inputs only) close to the normal
// approximation it converges to for large n; the bootstrap of a contrast over two strata likewise.
import test from "ava";

import { bootstrapContrast, pairedBootstrap } from "../lib/metrics/bootstrap.ts";

// Standard normal draws (Box–Muller) from a seeded uniform source (mulberry32).
function normals(n: number, seed: number): number[] {
  let state = seed >>> 0;
  const u = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = Math.imul(state ^ (state >>> 15), state | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return (((x ^ (x >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  return Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()));
}

// Upper-tail normal probability P(Z > z) via the complementary error function (Abramowitz–Stegun 7.1.26,
// |error| < 1.5e-7).
function normalUpper(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const tail = 0.5 * poly * Math.exp(-x * x);
  return z >= 0 ? tail : 1 - tail;
}

test("Koehn's win counts match the enumerated bootstrap distribution, ties counting for neither system", (t) => {
  // Per-item differences a − b = [2, −1, −1]: a resample of 3 items holds k copies of the 2 (k ~ Binomial(3, 1/3)),
  // so its mean difference is k − 1: a wins for k ≥ 2 (7/27), ties for k = 1 (12/27), b wins for k = 0 (8/27).
  const b = [5, 6, 7];
  const a = [7, 5, 6];
  const samples = 40000;
  const r = pairedBootstrap(a, b, { samples, seed: 7 });
  t.is(r.meanDifference, 0);
  t.is(r.winsA + r.winsB + r.ties, samples);
  const share = (k: number) => k / samples;
  // 4 binomial standard errors (sqrt(p(1 − p)/40000) ≤ 0.0025).
  t.true(Math.abs(share(r.winsA) - 7 / 27) < 0.01, `a wins ${share(r.winsA)} vs 7/27`);
  t.true(Math.abs(share(r.ties) - 12 / 27) < 0.01, `ties ${share(r.ties)} vs 12/27`);
  t.true(Math.abs(share(r.winsB) - 8 / 27) < 0.01, `b wins ${share(r.winsB)} vs 8/27`);
  t.is(r.pA, 1 - r.winsA / samples);
  t.is(r.pB, 1 - r.winsB / samples);
  // The resampled mean differences take the values −1, 0, 1, 2 with probabilities 8, 12, 6, 1 (/27): the 2.5th
  // percentile is −1 and the 97.5th is 2 (P(≤ 1) = 26/27 < 0.975).
  t.deepEqual([r.low, r.high], [-1, 2]);
});

test("the p-value is one-sided: a system that is clearly worse gets p near 1 for 'better', not a small p", (t) => {
  // Two items, a − b = [1, −3]: a beats b only when both resampled items are the first (1/4); b wins in 3/4.
  const r = pairedBootstrap([1, 0], [0, 3], { samples: 40000, seed: 2 });
  t.true(Math.abs(r.pA - 0.75) < 0.01, `pA ${r.pA}`);
  t.true(Math.abs(r.pB - 0.25) < 0.01, `pB ${r.pB}`);
  // A constant deficit of 0.25 on every item: b wins every resample.
  const x = normals(50, 1);
  const worse = pairedBootstrap(
    x.map((v) => v - 0.25),
    x,
    { samples: 500, seed: 3 },
  );
  t.deepEqual([worse.winsA, worse.winsB, worse.ties, worse.pA, worse.pB], [0, 500, 0, 1, 0]);
  t.true(Math.abs(worse.low + 0.25) < 1e-12 && Math.abs(worse.high + 0.25) < 1e-12);
});

test("identical systems: no difference, every resample a tie, p = 1 both ways", (t) => {
  const a = normals(50, 1);
  const same = pairedBootstrap(a, a, { samples: 200, seed: 3 });
  t.deepEqual(
    [same.meanDifference, same.low, same.high, same.winsA, same.winsB, same.ties, same.pA, same.pB],
    [0, 0, 0, 0, 0, 200, 1, 1],
  );
});

test("on n = 400 random differences, the interval and the one-sided p agree with the normal approximation", (t) => {
  for (const [seed, shift] of [
    [11, 0.1],
    [12, 0.05],
    [13, 0],
    [14, -0.08],
  ] as const) {
    const d = normals(400, seed).map((x) => x + shift);
    const zeros = d.map(() => 0);
    const r = pairedBootstrap(d, zeros, { samples: 4000, seed });
    const mean = d.reduce((s, x) => s + x, 0) / d.length;
    const sd = Math.sqrt(d.reduce((s, x) => s + (x - mean) ** 2, 0) / (d.length - 1));
    const se = sd / Math.sqrt(d.length);
    t.true(Math.abs(r.meanDifference - mean) < 1e-12);
    t.true(Math.abs(r.low - (mean - 1.96 * se)) < 0.2 * se, `low ${r.low} vs ${mean - 1.96 * se}`);
    t.true(Math.abs(r.high - (mean + 1.96 * se)) < 0.2 * se, `high ${r.high} vs ${mean + 1.96 * se}`);
    // P(resampled mean ≤ 0) ≈ P(Z > mean / se): a's one-sided p; b's is its complement.
    const p = normalUpper(mean / se);
    t.true(Math.abs(r.pA - p) < 0.03, `pA ${r.pA} vs normal ${p}`);
    t.true(Math.abs(r.pB - (1 - p)) < 0.03, `pB ${r.pB} vs normal ${1 - p}`);
  }
});

test("bootstrapContrast over two strata: exact on constants, the normal approximation on random values", (t) => {
  const flat = bootstrapContrast(
    [
      { values: [1, 1, 1], weight: 1 },
      { values: [3, 3], weight: -1 },
    ],
    { samples: 100, seed: 1 },
  );
  t.deepEqual([flat.estimate, flat.low, flat.high, flat.above, flat.below, flat.ties], [-2, -2, -2, 0, 100, 0]);
  // Independent strata: the variance of the contrast is the sum of the two means' variances.
  const u = normals(300, 21).map((x) => x + 0.3);
  const v = normals(200, 22).map((x) => 2 * x);
  const r = bootstrapContrast(
    [
      { values: u, weight: 1 },
      { values: v, weight: -1 },
    ],
    { samples: 4000, seed: 5 },
  );
  const stats = (xs: number[]) => {
    const m = xs.reduce((s, x) => s + x, 0) / xs.length;
    return { m, v: xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1) / xs.length };
  };
  const [su, sv] = [stats(u), stats(v)];
  const se = Math.sqrt(su.v + sv.v);
  const est = su.m - sv.m;
  t.true(Math.abs(r.estimate - est) < 1e-12);
  t.true(Math.abs(r.low - (est - 1.96 * se)) < 0.2 * se, `low ${r.low} vs ${est - 1.96 * se}`);
  t.true(Math.abs(r.high - (est + 1.96 * se)) < 0.2 * se, `high ${r.high} vs ${est + 1.96 * se}`);
  t.throws(() => bootstrapContrast([], { samples: 10, seed: 1 }), { message: /no strata/ });
  t.throws(() => bootstrapContrast([{ values: [], weight: 1 }], { samples: 10, seed: 1 }), { message: /at least one/ });
});

test("the same seed gives the same result; bad input names the argument", (t) => {
  const a = normals(30, 5);
  const b = normals(30, 6);
  t.deepEqual(pairedBootstrap(a, b, { samples: 100, seed: 9 }), pairedBootstrap(a, b, { samples: 100, seed: 9 }));
  t.throws(() => pairedBootstrap(a, b.slice(1), { samples: 100, seed: 1 }), {
    message: /differ in length \(30 vs 29\)/,
  });
  t.throws(() => pairedBootstrap([], [], { samples: 100, seed: 1 }), { message: /at least one score/ });
  t.throws(() => pairedBootstrap([NaN], [0], { samples: 100, seed: 1 }), { message: /finite/ });
  t.throws(() => pairedBootstrap(a, b, { samples: 0, seed: 1 }), { message: /samples must be a positive integer/ });
});
