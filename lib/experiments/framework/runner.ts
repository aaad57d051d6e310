// Runs an experiment's jobs into one folder: out/config.json pins the settings; each job runs in
// out/runs/<job id>/ and ends with its result.json. A job with a result.json is skipped, so running the same
// command again finishes an interrupted experiment without redoing work; a job interrupted mid-training has a
// checkpoint and resumes from it. Under `dpsm-native launch` every rank runs the same jobs in the same order and
// trains them together; rank 0 alone pins the config, audits, evaluates and writes results.
import fs from "node:fs";
import path from "node:path";

import type { z } from "zod";

import { distributedFromEnv } from "../../distributed.ts";
import { writeJsonAtomic } from "../../io/atomic.ts";
import { ensureFolder } from "../../io/paths.ts";
import type { StepEvent } from "../../trainer.ts";
import { pinConfig } from "./config.ts";
import { type AuditResult, runAudits } from "./efficiency-audit.ts";
import { checkJobs, jobId } from "./keys.ts";
import type { ConfigOf, ExperimentSpec, Finished, Job } from "./spec.ts";

// The Trainer's resumable checkpoint: a job folder with one was interrupted and continues from there.
const CHECKPOINT = path.join("last", "training_state.safetensors");

export interface RunOptions<J extends Job = Job> {
  /** stop at the next step boundary with a checkpoint; jobs not started stay for the next run */
  signal?: AbortSignal;
  /** progress lines (default: stderr) */
  say?: (line: string) => void;
  /** the Trainer's progress display ("auto": a bar on a terminal) */
  progress?: boolean | "auto";
  /** collect the finished jobs only; run nothing */
  onlyFinished?: boolean;
  /** each training step of each job */
  onStep?: (job: J, step: StepEvent) => void;
}

export interface ExperimentRun<J, R, D> {
  jobs: J[];
  /** the finished jobs, in job order */
  results: Finished<R>[];
  data: D;
  /** the efficiency audits done */
  audits: AuditResult[];
}

/** Runs (or skips, or resumes) every job of `config` into `out`; see the top of this file. */
export async function runExperiment<S extends z.ZodObject, J extends Job, R extends object, D, M extends string>(
  spec: ExperimentSpec<S, J, R, D, M>,
  config: ConfigOf<S>,
  out: string,
  options: RunOptions<J> = {},
): Promise<ExperimentRun<J, R, D>> {
  const say = options.say ?? ((line: string) => process.stderr.write(`${line}\n`));
  spec.check?.(config);
  const jobs = spec.jobs(config);
  checkJobs(jobs);
  const { rank, worldSize } = distributedFromEnv() ?? { rank: 0, worldSize: 1 };
  // Checked as the Trainer checks its folders: under /proc a recursive mkdir never returns.
  ensureFolder(path.join(out, "runs"), "out");
  if (rank === 0) pinConfig(spec, config, out);

  const ranks = worldSize > 1 ? ` on ${worldSize} ranks` : "";
  say(`${spec.name} (${config.profile}): ${jobs.length} runs into ${out}${ranks}; preparing data…`);
  const data = await spec.prepare(config, say);
  // First, while nothing of this experiment has run yet: a minute or two, and its numbers come early. It times
  // one process's steps: rank 0's, while the others wait for the first run.
  const audits = await runAudits(rank === 0 ? (spec.audit?.(config, data) ?? []) : [], out, {
    say,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.onlyFinished ? { onlyFinished: true } : {}),
  });
  const results: Finished<R>[] = [];
  for (const [i, job] of jobs.entries()) {
    const id = jobId(job.key);
    const tag = `[${i + 1}/${jobs.length}] ${id}`;
    const dir = path.join(out, "runs", id);
    const resultFile = path.join(dir, "result.json");
    if (fs.existsSync(resultFile)) {
      say(`${tag}: done before, skipped`);
      results.push(JSON.parse(fs.readFileSync(resultFile, "utf8")) as Finished<R>);
      continue;
    }
    if (options.signal?.aborted || options.onlyFinished) continue;
    say(`${tag}: ${fs.existsSync(path.join(dir, CHECKPOINT)) ? "resuming" : "training"}`);
    const onStep = options.onStep;
    const result = await spec.runJob({
      config,
      job,
      dir,
      data,
      progress: options.progress ?? "auto",
      rank,
      worldSize,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(onStep ? { onStep: (s: StepEvent) => onStep(job, s) } : {}),
    });
    if (result === undefined) break; // interrupted: checkpointed, picked up by the next run
    if (result === null) continue; // a rank other than 0: trained; rank 0 evaluates and writes the result
    const finished = { key: job.key, ...result, finishedAt: new Date().toISOString() } as Finished<R>;
    writeJsonAtomic(resultFile, finished);
    say(`${tag}: ${spec.describeResult(result)}`);
    // As a later run will read it back (a NaN becomes null): a report is the same whenever its jobs ran.
    results.push(JSON.parse(JSON.stringify(finished)) as Finished<R>);
  }
  return { jobs, results, data, audits };
}
