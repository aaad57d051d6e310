// Experiment 2 from code rather than from the command line (`npx dpsm-native exp2 --help`): the quick profile
// shortened — a tiny BART pretrained on WikiText-2 denoising, fine-tuned on DialogSum with CE and DPSM, scored on
// DialogSum's test split and zero-shot on XSum — then the report. Finished runs are skipped and an interrupted
// one resumes when it is run again.
//
//   npx tsx examples/exp2-summarization.ts runs/exp2-example
import path from "node:path";

import { buildInfo, exp2, resolveConfig, runExperiment, writeReport } from "../lib/index.ts";

const out = path.resolve(process.argv[2] ?? "runs/exp2-example");
const config = resolveConfig(exp2, "quick", {
  pretrain: { maxSteps: 100 },
  maxSteps: 120,
  evalEvery: 40,
  testMaxExamples: 50,
  transferMaxExamples: 50,
  variations: ["ce", "brier", "dpsm-warm10"],
  summarySwap: false,
});
const run = await runExperiment(exp2, config, out);
const { report } = await writeReport(exp2, config, run, out, buildInfo());
console.log(`${run.results.length} runs reported in ${report}`);
