// The seed's ablations beside the main runs: low-resource training (its angle 3: runs on a seeded sample of the
// training split, the same for every variation and seed of a share) in both experiments, and experiment 2's
// hyper-parameter grid (lr × label smoothing × α warm-up for dpsm-warm*, with ROUGE/ECE heatmaps). Their jobs and
// keys, the sample, that a run's Trainer gets its share of the data and a grid run its lr and loss, the profiles
// and flags, the report sections from constructed numbers, and experiment 1's runs end to end on real WikiText-2.
import fs from "node:fs";
import path from "node:path";

import test from "ava";

import { exp1, exp1Jobs } from "../lib/experiments/exp1-lm/index.ts";
import { exp1AuditPlans, type Exp1Job } from "../lib/experiments/exp1-lm/jobs.ts";
import { exp1TrainerOptions } from "../lib/experiments/exp1-lm/run-job.ts";
import { exp2, exp2Jobs } from "../lib/experiments/exp2-summarization/index.ts";
import { ablationsAbsent, ablationsRun, gridSection } from "../lib/experiments/exp2-summarization/ablations.ts";
import type { Exp2Group } from "../lib/experiments/exp2-summarization/analysis.ts";
import { gridCells } from "../lib/experiments/exp2-summarization/grid.ts";
import { exp2AuditPlans, type FinetuneJob } from "../lib/experiments/exp2-summarization/jobs.ts";
import { finetuneTrainerOptions } from "../lib/experiments/exp2-summarization/run-job.ts";
import {
  jobId,
  parseExperimentArgs,
  resolveConfig,
  runExperiment,
  settingFlags,
  writeReport,
} from "../lib/experiments/framework/index.ts";
import {
  LOW_RESOURCE_SEED,
  lowResourceSection,
  subsetRows,
  subsetSize,
  trainingSubset,
} from "../lib/experiments/framework/low-resource.ts";
import type { GroupSummary, MetricSpec } from "../lib/experiments/framework/spec.ts";
import type { PackedTokens } from "../lib/data/pack.ts";
import type { PreparedSummarization } from "../lib/data/summarization.ts";
import { buildInfo } from "../lib/index.ts";
import type { Seq2SeqModel } from "../lib/models/bart.ts";
import { meanStd } from "../lib/metrics/stats.ts";
import { EXP1_SMALL, jobContext } from "./helpers/experiments.ts";
import { tmpDir } from "./helpers/tmp.ts";

// Constructed training data whose row i holds the id i (so a subset's rows can be read back from its tokens).
function packed(rows: number, width = 4): PackedTokens {
  const tokens = new Int32Array(rows * width);
  for (let i = 0; i < rows; i++) tokens.fill(i, i * width, (i + 1) * width);
  const lengths = new Int32Array(rows).fill(width);
  lengths[rows - 1] = 2;
  return {
    contextLength: width,
    sequences: rows,
    tokens,
    lengths,
    totalTokens: (rows - 1) * width + 2,
    documents: 7,
    streamTokens: rows * width,
    source: "wikitext-2/train (tokens)",
    fromCache: true,
    cacheFile: "/cache/file.bin",
  };
}

function pairs(rows: number): PreparedSummarization {
  const [S, T] = [3, 2];
  const sourceTokens = new Int32Array(rows * S);
  const targetTokens = new Int32Array(rows * T);
  for (let i = 0; i < rows; i++) {
    sourceTokens.fill(i, i * S, (i + 1) * S);
    targetTokens.fill(-i, i * T, (i + 1) * T);
  }
  return {
    sourceTokens,
    sourceLengths: Int32Array.from({ length: rows }, (_, i) => 1 + (i % S)),
    targetTokens,
    targetLengths: Int32Array.from({ length: rows }, (_, i) => 1 + (i % T)),
    maxSource: S,
    maxTarget: T,
    ids: Array.from({ length: rows }, (_, i) => `pair${i}`),
    read: rows,
    dropped: 0,
    truncatedSources: 0,
    truncatedTargets: 0,
    source: "dialogsum/train (jsonl)",
    fromCache: true,
    cacheFile: "/cache/sum.bin",
  };
}

