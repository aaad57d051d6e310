// BART and PEGASUS encoder–decoders loaded from a folder in Hugging Face's layout (config.json +
// model.safetensors) and saved the same way. This file owns the validation of their config.json, with
// transformers' defaults for absent fields; the native core (native/core/models/bart.cpp) receives it as
// config.json states it, and derives the family's layout (pre/post LayerNorm, positions) from model_type.
import fs from "node:fs";
import path from "node:path";

import { z } from "zod";

import { DeviceSchema, parseOrThrow } from "../config.ts";
import type { ModelShape } from "../data/model-data.ts";
import { native, type NativeModel } from "../native.ts";
import { checkConfigAgainstWeights, readHfCheckpoint, saveHfCheckpoint, type SaveOptions } from "./checkpoint.ts";
import type { EncoderDecoderInputs, LanguageModel } from "./language-model.ts";
import { checkParameterCount, GENERATION_LIMITS, MODEL_LIMITS } from "./limits.ts";
import { readTextFile } from "../io/read.ts";

const positiveInt = () => z.number().int().min(1);
const rate = () => z.number().min(0).lt(1);
// Each dimension bounded (lib/models/limits.ts), so no config reaches the allocator with encoder_layers 1e9.
const dim = (min: number, max: number) => z.number().int().min(min).max(max);
const L = MODEL_LIMITS;

