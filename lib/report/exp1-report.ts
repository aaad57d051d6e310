// Experiment 1's report: report.md (tables, figures, samples, verdicts), results.json (every number), and
// figures/ (PNG + SVG): learning curves against wall-clock, reliability diagrams, the ECE of each variation.
import fs from "node:fs";
import path from "node:path";

import { type Exp1Config, exp1Jobs } from "../experiment/exp1-config.ts";
import { dpsmVariationsOf, exp1Verdicts, HIGHER_IS_BETTER, type Metric, type Verdict, type VariationSummary, summariseExp1 } from "../experiment/exp1-analysis.ts";
import type { JobResult } from "../experiment/exp1-run.ts";
import { formatMeanStd, type MeanStd, meanStd, stars } from "../metrics/stats.ts";
import type { BuildInfo } from "../native.ts";
import { barChart, lineChart, reliabilityDiagram } from "./plots.ts";
import { fmt, formatTable } from "./table.ts";

export interface Exp1ReportInfo {
  build: BuildInfo;
  /** what the data folder held, e.g. token counts */
  dataNote: string;
}

const ms = (s: MeanStd, d: number) => formatMeanStd(s, d);
const mean = (xs: number[]) => meanStd(xs).mean;
const pStars = (t: { p: number } | undefined) => (t ? `${t.p.toPrecision(2)}${stars(t.p)}` : "–");
const DEFINITIONS = `- **PPL** = exp(mean token NLL) over non-ignored GPT-2 BPE tokens (token level, not word level).
- **ECE-B**: equal-width bins over the top-1 probability; Σ_b (n_b/N)·|acc_b − conf_b|, B = 10 and 100.
- **Brier** = Σ_k (p_k − y_k)² per token (0…2), averaged. **Spherical score** = p_y/‖p‖₂ (higher is better).
- **Convergence target**: validation PPL ≤ CE's final validation PPL / 0.95 (95 % of CE's final performance, same seed);
  steps and wall-clock are those of the first evaluation that reaches it.
- Values are mean ± sample std over seeds; p-values are two-sided paired t-tests over seeds (* p < 0.05,
  ** p < 0.01, *** p < 0.001); "–" where a test needs at least two seeds.`;

function what(c: Exp1Config, results: JobResult[]): string[] {
  const notes: string[] = [];
  const expected = exp1Jobs(c).length;
  notes.push(`${results.length} of ${expected} runs finished${results.length < expected ? " (the rest: run the same command again to continue)" : ""}.`);
  if (c.profile === "full" && c.dataset === "wikitext-2") notes.push("The full profile's design is WikiText-103; WikiText-2 was used here.");
  if (c.profile !== "full") {
    notes.push(
      `Not run in this profile: ${["small", "medium", "large"].filter((m) => !c.models.includes(m as never)).map((m) => `GPT-2 ${m}`).join(", ") || "—"}` +
        `${c.dataset !== "wikitext-103" ? ", WikiText-103" : ""}${c.seeds.length < 3 ? `, seeds beyond ${c.seeds.length}` : ""}` +
        `${c.warmupSweep.length === 0 ? ", the warm-up sweep" : ""}${c.baselines.length < 3 ? `, baselines ${["label-smoothing", "focal", "ce+tempscale"].filter((b) => !c.baselines.includes(b as never)).join(" and ")}` : ""}.`,
    );
  }
  return notes;
}

