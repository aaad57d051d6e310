// The experiments at a size a test affords: experiment 1's small-run settings, and the context the runner gives a
// job, for calling a job's option builders without running it.
import type { OodName } from "../../lib/data/ood.ts";
import type { Exp1SettingsInput } from "../../lib/experiments/exp1-lm/config.ts";
import type { Exp2SettingsInput } from "../../lib/experiments/exp2-summarization/config.ts";
import type { SettingsOverride } from "../../lib/experiments/framework/config.ts";
import type { Job, JobContext } from "../../lib/experiments/framework/spec.ts";

/**
 * Experiment 1's small runs on WikiText-2: a few steps of 8 sequences of 33 tokens, capped evaluations, no
 * out-of-domain set, audit or label noise (a test adds what it checks).
 */
export const EXP1_SMALL = {
  contextLength: 33,
  maxSteps: 4,
  lrWarmupSteps: 1,
  evalEvery: 2,
  evalMaxSequences: 2,
  testMaxSequences: 3,
  oodMaxSequences: 2,
  ood: [] as OodName[],
  efficiencyAudit: false,
  labelNoise: false,
  sample: { maxNewTokens: 3 },
} satisfies SettingsOverride<Exp1SettingsInput>;

/**
 * Experiment 2's small runs on DialogSum: 3 steps of pretraining and of fine-tuning in batches of 4 from 48
 * examples, capped evaluations, 5 test and 4 transfer examples, short summaries (a test adds what it checks).
 */
export const EXP2_SMALL = {
  pretrain: { maxSteps: 3, evalEvery: 3, evalMaxSequences: 4, batchSize: 4 },
  trainMaxExamples: 48,
  batchSize: 4,
  maxSteps: 3,
  lrWarmupSteps: 1,
  evalEvery: 3,
  evalMaxSequences: 6,
  testMaxExamples: 5,
  transferMaxExamples: 4,
  rougeBootstrap: 50,
  // The audit's plumbing (two timed rounds), not a measurement.
  efficiencyAudit: { rounds: 2, warmupRounds: 0 },
  generation: { maxLength: 12 },
} satisfies SettingsOverride<Exp2SettingsInput>;

/** The context of `job` as the runner gives it in a process of its own (rank 0 of 1), in no real folder. */
export function jobContext<C, J extends Job, D>(config: C, job: J, data: D): JobContext<C, J, D> {
  return { config, job, dir: "unused", data, progress: false, rank: 0, worldSize: 1 };
}
