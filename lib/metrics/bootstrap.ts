// Bootstrap confidence intervals on a mean, computed as rouge-score's scoring.BootstrapAggregator computes them
// (ROUGE in docs/metrics.md): each bootstrap sample draws n rows with replacement, the sample's column means are
// kept, and low/mid/high are the (1 − c)/2, 50 and (1 + c)/2 percentiles of those means, interpolated linearly
// between order statistics as numpy.percentile does. Mid is thus the median of the resampled means, not the mean.

/** One bootstrap sample: n row indices in [0, n), drawn with replacement. */
export type Resampler = (n: number) => ArrayLike<number>;

export interface BootstrapInterval {
  low: number[];
  mid: number[];
  high: number[];
}

/**
 * A seeded resampler (mulberry32): the same seed gives the same samples. The seed is an integer in
 * [0, 2^32); the draws are not numpy's, so intervals agree with rouge-score's only in distribution.
 */
export function seededResampler(seed: number): Resampler {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new RangeError(`bootstrap seed must be an integer in [0, 2^32), got ${seed}`);
  }
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return (n) => {
    const idx = new Int32Array(n);
    for (let i = 0; i < n; i++) idx[i] = Math.floor(next() * n);
    return idx;
  };
}

// numpy's linear interpolation, including its switch to b − (b − a)(1 − t) for t ≥ 0.5, so results match to the bit.
function percentileOfSorted(sorted: Float64Array, q: number): number {
  const virtual = (q / 100) * (sorted.length - 1);
  const lo = Math.floor(virtual);
  const hi = Math.min(lo + 1, sorted.length - 1);
  const t = virtual - lo;
  const a = sorted[lo]!;
  const b = sorted[hi]!;
  const diff = b - a;
  return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
}

/** RangeError unless samples is a positive integer and confidence lies in [0, 1]. */
export function checkBootstrap(samples: number, confidence: number): void {
  if (!Number.isInteger(samples) || samples <= 0) {
    throw new RangeError(`bootstrap samples must be a positive integer, got ${samples}`);
  }
  if (!(confidence >= 0 && confidence <= 1)) {
    throw new RangeError(`bootstrap confidence must be in [0, 1], got ${confidence}`);
  }
}

/**
 * Percentile bootstrap interval of the column means of `rows` (n rows, each with the same number of measures):
 * `samples` resamplings, each drawn by `resample`, and the central `confidence` interval.
 */
export function bootstrapInterval(
  rows: readonly (readonly number[])[],
  samples: number,
  confidence: number,
  resample: Resampler,
): BootstrapInterval {
  checkBootstrap(samples, confidence);
  const n = rows.length;
  if (n === 0) throw new RangeError("bootstrapInterval: rows must hold at least one row");
  const width = rows[0]!.length;
  const means = Array.from({ length: width }, () => new Float64Array(samples));
  const sum = new Float64Array(width);
  for (let s = 0; s < samples; s++) {
    const idx = resample(n);
    if (idx.length !== n) throw new RangeError(`resample(${n}) returned ${idx.length} indices`);
    sum.fill(0);
    for (let i = 0; i < n; i++) {
      const row = rows[idx[i]!];
      if (row === undefined) throw new RangeError(`resample(${n}) returned index ${idx[i]} outside [0, ${n})`);
      for (let k = 0; k < width; k++) sum[k]! += row[k]!;
    }
    for (let k = 0; k < width; k++) means[k]![s] = sum[k]! / n;
  }
  const delta = (1 - confidence) / 2;
  const [qLow, qMid, qHigh] = [100 * delta, 100 * 0.5, 100 * (1 - delta)];
  const out: BootstrapInterval = { low: [], mid: [], high: [] };
  for (const m of means) {
    m.sort();
    out.low.push(percentileOfSorted(m, qLow));
    out.mid.push(percentileOfSorted(m, qMid));
    out.high.push(percentileOfSorted(m, qHigh));
  }
  return out;
}

export interface PairedBootstrap {
  /** mean of a − b */
  meanDifference: number;
  /** percentile interval of the resampled mean differences */
  low: number;
  high: number;
  confidence: number;
  samples: number;
  /**
   * two-sided p-value: twice the smaller share of resampled mean differences on either side of 0 (at most 1), the
   * paired bootstrap test of Koehn (2004) and Berg-Kirkpatrick et al. (2012) for per-example scores
   */
  p: number;
}

/**
 * Paired bootstrap of two systems scored on the same examples (a[i], b[i]): resample examples with replacement,
 * keep the mean difference of each sample.
 */
export function pairedBootstrap(
  a: readonly number[],
  b: readonly number[],
  options: { samples: number; confidence?: number; seed: number },
): PairedBootstrap {
  const confidence = options.confidence ?? 0.95;
  checkBootstrap(options.samples, confidence);
  if (a.length !== b.length)
    throw new RangeError(`pairedBootstrap: a and b differ in length (${a.length} vs ${b.length})`);
  if (a.length === 0) throw new RangeError("pairedBootstrap: a and b must hold at least one score");
  const d = a.map((x, i) => x - b[i]!);
  if (!d.every(Number.isFinite)) throw new RangeError("pairedBootstrap: scores must be finite numbers");
  const interval = bootstrapInterval(
    d.map((x) => [x]),
    options.samples,
    confidence,
    seededResampler(options.seed),
  );
  // The share on each side needs the draws themselves: replay the same resampler.
  const resample = seededResampler(options.seed);
  let below = 0;
  let above = 0;
  for (let s = 0; s < options.samples; s++) {
    const idx = resample(d.length);
    let sum = 0;
    for (let i = 0; i < d.length; i++) sum += d[idx[i]!]!;
    if (sum <= 0) below++;
    if (sum >= 0) above++;
  }
  return {
    meanDifference: d.reduce((x, y) => x + y, 0) / d.length,
    low: interval.low[0]!,
    high: interval.high[0]!,
    confidence,
    samples: options.samples,
    p: Math.min(1, (2 * Math.min(below, above)) / options.samples),
  };
}
