// GPT-2 models: created from a preset size or dimensions (GPT-2 initialisation, seeded), or loaded from a
// folder in Hugging Face's layout (config.json + model.safetensors), and saved the same way. This file owns
// the presets and the validation of GPT-2's config; the native core receives the config as config.json
// states it. Creation, loading, saving and generation have Promise forms that run on libuv's pool; a model's
// weights count as V8 external memory, and dispose() frees them at once.
import path from "node:path";

import { z } from "zod";

import { DeviceSchema, parseOrThrow } from "./config.ts";
import { readHfCheckpoint, saveHfCheckpoint, type SaveOptions } from "./models/checkpoint.ts";
import { checkParameterCount, MODEL_LIMITS, parameterLimitMessage } from "./models/limits.ts";
import { native, type NativeModel } from "./native.ts";

export const MODEL_SIZES = ["tiny", "small", "medium", "large"] as const;
export type ModelSize = (typeof MODEL_SIZES)[number];

/** GPT-2 dimensions (Hugging Face's names in camelCase). */
export interface GPT2Config {
  vocabSize: number;
  nPositions: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  dropout: number;
  layerNormEpsilon: number;
}

const SMALL: GPT2Config = {
  vocabSize: 50257,
  nPositions: 1024,
  nEmbd: 768,
  nLayer: 12,
  nHead: 12,
  dropout: 0,
  layerNormEpsilon: 1e-5,
};
/** tiny (CPU: 4 layers × 128, 256 positions), small (124M), medium (355M), large (774M). */
export const GPT2_PRESETS: Readonly<Record<ModelSize, Readonly<GPT2Config>>> = {
  tiny: { ...SMALL, nPositions: 256, nEmbd: 128, nLayer: 4, nHead: 4 },
  small: SMALL,
  medium: { ...SMALL, nEmbd: 1024, nLayer: 24, nHead: 16 },
  large: { ...SMALL, nEmbd: 1280, nLayer: 36, nHead: 20 },
};

// Each dimension bounded (lib/models/limits.ts), so no config reaches the allocator with n_layer 1e9.
const dim = (min: number, max: number) => z.number().int().min(min).max(max);
const L = MODEL_LIMITS;
const device = () => DeviceSchema.default("cpu");
const headsDivide = (embd: number | undefined, heads: number | undefined) =>
  embd === undefined || heads === undefined || embd % heads === 0;

export const ModelOptionsSchema = z
  .object({
    /** a preset; any field below overrides it (the default preset is small) */
    size: z.enum(MODEL_SIZES).optional(),
    vocabSize: dim(2, L.vocab).optional(),
    nPositions: dim(2, L.positions).optional(),
    nEmbd: dim(1, L.width).optional(),
    nLayer: dim(1, L.layers).optional(),
    nHead: dim(1, L.heads).optional(),
    dropout: z.number().min(0).lt(1).optional(),
    layerNormEpsilon: z.number().positive().optional(),
    seed: z.number().int().min(0).default(0),
    device: device(),
  })
  .strict()
  .superRefine((o, ctx) => {
    if (!headsDivide(o.nEmbd, o.nHead)) {
      ctx.addIssue({ code: "custom", path: ["nEmbd"], message: `must be a multiple of nHead (${o.nHead})` });
    }
  });
export type ModelOptions = z.input<typeof ModelOptionsSchema>;

/**
 * GPT-2's parameter count for these dimensions (GPT2LMHeadModel's, the head tied to the token embedding):
 * embeddings, per layer two LayerNorms, attention (3E² + 3E in, E² + E out) and the MLP (8E² + 5E), a final
 * LayerNorm. The one estimate both config paths check against {@link MODEL_LIMITS}.parameters.
 */
export function gpt2ParameterCount(c: Pick<GPT2Config, "vocabSize" | "nPositions" | "nEmbd" | "nLayer">): number {
  const e = c.nEmbd;
  return (c.vocabSize + c.nPositions) * e + c.nLayer * (12 * e * e + 13 * e) + 2 * e;
}

