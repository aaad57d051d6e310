// ROUGE-N, ROUGE-L and ROUGE-Lsum with the results of Google's rouge-score (version 0.1.2), as docs/metrics.md
// defines them; test/rouge.test.ts holds every score to rouge-score's own output on real summarisation pairs.
// Where rouge-score's choices are arbitrary (which LCS the backtrack picks, the first best reference winning a
// tie) they are copied, because ROUGE-Lsum and multi-reference scores depend on them.
import { bootstrapInterval, checkBootstrap, seededResampler, type Resampler } from "./bootstrap.ts";
import { porterStem } from "./porter-stemmer.ts";

export type RougeType = `rouge${1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9}` | "rougeL" | "rougeLsum";

/** The types scored when none are asked for. */
export const DEFAULT_ROUGE_TYPES = ["rouge1", "rouge2", "rougeL", "rougeLsum"] as const;

export interface RougeScore {
  precision: number;
  recall: number;
  fmeasure: number;
}

export interface RougeOptions<T extends RougeType = RougeType> {
  /** default DEFAULT_ROUGE_TYPES */
  types?: readonly T[];
  /** Porter stemming (NLTK_EXTENSIONS) of tokens longer than 3 characters; default true, as docs/metrics.md */
  stem?: boolean;
}

export type BootstrapOptions = { samples: number; confidence?: number } & (
  | { seed: number }
  /** explicit resampling, e.g. to replay another implementation's draws */
  | { resample: Resampler }
);

export interface RougeCorpusOptions<T extends RougeType = RougeType> extends RougeOptions<T> {
  bootstrap?: BootstrapOptions;
}

export interface RougePair {
  candidate: string;
  references: string | readonly string[];
}

export interface RougeAggregate {
  mean: RougeScore;
  /** the percentile bootstrap interval of the mean (rouge-score's low/mid/high); only with `bootstrap` */
  interval?: { low: RougeScore; mid: RougeScore; high: RougeScore; confidence: number; samples: number };
}

export interface RougeCorpusResult<T extends RougeType> {
  count: number;
  scores: Record<T, RougeAggregate>;
  /** each pair's scores, in the order given */
  pairs: Record<T, RougeScore>[];
}

const isRougeType = (t: unknown): t is RougeType => typeof t === "string" && /^rouge([1-9]|L|Lsum)$/.test(t);

/**
 * rouge-score's tokens: lower-cased, every run of characters outside [a-z0-9] a separator, and with `stem` the
 * Porter stem of each token longer than 3 characters.
 */
export function rougeTokenize(text: string, stem: boolean, stemCache = new Map<string, string>()): string[] {
  const tokens = text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, " ")
    .split(" ");
  const out: string[] = [];
  for (const token of tokens) {
    let t = token;
    if (stem && t.length > 3) {
      let s = stemCache.get(t);
      if (s === undefined) stemCache.set(t, (s = porterStem(t)));
      t = s;
    }
    if (/^[a-z0-9]+$/.test(t)) out.push(t);
  }
  return out;
}

function fmeasure(precision: number, recall: number): number {
  return precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
}

const ZERO: RougeScore = Object.freeze({ precision: 0, recall: 0, fmeasure: 0 });

