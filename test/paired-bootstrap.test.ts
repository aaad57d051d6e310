// The paired bootstrap test on per-example scores (lib/metrics/bootstrap.ts): exact on degenerate inputs, and on
// random scores (numeric inputs only) close to the normal approximation it converges to for large n.
import test from "ava";

import { pairedBootstrap } from "../lib/metrics/bootstrap.ts";

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

// Two-sided normal p-value via the complementary error function (Abramowitz–Stegun 7.1.26, |error| < 1.5e-7).
function normalP(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return poly * Math.exp(-x * x);
}

test("identical systems: no difference, p = 1; a constant gap: p = 0 and a point interval", (t) => {
  const a = normals(50, 1);
  const same = pairedBootstrap(a, a, { samples: 200, seed: 3 });
  t.deepEqual([same.meanDifference, same.low, same.high, same.p], [0, 0, 0, 1]);
  const gap = pairedBootstrap(
    a.map((x) => x + 0.25),
    a,
    { samples: 200, seed: 3 },
  );
  t.is(gap.p, 0);
  t.true(Math.abs(gap.low - 0.25) < 1e-12 && Math.abs(gap.high - 0.25) < 1e-12);
});

test("on n = 400 random differences, the interval and p agree with the normal approximation", (t) => {
  for (const [seed, shift] of [
    [11, 0.1],
    [12, 0.05],
    [13, 0],
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
    const p = normalP(mean / se);
    t.true(Math.abs(r.p - p) < 0.03, `p ${r.p} vs normal ${p}`);
  }
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
