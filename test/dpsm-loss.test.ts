// DPSMLoss from TypeScript: α's closed form, the step counter, values and gradients against an independent
// float64 reference (definitions + finite differences), reductions, ignore index, in-place gradients,
// statistics, and every kind of bad input.
import vm from "node:vm";

import test from "ava";

import { probes } from "../dev/testing-addon.ts";
import { randInt, randomLogits, randomTargets, rng } from "../dev/random.ts";
import { DPSMLoss } from "../lib/index.ts";
import { native } from "../lib/native.ts";
import { reference, type RefKind, relErr, softmax } from "./helpers/reference.ts";

const linear = (s: number, w: number) => Math.min(1, s / w);
const cosine = (s: number, w: number) => 0.5 * (1 - Math.cos(Math.PI * Math.min(1, s / w)));

test("alphaAt equals the closed form at every step: linear, cosine, fixed, ce, brier", (t) => {
  const W = 1000;
  const lin = new DPSMLoss({ kind: "dpsm", schedule: "linear", warmupSteps: W });
  const cos = new DPSMLoss({ kind: "dpsm", schedule: "cosine", warmupSteps: W });
  t.is(lin.alphaAt(250), 0.25);
  for (const s of [0, 1, 2, 100, 250, 333, 500, 999, 1000, 1001, 5000, 2 ** 40]) {
    t.true(Math.abs(lin.alphaAt(s) - linear(s, W)) <= 1e-15, `linear at ${s}`);
    t.true(Math.abs(cos.alphaAt(s) - cosine(s, W)) <= 1e-15, `cosine at ${s}`);
  }
  t.is(cos.alphaAt(0), 0);
  t.is(cos.alphaAt(W), 1);
  const odd = new DPSMLoss({ kind: "dpsm", schedule: "linear", warmupSteps: 7.5 });
  t.true(Math.abs(odd.alphaAt(3) - 0.4) <= 1e-15);
  for (const a of [0, 0.3, 0.5, 1]) {
    const fixed = new DPSMLoss({ kind: "dpsm", schedule: "fixed", alpha: a });
    for (const s of [0, 10, 10_000]) t.is(fixed.alphaAt(s), a);
  }
  t.is(new DPSMLoss({ kind: "ce" }).alphaAt(123), 0);
  t.is(new DPSMLoss({ kind: "brier" }).alphaAt(0), 1);
});

test("the kernel's α is the closed form at the step it is given", (t) => {
  const rand = rng(1);
  const V = 50;
  const logits = randomLogits(rand, 4 * V);
  const targets = randomTargets(rand, 4, V);
  for (const loss of [
    new DPSMLoss({ kind: "dpsm", schedule: "linear", warmupSteps: 400 }),
    new DPSMLoss({ kind: "dpsm", schedule: "cosine", warmupSteps: 400 }),
  ]) {
    for (const step of [0, 37, 200, 399, 400, 10_000]) {
      const r = loss.forward(logits, targets, { vocabSize: V, step, grad: false });
      t.true(Math.abs(r.alpha - loss.alphaAt(step)) <= 6e-8, `${loss.config.schedule} step ${step}: ${r.alpha}`);
    }
  }
});