// transformers' BartConfig / PegasusConfig defaults: the same sizes (bart-large's), different special ids.
const common = {
  vocab_size: dim(2, L.vocab).default(50265),
  d_model: dim(1, L.width).default(1024),
  encoder_layers: dim(1, L.layers).default(12),
  decoder_layers: dim(1, L.layers).default(12),
  encoder_attention_heads: dim(1, L.heads).default(16),
  decoder_attention_heads: dim(1, L.heads).default(16),
  encoder_ffn_dim: dim(1, L.ffn).default(4096),
  decoder_ffn_dim: dim(1, L.ffn).default(4096),
  max_position_embeddings: dim(1, L.positions).default(1024),
  dropout: rate().default(0.1),
  attention_dropout: rate().default(0),
  activation_dropout: rate().default(0),
  init_std: z.number().positive().default(0.02),
  activation_function: z.enum(["gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "silu", "swish"]).default("gelu"),
  scale_embedding: z.boolean().default(false),
};
const tokenIdDefault = (id: number) => z.number().int().min(0).default(id);
const family = <T extends string>(modelType: T, ids: { pad: number; eos: number; decoderStart: number }) =>
  z
    .object({
      ...common,
      model_type: z.literal(modelType),
      pad_token_id: tokenIdDefault(ids.pad),
      eos_token_id: tokenIdDefault(ids.eos),
      decoder_start_token_id: tokenIdDefault(ids.decoderStart),
    })
    .passthrough();
const Seq2SeqConfigSchema = z
  .discriminatedUnion("model_type", [
    family("bart", { pad: 1, eos: 2, decoderStart: 2 }),
    family("pegasus", { pad: 0, eos: 1, decoderStart: 0 }),
  ])
  .superRefine((c, ctx) => {
    for (const side of ["encoder", "decoder"] as const) {
      const heads = c[`${side}_attention_heads`];
      if (c.d_model % heads !== 0) {
        ctx.addIssue({ code: "custom", path: ["d_model"], message: `must be a multiple of ${side}_attention_heads` });
      }
    }
    if (c.pad_token_id >= c.vocab_size) {
      ctx.addIssue({ code: "custom", path: ["pad_token_id"], message: "must be below vocab_size" });
    }
    // Dimensions of the wrong type are reported above; no estimate from them.
    if (SIZE_FIELDS.every((k) => Number.isFinite(c[k]))) checkParameterCount(seq2seqParameterCount(c), ctx);
  });
export type Seq2SeqConfig = z.output<typeof Seq2SeqConfigSchema>;

export const SIZE_FIELDS = [
  "vocab_size",
  "d_model",
  "encoder_layers",
  "decoder_layers",
  "encoder_ffn_dim",
  "decoder_ffn_dim",
  "max_position_embeddings",
] as const;

/**
 * The parameter count of a BART or PEGASUS of these dimensions (the native model's): the shared embedding;
 * per side its positions (BART's learned table has 2 extra rows, PEGASUS's is sinusoidal) and one LayerNorm;
 * per encoder layer self-attention, the FFN and 2 LayerNorms, per decoder layer also cross-attention and a
 * third LayerNorm. The one estimate every config path checks against {@link MODEL_LIMITS}.parameters.
 */
export function seq2seqParameterCount(c: Pick<Seq2SeqConfig, (typeof SIZE_FIELDS)[number] | "model_type">): number {
  const d = c.d_model;
  const attention = 4 * (d * d + d);
  const norm = 2 * d;
  const ffn = (f: number) => 2 * d * f + f + d;
  const positions = (c.max_position_embeddings + (c.model_type === "bart" ? 2 : 0)) * d;
  return (
    c.vocab_size * d +
    2 * (positions + norm) +
    c.encoder_layers * (attention + ffn(c.encoder_ffn_dim) + 2 * norm) +
    c.decoder_layers * (2 * attention + ffn(c.decoder_ffn_dim) + 3 * norm)
  );
}

const BART_LARGE = {
  model_type: "bart",
  vocab_size: 50265,
  d_model: 1024,
  encoder_layers: 12,
  decoder_layers: 12,
  encoder_attention_heads: 16,
  decoder_attention_heads: 16,
  encoder_ffn_dim: 4096,
  decoder_ffn_dim: 4096,
  max_position_embeddings: 1024,
  activation_function: "gelu",
  scale_embedding: false,
  dropout: 0.1,
  attention_dropout: 0.1,
  activation_dropout: 0.1,
  pad_token_id: 1,
  bos_token_id: 0,
  eos_token_id: 2,
  decoder_start_token_id: 2,
} as const;

/**
 * Sizes as the published checkpoints' config.json files state them (bart-base, bart-large, pegasus-large), and
 * `tiny` for this CPU: BART's layout over GPT-2's BPE with the special ids of lib/tokenizers/gpt2.ts (EOS 50256
 * also starts the decoder, pad 50257).
 */
export const SEQ2SEQ_PRESETS = {
  "bart-base": {
    ...BART_LARGE,
    d_model: 768,
    encoder_layers: 6,
    decoder_layers: 6,
    encoder_attention_heads: 12,
    decoder_attention_heads: 12,
    encoder_ffn_dim: 3072,
    decoder_ffn_dim: 3072,
  },
  "bart-large": BART_LARGE,
  "pegasus-large": {
    ...BART_LARGE,
    model_type: "pegasus",
    vocab_size: 96103,
    encoder_layers: 16,
    decoder_layers: 16,
    activation_function: "relu",
    scale_embedding: true,
    pad_token_id: 0,
    bos_token_id: undefined,
    eos_token_id: 1,
    decoder_start_token_id: 0,
  },
  tiny: {
    ...BART_LARGE,
    vocab_size: 50259, // gpt2Seq2SeqTokenizer: GPT-2's ids, <pad> 50257 and <mask> 50258
    d_model: 128,
    encoder_layers: 2,
    decoder_layers: 2,
    encoder_attention_heads: 4,
    decoder_attention_heads: 4,
    encoder_ffn_dim: 512,
    decoder_ffn_dim: 512,
    dropout: 0,
    attention_dropout: 0,
    activation_dropout: 0,
    pad_token_id: 50257,
    bos_token_id: 50256,
    eos_token_id: 50256,
    decoder_start_token_id: 50256,
  },
} as const;
export type Seq2SeqPreset = keyof typeof SEQ2SEQ_PRESETS;

const CreateOptionsSchema = z
  .object({
    preset: z.enum(Object.keys(SEQ2SEQ_PRESETS) as [Seq2SeqPreset, ...Seq2SeqPreset[]]),
    /** config.json fields that override the preset's */
    config: z.record(z.string(), z.unknown()).default({}),
    seed: z.number().int().min(0).default(0),
    device: DeviceSchema.default("cpu"),
  })
  .strict();
export type Seq2SeqCreateOptions = z.input<typeof CreateOptionsSchema>;

const tokenId = () => z.number().int().min(0);
const numBeams = () => positiveInt().max(GENERATION_LIMITS.beams);
const earlyStopping = () => z.union([z.boolean(), z.literal("never")]);
// One EOS id: transformers also takes a list, which the native core does not search for.
const eosId = () =>
  z
    .union([tokenId(), z.array(tokenId()).length(1, "expected one EOS id")])
    .transform((e) => (Array.isArray(e) ? e[0]! : e));

// The generation fields of a checkpoint's generation_config.json (or, without one, of its config.json, as
// transformers' GenerationConfig.from_model_config reads them), in transformers' names; others are ignored.
const CheckpointGenerationSchema = z
  .object({
    num_beams: numBeams(),
    max_length: positiveInt(),
    min_length: z.number().int().min(0),
    length_penalty: z.number(),
    no_repeat_ngram_size: z.number().int().min(0),
    early_stopping: earlyStopping(),
    decoder_start_token_id: tokenId(),
    eos_token_id: eosId(),
    pad_token_id: tokenId(),
    forced_bos_token_id: tokenId().nullable(),
    forced_eos_token_id: eosId().nullable(),
  })
  .partial();

/**
 * Options of {@link Seq2SeqModel.generate}: transformers' GenerationConfig fields (greedy and beam search) under
 * their camelCase names. Lengths count the decoder start token, as transformers counts them for encoder–decoders.
 * Absent fields come from the checkpoint's generation_config.json, then transformers' defaults.
 */
export const Seq2SeqGenerateOptionsSchema = z
  .object({
    numBeams: numBeams().default(1),
    maxLength: z.number().int().min(2).default(20),
    minLength: z.number().int().min(0).default(0),
    lengthPenalty: z.number().default(1),
    noRepeatNgramSize: z.number().int().min(0).default(0),
    earlyStopping: earlyStopping().default(false),
    decoderStartTokenId: tokenId(),
    eosTokenId: tokenId(),
    padTokenId: tokenId(),
    forcedBosTokenId: tokenId().nullable().default(null),
    forcedEosTokenId: tokenId().nullable().default(null),
  })
  .strict()
  .superRefine((o, ctx) => {
    if (o.minLength > o.maxLength) {
      ctx.addIssue({ code: "custom", path: ["minLength"], message: "must not exceed maxLength" });
    }
  });
export type Seq2SeqGenerateOptions = Partial<z.input<typeof Seq2SeqGenerateOptionsSchema>>;

// The checkpoint's generation defaults under the options' names.
// A model created here (no folder) takes them from its config, as transformers' from_model_config does.
function generationDefaults(dir: string | undefined, config: Seq2SeqConfig): Seq2SeqGenerateOptions {
  const file = dir === undefined ? "" : path.join(dir, "generation_config.json");
  let raw: unknown = config;
  if (dir !== undefined && fs.existsSync(file)) {
    try {
      raw = JSON.parse(readTextFile(file, "Seq2SeqModel.load"));
    } catch (e) {
      throw new Error(`Seq2SeqModel.load: ${file} is not valid JSON (${(e as Error).message})`, { cause: e });
    }
  }
  const where = dir === undefined ? "config" : fs.existsSync(file) ? file : path.join(dir, "config.json");
  const g = parseOrThrow(CheckpointGenerationSchema, pickKnown(raw, CheckpointGenerationSchema.keyof().options), where);
  // Refused here, naming the file, rather than at the first generate as if the caller had asked for it.
  if (g.max_length !== undefined && g.max_length > config.max_position_embeddings) {
    throw new RangeError(
      `${where}.max_length: must not exceed max_position_embeddings ${config.max_position_embeddings}, ` +
        `got ${g.max_length}`,
    );
  }
  const out: Seq2SeqGenerateOptions = {
    numBeams: g.num_beams,
    maxLength: g.max_length,
    minLength: g.min_length,
    lengthPenalty: g.length_penalty,
    noRepeatNgramSize: g.no_repeat_ngram_size,
    earlyStopping: g.early_stopping,
    decoderStartTokenId: g.decoder_start_token_id ?? config.decoder_start_token_id,
    eosTokenId: g.eos_token_id ?? config.eos_token_id,
    padTokenId: g.pad_token_id ?? config.pad_token_id,
    forcedBosTokenId: g.forced_bos_token_id,
    forcedEosTokenId: g.forced_eos_token_id,
  };
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined));
}

