// Tokenizers for encoder–decoder models: a checkpoint's own tokenizer.json, or GPT-2 BPE for models trained here.
export { loadTokenizer } from "./hf.ts";
export { GPT2_SEQ2SEQ_MASK, GPT2_SEQ2SEQ_PAD, gpt2Seq2SeqTokenizer } from "./gpt2.ts";
export {
  TokenizerFormatError,
  TokenizerNotFoundError,
  type DecodeOptions,
  type EncodeOptions,
  type Seq2SeqTokenizer,
  type SpecialTokenIds,
} from "./types.ts";
