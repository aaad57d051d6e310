// The testing addon (native/addon/testing_addon.cpp): the fused loss's float64 reference check, its timings
// and the CPU kernel's ISA switch, for test/ and bench/. Built beside the product addon by `npm run build`, never
// shipped.
import { createRequire } from "node:module";
import path from "node:path";

import { LossConfigSchema, parseOrThrow } from "../lib/config.ts";
import { type NativeData, packageRoot } from "../lib/native.ts";

/** The loss of a probe (DPSMLoss's config fields, validated by its schema) and how its random targets are drawn. */
interface ProbeLoss {
  kind: string;
  schedule?: string;
  warmupSteps?: number;
  alpha?: number;
  /** score smoothing ε (ce, brier, dpsm) */
  smoothing?: number;
  ignoreIndex?: number;
  reduction?: string;
  ignoreFraction?: number;
  seed?: number;
  /** the device it runs on (default: the CPU) */
  device?: string;
}

/** Random logits of a shape, and the loss. */
export interface ProbeOptions extends ProbeLoss {
  rows: number;
  vocab: number;
  dtype?: "float32" | "bfloat16" | "float16";
  scale?: number;
  extreme?: boolean;
}

export interface ReferenceCheck {
  lossRelErr: number;
  gradRelErr: number;
  lossAbsErr: number;
  gradAbsErr: number;
  autogradGradRelErr: number;
  statsRelErr: { nll: number; pY: number; maxP: number; hit: number; sqNorm: number };
  hitMismatches: number;
  alphaKernel: number;
  alphaClosedForm: number;
  count: number;
  finite: boolean;
  /** the score smoothing ε the kernel ran with, as the native side parsed it from the document */
  smoothing: number;
}

export interface LossTiming {
  ms: number[];
  extraPeakBytes: number;
}

/** Random hidden states, output embedding (and bias) of a shape, and the loss. */
export interface LinearProbeOptions extends ProbeLoss {
  rows: number;
  dim: number;
  vocab: number;
  bias?: boolean;
  /** logits in bf16 from fp32 inputs, as the trainer under bf16 autocast */
  bf16?: boolean;
  /** a chunk's logits stay within this many bytes */
  chunkBytes?: number;
}

export interface LinearReferenceCheck {
  lossRelErr: number;
  hiddenGradRelErr: number;
  weightGradRelErr: number;
  biasGradRelErr: number;
  /** the unfused head (matmul in the same dtype, then the fused loss) against the same reference */
  unfusedLossRelErr: number;
  unfusedHiddenGradRelErr: number;
  unfusedWeightGradRelErr: number;
  nllRelErr: number;
  sqNormRelErr: number;
  /** the evaluator's chunked statistics: NLL at each temperature asked for */
  evalNllRelErr: number[];
  chunks: number;
  finite: boolean;
  /** the score smoothing ε the head ran with, as the native side parsed it from the document */
  smoothing: number;
}

export interface LinearTiming {
  ms: number[];
  /** peak memory of one forward + backward beyond what was held before it (-1: unknown) */
  peakBytes: number;
}

interface TestingAddon {
  checkAgainstReference(json: string): Promise<ReferenceCheck>;
  checkLinearAgainstReference(json: string): Promise<LinearReferenceCheck>;
  timeLinearLoss(json: string): Promise<LinearTiming>;
  timeLoss(json: string): Promise<LossTiming>;
  copyBandwidth(json: string): Promise<number>;
  releaseCachedMemory(): void;
  useCpuIsa(isa: string): boolean;
  cpuIsa(): string;
  summarySwapSources(seed: number, batchIndex: number, rows: number, p: number): Int32Array;
  gradientNorm(grads: Float32Array[]): { norm: number; fp32Norm: number };
  adamwSteps(options: AdamwStepsOptions): AdamwStepsResult;
  startOpRecording(): void;
  stopOpRecording(): RecordedEvent[];
  trainingGradients(model: string, trainer: string, data: NativeData): TrainingGradients;
}

/** The loss and gradients (flat, by Hugging Face parameter name) of one trainer step on a batch. */
export interface TrainingGradients {
  loss: number;
  grads: Record<string, Float32Array>;
}

/** A tensor an op read or wrote, as the op recorder saw it (native/core/testing/op_recorder.h). */
export interface RecordedTensor {
  sizes: number[];
  dtype: string;
  bytes: number;
}
/** An ATen op (with its nesting depth: 0 when the product's code called it) or a user scope's begin or end. */
export interface RecordedEvent {
  kind: "op" | "begin" | "end";
  name: string;
  thread: number;
  depth?: number;
  inputs?: RecordedTensor[];
  outputs?: RecordedTensor[];
}

