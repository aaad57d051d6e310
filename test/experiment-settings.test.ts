// One declaration per setting: the experiments nest the Trainer's own settings schema, so every Trainer setting is
// a flag of every experiment and reaches every job's Trainer — adding a Trainer option is one edit, in
// lib/trainer-options.ts. Also the rule that turns a DPSM warm-up share into steps, the renamed settings (the
// Trainer's names) and the folders pinned before the rename.
import fs from "node:fs";
import path from "node:path";

import test from "ava";
import { z } from "zod";

import { exp1, exp1Jobs } from "../lib/experiments/exp1-lm/index.ts";
import type { Exp1Job } from "../lib/experiments/exp1-lm/jobs.ts";
import { exp1TrainerOptions } from "../lib/experiments/exp1-lm/run-job.ts";
import { exp2, exp2Jobs } from "../lib/experiments/exp2-summarization/index.ts";
import type { Exp2Job, FinetuneJob, PretrainJob } from "../lib/experiments/exp2-summarization/jobs.ts";
import { finetuneTrainerOptions, pretrainTrainerOptions } from "../lib/experiments/exp2-summarization/run-job.ts";
import {
  lossForVariation,
  MACHINE_SETTINGS,
  parseExperimentArgs,
  parseCommandLine,
  pinConfig,
  resolveConfig,
  runExperiment,
  settingFlags,
  TRAINER_SETTING_KEYS,
  trainerSettings,
} from "../lib/experiments/framework/index.ts";
import type { Seq2SeqModel } from "../lib/models/bart.ts";
import { TrainerSettingsSchema } from "../lib/trainer-options.ts";
import { jobContext } from "./helpers/experiments.ts";
import { tmpDir } from "./helpers/tmp.ts";

// The flags the Trainer's settings give, derived from its schema (not listed here by hand).
const trainerFlags = settingFlags(z.object(TrainerSettingsSchema.shape));
const flagsOf = (schema: z.ZodObject) => new Map(settingFlags(schema).map((f) => [f.name, f]));

test("every flag of the Trainer's settings is a flag of exp-1 and of exp-2 (and of exp-2's pretraining)", (t) => {
  t.log(`Trainer settings' flags: ${trainerFlags.map((f) => `--${f.name}`).join(" ")}`);
  // Some of what the schema holds, so an empty derivation cannot pass.
  for (const name of ["lr", "eps", "betas", "weight-decay", "eval-max-sequences", "fused-head", "no-fused-head"]) {
    t.true(
      trainerFlags.some((f) => f.name === name),
      `--${name}`,
    );
  }
  t.is(new Set(trainerFlags.map((f) => f.path[0])).size, Object.keys(TrainerSettingsSchema.shape).length);
  const machine = new Set(Object.keys(MACHINE_SETTINGS));
  for (const [spec, flags] of [
    ["exp1", flagsOf(exp1.schema)],
    ["exp2", flagsOf(exp2.schema)],
  ] as const) {
    for (const f of trainerFlags) {
      const theirs = flags.get(f.name);
      t.truthy(theirs, `${spec} lacks --${f.name}`);
      t.is(theirs?.kind, f.kind, `${spec} --${f.name}`);
      // The Trainer's own description, unless the experiment extends the field (exp-1's lr: one per model size).
      if (!theirs?.moreInFile || f.moreInFile) t.is(theirs?.description, f.description, `${spec} --${f.name}`);
    }
  }
  const exp2Flags = flagsOf(exp2.schema);
  for (const f of trainerFlags.filter((f) => !machine.has(f.path[0]!))) {
    const name = f.name.startsWith("no-") ? `no-pretrain.${f.name.slice(3)}` : `pretrain.${f.name}`;
    t.truthy(exp2Flags.get(name), `exp2 lacks --${name}`);
  }
});

