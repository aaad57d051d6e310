// GPT-2 byte-pair encoding (lib/data/tokenizer.ts) with the special tokens an encoder–decoder trained here needs.
import { encodeOrdinary, GPT2_EOS, GPT2_VOCAB_SIZE, gpt2Encoding } from "../data/tokenizer.ts";
import type { Seq2SeqTokenizer, SpecialTokenIds } from "./types.ts";

/**
 * Padding gets a new id just past GPT-2's 50,257, so every GPT-2 id keeps its meaning (GPT-2 weights stay
 * usable row for row) and padding never collides with <|endoftext|>, which ends real sequences.
 */
export const GPT2_SEQ2SEQ_PAD = GPT2_VOCAB_SIZE;
/** BART's denoising objective (lib/data/denoising.ts) replaces each masked span with this one id, after the pad. */
export const GPT2_SEQ2SEQ_MASK = GPT2_SEQ2SEQ_PAD + 1;
// How decode writes the ids GPT-2's BPE does not have.
const ADDED_TEXT = new Map([
  [GPT2_SEQ2SEQ_PAD, "<pad>"],
  [GPT2_SEQ2SEQ_MASK, "<mask>"],
]);

/**
 * GPT-2 BPE for sequence-to-sequence models. <|endoftext|> (50256) is eos, as in GPT-2, and also the decoder start,
 * as BART starts its decoder from its eos; so no separate bos is needed, and inputs are framed `… eos`
 * (PEGASUS/T5 style). vocabSize is 50,259 with the pad and mask ids.
 */
export function gpt2Seq2SeqTokenizer(): Seq2SeqTokenizer {
  const specialTokens: SpecialTokenIds = {
    eos: GPT2_EOS,
    pad: GPT2_SEQ2SEQ_PAD,
    mask: GPT2_SEQ2SEQ_MASK,
    decoderStart: GPT2_EOS,
  };
  return {
    vocabSize: GPT2_SEQ2SEQ_MASK + 1,
    specialTokens: Object.freeze(specialTokens),
    encode(text, options = {}) {
      // encode_ordinary: "<|endoftext|>" written in the text stays text, so only the framing can produce eos.
      const ids = encodeOrdinary(text);
      if (!(options.addSpecialTokens ?? true)) return Int32Array.from(ids);
      const out = new Int32Array(ids.length + 1);
      out.set(ids);
      out[ids.length] = GPT2_EOS;
      return out;
    },
    decode(ids, options = {}) {
      const skip = options.skipSpecialTokens ?? false;
      const parts: string[] = [];
      let run: number[] = [];
      // Bytes are decoded run by run between added ids (tiktoken has neither), so a character they split is U+FFFD.
      const flush = () => {
        if (run.length > 0) parts.push(new TextDecoder().decode(gpt2Encoding().decode(Uint32Array.from(run))));
        run = [];
      };
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i]!;
        if (id < 0 || id > GPT2_SEQ2SEQ_MASK || !Number.isInteger(id)) throw new RangeError(`not a token id: ${id}`);
        const added = ADDED_TEXT.get(id);
        if (skip && (id === GPT2_EOS || added !== undefined)) continue;
        if (added !== undefined) {
          flush();
          parts.push(added);
        } else run.push(id);
      }
      flush();
      return parts.join("");
    },
  };
}