test("step schedule: α = 0 before warmupSteps and 1 from it on (alphaAt and the kernel, at W − 1, W, W + 1)", (t) => {
  const W = 1000;
  const loss = new DPSMLoss({ kind: "dpsm", schedule: "step", warmupSteps: W });
  const V = 30;
  const rand = rng(11);
  const logits = randomLogits(rand, 3 * V);
  const targets = randomTargets(rand, 3, V);
  for (const [s, alpha] of [
    [0, 0],
    [1, 0],
    [W - 1, 0],
    [W, 1],
    [W + 1, 1],
    [10 * W, 1],
  ] as const) {
    t.is(loss.alphaAt(s), alpha, `alphaAt(${s})`);
    t.is(loss.forward(logits, targets, { vocabSize: V, step: s, grad: false }).alpha, alpha, `kernel α at ${s}`);
  }
  // Before W the loss is CE's, from W on Brier's, bit for bit.
  const ce = new DPSMLoss({ kind: "ce" }).forward(logits, targets, { vocabSize: V });
  const brier = new DPSMLoss({ kind: "brier" }).forward(logits, targets, { vocabSize: V });
  const before = loss.forward(logits, targets, { vocabSize: V, step: W - 1 });
  const after = loss.forward(logits, targets, { vocabSize: V, step: W });
  t.is(before.loss, ce.loss);
  t.deepEqual(Array.from(before.grad!), Array.from(ce.grad!));
  t.is(after.loss, brier.loss);
  t.deepEqual(Array.from(after.grad!), Array.from(brier.grad!));
  // A warm-up that is not a whole number of steps switches at the first step past it.
  const odd = new DPSMLoss({ kind: "dpsm", schedule: "step", warmupSteps: 7.5 });
  t.is(odd.alphaAt(7), 0);
  t.is(odd.alphaAt(8), 1);
});

test("the step counter advances only when the caller says so", (t) => {
  const rand = rng(2);
  const V = 20;
  const logits = randomLogits(rand, 3 * V);
  const targets = randomTargets(rand, 3, V);
  const loss = new DPSMLoss({ kind: "dpsm", schedule: "linear", warmupSteps: 10 });
  t.is(loss.step, 0);
  const a = loss.forward(logits, targets, { vocabSize: V });
  const b = loss.forward(logits, targets, { vocabSize: V });
  t.is(loss.step, 0, "forward() must not advance the step");
  t.is(a.alpha, 0);
  t.is(a.loss, b.loss);
  loss.forward(logits, targets, { vocabSize: V, step: 8 });
  t.is(loss.step, 0, "an explicit step must not move the counter");
  t.is(loss.advance(), 1);
  t.true(Math.abs(loss.forward(logits, targets, { vocabSize: V }).alpha - 0.1) < 1e-7);
  t.is(loss.advance(4), 5);
  t.true(Math.abs(loss.forward(logits, targets, { vocabSize: V }).alpha - 0.5) < 1e-7);
  loss.step = 20;
  t.is(loss.forward(logits, targets, { vocabSize: V }).alpha, 1);
  t.is(loss.alphaAt(), 1);
});

const KINDS: { name: string; loss: () => DPSMLoss; ref: RefKind; alpha: (step: number) => number }[] = [
  { name: "ce", loss: () => new DPSMLoss({ kind: "ce" }), ref: "ce", alpha: () => 0 },
  { name: "brier", loss: () => new DPSMLoss({ kind: "brier" }), ref: "brier", alpha: () => 1 },
  { name: "spherical", loss: () => new DPSMLoss({ kind: "spherical" }), ref: "spherical", alpha: () => 0 },
  {
    name: "dpsm-linear",
    loss: () => new DPSMLoss({ kind: "dpsm", schedule: "linear", warmupSteps: 100 }),
    ref: "mix",
    alpha: (s) => linear(s, 100),
  },
  {
    name: "dpsm-cosine",
    loss: () => new DPSMLoss({ kind: "dpsm", schedule: "cosine", warmupSteps: 100 }),
    ref: "mix",
    alpha: (s) => cosine(s, 100),
  },
  {
    name: "dpsm-fixed-0.5",
    loss: () => new DPSMLoss({ kind: "dpsm", schedule: "fixed", alpha: 0.5 }),
    ref: "mix",
    alpha: () => 0.5,
  },
];

