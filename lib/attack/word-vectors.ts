// Word vectors in GloVe's text format (`word v1 … vd`, one word a line; counter-fitted vectors, the ones TextFooler
// uses, come in this format too), held as unit rows so that a cosine is a dot product. The attack's candidate
// words are a word's nearest neighbours here.
import { readTextFile } from "../io/read.ts";

export class WordVectors {
  readonly words: readonly string[];
  readonly dim: number;
  /** unit-length rows, words.length × dim */
  private readonly unit: Float32Array;
  private readonly index: Map<string, number>;

  private constructor(words: string[], dim: number, unit: Float32Array) {
    this.words = words;
    this.dim = dim;
    this.unit = unit;
    this.index = new Map(words.map((w, i) => [w, i]));
  }

  /** Reads a GloVe-format text file; `what` names the argument in errors (e.g. "--attack.vectors"). */
  static load(file: string, what = "vectors"): WordVectors {
    return WordVectors.parse(readTextFile(file, what), `${what} ${file}`);
  }

  /**
   * Parses GloVe-format text. A first line of two integers (word2vec's text header) is skipped; every other line
   * needs the same number of values. A word given twice keeps its first vector, as gensim's loader does.
   */
  static parse(text: string, where = "vectors"): WordVectors {
    const lines = text.split("\n");
    const words: string[] = [];
    const rows: Float32Array[] = [];
    let dim = -1;
    const seen = new Set<string>();
    lines.forEach((raw, i) => {
      const line = raw.trimEnd();
      if (!line) return;
      const parts = line.split(" ");
      if (i === 0 && parts.length === 2 && parts.every((p) => /^\d+$/.test(p))) return;
      const values = parts.slice(1).map(Number);
      if (parts.length < 2 || values.some((v) => !Number.isFinite(v))) {
        throw new Error(`${where}: line ${i + 1} is not "word v1 … vd" with finite numbers`);
      }
      if (dim === -1) dim = values.length;
      if (values.length !== dim) {
        throw new Error(`${where}: line ${i + 1} has ${values.length} values, the first line ${dim}`);
      }
      const word = parts[0]!;
      if (seen.has(word)) return;
      seen.add(word);
      const norm = Math.hypot(...values);
      words.push(word);
      rows.push(Float32Array.from(values, (v) => (norm > 0 ? v / norm : 0)));
    });
    if (!words.length) throw new Error(`${where}: no word vectors found (expected "word v1 … vd" lines)`);
    const unit = new Float32Array(words.length * dim);
    rows.forEach((r, i) => unit.set(r, i * dim));
    return new WordVectors(words, dim, unit);
  }

  has(word: string): boolean {
    return this.index.has(word);
  }

  /** Cosine of two words' vectors; undefined when either is missing. */
  cosine(a: string, b: string): number | undefined {
    const i = this.index.get(a);
    const j = this.index.get(b);
    if (i === undefined || j === undefined) return undefined;
    return this.dot(i, j);
  }

  /**
   * The k nearest other words by cosine with a cosine of at least minCos, nearest first (ties by the file's
   * order); empty for a word without a vector. A scan of every row: one word's neighbours cost words × dim
   * multiply-adds (65 k × 300 for the counter-fitted file), small beside one forward pass of the summariser.
   */
  nearest(word: string, k: number, minCos: number): { word: string; cos: number }[] {
    const i = this.index.get(word);
    if (i === undefined) return [];
    const out: { word: string; cos: number; j: number }[] = [];
    for (let j = 0; j < this.words.length; j++) {
      if (j === i) continue;
      const cos = this.dot(i, j);
      if (cos >= minCos) out.push({ word: this.words[j]!, cos, j });
    }
    out.sort((a, b) => b.cos - a.cos || a.j - b.j);
    return out.slice(0, k).map(({ word: w, cos }) => ({ word: w, cos }));
  }

  /** Mean of the unit vectors of the words that have one; undefined when none has. */
  mean(words: readonly string[]): Float32Array | undefined {
    const m = new Float32Array(this.dim);
    let n = 0;
    for (const w of words) {
      const i = this.index.get(w);
      if (i === undefined) continue;
      n++;
      for (let d = 0; d < this.dim; d++) m[d]! += this.unit[i * this.dim + d]!;
    }
    return n ? m : undefined;
  }

  private dot(i: number, j: number): number {
    let s = 0;
    for (let d = 0; d < this.dim; d++) s += this.unit[i * this.dim + d]! * this.unit[j * this.dim + d]!;
    return s;
  }
}

/** Cosine of two vectors (0 when either is zero). */
export function vectorCosine(a: Float32Array, b: Float32Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let d = 0; d < a.length; d++) {
    ab += a[d]! * b[d]!;
    aa += a[d]! * a[d]!;
    bb += b[d]! * b[d]!;
  }
  return aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : 0;
}
