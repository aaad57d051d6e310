// Per test sequence token sums of an evaluation, from which PPL, ECE-10 and the Brier score of any multiset of the
// sequences follow exactly: each metric is a ratio of token sums (docs/metrics.md; native/core/eval/metrics.cpp
// keeps the same sums), so the sums of a resample of sequences give its metrics, and the identity resample gives
// the whole set's. A bootstrap over test sequences (lib/metrics/bootstrap.ts's bootstrapStatistic) recomputes the
// pooled metrics on each resample, as Koehn's paired bootstrap recomputes corpus BLEU.
import type { EvalMetrics } from "../native.ts";

/** Token sums per sequence, in the split's order (each array holds one entry per sequence). */
export interface SequenceSums {
  /** scored tokens */
  tokens: number[];
  /** Σ −log p(target) */
  nll: number[];
  /** Σ of the per-token Brier score (multi-class: 1 − 2 p(target) + Σ p²) */
  brier: number[];
  /** per sequence, per equal-width bin of max p (ECE-10's 10 bins): tokens, Σ max p, Σ hit */
  binCount: number[][];
  binConfidence: number[][];
  binHits: number[][];
}

/** The pooled metrics of a set of sequences. */
export interface PooledMetrics {
  tokens: number;
  ppl: number;
  ece10: number;
  brier: number;
}

/**
 * The sums of one sequence from its own evaluation (EvalMetrics of that sequence alone: the native evaluator
 * reports means, so a mean × tokens gives back its sum; hit counts are integers and are rounded to them).
 */
function sumsOf(m: EvalMetrics) {
  const n = m.tokens;
  const bins = m.bins10;
  return {
    tokens: n,
    nll: n > 0 ? m.nll * n : 0,
    brier: n > 0 ? m.brier * n : 0,
    binCount: bins.map((b) => b.count),
    binConfidence: bins.map((b) => (b.count > 0 ? b.confidence * b.count : 0)),
    binHits: bins.map((b) => (b.count > 0 ? Math.round(b.accuracy * b.count) : 0)),
  };
}

/** The sums of each sequence from one evaluation per sequence (each of `perSequence` evaluated one sequence alone). */
export function sequenceSumsOf(perSequence: readonly EvalMetrics[]): SequenceSums {
  const out: SequenceSums = { tokens: [], nll: [], brier: [], binCount: [], binConfidence: [], binHits: [] };
  for (const m of perSequence) {
    if (m.bins10.length !== 10) throw new RangeError(`sequenceSumsOf: expected 10 bins, got ${m.bins10.length}`);
    const s = sumsOf(m);
    out.tokens.push(s.tokens);
    out.nll.push(s.nll);
    out.brier.push(s.brier);
    out.binCount.push(s.binCount);
    out.binConfidence.push(s.binConfidence);
    out.binHits.push(s.binHits);
  }
  return out;
}

/** The number of sequences in `s`. */
export const sequenceCount = (s: SequenceSums): number => s.tokens.length;

/**
 * PPL, ECE-10 and Brier pooled over the sequences `idx` of `s` (a resample: indices may repeat), as the native
 * evaluator computes them over a whole set: PPL = exp(Σ NLL / Σ tokens), ECE-10 = Σ_b |Σ hit_b − Σ max p_b| / Σ
 * tokens, Brier = Σ Brier / Σ tokens.
 */
export function pooledMetrics(s: SequenceSums, idx: ArrayLike<number>): PooledMetrics {
  let tokens = 0;
  let nll = 0;
  let brier = 0;
  const conf = new Float64Array(10);
  const hits = new Float64Array(10);
  for (let k = 0; k < idx.length; k++) {
    const i = idx[k]!;
    tokens += s.tokens[i]!;
    nll += s.nll[i]!;
    brier += s.brier[i]!;
    const c = s.binConfidence[i]!;
    const h = s.binHits[i]!;
    for (let b = 0; b < 10; b++) {
      conf[b]! += c[b]!;
      hits[b]! += h[b]!;
    }
  }
  let ece = 0;
  for (let b = 0; b < 10; b++) ece += Math.abs(hits[b]! - conf[b]!);
  return { tokens, ppl: Math.exp(nll / tokens), ece10: ece / tokens, brier: brier / tokens };
}

/** RangeError unless `s` is well formed: as many entries in every array, 10 bins per sequence, finite sums. */
export function checkSequenceSums(s: SequenceSums, name: string): void {
  const n = s.tokens.length;
  for (const k of ["nll", "brier", "binCount", "binConfidence", "binHits"] as const) {
    if (s[k].length !== n) throw new RangeError(`${name}.${k}: expected ${n} sequences, got ${s[k].length}`);
  }
  for (const k of ["binCount", "binConfidence", "binHits"] as const) {
    if (s[k].some((row) => row.length !== 10)) throw new RangeError(`${name}.${k}: expected 10 bins per sequence`);
  }
  if (![...s.tokens, ...s.nll, ...s.brier].every(Number.isFinite)) {
    throw new RangeError(`${name}: expected finite sums`);
  }
}
