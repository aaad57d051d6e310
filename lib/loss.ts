// DPSMLoss: the fused softmax + CE + Brier (+ spherical) loss with its α schedule, on JS arrays.
// The step counter lives here; the kernel reads it, and only advance() moves it (once per optimiser step).
import {
  type LossConfig,
  type LossConfigInput,
  LossConfigSchema,
  parseOrThrow,
  REDUCTIONS,
  type Reduction,
} from "./config.ts";
import { native } from "./native.ts";

export interface ForwardOptions {
  /** V, the number of classes (logits per token). */
  vocabSize: number;
  /** Optimiser step α is taken at; defaults to this loss's own counter (see `step`, `advance()`). */
  step?: number;
  /** Compute the gradient (default true). */
  grad?: boolean;
  /** Write the gradient over `logits` instead of a new array (saves N×V floats). */
  inPlace?: boolean;
  /** Also return the per-token statistics the Evaluator uses. */
  stats?: boolean;
  /** Overrides the configured reduction for this call. */
  reduction?: Reduction;
  /** Overrides the configured ignore index for this call. */
  ignoreIndex?: number;
}

/** Per-token statistics from the same pass as the loss (ignored tokens hold 0). */
export interface TokenStats {
  /** −log p_y */
  nll: Float32Array;
  /** p_y, the probability of the target */
  pY: Float32Array;
  /** max_k p_k, the top-1 confidence */
  maxP: Float32Array;
  /** 1 where argmax p (first index among ties) is the target, else 0 */
  hit: Uint8Array;
  /** ‖p‖² */
  sqNorm: Float32Array;
}

export interface LossResult {
  /** Mean over non-ignored tokens (reduction "mean"), or their sum ("sum" and "none"). */
  loss: number;
  /** Per-token losses (reduction "none" only; ignored tokens hold 0). */
  tokenLosses?: Float32Array;
  /** d(loss)/d(logits), N×V; the same array as `logits` with `inPlace`. */
  grad?: Float32Array;
  /** α the kernel used (the weight of Brier). */
  alpha: number;
  /** Tokens not ignored. */
  count: number;
  stats?: TokenStats;
}

function checkStep(step: unknown, name: string): number {
  if (typeof step !== "number" || !Number.isSafeInteger(step) || step < 0) {
    const err = typeof step === "number" ? RangeError : TypeError;
    throw new err(`${name}: expected an integer >= 0, got ${String(step)}`);
  }
  return step;
}

/**
 * Dynamic Proper-Score Mixing: per token `L = (1 − α)·CE + α·Brier`, α rising from 0 to 1 over a warm-up
 * (linear or cosine), switching from 0 to 1 at it (step: CE, then Brier) or fixed; also plain `ce`, `brier` and
 * `spherical`. With `smoothing` ε (ce, brier, dpsm) each score is taken against the smoothed target
 * (1 − ε)·onehot(y) + ε/V (score smoothing; label smoothing for ce); the per-token statistics stay unsmoothed.
 *
 * ```ts
 * const loss = new DPSMLoss({ kind: "dpsm", schedule: "linear", warmupSteps: 1000 });
 * loss.alphaAt(250);                                     // 0.25
 * const r = loss.forward(logits, targets, { vocabSize, step: 250 });
 * r.loss; r.grad; r.alpha;
 * ```
 */
export class DPSMLoss {
  readonly config: Readonly<LossConfig>;
  #step = 0;

  constructor(config: LossConfigInput) {
    this.config = Object.freeze(parseOrThrow(LossConfigSchema, config, "DPSMLoss options"));
  }

  /** The optimiser step the next forward() uses when none is given. Starts at 0. */
  get step(): number {
    return this.#step;
  }

  set step(value: number) {
    this.#step = checkStep(value, "step");
  }

  /** Moves the counter on by one optimiser step (or `steps`); returns the new step. Never called by forward(). */
  advance(steps = 1): number {
    this.#step = checkStep(this.#step + checkStep(steps, "steps"), "step");
    return this.#step;
  }

  /** α at `step` (default: the current step), from the same closed form the kernel evaluates. */
  alphaAt(step: number = this.#step): number {
    return native().alphaAt(JSON.stringify(this.config), checkStep(step, "step"));
  }

