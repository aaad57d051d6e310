// The fused loss's reference cases and their pass rule, shared by test/fused-loss-reference.test.ts (CPU, in CI)
// and bench/gpu-verify/checks.ts (the same cases on a CUDA device): one list, one rule.
import type { ProbeOptions, ReferenceCheck } from "./testing-addon.ts";

export type Case = ProbeOptions & { step?: number; inPlace?: boolean };

// Every kind and schedule at several steps (W = 1000): before, inside and after the warm-up.
export const W = 1000;
export const SPECS: Case[] = [
  { rows: 0, vocab: 0, kind: "ce" },
  { rows: 0, vocab: 0, kind: "brier" },
  { rows: 0, vocab: 0, kind: "spherical" },
  ...[0, 1, 250, 999, 1000, 4000].map((step) => ({
    rows: 0,
    vocab: 0,
    kind: "dpsm",
    schedule: "linear",
    warmupSteps: W,
    step,
  })),
  ...[0, 333, 500, 1000, 2500].map((step) => ({
    rows: 0,
    vocab: 0,
    kind: "dpsm",
    schedule: "cosine",
    warmupSteps: W,
    step,
  })),
  ...[0, 0.25, 0.5, 1].map((alpha) => ({ rows: 0, vocab: 0, kind: "dpsm", schedule: "fixed", alpha, step: 77 })),
];

// The step schedule (α = 0 before W, 1 from W on) at W − 1, W and W + 1.
export const STEP_SPECS: Case[] = [W - 1, W, W + 1].map((step) => ({
  rows: 0,
  vocab: 0,
  kind: "dpsm",
  schedule: "step",
  warmupSteps: W,
  step,
}));

// Score smoothing ε (the expected score under (1 − ε)·onehot(y) + ε/V) on ce, brier and dpsm, and the step schedule
// (α = 0 before W, 1 from W on) at W − 1, W and W + 1, with and without smoothing. Apart from SPECS, whose indices
// the cases below and bench/gpu-verify/checks.ts pick from.
export const SMOOTHED_SPECS: Case[] = [
  { rows: 0, vocab: 0, kind: "ce", smoothing: 0.1 },
  { rows: 0, vocab: 0, kind: "brier", smoothing: 0.1 },
  { rows: 0, vocab: 0, kind: "dpsm", schedule: "linear", warmupSteps: W, step: 250, smoothing: 0.1 },
  { rows: 0, vocab: 0, kind: "dpsm", schedule: "cosine", warmupSteps: W, step: 500, smoothing: 0.3 },
  { rows: 0, vocab: 0, kind: "dpsm", schedule: "fixed", alpha: 0.5, step: 77, smoothing: 0.05 },
  ...STEP_SPECS.map((c) => ({ ...c, smoothing: 0.1 })),
];

// Shapes that are not multiples of any vector width (4, 8, 16 lanes; 4-vector blocks).
export const SHAPES: [number, number][] = [
  [1, 50257],
  [4096, 2],
  [4096, 37],
  [333, 1003],
  [17, 50257],
  [129, 4099],
  [61, 8191],
];

export const describeCase = (c: Case) =>
  `${c.kind}${c.schedule ? `/${c.schedule}` : ""}${c.alpha !== undefined ? ` α=${c.alpha}` : ""}` +
  `${c.smoothing ? ` ε=${c.smoothing}` : ""}` +
  `${c.step !== undefined ? ` step ${c.step}` : ""} ${c.rows}×${c.vocab} ${c.dtype ?? "float32"}` +
  `${c.reduction ? ` ${c.reduction}` : ""}${c.ignoreFraction ? ` ignore ${c.ignoreFraction}` : ""}` +
  `${c.extreme ? " extreme" : ""}${c.inPlace ? " in-place" : ""}${c.device && c.device !== "cpu" ? ` ${c.device}` : ""}`;

/** The errors a reference check reports, by name: loss, kernel gradient, autograd gradient, statistics. */
export function relativeErrors(r: ReferenceCheck): Record<string, number> {
  return { loss: r.lossRelErr, grad: r.gradRelErr, autograd: r.autogradGradRelErr, ...r.statsRelErr };
}

/** What is wrong with a check at tolerance `tol` (empty when it passes): the rule every reference case is held to. */
export function referenceFailures(c: Case, r: ReferenceCheck, tol: number): string[] {
  const name = describeCase(c);
  const errs = relativeErrors(r);
  const out: string[] = [];
  if (!r.finite) out.push(`${name}: non-finite output`);
  const worst = Object.entries(errs).filter(([, e]) => !(e < tol));
  if (worst.length) out.push(`${name}: relative error over ${tol}: ${JSON.stringify(errs)}`);
  if (r.hitMismatches !== 0) out.push(`${name}: ${r.hitMismatches} argmax-hit flags differ from torch.argmax == y`);
  if (!(Math.abs(r.alphaKernel - r.alphaClosedForm) <= 1e-7)) {
    out.push(`${name}: kernel α ${r.alphaKernel} vs ${r.alphaClosedForm}`);
  }
  // The kernel (and its reference) ran with the ε asked for: a smoothing lost on the way would otherwise pass.
  if (r.smoothing !== (c.smoothing ?? 0)) out.push(`${name}: ran with smoothing ${r.smoothing}`);
  return out;
}