/** The dimensions `options` describe: the preset (small by default) with any field overridden. */
export function resolveGPT2Config(options: z.output<typeof ModelOptionsSchema>): GPT2Config {
  const { size, seed: _seed, device: _device, ...overrides } = options;
  const c = { ...GPT2_PRESETS[size ?? "small"], ...overrides };
  if (c.nEmbd % c.nHead !== 0) {
    throw new RangeError(`model.nEmbd: must be a multiple of nHead (${c.nHead}), got ${c.nEmbd}`);
  }
  const tooLarge = parameterLimitMessage(gpt2ParameterCount(c));
  if (tooLarge !== undefined) throw new RangeError(`model: ${tooLarge}`);
  return c;
}

// Hugging Face's GPT2Config as config.json states it, with transformers' defaults for absent fields; what the
// native GPT-2 implements (GELU tanh, n_inner = 4·n_embd) is enforced here.
const HfConfigSchema = z
  .object({
    model_type: z.literal("gpt2").default("gpt2"),
    vocab_size: dim(2, L.vocab).default(50257),
    n_positions: dim(2, L.positions).default(1024),
    n_embd: dim(1, L.width).default(768),
    n_layer: dim(1, L.layers).default(12),
    n_head: dim(1, L.heads).default(12),
    n_inner: dim(1, L.ffn).nullable().default(null),
    activation_function: z.enum(["gelu_new", "gelu_pytorch_tanh"]).default("gelu_new"),
    layer_norm_epsilon: z.number().positive().default(1e-5),
    resid_pdrop: z.number().min(0).lt(1).default(0.1),
  })
  .passthrough()
  .superRefine((c, ctx) => {
    if (c.n_embd % c.n_head !== 0) {
      ctx.addIssue({ code: "custom", path: ["n_embd"], message: `must be a multiple of n_head (${c.n_head})` });
    }
    if (c.n_inner !== null && c.n_inner !== 4 * c.n_embd) {
      ctx.addIssue({ code: "custom", path: ["n_inner"], message: "other than 4·n_embd is not supported" });
    }
    const dims = { vocabSize: c.vocab_size, nPositions: c.n_positions, nEmbd: c.n_embd, nLayer: c.n_layer };
    // Dimensions of the wrong type are reported above; no estimate from them.
    if (Object.values(dims).every(Number.isFinite)) checkParameterCount(gpt2ParameterCount(dims), ctx);
  });

function hfConfigOf(c: GPT2Config): z.input<typeof HfConfigSchema> {
  return {
    model_type: "gpt2",
    vocab_size: c.vocabSize,
    n_positions: c.nPositions,
    n_embd: c.nEmbd,
    n_layer: c.nLayer,
    n_head: c.nHead,
    layer_norm_epsilon: c.layerNormEpsilon,
    resid_pdrop: c.dropout,
  };
}

function configOfHf(text: string): GPT2Config {
  const j = JSON.parse(text) as z.output<typeof HfConfigSchema>;
  return {
    vocabSize: j.vocab_size,
    nPositions: j.n_positions,
    nEmbd: j.n_embd,
    nLayer: j.n_layer,
    nHead: j.n_head,
    dropout: j.resid_pdrop,
    layerNormEpsilon: j.layer_norm_epsilon,
  };
}

function createDocument(options: ModelOptions): string {
  const o = parseOrThrow(ModelOptionsSchema, options, "model");
  return JSON.stringify({ config: hfConfigOf(resolveGPT2Config(o)), seed: o.seed, device: o.device });
}

function loadDocument(dir: string, options: { device?: string }, who: string): string {
  const { config: raw, weights } = readHfCheckpoint(dir, who);
  const config = parseOrThrow(HfConfigSchema, raw, path.join(dir, "config.json"));
  const { device: d } = parseOrThrow(z.object({ device: device() }).strict(), options, `${who} options`);
  return JSON.stringify({ config, weights, device: d });
}

export class GPT2Model {
  /** @internal */
  readonly native: NativeModel;
  readonly config: Readonly<GPT2Config>;

  private constructor(m: NativeModel) {
    this.native = m;
    this.config = Object.freeze(configOfHf(m.config));
  }