/** The rows of a packed subset, read back from the ids its rows hold. */
const rowsOf = (d: PackedTokens) => Array.from({ length: d.sequences }, (_, i) => d.tokens[i * d.contextLength]!);

test("subsetRows: round(share × n) rows (at least one), ascending and distinct, seeded, nested, from the whole split", (t) => {
  const n = 1000;
  const tenth = subsetRows(n, 0.1);
  const hundredth = subsetRows(n, 0.01);
  t.is(tenth.length, 100);
  t.is(hundredth.length, 10);
  t.is(subsetRows(n, 0.0004).length, 1, "at least one row");
  t.is(subsetSize(n, 0.0015), 2, "rounded");
  t.is(subsetSize(33, 0.1), 3);
  t.is(subsetSize(10, 1), 10);
  t.throws(() => subsetSize(10, 0), { message: /share/ });
  for (const rows of [tenth, hundredth]) {
    t.deepEqual(
      [...rows],
      [...new Set(rows)].sort((a, b) => a - b),
      "ascending and distinct",
    );
    t.true(rows.every((r) => r >= 0 && r < n));
  }
  // Deterministic, and not the run's seed: the same rows on every call; another seed draws other rows.
  t.deepEqual(subsetRows(n, 0.1), tenth);
  t.deepEqual(subsetRows(n, 0.1, LOW_RESOURCE_SEED), tenth);
  t.notDeepEqual(subsetRows(n, 0.1, LOW_RESOURCE_SEED + 1), tenth);
  // Not a prefix (nor any run of consecutive rows): drawn from the whole split.
  t.notDeepEqual(
    [...tenth],
    Array.from({ length: 100 }, (_, i) => i),
  );
  t.true(tenth[tenth.length - 1]! - tenth[0]! > n / 2, "spread over the split");
  t.true(tenth.some((r, i) => i > 0 && r - tenth[i - 1]! > 1));
  // The shares differ, the smaller one within the larger.
  t.notDeepEqual([...hundredth], [...tenth.slice(0, 10)]);
  t.true(
    [...hundredth].every((r) => tenth.includes(r)),
    "nested",
  );
});

test("trainingSubset: whole rows of packed sequences or of pairs, with their lengths and ids; no cache file", (t) => {
  const d = packed(500);
  const s = trainingSubset(d, 0.1);
  const rows = [...subsetRows(500, 0.1)];
  t.is(s.sequences, 50);
  t.deepEqual(rowsOf(s), rows);
  t.is(s.tokens.length, 50 * 4);
  t.deepEqual(
    [...s.lengths],
    rows.map((r) => d.lengths[r]!),
  );
  t.is(
    s.totalTokens,
    rows.reduce((a, r) => a + d.lengths[r]!, 0),
  );
  t.is(s.contextLength, 4);
  t.is(s.source, "wikitext-2/train (tokens), 10 % sample");
  t.false("cacheFile" in s, "the subset is not the cache file's arrays");
  t.is(d.sequences, 500, "the split itself is untouched");

  const p = pairs(200);
  const q = trainingSubset(p, 0.05);
  const qr = [...subsetRows(200, 0.05)];
  t.is(q.ids.length, 10);
  t.deepEqual(
    q.ids,
    qr.map((r) => `pair${r}`),
  );
  t.deepEqual(
    Array.from({ length: 10 }, (_, i) => q.sourceTokens[i * 3]!),
    qr,
  );
  t.deepEqual(
    Array.from({ length: 10 }, (_, i) => -q.targetTokens[i * 2]!),
    qr,
  );
  t.deepEqual(
    [...q.sourceLengths],
    qr.map((r) => p.sourceLengths[r]!),
  );
  t.deepEqual(
    [...q.targetLengths],
    qr.map((r) => p.targetLengths[r]!),
  );
  t.is(q.maxSource, 3);
  t.is(q.source, "dialogsum/train (jsonl), 5 % sample");
});

