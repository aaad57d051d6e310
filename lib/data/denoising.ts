// BART's denoising pre-training data (Lewis et al. 2019, "BART", §2.2): the sentences of a text are shuffled and
// spans of it, Poisson(λ = 3) tokens long, are each replaced by one mask token; the model learns to write the
// original back. Experiment 2 pretrains a tiny BART this way on WikiText-2 before fine-tuning it on summaries,
// so the encoder–decoder starts from BART's own objective rather than from random weights. fairseq's
// DenoisingDataset is the reference behaviour; where this differs from it, the comments below say how.
//
// Per chunk and copy, with a SplitMix64 generator (lib/data/summary-noise.ts) seeded (seed << 32) | row, so
// every row's noise is a pure function of the seed and the row's index:
//   1. sentence permutation: the chunk's sentences are shuffled (Fisher–Yates);
//   2. text infilling: of the n tokens, M = round(maskRatio · n) are masked (tokens; fairseq counts whole words).
//      Span lengths are drawn from Poisson(λ) until they sum to at least M, the last one cut so they sum to
//      exactly M; a 0-length span is an inserted mask, as in BART. The spans are placed uniformly at random with
//      at least one kept token between two spans (so no two masks touch and spans never overlap; fairseq lets
//      them run into each other). Each span becomes one mask id.
// The source is the noised tokens then eos, the target the chunk's tokens in their original order then eos.
import path from "node:path";

import { z } from "zod";

import { parseOrThrow } from "../config.ts";
import type { Seq2SeqTokenizer } from "../tokenizers/types.ts";
import { cacheFilePath, cacheKey, hashFile } from "./cache.ts";
import { dataRoot, namedWikiTextFiles, WIKITEXT_NAMES } from "./prepare.ts";
import { cachedExamples, type SummarizationArrays } from "./summarization.ts";
import { SplitMix64 } from "./summary-noise.ts";
import { readWikiTextLines, splitWikiTextDocuments, SPLITS } from "./wikitext.ts";

/** Bump when how documents are split, chunked or noised changes: older cache entries are then not reused. */
const PIPELINE_VERSION = 1;

/** A Seq2SeqTokenizer with a mask id (and, for the cache, an `id` naming it): one issue, the first thing wrong. */
function tokenizerSchema<T extends Seq2SeqTokenizer>(needsId: boolean) {
  return z.custom<T>().superRefine((v, ctx) => {
    const t = v as Partial<Seq2SeqTokenizer & { id: unknown }> | null;
    const issue = (message: string) => ctx.addIssue({ code: "custom", message });
    if (typeof t !== "object" || t === null || typeof t.encode !== "function" || typeof t.specialTokens !== "object") {
      issue("expected a Seq2SeqTokenizer (encode, specialTokens)");
    } else if (!Number.isInteger(t.specialTokens.mask)) {
      issue("has no mask token (specialTokens.mask); each masked span becomes one (gpt2Seq2SeqTokenizer has <mask>)");
    } else if (needsId && (typeof t.id !== "string" || t.id === "")) {
      issue("needs an id: a non-empty string naming the tokenizer and its version (part of the cache key)");
    }
  });
}

const NoiseShape = {
  /** target ids per row, eos included: longer documents are cut into chunks at sentence boundaries */
  maxTokens: z.number().int().min(8),
  /** share of each chunk's tokens that are masked */
  maskRatio: z.number().min(0).max(1).default(0.3),
  /** mean span length (BART: 3); at most 64, where e^−λ is still far from underflow */
  poissonLambda: z.number().positive().max(64).default(3),
  /** shuffle each chunk's sentences before masking */
  permuteSentences: z.boolean().default(true),
  /** noised versions of each chunk, each with its own draws */
  copies: z.number().int().min(1).default(1),
  /** an integer in [0, 2^32) */
  seed: z
    .number()
    .int()
    .min(0)
    .max(2 ** 32 - 1),
  /** fills each row after its length (default: the tokenizer's pad) */
  padId: z.number().int().optional(),
};

