// Experiment 1 end to end on real WikiText-2, at a size a test can afford: the runs, the report with its
// figures and verdicts, and the promise that re-running skips finished runs and resumes an interrupted one.
import fs from "node:fs";
import path from "node:path";

import test from "ava";

import { exp1, exp1Jobs } from "../lib/experiments/exp1-lm/index.ts";
import { jobId, resolveConfig, runExperiment, writeReport } from "../lib/experiments/framework/index.ts";
import type { Finished } from "../lib/experiments/framework/spec.ts";
import type { Exp1Result } from "../lib/experiments/exp1-lm/run-job.ts";
import { buildInfo } from "../lib/index.ts";
import { allOf, anyOf, decide } from "../lib/experiments/framework/decision.ts";
import type { Verdict } from "../lib/experiments/framework/spec.ts";
import { identityResample } from "../lib/metrics/bootstrap.ts";
import { pooledMetrics } from "../lib/metrics/sequence-sums.ts";
import { EXP1_SMALL } from "./helpers/experiments.ts";
import { tmpDir } from "./helpers/tmp.ts";

test.serial("runs, report, figures and verdicts; a second run skips every finished run", async (t) => {
  const out = tmpDir(t, "dpsm-exp1-");
  const config = resolveConfig(exp1, "quick", {
    ...EXP1_SMALL,
    ood: ["ptb"],
    // The runs' step (8 sequences of 33 tokens) and a "seed's batch" of two, three timed rounds each: the audit's
    // plumbing, not a measurement.
    efficiencyAudit: { rounds: 3, warmupRounds: 1, fixedBatchTokens: 66 },
    seeds: [0, 1],
    variations: ["ce", "brier", "dpsm-linear", "dpsm-fixed-0.75"],
    labelNoise: { stepFraction: 0.5, tokenFraction: 0.1, variations: ["ce", "dpsm-linear"] },
    epsAblation: { eps: 1e-12, variations: ["brier"] },
  });
  const jobs = exp1Jobs(config);
  t.deepEqual(
    jobs.map((j) => jobId(j.key)),
    [
      "tiny/clean/ce/seed0",
      "tiny/clean/brier/seed0",
      "tiny/clean/dpsm-linear/seed0",
      "tiny/clean/dpsm-fixed-0.75/seed0",
      "tiny/clean/ce/seed1",
      "tiny/clean/brier/seed1",
      "tiny/clean/dpsm-linear/seed1",
      "tiny/clean/dpsm-fixed-0.75/seed1",
      "tiny/label-noise/ce/seed0",
      "tiny/label-noise/dpsm-linear/seed0",
      "tiny/label-noise/ce/seed1",
      "tiny/label-noise/dpsm-linear/seed1",
      "tiny/clean/brier-eps1e-12/seed0",
      "tiny/clean/brier-eps1e-12/seed1",
    ],
  );
  t.deepEqual(
    jobs.map((j) => j.eps),
    [...Array(12).fill(1e-8), 1e-12, 1e-12],
  );
  t.deepEqual(jobs.find((j) => j.key.variation === "dpsm-fixed-0.75")!.loss, {
    kind: "dpsm",
    schedule: "fixed",
    alpha: 0.75,
  });
  const lines: string[] = [];
  const run = await runExperiment(exp1, config, out, { say: (l) => lines.push(l), progress: false });
  t.is(run.results.length, jobs.length);
  const { report, json } = await writeReport(exp1, config, run, out, buildInfo());

  const md = fs.readFileSync(report, "utf8");
  const sections = ["## What was run", "## Definitions", "### Final metrics", "### Learning curves", "### Convergence"];
  sections.push("### Efficiency", "### Robustness: label noise", "### Robustness: out-of-domain sets");
  sections.push("### Reliability", "### Samples", "### Verdicts");
  sections.push("### AdamW ε ablation", "### Training diagnostics", "timed interleaved in one process");
  for (const section of sections) {
    t.true(md.includes(section), `report.md lacks ${section}`);
  }
  for (const f of [
    "tiny-ppl",
    "tiny-ece",
    "tiny-reliability",
    "tiny-ece-bars",
    "tiny-diagnostics",
    "tiny-eps-diagnostics",
  ]) {
    for (const ext of ["png", "svg"]) {
      t.true(fs.statSync(path.join(out, "figures", `${f}.${ext}`)).size > 1000, `${f}.${ext}`);
    }
    t.true(md.includes(`figures/${f}.png`));
  }

  // The verdicts follow from the numbers in results.json: with 2 seeds (fewer than 3), task quality and calibration
  // are decided from Koehn's paired bootstrap over the test sequences, on the sums each run saved.
  const saved = JSON.parse(fs.readFileSync(json, "utf8")) as {
    verdicts: Record<string, Record<string, Verdict[]>>;
    runs: Finished<Exp1Result>[];
  };
  t.is(saved.runs.length, jobs.length);
  const verdicts = saved.verdicts.tiny!["dpsm-linear"]!;
  const close = (x: number, y: number, rel = 1e-9) => Math.abs(x - y) <= rel * Math.max(1, Math.abs(y));
  const runOf = (variation: string, seed: number) =>
    saved.runs.find((r) => r.key.setting === "clean" && r.key.variation === variation && r.key.seed === seed)!;
  const pooled = (variation: string, seed: number) => {
    const r = runOf(variation, seed);
    t.is(r.testSequences!.tokens.length, 3, "the capped test split's 3 sequences");
    return pooledMetrics(r.testSequences!, identityResample(3));
  };
  for (const seed of [0, 1]) {
    // Pooled back, the sums give the run's own (batched) test evaluation, to float32 matmul rounding.
    const r = runOf("dpsm-linear", seed);
    t.is(pooled("dpsm-linear", seed).tokens, r.test.tokens);
    t.true(close(pooled("dpsm-linear", seed).ppl, r.test.ppl, 1e-5), `${pooled("dpsm-linear", seed).ppl}`);
  }
  const mean = (f: (seed: number) => number) => (f(0) + f(1)) / 2;
  // Task quality: the PPL gap, the mean over seeds of the pooled PPL differences, against 0.3.
  const quality = verdicts.find((v) => v.criterion.startsWith("Task quality"))!;
  const [gapPart, brierPart, cePart] = quality.evidence!;
  t.regex(gapPart!.interval, /^paired bootstrap over 3 test sequences \(1000 resamples\), seeds 0, 1/);
  t.true(
    close(
      gapPart!.estimate,
      mean((s) => pooled("dpsm-linear", s).ppl - pooled("ce", s).ppl),
    ),
  );
  t.is(gapPart!.status, decide(gapPart!.low, gapPart!.high, "≤", 0.3));
  const notWorse = anyOf([brierPart!.status, cePart!.status]);
  t.is(quality.status, allOf([gapPart!.status, notWorse]));
  // Calibration: the reduction 1 − (mean ECE-10 / CE's), against 25 %.
  const calibration = verdicts.find((v) => v.criterion.startsWith("Calibration"))!;
  const reduction = calibration.evidence![0]!;
  t.regex(reduction.interval, /^paired bootstrap over 3 test sequences/);
  t.true(
    close(reduction.estimate, 1 - mean((s) => pooled("dpsm-linear", s).ece10) / mean((s) => pooled("ce", s).ece10)),
  );
  t.is(reduction.status, decide(reduction.low, reduction.high, "≥", 0.25));
  t.true(md.includes("Paired comparisons over seeds") && md.includes("Holm p"), "no comparisons table");
  // The audit: every variation × 3 rounds, timed once (saved; a later run reads it back), and the verdict's source.
  const audit = JSON.parse(fs.readFileSync(path.join(out, "audit", "tiny.json"), "utf8")) as {
    ms: number[][];
    rows: { name: string; ratio: { median: number; low: number; high: number } }[];
  };
  t.deepEqual(
    audit.rows.map((r) => r.name),
    ["ce", "brier", "dpsm-linear", "dpsm-fixed-0.75"],
  );
  t.is(audit.ms.length, 3);
  t.true(audit.ms.flat().every((ms) => ms > 0));
  t.deepEqual(audit.rows[0]!.ratio, { median: 1, low: 1, high: 1 });
  // The sets were capped (the test's settings): the report says which and by how much.
  t.regex(md, /\*\*capped for speed, a prefix evaluated\*\*.*test: the first 3 of [\d,]+ sequences/);
  // It timed the runs' own step; the seed's fixed batch beside it, in the report after it.
  t.like(audit as object, {
    shape: "run",
    tokens: 8 * 33,
    batch: { batchSize: 8, gradAccumulation: 1, sequenceTokens: 33 },
  });
  const fixed = JSON.parse(fs.readFileSync(path.join(out, "audit", "tiny.fixed.json"), "utf8")) as typeof audit;
  t.like(fixed as object, { shape: "fixed", tokens: 66, batch: { batchSize: 2, gradAccumulation: 1 } });
  t.true(md.indexOf("at the runs' own shape, one micro-batch of 8 × 33 tokens") >= 0, "no audit of the runs' step");
  t.true(md.indexOf("The seed's fixed batch, timed the same way: 66 tokens") > md.indexOf("runs' own shape"));
  const efficiency = verdicts.find((v) => v.criterion.startsWith("Efficiency"))!;
  t.regex(efficiency.detail, /interleaved audit, 3 rounds/);
  const significance = verdicts.find((v) => v.criterion.startsWith("Significance"))!;
  t.not(significance.status, "not enough runs", "two seeds with their sums allow Koehn's bootstrap");
  t.regex(significance.detail, /Koehn's paired bootstrap/);
  const p = significance.evidence![0]!.p!;
  t.true(p.adjusted >= p.raw, "Holm never lowers a p-value");
  t.true(md.includes("ce+tempscale (T = "), "the temperature-scaled CE row is missing");
  // A fixed α is an ablation: a row of the final metrics, said so in the report, and no verdict of its own.
  t.regex(md, /\| dpsm-fixed-0\.75 +\|/);
  t.regex(md, /Fixed-α ablation: dpsm-fixed-0\.75 train on/);
  t.deepEqual(Object.keys(saved.verdicts.tiny!), ["dpsm-linear"]);

  const again: string[] = [];
  const second = await runExperiment(exp1, config, out, { say: (l) => again.push(l), progress: false });
  t.is(again.filter((l) => l.endsWith("done before, skipped")).length, jobs.length);
  t.false(
    again.some((l) => l.startsWith("efficiency audit")),
    "the audit was run again",
  );
  t.deepEqual(
    second.results.map((r) => r.test.ppl),
    run.results.map((r) => r.test.ppl),
  );
});

test.serial("an interrupted experiment resumes: finished runs skipped, the interrupted one resumed", async (t) => {
  const config = resolveConfig(exp1, "quick", {
    ...EXP1_SMALL,
    maxSteps: 6,
    evalEvery: 3,
    seeds: [3],
    variations: ["ce", "dpsm-cosine"],
  });
  const straight = await runExperiment(exp1, config, tmpDir(t, "dpsm-exp1-"), { progress: false, say: () => {} });

  const out = tmpDir(t, "dpsm-exp1-");
  const controller = new AbortController();
  const first = await runExperiment(exp1, config, out, {
    progress: false,
    signal: controller.signal,
    say: () => {},
    // Interrupt the second run in the middle (it stops at a step boundary, with a checkpoint).
    onStep: (job, s) => job.key.variation === "dpsm-cosine" && s.step === 2 && controller.abort(),
  });
  t.is(first.results.length, 1);
  const interrupted = path.join(out, "runs", "tiny", "clean", "dpsm-cosine", "seed3");
  t.true(fs.existsSync(path.join(interrupted, "last", "training_state.safetensors")));
  t.false(fs.existsSync(path.join(interrupted, "result.json")));
  const lines: string[] = [];
  const resumed = await runExperiment(exp1, config, out, { progress: false, say: (l) => lines.push(l) });
  t.true(lines.some((l) => l.includes("tiny/clean/ce/seed3: done before, skipped")));
  t.true(lines.some((l) => l.includes("tiny/clean/dpsm-cosine/seed3: resuming")));
  const numbers = (rs: typeof resumed.results) => rs.map((r) => [jobId(r.key), r.test.nll, r.test.ece10]);
  t.deepEqual(numbers(resumed.results), numbers(straight.results));
  t.deepEqual(
    resumed.results[1]!.curve.map((p) => p.nll),
    straight.results[1]!.curve.map((p) => p.nll),
  );
});

test.serial("experiment settings are validated and pinned to their directory", async (t) => {
  t.throws(() => resolveConfig(exp1, "quick", { maxSteps: -1 }), { message: /exp1 config\.maxSteps/ });
  t.throws(() => resolveConfig(exp1, "quick", { models: ["xl" as "tiny"] }), { message: /exp1 config\.models\.0/ });
  t.throws(() => resolveConfig(exp1, "quick", { variations: ["dpsm-fast" as "ce"] }), {
    message: /exp1 config\.variations\.0/,
  });
  t.throws(() => resolveConfig(exp1, "fast"), {
    message: /profile: expected one of quick, cpu-study, wt2-small, full/,
  });
  t.throws(() => resolveConfig(exp1, "quick", { colour: "red" } as never), { message: /unknown option\(s\) "colour"/ });
  // The seed's fixed α ∈ {0.25, 0.5, 0.75}: every profile but quick (its time on 2 cores) trains all three.
  const fixed = ["dpsm-fixed-0.25", "dpsm-fixed-0.5", "dpsm-fixed-0.75"];
  for (const profile of ["cpu-study", "wt2-small", "full"]) {
    const c = resolveConfig(exp1, profile);
    t.deepEqual(c.variations, ["ce", "brier", "dpsm-linear", "dpsm-cosine", ...fixed, "ce-then-brier"], profile);
    // Shao et al.'s recipe: CE (label-smoothed) for 80 % of the steps, then smoothed Brier.
    t.deepEqual(exp1Jobs(c).find((j) => j.key.variation === "ce-then-brier")!.loss, {
      kind: "dpsm",
      schedule: "step",
      warmupSteps: Math.round(0.8 * c.maxSteps),
      smoothing: 0.1,
    });
    const alphas = exp1Jobs(c)
      .filter((j) => fixed.includes(j.key.variation) && j.key.seed === 0 && j.key.model === c.models[0])
      .map((j) => (j.loss.kind === "dpsm" && j.loss.schedule === "fixed" ? j.loss.alpha : undefined));
    t.deepEqual(alphas, [0.25, 0.5, 0.75], profile);
  }
  t.deepEqual(resolveConfig(exp1, "quick").variations, ["ce", "brier", "dpsm-linear", "dpsm-cosine", "dpsm-fixed-0.5"]);
  const full = resolveConfig(exp1, "full");
  t.deepEqual(full.models, ["small", "medium", "large"]);
  t.is(full.dataset, "wikitext-103");
  t.deepEqual(full.seeds, [0, 1, 2]);
  t.is(full.patience, 5);
  t.is(full.contextLength, 1024);

  const out = tmpDir(t, "dpsm-exp1-");
  const other = { experiment: "exp1", ...resolveConfig(exp1, "quick"), maxSteps: 999 };
  fs.writeFileSync(path.join(out, "config.json"), JSON.stringify(other));
  await t.throwsAsync(runExperiment(exp1, resolveConfig(exp1, "quick", EXP1_SMALL), out, { say: () => {} }), {
    message: /holds an experiment with another configuration \(.*maxSteps: 999 there, 4 now/,
  });
});