function pickKnown(raw: unknown, keys: readonly string[]): Record<string, unknown> {
  if (typeof raw !== "object" || raw === null) return {};
  return Object.fromEntries(Object.entries(raw).filter(([k]) => keys.includes(k)));
}

// The source batch: checked first, so generate(null) names its argument instead of a bare TypeError.
const GenerateSourceSchema = z.object({
  ids: z.instanceof(Int32Array, { message: "expected an Int32Array" }),
  mask: z.instanceof(Int32Array, { message: "expected an Int32Array" }),
  length: z.number().int().min(1),
});

const GenerateRunSchema = z
  .object({
    /** examples per native call (default: all at once); progress is reported after each */
    batchSize: z.number().int().min(1).optional(),
    onProgress: z
      .custom<(done: number, total: number) => void>((v) => typeof v === "function", "expected a function")
      .optional(),
  })
  .strict();

interface Seq2SeqDocument {
  json: string;
  config: Seq2SeqConfig;
  generation: Seq2SeqGenerateOptions;
}

function createDocument(options: Seq2SeqCreateOptions): Seq2SeqDocument {
  const o = parseOrThrow(CreateOptionsSchema, options, "Seq2SeqModel.create options");
  const preset = Object.fromEntries(Object.entries(SEQ2SEQ_PRESETS[o.preset]).filter(([, v]) => v !== undefined));
  const config = parseOrThrow(Seq2SeqConfigSchema, { ...preset, ...o.config }, "Seq2SeqModel.create options.config");
  const json = JSON.stringify({ config, seed: o.seed, device: o.device });
  return { json, config, generation: generationDefaults(undefined, config) };
}