test("loss and gradient equal the float64 definitions (finite differences) for every kind", (t) => {
  const rand = rng(3);
  for (const k of KINDS) {
    for (let trial = 0; trial < 4; trial++) {
      const n = randInt(rand, 1, 9);
      const V = randInt(rand, 2, 61);
      const step = randInt(rand, 0, 150);
      const logits = randomLogits(rand, n * V, 2);
      const targets = randomTargets(rand, n, V);
      if (n > 2) targets[1] = -100;
      const loss = k.loss();
      const r = loss.forward(logits, targets, { vocabSize: V, step });
      const count = targets.filter((y) => y !== -100).length;
      const ref = reference(logits, targets, V, k.ref, k.alpha(step), -100, 1 / count);
      const refLoss = ref.losses.reduce((a, b) => a + b, 0) / count;
      const where = `${k.name} ${n}×${V} step ${step}`;
      t.true(
        Math.abs(r.loss - refLoss) <= 1e-5 * Math.max(1, Math.abs(refLoss)),
        `${where}: loss ${r.loss} vs ${refLoss}`,
      );
      t.true(relErr(r.grad!, ref.grad) < 1e-5, `${where}: gradient rel err ${relErr(r.grad!, ref.grad)}`);
      t.is(r.count, count);
    }
  }
});

// Score smoothing (ε): each kind against its expected score under q = (1 − ε)·onehot(y) + ε/V, written out as
// defined (−Σ q log p; Σ_j q_j Σ_k (p_k − δ_jk)²) with finite-difference gradients; V = 1 and confident rows
// (p_y → 1) included. Each case also differs from the unsmoothed reference by far more than the tolerance, so a
// smoothing dropped anywhere between the config and the kernel fails it.
const SMOOTHED: { name: string; config: object; ref: RefKind; alpha: (step: number) => number }[] = [
  { name: "ce", config: { kind: "ce" }, ref: "ce", alpha: () => 0 },
  { name: "brier", config: { kind: "brier" }, ref: "brier", alpha: () => 1 },
  {
    name: "dpsm-linear",
    config: { kind: "dpsm", schedule: "linear", warmupSteps: 100 },
    ref: "mix",
    alpha: (s) => linear(s, 100),
  },
  {
    name: "dpsm-step",
    config: { kind: "dpsm", schedule: "step", warmupSteps: 75 },
    ref: "mix",
    alpha: (s) => (s >= 75 ? 1 : 0),
  },
  { name: "dpsm-fixed-0.4", config: { kind: "dpsm", schedule: "fixed", alpha: 0.4 }, ref: "mix", alpha: () => 0.4 },
];

test("score smoothing: loss and gradient equal the float64 expected score under the smoothed target", (t) => {
  const rand = rng(12);
  for (const k of SMOOTHED) {
    for (const smoothing of [0.1, 0.35]) {
      for (let trial = 0; trial < 4; trial++) {
        const n = randInt(rand, 1, 9);
        const V = trial === 0 ? 1 : trial === 1 ? 2 : randInt(rand, 3, 61);
        const step = randInt(rand, 0, 150);
        const logits = randomLogits(rand, n * V, 2);
        const targets = randomTargets(rand, n, V);
        if (n > 2) targets[1] = -100;
        // A confident row: p_y → 1 (1 − p_y ≈ 1e-9).
        logits[(n - 1) * V + targets[n - 1]!] = 25;
        const loss = new DPSMLoss({ ...k.config, smoothing } as never);
        t.is(loss.config.smoothing, smoothing);
        const r = loss.forward(logits, targets, { vocabSize: V, step });
        const count = targets.filter((y) => y !== -100).length;
        const ref = reference(logits, targets, V, k.ref, k.alpha(step), -100, 1 / count, smoothing);
        const refLoss = ref.losses.reduce((a, b) => a + b, 0) / count;
        const where = `${k.name} ε=${smoothing} ${n}×${V} step ${step}`;
        t.true(
          Math.abs(r.loss - refLoss) <= 1e-5 * Math.max(1, Math.abs(refLoss)),
          `${where}: loss ${r.loss} vs ${refLoss}`,
        );
        t.true(relErr(r.grad!, ref.grad) < 1e-5, `${where}: gradient rel err ${relErr(r.grad!, ref.grad)}`);
        if (V > 1) {
          const plain = reference(logits, targets, V, k.ref, k.alpha(step), -100, 1 / count);
          const plainLoss = plain.losses.reduce((a, b) => a + b, 0) / count;
          t.true(Math.abs(r.loss - plainLoss) > 1e-3, `${where}: the smoothed loss is the unsmoothed one`);
          t.true(relErr(r.grad!, plain.grad) > 1e-3, `${where}: the smoothed gradient is the unsmoothed one`);
        } else {
          // One class: q = onehot(y) whatever ε, so the loss and gradient are 0.
          t.is(r.loss, 0, where);
          t.true(
            r.grad!.every((g) => g === 0),
            where,
          );
        }
      }
    }
  }
});

