// Summary-swap noise: some training examples are given another example's reference, so the experiments can
// measure how each loss copes with wrong targets. The rule is a pure function of (seed, batch index, batch
// rows, p) with its generator written out below, so the C++ training loop can apply exactly the same swaps.
//
// The rule, all arithmetic on unsigned 64-bit integers modulo 2^64:
//
//   next():  state ← state + 0x9E3779B97F4A7C15
//            z ← state
//            z ← (z ⊕ (z >> 30)) × 0xBF58476D1CE4E5B9
//            z ← (z ⊕ (z >> 27)) × 0x94D049BB133111EB
//            return z ⊕ (z >> 31)                      (SplitMix64, the generator of Java's SplittableRandom)
//
//   state ← (seed << 32) | batchIndex                  (seed and batchIndex integers in [0, 2^32))
//   for row i = 0 … rows − 1:
//     a ← next(); b ← next()                           (drawn for every row, so row i always uses draws 2i, 2i+1)
//     src[i] ← i
//     if rows ≥ 2 and double(a >> 11) × 2^−53 < p:     (exact in IEEE doubles: a 53-bit integer times 2^−53)
//       j ← b mod (rows − 1); if j ≥ i then j ← j + 1  (uniform over the other rows: never i itself)
//       src[i] ← j
//
// Row i then trains on the reference row src[i] had before any swap (a swap reads the un-noised batch, so two
// rows may take each other's and one reference may go to several rows). C++: `double(a >> 11) * 0x1.0p-53 < p`.

const GAMMA = 0x9e3779b97f4a7c15n;
const MASK = (1n << 64n) - 1n;

/** SplitMix64 from `state` (a uint64), as in the rule above. */
export class SplitMix64 {
  private state: bigint;

  constructor(state: bigint) {
    this.state = BigInt.asUintN(64, state);
  }

  next(): bigint {
    this.state = (this.state + GAMMA) & MASK;
    let z = this.state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK;
    return z ^ (z >> 31n);
  }
}

export const DEFAULT_SWAP_PROBABILITY = 0.15;

export interface SummarySwapOptions {
  /** the run's noise seed, an integer in [0, 2^32) */
  seed: number;
  /** the batch's index in the run (the training loop's step counter), an integer in [0, 2^32) */
  batchIndex: number;
  /** rows in the batch */
  rows: number;
  /** probability that a row's reference is swapped (default 0.15) */
  p?: number;
}

function uint32(value: number, name: string): bigint {
  if (!Number.isInteger(value) || value < 0 || value >= 2 ** 32) {
    throw new RangeError(`summarySwapSources: ${name}: expected an integer in [0, 2^32), got ${value}`);
  }
  return BigInt(value);
}

/** For each row of a batch, the row whose reference it trains on (itself unless swapped); see the rule above. */
export function summarySwapSources(options: SummarySwapOptions): Int32Array {
  const { rows, p = DEFAULT_SWAP_PROBABILITY } = options;
  const seed = uint32(options.seed, "seed");
  const batchIndex = uint32(options.batchIndex, "batchIndex");
  if (!Number.isInteger(rows) || rows < 0) throw new RangeError(`summarySwapSources: rows: expected an integer >= 0`);
  if (!(p >= 0 && p <= 1)) throw new RangeError(`summarySwapSources: p: expected a number in [0, 1], got ${p}`);
  const rng = new SplitMix64((seed << 32n) | batchIndex);
  const src = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    const a = rng.next();
    const b = rng.next();
    src[i] = i;
    if (rows >= 2 && Number(a >> 11n) * 2 ** -53 < p) {
      const j = Number(b % BigInt(rows - 1));
      src[i] = j >= i ? j + 1 : j;
    }
  }
  return src;
}

/**
 * A batch's target rows (rows × width, with their lengths) after the swaps in `src`: row i becomes the
 * original row src[i].
 */
export function applySummarySwap(
  targets: Int32Array,
  lengths: Int32Array,
  width: number,
  src: Int32Array,
): { targets: Int32Array; lengths: Int32Array } {
  if (targets.length !== src.length * width || lengths.length !== src.length) {
    throw new RangeError(
      `applySummarySwap: expected ${src.length} rows of ${width} ids and ${src.length} lengths, got ${targets.length} ids and ${lengths.length} lengths`,
    );
  }
  const out = new Int32Array(targets.length);
  const outLengths = new Int32Array(src.length);
  src.forEach((from, i) => {
    out.set(targets.subarray(from * width, (from + 1) * width), i * width);
    outLengths[i] = lengths[from]!;
  });
  return { targets: out, lengths: outLengths };
}