async function figuresFor(model: string, rows: VariationSummary[], dir: string): Promise<string[]> {
  const clean = rows.filter((r) => r.setting === "clean" && r.name !== "ce+tempscale");
  const curve = (r: VariationSummary, y: "ppl" | "ece10") => {
    // The mean over seeds at each evaluation step (x: mean wall-clock there).
    const bySteps = new Map<number, { x: number[]; y: number[] }>();
    for (const run of r.runs) for (const p of run.curve) {
      const e = bySteps.get(p.step) ?? { x: [], y: [] };
      e.x.push(p.elapsedSeconds);
      e.y.push(p[y]);
      bySteps.set(p.step, e);
    }
    return [...bySteps.entries()].sort((a, b) => a[0] - b[0]).map(([, e]) => ({ x: mean(e.x), y: mean(e.y) }));
  };
  const out: string[] = [];
  const base = (name: string) => path.join(dir, `${model}-${name}`);
  await lineChart({ title: `GPT-2 ${model}: validation perplexity`, xTitle: "wall-clock (s)", yTitle: "validation PPL", logY: true, series: clean.map((r) => ({ name: r.name, points: curve(r, "ppl") })) }, base("ppl"));
  await lineChart({ title: `GPT-2 ${model}: validation ECE-10`, xTitle: "wall-clock (s)", yTitle: "ECE (10 bins)", series: clean.map((r) => ({ name: r.name, points: curve(r, "ece10") })) }, base("ece"));
  const panels = ["ce", "ce+tempscale", "brier", "dpsm-linear", "dpsm-cosine"]
    .map((n) => rows.find((r) => r.setting === "clean" && r.name === n))
    .filter((r): r is VariationSummary => !!r)
    .map((r) => ({ name: r.name, bins: r.bins10, ece: r.test.ece10.mean }));
  await reliabilityDiagram({ title: `GPT-2 ${model}: reliability on the test split (10 bins, pooled over seeds)`, panels }, base("reliability"));
  await barChart({ title: `GPT-2 ${model}: test ECE-10 by variation`, yTitle: "ECE (10 bins)", bars: rows.filter((r) => r.setting === "clean").map((r) => ({ category: r.name, value: r.test.ece10.mean, ...(Number.isFinite(r.test.ece10.std) ? { error: r.test.ece10.std } : {}) })) }, base("ece-bars"));
  for (const n of ["ppl", "ece", "reliability", "ece-bars"]) out.push(`figures/${model}-${n}`);
  return out;
}


const METRIC_COLS: [Metric, string, number][] = [
  ["ppl", "PPL", 2],
  ["nll", "NLL", 4],
  ["accuracy", "acc", 4],
  ["ece10", "ECE-10", 4],
  ["ece100", "ECE-100", 4],
  ["brier", "Brier", 4],
  ["spherical", "spherical", 4],
];

function best(rows: VariationSummary[], m: Metric): number {
  const vals = rows.map((r) => r.test[m].mean).filter(Number.isFinite);
  return HIGHER_IS_BETTER.has(m) ? Math.max(...vals) : Math.min(...vals);
}

function metricsTable(rows: VariationSummary[]): string {
  return formatTable(
    [{ header: "variation", align: "left" }, ...METRIC_COLS.map(([, h]) => h), "PPL p vs CE", "ECE-10 p vs CE", "ECE-10 p vs Brier"],
    rows.map((r) => [
      r.name + (r.temperature ? ` (T = ${fmt(r.temperature.mean, 3)})` : ""),
      ...METRIC_COLS.map(([m, , d]) => {
        const cell = ms(r.test[m], d);
        return r.test[m].mean === best(rows, m) ? `**${cell}**` : cell;
      }),
      pStars(r.vsCe.ppl),
      pStars(r.vsCe.ece10),
      pStars(r.vsBrier.ece10),
    ]),
  );
}

