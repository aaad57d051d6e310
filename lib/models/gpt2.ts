// GPT-2 models: created from a preset size or dimensions (GPT-2 initialisation, seeded), or loaded from a
// folder in Hugging Face's layout (config.json + model.safetensors), and saved the same way. This file owns
// the presets and the validation of GPT-2's config; the native core receives the config as config.json
// states it. Creation, loading, saving and generation have Promise forms that run on libuv's pool; a model's
// weights count as V8 external memory, and dispose() frees them at once.
import path from "node:path";

import { z } from "zod";

import { DeviceSchema, parseOrThrow } from "../config.ts";
import type { ModelShape } from "../data/model-data.ts";
import { native, type NativeModel } from "../native.ts";
import { checkConfigAgainstWeights, readHfCheckpoint, saveHfCheckpoint, type SaveOptions } from "./checkpoint.ts";
import type { CausalInputs, LanguageModel } from "./language-model.ts";
import { checkParameterCount, MODEL_LIMITS, parameterLimitMessage } from "./limits.ts";

export const MODEL_SIZES = ["tiny", "small", "medium", "large"] as const;
export type ModelSize = (typeof MODEL_SIZES)[number];

/** GPT-2's dimensions, under Hugging Face's names (GPT2Config, config.json). */
export interface GPT2Config {
  vocab_size: number;
  n_positions: number;
  n_embd: number;
  n_layer: number;
  n_head: number;
  /** dropout on the residual, embedding and attention outputs alike */
  resid_pdrop: number;
  layer_norm_epsilon: number;
}

const SMALL: GPT2Config = {
  vocab_size: 50257,
  n_positions: 1024,
  n_embd: 768,
  n_layer: 12,
  n_head: 12,
  resid_pdrop: 0,
  layer_norm_epsilon: 1e-5,
};
/** tiny (CPU: 4 layers × 128, 256 positions), small (124M), medium (355M), large (774M). */
export const GPT2_PRESETS: Readonly<Record<ModelSize, Readonly<GPT2Config>>> = {
  tiny: { ...SMALL, n_positions: 256, n_embd: 128, n_layer: 4, n_head: 4 },
  small: SMALL,
  medium: { ...SMALL, n_embd: 1024, n_layer: 24, n_head: 16 },
  large: { ...SMALL, n_embd: 1280, n_layer: 36, n_head: 20 },
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
    vocab_size: dim(2, L.vocab).optional(),
    n_positions: dim(2, L.positions).optional(),
    n_embd: dim(1, L.width).optional(),
    n_layer: dim(1, L.layers).optional(),
    n_head: dim(1, L.heads).optional(),
    resid_pdrop: z.number().min(0).lt(1).optional(),
    layer_norm_epsilon: z.number().positive().optional(),
    seed: z.number().int().min(0).default(0),
    device: device(),
  })
  .strict()
  .superRefine((o, ctx) => {
    if (!headsDivide(o.n_embd, o.n_head)) {
      ctx.addIssue({ code: "custom", path: ["n_embd"], message: `must be a multiple of n_head (${o.n_head})` });
    }
  });
export type ModelOptions = z.input<typeof ModelOptionsSchema>;

/**
 * GPT-2's parameter count for these dimensions (GPT2LMHeadModel's, the head tied to the token embedding):
 * embeddings, per layer two LayerNorms, attention (3E² + 3E in, E² + E out) and the MLP (8E² + 5E), a final
 * LayerNorm. The one estimate both config paths check against {@link MODEL_LIMITS}.parameters.
 */
export function gpt2ParameterCount(c: Pick<GPT2Config, "vocab_size" | "n_positions" | "n_embd" | "n_layer">): number {
  const e = c.n_embd;
  return (c.vocab_size + c.n_positions) * e + c.n_layer * (12 * e * e + 13 * e) + 2 * e;
}

/** The dimensions `options` describe: the preset (small by default) with any field overridden. */
export function resolveGPT2Config(options: z.output<typeof ModelOptionsSchema>): GPT2Config {
  const { size, seed: _seed, device: _device, ...overrides } = options;
  const c = { ...GPT2_PRESETS[size ?? "small"], ...overrides };
  if (c.n_embd % c.n_head !== 0) {
    throw new RangeError(`model.n_embd: must be a multiple of n_head (${c.n_head}), got ${c.n_embd}`);
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
    const dims = { vocab_size: c.vocab_size, n_positions: c.n_positions, n_embd: c.n_embd, n_layer: c.n_layer };
    // Dimensions of the wrong type are reported above; no estimate from them.
    if (Object.values(dims).every(Number.isFinite)) checkParameterCount(gpt2ParameterCount(dims), ctx);
  });

