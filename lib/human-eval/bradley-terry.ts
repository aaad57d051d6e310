// Bradley–Terry strengths from pairwise preferences: P(i preferred to j) = π_i / (π_i + π_j), fitted by maximum
// likelihood with Hunter's (2004) MM algorithm (π_i ← W_i / Σ_j n_ij / (π_i + π_j), then normalised). A tie
// counts as half a win for each side. Written out (no maintained JavaScript package fits it; the MM update is a
// few lines); checked against the `choix` Python package in test/human-eval-stats.test.ts.

/** Outcomes between systems `a` and `b` (indices). */
export interface PairOutcomes {
  a: number;
  b: number;
  /** judgements preferring a, preferring b, and ties */
  winsA: number;
  winsB: number;
  ties: number;
}

export interface BradleyTerry {
  /** strengths π_i, summing to 1 (a system never preferred gets 0) */
  strengths: number[];
  iterations: number;
  converged: boolean;
}

/**
 * The MLE of `systems` strengths from `outcomes`. The comparisons should connect every system (strengths in
 * separate components are not comparable; the normalisation then spans them arbitrarily).
 */
export function bradleyTerry(
  systems: number,
  outcomes: readonly PairOutcomes[],
  { tolerance = 1e-12, maxIterations = 100_000 } = {},
): BradleyTerry {
  const wins = new Float64Array(systems);
  const n = Array.from({ length: systems }, () => new Float64Array(systems));
  for (const o of outcomes) {
    if (o.a === o.b || o.a < 0 || o.b < 0 || o.a >= systems || o.b >= systems) {
      throw new RangeError(`bradleyTerry: systems ${o.a} and ${o.b}: expected two different indices below ${systems}`);
    }
    const total = o.winsA + o.winsB + o.ties;
    wins[o.a]! += o.winsA + o.ties / 2;
    wins[o.b]! += o.winsB + o.ties / 2;
    n[o.a]![o.b]! += total;
    n[o.b]![o.a]! += total;
  }
  let p = new Float64Array(systems).fill(1 / systems);
  for (let it = 1; it <= maxIterations; it++) {
    const next = new Float64Array(systems);
    for (let i = 0; i < systems; i++) {
      let denominator = 0;
      for (let j = 0; j < systems; j++) if (j !== i && n[i]![j]! > 0) denominator += n[i]![j]! / (p[i]! + p[j]!);
      next[i] = denominator > 0 ? wins[i]! / denominator : p[i]!;
    }
    const sum = next.reduce((s, x) => s + x, 0);
    for (let i = 0; i < systems; i++) next[i]! /= sum;
    const change = Math.max(...next.map((x, i) => Math.abs(x - p[i]!)));
    p = next;
    if (change < tolerance) return { strengths: [...p], iterations: it, converged: true };
  }
  return { strengths: [...p], iterations: maxIterations, converged: false };
}
