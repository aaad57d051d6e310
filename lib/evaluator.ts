// Evaluation of a language model (any family: lib/models/language-model.ts) over a prepared split, in one pass
// of the model: NLL, PPL, token accuracy, ECE with 10 and 100 bins, Brier, spherical score and reliability bins
// (docs/metrics.md), at T = 1 or any temperatures; and post-hoc temperature scaling fitted on validation NLL. The metrics are computed natively
// (native/core/eval/metrics.cpp) and reported as they come.
import { z } from "zod";

import { parseOrThrow } from "./config.ts";
import { checkDataFits, checkModelData, type ModelData, toNativeData } from "./data/model-data.ts";
import type { LanguageModel } from "./models/language-model.ts";
import type { EvalMetrics } from "./native.ts";

export type { EvalMetrics, ReliabilityBin } from "./native.ts";
export type { ModelData } from "./data/model-data.ts";

export const EvaluatorOptionsSchema = z
  .object({
    /** sequences per forward pass */
    batchSize: z.number().int().min(1).default(8),
    /** evaluate only the first N sequences (0: all) */
    maxSequences: z.number().int().min(0).default(0),
    /** bf16 autocast (CUDA or CPU) */
    bf16: z.boolean().default(false),
    /**
     * logits a chunk of tokens at a time from the model's output embedding, never the batch's N × V at once (every
     * metric is per-token, so none is lost); false: the whole batch's logits
     */
    fusedHead: z.boolean().default(true),
  })
  .strict();
export type EvaluatorOptions = z.input<typeof EvaluatorOptionsSchema>;

const temperature = z.number().positive().finite();

export interface TemperatureFit {
  /** T minimising validation NLL */
  temperature: number;
  /** NLL at each grid temperature (one pass) */
  grid: { temperature: number; nll: number }[];
}

export class Evaluator {
  readonly options: Readonly<z.output<typeof EvaluatorOptionsSchema>>;

  constructor(
    readonly model: LanguageModel,
    options: EvaluatorOptions = {},
  ) {
    this.options = parseOrThrow(EvaluatorOptionsSchema, options, "Evaluator options");
  }

  // Data of the right kind for this model, checked before any native work.
  #check(data: unknown, name: string): ModelData {
    const d = checkModelData(data, name);
    checkDataFits(d, this.model.shape, name);
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