test("score smoothing: reductions, ignored targets, in place; statistics stay unsmoothed; ε = 0 is no smoothing", (t) => {
  const rand = rng(13);
  const V = 41;
  const n = 10;
  const logits = randomLogits(rand, n * V);
  const targets = randomTargets(rand, n, V);
  targets[4] = -100;
  const loss = new DPSMLoss({ kind: "dpsm", schedule: "cosine", warmupSteps: 10, smoothing: 0.1 });
  const mean = loss.forward(logits, targets, { vocabSize: V, step: 3, stats: true });
  const sum = loss.forward(logits, targets, { vocabSize: V, step: 3, reduction: "sum" });
  const none = loss.forward(logits, targets, { vocabSize: V, step: 3, reduction: "none" });
  t.true(Math.abs(sum.loss - mean.loss * mean.count) < 1e-5 * Math.abs(sum.loss));
  t.is(none.tokenLosses![4], 0);
  t.true(Math.abs(none.loss - sum.loss) < 1e-5 * Math.abs(sum.loss));
  t.true(relErr(none.grad!, sum.grad!) < 1e-7);
  t.true(none.grad!.subarray(4 * V, 5 * V).every((g) => g === 0));
  const ref = reference(logits, targets, V, "mix", cosine(3, 10), -100, 1, 0.1);
  t.true(relErr(none.tokenLosses!, ref.losses) < 1e-6);
  // Every target ignored: 0 and a zero gradient, as without smoothing.
  for (const reduction of ["mean", "sum", "none"] as const) {
    const all = loss.forward(logits, new Int32Array(n).fill(-100), { vocabSize: V, step: 3, reduction });
    t.is(all.loss, 0);
    t.true(all.grad!.every((g) => g === 0));
  }
  // In place: the same values as a fresh gradient.
  const copy = Float32Array.from(logits);
  const inPlace = loss.forward(copy, targets, { vocabSize: V, step: 3, inPlace: true });
  t.is(inPlace.grad, copy);
  t.deepEqual(Array.from(inPlace.grad!), Array.from(mean.grad!));
  t.is(inPlace.loss, mean.loss);
  // The statistics are the unsmoothed ones (NLL = −log p_y).
  const plain = new DPSMLoss({ kind: "dpsm", schedule: "cosine", warmupSteps: 10 });
  const plainStats = plain.forward(logits, targets, { vocabSize: V, step: 3, stats: true, grad: false }).stats!;
  t.deepEqual(mean.stats, plainStats);
  // ε = 0 is dropped by the schema (the config, and so a run's fingerprint, is the one without it) and computes
  // bit for bit what no smoothing does.
  const zero = new DPSMLoss({ kind: "dpsm", schedule: "cosine", warmupSteps: 10, smoothing: 0 });
  t.false("smoothing" in zero.config);
  t.deepEqual(zero.config, plain.config);
  const a = zero.forward(logits, targets, { vocabSize: V, step: 3 });
  const b = plain.forward(logits, targets, { vocabSize: V, step: 3 });
  t.is(a.loss, b.loss);
  t.deepEqual(Array.from(a.grad!), Array.from(b.grad!));
  t.not(mean.loss, b.loss);
});

