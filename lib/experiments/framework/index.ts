// The experiment framework: an experiment is a spec (./spec.ts); these run it, aggregate it and report it.
export { aggregate, type Crossing, firstCrossing, meanOfAll, selectedValue } from "./aggregate.ts";
export { runExperimentCli, parseCommandLine } from "./cli.ts";
export { defaultProfile, mergeSettings, pinConfig, profileNames, renameSettings, resolveConfig } from "./config.ts";
export { helpText, parseExperimentArgs, settingFlags, UsageError, type SettingFlag } from "./flags.ts";
export { type EvaluationSet, evaluationSetsLine, isCapped } from "./eval-sets.ts";
export { fitJob } from "./fit-job.ts";
export { type FitRecord, fitRecord } from "./fit-record.ts";
export { lossForVariation, type VariationLoss, warmupStepsOf } from "./losses.ts";
export { checkJobs, defaultGroupName, groupId, groupKeyOf, jobId } from "./keys.ts";
export { allOf, anyOf, decide, describeEvidence, evidence, TestFamily } from "./decision.ts";
export {
  comparisons,
  comparisonsTable,
  convergenceTable,
  curveChart,
  efficiencyTable,
  environmentNote,
  meanCurve,
  metricBars,
  metricsTable,
  verdictTable,
  writeReport,
} from "./report.ts";
export { runExperiment, type ExperimentRun, type RunOptions } from "./runner.ts";
export type * from "./spec.ts";
export { MACHINE_SETTINGS, TRAINER_SETTING_KEYS, trainerSettings } from "./trainer-settings.ts";
export {
  calibrationCriterion,
  type Criterion,
  efficiencyCriterion,
  groupLookup,
  judgeVariation,
  sharedSeeds,
  tallyCriterion,
  verdictSection,
  Verdicts,
  verdictTests,
} from "./verdicts.ts";
