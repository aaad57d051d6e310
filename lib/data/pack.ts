// Documents' token ids → one stream (each document followed by EOS) → fixed-length training sequences.
import { GPT2_EOS } from "./tokenizer.ts";

/**
 * Token sequences ready for the trainer, which takes input = row[0 .. len-2], targets = row[1 .. len-1].
 * Every row is `contextLength` tokens long except possibly the last.
 */
export interface PackedTokens {
  contextLength: number;
  sequences: number;
  /** sequences × contextLength ids, row-major; a short last row is padded with EOS (50256) */
  tokens: Int32Array;
  /** real tokens in each row */
  lengths: Int32Array;
  /** real tokens in all rows (Σ lengths) */
  totalTokens: number;
  /** documents in the stream */
  documents: number;
  /** documents' tokens plus one EOS each, before a too-short remainder is dropped */
  streamTokens: number;
  /** what was read, e.g. "wikitext-2/valid (tokens)" */
  source: string;
  /** true when the arrays were read back from the disk cache rather than tokenised */
  fromCache: boolean;
  /** the cache file holding these arrays, when caching is on (a trainer may take the path instead) */
  cacheFile?: string;
}

export type PackedArrays = Pick<
  PackedTokens,
  "contextLength" | "sequences" | "tokens" | "lengths" | "totalTokens" | "documents" | "streamTokens"
>;

export interface PackOptions {
  contextLength: number;
  /** a final partial row is kept only with at least this many tokens */
  minRemainder: number;
  eos?: number;
}

export function packDocuments(docs: readonly (Uint32Array | Int32Array)[], options: PackOptions): PackedArrays {
  const { contextLength: C, minRemainder } = options;
  const eos = options.eos ?? GPT2_EOS;
  if (!Number.isInteger(C) || C < 2) throw new RangeError(`contextLength: expected an integer >= 2, got ${C}`);
  if (!Number.isInteger(minRemainder) || minRemainder < 1) {
    throw new RangeError(`minRemainder: expected an integer >= 1, got ${minRemainder}`);
  }
  let streamTokens = 0;
  for (const d of docs) streamTokens += d.length + 1;
  const full = Math.floor(streamTokens / C);
  const remainder = streamTokens - full * C;
  const keepRemainder = remainder > 0 && remainder >= minRemainder;
  const sequences = full + (keepRemainder ? 1 : 0);
  const capacity = full * C + (keepRemainder ? remainder : 0);

  // Pre-filled with EOS: that writes both the separator after each document and the last row's padding.
  const tokens = new Int32Array(sequences * C).fill(eos);
  let pos = 0;
  for (const d of docs) {
    if (pos >= capacity) break;
    const n = Math.min(d.length, capacity - pos);
    tokens.set(n === d.length ? d : d.subarray(0, n), pos);
    pos += n + 1;
  }
  const lengths = new Int32Array(sequences).fill(C);
  if (keepRemainder) lengths[sequences - 1] = remainder;
  return { contextLength: C, sequences, tokens, lengths, totalTokens: capacity, documents: docs.length, streamTokens };
}
