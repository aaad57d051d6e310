// Experiment 1's part of the report: what was run, the metric definitions, and per model the final metrics,
// learning curves, convergence, efficiency (the interleaved audit), robustness (label noise, out-of-domain
// sets), the warm-up sweep, the AdamW-ε ablation, training diagnostics, reliability diagrams, samples and the
// verdicts; figures under figures/ (PNG + SVG).
import path from "node:path";

import { directionalStars, formatMeanStd, type PairedTTest, pairedTTest } from "../../metrics/stats.ts";
import type { PackedTokens } from "../../data/pack.ts";
import { poolReliabilityBins } from "../../metrics/calibration.ts";
import { reliabilityDiagram } from "../../report/plots.ts";
import { fmt, formatTable } from "../../report/table.ts";
import { shaoRecipeNote } from "../framework/losses.ts";
import {
  comparisons,
  comparisonsTable,
  convergenceTable,
  curveChart,
  diagnosticsChart,
  efficiencyTable,
  energyNote,
  environmentNote,
  metricBars,
  metricsTable,
  modelSections,
} from "../framework/report.ts";
import { formatP, TestFamily } from "../framework/decision.ts";
import { verdictSection } from "../framework/verdicts.ts";
import { auditSection, runShapeAudit } from "../framework/efficiency-audit.ts";
import { type EvaluationSet, evaluationSetsLine, packedTokens } from "../framework/eval-sets.ts";
import { lowResourceSection, shareLabel } from "../framework/low-resource.ts";
import type { ReportBody, ReportContext, Verdict } from "../framework/spec.ts";
import { type Exp1Group, METRICS, type Metric, testEvalOf } from "./analysis.ts";
import { BASELINES, type Exp1Config, FIXED_ALPHA, LOW_RESOURCE_VARIATIONS, TEMPSCALE } from "./config.ts";
import type { Exp1Job } from "./jobs.ts";
import type { Exp1Data } from "./data.ts";
import type { Exp1Result } from "./run-job.ts";
import { dpsmVariationsOf, exp1Verdicts, exp1VerdictTests } from "./verdicts.ts";

type Exp1ReportContext = ReportContext<Exp1Config, Exp1Job, Exp1Result, Exp1Data, Metric>;

const DEFINITIONS = [
  "**PPL** = exp(mean token NLL) over non-ignored GPT-2 BPE tokens (token level, not word level).",
  "**ECE-B**: equal-width bins over the top-1 probability; Σ_b (n_b/N)·|acc_b − conf_b|, B = 10 and 100.",
  "**Brier** = Σ_k (p_k − y_k)² per token (0…2), averaged. " + "**Spherical score** = p_y/‖p‖₂ (higher is better).",
];

const count = (n: number) => n.toLocaleString("en-US");
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const left = (header: string) => ({ header, align: "left" as const });

/** The sets the runs were evaluated on, each with the cap it was evaluated under (0: whole). */
export function exp1EvaluationSets(c: Exp1Config, data: Exp1Data): EvaluationSet[] {
  const set = (name: string, d: PackedTokens, cap: number, setting: string): EvaluationSet => ({
    name,
    total: d.sequences,
    cap,
    setting,
    unit: "sequences",
    tokens: packedTokens(d.lengths),
  });
  const selection = c.baselines.includes(TEMPSCALE) ? "checkpoint selection, temperature fit" : "checkpoint selection";
  return [
    set(`validation (${selection})`, data.valid, c.evalMaxSequences, "evalMaxSequences"),
    set("test", data.test, c.testMaxSequences, "testMaxSequences"),
    ...c.ood.map((name) => set(`OOD ${name}`, data.ood[name]!, c.oodMaxSequences, "oodMaxSequences")),
  ];
}