function hfConfigOf(c: GPT2Config): z.input<typeof HfConfigSchema> {
  return {
    model_type: "gpt2",
    vocab_size: c.vocab_size,
    n_positions: c.n_positions,
    n_embd: c.n_embd,
    n_layer: c.n_layer,
    n_head: c.n_head,
    layer_norm_epsilon: c.layer_norm_epsilon,
    resid_pdrop: c.resid_pdrop,
  };
}

function configOfHf(text: string): GPT2Config & { model_type: "gpt2" } {
  const j = JSON.parse(text) as z.output<typeof HfConfigSchema>;
  return {
    model_type: "gpt2",
    vocab_size: j.vocab_size,
    n_positions: j.n_positions,
    n_embd: j.n_embd,
    n_layer: j.n_layer,
    n_head: j.n_head,
    resid_pdrop: j.resid_pdrop,
    layer_norm_epsilon: j.layer_norm_epsilon,
  };
}

function createDocument(options: ModelOptions): string {
  const o = parseOrThrow(ModelOptionsSchema, options, "model");
  return JSON.stringify({ config: hfConfigOf(resolveGPT2Config(o)), seed: o.seed, device: o.device });
}

function loadDocument(dir: string, options: { device?: string }, who: string): string {
  const { config: raw, weights } = readHfCheckpoint(dir, who);
  const config = parseOrThrow(HfConfigSchema, raw, path.join(dir, "config.json"));
  checkConfigAgainstWeights(dir, weights, gpt2ParameterCount(config), who);
  const { device: d } = parseOrThrow(z.object({ device: device() }).strict(), options, `${who} options`);
  return JSON.stringify({ config, weights, device: d });
}

/** A GPT-2 (Hugging Face's GPT2LMHeadModel). */
export class GPT2Model implements LanguageModel {
  /** @internal */
  readonly native: NativeModel;
  readonly config: Readonly<GPT2Config & { model_type: "gpt2" }>;

  private constructor(m: NativeModel) {
    this.native = m;
    this.config = Object.freeze(configOfHf(m.config));
  }

  /** Packed causal sequences, ids below vocab_size, up to n_positions long. */
  get shape(): ModelShape {
    return { seq2seq: false, vocabSize: this.config.vocab_size, positions: this.config.n_positions };
  }

  /**
   * A new model with GPT-2's initialisation (N(0, 0.02), residual projections scaled by 1/√(2·n_layer)), built on
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
   * tokens together fit the model's n_positions.
   */
  async generate(prompt: Int32Array, options: GenerateOptions = {}): Promise<Int32Array> {
    const o = parseOrThrow(GenerateOptionsSchema, options, "GPT2Model.generate options");
    if (!(prompt instanceof Int32Array) && Object.prototype.toString.call(prompt) !== "[object Int32Array]") {
      throw new TypeError("GPT2Model.generate prompt: expected an Int32Array of token ids");
    }
    const room = this.config.n_positions - prompt.length;
    if (prompt.length > this.config.n_positions) {
      throw new RangeError(
        `GPT2Model.generate prompt: ${prompt.length} tokens, more than the model's ${this.config.n_positions} positions`,
      );
    }
    if (o.maxNewTokens > room) {
      throw new RangeError(
        `GPT2Model.generate options.maxNewTokens: must not exceed the model's n_positions ${this.config.n_positions} ` +
          `less the prompt's ${prompt.length} tokens (${room}), got ${o.maxNewTokens}`,
      );
    }
    if (prompt.length === 0) throw new RangeError("GPT2Model.generate prompt: expected at least one token");
    const V = this.config.vocab_size;
    const bad = prompt.findIndex((id) => id < 0 || id >= V);
    if (bad >= 0) {
      throw new RangeError(
        `GPT2Model.generate prompt: expected ids in [0, ${V}), got ${prompt[bad]} at position ${bad}`,
      );
    }
    const [continuation] = await this.native.generate(
      { ids: prompt, batch: 1, length: prompt.length },
      JSON.stringify(o),
    );
    return continuation!;
  }

  /** Logits [batch, length, V] for token ids [batch, length] (evaluation mode). */
  logits(inputs: CausalInputs): Float32Array {
    return this.native.logits(inputs);
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