test("exp-1: lowResource adds ce, brier and dpsm-linear per share and seed on the first model; nothing else changes", (t) => {
  const off = resolveConfig(exp1, "full", { lowResource: [] });
  const on = resolveConfig(exp1, "full");
  t.deepEqual(on.lowResource, [0.1, 0.01]);
  const [a, b] = [exp1Jobs(off), exp1Jobs(on)];
  t.is(b.length, a.length + 2 * 3 * 3);
  t.deepEqual(
    b.slice(0, a.length).map((j) => jobId(j.key)),
    a.map((j) => jobId(j.key)),
    "the other jobs are as before",
  );
  const extra = b.slice(a.length);
  t.deepEqual(
    extra.slice(0, 4).map((j) => jobId(j.key)),
    [
      "small/low-resource/ce-share0.1/seed0",
      "small/low-resource/brier-share0.1/seed0",
      "small/low-resource/dpsm-linear-share0.1/seed0",
      "small/low-resource/ce-share0.1/seed1",
    ],
  );
  t.deepEqual(
    extra.map((j) => j.trainShare),
    [...Array(9).fill(0.1), ...Array(9).fill(0.01)],
  );
  t.true(a.every((j) => j.trainShare === undefined));
  // The same loss (α warm-up over dpsmWarmup of the same steps) and ε as the main run of the variation.
  for (const j of extra) {
    const main = a.find((m) => m.key.variation === j.key.variation && m.key.setting === "clean" && !m.key.params)!;
    t.deepEqual(j.loss, main.loss, jobId(j.key));
    t.is(j.eps, main.eps);
  }
  // The efficiency audit times the same steps.
  const data = { train: packed(64), valid: packed(8), test: packed(8), ood: {} };
  const plans = (c: typeof on) =>
    exp1AuditPlans(c, data).map(({ trainer: _trainer, ...plan }) => JSON.parse(JSON.stringify(plan)) as unknown);
  t.deepEqual(plans(on), plans(off));
});

test("exp-1: a low-resource job's Trainer gets its share of the training sequences, the same for every variation and seed", (t) => {
  const c = resolveConfig(exp1, "quick", { lowResource: [0.1, 0.02], seeds: [0, 1] });
  const data = { train: packed(600), valid: packed(8), test: packed(8), ood: {} };
  const train = (job: Exp1Job) => {
    return exp1TrainerOptions(jobContext(c, job, data)).data.train;
  };
  const jobs = exp1Jobs(c);
  const main = jobs.find((j) => j.key.setting === "clean")!;
  t.is(train(main), data.train, "a main run trains on the whole split");
  const lowResource = jobs.filter((j) => j.key.setting === "low-resource");
  t.is(lowResource.length, 2 * 2 * 3);
  for (const share of [0.1, 0.02]) {
    const own = lowResource.filter((j) => j.key.params?.share === share);
    const expected = [...subsetRows(600, share)];
    for (const j of own) t.deepEqual(rowsOf(train(j)), expected, jobId(j.key));
  }
  t.is(rowsOf(train(lowResource[0]!)).length, 60);
});

