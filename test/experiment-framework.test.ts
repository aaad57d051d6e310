// The experiment framework with experiment 1's spec on real WikiText-2: flags derived from the settings
// schema, settings precedence, structured job keys, the pinned configuration, skipping and resuming jobs,
// and the aggregates recomputed from the finished jobs.
import fs from "node:fs";
import path from "node:path";

import test from "ava";

import { experimentDataDir } from "../lib/data/ensure.ts";
import { exp1, exp1Jobs } from "../lib/experiments/exp1-lm/index.ts";
import type { Exp1Job } from "../lib/experiments/exp1-lm/jobs.ts";
import {
  aggregate,
  checkJobs,
  groupId,
  jobId,
  parseCommandLine,
  parseExperimentArgs,
  pinConfig,
  resolveConfig,
  runExperiment,
  settingFlags,
  UsageError,
} from "../lib/experiments/framework/index.ts";
import { meanStd, pairedTTest } from "../lib/metrics/stats.ts";
import { EXP1_SMALL } from "./helpers/experiments.ts";
import { tmpDir } from "./helpers/tmp.ts";

const flags = settingFlags(exp1.schema);
const flag = (name: string) => flags.find((f) => f.name === name);
const parse = (argv: string[]) => parseExperimentArgs(flags, argv);
const TINY = { ...EXP1_SMALL, maxSteps: 2, evalEvery: 1, testMaxSequences: 2, ood: ["ptb" as const] };

test("flags come from the settings schema: kebab-case names, kinds, choices, nested fields, --no-…", (t) => {
  t.like(flag("max-steps"), { path: ["maxSteps"], kind: "number", integer: true, description: "optimiser steps" });
  t.like(flag("dpsm-warmup"), { path: ["dpsmWarmup"], kind: "number" });
  t.is(flag("dpsm-warmup")!.integer, undefined);
  t.like(flag("models"), { kind: "strings", choices: ["tiny", "small", "medium", "large"] });
  t.like(flag("seeds"), { kind: "numbers", integer: true });
  t.like(flag("precision"), { kind: "string", choices: ["fp32", "bf16"] });
  // A number or one per model size: the flag gives the number, a settings file the rest.
  t.like(flag("lr"), { kind: "number", moreInFile: true });
  t.like(flag("no-label-noise"), { path: ["labelNoise"], kind: "off" });
  t.like(flag("label-noise.step-fraction"), { path: ["labelNoise", "stepFraction"], kind: "number" });
  t.like(flag("sample.top-k"), { path: ["sample", "topK"], kind: "number", integer: true });
  t.like(flag("dataset"), { kind: "string", choices: ["wikitext-2", "wikitext-103"] });
  t.like(flag("dataset.dir"), { path: ["dataset", "dir"], kind: "string" });
  t.like(flag("data-dir"), { path: ["dataDir"], kind: "string" });
  t.is(flag("label-noise"), undefined, "an object field has no flag of its own");
  // Every field of the schema has a flag.
  const fields = new Set(flags.map((f) => f.path[0]));
  t.deepEqual(
    Object.keys(exp1.schema.shape).filter((k) => !fields.has(k)),
    [],
  );
});

test("flag values are coerced: numbers, comma lists, none, nested fields, off", (t) => {
  const a = parse([
    "--max-steps",
    "30",
    "--seeds",
    "0, 1,2",
    "--ood",
    "none",
    "--variations",
    "ce,dpsm-linear",
    "--lr",
    "1e-3",
    "--no-label-noise",
    "--sample.top-k",
    "3",
    "--dataset.dir",
    "/data/wt",
    "--precision",
    "bf16",
    "--out",
    "x",
    "--report-only",
  ]);
  t.deepEqual(a.settings, {
    maxSteps: 30,
    seeds: [0, 1, 2],
    ood: [],
    variations: ["ce", "dpsm-linear"],
    lr: 1e-3,
    labelNoise: false,
    sample: { topK: 3 },
    dataset: { dir: "/data/wt" },
    precision: "bf16",
  });
  t.is(a.out, "x");
  t.true(a.reportOnly);
  t.false(a.help);
  t.deepEqual(parse(["--label-noise.variations", "ce", "--label-noise.token-fraction", "0.2"]).settings, {
    labelNoise: { variations: ["ce"], tokenFraction: 0.2 },
  });
});