export const DenoisingOptionsSchema = z.object({ tokenizer: tokenizerSchema(false), ...NoiseShape }).strict();
export type DenoisingOptions = z.input<typeof DenoisingOptionsSchema>;
type Settings = z.output<typeof DenoisingOptionsSchema>;

/** Denoising rows, with how many of the chunks' tokens were masked (maskedTokens / totalTokens ≈ maskRatio). */
export interface DenoisingArrays extends SummarizationArrays {
  /** target tokens replaced by masks, over all rows */
  maskedTokens: number;
  /** target tokens over all rows, eos not counted */
  totalTokens: number;
}

/**
 * The text cut into sentences, whose concatenation is the text: a cut goes before each run of whitespace that
 * follows `.`, `!` or `?`, or that holds a line break (WikiText's headings and paragraph ends), so each sentence
 * keeps its leading space, as GPT-2's BPE wants it (" The", not "The"); whitespace ending the text stays with the
 * last sentence. Abbreviations ("H. americanus") are cut too, as a plain full-stop rule does.
 */
export function splitSentences(text: string): string[] {
  const cuts = [0];
  for (const m of text.matchAll(/\s+/g)) {
    const inside = m.index > 0 && m.index + m[0].length < text.length;
    if (inside && (/[.!?]/.test(text[m.index - 1]!) || m[0].includes("\n"))) cuts.push(m.index);
  }
  cuts.push(text.length);
  const out: string[] = [];
  for (let i = 1; i < cuts.length; i++) if (cuts[i]! > cuts[i - 1]!) out.push(text.slice(cuts[i - 1], cuts[i]));
  return out;
}

/**
 * A document's chunks, each a list of sentences' ids with at most `room` ids in all. Sentences are encoded one by
 * one, so a chunk's ids are the same whatever order its sentences are put in; a sentence longer than `room` is
 * cut into pieces of `room` ids, which are then sentences of their own.
 */
function chunkDocument(text: string, tokenizer: Seq2SeqTokenizer, room: number): Int32Array[][] {
  const units: Int32Array[] = [];
  for (const s of splitSentences(text)) {
    const ids = tokenizer.encode(s, { addSpecialTokens: false });
    for (let i = 0; i < ids.length; i += room) units.push(ids.subarray(i, i + room));
  }
  const chunks: Int32Array[][] = [];
  let current: Int32Array[] = [];
  let length = 0;
  for (const u of units) {
    if (length + u.length > room) {
      chunks.push(current);
      current = [];
      length = 0;
    }
    current.push(u);
    length += u.length;
  }
  if (length > 0) chunks.push(current);
  return chunks;
}

function concat(parts: readonly Int32Array[]): Int32Array {
  const out = new Int32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

class Draws {
  private readonly rng: SplitMix64;
  constructor(state: bigint) {
    this.rng = new SplitMix64(state);
  }

  /** uniform in [0, 1): the top 53 bits */
  uniform(): number {
    return Number(this.rng.next() >> 11n) * 2 ** -53;
  }

  /** uniform over 0 … k − 1 */
  below(k: number): number {
    return Math.min(k - 1, Math.floor(this.uniform() * k));
  }

  /** Poisson(λ) by inversion: the smallest k with P(X ≤ k) > u */
  poisson(lambda: number): number {
    const u = this.uniform();
    let p = Math.exp(-lambda);
    let cdf = p;
    let k = 0;
    // p reaches 0 only far in the tail, where the cdf has stopped growing in doubles
    while (u >= cdf && p > 0) {
      k++;
      p *= lambda / k;
      cdf += p;
    }
    return k;
  }

  shuffle<T>(a: T[]): void {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.below(i + 1);
      [a[i], a[j]] = [a[j]!, a[i]!];
    }
  }
}