function ngramCounts(tokens: readonly string[], n: number): Map<string, number> {
  const counts = new Map<string, number>();
  // Tokens are [a-z0-9]+, so a space joins them without ambiguity.
  for (let i = 0; i + n <= tokens.length; i++) {
    const key = tokens.slice(i, i + n).join(" ");
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

function scoreNgrams(reference: readonly string[], candidate: readonly string[], n: number): RougeScore {
  const ref = ngramCounts(reference, n);
  const cand = ngramCounts(candidate, n);
  let overlap = 0;
  let refCount = 0;
  let candCount = 0;
  for (const [g, c] of ref) {
    overlap += Math.min(c, cand.get(g) ?? 0);
    refCount += c;
  }
  for (const c of cand.values()) candCount += c;
  const precision = overlap / Math.max(candCount, 1);
  const recall = overlap / Math.max(refCount, 1);
  return { precision, recall, fmeasure: fmeasure(precision, recall) };
}

// The LCS length table, (|ref| + 1) × (|cand| + 1), row-major.
function lcsTable(ref: readonly string[], cand: readonly string[]): Int32Array {
  const cols = cand.length + 1;
  const t = new Int32Array((ref.length + 1) * cols);
  for (let i = 1; i <= ref.length; i++) {
    for (let j = 1; j <= cand.length; j++) {
      t[i * cols + j] =
        ref[i - 1] === cand[j - 1]
          ? t[(i - 1) * cols + j - 1]! + 1
          : Math.max(t[(i - 1) * cols + j]!, t[i * cols + j - 1]!);
    }
  }
  return t;
}

function scoreLcs(reference: readonly string[], candidate: readonly string[]): RougeScore {
  if (reference.length === 0 || candidate.length === 0) return { ...ZERO };
  const lcs = lcsTable(reference, candidate).at(-1)!;
  const precision = lcs / candidate.length;
  const recall = lcs / reference.length;
  return { precision, recall, fmeasure: fmeasure(precision, recall) };
}

// The reference positions of one LCS, chosen by rouge-score's backtrack (on a tie it steps back in the reference).
function lcsIndices(ref: readonly string[], cand: readonly string[]): number[] {
  const t = lcsTable(ref, cand);
  const cols = cand.length + 1;
  const out: number[] = [];
  let i = ref.length;
  let j = cand.length;
  while (i > 0 && j > 0) {
    if (ref[i - 1] === cand[j - 1]) {
      out.push(i - 1);
      i--;
      j--;
    } else if (t[i * cols + j - 1]! > t[(i - 1) * cols + j]!) j--;
    else i--;
  }
  return out;
}

function countTokens(sentences: readonly (readonly string[])[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const s of sentences) for (const t of s) counts.set(t, (counts.get(t) ?? 0) + 1);
  return counts;
}

// Summary-level LCS: per reference sentence the union of its LCS with every candidate sentence, each token
// counted at most as often as it occurs in either summary (as ROUGE-1.5.5 does, not as the paper states).
function scoreSummaryLcs(reference: readonly string[][], candidate: readonly string[][]): RougeScore {
  const m = reference.reduce((a, s) => a + s.length, 0);
  const n = candidate.reduce((a, s) => a + s.length, 0);
  if (m === 0 || n === 0) return { ...ZERO };
  const refLeft = countTokens(reference);
  const candLeft = countTokens(candidate);
  let hits = 0;
  for (const r of reference) {
    const union = new Set<number>();
    for (const c of candidate) for (const i of lcsIndices(r, c)) union.add(i);
    for (const i of [...union].sort((a, b) => a - b)) {
      const token = r[i]!;
      const inCand = candLeft.get(token) ?? 0;
      const inRef = refLeft.get(token) ?? 0;
      if (inCand > 0 && inRef > 0) {
        hits++;
        candLeft.set(token, inCand - 1);
        refLeft.set(token, inRef - 1);
      }
    }
  }
  const precision = hits / n;
  const recall = hits / m;
  return { precision, recall, fmeasure: fmeasure(precision, recall) };
}

// ROUGE-Lsum's sentences are the text's non-empty lines.
const sentences = (text: string, stem: boolean, cache: Map<string, string>) =>
  text
    .split("\n")
    .filter((s) => s.length > 0)
    .map((s) => rougeTokenize(s, stem, cache));

function scoreOne<T extends RougeType>(
  candidate: string,
  reference: string,
  types: readonly T[],
  stem: boolean,
  cache: Map<string, string>,
): Record<T, RougeScore> {
  const cand = rougeTokenize(candidate, stem, cache);
  const ref = rougeTokenize(reference, stem, cache);
  const out = {} as Record<T, RougeScore>;
  for (const type of types) {
    if (type === "rougeL") out[type] = scoreLcs(ref, cand);
    else if (type === "rougeLsum") {
      out[type] = scoreSummaryLcs(sentences(reference, stem, cache), sentences(candidate, stem, cache));
    } else out[type] = scoreNgrams(ref, cand, Number(type.slice(5)));
  }
  return out;
}

function checkOptions<T extends RougeType>(
  fn: string,
  options: RougeOptions<T>,
): { types: readonly T[]; stem: boolean } {
  if (typeof options !== "object" || options === null) throw new TypeError(`${fn}: options must be an object`);
  const types = options.types ?? (DEFAULT_ROUGE_TYPES as unknown as readonly T[]);
  if (!Array.isArray(types) || types.length === 0) {
    throw new RangeError(`${fn}: options.types must be a non-empty array of ROUGE types`);
  }
  for (const t of types) {
    if (!isRougeType(t)) {
      throw new RangeError(
        `${fn}: options.types holds ${JSON.stringify(t)}; expected rouge1..rouge9, rougeL, rougeLsum`,
      );
    }
  }
  if (new Set(types).size !== types.length) throw new RangeError(`${fn}: options.types repeats a type`);
  const stem = options.stem ?? true;
  if (typeof stem !== "boolean") throw new TypeError(`${fn}: options.stem must be a boolean, got ${typeof stem}`);
  return { types, stem };
}

function checkTexts(fn: string, candidate: unknown, references: unknown, where = ""): readonly string[] {
  if (typeof candidate !== "string")
    throw new TypeError(`${fn}: ${where}candidate must be a string, got ${typeof candidate}`);
  if (typeof references === "string") return [references];
  if (!Array.isArray(references)) {
    throw new TypeError(`${fn}: ${where}references must be a string or an array of strings, got ${typeof references}`);
  }
  if (references.length === 0) throw new RangeError(`${fn}: ${where}references must hold at least one reference`);
  references.forEach((r, i) => {
    if (typeof r !== "string") throw new TypeError(`${fn}: ${where}references[${i}] must be a string, got ${typeof r}`);
  });
  return references;
}

function scorePair<T extends RougeType>(
  candidate: string,
  references: readonly string[],
  types: readonly T[],
  stem: boolean,
  cache: Map<string, string>,
): Record<T, RougeScore> {
  const perRef = references.map((r) => scoreOne(candidate, r, types, stem, cache));
  // rouge-score's score_multi: per type, the reference with the highest F (the first on a tie).
  const out = {} as Record<T, RougeScore>;
  for (const type of types) {
    let best = perRef[0]![type];
    for (const s of perRef) if (s[type].fmeasure > best.fmeasure) best = s[type];
    out[type] = best;
  }
  return out;
}

/**
 * ROUGE of `candidate` against one reference or several (then, per type, the scores of the reference with the
 * highest F, as rouge-score's score_multi). Empty texts score 0.
 */
export function rougeScores<T extends RougeType = (typeof DEFAULT_ROUGE_TYPES)[number]>(
  candidate: string,
  references: string | readonly string[],
  options: RougeOptions<T> = {},
): Record<T, RougeScore> {
  const refs = checkTexts("rougeScores", candidate, references);
  const { types, stem } = checkOptions("rougeScores", options);
  return scorePair(candidate, refs, types, stem, new Map());
}

/**
 * Per-pair ROUGE (as rougeScores) of a corpus and its mean per type; with `bootstrap`, rouge-score's
 * BootstrapAggregator interval, resampling each type separately in the order of `types`.
 */
export function rougeCorpus<T extends RougeType = (typeof DEFAULT_ROUGE_TYPES)[number]>(
  pairs: readonly RougePair[],
  options: RougeCorpusOptions<T> = {},
): RougeCorpusResult<T> {
  if (!Array.isArray(pairs)) throw new TypeError(`rougeCorpus: pairs must be an array, got ${typeof pairs}`);
  if (pairs.length === 0) throw new RangeError("rougeCorpus: pairs must hold at least one pair");
  const { types, stem } = checkOptions("rougeCorpus", options);
  const bootstrap = options.bootstrap;
  let resample: Resampler | undefined;
  if (bootstrap !== undefined) {
    if (typeof bootstrap !== "object" || bootstrap === null) {
      throw new TypeError("rougeCorpus: options.bootstrap must be an object");
    }
    // Checked before scoring, which can take a while.
    checkBootstrap(bootstrap.samples, bootstrap.confidence ?? 0.95);
    resample = "resample" in bootstrap ? bootstrap.resample : seededResampler(bootstrap.seed);
  }
  const cache = new Map<string, string>();
  const scored = pairs.map((p, i) => {
    if (typeof p !== "object" || p === null) throw new TypeError(`rougeCorpus: pairs[${i}] must be an object`);
    const refs = checkTexts("rougeCorpus", p.candidate, p.references, `pairs[${i}].`);
    return scorePair(p.candidate, refs, types, stem, cache);
  });
  const n = scored.length;
  const scores = {} as Record<T, RougeAggregate>;
  for (const type of types) {
    const rows = scored.map((s) => [s[type].precision, s[type].recall, s[type].fmeasure]);
    const sum = [0, 0, 0];
    for (const r of rows) for (let k = 0; k < 3; k++) sum[k]! += r[k]!;
    const agg: RougeAggregate = { mean: asScore(sum.map((x) => x / n)) };
    if (bootstrap !== undefined && resample !== undefined) {
      const confidence = bootstrap.confidence ?? 0.95;
      const { low, mid, high } = bootstrapInterval(rows, bootstrap.samples, confidence, resample);
      agg.interval = {
        low: asScore(low),
        mid: asScore(mid),
        high: asScore(high),
        confidence,
        samples: bootstrap.samples,
      };
    }
    scores[type] = agg;
  }
  return { count: n, scores, pairs: scored };
}

const asScore = ([precision, recall, fmeasure]: number[]): RougeScore => ({
  precision: precision!,
  recall: recall!,
  fmeasure: fmeasure!,
});
