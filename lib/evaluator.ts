// Evaluation of a GPT-2 over a packed split, in one pass of the model: NLL, PPL, token accuracy, ECE with 10
// and 100 bins, Brier, spherical score and reliability bins (docs/metrics.md), at T = 1 or any temperatures;
// and post-hoc temperature scaling fitted on validation NLL. The metrics are computed natively
// (native/core/eval/metrics.cpp) and reported as they come.
import { z } from "zod";

import { parseOrThrow } from "./config.ts";
import type { PackedTokens } from "./data/pack.ts";
import type { SummarizationArrays } from "./data/summarization.ts";
import type { GPT2Model } from "./model.ts";
import { Seq2SeqModel } from "./models/bart.ts";
import type { EvalMetrics, NativeData } from "./native.ts";

export type { EvalMetrics, ReliabilityBin } from "./native.ts";

export const EvaluatorOptionsSchema = z
  .object({
    /** sequences per forward pass */
    batchSize: z.number().int().min(1).default(8),
    /** evaluate only the first N sequences (0: all) */
    maxSequences: z.number().int().min(0).default(0),
    /** bf16 autocast (CUDA or CPU) */
    bf16: z.boolean().default(false),
  })
  .strict();
export type EvaluatorOptions = z.input<typeof EvaluatorOptionsSchema>;

const temperature = z.number().positive().finite();

/** What a model evaluates and trains on: packed sequences (GPT-2) or encoder–decoder examples (BART, PEGASUS). */
export type ModelData = PackedTokens | SummarizationArrays;

export function isSeq2SeqData(d: ModelData): d is SummarizationArrays {
  return "sourceTokens" in d;
}

/**
 * `d` as model data, or a TypeError naming `name` and what was expected. Typed arrays are checked by tag, so
 * arrays made in another realm pass.
 */
export function checkModelData(d: unknown, name: string): ModelData {
  const isInt32 = (a: unknown) => ArrayBuffer.isView(a) && Object.prototype.toString.call(a) === "[object Int32Array]";
  const o = d as Record<string, unknown> | null;
  const got = d === null ? "null" : Array.isArray(d) ? "an array" : typeof d;
  if (typeof o !== "object" || o === null || Array.isArray(o)) {
    throw new TypeError(
      `${name}: expected packed sequences (prepareLanguageModelData) or encoder-decoder examples ` +
        `(prepareSummarizationData), got ${got}`,
    );
  }
  if ("sourceTokens" in o) {
    const bad = ["sourceTokens", "sourceLengths", "targetTokens", "targetLengths"].find((k) => !isInt32(o[k]));
    if (bad) throw new TypeError(`${name}.${bad}: expected an Int32Array`);
    for (const k of ["maxSource", "maxTarget"]) {
      if (!Number.isSafeInteger(o[k]) || (o[k] as number) < 0) {
        throw new TypeError(`${name}.${k}: expected an integer >= 0, got ${String(o[k])}`);
      }
    }
    return d as ModelData;
  }
  const bad = ["tokens", "lengths"].find((k) => !isInt32(o[k]));
  if (bad) {
    throw new TypeError(
      `${name}.${bad}: expected an Int32Array (packed sequences from prepareLanguageModelData, or encoder-decoder ` +
        "examples with sourceTokens)",
    );
  }
  if (!Number.isSafeInteger(o.contextLength) || (o.contextLength as number) < 2) {
    throw new TypeError(`${name}.contextLength: expected an integer >= 2, got ${String(o.contextLength)}`);
  }
  return d as ModelData;
}

/** The arrays the native side reads (only those: no strings or ids cross the boundary). */
export function toNativeData(d: ModelData): NativeData {
  if (isSeq2SeqData(d)) {
    const { sourceTokens, sourceLengths, targetTokens, targetLengths, maxSource, maxTarget } = d;
    return { sourceTokens, sourceLengths, targetTokens, targetLengths, maxSource, maxTarget };
  }
  return { tokens: d.tokens, lengths: d.lengths, contextLength: d.contextLength };
}

export interface TemperatureFit {
  /** T minimising validation NLL */
  temperature: number;
  /** NLL at each grid temperature (one pass) */
  grid: { temperature: number; nll: number }[];
}

export class Evaluator {
  readonly options: Readonly<z.output<typeof EvaluatorOptionsSchema>>;

  constructor(
    readonly model: GPT2Model | Seq2SeqModel,
    options: EvaluatorOptions = {},
  ) {
    this.options = parseOrThrow(EvaluatorOptionsSchema, options, "Evaluator options");
  }

  // Data of the right kind for this model, checked before any native work.
  #check(data: unknown, name: string): ModelData {
    const d = checkModelData(data, name);
    const wantsSeq2Seq = this.model instanceof Seq2SeqModel;
    if (isSeq2SeqData(d) !== wantsSeq2Seq) {
      throw new TypeError(
        `${name}: ${wantsSeq2Seq ? "an encoder-decoder evaluates encoder-decoder examples (prepareSummarizationData)" : "a GPT-2 evaluates packed sequences (prepareLanguageModelData)"}`,
      );
    }
    return d;
  }

  /** Metrics of `data` at temperature T (default 1). */
  async evaluate(data: ModelData, options: { temperature?: number } = {}): Promise<EvalMetrics> {
    const t = parseOrThrow(temperature.default(1), options.temperature, "temperature");
    const [m] = await this.evaluateAt(data, [t]);
    return m!;
  }

  /** Metrics at several temperatures from one pass of the model. */
  async evaluateAt(data: ModelData, temperatures: number[]): Promise<EvalMetrics[]> {
    const ts = parseOrThrow(z.array(temperature).min(1), temperatures, "temperatures");
    return this.model.native.evaluate(
      toNativeData(this.#check(data, "data")),
      JSON.stringify({ ...this.options, temperatures: ts }),
    );
  }

  /** Post-hoc temperature scaling: the T minimising NLL on `valid` (log-spaced grid + parabolic refinement). */
  async fitTemperature(
    valid: ModelData,
    grid: { min?: number; max?: number; points?: number } = {},
  ): Promise<TemperatureFit> {
    const g = parseOrThrow(
      z
        .object({
          min: temperature.default(0.5),
          max: temperature.default(3),
          points: z.number().int().min(3).max(200).default(26),
        })
        .strict(),
      grid,
      "grid",
    );
    if (g.max <= g.min) throw new RangeError(`grid.max: expected a number > grid.min (${g.min}), got ${g.max}`);
    return this.model.native.fitTemperature(
      toNativeData(this.#check(valid, "valid")),
      JSON.stringify({ ...this.options, ...g, temperatures: [] }),
    );
  }
}
