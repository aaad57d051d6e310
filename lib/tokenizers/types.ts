// What an encoder–decoder needs from a tokenizer, whichever library is underneath.

/** Ids with a fixed role. `decoderStart` is a model setting (config.json), so it is absent where none was found. */
export interface SpecialTokenIds {
  bos?: number;
  eos: number;
  pad: number;
  unk?: number;
  /** what a masked span becomes in denoising pre-training (BART's `<mask>`); absent where the tokenizer has none */
  mask?: number;
  decoderStart?: number;
}

export interface EncodeOptions {
  /** The checkpoint's framing (BART: `<s> … </s>`, PEGASUS: `… </s>`). Default true, as in Hugging Face. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Default false, as in Hugging Face. */
  skipSpecialTokens?: boolean;
}

export interface Seq2SeqTokenizer {
  encode(text: string, options?: EncodeOptions): Int32Array;
  decode(ids: ArrayLike<number>, options?: DecodeOptions): string;
  /** One more than the largest id the tokenizer can produce: the embedding rows a model needs. */
  readonly vocabSize: number;
  readonly specialTokens: Readonly<SpecialTokenIds>;
}

/** A tokenizer file that is not there. */
export class TokenizerNotFoundError extends Error {
  override name = "TokenizerNotFoundError";
  constructor(readonly path: string) {
    super(`tokenizer file not found: ${path}`);
  }
}

/** A tokenizer file that is there but cannot be used: not JSON, not a tokenizer, or lacking a needed token. */
export class TokenizerFormatError extends Error {
  override name = "TokenizerFormatError";
  constructor(
    readonly path: string,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(`${path}: ${reason}`, options);
  }
}
