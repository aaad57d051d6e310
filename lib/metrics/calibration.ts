// Calibration of top-1 predictions from per-token statistics (DPSMLoss.forward's `stats`), as docs/metrics.md
// defines it: equal-width bins over the top-1 probability; ECE-B = Σ_b (n_b/N)·|acc_b − conf_b|. Models are
// evaluated natively (native/core/eval/metrics.cpp); this is TypeScript's one copy, and the tests' reference.

import type { BrierDecomposition, ReliabilityBin } from "../native.ts";

export type { BrierDecomposition, ReliabilityBin } from "../native.ts";

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

/**
 * Adaptive (equal-mass) ECE: the tokens sorted by confidence, bin b the ranks [⌊b·N/B⌋, ⌊(b+1)·N/B⌋), and
 * Σ_b (n_b/N)·|acc_b − conf_b| where every token of a run of tied confidences counts the run's mean hit. Rank
 * cuts alone would have to order tied tokens by something: by hit, a run crossing a cut sends its misses to the
 * lower bin and its hits to the upper one, so the labels choose the bins and skew the error (fp32 language
 * models give many tokens a max p of exactly 1). The run's mean hit is what breaking the tie at random gives each
 * bin in expectation, without the randomness, and it keeps the bins equal-mass; a run inside one bin adds the
 * same hit count as before, so without ties across cuts nothing changes. native/core/eval/metrics.cpp is the same.
 */
export function adaptiveCalibrationError(confidence: ArrayLike<number>, hit: ArrayLike<number>, bins: number): number {
  if (!Number.isInteger(bins) || bins < 1) throw new RangeError(`bins: expected an integer >= 1, got ${bins}`);
  if (confidence.length !== hit.length) throw new RangeError("confidence and hit: expected arrays of the same length");
  const n = confidence.length;
  if (n === 0) return NaN;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => confidence[a]! - confidence[b]!);
  let ece = 0;
  // The tied run [runStart, runEnd) of sorted ranks and its hit count.
  let runStart = 0;
  let runEnd = 0;
  let runHits = 0;
  for (let b = 0; b < bins; b++) {
    const to = Math.floor(((b + 1) * n) / bins);
    let conf = 0;
    let hits = 0;
    for (let r = Math.floor((b * n) / bins); r < to;) {
      if (r === runEnd) {
        // Token r starts the run whatever it is (a NaN equals nothing, itself included).
        const c = confidence[order[r]!]!;
        runStart = r;
        runHits = hit[order[r]!]!;
        for (runEnd = r + 1; runEnd < n && confidence[order[runEnd]!]! === c; runEnd++) runHits += hit[order[runEnd]!]!;
      }
      const end = Math.min(to, runEnd);
      for (let i = r; i < end; i++) conf += confidence[order[i]!]!;
      // (k·h)/m: a whole run (k = m) adds exactly its hit count h.
      hits += ((end - r) * runHits) / (runEnd - runStart);
      r = end;
    }
    ece += Math.abs(hits - conf) / n;
  }
  return ece;
}

/**
 * The top-1 Brier score mean (confidence − hit)² and its decomposition over `bins` equal-width bins (Murphy's
 * reliability, resolution, uncertainty and Stephenson's within-bin variance and covariance), term by term.
 */
export function brierDecomposition(
  confidence: ArrayLike<number>,
  hit: ArrayLike<number>,
  bins: number,
): BrierDecomposition {
  const n = confidence.length;
  const rb = reliabilityBins(confidence, hit, bins);
  const acc = Array.from(hit).reduce((a, b) => a + b, 0) / n;
  const d = {
    top1: 0,
    reliability: 0,
    resolution: 0,
    uncertainty: acc * (1 - acc),
    withinVariance: 0,
    withinCovariance: 0,
  };
  for (let i = 0; i < n; i++) {
    const f = confidence[i]!;
    const o = hit[i]!;
    const b = rb[Math.min(bins - 1, Math.max(0, Math.floor(f * bins)))]!;
    d.top1 += (f - o) ** 2 / n;
    d.withinVariance += (f - b.confidence) ** 2 / n;
    d.withinCovariance += ((f - b.confidence) * (o - b.accuracy)) / n;
  }
  for (const b of rb) {
    if (b.count === 0) continue;
    d.reliability += (b.count / n) * (b.confidence - b.accuracy) ** 2;
    d.resolution += (b.count / n) * (b.accuracy - acc) ** 2;
  }
  return d;
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
