// A job's training run, the same for every experiment: a Trainer whose folder is the job's, its steps reported to
// the runner, stopped by the runner's signal at a step boundary (with a checkpoint the next invocation resumes).
import { Trainer, type FitResult, type TrainerOptions } from "../../trainer.ts";
import type { Job, JobContext } from "./spec.ts";

/**
 * Trains a Trainer of `options` in the job's folder (its runDir) with the runner's progress display. The fit's
 * result on rank 0; null on the other ranks once trained (rank 0 alone evaluates and reports); undefined when
 * interrupted, before the run or during it.
 */
export async function fitJob(
  ctx: JobContext<unknown, Job, unknown>,
  options: Omit<TrainerOptions, "runDir" | "progress">,
): Promise<FitResult | null | undefined> {
  const trainer = new Trainer({ ...options, runDir: ctx.dir, progress: ctx.progress });
  if (ctx.onStep) trainer.on("step", ctx.onStep);
  // Interrupted before this run started: nothing to do until the next invocation.
  if (ctx.signal?.aborted) return undefined;
  const fit = await trainer.fit(ctx.signal ? { signal: ctx.signal } : {});
  if (fit.reason === "aborted") return undefined;
  return ctx.rank === 0 ? fit : null;
}