test("the flags' values: --betas is a list, --no-fused-head is false, the renamed --eps and --eval-max-sequences", (t) => {
  const exp1Flags = settingFlags(exp1.schema);
  const parsed = parseExperimentArgs(exp1Flags, ["--betas", "0.8,0.99", "--no-fused-head", "--eps", "1e-10"]);
  t.deepEqual(parsed.settings, { betas: [0.8, 0.99], fusedHead: false, eps: 1e-10 });
  const c = resolveConfig(exp1, "quick", parsed.settings as never);
  t.deepEqual(c.betas, [0.8, 0.99]);
  t.is(c.fusedHead, false);
  t.throws(() => resolveConfig(exp1, "quick", { betas: [0.9] as never }), { message: /exp1 config\.betas/ });
  t.like(
    exp1Flags.find((f) => f.name === "fused-head"),
    { kind: "boolean", moreInFile: true },
  );
  const exp2Flags = settingFlags(exp2.schema);
  t.deepEqual(parseExperimentArgs(exp2Flags, ["--eval-max-sequences", "7"]).settings, { evalMaxSequences: 7 });
  for (const [flags, gone] of [
    [exp1Flags, "adam-eps"],
    [exp2Flags, "valid-max-examples"],
  ] as const) {
    t.false(
      flags.some((f) => f.name === gone),
      `--${gone}`,
    );
  }
});

// Settings that are not the Trainer's defaults, so the check below sees them travel.
const NON_DEFAULT = {
  minLrRatio: 0.2,
  weightDecay: 0.05,
  betas: [0.8, 0.9] as [number, number],
  gradClip: 0.5,
  patience: 3,
  fusedHead: false,
  threads: 2,
};

/** Checks that `options` hold every Trainer setting of `settings` (all of them present), but those in `except`. */
function holdsEverySetting(
  t: import("ava").ExecutionContext,
  options: Record<string, unknown>,
  settings: Record<string, unknown>,
  except: Record<string, unknown> = {},
) {
  for (const key of TRAINER_SETTING_KEYS) {
    t.not(settings[key], undefined, `the resolved settings lack ${key}`);
    t.deepEqual(options[key], key in except ? except[key] : settings[key], key);
  }
}

test("every Trainer setting of a resolved config reaches each job's Trainer options", (t) => {
  const c1 = resolveConfig(exp1, "quick", {
    ...NON_DEFAULT,
    lr: { tiny: 1e-3, small: 2e-3, medium: 3e-3, large: 4e-3 },
  });
  const jobs = exp1Jobs({ ...c1, epsAblation: { eps: 1e-12, variations: ["ce"] } });
  const data = { train: {}, valid: {}, test: {}, ood: {} } as never;
  const ctx = (job: Exp1Job) => jobContext(c1, job, data);
  for (const job of [jobs[0]!, jobs.at(-1)!]) {
    const options = exp1TrainerOptions(ctx(job)) as Record<string, unknown>;
    holdsEverySetting(t, options, c1, { lr: 1e-3, eps: job.eps });
  }
  t.is(jobs.at(-1)!.eps, 1e-12, "the ablation's ε");

  const c2 = resolveConfig(exp2, "quick", { ...NON_DEFAULT, pretrain: { weightDecay: 0.02, patience: 1 } });
  const model = {} as Seq2SeqModel;
  const d = { train: {}, valid: {}, pretrain: { train: {}, valid: {} } };
  const ctx2 = (job: Exp2Job) => jobContext(c2, job, { tiny: d } as never);
  const jobs2 = exp2Jobs(c2);
  const pretrain = jobs2.find((j): j is PretrainJob => j.kind === "pretrain")!;
  const finetune = jobs2.find((j): j is FinetuneJob => j.kind === "finetune")!;
  holdsEverySetting(t, finetuneTrainerOptions(ctx2(finetune), finetune, model) as never, c2);
  // Pretraining: its own block's settings, the machine's from the experiment.
  const p = c2.pretrain as Record<string, unknown>;
  const pretrainSettings = { ...c2, ...p };
  holdsEverySetting(t, pretrainTrainerOptions(ctx2(pretrain), pretrain, model) as never, pretrainSettings);
  t.is(p.weightDecay, 0.02);
  t.is(p.threads, undefined, "the machine's settings are the experiment's");
});

