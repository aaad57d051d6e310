// Experiment 2 ("exp-2-seq2seq-finetune-robustness"): encoder–decoders fine-tuned for summarisation with CE,
// Brier and DPSM (linear α warm-up over 10 % and 20 % of the steps) against temperature-scaled CE, evaluated on
// the test split and zero-shot on other sets, with summary-swap noise; the report states per DPSM variation
// whether each success criterion of the seed is met.
import { checkDataDir } from "../../data/ensure.ts";
import { readHfCheckpoint } from "../../models/checkpoint.ts";
import type { ExperimentSpec } from "../framework/spec.ts";
import { EXP2_ANALYSIS, type Metric } from "./analysis.ts";
import { Exp2SettingsSchema, PROFILES } from "./config.ts";
import { type Exp2Data, prepareExp2Data } from "./data.ts";
import { exp2AuditPlans, type Exp2Job, exp2Jobs } from "./jobs.ts";
import { checkPositions } from "./model.ts";
import { exp2Report } from "./report.ts";
import { describeExp2Result, type Exp2Result, runExp2Job } from "./run-job.ts";

export const exp2: ExperimentSpec<typeof Exp2SettingsSchema, Exp2Job, Exp2Result, Exp2Data, Metric> = {
  name: "exp2",
  title: "Experiment 2 — DPSM for summarisation fine-tuning",
  summary:
    "BART/PEGASUS fine-tuned with CE, Brier and DPSM; ROUGE, calibration, zero-shot transfer, summary-swap noise; " +
    "report.md with tables, figures, summaries side by side and a verdict per success criterion. Ctrl-C, then the " +
    "same command again, continues where it stopped.",
  schema: Exp2SettingsSchema,
  profiles: PROFILES,
  unpinned: ["threads"],
  // The Trainer's own names since the experiments nest its settings.
  renamedSettings: { validMaxExamples: "evalMaxSequences" },
  check: (c) => {
    checkDataDir("exp2", c.dataDir);
    checkPositions(c);
    // The BERTScore model's folder is looked at before anything runs; its tokenizer and weights when it loads.
    if (c.bertscore.model !== undefined) readHfCheckpoint(c.bertscore.model, "bertscore.model");
  },
  jobs: exp2Jobs,
  audit: exp2AuditPlans,
  prepare: prepareExp2Data,
  runJob: runExp2Job,
  describeResult: describeExp2Result,
  analysis: EXP2_ANALYSIS,
  report: exp2Report,
};

export { exp2Jobs, type Exp2Job } from "./jobs.ts";
export { type Exp2Config, type Exp2Settings, type Exp2SettingsInput, Exp2SettingsSchema, PROFILES } from "./config.ts";
export type { Exp2Data } from "./data.ts";
export type { Exp2Result } from "./run-job.ts";
