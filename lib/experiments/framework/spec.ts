// What an experiment is to the framework: a spec. It states its settings (a zod schema with named profiles),
// the jobs those settings imply, how one job runs, what a finished job contributes to the aggregates, and the
// report's own sections. The framework does the rest: the command line, pinning the settings to the output
// folder, skipping, resuming and interrupting jobs, aggregating over seeds, and writing the report.
import type { z } from "zod";

import type { MeanStd, PairedTTest } from "../../metrics/stats.ts";
import type { Evidence, VerdictStatus } from "./decision.ts";
import type { AuditPlan, AuditResult } from "./efficiency-audit.ts";
import type { BuildInfo } from "../../native.ts";
import type { StepEvent } from "../../trainer.ts";

/**
 * What tells one job from another. Jobs that differ only in `seed` form a group: the unit of the report's
 * rows, of mean ± std and of paired tests.
 */
export interface JobKey {
  /** the model trained, e.g. "tiny" */
  model: string;
  /** the training variation (loss), e.g. "dpsm-linear" */
  variation: string;
  /** the conditions it trains under, e.g. "clean" or "label-noise" */
  setting: string;
  seed: number;
  /** further settings that tell runs of one variation apart, e.g. { warmup: 0.05 } for a warm-up sweep */
  params?: Readonly<Record<string, number>>;
}
export type GroupKey = Omit<JobKey, "seed">;

/** A job: its key plus whatever the spec needs to run it. */
export interface Job {
  readonly key: JobKey;
}

/** A finished job's result as stored in its result.json: the spec's result with the key and a time stamp. */
export type Finished<R> = R & { key: JobKey; finishedAt: string };

/** The resolved settings of an experiment: the schema's output and the profile they started from. */
export type ConfigOf<S extends z.ZodObject> = z.output<S> & { profile: string };

/** A validation curve point: the step, the wall-clock there, and the metrics evaluated. */
export interface CurvePoint {
  step: number;
  elapsedSeconds: number;
  [metric: string]: number;
}

/** A run's cost, over every session of the run. */
export interface Efficiency {
  stepMs: number;
  tokensPerSecond: number;
  /** CUDA: peak allocated bytes; CPU: peak resident set; -1: unknown */
  peakMemoryBytes: number;
  /** GPU (NVML) or CPU (RAPL) joules per training step; absent where no meter could be read */
  energyJoulesPerStep?: number;
}

export interface MetricSpec<M extends string = string> {
  name: M;
  /** column header, e.g. "ECE-10" */
  label: string;
  /** decimals shown */
  digits: number;
  higherIsBetter?: boolean;
}

/**
 * One row's worth of numbers from one finished job. A job yields one observation for itself and may yield
 * more for post-hoc variations of it (e.g. the same model with temperature scaling), each under its own key.
 */
export interface Observation<M extends string = string, R = unknown> {
  key: JobKey;
  /** the main evaluation (e.g. the test split) */
  metrics: Record<M, number>;
  /** further evaluation sets (e.g. out-of-domain), by name */
  sets?: Partial<Record<string, Record<M, number>>>;
  /** validation during training; convergence is measured on it */
  curve?: readonly CurvePoint[];
  /**
   * the step of the evaluation whose checkpoint `metrics` come from (e.g. the best validation one); a convergence
   * target is a share of that evaluation's value (the last evaluation's when absent)
   */
  selectedStep?: number;
  /** what the curve's time is: steps × the audit's step time, or the run's own clock (set by the aggregation) */
  clock?: "audited" | "run";
  efficiency?: Efficiency;
  /** other per-seed numbers to report as mean ± std (e.g. a fitted temperature) */
  extra?: Record<string, number>;
  /** the finished job it came from */
  source: Finished<R>;
}

/** A group of observations (one key, every seed) and what follows from their numbers. */
export interface GroupSummary<M extends string = string, R = unknown> {
  key: GroupKey;
  /** the row's display name */
  name: string;
  /** "audited" when every seed's curve time is steps × the audit's step time, else the runs' own clocks */
  clock: "audited" | "run";
  seeds: number[];
  metrics: Record<M, MeanStd>;
  /** per seed, aligned with `seeds` */
  perSeed: Record<M, number[]>;
  sets: Partial<Record<string, { metrics: Record<M, MeanStd>; perSeed: Record<M, number[]> }>>;
  /** paired t-tests (this group − the reference variation) over the seeds both have, by reference variation */
  versus: Partial<Record<string, Partial<Record<M, PairedTTest>>>>;
  /**
   * where the validation curve reaches the convergence target, per seed (null: never): step and time interpolated
   * between the two evaluations that bracket the crossing, and those evaluations' steps (aggregate.ts firstCrossing)
   */
  convergence?: {
    steps: (number | null)[];
    seconds: (number | null)[];
    brackets: ([number, number] | null)[];
  };
  efficiency?: { stepMs: MeanStd; tokensPerSecond: MeanStd; peakMemoryMB: MeanStd; energyJoulesPerStep: MeanStd };
  extra: Partial<Record<string, MeanStd>>;
  /** sorted by seed */
  observations: Observation<M, R>[];
}