test("exp-2: the grid's jobs (one per cell that is no main run, with its lr and loss) and the low-resource jobs", (t) => {
  const full = resolveConfig(exp2, "full");
  t.deepEqual(full.grid, { lr: [1e-5, 3e-5, 5e-5], smoothing: [0, 0.1], warmupShares: [0.1, 0.2, 0.3], seeds: [0] });
  const jobs = exp2Jobs(full) as FinetuneJob[];
  const off = exp2Jobs(resolveConfig(exp2, "full", { grid: false, lowResource: [] })) as FinetuneJob[];
  const extra = new Set(["hp-grid", "low-resource"]);
  t.deepEqual(
    jobs.filter((j) => !extra.has(j.key.setting)).map((j) => jobId(j.key)),
    off.map((j) => jobId(j.key)),
    "the main jobs are as before",
  );
  const grid = jobs.filter((j) => j.key.setting === "hp-grid");
  const lowResource = jobs.filter((j) => j.key.setting === "low-resource");
  // 3 lr × 2 smoothing × 3 warm-ups, less the two cells that are dpsm-warm10's and dpsm-warm20's runs at lr 3e-5.
  t.is(grid.length, 18 - 2);
  t.is(lowResource.length, 2 * 3 * 3);
  t.is(jobs.length, off.length + 16 + 18);
  t.true(
    [...grid, ...lowResource].every((j) => j.key.model === "bart-large"),
    "on the first model",
  );
  t.true(
    grid.every((j) => j.key.seed === 0),
    "the grid's seed",
  );
  const cells = gridCells(full);
  t.deepEqual(
    cells.filter((x) => x.main).map((x) => [x.lr, x.smoothing, x.warmup, x.main]),
    [
      [3e-5, 0, 0.1, "dpsm-warm10"],
      [3e-5, 0, 0.2, "dpsm-warm20"],
    ],
  );
  t.is(jobId(grid[0]!.key), "bart-large/hp-grid/dpsm-warm-lr0.00001-smoothing0-warmup0.1/seed0");
  for (const j of grid) {
    const { lr, smoothing, warmup } = j.key.params!;
    t.is(j.lr, lr);
    const warmupSteps = Math.round(warmup! * full.maxSteps);
    // ε = 0 is left out of the loss: the main runs' loss exactly.
    const loss = smoothing
      ? { kind: "dpsm", schedule: "linear", warmupSteps, smoothing }
      : { kind: "dpsm", schedule: "linear", warmupSteps };
    t.deepEqual(j.loss, loss as never, jobId(j.key));
    t.is(j.trainShare, undefined);
  }
  t.deepEqual(grid.filter((j) => j.key.params!.smoothing === 0.1).length, 9);
  t.deepEqual([...new Set(lowResource.map((j) => j.key.variation))], ["ce", "brier", "dpsm-warm10"]);
  for (const j of lowResource) {
    t.is(j.trainShare, j.key.params!.share);
    t.is(j.lr, undefined);
    const main = off.find((m) => m.key.variation === j.key.variation && m.key.setting === "clean")!;
    t.deepEqual(j.loss, main.loss);
  }
  // xsum-base: its lr (5e-5) is the grid's last, so those two cells are its main runs'.
  const base = resolveConfig(exp2, "xsum-base");
  t.deepEqual(
    gridCells(base)
      .filter((x) => x.main)
      .map((x) => x.lr),
    [5e-5, 5e-5],
  );
  // Grid seeds beyond the main runs' train every cell; a grid of other lrs shares no cell.
  t.is(gridCells(resolveConfig(exp2, "full", { grid: { seeds: [7] } })).filter((x) => x.main).length, 0);
  t.is(
    exp2Jobs(resolveConfig(exp2, "full", { grid: { lr: [2e-5] }, lowResource: [] })).filter(
      (j) => j.key.setting === "hp-grid",
    ).length,
    6,
  );
  // The audit times the main variations only, whatever the extra runs.
  const d = { train: pairs(64), valid: pairs(8) };
  const data = { "bart-large": d, "pegasus-large": d } as never;
  const plans = (c: typeof full) =>
    exp2AuditPlans(c, data).map(({ trainer: _trainer, ...plan }) => JSON.parse(JSON.stringify(plan)) as unknown);
  t.deepEqual(plans(full), plans(resolveConfig(exp2, "full", { grid: false, lowResource: [] })));
});

