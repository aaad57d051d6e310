// An independent float64 reference for the JS-level tests: each score written from its definition, and
// gradients by central finite differences (so none of the kernel's derived formulas are reused).
export type RefKind = "ce" | "brier" | "spherical" | "mix";

export function softmax(z: ArrayLike<number>): number[] {
  let m = -Infinity;
  for (let i = 0; i < z.length; i++) m = Math.max(m, z[i]!);
  const e = Array.from({ length: z.length }, (_, i) => Math.exp(z[i]! - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

/**
 * The loss of one row: CE = −log p_y, Brier = Σ (p_k − 1[k=y])², spherical = −p_y/‖p‖, mix = (1−α)CE + αBrier.
 * With `smoothing` ε > 0 (ce, brier, mix) each score is its expectation under the smoothed target
 * q = (1 − ε)·onehot(y) + ε/V, written out as defined: CE = −Σ_k q_k log p_k, Brier = Σ_j q_j Σ_k (p_k − 1[k=j])².
 */
export function rowLoss(z: ArrayLike<number>, y: number, kind: RefKind, alpha = 0, smoothing = 0): number {
  const p = softmax(z);
  const V = p.length;
  const q = p.map((_, k) => (1 - smoothing) * (k === y ? 1 : 0) + smoothing / V);
  const brierAt = (j: number) => p.reduce((acc, pk, k) => acc + (pk - (k === j ? 1 : 0)) ** 2, 0);
  const ce = smoothing > 0 ? -p.reduce((acc, pk, k) => acc + q[k]! * Math.log(pk), 0) : -Math.log(p[y]!);
  const brier = smoothing > 0 ? q.reduce((acc, qj, j) => acc + qj * brierAt(j), 0) : brierAt(y);
  const norm = Math.sqrt(p.reduce((acc, pk) => acc + pk * pk, 0));
  switch (kind) {
    case "ce":
      return ce;
    case "brier":
      return brier;
    case "spherical":
      return -p[y]! / norm;
    case "mix":
      return (1 - alpha) * ce + alpha * brier;
  }
}

export interface RefResult {
  losses: number[];
  /** d(Σ losses · weight)/dz by central differences */
  grad: Float64Array;
}

export function reference(
  logits: Float32Array,
  targets: Int32Array,
  vocab: number,
  kind: RefKind,
  alpha: number,
  ignoreIndex: number,
  weight: number,
  smoothing = 0,
): RefResult {
  const n = targets.length;
  const losses: number[] = [];
  const grad = new Float64Array(n * vocab);
  const h = 1e-5;
  for (let r = 0; r < n; r++) {
    const y = targets[r]!;
    if (y === ignoreIndex) {
      losses.push(0);
      continue;
    }
    const z = Array.from(logits.subarray(r * vocab, (r + 1) * vocab), Number);
    losses.push(rowLoss(z, y, kind, alpha, smoothing));
    for (let k = 0; k < vocab; k++) {
      const keep = z[k]!;
      z[k] = keep + h;
      const up = rowLoss(z, y, kind, alpha, smoothing);
      z[k] = keep - h;
      const down = rowLoss(z, y, kind, alpha, smoothing);
      z[k] = keep;
      grad[r * vocab + k] = (weight * (up - down)) / (2 * h);
    }
  }
  return { losses, grad };
}

/** ‖a − b‖ / ‖b‖ (‖a − b‖ when b is zero). */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return den > 0 ? Math.sqrt(num / den) : Math.sqrt(num);
}
