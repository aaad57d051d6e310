// GPT-2 models: created from a size or config (GPT-2 initialisation, seeded), or loaded from a folder in
// Hugging Face's layout (config.json + model.safetensors), and saved the same way.
import fs from "node:fs";
import path from "node:path";

import { z } from "zod";

import { parseOrThrow } from "./config.ts";
import { type GPT2Config, native, type NativeModel } from "./native.ts";

export const MODEL_SIZES = ["tiny", "small", "medium", "large"] as const;
export type ModelSize = (typeof MODEL_SIZES)[number];

const positiveInt = () => z.number().int().min(1);

export const ModelOptionsSchema = z
  .object({
    /** a preset: tiny (CPU: 4 layers × 128, 256 positions), small (124M), medium (355M), large (774M) */
    size: z.enum(MODEL_SIZES).optional(),
    /** any field overrides the preset (or GPT-2 small's defaults) */
    vocabSize: z.number().int().min(2).optional(),
    nPositions: z.number().int().min(2).optional(),
    nEmbd: positiveInt().optional(),
    nLayer: positiveInt().optional(),
    nHead: positiveInt().optional(),
    dropout: z.number().min(0).lt(1).optional(),
    layerNormEpsilon: z.number().positive().optional(),
    seed: z.number().int().min(0).default(0),
    device: z.string().regex(/^(cpu|cuda(:\d+)?)$/, "expected cpu, cuda or cuda:N").default("cpu"),
  })
  .strict()
  .superRefine((o, ctx) => {
    if (o.nEmbd !== undefined && o.nHead !== undefined && o.nEmbd % o.nHead !== 0) {
      ctx.addIssue({ code: "custom", path: ["nEmbd"], message: `must be a multiple of nHead (${o.nHead})` });
    }
  });
export type ModelOptions = z.input<typeof ModelOptionsSchema>;

export class GPT2Model {
  /** @internal */
  readonly native: NativeModel;

  private constructor(m: NativeModel) {
    this.native = m;
  }

  /** A new model with GPT-2's initialisation (N(0, 0.02), residual projections scaled by 1/√(2·nLayer)). */
  static create(options: ModelOptions): GPT2Model {
    const o = parseOrThrow(ModelOptionsSchema, options, "model");
    const { seed, device, ...config } = o;
    return new GPT2Model(new (native().Model)({ config, seed, device }));
  }

  /** Weights from a Hugging Face GPT-2 folder (config.json + model.safetensors), ours or theirs. */
  static load(dir: string, options: { device?: string } = {}): GPT2Model {
    for (const f of ["config.json", "model.safetensors"]) {
      if (!fs.existsSync(path.join(dir, f))) throw new Error(`GPT2Model.load: ${path.join(dir, f)} not found`);
    }
    return new GPT2Model(new (native().Model)({ load: dir, device: options.device ?? "cpu" }));
  }

  get config(): GPT2Config {
    return this.native.config;
  }

  get parameterCount(): number {
    return this.native.parameterCount;
  }

  get device(): string {
    return this.native.device;
  }

  /** Writes config.json and model.safetensors (Hugging Face's GPT2LMHeadModel layout) into `dir`. */
  save(dir: string): void {
    fs.mkdirSync(dir, { recursive: true });
    this.native.save(dir);
  }

  /**
   * Continues `prompt` (token ids) by `maxNewTokens` tokens: greedy by default (topK 1), or top-k sampling at
   * `temperature` from a seeded generator (the same continuation every run).
   */
  generate(prompt: Int32Array, options: { maxNewTokens?: number; topK?: number; temperature?: number; seed?: number } = {}): Int32Array {
    return this.native.generate(prompt, options);
  }

  /** Logits [batch, length, V] for token ids [batch, length] (evaluation mode). */
  logits(ids: Int32Array, batch: number, length: number): Float32Array {
    return this.native.logits(ids, batch, length);
  }
}
