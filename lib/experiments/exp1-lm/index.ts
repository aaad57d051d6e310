// Experiment 1 ("exp-1-language-modelling-scaling"): GPT-2 trained from scratch on WikiText with CE, Brier and
// DPSM (linear, cosine; fixed α 0.25, 0.5, 0.75 as an ablation), against label smoothing, focal loss and temperature-scaled CE; the
// report states per DPSM variation whether each success criterion of the seed is met.
import { checkDataDir } from "../../data/ensure.ts";
import type { ExperimentSpec } from "../framework/spec.ts";
import { EXP1_ANALYSIS, type Metric } from "./analysis.ts";
import { Exp1SettingsSchema, PROFILES } from "./config.ts";
import { exp1AuditPlans, type Exp1Job, exp1Jobs } from "./jobs.ts";
import { exp1Report } from "./report.ts";
import { type Exp1Data, prepareExp1Data } from "./data.ts";
import { type Exp1Result, runExp1Job } from "./run-job.ts";

export const exp1: ExperimentSpec<typeof Exp1SettingsSchema, Exp1Job, Exp1Result, Exp1Data, Metric> = {
  name: "exp1",
  title: "Experiment 1 — DPSM for GPT-2 language modelling",
  summary:
    "GPT-2 from scratch on WikiText with CE, Brier and DPSM; report.md with tables, curves, reliability diagrams, " +
    "samples and a verdict per success criterion. Ctrl-C, then the same command again, continues where it stopped.",
  schema: Exp1SettingsSchema,
  profiles: PROFILES,
  unpinned: ["threads"],
  // The Trainer's own names since the experiments nest its settings.
  renamedSettings: { adamEps: "eps" },
  check: (c) => checkDataDir("exp1", c.dataDir),
  jobs: exp1Jobs,
  audit: exp1AuditPlans,
  prepare: prepareExp1Data,
  runJob: runExp1Job,
  describeResult: (r) =>
    `test PPL ${r.test.ppl.toFixed(2)}, ECE-10 ${r.test.ece10.toFixed(4)}, ` +
    `${Math.round(r.fit.tokensPerSecond).toLocaleString("en-US")} tokens/s, ${r.fit.elapsedSeconds.toFixed(0)} s`,
  analysis: EXP1_ANALYSIS,
  report: exp1Report,
};

export { exp1Jobs, type Exp1Job } from "./jobs.ts";
export { type Exp1Config, type Exp1Settings, type Exp1SettingsInput, Exp1SettingsSchema, PROFILES } from "./config.ts";
export type { Exp1Data } from "./data.ts";
export type { Exp1Result } from "./run-job.ts";
