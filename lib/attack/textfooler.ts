// TextFooler (Jin et al. 2020, "Is BERT Really Robust?"; TextAttack's textfooler_jin_2019 recipe) turned on a
// summariser: words of the source are ranked by how much deleting each lowers the model's likelihood of a target
// summary, then, most important first, each is swapped for the one of its nearest neighbours in the word vectors
// that lowers that likelihood most, under the recipe's constraints, until the budgets are spent.
//
// What is the recipe's and what stands in for it:
// - candidates: the 50 nearest neighbours with cosine ≥ 0.5 in the user's vectors (counter-fitted in the recipe);
// - stop words and non-alphabetic tokens are never swapped; a word is swapped at most once;
// - part of speech: the swap keeps the word's Universal POS tag in a window of ±POS_WINDOW tokens (nouns and verbs
//   may swap, as the recipe allows), tagged by wink-nlp (words.ts) instead of NLTK / flair;
// - sentence similarity: the recipe's Universal Sentence Encoder is TensorFlow Hub only. In its place, the cosine
//   of the mean word vector of a 15-word window around the swap, before and after, must reach the recipe's
//   angular-similarity threshold. A bag-of-words stand-in: it checks that the window's meaning moved little in the
//   same vector space, but cannot see word order; it is weaker than USE, so the perturbation budget below also
//   bounds how far a text may move.
// - goal: classification has a label to flip; a summary has none, so the attack minimises the mean per-token
//   log-likelihood of its target (the model's own clean summary in exp2) and stops at its budgets: a share of the
//   source's words changed and a number of model queries (scored sources) per example.
import { z } from "zod";

import { parseOrThrow } from "../config.ts";
import { type AttackOptions, AttackOptionsSchema } from "./options.ts";
import { join, tags, tokenize, type Word } from "./words.ts";
import { vectorCosine, type WordVectors } from "./word-vectors.ts";

/** Mean log-likelihood per target token of one target given each source text, in nats (higher: more likely). */
export type Scorer = (sources: string[]) => Promise<Float64Array>;

export interface Substitution {
  /** index in the source's tokens (words.ts) */
  token: number;
  from: string;
  to: string;
}

export interface AttackResult {
  text: string;
  /** alphabetic words of the clean source */
  words: number;
  substitutions: Substitution[];
  /** substitutions / words */
  changedShare: number;
  /** mean log-likelihood per target token, clean and attacked */
  cleanScore: number;
  attackedScore: number;
  queries: number;
}

const POS_WINDOW = 4;
// The recipe lets a noun become a verb and back (flair and NLTK disagree on them often enough).
const SWAPPABLE = new Set(["NOUN", "VERB"]);

function withCase(original: string, word: string): string {
  if (original.length > 1 && original === original.toUpperCase()) return word.toUpperCase();
  if (original[0] === original[0]!.toUpperCase()) return word[0]!.toUpperCase() + word.slice(1);
  return word;
}

function posCompatible(a: string, b: string): boolean {
  return a === b || (SWAPPABLE.has(a) && SWAPPABLE.has(b));
}

// The tag of token i in a window of the text, tagged on its own (the same window for the clean and swapped word).
function windowTag(words: readonly Word[], i: number): string | undefined {
  const lo = Math.max(0, i - POS_WINDOW);
  const hi = Math.min(words.length, i + POS_WINDOW + 1);
  const span = words.slice(lo, hi).map((w, k) => ({ ...w, space: k === 0 ? "" : w.space }));
  const tagged = tags(join(span));
  // A swap of one alphabetic word keeps the tokenisation; where it did not, the position is unknown: no tag.
  const kept = span.filter((w) => w.value !== "").map((w) => w.value);
  if (tagged.length !== kept.length || tagged.some((t, k) => t.value !== kept[k])) return undefined;
  return tagged[i - lo - span.slice(0, i - lo).filter((w) => w.value === "").length]?.pos;
}

// The lower-cased alphabetic words within window/2 words either side of token i.
function windowWords(words: readonly Word[], i: number, window: number): string[] {
  const positions = words.flatMap((w, k) => (w.word ? [k] : []));
  const at = positions.indexOf(i);
  const half = Math.floor(window / 2);
  const lo = Math.max(0, Math.min(at - half, positions.length - window));
  return positions.slice(lo, lo + window).map((k) => words[k]!.value.toLowerCase());
}

function angular(cos: number): number {
  return 1 - Math.acos(Math.max(-1, Math.min(1, cos))) / Math.PI;
}