test("exp-2: finetuneTrainerOptions gives a grid job its lr and loss, a low-resource job its share of the pairs", (t) => {
  const c = resolveConfig(exp2, "quick", {
    lowResource: [0.1],
    grid: { lr: [2e-3], smoothing: [0, 0.1], warmupShares: [0.3] },
  });
  t.deepEqual(c.grid && c.grid.seeds, undefined, "the default: the first seed");
  const d = { train: pairs(300), valid: pairs(8) };
  const model = {} as Seq2SeqModel;
  const options = (job: FinetuneJob) => {
    return finetuneTrainerOptions(jobContext(c, job, { tiny: d } as never), job, model);
  };
  const jobs = exp2Jobs(c).filter((j): j is FinetuneJob => j.kind === "finetune");
  const main = jobs.find((j) => j.key.setting === "clean")!;
  t.is(options(main).lr, c.lr);
  t.is(options(main).data.train, d.train);
  const grid = jobs.filter((j) => j.key.setting === "hp-grid");
  t.deepEqual(
    grid.map((j) => jobId(j.key)),
    [
      "tiny/hp-grid/dpsm-warm-lr0.002-smoothing0-warmup0.3/seed0",
      "tiny/hp-grid/dpsm-warm-lr0.002-smoothing0.1-warmup0.3/seed0",
    ],
  );
  for (const j of grid) {
    const o = options(j);
    t.is(o.lr, 2e-3);
    t.deepEqual(o.loss, j.loss);
    t.is(o.data.train, d.train);
  }
  t.like(options(grid[1]!).loss, { smoothing: 0.1, warmupSteps: Math.round(0.3 * c.maxSteps) });
  const lowResource = jobs.filter((j) => j.key.setting === "low-resource");
  t.is(lowResource.length, 3);
  const expected = [...subsetRows(300, 0.1)].map((r) => `pair${r}`);
  for (const j of lowResource) {
    const o = options(j);
    t.deepEqual((o.data.train as PreparedSummarization).ids, expected, jobId(j.key));
    t.is(o.lr, c.lr);
  }
});

test("profiles and flags: low-resource on the GPU profiles, off on quick and cpu-study; the grid on full and xsum-base", (t) => {
  for (const p of ["wt2-small", "full"]) t.deepEqual(resolveConfig(exp1, p).lowResource, [0.1, 0.01], p);
  for (const p of ["quick", "cpu-study"]) t.deepEqual(resolveConfig(exp1, p).lowResource, [], p);
  t.false(
    exp1Jobs(resolveConfig(exp1, "cpu-study")).some((j) => j.key.setting === "low-resource"),
    "cpu-study keeps its runs",
  );
  for (const p of ["xsum-base", "full"]) {
    const c = resolveConfig(exp2, p);
    t.deepEqual(c.lowResource, [0.1, 0.01], p);
    t.like(c.grid, { lr: [1e-5, 3e-5, 5e-5], smoothing: [0, 0.1], warmupShares: [0.1, 0.2, 0.3] }, p);
  }
  const quick = resolveConfig(exp2, "quick");
  t.deepEqual([quick.lowResource, quick.grid], [[], false]);
  t.false(exp2Jobs(quick).some((j) => j.key.setting === "low-resource" || j.key.setting === "hp-grid"));
  // Shares are of the training split, below 1 (the main runs are share 1).
  t.throws(() => resolveConfig(exp1, "quick", { lowResource: [1] }), { message: /exp1 config\.lowResource\.0/ });
  t.throws(() => resolveConfig(exp2, "quick", { grid: { lr: [1e-3], smoothing: [1], warmupShares: [0.1] } }), {
    message: /exp2 config\.grid/,
  });
  const flags1 = parseExperimentArgs(settingFlags(exp1.schema), ["--low-resource", "0.1,0.01"]);
  t.deepEqual(flags1.settings, { lowResource: [0.1, 0.01] });
  const flags2 = parseExperimentArgs(settingFlags(exp2.schema), [
    "--grid.lr",
    "1e-5,3e-5",
    "--grid.smoothing",
    "0,0.1",
    "--grid.warmup-shares",
    "0.1",
  ]);
  t.deepEqual(flags2.settings, { grid: { lr: [1e-5, 3e-5], smoothing: [0, 0.1], warmupShares: [0.1] } });
  t.is(gridCells(resolveConfig(exp2, "quick", flags2.settings as never)).length, 4);
  t.deepEqual(parseExperimentArgs(settingFlags(exp2.schema), ["--no-grid"]).settings, { grid: false });
  // What the report says was run, or left out.
  t.regex(
    ablationsRun(resolveConfig(exp2, "full")),
    /Low-resource runs: 10 %, 1 % of the training pairs .* for ce, brier, dpsm-warm10/,
  );
  t.regex(
    ablationsRun(resolveConfig(exp2, "full")),
    /Hyper-parameter grid: dpsm-warm on bart-large .*\(18 cells, seed 0; 2 of them main runs\)/,
  );
  t.deepEqual(ablationsAbsent(resolveConfig(exp2, "full")), []);
  t.is(ablationsAbsent(quick).length, 2);
});

