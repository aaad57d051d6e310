// Experiment 1 from code rather than from the command line (`npx dpsm-native exp1 --help`): a profile's
// settings with a few overridden, the runs (skipped when finished, resumed when interrupted), the report.
//
//   npx tsx examples/exp1-language-modelling.ts runs/exp1-example
import path from "node:path";

import { buildInfo, exp1, resolveConfig, runExperiment, writeReport } from "../lib/index.ts";

const out = path.resolve(process.argv[2] ?? "runs/exp1-example");
const config = resolveConfig(exp1, "quick", {
  maxSteps: 60,
  evalEvery: 20,
  variations: ["ce", "brier", "dpsm-linear"],
  labelNoise: false,
});
const run = await runExperiment(exp1, config, out);
const { report } = await writeReport(exp1, config, run, out, buildInfo());
console.log(`${run.results.length} runs reported in ${report}`);