test("bad flags are UsageErrors that name the flag", (t) => {
  const bad: [string[], RegExp][] = [
    [["--max-steps", "many"], /^--max-steps: expected a number, got "many"$/],
    [["--seeds", "0,x"], /^--seeds: expected a number, got "x"$/],
    [["--max-steps", ""], /^--max-steps: expected a number, got ""$/],
    [["--max-steps"], /^--max-steps: expected a value$/],
    [["--lr", "-1"], /^--lr: expected a value; write --lr=VALUE for one starting with "-"$/],
    [["--grad-accum", "2"], /^--grad-accum: unknown flag \(did you mean --grad-accumulation\?\); see --help$/],
    [["--colour", "red"], /^--colour: unknown flag; see --help$/],
    [["--help=yes"], /^--help: takes no value$/],
    [
      ["--no-label-noise", "--label-noise.step-fraction", "0.1"],
      /^--no-label-noise and --label-noise\.step-fraction: give one of them$/,
    ],
    [["quick"], /^unexpected argument quick/],
  ];
  for (const [argv, message] of bad) {
    const e = t.throws(() => parse(argv), { instanceOf: UsageError }, argv.join(" "));
    t.regex(e!.message, message);
  }
  t.deepEqual(parse(["--lr=-1"]).settings, { lr: -1 }, "a value starting with - after =");
});

test("settings: profile, then a settings file, then flags; errors name the setting", (t) => {
  const dir = tmpDir(t, "dpsm-framework-");
  const file = path.join(dir, "mine.json");
  const settings = { profile: "wt2-small", maxSteps: 40, seeds: [1], labelNoise: { stepFraction: 0.5 } };
  fs.writeFileSync(file, JSON.stringify(settings));
  const line = parseCommandLine(exp1, ["--config", file, "--max-steps", "50", "--out", dir], "dpsm-native exp1");
  if ("help" in line) return t.fail("help instead of settings");
  t.is(line.config.profile, "wt2-small");
  t.is(line.config.maxSteps, 50, "flags override the file");
  t.deepEqual(line.config.seeds, [1], "the file overrides the profile");
  const merged = { stepFraction: 0.5, tokenFraction: 0.1, variations: ["ce", "brier", "dpsm-linear"] };
  t.deepEqual(line.config.labelNoise, merged, "objects merge");
  t.is(line.config.contextLength, 1024, "the rest from the file's profile");
  t.is(line.out, dir);
  const flagged = parseCommandLine(exp1, ["--config", file, "--profile", "quick"], "p");
  t.true(!("help" in flagged) && flagged.config.profile === "quick" && flagged.config.maxSteps === 40);
  const byDefault = parseCommandLine(exp1, [], "p");
  t.true(!("help" in byDefault) && byDefault.config.profile === "quick");
  t.true(!("help" in byDefault) && byDefault.out === path.resolve("runs", "exp1-quick"));
  const fails = (argv: string[], message: RegExp) => t.throws(() => parseCommandLine(exp1, argv, "p"), { message });
  fails(["--precision", "fp8"], /^exp1 config\.precision: Invalid option/);
  fails(["--label-noise.step-fraction", "2"], /exp1 config\.labelNoise/);
  fs.writeFileSync(file, JSON.stringify({ profile: "huge" }));
  fails(
    ["--config", file],
    /--config: .*mine\.json: profile: expected one of quick, cpu-study, wt2-small, full, got "huge"/,
  );
});