function loadDocument(dir: string, options: { device?: string }, who: string): Seq2SeqDocument {
  const { config: raw, weights } = readHfCheckpoint(dir, who);
  const config = parseOrThrow(Seq2SeqConfigSchema, raw, path.join(dir, "config.json"));
  // PEGASUS's sinusoidal positions need not be stored (the native loader computes them).
  const computed = config.model_type === "pegasus" ? 2 * config.max_position_embeddings * config.d_model : 0;
  checkConfigAgainstWeights(dir, weights, seq2seqParameterCount(config) - computed, who);
  const device = parseOrThrow(DeviceSchema.default("cpu"), options.device, `${who} options.device`);
  const generation = generationDefaults(dir, config);
  return { json: JSON.stringify({ config, weights, device }), config, generation };
}

/** A BART or PEGASUS model (Hugging Face's BartForConditionalGeneration / PegasusForConditionalGeneration). */
export class Seq2SeqModel implements LanguageModel {
  /** @internal */
  readonly native: NativeModel;
  readonly config: Readonly<Seq2SeqConfig>;

  /** Generation defaults read from the checkpoint (generation_config.json, else config.json). */
  readonly generationDefaults: Readonly<Seq2SeqGenerateOptions>;

  private constructor(m: NativeModel, config: Seq2SeqConfig, generation: Seq2SeqGenerateOptions) {
    this.native = m;
    this.config = Object.freeze(config);
    this.generationDefaults = Object.freeze(generation);
  }

  /**
   * A new model of a preset's shape with Hugging Face's initialisation (N(0, init_std), seeded), built on the
   * calling thread; {@link Seq2SeqModel.createAsync} builds it off the event loop.
   */
  static create(options: Seq2SeqCreateOptions): Seq2SeqModel {
    const d = createDocument(options);
    return new Seq2SeqModel(new (native().Model)(d.json), d.config, d.generation);
  }

  /** {@link Seq2SeqModel.create} on a worker thread. */
  static async createAsync(options: Seq2SeqCreateOptions): Promise<Seq2SeqModel> {
    const d = createDocument(options);
    return new Seq2SeqModel(await native().createModel(d.json), d.config, d.generation);
  }

  /** Weights from a Hugging Face BART or PEGASUS folder (config.json + model.safetensors). */
  static load(dir: string, options: { device?: string } = {}): Seq2SeqModel {
    const d = loadDocument(dir, options, "Seq2SeqModel.load");
    return new Seq2SeqModel(new (native().Model)(d.json), d.config, d.generation);
  }

  /** {@link Seq2SeqModel.load} with the weights read on a worker thread. */
  static async loadAsync(dir: string, options: { device?: string } = {}): Promise<Seq2SeqModel> {
    const d = loadDocument(dir, options, "Seq2SeqModel.loadAsync");
    return new Seq2SeqModel(await native().createModel(d.json), d.config, d.generation);
  }