/**
 * Allowed replacements of token i of `words` (the recipe's transformation and constraints, POS and window
 * similarity as above), nearest first, cased as the original.
 */
export function candidatesFor(
  words: readonly Word[],
  i: number,
  vectors: WordVectors,
  options: Pick<AttackOptions, "candidates" | "minCosine" | "minSimilarity" | "window" | "posMatch">,
): string[] {
  const w = words[i]!;
  if (!w.word || w.stop) return [];
  const lower = w.value.toLowerCase();
  const near = vectors.nearest(lower, options.candidates, options.minCosine);
  if (!near.length) return [];
  const before = vectors.mean(windowWords(words, i, options.window));
  const tag = options.posMatch ? windowTag(words, i) : undefined;
  const out: string[] = [];
  for (const { word } of near) {
    if (!/^[a-z]+$/i.test(word)) continue;
    const to = withCase(w.value, word);
    const swapped = words.map((x, k) => (k === i ? { ...x, value: to } : x));
    if (before) {
      const after = vectors.mean(windowWords(swapped, i, options.window))!;
      if (angular(vectorCosine(before, after)) < options.minSimilarity) continue;
    }
    if (options.posMatch) {
      const t = windowTag(swapped, i);
      if (tag === undefined || t === undefined || !posCompatible(tag, t)) continue;
    }
    out.push(to);
  }
  return out;
}

// How many leading tokens lie within what the model reads: the longest prefix `fits` accepts (binary search;
// a longer prefix never fits when a shorter one does not).
function visibleTokens(words: readonly Word[], fits: (prefix: string) => boolean): number {
  let lo = 0;
  let hi = words.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fits(join(words.slice(0, mid)))) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * TextFooler's greedy search on one source: importance by deletion, then swaps in importance order, each the
 * candidate that lowers the target's likelihood most, kept only when it lowers it by minDrop or more. `fits`
 * tells whether a prefix of the source lies whole within the model's source length (default: all of it does); only
 * the words it covers are counted and tried. Deterministic: no sampling anywhere (ties go to the earlier word and
 * the nearer candidate).
 */
export async function textFooler(
  source: string,
  score: Scorer,
  vectors: WordVectors,
  options: z.input<typeof AttackOptionsSchema> = {},
  fits?: (prefix: string) => boolean,
): Promise<AttackResult> {
  const o = parseOrThrow(AttackOptionsSchema, options, "textFooler options");
  let words = tokenize(source);
  // Words past the model's source length change nothing it reads: they are neither counted nor tried.
  const seen = fits ? visibleTokens(words, fits) : words.length;
  const total = words.slice(0, seen).filter((w) => w.word).length;
  const budget = Math.floor(o.maxChangedShare * total);
  const [clean] = await score([source]);
  let queries = 1;
  let current = clean!;
  const result = (): AttackResult => ({
    text: join(words),
    words: total,
    substitutions,
    changedShare: total ? substitutions.length / total : 0,
    cleanScore: clean!,
    attackedScore: current,
    queries,
  });
  const substitutions: Substitution[] = [];
  // Words that could be swapped at all; only these are ranked (the others' importance would buy nothing).
  const open = words.flatMap((w, i) =>
    i < seen && w.word && !w.stop && vectors.has(w.value.toLowerCase()) ? [i] : [],
  );
  if (!budget || !open.length) return result();
  const ranked = open.slice(0, Math.max(0, o.maxQueries - queries));
  const deleted = await score(ranked.map((i) => join(words.filter((_, k) => k !== i))));
  queries += ranked.length;
  const order = ranked
    .map((i, k) => ({ i, drop: clean! - deleted[k]! }))
    .sort((a, b) => b.drop - a.drop || a.i - b.i)
    .map((x) => x.i);
  for (const i of order) {
    if (substitutions.length >= budget || queries >= o.maxQueries) break;
    const cands = candidatesFor(words, i, vectors, o).slice(0, o.maxQueries - queries);
    if (!cands.length) continue;
    const texts = cands.map((to) => join(words.map((x, k) => (k === i ? { ...x, value: to } : x))));
    const s = await score(texts);
    queries += cands.length;
    let best = -1;
    for (let k = 0; k < cands.length; k++) {
      if (s[k]! <= current - o.minDrop && (best < 0 || s[k]! < s[best]!)) best = k;
    }
    if (best < 0) continue;
    substitutions.push({ token: i, from: words[i]!.value, to: cands[best]! });
    words = words.map((x, k) => (k === i ? { ...x, value: cands[best]! } : x));
    current = s[best]!;
  }
  return result();
}