type Values = Record<string, number[]>;

/** A Markdown table row of these cells, whatever their padding. */
const row = (...cells: string[]) =>
  new RegExp(`\\| +${cells.map((c) => c.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join(" +\\| +")} +\\|`);

/** A group of constructed per-seed values (the fields the report sections read). */
function group(variation: string, setting: string, values: Values, params?: Record<string, number>, seeds?: number[]) {
  const s = seeds ?? Object.values(values)[0]!.map((_, i) => i);
  return {
    key: { model: "tiny", setting, variation, ...(params ? { params } : {}) },
    name: variation,
    clock: "run" as const,
    seeds: s,
    metrics: Object.fromEntries(Object.entries(values).map(([k, v]) => [k, meanStd(v)])),
    perSeed: values,
    sets: {},
    versus: {},
    extra: {},
    observations: [],
  };
}

const METRICS = [
  { name: "ppl", label: "PPL", digits: 2 },
  { name: "ece10", label: "ECE-10", digits: 4 },
] as const satisfies readonly MetricSpec[];

test("the Low-resource training section: metrics per share beside the main runs, DPSM − CE per share, figures", async (t) => {
  const out = tmpDir(t, "dpsm-low-resource-");
  const groups = [
    group("ce", "clean", { ppl: [30, 32], ece10: [0.02, 0.03] }),
    group("dpsm-linear", "clean", { ppl: [31, 32], ece10: [0.01, 0.02] }),
    group("ce", "low-resource", { ppl: [300, 320], ece10: [0.2, 0.22] }, { share: 0.1 }),
    group("dpsm-linear", "low-resource", { ppl: [290, 330], ece10: [0.1, 0.11] }, { share: 0.1 }),
    // Not a low-resource share: a sweep run must not be read as one.
    group("ce", "clean", { ppl: [1, 1], ece10: [1, 1] }, { warmup: 0.1 }),
  ] as unknown as GroupSummary<"ppl" | "ece10">[];
  const section = (shares: number[]) =>
    lowResourceSection({
      groups,
      model: "tiny",
      shares,
      variations: ["ce", "brier", "dpsm-linear"],
      dpsm: "dpsm-linear",
      metrics: METRICS,
      differences: ["ppl", "ece10"],
      figures: { out, metrics: ["ppl"], title: "tiny" },
    });
  const lines = await section([0.1, 0.01]);
  const md = lines.join("\n");
  t.true(md.startsWith("### Low-resource training"));
  t.regex(md, row("100 % (main runs)", "ce", "0, 1", "31.00 ± 1.41", "0.0250 ± 0.0071"));
  t.regex(md, row("10 %", "dpsm-linear", "0, 1", "310.00 ± 28.28", "0.1050 ± 0.0071"));
  t.notRegex(md, /\| 1 % /, "no row for a share without runs");
  t.notRegex(md, /brier/, "no row for a variation without runs");
  // DPSM − CE per share: the mean difference over seeds with its paired t interval.
  t.regex(md, row("10 %", "0, 1", "0.00 [-127.06, 127.06]", "-0.1050 [-0.1685, -0.0415]"));
  t.regex(md, row("100 % (main runs)", "0, 1", "+0.50 [-5.85, 6.85]", "-0.0100 [-0.0100, -0.0100]"));
  t.true(md.includes("![PPL by training share](figures/tiny-low-resource-ppl.png)"));
  for (const ext of ["png", "svg"])
    t.true(fs.statSync(path.join(out, "figures", `tiny-low-resource-ppl.${ext}`)).size > 1000);
  t.deepEqual(await section([0.5]), [], "nothing without a finished low-resource run");
});