/**
 * Span lengths summing to `masked`: Poisson draws until they reach it, the last one cut. So that no two spans
 * touch (one kept token between them, `kept` kept in all) and a source is never longer than its target, inserted
 * masks (0-length spans) are dropped, then the last two spans merged, while there are more spans than that allows;
 * only a chunk of a few tokens ever needs this.
 */
function spanLengths(draws: Draws, masked: number, kept: number, lambda: number): number[] {
  const spans: number[] = [];
  for (let sum = 0; sum < masked;) {
    const l = Math.min(draws.poisson(lambda), masked - sum);
    spans.push(l);
    sum += l;
  }
  while (spans.length > masked || spans.length - 1 > kept) {
    const zero = spans.lastIndexOf(0);
    if (zero >= 0) spans.splice(zero, 1);
    else spans.push(spans.pop()! + spans.pop()!);
  }
  draws.shuffle(spans); // the cut span is not always the last
  return spans;
}

/**
 * The noised ids of `tokens` (no eos): `spans.length` masks, with kept runs between them. The kept tokens are
 * split into spans.length + 1 runs, the inner ones at least 1 long, uniformly over all such splits: choose
 * spans.length distinct cut points c₀ < c₁ < … in 0 … kept; the runs are c₀, c₁ − c₀, …, kept − c_last.
 */
function infill(tokens: Int32Array, spans: readonly number[], mask: number, draws: Draws): Int32Array {
  const kept = tokens.length - spans.reduce((a, b) => a + b, 0);
  const points = Array.from({ length: kept + 1 }, (_, i) => i);
  for (let i = 0; i < spans.length; i++) {
    const j = i + draws.below(points.length - i);
    [points[i], points[j]] = [points[j]!, points[i]!];
  }
  const cuts = points.slice(0, spans.length).sort((a, b) => a - b);
  const out = new Int32Array(kept + spans.length);
  let from = 0;
  let to = 0;
  let previous = 0;
  spans.forEach((length, k) => {
    const run = cuts[k]! - previous;
    previous = cuts[k]!;
    out.set(tokens.subarray(from, from + run), to);
    to += run;
    from += run;
    out[to++] = mask;
    from += length;
  });
  out.set(tokens.subarray(from), to);
  return out;
}

function packRows(
  seqs: readonly Int32Array[],
  pad: number,
): { tokens: Int32Array; lengths: Int32Array; width: number } {
  const width = seqs.reduce((m, s) => Math.max(m, s.length), 0);
  const tokens = new Int32Array(seqs.length * width).fill(pad);
  const lengths = new Int32Array(seqs.length);
  seqs.forEach((s, i) => {
    tokens.set(s, i * width);
    lengths[i] = s.length;
  });
  return { tokens, lengths, width };
}

function build(documents: readonly string[], o: Settings): DenoisingArrays {
  const { tokenizer } = o;
  const { eos, mask } = tokenizer.specialTokens;
  const sources: Int32Array[] = [];
  const targets: Int32Array[] = [];
  const ids: string[] = [];
  let maskedTokens = 0;
  let totalTokens = 0;
  documents.forEach((text, d) => {
    chunkDocument(text, tokenizer, o.maxTokens - 1).forEach((sentences, c) => {
      const target = concat([...sentences, Int32Array.of(eos)]);
      const n = target.length - 1;
      for (let copy = 0; copy < o.copies; copy++) {
        const row = ids.length;
        if (row >= 2 ** 32) throw new RangeError("denoisingExamples: more than 2^32 rows");
        const draws = new Draws((BigInt(o.seed) << 32n) | BigInt(row));
        const order = [...sentences];
        if (o.permuteSentences) draws.shuffle(order);
        const masked = Math.round(o.maskRatio * n);
        const spans = spanLengths(draws, masked, n - masked, o.poissonLambda);
        sources.push(concat([infill(concat(order), spans, mask!, draws), Int32Array.of(eos)]));
        targets.push(target);
        ids.push(`doc${d}.chunk${c}.copy${copy}`);
        maskedTokens += masked;
        totalTokens += n;
      }
    });
  });
  const pad = o.padId ?? tokenizer.specialTokens.pad;
  const src = packRows(sources, pad);
  const tgt = packRows(targets, pad);
  return {
    sourceTokens: src.tokens,
    sourceLengths: src.lengths,
    targetTokens: tgt.tokens,
    targetLengths: tgt.lengths,
    maxSource: src.width,
    maxTarget: tgt.width,
    ids,
    maskedTokens,
    totalTokens,
  };
}

