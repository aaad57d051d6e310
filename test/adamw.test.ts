// The trainer's AdamW and gradient clipping (native/core/train/optim.cpp) against torch.optim.AdamW's
// arithmetic written out in float64 here, on random parameters and gradients over several steps. test/run.mjs
// runs this file against libtorch 1.13 (the per-tensor update) and 2.x (ATen's fused kernel), so both paths
// are held to the same reference.
import test from "ava";

import { normal, randInt, rng } from "../dev/random.ts";
import { probes, type AdamwStepsOptions } from "../dev/testing-addon.ts";
import { buildInfo } from "../lib/native.ts";

interface Reference {
  params: Float64Array[];
  expAvg: Float64Array[];
  expAvgSq: Float64Array[];
  /** the first moment of |gradient|: the scale m's rounding is relative to (m itself can cancel to ~0) */
  expAvgAbs: Float64Array[];
  gradNorms: number[];
  updateRatios: number[];
}

function adamwFloat64(o: AdamwStepsOptions): Reference {
  const params = o.params.map((p) => Float64Array.from(p));
  const expAvg = params.map((p) => new Float64Array(p.length));
  const expAvgSq = params.map((p) => new Float64Array(p.length));
  const expAvgAbs = params.map((p) => new Float64Array(p.length));
  const gradNorms: number[] = [];
  const updateRatios: number[] = [];
  const [b1, b2] = o.betas;
  o.lrs.forEach((lr, s) => {
    const grads = o.grads[s]!;
    let sumSq = 0;
    for (const g of grads) for (const v of g) sumSq += v * v;
    const norm = Math.sqrt(sumSq);
    gradNorms.push(norm);
    const coef = o.gradClip > 0 ? Math.min(1, o.gradClip / (norm + 1e-6)) : 1;
    const bc1 = 1 - b1 ** (s + 1);
    const bc2 = 1 - b2 ** (s + 1);
    let delta = 0;
    let weight = 0;
    params.forEach((p, i) => {
      const decay = o.shapes[i]!.length >= 2 ? 1 - lr * o.weightDecay : 1;
      const m = expAvg[i]!;
      const v = expAvgSq[i]!;
      for (let k = 0; k < p.length; k++) {
        const g = grads[i]![k]! * coef;
        m[k] = b1 * m[k]! + (1 - b1) * g;
        expAvgAbs[i]![k] = b1 * expAvgAbs[i]![k]! + (1 - b1) * Math.abs(g);
        v[k] = b2 * v[k]! + (1 - b2) * g * g;
        const before = p[k]!;
        p[k] = before * decay - ((lr / bc1) * m[k]!) / (Math.sqrt(v[k]! / bc2) + o.eps);
        delta += (p[k]! - before) ** 2;
        weight += before ** 2;
      }
    });
    updateRatios.push(Math.sqrt(delta / weight));
  });
  return { params, expAvg, expAvgSq, expAvgAbs, gradNorms, updateRatios };
}

function randomCase(seed: number, gradClip: number): AdamwStepsOptions {
  const rand = rng(seed);
  // Matrices (which decay) and vectors (which do not), one gradient far below ε's scale so ε sets its step.
  const shapes = [
    [randInt(rand, 2, 9), randInt(rand, 2, 40)],
    [randInt(rand, 1, 50)],
    [3, 5, 7],
    [randInt(rand, 1, 9)],
  ];
  const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
  const fill = (n: number, scale: number) => Float32Array.from({ length: n }, () => normal(rand) * scale);
  const steps = 5;
  return {
    shapes,
    params: shapes.map((s) => fill(size(s), 0.05)),
    grads: Array.from({ length: steps }, () => shapes.map((s, i) => fill(size(s), i === 3 ? 1e-10 : 0.3))),
    lrs: Array.from({ length: steps }, (_, s) => 1e-3 * (1 + s)),
    weightDecay: 0.1,
    betas: [0.9, 0.95],
    eps: 1e-8,
    gradClip,
  };
}

// The step's reductions (gradient norm, update ratio; native/core/train/optim.h): the CPU's default (host: exact
// double sums), the CUDA default (multi-tensor ops, run here on the CPU: fp32 norms per tensor, summed in double)
// and the per-tensor reference.
for (const reductions of ["host", "multi-tensor", "per-tensor"] as const) {
  test(`AdamW with clipping matches torch.optim.AdamW's arithmetic in float64 (clipping active, inactive and off; ${reductions} reductions)`, (t) => {
    const fusedExpected = /^([3-9]|2\.([4-9]|\d\d))/.test(buildInfo().torchVersion);
    // fp32 per-tensor norms are within a few units in the last place of float32 at these sizes.
    const normTolerance = reductions === "multi-tensor" ? 1e-6 : 1e-9;
    for (const [trial, gradClip] of [0.05, 1e3, 0, 0.5, 0.05].entries()) {
      // Odd trials copy the weights for the update ratio in groups of at most 40 (or one larger parameter): the
      // shapes below then split into several groups, filled at offsets of one buffer.
      const o = { ...randomCase(100 + trial, gradClip), ...(trial % 2 === 1 ? { groupElements: 40 } : {}) };
      process.env.DPSM_STEP_REDUCTIONS = reductions;
      let got: ReturnType<typeof probes.adamwSteps>;
      try {
        got = probes.adamwSteps(o);
      } finally {
        delete process.env.DPSM_STEP_REDUCTIONS;
      }
      const want = adamwFloat64(o);
      t.is(got.fused, fusedExpected, `libtorch ${buildInfo().torchVersion}: the fused kernel where it exists`);
      const steps = o.lrs.length;
      const maxLr = Math.max(...o.lrs);
      let worstParam = 0;
      let worstMoment = 0;
      for (let i = 0; i < o.shapes.length; i++) {
        for (let k = 0; k < want.params[i]!.length; k++) {
          // fp32 rounding: a few units in the last place of the weight per step, and of the step itself.
          const p = want.params[i]![k]!;
          const tol = steps * (4 * 2 ** -24 * Math.abs(p) + 1e-5 * maxLr);
          worstParam = Math.max(worstParam, Math.abs(got.params[i]![k]! - p) / tol);
          const m = want.expAvg[i]![k]!;
          const v = want.expAvgSq[i]![k]!;
          worstMoment = Math.max(
            worstMoment,
            Math.abs(got.expAvg[i]![k]! - m) / (1e-6 * want.expAvgAbs[i]![k]! + 1e-30),
            Math.abs(got.expAvgSq[i]![k]! - v) / (1e-5 * Math.abs(v) + 1e-40),
          );
        }
      }
      t.true(worstParam <= 1, `trial ${trial} (clip ${gradClip}): weights off by ${worstParam} of the tolerance`);
      t.true(worstMoment <= 1, `trial ${trial} (clip ${gradClip}): moments off by ${worstMoment} of the tolerance`);
      for (let s = 0; s < steps; s++) {
        const norm = want.gradNorms[s]!;
        t.true(
          Math.abs(got.gradNorms[s]! - norm) <= normTolerance * norm,
          `trial ${trial} step ${s}: norm ${got.gradNorms[s]}`,
        );
        const r = want.updateRatios[s]!;
        t.true(
          Math.abs(got.updateRatios[s]! - r) <= 1e-5 * r,
          `trial ${trial} step ${s}: update ratio ${got.updateRatios[s]} vs ${r}`,
        );
      }
    }
  });
}