function whatWasRun(c: Exp1Config, data: Exp1Data): string[] {
  const tokens =
    `GPT-2 BPE tokens: train ${count(data.train.totalTokens)}, valid ${count(data.valid.totalTokens)}, ` +
    `test ${count(data.test.totalTokens)}`;
  const dataset = typeof c.dataset === "string" ? c.dataset : c.dataset.dir;
  const stopping = c.patience ? `after ${c.patience} evaluations without improvement` : "off";
  const noise = c.labelNoise
    ? `${c.labelNoise.tokenFraction * 100} % of targets in ${c.labelNoise.stepFraction * 100} % of steps, ` +
      `for ${c.labelNoise.variations.join(", ")}`
    : "off";
  const lines = [
    `Models: ${c.models.map((m) => `GPT-2 ${m}`).join(", ")}, trained from scratch. Data: ${dataset} (${tokens}).`,
    `${c.maxSteps} optimiser steps of ${c.batchSize * c.gradAccumulation} sequences × ${c.contextLength} tokens; ` +
      `AdamW (ε ${c.eps.toExponential()}), LR warm-up ${c.lrWarmupSteps} then cosine; evaluation every ${c.evalEvery} steps on ` +
      `${c.evalMaxSequences || "all"} validation sequences; early stopping ${stopping}; ` +
      "best-validation checkpoint evaluated.",
    `Seeds: ${c.seeds.join(", ")} (each seed: the same initialisation and batch order for every variation). ` +
      `Variations: ${c.variations.join(", ")}; DPSM warm-up ${Math.round(c.dpsmWarmup * 100)} % of the steps.`,
    ...fixedAlphaNote(c),
    ...(c.variations.includes("ce-then-brier") ? [shaoRecipeNote("ce-then-brier")] : []),
    `Baselines: ${c.baselines.join(", ") || "none"}. Label noise: ${noise}. OOD sets: ${c.ood.join(", ") || "none"}.`,
    `Warm-up sweep: ${c.warmupSweep.length ? c.warmupSweep.map((w) => `${Math.round(w * 100)} %`).join(", ") : "none"}. ` +
      `AdamW-ε ablation: ${c.epsAblation ? `ε ${c.epsAblation.eps.toExponential()} for ${c.epsAblation.variations.join(", ")}` : "none"}.`,
    `Low-resource runs: ${
      c.lowResource.length
        ? `${c.lowResource.map(shareLabel).join(", ")} of the training sequences (a seeded sample, the same for ` +
          `every run of a share) for ${LOW_RESOURCE_VARIATIONS.join(", ")}, every seed, GPT-2 ${c.models[0]}, ` +
          `${c.maxSteps} steps as the main runs`
        : "none"
    }.`,
    evaluationSetsLine(exp1EvaluationSets(c, data)),
  ];
  if (c.profile === "full" && c.dataset === "wikitext-2") {
    lines.push("The full profile's design is WikiText-103; WikiText-2 was used here.");
  }
  if (c.profile !== "full") {
    const missing = ["small", "medium", "large"].filter((m) => !c.models.includes(m as never)).map((m) => `GPT-2 ${m}`);
    const baselines = BASELINES.filter((b) => !c.baselines.includes(b));
    if (c.dataset !== "wikitext-103") missing.push("WikiText-103");
    if (c.seeds.length < 3) missing.push(`seeds beyond ${c.seeds.length}`);
    if (c.warmupSweep.length === 0) missing.push("the warm-up sweep");
    if (c.lowResource.length === 0) missing.push("the low-resource runs (the seed's angle 3; --low-resource)");
    if (baselines.length) missing.push(`baselines ${baselines.join(" and ")}`);
    lines.push(`Not run in this profile: ${missing.join(", ") || "—"}.`);
  }
  return lines;
}

/** The fixed-α runs are an ablation: α constant from step 0; the verdicts judge the warm-up schedules only. */
function fixedAlphaNote(c: Exp1Config): string[] {
  const fixed = c.variations.filter((v) => (FIXED_ALPHA as readonly string[]).includes(v));
  if (!fixed.length) return [];
  return [
    `Fixed-α ablation: ${fixed.join(", ")} train on (1 − α)·CE + α·Brier with α constant from the first step; ` +
      "they are shown beside the others and judged by no criterion (the verdicts are about the warm-up schedules).",
  ];
}

