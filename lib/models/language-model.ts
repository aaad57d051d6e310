// What the Trainer, the Evaluator and the experiments need of a model, whatever its family — the TypeScript side
// of native/core/models/language_model.h. A family is one file here (gpt2.ts, bart.ts) that implements this
// interface, validates its Hugging Face config.json and owns its presets; nothing outside a family's file asks
// which family a model is.
import type { ModelShape } from "../data/model-data.ts";
import type { NativeModel } from "../native.ts";
import type { SaveOptions } from "./checkpoint.ts";

/** Token ids of a causal model's batch: `batch` rows of `length` ids, row after row. */
export interface CausalInputs {
  ids: Int32Array;
  batch: number;
  length: number;
}

/**
 * An encoder–decoder's batch: `batch` sources of `length` ids with their mask (1 on real tokens, 0 on padding),
 * and `batch` decoder inputs of `decoderLength` ids.
 */
export interface EncoderDecoderInputs extends CausalInputs {
  mask: Int32Array;
  decoderIds: Int32Array;
  decoderLength: number;
}

export type ModelInputs = CausalInputs | EncoderDecoderInputs;

export interface LanguageModel {
  /** @internal the native model the addon's functions take */
  readonly native: NativeModel;
  /** the model's Hugging Face config (config.json's fields and names) */
  readonly config: Readonly<{ model_type: string; vocab_size: number }>;
  /** what data it takes: its kind, ids below its vocabulary, lengths within its positions */
  readonly shape: ModelShape;
  readonly device: string;
  readonly parameterCount: number;
  /** whether dispose() freed the weights */
  readonly disposed: boolean;
  /** Logits [batch, length (decoderLength), V] in evaluation mode. */
  logits(inputs: ModelInputs): Float32Array;
  /** Writes config.json and the weights in Hugging Face's layout. */
  save(dir: string, options?: SaveOptions): void;
  /** {@link LanguageModel.save} with the weights written on a worker thread. */
  saveAsync(dir: string, options?: SaveOptions): Promise<void>;
  /** Frees the native weights now; idempotent, any later use throws. */
  dispose(): void;
}

/** Whether `v` is a model of any family (rather than, say, options describing one). */
export function isLanguageModel(v: unknown): v is LanguageModel {
  return typeof v === "object" && v !== null && "native" in v && "shape" in v;
}
