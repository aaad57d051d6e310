// Bootstrap confidence intervals on a mean, computed as rouge-score's scoring.BootstrapAggregator computes them
// (ROUGE in docs/metrics.md): each bootstrap sample draws n rows with replacement, the sample's column means are
// kept, and low/mid/high are the (1 − c)/2, 50 and (1 + c)/2 percentiles of those means, interpolated linearly
// between order statistics as numpy.percentile does. Mid is thus the median of the resampled means, not the mean.
// Beside it, Koehn's (2004) paired bootstrap resampling of two systems on the same test items (win counts and
// the percentile interval of the difference), on a general bootstrap of a statistic of items resampled within strata
// (a contrast of means, or a corpus-level metric recomputed on each resample, as Koehn recomputes BLEU).

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

/** One stratum of a bootstrap contrast: its items' values, resampled within the stratum, and the weight of their mean. */
export interface Stratum {
  values: readonly number[];
  weight: number;
}

/** A bootstrap of a statistic of resampled items: its value on all items, its percentile interval, and its signs. */
export interface BootstrapStatistic {
  /** the statistic on all items (every stratum's identity resample) */
  estimate: number;
  /** percentile interval: the (1 − confidence)/2 and (1 + confidence)/2 percentiles of the resampled statistics */
  low: number;
  high: number;
  confidence: number;
  samples: number;
  /** resamples whose statistic is above 0, below 0, and exactly 0 */
  above: number;
  below: number;
  ties: number;
}

/** The identity resample of n items: 0, 1, …, n − 1. */
export const identityResample = (n: number): Int32Array => Int32Array.from({ length: n }, (_, i) => i);

/**
 * Bootstrap of any statistic of item sets (a contrast, or a corpus-level metric such as a perplexity pooled over
 * resampled sequences, as Koehn's BLEU is): each sample draws every stratum's `sizes[s]` items with replacement,
 * independently of the other strata, in stratum order, and evaluates `statistic` on those index sets; the interval
 * is the percentile interval of the statistics (numpy's linear interpolation), and the counts say on which side of 0
 * they fell. The estimate is the statistic on the identity resamples.
 */
export function bootstrapStatistic(
  sizes: readonly number[],
  statistic: (resamples: readonly ArrayLike<number>[]) => number,
  options: { samples: number; confidence?: number; seed: number },
): BootstrapStatistic {
  const confidence = options.confidence ?? 0.95;
  checkBootstrap(options.samples, confidence);
  if (sizes.length === 0) throw new RangeError("bootstrapStatistic: no strata");
  if (!sizes.every((n) => Number.isInteger(n) && n > 0)) {
    throw new RangeError("bootstrapStatistic: every stratum must hold at least one item");
  }
  const resample = seededResampler(options.seed);
  const values = new Float64Array(options.samples);
  let above = 0;
  let below = 0;
  for (let k = 0; k < options.samples; k++) {
    const c = statistic(sizes.map((n) => resample(n)));
    values[k] = c;
    if (c > 0) above++;
    else if (c < 0) below++;
  }
  values.sort();
  const delta = (1 - confidence) / 2;
  return {
    estimate: statistic(sizes.map(identityResample)),
    low: percentileOfSorted(values, 100 * delta),
    high: percentileOfSorted(values, 100 * (1 - delta)),
    confidence,
    samples: options.samples,
    above,
    below,
    ties: options.samples - above - below,
  };
}

/** A bootstrap of a contrast of means (bootstrapContrast). */
export type BootstrapContrast = BootstrapStatistic;

/**
 * Bootstrap of a contrast Σ_s w_s · mean(values_s) (bootstrapStatistic over the strata's items): one stratum of
 * paired differences is the paired bootstrap (pairedBootstrap); two strata of weights +1 and −1 compare means over
 * two different item sets (e.g. a test split and a transfer set).
 */
export function bootstrapContrast(
  strata: readonly Stratum[],
  options: { samples: number; confidence?: number; seed: number },
): BootstrapContrast {
  checkBootstrap(options.samples, options.confidence ?? 0.95);
  if (strata.length === 0) throw new RangeError("bootstrapContrast: no strata");
  for (const s of strata) {
    if (s.values.length === 0) throw new RangeError("bootstrapContrast: every stratum must hold at least one value");
    if (!s.values.every(Number.isFinite)) throw new RangeError("bootstrapContrast: values must be finite numbers");
  }
  const contrast = (resamples: readonly ArrayLike<number>[]) =>
    strata.reduce((sum, s, k) => {
      const idx = resamples[k]!;
      let total = 0;
      for (let i = 0; i < idx.length; i++) total += s.values[idx[i]!]!;
      return sum + s.weight * (total / idx.length);
    }, 0);
  return bootstrapStatistic(
    strata.map((s) => s.values.length),
    contrast,
    options,
  );
}

export interface PairedBootstrap {
  /** mean of a − b over all items */
  meanDifference: number;
  /** percentile interval of the resampled mean differences (Koehn's: drop the lowest and highest (1 − c)/2) */
  low: number;
  high: number;
  confidence: number;
  samples: number;
  /** resamples in which a's mean beats b's (is higher), b's beats a's, and the two are equal */
  winsA: number;
  winsB: number;
  ties: number;
  /** Koehn's p-value for "a is better than b": the share of resamples in which a does not beat b, 1 − winsA/samples */
  pA: number;
  /** the same for "b is better than a": 1 − winsB/samples */
  pB: number;
}

/**
 * Koehn's (2004) paired bootstrap resampling for two systems scored on the same test items, higher scores better
 * (negate lower-is-better scores): draw `samples` test sets of n items with replacement; in each, compare the
 * systems' scores (here the mean of per-item scores, so a per-item metric such as ROUGE-L F); a is better than b
 * with confidence 1 − p when it wins in a share 1 − p of the samples. Ties count for neither. The same samples give
 * the percentile confidence interval of the mean difference (Koehn's section 4: the middle `confidence` share of
 * the sampled values). p = 0 means no sample went the other way: its resolution is 1 / samples.
 */
export function pairedBootstrap(
  a: readonly number[],
  b: readonly number[],
  options: { samples: number; confidence?: number; seed: number },
): PairedBootstrap {
  if (a.length !== b.length)
    throw new RangeError(`pairedBootstrap: a and b differ in length (${a.length} vs ${b.length})`);
  if (a.length === 0) throw new RangeError("pairedBootstrap: a and b must hold at least one score");
  const d = a.map((x, i) => x - b[i]!);
  if (!d.every(Number.isFinite)) throw new RangeError("pairedBootstrap: scores must be finite numbers");
  const c = bootstrapContrast([{ values: d, weight: 1 }], options);
  return {
    meanDifference: c.estimate,
    low: c.low,
    high: c.high,
    confidence: c.confidence,
    samples: c.samples,
    winsA: c.above,
    winsB: c.below,
    ties: c.ties,
    pA: 1 - c.above / c.samples,
    pB: 1 - c.below / c.samples,
  };
}