/** The trainer's AdamW and clipping over a few steps (native/addon/testing_addon.cpp's adamwSteps). */
export interface AdamwStepsOptions {
  shapes: number[][];
  params: Float32Array[];
  /** grads[step][parameter] */
  grads: Float32Array[][];
  lrs: number[];
  weightDecay: number;
  betas: [number, number];
  eps: number;
  gradClip: number;
  /** AdamW's group size for the update ratio's copy (default 2^24: these shapes then form one group) */
  groupElements?: number;
}
export interface AdamwStepsResult {
  params: Float32Array[];
  expAvg: Float32Array[];
  expAvgSq: Float32Array[];
  gradNorms: number[];
  updateRatios: number[];
  fused: boolean;
}

let addon: TestingAddon | undefined;
function load(): TestingAddon {
  const file =
    process.env.DPSM_TESTING_NATIVE_PATH ?? path.join(packageRoot, "build", "testing", "dpsm_native_testing.node");
  addon ??= createRequire(import.meta.url)(file) as TestingAddon;
  return addon;
}

// The probe document: the inputs as given, the loss as the product's schema completes it.
function doc(
  o: Pick<ProbeOptions, "kind" | "schedule" | "warmupSteps" | "alpha" | "smoothing" | "ignoreIndex" | "reduction">,
): string {
  const { kind, schedule, warmupSteps, alpha, smoothing, ignoreIndex, reduction, ...rest } = o;
  const loss = parseOrThrow(
    LossConfigSchema,
    { kind, schedule, warmupSteps, alpha, smoothing, ignoreIndex, reduction },
    "loss",
  );
  return JSON.stringify({ ...rest, loss });
}

export const probes = {
  checkAgainstReference: (o: ProbeOptions & { step?: number; inPlace?: boolean }) =>
    load().checkAgainstReference(doc(o)),
  /** The fused LM head + loss against float64 matmul + composite_loss (native/core/testing/linear_loss_probe.h). */
  checkLinearAgainstReference: (o: LinearProbeOptions & { step?: number; temperatures?: number[] }) =>
    load().checkLinearAgainstReference(doc(o)),
  timeLinearLoss: (o: LinearProbeOptions & { path: "fused" | "unfused"; iters?: number; warmup?: number }) =>
    load().timeLinearLoss(doc(o)),
  timeLoss: (
    o: ProbeOptions & {
      /** fused-inplace: the gradient written into the logits' storage (the trainer's LM head) */
      path: "fused" | "fused-inplace" | "kernel" | "composite";
      backward: boolean;
      iters?: number;
      warmup?: number;
    },
  ) => load().timeLoss(doc(o)),
  /** A device's copy bandwidth, bytes read + written per second (median of `iters` copies of `bytes`). */
  copyBandwidth: (o: { device: string; bytes: number; iters?: number }) => load().copyBandwidth(JSON.stringify(o)),
  /** Hands the CUDA caching allocator's unused blocks back to the device (no-op without CUDA). */
  releaseCachedMemory: () => load().releaseCachedMemory(),
  /** Switches the testing addon's CPU kernel to an ISA variant ("auto": the best); false when the CPU lacks it. */
  useCpuIsa: (isa: "auto" | "baseline" | "avx2" | "avx512") => load().useCpuIsa(isa),
  cpuIsa: () => load().cpuIsa(),
  /** The training loop's summary-swap rule (native/core/data/sampler.cpp). */
  summarySwapSources: (seed: number, batchIndex: number, rows: number, p: number) =>
    load().summarySwapSources(seed, batchIndex, rows, p),
  /** The trainer's global gradient norm (double accumulation) and libtorch's fp32 clip_grad_norm_ of the same. */
  gradientNorm: (grads: Float32Array[]) => load().gradientNorm(grads),
  adamwSteps: (options: AdamwStepsOptions) => load().adamwSteps(options),
  /** Records every thread's ATen ops and user scopes (libtorch's RecordFunction) until stopOpRecording. */
  startOpRecording: () => load().startOpRecording(),
  stopOpRecording: () => load().stopOpRecording(),
  /**
   * The loss and gradients of one step of the native Trainer (its forward, loss and backward, before clipping and
   * the update) over the model `weights` (a model.safetensors of `config`), on all of `data` as one batch, with
   * the trainer document `trainer` (lib/trainer-options.ts's trainerDocument).
   */
  trainingGradients: (model: { config: object; weights: string }, trainer: object, data: NativeData) =>
    load().trainingGradients(JSON.stringify(model), JSON.stringify(trainer), data),
};
