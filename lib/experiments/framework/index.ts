// The experiment framework: an experiment is a spec (./spec.ts); these run it, aggregate it and report it.
export { aggregate, meanOfAll } from "./aggregate.ts";
export { runExperimentCli, parseCommandLine } from "./cli.ts";
export { defaultProfile, mergeSettings, pinConfig, profileNames, resolveConfig } from "./config.ts";
export { helpText, parseExperimentArgs, settingFlags, UsageError, type SettingFlag } from "./flags.ts";
export { checkJobs, defaultGroupName, groupId, groupKeyOf, jobId } from "./keys.ts";
export {
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
