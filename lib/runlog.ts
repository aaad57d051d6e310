// The JSONL run log of a training run (<runDir>/train.jsonl): one JSON record per line, appended by every
// session of the run — a resumed run adds a new "start" record and repeats the steps after its checkpoint.
// The Trainer writes it; experiments read it back for curves, losses and efficiency over all sessions.
import fs from "node:fs";
import path from "node:path";

import type { BuildInfo, EvalMetrics, NativeProgress } from "./native.ts";
import type { TrainerDocument } from "./trainer-options.ts";
import { median } from "./metrics/stats.ts";
import { checkFilePath, ensureFolder } from "./io/paths.ts";

/** A session began: what it ran with (the fingerprint decides whether a checkpoint may be resumed). */
export interface StartRecord {
  type: "start";
  time: string;
  fingerprint: string;
  config: TrainerDocument;
  build: BuildInfo;
}
export type StepRecord = Extract<NativeProgress, { type: "step" }>;
/** An evaluation; the 100-bin reliability table is left out (the 10-bin one stays) to keep lines short. */
export type EvalRecord = Omit<Extract<NativeProgress, { type: "eval" }>, "metrics"> & {
  metrics: Omit<EvalMetrics, "bins100">;
};
export type CheckpointRecord = Extract<NativeProgress, { type: "checkpoint" }>;
export type DoneRecord = Extract<NativeProgress, { type: "done" }>;
/** A resume fell back to another checkpoint, or found one damaged. */
export type WarningRecord = Extract<NativeProgress, { type: "warning" }>;
export type RunLogRecord = StartRecord | StepRecord | EvalRecord | CheckpointRecord | DoneRecord | WarningRecord;

/** Appends records to a run log; one writer per session. */
export class RunLogWriter {
  readonly file: string;
  readonly #fd: number;

  constructor(file: string) {
    this.file = file;
    ensureFolder(path.dirname(checkFilePath(file, "run log")), "run log");
    this.#fd = fs.openSync(file, "a+");
    // A session killed mid-write leaves a last line without its newline; end it, so this session's first
    // record starts a line of its own instead of being glued to the broken one.
    const size = fs.fstatSync(this.#fd).size;
    if (size > 0) {
      const last = Buffer.alloc(1);
      fs.readSync(this.#fd, last, 0, 1, size - 1);
      if (last[0] !== 0x0a) fs.writeSync(this.#fd, "\n");
    }
  }

  start(record: Omit<StartRecord, "type">): void {
    this.#write({ type: "start", ...record });
  }

  /** A progress record of the native loop, as it came. */
  progress(p: NativeProgress): void {
    if (p.type === "eval") {
      const { bins100: _dropped, ...metrics } = p.metrics;
      this.#write({ ...p, metrics });
    } else {
      this.#write(p);
    }
  }

  close(): void {
    fs.closeSync(this.#fd);
  }

  #write(record: RunLogRecord): void {
    fs.writeSync(this.#fd, `${JSON.stringify(record)}\n`);
  }
}

/** A run log read back: steps and evaluations once per step (the last record wins), in step order. */
export interface RunLog {
  starts: StartRecord[];
  steps: StepRecord[];
  evals: EvalRecord[];
  checkpoints: CheckpointRecord[];
  /** the "done" record of each session that ended (aborted ones included) */
  done: DoneRecord[];
  /** checkpoint fallbacks and damage found on resume */
  warnings: WarningRecord[];
  /** lines that were not a record: cut short by a kill (every later session starts on a new line) */
  unreadableLines: number;
}

/** Reads `file` (an absent file is an empty log). */
export function readRunLog(file: string): RunLog {
  const log: RunLog = { starts: [], steps: [], evals: [], checkpoints: [], done: [], warnings: [], unreadableLines: 0 };
  if (!fs.existsSync(file)) return log;
  const steps = new Map<number, StepRecord>();
  const evals = new Map<number, EvalRecord>();
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    if (!line.trim()) continue;
    let r: RunLogRecord;
    try {
      r = JSON.parse(line) as RunLogRecord;
    } catch {
      log.unreadableLines++;
      continue;
    }
    switch (r?.type) {
      case "start":
        log.starts.push(r);
        break;
      case "step":
        steps.set(r.step, r);
        break;
      case "eval":
        evals.set(r.step, r);
        break;
      case "checkpoint":
        log.checkpoints.push(r);
        break;
      case "done":
        log.done.push(r);
        break;
      case "warning":
        log.warnings.push(r);
        break;
      default:
        log.unreadableLines++;
    }
  }
  log.steps = [...steps.values()].sort((a, b) => a.step - b.step);
  log.evals = [...evals.values()].sort((a, b) => a.step - b.step);
  return log;
}

/** Over every session of the run: median time per step and tokens per second, peak memory (-1: unknown). */
export function runEfficiency(log: RunLog): { stepMs: number; tokensPerSecond: number; peakMemoryBytes: number } {
  return {
    stepMs: median(log.steps.map((s) => s.stepMs)),
    tokensPerSecond: median(log.steps.map((s) => s.tokensPerSecond)),
    peakMemoryBytes: log.steps.reduce((m, s) => Math.max(m, s.peakMemoryBytes), -1),
  };
}

export interface LossPoint {
  step: number;
  loss: number;
  alpha: number;
  elapsedSeconds: number;
  gradNorm: number;
  /** the step's diagnostics (absent in logs written before they existed) */
  ce?: number;
  brier?: number;
  updateRatio?: number;
}

/** The training loss, α and the step diagnostics at about `maxPoints` evenly spaced steps, the last always included. */
export function lossCurve(log: RunLog, maxPoints = 300): LossPoint[] {
  const every = Math.max(1, Math.ceil(log.steps.length / maxPoints));
  return log.steps
    .filter((_, i) => i % every === 0 || i === log.steps.length - 1)
    .map(({ step, loss, alpha, elapsedSeconds, gradNorm, ce, brier, updateRatio }) => ({
      step,
      loss,
      alpha,
      elapsedSeconds,
      gradNorm,
      ce,
      brier,
      updateRatio,
    }));
}