export interface AnalysisSpec<M extends string, R> {
  metrics: readonly MetricSpec<M>[];
  /** the observations a finished job contributes */
  observe(result: Finished<R>): Omit<Observation<M, R>, "source">[];
  /** variations every group is tested against, seed by seed, within its model and setting */
  references: readonly string[];
  /**
   * Convergence: where `metric` first reaches `share` of the reference variation's selected value (same model,
   * setting and seed; the evaluation its final metrics' checkpoint was selected at), interpolated between evaluations.
   */
  convergence?: { reference: string; metric: M; share: number };
  /** a group's display name (default: the variation, then its params) */
  name?(key: GroupKey): string;
}

/** What a job's run gets. */
export interface JobContext<C, J extends Job, D> {
  config: C;
  job: J;
  /** the job's own folder (checkpoints, logs); the framework writes result.json there */
  dir: string;
  /** what `prepare` returned, shared by every job */
  data: D;
  signal?: AbortSignal;
  /** the Trainer's progress display */
  progress: boolean | "auto";
  onStep?: (step: StepEvent) => void;
  /**
   * this process's rank under `dpsm-native launch` (0 alone): every rank trains, rank 0 alone evaluates and reports;
   * the others return null once trained
   */
  rank: number;
  /** the number of ranks training together (1 alone); settings' batches are global (lib/distributed.ts) */
  worldSize: number;
}

/** A criterion's outcome and the evidence it is decided from: framework/decision.ts. */
export type { Evidence, VerdictStatus };

export interface Verdict {
  criterion: string;
  status: VerdictStatus;
  /** the numbers beside the evidence (means, counts, where the data came from) */
  detail: string;
  /** the effects the status was decided from, each with its interval and threshold */
  evidence?: Evidence[];
}

export interface ReportContext<C, J extends Job, R, D, M extends string> {
  config: C;
  jobs: J[];
  results: Finished<R>[];
  groups: GroupSummary<M, R>[];
  data: D;
  /** the report's folder; figures go under figures/ */
  out: string;
  build: BuildInfo;
  /** the efficiency audits done (efficiency-audit.ts), per model */
  audits: AuditResult[];
}

/** The spec's part of report.md and results.json. */
export interface ReportBody {
  /** after "Generated … from the runs in this folder.": the software and hardware it ran on */
  environment: string;
  /** bullets of "What was run" */
  run: string[];
  /** bullets of "Definitions" (the framework adds its statistics) */
  definitions: string[];
  /** the rest of report.md, as Markdown lines */
  sections: string[];
  /** the verdicts, for results.json */
  verdicts: unknown;
}

export interface ExperimentSpec<
  S extends z.ZodObject = z.ZodObject,
  J extends Job = Job,
  R extends object = object,
  D = unknown,
  M extends string = string,
> {
  /** the command and the default output folder's prefix, e.g. "exp1" */
  name: string;
  /** the report's title */
  title: string;
  /** one line for --help */
  summary: string;
  /** the settings; flags and --help come from its fields and their descriptions */
  schema: S;
  /** named settings; the first is the default */
  profiles: Readonly<Record<string, z.input<S>>>;
  /** settings that do not change results (e.g. threads): not pinned to the output folder */
  unpinned?: readonly string[];
  /**
   * settings renamed since earlier versions pinned them, old name → new name: an output folder's config.json (or a
   * settings file) that names them the old way still reads
   */
  renamedSettings?: Readonly<Record<string, string>>;
  /**
   * checks of the settings that need files (e.g. a checkpoint's positions), run before out/config.json is pinned
   * (by the command line before any work, and by the runner); throws naming the setting
   */
  check?(config: ConfigOf<S>): void;
  jobs(config: ConfigOf<S>): J[];
  /** loads what every job needs once (e.g. tokenised data); `say` reports what it found */
  prepare(config: ConfigOf<S>, say: (line: string) => void): Promise<D>;
  /** the efficiency audits to run before the jobs (efficiency-audit.ts); none when absent */
  audit?(config: ConfigOf<S>, data: D): AuditPlan[];
  /** trains and evaluates one job; undefined when interrupted (it resumes on the next run) */
  /** the job's result; undefined when interrupted (checkpointed); null on a rank other than 0 once trained */
  runJob(ctx: JobContext<ConfigOf<S>, J, D>): Promise<R | null | undefined>;
  /** the progress line after a job finished, e.g. "test PPL 296.30, …" */
  describeResult(result: R): string;
  analysis: AnalysisSpec<M, R>;
  report(ctx: ReportContext<ConfigOf<S>, J, R, D, M>): Promise<ReportBody>;
}

// A spec of any types, for registries; each spec keeps its own types where it is defined. (`unknown` would
// not do: the spec's callbacks take its own types as parameters, which `unknown` cannot be assigned to.)
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyExperimentSpec = ExperimentSpec<any, any, any, any, any>;