export async function writeExp1Report(c: Exp1Config, results: JobResult[], out: string, info: Exp1ReportInfo): Promise<{ report: string; json: string }> {
  const figures = path.join(out, "figures");
  fs.mkdirSync(figures, { recursive: true });
  const summaries = summariseExp1(results);
  const lines: string[] = [];
  const verdicts: Record<string, Record<string, Verdict[]>> = {};
  lines.push(`# Experiment 1 — DPSM for GPT-2 language modelling (${c.profile} profile)`, "");
  lines.push(
    `Generated ${new Date().toISOString()} from the runs in this folder. libtorch ${info.build.torchVersion}, ` +
      `${c.device}${c.device.startsWith("cuda") ? ` (${c.precision})` : ` (${info.build.threads} threads, ${info.build.cpuIsa} loss kernel)`}.`,
    "",
  );
  lines.push("## What was run", "");
  lines.push(
    `- Models: ${c.models.map((m) => `GPT-2 ${m}`).join(", ")}, trained from scratch. Data: ${typeof c.dataset === "string" ? c.dataset : c.dataset.dir} (${info.dataNote}).`,
    `- ${c.maxSteps} optimiser steps of ${c.batchSize * c.gradAccumulation} sequences × ${c.contextLength} tokens; AdamW, LR warm-up ${c.lrWarmupSteps} then cosine; ` +
      `evaluation every ${c.evalEvery} steps on ${c.evalMaxSequences || "all"} validation sequences; early stopping ${c.patience ? `after ${c.patience} evaluations without improvement` : "off"}; best-validation checkpoint evaluated.`,
    `- Seeds: ${c.seeds.join(", ")} (each seed: the same initialisation and batch order for every variation). Variations: ${c.variations.join(", ")}; DPSM warm-up ${Math.round(c.dpsmWarmup * 100)} % of the steps.`,
    `- Baselines: ${c.baselines.join(", ") || "none"}. Label noise: ${c.labelNoise ? `${c.labelNoise.tokenFraction * 100} % of targets in ${c.labelNoise.stepFraction * 100} % of steps, for ${c.labelNoise.variations.join(", ")}` : "off"}. OOD sets: ${c.ood.join(", ") || "none"}.`,
    `- Test split: ${c.testMaxSequences || "all"} sequences; OOD: ${c.oodMaxSequences || "all"} sequences each.`,
    ...what(c, results).map((n) => `- ${n}`),
    "",
  );
  lines.push("## Definitions", "", DEFINITIONS, "");

  for (const model of c.models) {
    const rows = summaries.filter((s) => s.model === model);
    if (rows.length === 0) continue;
    const clean = rows.filter((r) => r.setting === "clean");
    const figs = await figuresFor(model, rows, figures);
    const [ppl, ece, reliability, eceBars] = figs;
    lines.push(`## GPT-2 ${model}`, "");
    lines.push("### Final metrics (test split, best checkpoint)", "", metricsTable(clean.filter((r) => !r.name.includes("warm-up"))), "");
    lines.push("### Learning curves", "", `![validation PPL vs wall-clock](${ppl}.png)`, "", `![validation ECE vs wall-clock](${ece}.png)`, "", `SVG: [PPL](${ppl}.svg), [ECE](${ece}.svg); per-variation ECE: [PNG](${eceBars}.png), [SVG](${eceBars}.svg).`, "");

    const conv = clean.filter((r) => r.convergence);
    const ceConv = clean.find((r) => r.name === "ce")?.convergence;
    const ceT = ceConv ? mean(ceConv.seconds.filter((x): x is number => x !== null)) : NaN;
    lines.push("### Convergence", "");
    lines.push(
      formatTable(
        [{ header: "variation", align: "left" }, "steps to target (per seed)", "wall-clock s (per seed)", "wall-clock vs CE"],
        conv.map((r) => {
          const s = r.convergence!;
          const t = s.seconds.every((x) => x !== null) ? mean(s.seconds as number[]) : NaN;
          return [r.name, s.steps.map((x) => x ?? "not reached").join(", "), s.seconds.map((x) => (x === null ? "not reached" : x.toFixed(1))).join(", "), Number.isFinite(t) && ceT ? `${fmt((100 * t) / ceT, 0)} %` : "–"];
        }),
      ),
      "",
    );

    const ceEff = clean.find((r) => r.name === "ce")?.efficiency;
    lines.push("### Efficiency", "");
    lines.push(
      formatTable(
        [{ header: "variation", align: "left" }, "ms / step", "tokens / s", `peak ${c.device.startsWith("cuda") ? "GPU allocated" : "RSS"} MB`, "throughput vs CE", "memory vs CE MB"],
        clean.filter((r) => r.efficiency).map((r) => {
          const e = r.efficiency!;
          return [r.name, ms(e.stepMs, 1), ms(e.tokensPerSecond, 0), ms(e.peakMemoryMB, 0), ceEff ? `${fmt(100 * (e.tokensPerSecond.mean / ceEff.tokensPerSecond.mean - 1), 1)} %` : "–", ceEff ? fmt(e.peakMemoryMB.mean - ceEff.peakMemoryMB.mean, 0) : "–"];
        }),
      ),
      "",
    );

    const noisy = rows.filter((r) => r.setting === "label-noise");
    if (noisy.length) {
      const ceClean = clean.find((r) => r.name === "ce");
      lines.push("### Robustness: label noise", "");
      lines.push(
        formatTable(
          [{ header: "variation (trained with noise)", align: "left" }, "PPL", "ECE-10", "Brier", "Δ PPL vs clean CE", "Δ ECE-10 vs clean CE"],
          noisy.map((r) => [r.name, ms(r.test.ppl, 2), ms(r.test.ece10, 4), ms(r.test.brier, 4), ceClean ? fmt(r.test.ppl.mean - ceClean.test.ppl.mean) : "–", ceClean ? fmt(r.test.ece10.mean - ceClean.test.ece10.mean, 4) : "–"]),
        ),
        "",
      );
    }
    const sets = [...new Set(clean.flatMap((r) => Object.keys(r.ood)))];
    if (sets.length) {
      lines.push("### Robustness: out-of-domain sets (PPL / ECE-10)", "");
      lines.push(
        formatTable(
          [{ header: "variation", align: "left" }, ...sets],
          clean.filter((r) => !r.name.includes("warm-up")).map((r) => [r.name, ...sets.map((s) => { const m = r.ood[s as keyof typeof r.ood]; return m ? `${fmt(m.ppl.mean, 1)} / ${fmt(m.ece10.mean, 4)}` : "–"; })]),
        ),
        "",
      );
    }
    const sweep = clean.filter((r) => r.name === "dpsm-linear" || r.name.startsWith("dpsm-linear (warm-up"));
    if (sweep.length > 1) {
      lines.push("### Warm-up sweep (dpsm-linear)", "", metricsTable(sweep), "");
    }
    lines.push("### Reliability", "", `![reliability diagrams](${reliability}.png)`, "", `[SVG](${reliability}.svg)`, "");
    lines.push("### Samples (best checkpoint, same prompt; greedy unless top-k > 1)", "");
    for (const r of clean.filter((x) => x.name !== "ce+tempscale" && !x.name.includes("warm-up"))) {
      const run = r.runs[0]!;
      lines.push(`**${r.name}** (seed ${run.job.seed}): ${run.sample.prompt}*${run.sample.continuation.replace(/\s+/g, " ").replace(/\*/g, "\\*")}*`, "");
    }
    verdicts[model] = {};
    lines.push("### Verdicts (the seed's success criteria)", "");
    for (const dpsm of dpsmVariationsOf(c)) {
      const v = exp1Verdicts(summaries, model, dpsm);
      verdicts[model]![dpsm] = v;
      lines.push(`**${dpsm}**`, "", formatTable([{ header: "criterion", align: "left" }, { header: "verdict", align: "left" }, { header: "numbers", align: "left" }], v.map((x) => [x.criterion, x.status === "met" ? "met" : x.status === "not met" ? "**not met**" : "not enough runs", x.detail])), "");
    }
  }

  const report = path.join(out, "report.md");
  const json = path.join(out, "results.json");
  fs.writeFileSync(report, `${lines.join("\n")}\n`);
  const strip = (s: VariationSummary) => ({ ...s, runs: s.runs.map((r) => r.job.id) });
  fs.writeFileSync(json, `${JSON.stringify({ config: c, build: info.build, summaries: summaries.map(strip), verdicts, runs: results }, null, 1)}\n`);
  return { report, json };
}