test("jobs carry structured keys: folders, groups and names come from them", (t) => {
  const config = resolveConfig(exp1, "wt2-small", {
    seeds: [0],
    variations: ["ce", "dpsm-linear"],
    baselines: ["focal"],
    labelNoise: false,
    lowResource: [],
  });
  const jobs = exp1Jobs(config);
  t.deepEqual(
    jobs.map((j) => j.key),
    [
      { model: "small", variation: "ce", setting: "clean", seed: 0 },
      { model: "small", variation: "dpsm-linear", setting: "clean", seed: 0 },
      { model: "small", variation: "focal", setting: "clean", seed: 0 },
      { model: "small", variation: "dpsm-linear", setting: "clean", seed: 0, params: { warmup: 0.05 } },
      { model: "small", variation: "dpsm-linear", setting: "clean", seed: 0, params: { warmup: 0.2 } },
    ],
  );
  t.deepEqual(jobs.map((j) => jobId(j.key)).slice(3), [
    "small/clean/dpsm-linear-warmup0.05/seed0",
    "small/clean/dpsm-linear-warmup0.2/seed0",
  ]);
  // The sweep's warm-up share sets the loss: 5 % and 20 % of 3000 steps; the main run uses dpsmWarmup (10 %).
  t.deepEqual(
    jobs.map((j) => (j.loss as { warmupSteps?: number }).warmupSteps),
    [undefined, 300, undefined, 150, 600],
  );
  t.is(exp1.analysis.name!(jobs[3]!.key), "dpsm-linear (warm-up 5 %)");
  t.is(exp1.analysis.name!(jobs[1]!.key), "dpsm-linear");
  t.not(groupId(jobs[1]!.key), groupId(jobs[3]!.key));
  t.is(groupId({ ...jobs[3]!.key, seed: 7 }), groupId(jobs[3]!.key), "seeds share a group");
  t.throws(() => checkJobs([jobs[0]!, { key: { ...jobs[0]!.key } }]), {
    message: /two jobs have the key .*small\/clean\/ce\/seed0/,
  });
  t.throws(() => jobId({ ...jobs[0]!.key, variation: "../ce" }), { message: /job key\.variation: expected letters/ });
  t.throws(() => jobId({ ...jobs[0]!.key, seed: -1 }), { message: /job key\.seed/ });
});

test("the configuration is pinned to its folder; unpinned settings (threads) may differ", (t) => {
  const out = tmpDir(t, "dpsm-framework-");
  const config = resolveConfig(exp1, "quick", TINY);
  pinConfig(exp1, { ...config, threads: 2 }, out);
  const pinned = JSON.parse(fs.readFileSync(path.join(out, "config.json"), "utf8")) as Record<string, unknown>;
  t.is(pinned.experiment, "exp1");
  t.is(pinned.profile, "quick");
  t.is(pinned.maxSteps, 2);
  t.false("threads" in pinned);
  t.notThrows(() => pinConfig(exp1, { ...config, threads: 1 }, out));
  t.notThrows(() => pinConfig(exp1, config, out));
  t.throws(() => pinConfig(exp1, { ...config, seeds: [0, 1] }, out), {
    message: /another configuration \(seeds: \[0\] there, \[0,1\] now\)/,
  });
  t.throws(() => pinConfig(exp1, resolveConfig(exp1, "full"), out), { message: /profile: "quick" there, "full" now/ });
  fs.writeFileSync(path.join(out, "config.json"), "[1, 2");
  t.throws(() => pinConfig(exp1, config, out), { message: /config\.json is not a settings file/ });
});

test("exp1: a context length beyond the models' positions is refused by the settings, before anything is pinned", (t) => {
  t.throws(() => resolveConfig(exp1, "quick", { contextLength: 2_000_000 }), {
    message: /exp1 config\.contextLength: Too big: expected number to be <=1024, got 2000000$/,
  });
  t.throws(() => resolveConfig(exp1, "quick", { models: ["small", "tiny"], contextLength: 512 }), {
    message: /exp1 config\.contextLength: must not exceed 256, the positions of GPT-2 tiny, got 512$/,
  });
  t.is(resolveConfig(exp1, "quick", { models: ["small"], contextLength: 1024 }).contextLength, 1024);
});

test("an output folder under /proc is refused before anything is made (a recursive mkdir there never returns)", async (t) => {
  const config = resolveConfig(exp1, "quick", TINY);
  await t.throwsAsync(runExperiment(exp1, config, "/proc/self/x", { progress: false, say: () => {} }), {
    message: /^out: \/proc\/self\/x\/runs lies in \/proc, a kernel file system/,
  });
});

test("an experiment's dataDir under /proc is refused by name, not made (experimentDataDir)", async (t) => {
  await t.throwsAsync(
    experimentDataDir("/proc/self/x", [], () => {}),
    {
      message: /^dataDir: \/proc\/self\/x lies in \/proc, a kernel file system/,
    },
  );
});