type Figures = Record<"ppl" | "ece" | "reliability" | "eceBars" | "diagnostics" | "epsDiagnostics", string>;

/** The model's figures; returns their paths relative to the report, without extension. */
async function figures(model: string, rows: Exp1Group[], out: string): Promise<Figures> {
  const clean = rows.filter((r) => r.key.setting === "clean" && r.key.variation !== TEMPSCALE);
  const fig: Figures = {
    ppl: `figures/${model}-ppl`,
    ece: `figures/${model}-ece`,
    reliability: `figures/${model}-reliability`,
    eceBars: `figures/${model}-ece-bars`,
    diagnostics: `figures/${model}-diagnostics`,
    epsDiagnostics: `figures/${model}-eps-diagnostics`,
  };
  const file = (name: keyof Figures) => path.join(out, fig[name]);
  const title = (what: string) => `GPT-2 ${model}: ${what}`;
  const ppl = { title: title("validation perplexity"), yTitle: "validation PPL", logY: true };
  await curveChart(clean, "ppl", ppl, file("ppl"));
  await curveChart(clean, "ece10", { title: title("validation ECE-10"), yTitle: "ECE (10 bins)" }, file("ece"));
  const panels = ["ce", TEMPSCALE, "brier", "dpsm-linear", "dpsm-cosine"]
    .map((v) => rows.find((r) => r.key.setting === "clean" && r.key.variation === v && !r.key.params))
    .filter((r): r is Exp1Group => !!r)
    .map((r) => ({
      name: r.name,
      bins: poolReliabilityBins(r.observations.map((o) => testEvalOf(o).bins10)),
      ece: r.metrics.ece10.mean,
    }));
  await reliabilityDiagram(
    { title: title("reliability on the test split (10 bins, pooled over seeds)"), panels },
    file("reliability"),
  );
  const main = clean.filter((r) => !r.key.params);
  await diagnosticsChart(main, title("training diagnostics (means over seeds)"), file("diagnostics"));
  const ablated = clean.filter((r) => r.key.params?.eps !== undefined);
  if (ablated.length) {
    const pairs = [...ablated.map((r) => main.find((m) => m.key.variation === r.key.variation)), ...ablated];
    const shown = pairs.filter((r): r is Exp1Group => !!r);
    await diagnosticsChart(shown, title("training diagnostics, AdamW ε ablation"), file("epsDiagnostics"));
  }
  await metricBars(
    rows.filter((r) => r.key.setting === "clean"),
    "ece10",
    { title: title("test ECE-10 by variation"), yTitle: "ECE (10 bins)" },
    file("eceBars"),
  );
  return fig;
}

const withTemperature = (g: Exp1Group) =>
  g.extra.temperature ? `${g.name} (T = ${fmt(g.extra.temperature.mean, 3)})` : g.name;
/** The final metrics' paired tests: PPL and ECE-10 against CE, ECE-10 against Brier. */
const TESTS: [Metric, string][] = [
  ["ppl", "ce"],
  ["ece10", "ce"],
  ["ece10", "brier"],
];
/** The means table, then (with two seeds or more) the paired comparisons with their intervals and Holm p. */
function finalMetrics(rows: Exp1Group[], family: TestFamily): string[] {
  const table = comparisonsTable(rows, METRICS, TESTS, family, withTemperature);
  return [
    metricsTable(rows, METRICS, withTemperature),
    "",
    ...(table
      ? [
          "Paired comparisons over seeds (experiment 1 has no per-sequence metrics, so every interval here is over " +
            "seeds only):",
          "",
          table,
          "",
        ]
      : []),
  ];
}