test("the grid section: a ROUGE-L and an ECE-10 heatmap per smoothing, a table, main runs' cells from their seeds", async (t) => {
  const out = tmpDir(t, "dpsm-grid-");
  const c = resolveConfig(exp2, "quick", {
    lr: 1e-3,
    seeds: [0, 1],
    grid: { lr: [1e-3, 2e-3], smoothing: [0, 0.1], warmupShares: [0.1, 0.2] },
  });
  const values = (rougeL: number, ece10: number) => ({ rougeL: [rougeL], ece10: [ece10], nll: [2] });
  const cell = (lr: number, smoothing: number, warmup: number, rougeL: number, ece10: number) =>
    group("dpsm-warm", "hp-grid", values(rougeL, ece10), { lr, smoothing, warmup }, [0]);
  const groups = [
    // dpsm-warm10 and dpsm-warm20 at lr 1e-3 are the ε = 0 cells at that lr: seed 0 only is the grid's.
    group("dpsm-warm10", "clean", { rougeL: [20, 40], ece10: [0.05, 0.5], nll: [2, 2] }),
    group("dpsm-warm20", "clean", { rougeL: [21, 41], ece10: [0.06, 0.6], nll: [2, 2] }),
    cell(2e-3, 0, 0.1, 22, 0.07),
    cell(2e-3, 0, 0.2, 23, 0.08),
    cell(1e-3, 0.1, 0.1, 24, 0.09),
    cell(2e-3, 0.1, 0.2, 25, 0.1),
  ] as unknown as Exp2Group[];
  t.deepEqual(
    gridCells(c).map((x) => x.main ?? "grid run"),
    ["dpsm-warm10", "dpsm-warm20", "grid run", "grid run", "grid run", "grid run", "grid run", "grid run"],
  );
  const md = (await gridSection(c, "tiny", groups, out)).join("\n");
  t.true(md.startsWith("### Hyper-parameter grid (dpsm-warm"));
  for (const name of ["rougeL-smoothing0", "ece10-smoothing0", "rougeL-smoothing0.1", "ece10-smoothing0.1"]) {
    t.true(md.includes(`(figures/tiny-grid-${name}.png)`), name);
    t.true(fs.statSync(path.join(out, "figures", `tiny-grid-${name}.svg`)).size > 1000, name);
  }
  const svg = fs.readFileSync(path.join(out, "figures", "tiny-grid-rougeL-smoothing0.svg"), "utf8");
  for (const value of ["20.00", "21.00", "22.00", "23.00"]) t.true(svg.includes(value), value);
  t.false(svg.includes("40.00"), "seed 1 of the main run is not the grid's");
  t.regex(md, row("1e-3", "0", "10 %", "0", "20.00", "0.0500", "2.000", "main run dpsm-warm10"));
  t.regex(md, row("2e-3", "0.1", "20 %", "0", "**25.00**", "0.1000", "2.000", "grid run"));
  t.notRegex(md, /\| +1e-3 +\| +0\.1 +\| +20 %/, "a cell without a result has no row");
  t.deepEqual(await gridSection(c, "tiny", [], out), []);
});

test.serial(
  "exp-1 end to end on WikiText-2: low-resource runs train on their share and get their report section",
  async (t) => {
    const out = tmpDir(t, "dpsm-exp1-low-");
    const config = resolveConfig(exp1, "quick", {
      ...EXP1_SMALL,
      variations: ["ce", "dpsm-linear"],
      lowResource: [0.25],
    });
    const jobs = exp1Jobs(config);
    t.deepEqual(
      jobs.map((j) => jobId(j.key)),
      [
        "tiny/clean/ce/seed0",
        "tiny/clean/dpsm-linear/seed0",
        "tiny/low-resource/ce-share0.25/seed0",
        "tiny/low-resource/brier-share0.25/seed0",
        "tiny/low-resource/dpsm-linear-share0.25/seed0",
      ],
    );
    const run = await runExperiment(exp1, config, out, { say: () => {}, progress: false });
    t.is(run.results.length, jobs.length);
    // The same batches of the same seed: the low-resource CE run saw other sequences than the main one.
    const [main, low] = [run.results[0]!, run.results[2]!];
    t.not(main.losses[0]?.loss, low.losses[0]?.loss);
    const { report } = await writeReport(exp1, config, run, out, buildInfo());
    const md = fs.readFileSync(report, "utf8");
    t.true(md.includes("### Low-resource training"));
    t.regex(md, /Low-resource runs: 25 % of the training sequences .* for ce, brier, dpsm-linear/);
    t.regex(md, /\| 25 % +\| brier +\| +0 +\|/);
    t.regex(md, /dpsm-linear − CE per share/);
    for (const f of ["tiny-low-resource-ppl", "tiny-low-resource-ece10"]) {
      t.true(fs.statSync(path.join(out, "figures", `${f}.png`)).size > 1000, f);
    }
    // The low-resource runs stay out of the main tables: the final metrics list the two main variations only.
    const final = md.slice(md.indexOf("### Final metrics"), md.indexOf("### Learning curves"));
    t.notRegex(final, /training split/);
    t.notRegex(md, /Not run in this profile: .*low-resource/);
  },
);

