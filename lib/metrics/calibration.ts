// Calibration of top-1 predictions from per-token statistics (DPSMLoss.forward's `stats`), as docs/metrics.md
// defines it: equal-width bins over the top-1 probability; ECE-B = Σ_b (n_b/N)·|acc_b − conf_b|. Models are
// evaluated natively (native/core/eval/metrics.cpp); this is TypeScript's one copy, and the tests' reference.

import type { ReliabilityBin } from "../native.ts";

export type { ReliabilityBin } from "../native.ts";

export function reliabilityBins(confidence: ArrayLike<number>, hit: ArrayLike<number>, bins: number): ReliabilityBin[] {
  if (!Number.isInteger(bins) || bins < 1) throw new RangeError(`bins: expected an integer >= 1, got ${bins}`);
  if (confidence.length !== hit.length) throw new RangeError("confidence and hit: expected arrays of the same length");
  const count = new Float64Array(bins);
  const conf = new Float64Array(bins);
  const acc = new Float64Array(bins);
  for (let i = 0; i < confidence.length; i++) {
    const c = confidence[i]!;
    const b = Math.min(bins - 1, Math.max(0, Math.floor(c * bins)));
    count[b]! += 1;
    conf[b]! += c;
    acc[b]! += hit[i]!;
  }
  return Array.from({ length: bins }, (_, b) => ({
    lower: b / bins,
    upper: (b + 1) / bins,
    count: count[b]!,
    confidence: count[b]! > 0 ? conf[b]! / count[b]! : NaN,
    accuracy: count[b]! > 0 ? acc[b]! / count[b]! : NaN,
  }));
}

/** Expected calibration error with `bins` equal-width bins. */
export function expectedCalibrationError(confidence: ArrayLike<number>, hit: ArrayLike<number>, bins: number): number {
  const n = confidence.length;
  if (n === 0) return NaN;
  return reliabilityBins(confidence, hit, bins).reduce(
    (e, b) => (b.count > 0 ? e + (b.count / n) * Math.abs(b.accuracy - b.confidence) : e),
    0,
  );
}

/** Reliability bins of several evaluations with the same edges, pooled: counts add, means weight by count. */
export function poolReliabilityBins(list: readonly ReliabilityBin[][]): ReliabilityBin[] {
  if (list.length === 0) return [];
  return list[0]!.map((b, i) => {
    let n = 0;
    let conf = 0;
    let acc = 0;
    for (const bins of list) {
      const x = bins[i]!;
      if (x.count > 0) {
        n += x.count;
        conf += x.confidence * x.count;
        acc += x.accuracy * x.count;
      }
    }
    return { lower: b.lower, upper: b.upper, count: n, confidence: n ? conf / n : NaN, accuracy: n ? acc / n : NaN };
  });
}