test("reductions: sum = mean × count; none gives per-token losses whose gradient is the sum's", (t) => {
  const rand = rng(4);
  const V = 33;
  const n = 12;
  const logits = randomLogits(rand, n * V);
  const targets = randomTargets(rand, n, V);
  targets[3] = -100;
  const loss = new DPSMLoss({ kind: "dpsm", schedule: "cosine", warmupSteps: 10, reduction: "sum" });
  const sum = loss.forward(logits, targets, { vocabSize: V, step: 4 });
  const mean = loss.forward(logits, targets, { vocabSize: V, step: 4, reduction: "mean" });
  const none = loss.forward(logits, targets, { vocabSize: V, step: 4, reduction: "none" });
  t.is(mean.count, n - 1);
  t.true(Math.abs(sum.loss - mean.loss * mean.count) < 1e-5 * Math.abs(sum.loss));
  t.is(none.tokenLosses!.length, n);
  t.is(none.tokenLosses![3], 0);
  t.true(Math.abs(none.loss - sum.loss) < 1e-5 * Math.abs(sum.loss));
  t.true(relErr(none.grad!, sum.grad!) < 1e-7);
  t.true(
    relErr(
      mean.grad!.map((g) => g * mean.count),
      sum.grad!,
    ) < 1e-6,
  );
  t.is(mean.tokenLosses, undefined);
});

test("ignoreIndex: custom index, all ignored (0 and zero gradient), none ignored", (t) => {
  const rand = rng(5);
  const V = 17;
  const n = 6;
  const logits = randomLogits(rand, n * V);
  const loss = new DPSMLoss({ kind: "dpsm", schedule: "linear", warmupSteps: 5, ignoreIndex: -1 });
  const all = loss.forward(logits, new Int32Array(n).fill(-1), { vocabSize: V, step: 2 });
  t.is(all.loss, 0);
  t.is(all.count, 0);
  t.true(all.grad!.every((g) => g === 0));
  for (const reduction of ["sum", "none"] as const) {
    const r = loss.forward(logits, new Int32Array(n).fill(-1), { vocabSize: V, step: 2, reduction });
    t.is(r.loss, 0);
    t.true(r.grad!.every((g) => g === 0));
  }
  const targets = randomTargets(rand, n, V);
  const none = loss.forward(logits, targets, { vocabSize: V, step: 2 });
  t.is(none.count, n);
  t.true(none.loss > 0);
  // -100 is an ordinary (out-of-range) target once the ignore index is -1.
  const bad = Int32Array.from(targets);
  bad[2] = -100;
  t.throws(() => loss.forward(logits, bad, { vocabSize: V }), { message: /targets: .*got -100 at position 2/ });
});

test("in-place gradient overwrites the logits with the same values", (t) => {
  const rand = rng(6);
  const V = 101;
  const n = 9;
  const logits = randomLogits(rand, n * V);
  const targets = randomTargets(rand, n, V);
  const loss = new DPSMLoss({ kind: "dpsm", schedule: "fixed", alpha: 0.3 });
  const fresh = loss.forward(logits, targets, { vocabSize: V });
  const copy = Float32Array.from(logits);
  const inPlace = loss.forward(copy, targets, { vocabSize: V, inPlace: true });
  t.is(inPlace.grad, copy);
  t.deepEqual(Array.from(inPlace.grad!), Array.from(fresh.grad!));
  t.is(inPlace.loss, fresh.loss);
});

