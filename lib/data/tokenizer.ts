// GPT-2 byte-pair encoding (tiktoken's "gpt2" encoding, ids identical to Hugging Face's GPT-2 tokenizer).
import { get_encoding } from "tiktoken";

export const GPT2_VOCAB_SIZE = 50257;
export const GPT2_EOS = 50256;

/** Token ids of `text` (special tokens are not parsed); lines are encoded in batches to bound memory. */
export function encodeGpt2(text: string): Int32Array {
  const enc = get_encoding("gpt2");
  try {
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
  } finally {
    enc.free();
  }
}