test.serial("finished jobs are skipped, an unfinished one resumes, an aborted run starts none", async (t) => {
  const config = resolveConfig(exp1, "quick", { ...TINY, seeds: [0, 1], variations: ["ce", "brier"] });
  const out = tmpDir(t, "dpsm-framework-");
  const ran: string[] = [];
  const counting = {
    ...exp1,
    runJob: (ctx: Parameters<typeof exp1.runJob>[0]) => (ran.push(jobId(ctx.job.key)), exp1.runJob(ctx)),
  };
  const quiet = { progress: false, say: () => {} };
  const first = await runExperiment(counting, config, out, quiet);
  t.deepEqual(ran, ["tiny/clean/ce/seed0", "tiny/clean/brier/seed0", "tiny/clean/ce/seed1", "tiny/clean/brier/seed1"]);
  t.deepEqual(
    first.results.map((r) => r.key),
    first.jobs.map((j: Exp1Job) => j.key),
  );

  ran.length = 0;
  fs.rmSync(path.join(out, "runs", "tiny", "clean", "brier", "seed1", "result.json"));
  const lines: string[] = [];
  const second = await runExperiment(counting, config, out, { progress: false, say: (l) => lines.push(l) });
  t.deepEqual(ran, ["tiny/clean/brier/seed1"]);
  t.is(lines.filter((l) => l.endsWith("done before, skipped")).length, 3);
  t.true(lines.includes("[4/4] tiny/clean/brier/seed1: resuming"));
  t.deepEqual(
    second.results.map((r) => r.test),
    first.results.map((r) => r.test),
  );

  ran.length = 0;
  const controller = new AbortController();
  controller.abort();
  fs.rmSync(path.join(out, "runs", "tiny", "clean", "ce", "seed0", "result.json"));
  const aborted = await runExperiment(counting, config, out, { ...quiet, signal: controller.signal });
  const onlyFinished = await runExperiment(counting, config, out, { ...quiet, onlyFinished: true });
  t.deepEqual(ran, []);
  t.is(aborted.results.length, 3);
  t.is(onlyFinished.results.length, 3);

  // The aggregates, recomputed from the finished jobs' own numbers.
  const groups = aggregate(exp1.analysis, first.results);
  t.deepEqual(
    groups.map((g) => g.name),
    ["ce", "ce+tempscale", "brier"],
  );
  const [ce, scaled, brier] = groups;
  const ppl = (variation: string) => first.results.filter((r) => r.key.variation === variation).map((r) => r.test.ppl);
  t.deepEqual(ce!.seeds, [0, 1]);
  t.deepEqual(brier!.perSeed.ppl, ppl("brier"));
  t.deepEqual(brier!.metrics.ppl, meanStd(ppl("brier")));
  t.deepEqual(brier!.versus.ce!.ppl, pairedTTest(ppl("brier"), ppl("ce")));
  t.is(ce!.versus.ce, undefined, "no test of a group against itself");
  t.deepEqual(
    scaled!.perSeed.ppl,
    first.results.filter((r) => r.tempscale).map((r) => r.tempscale!.test.ppl),
  );
  const temperatures = first.results.filter((r) => r.tempscale).map((r) => r.tempscale!.temperature);
  t.deepEqual(scaled!.extra.temperature, meanStd(temperatures));
  t.truthy(brier!.efficiency);
  t.is(scaled!.efficiency, undefined, "post-hoc rows cost nothing to train");
  t.is(scaled!.convergence, undefined);
  // Convergence: where validation PPL reaches 95 % of the same seed's CE's selected value (its best validation
  // checkpoint's, whose test metrics the report gives), between the evaluations that bracket the crossing.
  const ceRun = (seed: number) => first.results.find((r) => r.key.variation === "ce" && r.key.seed === seed)!;
  const target = (seed: number) => {
    const r = ceRun(seed);
    return r.curve.find((p) => p.step === r.fit.bestStep)!.ppl / 0.95;
  };
  const firstReaching = first.results
    .filter((r) => r.key.variation === "brier")
    .map((r) => r.curve.find((p) => p.ppl <= target(r.key.seed))?.step ?? null);
  const c = brier!.convergence!;
  t.deepEqual(
    c.brackets.map((b) => b?.[1] ?? null),
    firstReaching,
  );
  c.steps.forEach((step, i) => {
    const b = c.brackets[i] ?? null;
    t.true(step === null ? b === null : b !== null && b[0] <= step && step <= b[1], `seed ${i}: ${step} in ${b}`);
  });
});
