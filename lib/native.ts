// The native addon's interface, and its loading: lib/core-select.ts picks the compiled core that fits the user's
// PyTorch (a local build first) and says what to do when none does.
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { loadCore, type LoadedCore } from "./core-select.ts";

/** What the native core was built with and runs on. */
export interface BuildInfo {
  /** libtorch version the addon was compiled against, e.g. "1.13.0". */
  torchVersion: string;
  /** the libtorch CPU library this process loaded (its real path): Debian's, or a torch wheel's; "" when unknown */
  torchLibrary: string;
  /** Whether the CUDA kernels are compiled in and dispatched to. */
  cuda: boolean;
  /** CUDA devices visible to this process (0 without CUDA). */
  cudaDeviceCount: number;
  /** libtorch intra-op threads (defaults to the machine's cores, or DPSM_NUM_THREADS). */
  threads: number;
  /** Vector ISA of the CPU kernel: "avx512", "avx2" or "baseline" (DPSM_CPU_ISA picks another the CPU has). */
  cpuIsa: string;
  /** the CPU kernel's arithmetic revision (native/kernels/dpsm_kernels.h): results differ in the last bit across it */
  cpuKernelRevision: number;
  /** OpenBLAS's kernel for this CPU (OPENBLAS_CORETYPE overrides it); "" when the BLAS is not OpenBLAS. */
  blasCore: string;
  /** the vector ISA of ATen's own CPU kernels: "default", "avx2" or "avx512" (ATEN_CPU_CAPABILITY lowers it) */
  atenCpuCapability: string;
  /** libtorch's own description of its parallel backend. */
  parallel: string;
  /**
   * the process-group backends data-parallel training can use: "gloo", "gloo,nccl" (a CUDA model takes NCCL), or
   * "" for a build that trains in one process
   */
  distributed: string;
  /** the CPU's model name, as the OS reports it */
  cpuModel: string;
}

export interface NativeForwardResult {
  loss: number | Float32Array;
  alpha: number;
  count: number;
  grad?: Float32Array;
  stats?: { nll: Float32Array; pY: Float32Array; maxP: Float32Array; hit: Uint8Array; sqNorm: Float32Array };
}

/** Packed sequences as the native side takes them. */
export interface NativeSequences {
  tokens: Int32Array;
  lengths: Int32Array;
  contextLength: number;
}

/** Encoder–decoder examples as the native side takes them (lib/data/summarization.ts packs them). */
export interface NativeExamples {
  sourceTokens: Int32Array;
  sourceLengths: Int32Array;
  targetTokens: Int32Array;
  targetLengths: Int32Array;
  maxSource: number;
  maxTarget: number;
}
export type NativeData = NativeSequences | NativeExamples;

/** One equal-width bin of top-1 confidence (docs/metrics.md). */
export interface ReliabilityBin {
  lower: number;
  upper: number;
  count: number;
  /** mean top-1 probability in the bin (NaN when empty) */
  confidence: number;
  /** share of the bin's tokens whose top-1 prediction is the target (NaN when empty) */
  accuracy: number;
}

/** Metrics over the non-ignored tokens of a split (docs/metrics.md), computed by the native evaluator. */
export interface EvalMetrics {
  temperature: number;
  tokens: number;
  nll: number;
  ppl: number;
  accuracy: number;
  brier: number;
  spherical: number;
  ece10: number;
  ece100: number;
  /** ECE over 10 equal-mass bins of the tokens sorted by top-1 probability (docs/metrics.md) */
  adaptiveEce10: number;
  /** Murphy's decomposition of the top-1 Brier score over ECE-10's bins (docs/metrics.md) */
  brierDecomposition: BrierDecomposition;
  bins10: ReliabilityBin[];
  bins100: ReliabilityBin[];
}

/**
 * The top-1 Brier score, mean (max p − hit)², and its decomposition over ECE-10's bins: top1 = reliability −
 * resolution + uncertainty + withinVariance − 2·withinCovariance (Murphy 1973; the within-bin terms: Stephenson
 * et al. 2008), exactly.
 */
