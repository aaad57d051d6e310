// BART and PEGASUS encoder–decoders loaded from a folder in Hugging Face's layout (config.json +
// model.safetensors) and saved the same way. This file owns the validation of their config.json, with
// transformers' defaults for absent fields; the native core (native/core/models/bart.cpp) receives it as
// config.json states it, and derives the family's layout (pre/post LayerNorm, positions) from model_type.
import fs from "node:fs";
import path from "node:path";

import { z } from "zod";

import { parseOrThrow } from "../config.ts";
import { native, type NativeModel } from "../native.ts";
import { readHfCheckpoint } from "./checkpoint.ts";

const positiveInt = () => z.number().int().min(1);
const rate = () => z.number().min(0).lt(1);

// transformers' BartConfig / PegasusConfig defaults (bart-large's and pegasus-large's sizes).
const common = {
  vocab_size: z.number().int().min(2),
  d_model: positiveInt(),
  encoder_layers: positiveInt(),
  decoder_layers: positiveInt(),
  encoder_attention_heads: positiveInt(),
  decoder_attention_heads: positiveInt(),
  encoder_ffn_dim: positiveInt(),
  decoder_ffn_dim: positiveInt(),
  max_position_embeddings: positiveInt(),
  dropout: rate().default(0.1),
  attention_dropout: rate().default(0),
  activation_dropout: rate().default(0),
  init_std: z.number().positive().default(0.02),
  activation_function: z.enum(["gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "silu", "swish"]),
  decoder_start_token_id: z.number().int().min(0),
};
const Seq2SeqConfigSchema = z
  .discriminatedUnion("model_type", [
    z
      .object({
        ...common,
        model_type: z.literal("bart"),
        vocab_size: common.vocab_size.default(50265),
        d_model: common.d_model.default(1024),
        encoder_layers: common.encoder_layers.default(12),
        decoder_layers: common.decoder_layers.default(12),
        encoder_attention_heads: common.encoder_attention_heads.default(16),
        decoder_attention_heads: common.decoder_attention_heads.default(16),
        encoder_ffn_dim: common.encoder_ffn_dim.default(4096),
        decoder_ffn_dim: common.decoder_ffn_dim.default(4096),
        max_position_embeddings: common.max_position_embeddings.default(1024),
        activation_function: common.activation_function.default("gelu"),
        scale_embedding: z.boolean().default(false),
        pad_token_id: z.number().int().min(0).default(1),
        eos_token_id: z.number().int().min(0).default(2),
        decoder_start_token_id: common.decoder_start_token_id.default(2),
      })
      .passthrough(),
    z
      .object({
        ...common,
        model_type: z.literal("pegasus"),
        vocab_size: common.vocab_size.default(50265),
        d_model: common.d_model.default(1024),
        encoder_layers: common.encoder_layers.default(12),
        decoder_layers: common.decoder_layers.default(12),
        encoder_attention_heads: common.encoder_attention_heads.default(16),
        decoder_attention_heads: common.decoder_attention_heads.default(16),
        encoder_ffn_dim: common.encoder_ffn_dim.default(4096),
        decoder_ffn_dim: common.decoder_ffn_dim.default(4096),
        max_position_embeddings: common.max_position_embeddings.default(1024),
        activation_function: common.activation_function.default("gelu"),
        scale_embedding: z.boolean().default(false),
        pad_token_id: z.number().int().min(0).default(0),
        eos_token_id: z.number().int().min(0).default(1),
        decoder_start_token_id: common.decoder_start_token_id.default(0),
      })
      .passthrough(),
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
  });
export type Seq2SeqConfig = z.output<typeof Seq2SeqConfigSchema>;

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
    vocab_size: 50258,
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
    device: z
      .string()
      .regex(/^(cpu|cuda(:\d+)?)$/, "expected cpu, cuda or cuda:N")
      .default("cpu"),
  })
  .strict();
export type Seq2SeqCreateOptions = z.input<typeof CreateOptionsSchema>;

/** A BART or PEGASUS model (Hugging Face's BartForConditionalGeneration / PegasusForConditionalGeneration). */
export class Seq2SeqModel {
  /** @internal */
  readonly native: NativeModel;
  readonly config: Readonly<Seq2SeqConfig>;

  private constructor(m: NativeModel, config: Seq2SeqConfig) {
    this.native = m;
    this.config = Object.freeze(config);
  }

  /** A new model of a preset's shape with Hugging Face's initialisation (N(0, init_std), seeded). */
  static create(options: Seq2SeqCreateOptions): Seq2SeqModel {
    const o = parseOrThrow(CreateOptionsSchema, options, "Seq2SeqModel.create options");
    const preset = Object.fromEntries(Object.entries(SEQ2SEQ_PRESETS[o.preset]).filter(([, v]) => v !== undefined));
    const config = parseOrThrow(Seq2SeqConfigSchema, { ...preset, ...o.config }, "Seq2SeqModel.create options.config");
    return new Seq2SeqModel(new (native().Model)(JSON.stringify({ config, seed: o.seed, device: o.device })), config);
  }

  /** Weights from a Hugging Face BART or PEGASUS folder (config.json + model.safetensors). */
  static load(dir: string, options: { device?: string } = {}): Seq2SeqModel {
    const { config: raw, weights } = readHfCheckpoint(dir, "Seq2SeqModel.load");
    const file = path.join(dir, "config.json");
    const config = parseOrThrow(Seq2SeqConfigSchema, raw, file);
    const device = parseOrThrow(
      z
        .string()
        .regex(/^(cpu|cuda(:\d+)?)$/, "expected cpu, cuda or cuda:N")
        .default("cpu"),
      options.device,
      "Seq2SeqModel.load options.device",
    );
    return new Seq2SeqModel(new (native().Model)(JSON.stringify({ config, weights, device })), config);
  }

  get parameterCount(): number {
    return this.native.parameterCount;
  }

  get device(): string {
    return this.native.device;
  }

  /** Writes config.json and model.safetensors (Hugging Face's layout) into `dir`. */
  save(dir: string): void {
    fs.mkdirSync(dir, { recursive: true });
    this.native.save(dir);
  }

  /**
   * Logits [batch, decoderLength, V] of the decoder inputs given the encoder's (evaluation mode). The source mask
   * holds 1 on real tokens and 0 on padding.
   */
  logits(
    source: { ids: Int32Array; mask: Int32Array; length: number },
    decoderIds: Int32Array,
    batch: number,
    decoderLength: number,
  ): Float32Array {
    return this.native.seq2seqLogits(source.ids, source.mask, decoderIds, batch, source.length, decoderLength);
  }
}
