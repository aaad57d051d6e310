// Seeded random numbers for the numeric inputs of tests and benchmarks (mulberry32 + Box–Muller): the same cases
// every run.
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function normal(rand: () => number): number {
  const u = 1 - rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

export function randomLogits(rand: () => number, n: number, scale = 3): Float32Array {
  return Float32Array.from({ length: n }, () => normal(rand) * scale);
}

export function randomTargets(rand: () => number, n: number, vocab: number): Int32Array {
  return Int32Array.from({ length: n }, () => Math.floor(rand() * vocab));
}

export function randInt(rand: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rand() * (hi - lo + 1));
}