export interface BrierDecomposition {
  top1: number;
  /** Σ_b (n_b/N)(conf_b − acc_b)²: lower is better calibrated */
  reliability: number;
  /** Σ_b (n_b/N)(acc_b − acc)²: higher separates right from wrong better */
  resolution: number;
  /** acc·(1 − acc) */
  uncertainty: number;
  /** (1/N) Σ_b Σ_{i∈b} (f_i − conf_b)² */
  withinVariance: number;
  /** (1/N) Σ_b Σ_{i∈b} (f_i − conf_b)(o_i − acc_b) */
  withinCovariance: number;
}

// Every config object crosses as JSON text (the `json` arguments): the zod schemas that produce it own
// validation and defaults, and the native side reads each field by the name the schema gives it.
export interface NativeModel {
  /** the model's Hugging Face config.json, as JSON text */
  readonly config: string;
  readonly parameterCount: number;
  readonly device: string;
  /** whether dispose() freed the weights (every later use throws) */
  readonly disposed: boolean;
  /** the weights' bytes, as reported to V8 as external memory (0 once disposed or collected) */
  readonly externalBytes: number;
  /** frees the weights now (idempotent); refused while a job runs on the model */
  dispose(): void;
  /** json: { maxShardBytes? } */
  save(dir: string, json: string): void;
  /** save, on libuv's pool */
  saveAsync(dir: string, json: string): Promise<void>;
  /**
   * Logits [batch, length, V] (causal) or [batch, decoderLength, V] (encoder–decoder: the mask and decoder inputs
   * are required), in evaluation mode.
   */
  logits(inputs: {
    ids: Int32Array;
    batch: number;
    length: number;
    mask?: Int32Array;
    decoderIds?: Int32Array;
    decoderLength?: number;
  }): Float32Array;
  /**
   * One sequence per row: a causal model continues each row (json: { maxNewTokens, topK, temperature, seed }) and
   * returns the new tokens; an encoder–decoder (the mask is required; json: the generation options) returns each
   * summary, its decoder start token first.
   */
  generate(
    inputs: { ids: Int32Array; batch: number; length: number; mask?: Int32Array },
    json: string,
  ): Promise<Int32Array[]>;
  evaluate(data: NativeData, json: string): Promise<EvalMetrics[]>;
  fitTemperature(
    data: NativeData,
    json: string,
  ): Promise<{ temperature: number; grid: { temperature: number; nll: number }[] }>;
}

export type NativeProgress =
  | {
      type: "step";
      step: number;
      loss: number;
      alpha: number;
      lr: number;
      gradNorm: number;
      /** mean CE and Brier scores of the step's tokens, whatever the objective (diagnostics) */
      ce: number;
      brier: number;
      /** ‖Δθ‖ / ‖θ‖ of the step's AdamW update; absent on the steps that do not measure it (updateRatioEvery) */
      updateRatio?: number;
      stepMs: number;
      tokensPerSecond: number;
      tokensSeen: number;
      elapsedSeconds: number;
      peakMemoryBytes: number;
      noisy: boolean;
      /** joules per step since the previous record, where a meter can be read (added by the Trainer: lib/energy.ts) */
      gpuJoulesPerStep?: number;
      cpuJoulesPerStep?: number;
    }
  | {
      type: "eval";
      step: number;
      metrics: EvalMetrics;
      improved: boolean;
      bestStep: number;
      elapsedSeconds: number;
      peakMemoryBytes: number;
    }
  | { type: "checkpoint"; step: number; path: string; best: boolean }
  /** a resume that fell back to another checkpoint, or found one damaged (also a process warning) */
  | { type: "warning"; step: number; path: string; message: string }
  | {
      type: "done";
      step: number;
      reason: "max_steps" | "early_stopping" | "aborted";
      elapsedSeconds: number;
      tokensSeen: number;
      bestStep: number;
      bestNll: number;
      peakMemoryBytes: number;
    };

export interface NativeTrainer {
  readonly fingerprint: string;
  fit(onProgress: (p: NativeProgress) => void): Promise<void>;
  /** json: { losses: loss documents, rounds, warmupRounds } → ms per round × loss */
  timeSteps(json: string): Promise<number[][]>;
  abort(): void;
}