/**
 * BART's denoising rows of `documents` (see the top of this file): each document cut into chunks of at most
 * maxTokens − 1 ids (at sentence boundaries; a longer sentence is cut), each chunk noised `copies` times. Row
 * `doc<d>.chunk<c>.copy<k>` has the noised chunk then eos as its source and the chunk then eos as its target. A
 * source is never longer than its target (so both fit maxTokens): its masks are at most the masked tokens. Rows
 * are padded with padId.
 */
export function denoisingExamples(documents: readonly string[], options: DenoisingOptions): DenoisingArrays {
  const docs = parseOrThrow(z.array(z.string()), documents, "denoisingExamples documents");
  return build(docs, parseOrThrow(DenoisingOptionsSchema, options, "denoisingExamples options"));
}

export const DenoisingDataOptionsSchema = z
  .object({
    ...NoiseShape,
    /** a Seq2SeqTokenizer with an `id` naming it and its version, e.g. { ...gpt2Seq2SeqTokenizer(), id } */
    tokenizer: tokenizerSchema<Seq2SeqTokenizer & { id: string }>(true),
    name: z.enum(WIKITEXT_NAMES).default("wikitext-2"),
    split: z.enum(SPLITS),
    /** the folder holding wikitext-2/ (default: DPSM_DATA_DIR, else the user cache folder; see paths.ts) */
    dataDir: z.string().min(1).optional(),
    /** where arrays are cached (default: DPSM_CACHE_DIR or ~/.cache/dpsm-native/tokens) */
    cacheDir: z.string().min(1).optional(),
    /** false: build every time and write nothing */
    cache: z.boolean().default(true),
  })
  .strict();
export type DenoisingDataOptions = z.input<typeof DenoisingDataOptionsSchema>;

export interface PreparedDenoising extends DenoisingArrays {
  /** e.g. "wikitext-2/train (tokens)" */
  source: string;
  fromCache: boolean;
  cacheFile?: string;
}

/**
 * denoisingExamples of a WikiText split's articles (as the language-model data reads them: the stored text,
 * one document per level-1 heading), read back from the disk cache when the same files, tokenizer id and settings
 * were prepared before (`fromCache`).
 */
export async function prepareDenoisingData(options: DenoisingDataOptions): Promise<PreparedDenoising> {
  const o = parseOrThrow(DenoisingDataOptionsSchema, options, "prepareDenoisingData options");
  const found = namedWikiTextFiles(dataRoot(o.dataDir), o.name, o.split);
  const label = `${o.name}/${o.split} (${found.layout})`;
  const { tokenizer, name, split, dataDir, cacheDir, cache, ...noise } = o;
  const make = async () => build(splitWikiTextDocuments(await readWikiTextLines(found)), { tokenizer, ...noise });
  if (!cache) return { ...(await make()), source: label, fromCache: false };

  const key = cacheKey({
    pipeline: PIPELINE_VERSION,
    kind: "denoising",
    tokenizer: tokenizer.id,
    specialTokens: tokenizer.specialTokens,
    reader: `wikitext:${found.layout}`,
    split,
    settings: { ...noise, padId: noise.padId ?? tokenizer.specialTokens.pad },
    // the bytes decide, not where they are: a moved data folder keeps its cache
    files: found.files.map((f) => ({ name: path.basename(f), sha256: hashFile(f) })),
  });
  const file = cacheFilePath(cacheDir, `denoise-${label}-${o.maxTokens}`, key);
  return { ...(await cachedExamples(file, key, make)), source: label };
}