test("per-token statistics: NLL, p_y, max p, argmax hit, ‖p‖²", (t) => {
  const rand = rng(7);
  const V = 29;
  const n = 16;
  const logits = randomLogits(rand, n * V);
  const targets = randomTargets(rand, n, V);
  // make some targets the argmax
  for (let r = 0; r < n; r += 3) logits[r * V + targets[r]!] = 50;
  targets[5] = -100;
  const r = new DPSMLoss({ kind: "ce" }).forward(logits, targets, { vocabSize: V, stats: true, grad: false });
  t.is(r.grad, undefined);
  const s = r.stats!;
  let hits = 0;
  for (let i = 0; i < n; i++) {
    if (targets[i] === -100) {
      t.is(s.nll[i], 0);
      t.is(s.hit[i], 0);
      continue;
    }
    const p = softmax(logits.subarray(i * V, (i + 1) * V));
    const y = targets[i]!;
    const top = p.indexOf(Math.max(...p));
    t.true(Math.abs(s.nll[i]! + Math.log(p[y]!)) < 1e-5 * Math.max(1, -Math.log(p[y]!)));
    t.true(Math.abs(s.pY[i]! - p[y]!) < 1e-6);
    t.true(Math.abs(s.maxP[i]! - p[top]!) < 1e-6);
    t.true(Math.abs(s.sqNorm[i]! - p.reduce((a, b) => a + b * b, 0)) < 1e-6);
    t.is(s.hit[i], top === y ? 1 : 0);
    hits += s.hit[i]!;
  }
  t.true(hits >= 5);
});