/** A text encoder for metrics (native/addon/encoder_binding.cpp); its jobs run on libuv's pool, one at a time. */
export interface NativeTextEncoder {
  readonly numLayers: number;
  /** tokens one text may hold, specials included */
  readonly maxTokens: number;
  readonly device: string;
  /** texts as flat ids with offsets (n + 1, from 0) and one idf weight per id; json: { layer, batchSize, padId } */
  bertScore(
    texts: {
      candidateIds: Int32Array;
      candidateOffsets: Int32Array;
      candidateIdf: Float32Array;
      referenceIds: Int32Array;
      referenceOffsets: Int32Array;
      referenceIdf: Float32Array;
    },
    json: string,
  ): Promise<{ precision: Float64Array; recall: Float64Array; f1: Float64Array }>;
  /** the states after `layer` [batch, length, d] */
  hiddenStates(
    inputs: { ids: Int32Array; mask: Int32Array; batch: number; length: number },
    layer: number,
  ): Promise<Float32Array>;
  dispose(): void;
}

export interface NativeAddon {
  /** CUDA device `index`'s energy counter from NVML (mJ since the driver loaded), or why it cannot be read */
  gpuEnergy(index: number): { millijoules?: number; error?: string };
  /** json: { config: <HF config.json>, weights: <model.safetensors>, device }, loaded on libuv's pool */
  loadTextEncoder(json: string): Promise<NativeTextEncoder>;
  /** json: { config: <HF config.json>, device, seed } or { config, device, weights: <model.safetensors> } */
  Model: new (json: string) => NativeModel;
  /** new Model(json), built on libuv's pool */
  createModel(json: string): Promise<NativeModel>;
  /** a trainer over `model`, its optimiser state built on libuv's pool (the data is copied first) */
  createTrainer(model: NativeModel, json: string, train: NativeData, valid: NativeData): Promise<NativeTrainer>;
  buildInfo(): BuildInfo;
  setNumThreads(n: number): void;
  /** json: { loss, vocabSize, step, grad, inPlace, stats } */
  lossForward(logits: Float32Array, targets: Int32Array, json: string): NativeForwardResult;
  alphaAt(lossJson: string, step: number): number;
}

/** The package root (one level above lib/ or dist/). */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

let addon: NativeAddon | undefined;
let loaded: LoadedCore<NativeAddon> | undefined;

/** The loaded native addon (loaded once, on first use; lib/core-select.ts picks the core that fits the torch). */
export function native(): NativeAddon {
  if (addon) return addon;
  loaded = loadCore<NativeAddon>();
  addon = loaded.addon;
  // a CUDA host that quietly trained on the CPU would be the worse surprise
  for (const s of loaded.skipped.filter((x) => /-cu\d+$/.test(x.core.flavour))) {
    process.emitWarning(
      `the ${s.core.flavour} core did not load (${s.error.split("\n")[0]}); using ${loaded.core.flavour} (${loaded.core.file})`,
      { code: "DPSM_CUDA_CORE_SKIPPED" },
    );
  }
  return addon;
}

/** Which core file was loaded, for which PyTorch, and the cores passed over on the way (loads it if needed). */
export function loadedCore(): Omit<LoadedCore<NativeAddon>, "addon"> {
  native();
  const { core, torch, skipped } = loaded!;
  return { core, torch, skipped };
}

/** Which libtorch the core runs on, whether CUDA is there, how many devices and threads. */
/**
 * What differs between two environments in what decides a CPU run's numbers bit for bit
 * (docs/design/reproducibility.md): libtorch, thread count, OpenBLAS kernel, loss kernel. Fields an older record
 * lacks are skipped.
 */
export function numericalDifferences(before: Partial<BuildInfo>, now: BuildInfo): string[] {
  const fields = ["torchVersion", "threads", "blasCore", "cpuIsa", "cpuKernelRevision"] as const;
  return fields
    .filter((f) => before[f] !== undefined && before[f] !== now[f])
    .map((f) => `${f} ${JSON.stringify(before[f])} → ${JSON.stringify(now[f])}`);
}

export function buildInfo(): BuildInfo {
  return { ...native().buildInfo(), cpuModel: os.cpus()[0]?.model ?? "" };
}

/** Sets libtorch's intra-op thread count (the default is the machine's cores). */
export function setNumThreads(threads: number): void {
  if (!Number.isInteger(threads) || threads < 1) {
    throw new RangeError(`setNumThreads: threads: expected an integer >= 1, got ${String(threads)}`);
  }
  native().setNumThreads(threads);
}