  /**
   * A new model with GPT-2's initialisation (N(0, 0.02), residual projections scaled by 1/√(2·nLayer)), built on
   * the calling thread; {@link GPT2Model.createAsync} builds it off the event loop.
   */
  static create(options: ModelOptions): GPT2Model {
    return new GPT2Model(new (native().Model)(createDocument(options)));
  }

  /** {@link GPT2Model.create} on a worker thread: the event loop stays free while the weights are drawn. */
  static async createAsync(options: ModelOptions): Promise<GPT2Model> {
    return new GPT2Model(await native().createModel(createDocument(options)));
  }

  /** Weights from a Hugging Face GPT-2 folder (config.json + model.safetensors), ours or theirs. */
  static load(dir: string, options: { device?: string } = {}): GPT2Model {
    return new GPT2Model(new (native().Model)(loadDocument(dir, options, "GPT2Model.load")));
  }

  /** {@link GPT2Model.load} with the weights read on a worker thread. */
  static async loadAsync(dir: string, options: { device?: string } = {}): Promise<GPT2Model> {
    return new GPT2Model(await native().createModel(loadDocument(dir, options, "GPT2Model.loadAsync")));
  }

  get parameterCount(): number {
    return this.native.parameterCount;
  }

  get device(): string {
    return this.native.device;
  }

  /** Writes config.json and the weights (Hugging Face's GPT2LMHeadModel layout; shards past maxShardBytes). */
  save(dir: string, options: SaveOptions = {}): void {
    saveHfCheckpoint(this.native, dir, options, "GPT2Model.save");
  }

  /** {@link GPT2Model.save} with the weights written on a worker thread. */
  async saveAsync(dir: string, options: SaveOptions = {}): Promise<void> {
    return saveHfCheckpoint(this.native, dir, options, "GPT2Model.saveAsync", true);
  }

  /**
   * Frees the native weights now, rather than when the garbage collector gets to this object (they count as V8
   * external memory either way). Idempotent; any later use throws. Refused while a job runs on the model.
   */
  dispose(): void {
    this.native.dispose();
  }

  /** Whether {@link GPT2Model.dispose} freed the model. */
  get disposed(): boolean {
    return this.native.disposed;
  }

  /**
   * Continues `prompt` (token ids) by `maxNewTokens` tokens, on a worker thread: greedy by default (topK 1), or
   * top-k sampling at `temperature` from a seeded generator (the same continuation every run). Prompt and new
   * tokens together fit the model's nPositions.
   */
  async generate(prompt: Int32Array, options: GenerateOptions = {}): Promise<Int32Array> {
    const o = parseOrThrow(GenerateOptionsSchema, options, "GPT2Model.generate options");
    if (!(prompt instanceof Int32Array) && Object.prototype.toString.call(prompt) !== "[object Int32Array]") {
      throw new TypeError("GPT2Model.generate prompt: expected an Int32Array of token ids");
    }
    const room = this.config.nPositions - prompt.length;
    if (prompt.length > this.config.nPositions) {
      throw new RangeError(
        `GPT2Model.generate prompt: ${prompt.length} tokens, more than the model's ${this.config.nPositions} positions`,
      );
    }
    if (o.maxNewTokens > room) {
      throw new RangeError(
        `GPT2Model.generate options.maxNewTokens: must not exceed the model's nPositions ${this.config.nPositions} ` +
          `less the prompt's ${prompt.length} tokens (${room}), got ${o.maxNewTokens}`,
      );
    }
    return this.native.generate(prompt, JSON.stringify(o));
  }

  /** Logits [batch, length, V] for token ids [batch, length] (evaluation mode). */
  logits(ids: Int32Array, batch: number, length: number): Float32Array {
    return this.native.logits(ids, batch, length);
  }
}

const GenerateOptionsSchema = z
  .object({
    maxNewTokens: z.number().int().min(0).default(32),
    /** 1: greedy */
    topK: z.number().int().min(1).default(1),
    temperature: z.number().positive().finite().default(1),
    seed: z.number().int().min(0).default(0),
  })
  .strict();
export type GenerateOptions = z.input<typeof GenerateOptionsSchema>;