function labelNoiseTable(noisy: Exp1Group[], ceClean: Exp1Group | undefined): string {
  return formatTable(
    [left("variation (trained with noise)"), "PPL", "ECE-10", "Brier", "Δ PPL vs clean CE", "Δ ECE-10 vs clean CE"],
    noisy.map((r) => [
      r.name,
      formatMeanStd(r.metrics.ppl, 2),
      formatMeanStd(r.metrics.ece10, 4),
      formatMeanStd(r.metrics.brier, 4),
      ceClean ? fmt(r.metrics.ppl.mean - ceClean.metrics.ppl.mean) : "–",
      ceClean ? fmt(r.metrics.ece10.mean - ceClean.metrics.ece10.mean, 4) : "–",
    ]),
  );
}

/** How flat CE's validation curve is at the end: its PPL over the last fifth of the steps (mean over seeds). */
function ceFlattening(main: Exp1Group[], maxSteps: number): string | undefined {
  const ce = main.find((g) => g.key.variation === "ce");
  if (!ce) return undefined;
  const curve = ce.observations.map((o) => o.curve ?? []);
  const at = (step: number) => mean(curve.map((c) => c.find((p) => p.step === step)?.ppl ?? NaN));
  const steps = [...new Set(curve.flat().map((p) => p.step))].sort((a, b) => a - b);
  const from = steps.find((s) => s >= 0.8 * maxSteps);
  const to = steps.at(-1);
  if (from === undefined || to === undefined || from === to) return undefined;
  const [a, b] = [at(from), at(to)];
  return (
    `How near CE is to its plateau: its validation PPL went from ${fmt(a)} at step ${from} to ${fmt(b)} at step ` +
    `${to} (${fmt((100 * (b - a)) / a, 1)} %) over the last fifth of the steps, mean over seeds.`
  );
}

/** The low-resource section's columns (test split, best checkpoint). */
const LOW_RESOURCE_METRICS = METRICS.filter((m) => ["ppl", "ece10", "ece100", "brier", "spherical"].includes(m.name));

const EPS_METRICS = [
  ["ppl", "PPL", 2],
  ["ece10", "ECE-10", 4],
  ["brier", "Brier", 4],
] as const;

/** Each ablated variation against its main run, per metric: the paired test over their common seeds. */
function epsComparisons(main: Exp1Group[], ablated: Exp1Group[]) {
  return ablated.flatMap((a) => {
    const m = main.find((r) => r.key.variation === a.key.variation);
    if (!m) return [];
    return EPS_METRICS.map(([metric, label, digits]) => {
      const seeds = a.seeds.filter((s) => m.seeds.includes(s));
      const x = seeds.map((s) => a.perSeed[metric][a.seeds.indexOf(s)]!);
      const y = seeds.map((s) => m.perSeed[metric][m.seeds.indexOf(s)]!);
      const t: PairedTTest | undefined = pairedTTest(x, y);
      return { id: `eps|${a.key.model}|${a.name}|${metric}`, a, m, metric, label, digits, t };
    });
  });
}

/**
 * Each ablated variation beside its main run: the metrics at both ε, their difference with its 95 % t interval and
 * its paired test (two-sided p, Holm-adjusted over the report's family).
 */
function epsAblationTable(main: Exp1Group[], ablated: Exp1Group[], mainEps: number, family: TestFamily): string {
  const rows = epsComparisons(main, ablated).map(({ id, a, m, metric, label, digits, t }) => {
    const adjusted = t ? family.adjusted(id) : NaN;
    return [
      a.key.variation,
      label,
      formatMeanStd(m.metrics[metric], digits),
      formatMeanStd(a.metrics[metric], digits),
      fmt(a.metrics[metric].mean - m.metrics[metric].mean, digits),
      t ? `[${fmt(t.low, digits)}, ${fmt(t.high, digits)}]` : "–",
      t ? formatP(t.p) : "–",
      t ? `${formatP(adjusted)}${directionalStars(adjusted, t.mean < 0)}` : "–",
    ];
  });
  const eps = ablated[0]?.key.params?.eps ?? NaN;
  return formatTable(
    [
      left("variation"),
      left("metric"),
      `ε ${mainEps.toExponential()}`,
      `ε ${eps.toExponential()}`,
      "Δ (small ε − main)",
      "95 % CI (t)",
      "p (paired t)",
      "Holm p",
    ],
    rows,
  );
}