test.serial(
  "exp-2 end to end: low-resource and grid runs fine-tune, and their sections reach the report",
  async (t) => {
    const out = tmpDir(t, "dpsm-exp2-low-");
    const config = resolveConfig(exp2, "quick", {
      pretrain: { maxSteps: 2, evalEvery: 2, evalMaxSequences: 4, batchSize: 4 },
      trainMaxExamples: 32,
      batchSize: 4,
      maxSteps: 2,
      lrWarmupSteps: 1,
      evalEvery: 2,
      evalMaxSequences: 4,
      testMaxExamples: 3,
      transfer: [],
      rougeBootstrap: 20,
      efficiencyAudit: false,
      generation: { maxLength: 8 },
      variations: ["ce", "dpsm-warm10"],
      baselines: [],
      summarySwap: false,
      examples: 0,
      lowResource: [0.5],
      grid: { lr: [1e-3, 2e-3], smoothing: [0.1], warmupShares: [0.1] },
    });
    const jobs = exp2Jobs(config);
    t.deepEqual(
      jobs.map((j) => jobId(j.key)),
      [
        "tiny/pretrain/denoising/seed0",
        "tiny/clean/ce/seed0",
        "tiny/clean/dpsm-warm10/seed0",
        "tiny/low-resource/ce-share0.5/seed0",
        "tiny/low-resource/brier-share0.5/seed0",
        "tiny/low-resource/dpsm-warm10-share0.5/seed0",
        "tiny/hp-grid/dpsm-warm-lr0.001-smoothing0.1-warmup0.1/seed0",
        "tiny/hp-grid/dpsm-warm-lr0.002-smoothing0.1-warmup0.1/seed0",
      ],
    );
    const run = await runExperiment(exp2, config, out, { say: () => {}, progress: false });
    t.is(run.results.length, jobs.length);
    // The smoothed loss reached the run (its result records the loss it trained with).
    const grid = run.results.filter((r) => r.key.setting === "hp-grid");
    t.deepEqual(
      grid.map((r) => (r.kind === "finetune" ? r.loss : undefined)),
      [0, 1].map(() => ({ kind: "dpsm", schedule: "linear", warmupSteps: 1, smoothing: 0.1 })),
    );
    const { report } = await writeReport(exp2, config, run, out, buildInfo());
    const md = fs.readFileSync(report, "utf8");
    for (const section of [
      "Low-resource runs: 50 % of the training pairs",
      "Hyper-parameter grid: dpsm-warm on tiny",
      "### Low-resource training",
      "dpsm-warm10 − CE per share",
      "### Hyper-parameter grid (dpsm-warm",
      "(figures/tiny-grid-rougeL-smoothing0.1.png)",
      "(figures/tiny-grid-ece10-smoothing0.1.png)",
      "(figures/tiny-low-resource-rougeL.png)",
    ]) {
      t.true(md.includes(section), section);
    }
    t.regex(md, /\| +2e-3 +\| +0\.1 +\| +10 % +\| 0 +\|.*\| grid run +\|/);
    // They stay out of the main tables.
    const final = md.slice(md.indexOf("### Final metrics"), md.indexOf("### ROUGE with"));
    t.notRegex(final, /training split|dpsm-warm \(/);
  },
);
