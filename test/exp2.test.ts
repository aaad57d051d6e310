// Experiment 2 end to end on real data at a size a test can afford: a tiny BART pretrained here on WikiText-2
// denoising, fine-tuned on DialogSum, evaluated on its test split and zero-shot on XSum; the report with its
// figures, summaries and verdicts; re-running skips finished runs; and a Hugging Face checkpoint folder with its
// own tokenizer in place of pretraining.
import fs from "node:fs";
import path from "node:path";

import test from "ava";

import { exp2, exp2Jobs } from "../lib/experiments/exp2-summarization/index.ts";
import { prepareExp2Data } from "../lib/experiments/exp2-summarization/data.ts";
import type { FinetuneJob } from "../lib/experiments/exp2-summarization/jobs.ts";
import type { Exp2Result, FinetuneResult } from "../lib/experiments/exp2-summarization/run-job.ts";
import { jobId, resolveConfig, runExperiment, writeReport } from "../lib/experiments/framework/index.ts";
import { decide } from "../lib/experiments/framework/decision.ts";
import type { Finished, Verdict } from "../lib/experiments/framework/spec.ts";
import { buildInfo } from "../lib/index.ts";
import { packageRoot } from "../lib/native.ts";
import { EXP2_SMALL } from "./helpers/experiments.ts";
import { saveTinyBart } from "./helpers/tiny-bart.ts";
import { tmpDir } from "./helpers/tmp.ts";

const ATTACK_VECTORS = path.join(packageRoot, "test", "fixtures", "attack", "wikitext2-w2v-50d.txt");

test("the quick profile's jobs: pretraining first, then every variation clean and the swap-noise runs", (t) => {
  const c = resolveConfig(exp2, "quick");
  const jobs = exp2Jobs(c);
  t.deepEqual(
    jobs.map((j) => jobId(j.key)),
    [
      "tiny/pretrain/denoising/seed0",
      "tiny/clean/ce/seed0",
      "tiny/clean/brier/seed0",
      "tiny/clean/dpsm-warm10/seed0",
      "tiny/clean/dpsm-warm20/seed0",
      "tiny/summary-swap/ce/seed0",
      "tiny/summary-swap/dpsm-warm10/seed0",
    ],
  );
  const loss = (v: string) => jobs.find((j) => j.kind === "finetune" && j.key.variation === v) as { loss: unknown };
  t.deepEqual(loss("dpsm-warm10").loss, {
    kind: "dpsm",
    schedule: "linear",
    warmupSteps: Math.round(0.1 * c.maxSteps),
  });
  t.deepEqual(loss("dpsm-warm20").loss, {
    kind: "dpsm",
    schedule: "linear",
    warmupSteps: Math.round(0.2 * c.maxSteps),
  });
  t.deepEqual(loss("brier").loss, { kind: "brier" });
  // With checkpoints there is nothing to pretrain.
  t.deepEqual(c.baselines, ["ce+tempscale"], "quick trains no baselines unless asked");
  // With checkpoints there is nothing to pretrain. The GPU profiles train label smoothing and focal beside CE.
  const full = exp2Jobs(resolveConfig(exp2, "full"));
  t.false(full.some((j) => j.kind === "pretrain"));
  // Per model and seed 5 variations (the seed's 4 and Shao et al.'s recipe), 2 baselines, 4 swap-noise runs; on the first model also the low-resource runs
  // (2 shares × 3 variations × 3 seeds) and the grid's 16 cells that are no main run (test/low-resource-grid.test.ts).
  t.is(full.length, 2 * 3 * (5 + 2 + 4) + 18 + 16);
  for (const profile of ["full", "xsum-base"]) {
    const jobs = exp2Jobs(resolveConfig(exp2, profile)) as FinetuneJob[];
    const model = jobs[0]!.key.model;
    const seed0 = jobs.filter((j) => j.key.seed === 0 && j.key.setting === "clean" && j.key.model === model);
    t.deepEqual(
      seed0.map((j) => j.key.variation),
      ["ce", "brier", "dpsm-warm10", "dpsm-warm20", "ce-then-brier", "label_smoothing", "focal"],
      profile,
    );
    // Shao et al.'s recipe: CE (label-smoothed) for 80 % of the steps, then smoothed Brier.
    const maxSteps = resolveConfig(exp2, profile).maxSteps;
    t.deepEqual(
      seed0[4]!.loss,
      { kind: "dpsm", schedule: "step", warmupSteps: Math.round(0.8 * maxSteps), smoothing: 0.1 },
      profile,
    );
    t.deepEqual(seed0[5]!.loss, { kind: "label_smoothing", smoothing: 0.1 }, profile);
    t.deepEqual(seed0[6]!.loss, { kind: "focal", gamma: 2 }, profile);
  }
});