test("bad input: a clear error that names the argument, never a crash", (t) => {
  const V = 4;
  const logits = new Float32Array(3 * V).fill(0.5);
  const targets = new Int32Array([0, 1, 3]);
  const loss = new DPSMLoss({ kind: "dpsm", schedule: "linear", warmupSteps: 10 });
  const cases: [string, () => unknown, RegExp][] = [
    [
      "wrong logits length",
      () => loss.forward(logits.subarray(1), targets, { vocabSize: V }),
      /^logits: expected targets\.length × vocabSize/,
    ],
    ["vocabSize mismatch", () => loss.forward(logits, targets, { vocabSize: 5 }), /^logits: .*15 values, got 12/],
    [
      "target too large",
      () => loss.forward(logits, new Int32Array([0, 4, 1]), { vocabSize: V }),
      /^targets: expected class indices in \[0, 4\).*got 4 at position 1/,
    ],
    [
      "negative target",
      () => loss.forward(logits, new Int32Array([0, 1, -3]), { vocabSize: V }),
      /^targets: .*got -3 at position 2/,
    ],
    [
      "logits not Float32Array",
      () => loss.forward([1, 2] as unknown as Float32Array, targets, { vocabSize: V }),
      /^logits: expected a Float32Array, got Array/,
    ],
    [
      "targets not Int32Array",
      () => loss.forward(logits, new Float32Array(3) as unknown as Int32Array, { vocabSize: V }),
      /^targets: expected an Int32Array, got Float32Array/,
    ],
    [
      "vocabSize missing",
      () => loss.forward(logits, targets, {} as { vocabSize: number }),
      /^options\.vocabSize: expected an integer >= 1, got undefined/,
    ],
    ["vocabSize NaN", () => loss.forward(logits, targets, { vocabSize: NaN }), /^options\.vocabSize: .*NaN/],
    ["vocabSize fractional", () => loss.forward(logits, targets, { vocabSize: 1.5 }), /^options\.vocabSize/],
    [
      "step NaN",
      () => loss.forward(logits, targets, { vocabSize: V, step: NaN }),
      /^options\.step: expected an integer >= 0, got NaN/,
    ],
    ["step negative", () => loss.forward(logits, targets, { vocabSize: V, step: -1 }), /^options\.step/],
    [
      "reduction unknown",
      () => loss.forward(logits, targets, { vocabSize: V, reduction: "avg" as "mean" }),
      /^options\.reduction/,
    ],
    [
      "ignoreIndex NaN",
      () => loss.forward(logits, targets, { vocabSize: V, ignoreIndex: NaN }),
      /^options\.ignoreIndex/,
    ],
    [
      "stats not boolean",
      () => loss.forward(logits, targets, { vocabSize: V, stats: 1 as unknown as boolean }),
      /^options\.stats/,
    ],
    [
      "unknown forward option",
      () => loss.forward(logits, targets, { vocabSize: V, stepp: 3 } as never),
      /^options\.stepp: not an option of forward\(\); expected vocabSize, step, grad, inPlace/,
    ],
    [
      "misspelt inPlace",
      () => loss.forward(logits, targets, { vocabSize: V, inplace: true } as never),
      /^options\.inplace: not an option/,
    ],
    [
      "null option",
      () => loss.forward(logits, targets, { vocabSize: V, reduction: null } as never),
      /^options\.reduction: expected a value or no entry, got null/,
    ],
    ["null step", () => loss.forward(logits, targets, { vocabSize: V, step: null } as never), /^options\.step: .*null/],
    ["warm-up 0", () => new DPSMLoss({ kind: "dpsm", schedule: "linear", warmupSteps: 0 }), /warmupSteps/],
    [
      "warm-up negative",
      () => new DPSMLoss({ kind: "dpsm", schedule: "cosine", warmupSteps: -5 }),
      /warmupSteps.*got -5/,
    ],
    ["warm-up NaN", () => new DPSMLoss({ kind: "dpsm", schedule: "cosine", warmupSteps: NaN }), /warmupSteps.*NaN/],
    [
      "warm-up Infinity",
      () => new DPSMLoss({ kind: "dpsm", schedule: "cosine", warmupSteps: Infinity }),
      /warmupSteps/,
    ],
    ["warm-up missing", () => new DPSMLoss({ kind: "dpsm", schedule: "linear" }), /warmupSteps: required/],
    ["alpha above 1", () => new DPSMLoss({ kind: "dpsm", schedule: "fixed", alpha: 1.5 }), /alpha.*got 1\.5/],
    ["alpha below 0", () => new DPSMLoss({ kind: "dpsm", schedule: "fixed", alpha: -0.1 }), /alpha.*got -0\.1/],
    ["alpha NaN", () => new DPSMLoss({ kind: "dpsm", schedule: "fixed", alpha: NaN }), /alpha.*NaN/],
    ["alpha missing", () => new DPSMLoss({ kind: "dpsm", schedule: "fixed" }), /alpha: required/],
    ["unknown kind", () => new DPSMLoss({ kind: "focal" as "ce" }), /kind: .*got "focal"/],
    [
      "unknown schedule",
      () => new DPSMLoss({ kind: "dpsm", schedule: "exponential" as "linear", warmupSteps: 3 }),
      /schedule: .*got "exponential"/,
    ],
    ["step without warm-up", () => new DPSMLoss({ kind: "dpsm", schedule: "step" }), /warmupSteps: required/],
    [
      "smoothing 1",
      () => new DPSMLoss({ kind: "ce", smoothing: 1 }),
      /^DPSMLoss options\.smoothing: expected a number in \[0, 1\), got 1$/,
    ],
    [
      "smoothing negative",
      () => new DPSMLoss({ kind: "brier", smoothing: -0.1 }),
      /^DPSMLoss options\.smoothing: expected a number in \[0, 1\), got -0\.1$/,
    ],
    ["smoothing NaN", () => new DPSMLoss({ kind: "ce", smoothing: NaN }), /smoothing/],
    ["smoothing a string", () => new DPSMLoss({ kind: "ce", smoothing: "0.1" as never }), /smoothing/],
    [
      "smoothing on spherical",
      () => new DPSMLoss({ kind: "spherical", smoothing: 0.1 }),
      /smoothing: applies to kinds ce, brier, dpsm \(kind is "spherical"\)/,
    ],
    ["schedule missing", () => new DPSMLoss({ kind: "dpsm" }), /schedule: required/],
    ["schedule on ce", () => new DPSMLoss({ kind: "ce", schedule: "linear" }), /schedule: only applies to kind "dpsm"/],
    ["unknown option", () => new DPSMLoss({ kind: "ce", warmup: 3 } as never), /unknown option\(s\) "warmup"/],
    ["options not an object", () => new DPSMLoss(undefined as never), /DPSMLoss options/],
    ["advance by a fraction", () => loss.advance(0.5), /^steps: expected an integer >= 0, got 0\.5/],
    ["alphaAt NaN", () => loss.alphaAt(NaN), /^step: expected an integer >= 0, got NaN/],
  ];
  for (const [name, fn, message] of cases) {
    const err = t.throws(fn, undefined, name);
    t.true(err instanceof Error, `${name}: not an Error`);
    t.regex(err?.message ?? "", message, name);
  }
  // The native layer trusts the documents lib/ validated, yet garbage reaching it directly is a named error,
  // never a crash: malformed JSON, missing or mistyped fields, impossible sizes, a kind it cannot parse.
  const n = native();
  const ce = { kind: "ce", ignoreIndex: -100, reduction: "mean" };
  const doc = (o: object) =>
    JSON.stringify({ loss: ce, vocabSize: V, step: 0, grad: true, inPlace: false, stats: false, ...o });
  const direct: [() => unknown, RegExp][] = [
    [() => n.lossForward(logits, targets, doc({ loss: { ...ce, kind: "nope" } })), /loss\.kind: expected/],
    [() => n.lossForward(logits, targets, doc({ vocabSize: -2 })), /logits: expected targets\.length × vocabSize/],
    [() => n.lossForward(logits, targets, "{not json"), /options: not valid JSON/],
    [() => n.lossForward(logits, targets, JSON.stringify({ vocabSize: V })), /config: missing field 'loss'/],
    [() => n.lossForward(logits, targets, doc({ step: "x" })), /field 'step' has the wrong type/],
    [() => n.lossForward(logits, targets, undefined as never), /options: expected JSON text/],
    [() => n.lossForward(null as never, targets, doc({})), /logits: expected a Float32Array/],
    [() => n.alphaAt(JSON.stringify(ce), -1), /step: expected an integer >= 0/],
    [() => n.setNumThreads(0), /threads/],
    [() => probes.useCpuIsa("sse9" as never), /isa: expected/],
  ];
  for (const [fn, message] of direct) t.throws(fn, { message });
  // Values the schema owns (α in [0, 1], W > 0: "alpha above 1", "warm-up 0" above) are not checked again there:
  // they only enter the arithmetic, so one reaching the native layer directly gives a number, not a crash.
  const unchecked = n.lossForward(logits, targets, doc({ loss: { ...ce, kind: "dpsm", schedule: "fixed", alpha: 2 } }));
  t.is(typeof unchecked.loss, "number");
});