  /** Encoder–decoder examples, ids below vocab_size, sources and targets up to max_position_embeddings long. */
  get shape(): ModelShape {
    return { seq2seq: true, vocabSize: this.config.vocab_size, positions: this.config.max_position_embeddings };
  }

  get parameterCount(): number {
    return this.native.parameterCount;
  }

  get device(): string {
    return this.native.device;
  }

  /** Writes config.json and the weights (Hugging Face's layout; shards past maxShardBytes). */
  save(dir: string, options: SaveOptions = {}): void {
    saveHfCheckpoint(this.native, dir, options, "Seq2SeqModel.save");
  }

  /** {@link Seq2SeqModel.save} with the weights written on a worker thread. */
  async saveAsync(dir: string, options: SaveOptions = {}): Promise<void> {
    return saveHfCheckpoint(this.native, dir, options, "Seq2SeqModel.saveAsync", true);
  }

  /** Frees the native weights now (see GPT2Model.dispose); idempotent, any later use throws. */
  dispose(): void {
    this.native.dispose();
  }

  /** Whether {@link Seq2SeqModel.dispose} freed the model. */
  get disposed(): boolean {
    return this.native.disposed;
  }

  /**
   * Logits [batch, decoderLength, V] of the decoder inputs given the encoder's (evaluation mode). The source mask
   * holds 1 on real tokens and 0 on padding.
   */
  logits(inputs: EncoderDecoderInputs): Float32Array {
    return this.native.logits(inputs);
  }

  /**
   * Summaries of a padded batch of sources (mask: 1 on real tokens), as transformers' `generate` makes them:
   * greedy when numBeams is 1, else beam search. One Int32Array per example, as transformers returns it: the
   * decoder start token first, then the generated ids up to and including EOS (absent when maxLength ended the
   * sequence), without the padding that aligns a batch's rows. Runs off the event loop.
   */
  async generate(
    source: { ids: Int32Array; mask: Int32Array; length: number },
    options: Seq2SeqGenerateOptions = {},
    run: z.input<typeof GenerateRunSchema> = {},
  ): Promise<Int32Array[]> {
    parseOrThrow(GenerateSourceSchema, source, "Seq2SeqModel.generate source");
    const o = parseOrThrow(
      Seq2SeqGenerateOptionsSchema,
      { ...this.generationDefaults, ...options },
      "Seq2SeqModel.generate options",
    );
    const V = this.config.vocab_size;
    for (const k of [
      "decoderStartTokenId",
      "eosTokenId",
      "padTokenId",
      "forcedBosTokenId",
      "forcedEosTokenId",
    ] as const) {
      const id = o[k];
      if (id !== null && id >= V)
        throw new RangeError(`Seq2SeqModel.generate options.${k}: must be below vocab_size ${V}`);
    }
    // Positions are learned (BART) or tabled (PEGASUS) only up to max_position_embeddings.
    if (o.maxLength > this.config.max_position_embeddings) {
      throw new RangeError(
        `Seq2SeqModel.generate options.maxLength: must not exceed max_position_embeddings ` +
          `${this.config.max_position_embeddings}, got ${o.maxLength}`,
      );
    }
    const batch = source.length > 0 ? source.ids.length / source.length : 0;
    if (!Number.isInteger(batch) || batch < 1 || source.mask.length !== source.ids.length) {
      throw new RangeError("Seq2SeqModel.generate: source ids and mask must hold batch × length values");
    }
    const json = { ...o };
    if (json.forcedBosTokenId === null) delete (json as Partial<typeof json>).forcedBosTokenId;
    if (json.forcedEosTokenId === null) delete (json as Partial<typeof json>).forcedEosTokenId;
    const r = parseOrThrow(GenerateRunSchema, run, "Seq2SeqModel.generate run");
    const chunk = r.batchSize ?? batch;
    const S = source.length;
    const out: Int32Array[] = [];
    // Rows keep their full width S in every chunk, so an example's inputs do not depend on the chunking.
    for (let begin = 0; begin < batch; begin += chunk) {
      const n = Math.min(chunk, batch - begin);
      const ids = source.ids.subarray(begin * S, (begin + n) * S);
      const mask = source.mask.subarray(begin * S, (begin + n) * S);
      out.push(...(await this.native.generate({ ids, mask, batch: n, length: S }, JSON.stringify(json))));
      r.onProgress?.(begin + n, batch);
    }
    return out;
  }
}
