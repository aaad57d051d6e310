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

/** The loss of one row: CE = −log p_y, Brier = Σ (p_k − 1[k=y])², spherical = −p_y/‖p‖, mix = (1−α)CE + αBrier. */
export function rowLoss(z: ArrayLike<number>, y: number, kind: RefKind, alpha = 0): number {
  const p = softmax(z);
  const ce = -Math.log(p[y]!);
  const brier = p.reduce((acc, pk, k) => acc + (pk - (k === y ? 1 : 0)) ** 2, 0);
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
    losses.push(rowLoss(z, y, kind, alpha));
    for (let k = 0; k < vocab; k++) {
      const keep = z[k]!;
      z[k] = keep + h;
      const up = rowLoss(z, y, kind, alpha);
      z[k] = keep - h;
      const down = rowLoss(z, y, kind, alpha);
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