test("typed arrays from another realm are accepted and give the same result", (t) => {
  const V = 5;
  const logits = randomLogits(rng(7), 4 * V);
  const targets = new Int32Array([0, 4, 2, 1]);
  const context = vm.createContext({ source: Array.from(logits), ids: Array.from(targets) });
  const foreign = vm.runInContext("({ logits: new Float32Array(source), targets: new Int32Array(ids) })", context) as {
    logits: Float32Array;
    targets: Int32Array;
  };
  t.false(foreign.logits instanceof Float32Array, "the vm's Float32Array is another realm's");
  const loss = new DPSMLoss({ kind: "dpsm", schedule: "linear", warmupSteps: 4 });
  const here = loss.forward(logits, targets, { vocabSize: V, step: 2 });
  const there = loss.forward(foreign.logits, foreign.targets, { vocabSize: V, step: 2 });
  t.is(there.loss, here.loss);
  t.deepEqual(Array.from(there.grad!), Array.from(here.grad!));
  t.throws(() => loss.forward(foreign.targets as never, targets, { vocabSize: V }), {
    message: /^logits: expected a Float32Array, got Int32Array/,
  });
});

test("the loss still works after every error above (no state was corrupted)", (t) => {
  const loss = new DPSMLoss({ kind: "ce" });
  const r = loss.forward(new Float32Array([0, 0, 0, 0]), new Int32Array([1, -100]), { vocabSize: 2 });
  t.is(r.count, 1);
  t.true(Math.abs(r.loss - Math.log(2)) < 1e-7);
});