/** A model's groups as the report's sections split them. */
function partsOf(groups: readonly Exp1Group[], model: string) {
  const rows = groups.filter((g) => g.key.model === model);
  const clean = rows.filter((r) => r.key.setting === "clean");
  const main = clean.filter((r) => !r.key.params);
  const sweep = clean.filter((r) => r.key.variation === "dpsm-linear" && r.key.params?.eps === undefined);
  const ablated = clean.filter((r) => r.key.params?.eps !== undefined);
  return { rows, clean, main, sweep, ablated };
}

/**
 * Every p-value the report shows, as one family for Holm's adjustment: per model the final metrics' tests (main
 * runs and the warm-up sweep), the ε ablation's, and the verdicts' one-sided significance tests.
 */
function exp1Family(ctx: Exp1ReportContext): TestFamily {
  const family = new TestFamily();
  const add = (id: string, p: number) => {
    if (!family.has(id)) family.add(id, p);
  };
  for (const model of ctx.config.models) {
    const { main, sweep, ablated } = partsOf(ctx.groups, model);
    for (const rows of [main, sweep.length > 1 ? sweep : []]) {
      for (const x of comparisons(rows, METRICS, TESTS)) add(x.id, x.test.p);
    }
    for (const x of epsComparisons(main, ablated)) if (x.t) add(x.id, x.t.p);
    for (const dpsm of dpsmVariationsOf(ctx.config)) {
      for (const [id, p] of Object.entries(exp1VerdictTests(ctx.groups, model, dpsm))) add(id, p);
    }
  }
  return family;
}

function oodTable(rows: Exp1Group[], sets: string[]): string {
  return formatTable(
    [left("variation"), ...sets],
    rows.map((r) => [
      r.name,
      ...sets.map((s) => {
        const m = r.sets[s]?.metrics;
        return m ? `${fmt(m.ppl.mean, 1)} / ${fmt(m.ece10.mean, 4)}` : "–";
      }),
    ]),
  );
}