test("trainerSettings takes every key of the Trainer's settings schema and shares the global batch among ranks", (t) => {
  const c = resolveConfig(exp1, "quick", { threads: 2, batchSize: 8, gradAccumulation: 2 });
  const picked = trainerSettings(c);
  t.deepEqual(Object.keys(picked).sort(), Object.keys(TrainerSettingsSchema.shape).sort());
  t.deepEqual(TRAINER_SETTING_KEYS, Object.keys(TrainerSettingsSchema.shape) as never);
  t.like(trainerSettings(c, 4), { batchSize: 2, gradAccumulation: 2 });
  t.like(trainerSettings(c, 16), { batchSize: 1, gradAccumulation: 1 });
  t.throws(() => trainerSettings(c, 3), { message: /3 ranks: the global batch of 8 × 2/ });
  t.false("models" in picked || "seeds" in picked, "only the Trainer's");
});

test("lossForVariation: a DPSM warm-up share of the steps, rounded and at least one; other losses as given", (t) => {
  t.deepEqual(lossForVariation({ kind: "dpsm", schedule: "linear", warmupShare: 0.1 }, 360), {
    kind: "dpsm",
    schedule: "linear",
    warmupSteps: 36,
  });
  t.deepEqual(lossForVariation({ kind: "dpsm", schedule: "cosine" }, 150, 0.1), {
    kind: "dpsm",
    schedule: "cosine",
    warmupSteps: 15,
  });
  t.is((lossForVariation({ kind: "dpsm", schedule: "linear" }, 4, 0.05) as { warmupSteps: number }).warmupSteps, 1);
  t.deepEqual(lossForVariation({ kind: "dpsm", schedule: "fixed", alpha: 0.5 }, 100, 0.1), {
    kind: "dpsm",
    schedule: "fixed",
    alpha: 0.5,
  });
  t.deepEqual(lossForVariation({ kind: "label_smoothing", smoothing: 0.1 }, 100, 0.1), {
    kind: "label_smoothing",
    smoothing: 0.1,
  });
  t.throws(() => lossForVariation({ kind: "ce", warmupShare: 0.1 }, 100), { message: /warmupShare: only for/ });
  t.throws(() => lossForVariation({ kind: "dpsm", schedule: "linear" }, 100), { message: /needs warmupSteps/ });
  // The experiments' jobs: exp-1's dpsmWarmup (or a sweep's share), exp-2's variations' own shares.
  const c1 = resolveConfig(exp1, "quick", { warmupSweep: [0.2], baselines: ["label_smoothing", "focal"] });
  const losses = new Map(exp1Jobs(c1).map((j) => [`${j.key.variation}${j.key.params?.warmup ?? ""}`, j.loss]));
  t.like(losses.get("dpsm-linear"), { warmupSteps: 15 });
  t.like(losses.get("dpsm-linear0.2"), { warmupSteps: 30 });
  t.deepEqual(losses.get("label_smoothing"), { kind: "label_smoothing", smoothing: 0.1 });
  t.deepEqual(losses.get("focal"), { kind: "focal", gamma: 2 });
  const c2 = resolveConfig(exp2, "quick");
  const warm = exp2Jobs(c2).find((j) => j.key.variation === "dpsm-warm20") as FinetuneJob;
  t.like(warm.loss, { warmupSteps: 72 });
});

test("a folder pinned with the old names (adamEps, validMaxExamples) and without the settings added since", (t) => {
  const out = tmpDir(t, "dpsm-settings-");
  const c = resolveConfig(exp1, "quick");
  // What config.json held before the experiments nested the Trainer's settings.
  const { eps, minLrRatio, weightDecay, betas, gradClip, fusedHead, ...rest } = { experiment: "exp1", ...c };
  void [minLrRatio, weightDecay, betas, gradClip, fusedHead];
  const file = path.join(out, "config.json");
  fs.writeFileSync(file, JSON.stringify({ ...rest, adamEps: eps }));
  t.notThrows(() => pinConfig(exp1, c, out));
  t.throws(() => pinConfig(exp1, resolveConfig(exp1, "quick", { eps: 1e-12 }), out), {
    message: /another configuration \(eps: 1e-8 there, 1e-12 now\)/,
  });
  t.throws(() => pinConfig(exp1, resolveConfig(exp1, "quick", { weightDecay: 0 }), out), {
    message: /another configuration \(weightDecay: 0\.1 there, 0 now\)/,
  });

  const c2 = resolveConfig(exp2, "quick");
  const { evalMaxSequences, ...rest2 } = { experiment: "exp2", ...c2 };
  fs.writeFileSync(file, JSON.stringify({ ...rest2, validMaxExamples: evalMaxSequences }));
  t.notThrows(() => pinConfig(exp2, c2, out));
});

