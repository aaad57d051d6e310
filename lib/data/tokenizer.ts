// GPT-2 byte-pair encoding (tiktoken's "gpt2" encoding, ids identical to Hugging Face's GPT-2 tokenizer).
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

import type { Tiktoken } from "tiktoken";

export const GPT2_VOCAB_SIZE = 50257;
export const GPT2_EOS = 50256;

function tiktokenVersion(): string {
  const main = createRequire(import.meta.url).resolve("tiktoken");
  const pkg = JSON.parse(fs.readFileSync(path.join(path.dirname(main), "package.json"), "utf8")) as { version: string };
  return pkg.version;
}

/** Names the tokenizer and its version, so cached token arrays are rebuilt when either changes. */
// "+runs1000": runs over LONG_RUN characters are encoded in chunks (encodeOrdinary), which tiktoken alone does not.
export const GPT2_TOKENIZER_ID = `tiktoken-gpt2@${tiktokenVersion()}+runs1000`;

// Loading the encoding takes ~60 ms: one per process, kept, so a tokenizer called once per document
// (summarisation: tens of thousands of short texts) costs what the encoding itself costs. tiktoken itself (its
// WebAssembly module: ~20 MB resident) is loaded here on first use, not when the package is imported.
let shared: Tiktoken | undefined;
/** The process's one GPT-2 encoding. */
export function gpt2Encoding(): Tiktoken {
  shared ??= (createRequire(import.meta.url)("tiktoken") as typeof import("tiktoken")).get_encoding("gpt2");
  return shared;
}

// GPT-2's pre-tokeniser makes a run of letters (or digits, or other symbols, or whitespace) one piece, and
// tiktoken's merge loop is quadratic in a piece's length: 100 KB of letters took 37 s, 1 MB failed inside its
// WebAssembly ("RuntimeError: unreachable"). Runs longer than LONG_RUN characters are encoded in chunks of
// LONG_RUN, so the work is linear in the text; text without such a run (all natural text: no word is 1,000
// letters long) is encoded whole, exactly as tiktoken and Hugging Face encode it.
const LONG_RUN = 1000;
// A cheap test first (one class check per character), the exact one only when it matches.
const MAYBE_LONG = new RegExp(`(?<!\\S)\\S{${LONG_RUN + 1}}|(?<!\\s)\\s{${LONG_RUN + 1}}`, "u");
// The four piece classes of GPT-2's pattern; each run is entered once at its start (the look-behind), so
// finding them is linear too.
const LONG_RUNS = new RegExp(
  [String.raw`\p{L}`, String.raw`\p{N}`, String.raw`[^\s\p{L}\p{N}]`, String.raw`\s`]
    .map((c) => `(?<!${c})${c}{${LONG_RUN + 1},}`)
    .join("|"),
  "gu",
);
const CHUNKS = new RegExp(`[^]{1,${LONG_RUN}}`, "gu");

/**
 * tiktoken's `encode_ordinary`, linear in the text (runs over LONG_RUN characters encoded in chunks); a failure
 * names `where`, the text's source.
 */
export function encodeOrdinary(text: string, where = "a text"): Uint32Array {
  const enc = gpt2Encoding();
  try {
    if (!MAYBE_LONG.test(text)) return enc.encode_ordinary(text);
    const parts: Uint32Array[] = [];
    let at = 0;
    for (const m of text.matchAll(LONG_RUNS)) {
      // GPT-2's pattern joins one space to the letters, digits or symbols after it: kept with the first chunk.
      const start = m.index > at && text[m.index - 1] === " " && !/^\s/u.test(m[0]) ? m.index - 1 : m.index;
      if (start > at) parts.push(enc.encode_ordinary(text.slice(at, start)));
      for (const chunk of text.slice(start, m.index + m[0].length).match(CHUNKS)!) {
        parts.push(enc.encode_ordinary(chunk));
      }
      at = m.index + m[0].length;
    }
    if (at < text.length) parts.push(enc.encode_ordinary(text.slice(at)));
    const out = new Uint32Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  } catch (err) {
    throw new Error(`GPT-2 BPE failed on ${where} (${text.length} characters): ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** Token ids of `text` (special tokens are not parsed); lines are encoded in batches to bound memory. */
export function encodeGpt2(text: string): Int32Array {
  const parts: Uint32Array[] = [];
  let total = 0;
  const lines = text.split(/(?<=\n)/);
  const batch = 2000;
  for (let i = 0; i < lines.length; i += batch) {
    const ids = encodeOrdinary(
      lines.slice(i, i + batch).join(""),
      `lines ${i + 1}–${Math.min(i + batch, lines.length)}`,
    );
    parts.push(ids);
    total += ids.length;
  }
  const out = new Int32Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Each document's ids. A document is encoded whole: cutting it into pieces would change the ids where a
 * cut falls inside a run of whitespace (tiktoken merges "\n\n" at the end of a piece, not before text).
 */
export function encodeGpt2Documents(docs: readonly string[], source = "the documents"): Uint32Array[] {
  return docs.map((d, i) => encodeOrdinary(d, `document ${i + 1} of ${source}`));
}

/** encodeGpt2Documents, yielding to the event loop every few milliseconds so it never holds it for long. */
export async function encodeGpt2DocumentsAsync(
  docs: readonly string[],
  source = "the documents",
): Promise<Uint32Array[]> {
  const out: Uint32Array[] = [];
  let since = performance.now();
  for (const [i, d] of docs.entries()) {
    out.push(encodeOrdinary(d, `document ${i + 1} of ${source}`));
    if (performance.now() - since > 10) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      since = performance.now();
    }
  }
  return out;
}

/** The text of GPT-2 token ids (bytes decoded as UTF-8; a split multi-byte character becomes U+FFFD). */
export function decodeGpt2(ids: ArrayLike<number>): string {
  return new TextDecoder().decode(gpt2Encoding().decode(Uint32Array.from(ids as ArrayLike<number>)));
}