/** The sections of one model; its verdicts go into `verdicts` (by DPSM variation) as well. */
async function modelSection(
  ctx: Exp1ReportContext,
  model: string,
  verdicts: Record<string, Verdict[]>,
  family: TestFamily,
): Promise<string[]> {
  const c = ctx.config;
  const { rows, clean, main, sweep, ablated } = partsOf(ctx.groups, model);
  const fig = await figures(model, rows, ctx.out);
  const lines: string[] = [`## GPT-2 ${model}`, ""];
  lines.push("### Final metrics (test split, best checkpoint)", "", ...finalMetrics(main, family));
  lines.push(
    "### Learning curves",
    "",
    `![validation PPL vs wall-clock](${fig.ppl}.png)`,
    "",
    `![validation ECE vs wall-clock](${fig.ece}.png)`,
    "",
    `SVG: [PPL](${fig.ppl}.svg), [ECE](${fig.ece}.svg); ` +
      `per-variation ECE: [PNG](${fig.eceBars}.png), [SVG](${fig.eceBars}.svg).`,
    "",
  );
  const plateau = ceFlattening(main, c.maxSteps);
  if (plateau) lines.push(plateau, "");
  lines.push("### Convergence", "", convergenceTable(clean, "ce"), "");
  const memory = c.device.startsWith("cuda") ? "GPU allocated" : "RSS";
  // The audit of the runs' own step: the verdicts' efficiency and the audited time come from it.
  const audit = runShapeAudit(ctx.audits, model);
  lines.push("### Efficiency", "");
  if (ctx.audits.some((a) => a.model === model)) {
    lines.push(
      ...auditSection(ctx.audits, model),
      "The training runs' own step times and peak memory (runs at different times; their wall-clocks move " +
        "with whatever else the machine did):",
      "",
    );
  }
  lines.push(efficiencyTable(clean, "ce", memory), "", energyNote(clean), "");

  const noisy = rows.filter((r) => r.key.setting === "label-noise");
  if (noisy.length) {
    const ceClean = main.find((r) => r.key.variation === "ce");
    lines.push("### Robustness: label noise", "", labelNoiseTable(noisy, ceClean), "");
  }
  const sets = [...new Set(clean.flatMap((r) => Object.keys(r.sets)))];
  if (sets.length) lines.push("### Robustness: out-of-domain sets (PPL / ECE-10)", "", oodTable(main, sets), "");
  if (sweep.length > 1) lines.push("### Warm-up sweep (dpsm-linear)", "", ...finalMetrics(sweep, family));
  if (ablated.length) {
    lines.push(
      "### AdamW ε ablation",
      "",
      "AdamW divides each update by √v̂ + ε. Where gradients are of ε's order (Brier's at initialisation), ε " +
        "shrinks the step; a far smaller ε removes that. Same seeds, batches and schedule as the main runs.",
      "",
      epsAblationTable(main, ablated, c.eps, family),
      "",
      `![diagnostics of the ε ablation](${fig.epsDiagnostics}.png)`,
      "",
    );
  }
  lines.push(
    ...(await lowResourceSection({
      groups: rows,
      model,
      shares: c.lowResource,
      variations: LOW_RESOURCE_VARIATIONS,
      dpsm: "dpsm-linear",
      metrics: LOW_RESOURCE_METRICS,
      differences: ["ppl", "ece10", "brier"],
      figures: { out: ctx.out, metrics: ["ppl", "ece10"], title: `GPT-2 ${model}` },
    })),
  );
  lines.push(
    "### Training diagnostics",
    "",
    "Means over seeds at each logged step: α; the CE and Brier scores of the training tokens (from the fused " +
      "kernel's statistics, whatever the run trained on); the gradient norm before clipping; the " +
      "update-to-weight ratio ‖Δθ‖/‖θ‖ of each AdamW step.",
    "",
    `![training diagnostics](${fig.diagnostics}.png)`,
    "",
    `[SVG](${fig.diagnostics}.svg)`,
    "",
  );
  lines.push(
    "### Reliability",
    "",
    `![reliability diagrams](${fig.reliability}.png)`,
    "",
    `[SVG](${fig.reliability}.svg)`,
    "",
  );
  lines.push("### Samples (best checkpoint, same prompt; greedy unless top-k > 1)", "");
  for (const r of main.filter((x) => x.key.variation !== TEMPSCALE)) {
    const o = r.observations[0]!;
    const s = o.source.sample;
    const continuation = s.continuation.replace(/\s+/g, " ").replace(/\*/g, "\\*");
    lines.push(`**${r.name}** (seed ${o.key.seed}): ${s.prompt}*${continuation}*`, "");
  }
  const judge = (dpsm: string) => exp1Verdicts(ctx.groups, model, dpsm, { audit, family });
  lines.push(...verdictSection(dpsmVariationsOf(c), judge, verdicts));
  return lines;
}

export async function exp1Report(ctx: Exp1ReportContext): Promise<ReportBody> {
  const c = ctx.config;
  const family = exp1Family(ctx);
  const { sections, verdicts } = await modelSections(c.models, ctx.groups, (model, v) =>
    modelSection(ctx, model, v, family),
  );
  return {
    environment: environmentNote(ctx.build, c.device, c.precision),
    run: whatWasRun(c, ctx.data),
    definitions: DEFINITIONS,
    sections,
    verdicts,
  };
}