test("exp-2: a summary length beyond the model's positions is refused before anything is pinned (preset or checkpoint)", async (t) => {
  // Pretrained here: the preset's positions, in the schema.
  t.throws(() => resolveConfig(exp2, "quick", { generation: { maxLength: 100_000 } }), {
    message: /exp2 config\.generation\.maxLength: must not exceed 1024, the positions of the tiny preset, got 100000$/,
  });
  t.throws(() => resolveConfig(exp2, "quick", { maxSourceTokens: 2048 }), {
    message: /exp2 config\.maxSourceTokens: must not exceed 1024, the positions of the tiny preset, got 2048$/,
  });
  // A checkpoint: its config.json's max_position_embeddings, read by the spec's check before config.json is pinned.
  const dir = tmpDir(t, "dpsm-exp2-positions-");
  fs.mkdirSync(path.join(dir, "m"));
  fs.writeFileSync(path.join(dir, "m", "config.json"), JSON.stringify({ max_position_embeddings: 256 }));
  const at = { models: ["m"], checkpointDir: dir };
  const config = resolveConfig(exp2, "quick", { ...at, generation: { maxLength: 300 } });
  const out = path.join(dir, "out");
  const message =
    /^exp2 config\.generation\.maxLength: must not exceed 256, the max_position_embeddings of .*config\.json, got 300$/;
  t.throws(() => parseCommandLine(exp2, ["--config", writeSettings(dir, config), "--out", out], "exp2"), { message });
  await t.throwsAsync(runExperiment(exp2, config, out, { say: () => {} }), { message });
  t.false(fs.existsSync(out), "pinned despite the bad length");
  t.throws(() => exp2.check!(resolveConfig(exp2, "quick", { ...at, maxSourceTokens: 512 })), {
    message: /^exp2 config\.maxSourceTokens: must not exceed 256, the max_position_embeddings of .*, got 512$/,
  });
  t.notThrows(() => exp2.check!(resolveConfig(exp2, "quick", { ...at, generation: { maxLength: 256 } })));
});

test("a dataDir that cannot be the data folder is refused by each experiment before anything is pinned", async (t) => {
  const dir = tmpDir(t, "dpsm-data-dir-");
  const out = path.join(dir, "out");
  const argv = ["--data-dir", "/proc/self/x", "--out", out];
  const bad = { dataDir: "/proc/self/x" };
  const message = (name: string) => new RegExp(`^${name} config\\.dataDir: /proc/self/x lies in /proc, a kernel`);
  t.throws(() => parseCommandLine(exp1, argv, "exp1"), { message: message("exp1") });
  t.throws(() => parseCommandLine(exp2, argv, "exp2"), { message: message("exp2") });
  await t.throwsAsync(runExperiment(exp1, resolveConfig(exp1, "quick", bad), out, { say: () => {} }), {
    message: message("exp1"),
  });
  await t.throwsAsync(runExperiment(exp2, resolveConfig(exp2, "quick", bad), out, { say: () => {} }), {
    message: message("exp2"),
  });
  t.false(fs.existsSync(out), "pinned despite the bad dataDir");
});

function writeSettings(dir: string, config: object): string {
  const file = path.join(dir, "settings.json");
  fs.writeFileSync(file, JSON.stringify(config));
  return file;
}

test("one spelling per loss kind: exp-1's label-smoothing baseline is label_smoothing", (t) => {
  const c = resolveConfig(exp1, "wt2-small", {
    seeds: [0],
    variations: ["ce"],
    warmupSweep: [],
    labelNoise: false,
    lowResource: [],
  });
  t.deepEqual(
    exp1Jobs(c).map((j) => `${j.key.variation}:${j.loss.kind}`),
    ["ce:ce", "label_smoothing:label_smoothing", "focal:focal"],
  );
  t.throws(() => resolveConfig(exp1, "quick", { baselines: ["label-smoothing" as "focal"] }), {
    message: /exp1 config\.baselines\.0/,
  });
});