test("settings are validated with the setting named", (t) => {
  t.throws(() => resolveConfig(exp2, "quick", { pretrain: false }), {
    message: /exp2 config\.checkpointDir: .*need checkpoints/,
  });
  t.throws(() => resolveConfig(exp2, "quick", { models: ["tiny", "tiny"] }), { message: /models: names must differ/ });
  t.throws(() => resolveConfig(exp2, "quick", { generation: { minLength: 50, maxLength: 10 } }), {
    message: /generation\.minLength: must not exceed maxLength/,
  });
  t.throws(() => resolveConfig(exp2, "quick", { variations: ["dpsm-warm30" as "ce"] }), {
    message: /exp2 config\.variations\.0/,
  });
  t.throws(() => resolveConfig(exp2, "quick", { models: ["../x"] }), { message: /models\.0: a folder name/ });
});

test("a missing checkpoint folder is named with what belongs in it", async (t) => {
  const dir = tmpDir(t, "dpsm-exp2-");
  const c = resolveConfig(exp2, "full", { checkpointDir: dir });
  await t.throwsAsync(prepareExp2Data(c), {
    message: new RegExp(
      `model bart-large: ${path.join(dir, "bart-large").replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} must hold`,
    ),
  });
});

test.serial(
  "end to end: pretraining, fine-tuning, report with figures and verdicts; a second run skips all",
  async (t) => {
    const out = tmpDir(t, "dpsm-exp2-");
    const config = resolveConfig(exp2, "quick", {
      ...EXP2_SMALL,
      variations: ["ce", "brier", "dpsm-warm10"],
      baselines: ["focal", "ce+tempscale"],
      summarySwap: { probability: 0.5, variations: ["ce", "dpsm-warm10"] },
      // TextFooler with the WikiText-2 vectors of test/textfooler.test.ts, on 3 test dialogues per clean run.
      attack: { vectors: ATTACK_VECTORS, examples: 3, maxQueries: 40 },
    });
    const jobs = exp2Jobs(config);
    const run = await runExperiment(exp2, config, out, { say: () => {}, progress: false });
    t.is(run.results.length, jobs.length);
    const { report, json } = await writeReport(exp2, config, run, out, buildInfo());
    const md = fs.readFileSync(report, "utf8");
    for (const section of [
      "## What was run",
      "pretrained here from random initialisation with BART's denoising objective on wikitext-2",
      "### Final metrics (dialogsum/test (jsonl), last checkpoint)",
      "ROUGE-L compared example by example (Koehn's paired bootstrap",
      "### ROUGE with 95 % bootstrap intervals",
      "### BERTScore with 95 % bootstrap intervals (test, last checkpoint)\n\nNot measured: no RoBERTa checkpoint",
      "energy J / step",
      "### Zero-shot transfer: xsum/test (jsonl)",
      "### Robustness: summary-swap noise (50 % of training pairs)",
      "### Robustness under attack (TextFooler on the test sources, last checkpoint)",
      "in wikitext2-w2v-50d.txt (sha256 ",
      "timed interleaved in one process for 2 rounds",
      "interleaved audit, 2 rounds",
      "### Learning curves",
      "### Reliability and ROUGE against calibration",
      "### Efficiency",
      "### Summaries side by side",
      "### Verdicts",
      "ce+tempscale (T = ",
      "baselines: focal, ce+tempscale (focal γ = 2: fine-tuned as CE is, with that loss)",
    ]) {
      t.true(md.includes(section), `report.md lacks ${section}`);
    }
    for (const f of ["tiny-nll", "tiny-ece", "tiny-reliability", "tiny-rouge-vs-ece"]) {
      for (const ext of ["png", "svg"]) t.true(fs.statSync(path.join(out, "figures", `${f}.${ext}`)).size > 1000);
    }
    // Every generated summary is kept, one line per evaluated example.
    const summaries = path.join(out, "runs", "tiny", "clean", "ce", "seed0", "summaries-last-xsum.jsonl");
    t.is(fs.readFileSync(summaries, "utf8").trim().split("\n").length, config.transferMaxExamples);

    // The fine-tuning runs start from the pretrained checkpoint: same weights before training, whatever the loss.
    const saved = JSON.parse(fs.readFileSync(json, "utf8")) as {
      summaries: { name: string; key: { setting: string }; metrics: Record<string, { mean: number }> }[];
      verdicts: Record<string, Record<string, Verdict[]>>;
      runs: Finished<Exp2Result>[];
    };
    const finetunes = saved.runs.filter((r): r is Finished<FinetuneResult> => r.kind === "finetune");
    t.is(finetunes.length, jobs.length - 1);
    for (const r of finetunes) {
      t.is(r.last.test.examples, config.testMaxExamples);
      t.is(r.last.test.rougeLPerExample.length, config.testMaxExamples);
      t.true(r.last.test.teacherForced.tokens > 0);
      // The attack ran on the clean runs only, within its budgets, and its numbers are in the table.
      const a = r.last.attack;
      if (r.key.setting !== "clean") {
        t.is(a, undefined);
        continue;
      }
      t.is(a!.examples, 3);
      t.is(a!.attackedRougeL.length, 3);
      t.true(a!.attacks.every((x) => x.queries <= 40 && x.changedShare <= 0.2 && x.attackedScore <= x.cleanScore));
      t.true(a!.attacked.tokens > 0 && a!.attacked.tokens === a!.clean.tokens);
    }
    t.regex(md, /### Robustness under attack[^#]*\| ce \(0\) +\| [\d.]+ \[[\d.]+, [\d.]+\] +\| [\d.]+ \[/);
    // Verdicts follow from the numbers: one seed, so ROUGE-L's interval is Koehn's bootstrap over the test examples
    // (its mean difference is the table's), and ECE's, over seeds only, is missing.
    const row = (name: string) => saved.summaries.find((s) => s.name === name && s.key.setting === "clean")!;
    const [d, ce] = [row("dpsm-warm10"), row("ce")];
    const verdicts = saved.verdicts.tiny!["dpsm-warm10"]!;
    const quality = verdicts.find((v) => v.criterion.startsWith("Task quality"))!;
    const gain = quality.evidence![0]!;
    t.regex(gain.interval, new RegExp(`paired bootstrap over ${config.testMaxExamples} test examples, seed 0`));
    t.true(Math.abs(gain.estimate - (d.metrics.rougeL!.mean - ce.metrics.rougeL!.mean)) < 1e-9);
    t.true(gain.low <= gain.estimate && gain.estimate <= gain.high);
    t.is(gain.status, decide(gain.low, gain.high, "≥", 0.3));
    // The source-dependence gate: CE's test split summarised again from shuffled sources, kept beside the others;
    // whichever way it went, the verdicts that rest on the summaries follow it.
    const ceRun = finetunes.find((r) => r.key.variation === "ce" && r.key.setting === "clean")!;
    t.is(ceRun.last.shuffledSource!.rougeLPerExample.length, config.testMaxExamples);
    t.true(finetunes.filter((r) => r !== ceRun).every((r) => r.last.shuffledSource === undefined));
    const shuffled = fs
      .readFileSync(
        path.join(out, "runs", "tiny", "clean", "ce", "seed0", "summaries-last-test-shuffled-source.jsonl"),
        "utf8",
      )
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { id: string; source: string });
    t.is(shuffled.length, config.testMaxExamples);
    t.true(shuffled.every((x) => x.id !== x.source));
    t.true(md.includes("### Source dependence"));
    const passed = md.includes("**The gate passes**");
    t.not(passed, md.includes("**The gate fails**"));
    const calibration = verdicts.find((v) => v.criterion.startsWith("Calibration"))!;
    t.is(calibration.status, passed ? "not enough runs" : "not informative");
    const significance = verdicts.find((v) => v.criterion.startsWith("Significance"))!;
    t.regex(significance.detail, /Koehn's paired bootstrap \(50 samples\)/);
    t.truthy(verdicts.find((v) => v.criterion.startsWith("Degradation")));
    // The focal baseline: a row of the final metrics beside CE's, no verdict of its own.
    t.truthy(row("focal"), "no focal row");
    t.regex(md, /\| focal +\|/);
    t.deepEqual(Object.keys(saved.verdicts.tiny!), ["dpsm-warm10"]);

    const again: string[] = [];
    const second = await runExperiment(exp2, config, out, { say: (l) => again.push(l), progress: false });
    t.is(again.filter((l) => l.endsWith("done before, skipped")).length, jobs.length);
    t.deepEqual(second.results, run.results);
  },
);

test.serial("a Hugging Face checkpoint folder: its tokenizer's framing and ids, no pretraining", async (t) => {
  const root = tmpDir(t, "dpsm-exp2-");
  const dir = path.join(root, "checkpoints", "bart-mini");
  // A BART of real BART's vocabulary and special ids (random weights), beside BART's real tokenizer files.
  saveTinyBart(dir);
  const config = resolveConfig(exp2, "quick", {
    ...EXP2_SMALL,
    models: ["bart-mini"],
    checkpointDir: path.join(root, "checkpoints"),
    pretrain: false,
    variations: ["ce"],
    baselines: [],
    summarySwap: false,
    transfer: [],
    // BERTScore with the parity fixture's RoBERTa (test/bertscore.test.ts), layer 2, idf.
    bertscore: { model: path.join(packageRoot, "test", "fixtures", "bertscore", "roberta"), layer: 2, idf: true },
  });
  t.deepEqual(
    exp2Jobs(config).map((j) => jobId(j.key)),
    ["bart-mini/clean/ce/seed0"],
  );
  const data = await prepareExp2Data(config);
  const d = data["bart-mini"]!;
  // BART's framing: <s> (0) … </s> (2), padded with <pad> (1).
  const S = d.train.maxSource;
  for (let i = 0; i < 5; i++) {
    const n = d.train.sourceLengths[i]!;
    t.is(d.train.sourceTokens[i * S], 0);
    t.is(d.train.sourceTokens[i * S + n - 1], 2);
    if (n < S) t.is(d.train.sourceTokens[i * S + n], 1);
  }
  const out = path.join(root, "out");
  const run = await runExperiment(exp2, config, out, { say: () => {}, progress: false });
  t.is(run.results.length, 1);
  const { report } = await writeReport(exp2, config, run, out, buildInfo());
  const md = fs.readFileSync(report, "utf8");
  t.true(md.includes(`fine-tuned from the checkpoint ${dir}`));
  const b = (run.results[0] as Finished<FinetuneResult>).last.test.bertscore!;
  t.is(b.f1.length, config.testMaxExamples);
  t.is(b.hash, "roberta_L2_idf_version=0.3.12(dpsm-native)");
  t.true(b.interval!.low.f1 <= b.mean.f1 && b.mean.f1 <= b.interval!.high.f1);
  t.regex(md, /### BERTScore with 95 % bootstrap intervals[^#]*\| ce \(0\) +\| 0\.\d{4} \[0\.\d{4}, 0\.\d{4}\]/);
  t.true(md.includes("`roberta_L2_idf_version=0.3.12(dpsm-native)`"));
  // No word vectors given: the attack's table says why it is not there.
  t.true(md.includes("### Robustness under attack (TextFooler on the test sources, last checkpoint)\n\nNot measured"));
  t.is((run.results[0] as Finished<FinetuneResult>).last.attack, undefined);
});