  /**
   * Loss, gradient and (optionally) per-token statistics of `logits` (N×V, row-major) against `targets` (N).
   * Targets equal to the ignore index contribute nothing; any other target outside [0, V) is an error.
   */
  forward(logits: Float32Array, targets: Int32Array, options: ForwardOptions): LossResult {
    if (!isTypedArray(logits, "Float32Array"))
      throw new TypeError(`logits: expected a Float32Array, got ${typeName(logits)}`);
    if (!isTypedArray(targets, "Int32Array"))
      throw new TypeError(`targets: expected an Int32Array, got ${typeName(targets)}`);
    if (options === null || typeof options !== "object")
      throw new TypeError("options: expected an object with vocabSize");
    // One policy for every option: absent (or undefined) takes the default; null and unknown names are refused.
    for (const [key, value] of Object.entries(options)) {
      if (!FORWARD_OPTIONS.includes(key as keyof ForwardOptions)) {
        throw new TypeError(`options.${key}: not an option of forward(); expected ${FORWARD_OPTIONS.join(", ")}`);
      }
      if (value === null) throw new TypeError(`options.${key}: expected a value or no entry, got null`);
    }
    const { vocabSize } = options;
    if (typeof vocabSize !== "number" || !Number.isSafeInteger(vocabSize) || vocabSize < 1) {
      const err = typeof vocabSize === "number" ? RangeError : TypeError;
      throw new err(`options.vocabSize: expected an integer >= 1, got ${String(vocabSize)}`);
    }
    if (logits.length !== targets.length * vocabSize) {
      throw new RangeError(
        `logits: expected targets.length × vocabSize = ${targets.length} × ${vocabSize} = ` +
          `${targets.length * vocabSize} values, got ${logits.length}`,
      );
    }
    const step = options.step === undefined ? this.#step : checkStep(options.step, "options.step");
    const reduction = options.reduction ?? this.config.reduction;
    if (!REDUCTIONS.includes(reduction)) {
      throw new RangeError(`options.reduction: expected one of ${REDUCTIONS.join(", ")}, got ${String(reduction)}`);
    }
    const ignoreIndex = options.ignoreIndex ?? this.config.ignoreIndex;
    if (!Number.isSafeInteger(ignoreIndex)) {
      throw new RangeError(`options.ignoreIndex: expected an integer, got ${String(ignoreIndex)}`);
    }
    for (const key of ["grad", "inPlace", "stats"] as const) {
      if (options[key] !== undefined && typeof options[key] !== "boolean") {
        throw new TypeError(`options.${key}: expected a boolean, got ${typeName(options[key])}`);
      }
    }
    const r = native().lossForward(
      logits,
      targets,
      JSON.stringify({
        loss: { ...this.config, reduction, ignoreIndex },
        vocabSize,
        step,
        grad: options.grad ?? true,
        inPlace: options.inPlace ?? false,
        stats: options.stats ?? false,
      }),
    );
    const out: LossResult = { loss: 0, alpha: r.alpha, count: r.count };
    if (typeof r.loss === "number") {
      out.loss = r.loss;
    } else {
      out.tokenLosses = r.loss;
      out.loss = r.loss.reduce((a, b) => a + b, 0);
    }
    if (r.grad) out.grad = r.grad;
    if (r.stats) out.stats = r.stats;
    return out;
  }
}

const FORWARD_OPTIONS: readonly (keyof ForwardOptions)[] = [
  "vocabSize",
  "step",
  "grad",
  "inPlace",
  "stats",
  "reduction",
  "ignoreIndex",
];

// By tag, not instanceof: a typed array made in another realm (a vm context, a worker's transfer) is as good.
function isTypedArray(v: unknown, kind: "Float32Array" | "Int32Array"): boolean {
  return ArrayBuffer.isView(v) && Object.prototype.toString.call(v) === `[object ${kind}]`;
}

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (ArrayBuffer.isView(v)) return Object.prototype.toString.call(v).slice(8, -1);
  if (typeof v === "object") return (v as object).constructor?.name ?? "object";
  return typeof v;
}
