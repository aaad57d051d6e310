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
export const GPT2_TOKENIZER_ID = `tiktoken-gpt2@${tiktokenVersion()}`;

// Loading the encoding takes ~60 ms: one per process, kept, so a tokenizer called once per document
// (summarisation: tens of thousands of short texts) costs what the encoding itself costs. tiktoken itself (its
// WebAssembly module: ~20 MB resident) is loaded here on first use, not when the package is imported.
let shared: Tiktoken | undefined;
/** The process's one GPT-2 encoding. */
export function gpt2Encoding(): Tiktoken {
  shared ??= (createRequire(import.meta.url)("tiktoken") as typeof import("tiktoken")).get_encoding("gpt2");
  return shared;
}

/** Token ids of `text` (special tokens are not parsed); lines are encoded in batches to bound memory. */
export function encodeGpt2(text: string): Int32Array {
  const enc = gpt2Encoding();
  const parts: Uint32Array[] = [];
  let total = 0;
  const lines = text.split(/(?<=\n)/);
  const batch = 2000;
  for (let i = 0; i < lines.length; i += batch) {
    const ids = enc.encode_ordinary(lines.slice(i, i + batch).join(""));
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
export function encodeGpt2Documents(docs: readonly string[]): Uint32Array[] {
  const enc = gpt2Encoding();
  return docs.map((d) => enc.encode_ordinary(d));
}

/** encodeGpt2Documents, yielding to the event loop every few milliseconds so it never holds it for long. */
export async function encodeGpt2DocumentsAsync(docs: readonly string[]): Promise<Uint32Array[]> {
  const enc = gpt2Encoding();
  const out: Uint32Array[] = [];
  let since = performance.now();
  for (const d of docs) {
    out.push(enc.encode_ordinary(d));
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
