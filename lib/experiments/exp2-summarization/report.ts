// Experiment 2's part of the report: what was run (pretraining included), the metric definitions, and per model
// the final table, ROUGE with bootstrap intervals, the best-validation checkpoint, zero-shot transfer,
// summary-swap robustness, learning curves, reliability diagrams, ROUGE against ECE, efficiency, summaries side
// by side and the verdicts; figures under figures/ (PNG + SVG).
import path from "node:path";

import { formatMeanStd } from "../../metrics/stats.ts";
import { poolReliabilityBins } from "../../metrics/calibration.ts";
import { reliabilityDiagram, scatterChart } from "../../report/plots.ts";
import { fmt, formatTable } from "../../report/table.ts";
import { directionalStars } from "../../metrics/stats.ts";
import { shaoRecipeNote } from "../framework/losses.ts";
import { formatP, TestFamily } from "../framework/decision.ts";
import {
  comparisons,
  comparisonsTable,
  curveChart,
  efficiencyTable,
  energyNote,
  environmentNote,
  metricsTable,
  modelSections,
} from "../framework/report.ts";
import { groupLookup, verdictSection } from "../framework/verdicts.ts";
import { auditSection, runShapeAudit } from "../framework/efficiency-audit.ts";
import { type EvaluationSet, evaluationSetsLine } from "../framework/eval-sets.ts";
import type { Finished, ReportBody, ReportContext, Verdict } from "../framework/spec.ts";
import { bestSet, type Exp2Group, METRICS, type Metric } from "./analysis.ts";
import { BASELINE_SETTINGS, type Exp2Config, TEMPSCALE, VARIATIONS } from "./config.ts";
import type { Exp2Data, Exp2ModelData } from "./data.ts";
import type { Exp2Job } from "./jobs.ts";
import type { Exp2Result, FinetuneResult, PretrainResult, SetResult } from "./run-job.ts";
import { ablationSections, ablationsAbsent, ablationsRun } from "./ablations.ts";
import { humanStudyLines } from "../../human-eval/link.ts";
import { attackSection } from "./attack.ts";
import { describeCheck, SOURCE_GATE, type SourceGate, sourceGate } from "./source-gate.ts";
import { bootstrapTestId, exp2Verdicts, exp2VerdictTests, koehnP, rougeBootstrap, SEEDS_FOR_T } from "./verdicts.ts";

type Exp2ReportContext = ReportContext<Exp2Config, Exp2Job, Exp2Result, Exp2Data, Metric>;

const DEFINITIONS = [
  "**ROUGE-1/2/L/Lsum**: F1 × 100 of the generated summaries against every reference of an example (the best " +
    "reference per type, as rouge-score's score_multi), Porter-stemmed, averaged over examples (docs/metrics.md); " +
    "intervals are rouge-score's bootstrap percentiles.",
  "**BERTScore P/R/F**: greedy cosine matching of a RoBERTa layer's token states between summary and reference, " +
    "the best reference of each, as the bert-score package computes it (lib/metrics/bertscore.ts; its hash names " +
    "model, layer, idf and rescaling); intervals as ROUGE's.",
  "**ECE-B**, **Brier**, **NLL**: teacher-forced on the first reference, per summary token: ECE over B equal-width " +
    "bins of the top-1 probability (B = 10, 100), Brier = Σ_k (p_k − y_k)² (0…2), NLL in nats.",
  "**Dist-1/2**: distinct unigrams / bigrams over all n-grams of all generated summaries (ROUGE's tokens, not " +
    "stemmed); **words**: mean generated length in the same tokens; **different summaries / examples**: 1 when every " +
    "example gets its own summary, 1/n when the model writes one summary whatever the source.",
  "**Efficiency**: the verdict's throughput comes from the interleaved audit (below each model's efficiency " +
    "table); the runs' own time per optimiser step and target tokens per second are medians over each run's steps, " +
    "from separate runs (on a shared machine they move with its load); peak memory is CUDA's allocator peak per run, or " +
    "on the CPU the process's resident high-water mark, which also holds what earlier runs of the process left " +
    "allocated, so CPU memory is not compared between variations.",
  "**Selection**: the last checkpoint is the main result (the seed's); the best-validation-NLL checkpoint is " +
    "reported beside it. **ce+tempscale**: CE's last checkpoint with the temperature minimising validation NLL; " +
    "temperature does not change greedy or beam-search output here, so its ROUGE is CE's.",
];

const count = (n: number) => n.toLocaleString("en-US");
const left = (header: string) => ({ header, align: "left" as const });
const oneLine = (s: string) => s.replace(/\s+/g, " ").trim();
const escapeCell = (s: string) => oneLine(s).replace(/\|/g, "\\|").replace(/\*/g, "\\*");

function pretrainResults(ctx: Exp2ReportContext): Finished<PretrainResult>[] {
  return ctx.results.filter((r): r is Finished<PretrainResult> => r.kind === "pretrain");
}

/** The sets `d`'s runs were evaluated on, each with the cap it was evaluated under (0: whole). */
export function exp2EvaluationSets(c: Exp2Config, d: Exp2ModelData): EvaluationSet[] {
  const set = (name: string, total: number, cap: number, setting: string): EvaluationSet => ({
    name,
    total,
    cap,
    setting,
    unit: "pairs",
  });
  const selection = c.baselines.includes(TEMPSCALE) ? "best checkpoint, temperature fit" : "best checkpoint";
  return [
    set(`validation (${selection})`, d.valid.ids.length, c.evalMaxSequences, "evalMaxSequences"),
    set("test", d.test.total, c.testMaxExamples, "testMaxExamples"),
    ...Object.entries(d.transfer).map(([name, s]) =>
      set(`zero-shot ${name}`, s!.total, c.transferMaxExamples, "transferMaxExamples"),
    ),
  ];
}

function whatWasRun(ctx: Exp2ReportContext): string[] {
  const c = ctx.config;
  const lines: string[] = [];
  for (const name of c.models) {
    const d = ctx.data[name]!;
    const p = pretrainResults(ctx).find((r) => r.key.model === name);
    if (d.checkpoint) lines.push(`Model ${name}: fine-tuned from the checkpoint ${d.checkpoint}.`);
    else if (c.pretrain !== false) {
      const pt = c.pretrain;
      const done = p
        ? `${count(p.parameters)} parameters, ${p.fit.steps} steps in ${fmt(p.fit.elapsedSeconds, 0)} s, final ` +
          `validation denoising NLL ${fmt(p.curve.at(-1)?.nll ?? NaN, 3)}`
        : "not finished yet";
      lines.push(
        `Model ${name}: no pretrained checkpoint was given, so a ${pt.preset} BART was pretrained here from random ` +
          `initialisation with BART's denoising objective on ${pt.dataset} train (text infilling: Poisson(λ = ` +
          `${pt.poissonLambda}) spans, ${fmt(100 * (d.pretrain?.maskedShare ?? pt.maskRatio), 1)} % of tokens ` +
          `masked${pt.permuteSentences ? "; sentence permutation" : ""}; ${count(d.pretrain?.train.ids.length ?? 0)} ` +
          `examples of ≤ ${pt.maxTokens} GPT-2 BPE tokens; batch ${pt.batchSize}, lr ${pt.lr}) — ${done}. Every ` +
          "fine-tuning run starts from its last checkpoint.",
      );
    }
    lines.push(
      `Data (${name}): fine-tuned on ${d.train.source} (${count(d.train.ids.length)} pairs; sources ≤ ` +
        `${c.maxSourceTokens} tokens, summaries ≤ ${c.maxTargetTokens}); validation ${d.valid.source}, test ` +
        `${d.test.label}${Object.values(d.transfer)
          .map((s) => `, zero-shot ${s!.label}`)
          .join("")}.`,
      evaluationSetsLine(exp2EvaluationSets(c, d)),
    );
  }
  const g = c.generation;
  lines.push(
    `Fine-tuning: ${c.maxSteps} optimiser steps of ${c.batchSize * c.gradAccumulation} pairs, AdamW, LR ${c.lr} with ` +
      `${c.lrWarmupSteps} warm-up steps then cosine decay, identical for every variation; evaluation every ` +
      `${c.evalEvery} steps. Decoding: ${g.numBeams === 1 ? "greedy" : `beam search (${g.numBeams} beams, length penalty ${g.lengthPenalty})`}, ` +
      `${g.minLength}–${g.maxLength} tokens, no repeated ${g.noRepeatNgramSize || "–"}-grams.`,
    `Seeds: ${c.seeds.join(", ")} (each seed: the same dropout and batch order for every variation). Variations: ` +
      `${c.variations.join(", ")} (dpsm-warmN: linear α warm-up over N % of the steps); baselines: ` +
      `${c.baselines.join(", ") || "none"}${trainedBaselines(c)}. Summary-swap noise: ` +
      `${c.summarySwap ? `${100 * c.summarySwap.probability} % of training pairs, for ${c.summarySwap.variations.join(", ")}` : "off"}.`,
  );
  lines.push(ablationsRun(c));
  if (c.variations.includes("ce-then-brier")) lines.push(shaoRecipeNote("ce-then-brier"));
  const absent: string[] = [];
  if (c.checkpointDir === undefined) absent.push("pretrained checkpoints (BART-large, PEGASUS-large)");
  if (c.dataset.source !== "cnn_dailymail" && !c.transfer.includes("cnn_dailymail")) absent.push("CNN/DailyMail");
  if (c.seeds.length < 3) absent.push(`seeds beyond ${c.seeds.length}`);
  absent.push(...ablationsAbsent(c));
  if (absent.length) lines.push(`Not in this run (the seed's design has them): ${absent.join(", ")}.`);
  lines.push(...humanStudyLines(ctx.out));
  return lines;
}

/** How the trained baselines train, when there are any: " (label smoothing 0.1, focal γ = 2: trained as CE is)". */
function trainedBaselines(c: Exp2Config): string {
  const how = [
    ...(c.baselines.includes("label_smoothing") ? [`label smoothing ${BASELINE_SETTINGS.smoothing}`] : []),
    ...(c.baselines.includes("focal") ? [`focal γ = ${BASELINE_SETTINGS.gamma}`] : []),
  ];
  return how.length ? ` (${how.join(", ")}: fine-tuned as CE is, with that loss)` : "";
}

const finetune = (o: Exp2Group["observations"][number]) => o.source as Finished<FinetuneResult>;

/** The group's rows as another set's numbers (best checkpoint, a zero-shot set), for the same table. */
function asSet(rows: Exp2Group[], set: string): Exp2Group[] {
  return rows
    .filter((g) => g.sets[set])
    .map((g) => ({ ...g, metrics: g.sets[set]!.metrics, perSeed: g.sets[set]!.perSeed, versus: {} }));
}

const withTemperature = (g: Exp2Group) =>
  g.extra.temperature ? `${g.name} (T = ${fmt(g.extra.temperature.mean, 3)})` : g.name;

/** "0.34", or "< 0.001" when every resample favoured the variation (the test's resolution is 1 / samples). */
export function bootstrapP(b: { pA: number; samples: number }): string {
  return b.pA === 0 ? `< ${fmt(1 / b.samples, 4).replace(/0+$/, "")}` : formatP(b.pA);
}

/** Each trained variation against CE and Brier, by Koehn's paired bootstrap over the test examples. */
function bootstrapPairs(rows: Exp2Group[], c: Exp2Config) {
  const refs = ["ce", "brier"].map((v) => rows.find((g) => g.key.variation === v)).filter((g) => !!g);
  return rows
    .filter((g) => g.key.variation !== TEMPSCALE)
    .flatMap((g) =>
      refs.flatMap((r) => {
        const b = r === g ? undefined : rougeBootstrap(g, r, c.rougeBootstrap);
        return b ? [{ id: bootstrapTestId(g.key.model, g.key.variation, r.key.variation), g, r, b }] : [];
      }),
    );
}

/**
 * Koehn's paired bootstrap of ROUGE-L per variation and reference: the mean difference with its percentile
 * interval, how often each side won, and p for "the variation is better" (the share of resamples it did not win)
 * with its Holm adjustment; stars only when the variation is the better one.
 */
function bootstrapTable(rows: Exp2Group[], c: Exp2Config, family: TestFamily): string {
  return formatTable(
    [left("variation"), left("reference"), "Δ ROUGE-L [95 % CI]", "wins / ties / losses", "p (better)", "Holm p"],
    bootstrapPairs(rows, c).map(({ id, g, r, b }) => {
      const adjusted = family.adjusted(id);
      return [
        g.name,
        r.name,
        `${b.meanDifference >= 0 ? "+" : ""}${fmt(b.meanDifference)} [${fmt(b.low)}, ${fmt(b.high)}]`,
        `${b.winsA} / ${b.ties} / ${b.winsB}`,
        bootstrapP(b),
        `${formatP(adjusted)}${directionalStars(adjusted, b.meanDifference > 0)}`,
      ];
    }),
  );
}

function rougeIntervalTable(rows: Exp2Group[]): string {
  const types = [
    ["rouge1", "R-1"],
    ["rouge2", "R-2"],
    ["rougeL", "R-L"],
    ["rougeLsum", "R-Lsum"],
  ] as const;
  return formatTable(
    [left("variation (seed)"), ...types.map(([, l]) => `${l} F [95 % CI] (P / R)`)],
    rows
      .filter((g) => g.key.variation !== TEMPSCALE)
      .map((g) => {
        const o = g.observations[0]!;
        const r = finetune(o).last.test.rouge;
        return [
          `${g.name} (${o.key.seed})`,
          ...types.map(([t]) => {
            const a = r[t];
            const ci = a.interval
              ? ` [${fmt(100 * a.interval.low.fmeasure)}, ${fmt(100 * a.interval.high.fmeasure)}]`
              : "";
            return `${fmt(100 * a.mean.fmeasure)}${ci} (${fmt(100 * a.mean.precision, 1)} / ${fmt(100 * a.mean.recall, 1)})`;
          }),
        ];
      }),
  );
}

/**
 * BERTScore P / R / F with 95 % bootstrap intervals per variation (the first seed's test set, as the ROUGE
 * intervals), or why it was not measured.
 */
function bertScoreSection(c: Exp2Config, rows: Exp2Group[]): string[] {
  const title = "### BERTScore with 95 % bootstrap intervals (test, last checkpoint)";
  if (c.bertscore.model === undefined) {
    return [
      title,
      "",
      "Not measured: no RoBERTa checkpoint was given (--bertscore.model <dir>, a Hugging Face folder such as " +
        "roberta-large's; none can be downloaded by this package).",
      "",
    ];
  }
  const shown = rows
    .filter((g) => g.key.variation !== TEMPSCALE)
    .map((g) => ({ g, o: g.observations[0]! }))
    .filter(({ o }) => finetune(o).last.test.bertscore);
  if (shown.length === 0) return [title, "", "Not measured: these runs finished before BERTScore was set.", ""];
  const cell = (b: NonNullable<SetResult["bertscore"]>, k: "precision" | "recall" | "f1") =>
    `${fmt(b.mean[k], 4)}${b.interval ? ` [${fmt(b.interval.low[k], 4)}, ${fmt(b.interval.high[k], 4)}]` : ""}`;
  const hashes = [...new Set(shown.map(({ o }) => finetune(o).last.test.bertscore!.hash))];
  return [
    title,
    "",
    formatTable(
      [left("variation (seed)"), "P [95 % CI]", "R [95 % CI]", "F [95 % CI]"],
      shown.map(({ g, o }) => {
        const b = finetune(o).last.test.bertscore!;
        return [`${g.name} (${o.key.seed})`, cell(b, "precision"), cell(b, "recall"), cell(b, "f1")];
      }),
    ),
    "",
    `bert-score's hash of the setting: ${hashes.map((h) => `\`${h}\``).join(", ")}.`,
    "",
  ];
}

function swapTable(clean: Exp2Group[], noisy: Exp2Group[]): string {
  return formatTable(
    [left("variation"), "R-L clean", "R-L swap-noised", "Δ R-L", "ECE-10 clean", "ECE-10 swap-noised"],
    noisy.map((n) => {
      const c = clean.find((g) => g.key.variation === n.key.variation);
      return [
        n.name,
        c ? formatMeanStd(c.metrics.rougeL, 2) : "–",
        formatMeanStd(n.metrics.rougeL, 2),
        c ? fmt(n.metrics.rougeL.mean - c.metrics.rougeL.mean) : "–",
        c ? formatMeanStd(c.metrics.ece10, 4) : "–",
        formatMeanStd(n.metrics.ece10, 4),
      ];
    }),
  );
}

function generationTable(rows: Exp2Group[]): string {
  return formatTable(
    [left("variation"), "generated summaries / s (test)", "different summaries / examples", "best checkpoint step(s)"],
    rows
      .filter((g) => g.key.variation !== TEMPSCALE)
      .map((g) => [
        g.name,
        g.extra.sentencesPerSecond ? formatMeanStd(g.extra.sentencesPerSecond, 1) : "–",
        g.observations.map((o) => fmt(finetune(o).last.test.diversity.uniqueTexts, 2)).join(", "),
        g.observations.map((o) => finetune(o).best?.step ?? finetune(o).last.step).join(", "),
      ]),
  );
}

function examplesSection(c: Exp2Config, d: Exp2Data[string], rows: Exp2Group[]): string[] {
  const lines: string[] = [];
  const shown = rows.filter((g) => g.key.variation !== TEMPSCALE);
  const n = Math.min(c.examples, d.test.records.length);
  for (let i = 0; i < n; i++) {
    const r = d.test.records[i]!;
    const lead = r.document.split(/\s+/).slice(0, 60).join(" ");
    lines.push(
      `**Example ${i + 1}** (${r.id}) — source: _${escapeCell(lead)}${lead.length < r.document.length ? " …" : ""}_`,
      "",
    );
    const table: string[][] = r.references.map((ref, k) => [
      `reference${r.references.length > 1 ? ` ${k + 1}` : ""}`,
      escapeCell(ref),
    ]);
    for (const g of shown) {
      const o = g.observations[0]!;
      table.push([
        `${g.name} (seed ${o.key.seed})`,
        escapeCell(finetune(o).last.test.summaries[i] ?? "–") || "(empty)",
      ]);
    }
    lines.push(formatTable([left("summary of"), left("text")], table), "");
  }
  return lines;
}

async function figures(ctx: Exp2ReportContext, model: string, rows: Exp2Group[]) {
  const base = (name: string) => `figures/${model}-${name}`;
  const file = (name: string) => path.join(ctx.out, base(name));
  const clean = rows.filter((r) => r.key.setting === "clean");
  const trained = clean.filter((r) => r.key.variation !== TEMPSCALE);
  const title = (what: string) => `${model}: ${what}`;
  await curveChart(trained, "nll", { title: title("validation NLL (teacher-forced)"), yTitle: "NLL" }, file("nll"));
  await curveChart(trained, "ece10", { title: title("validation ECE-10"), yTitle: "ECE (10 bins)" }, file("ece"));
  const panels = ["ce", TEMPSCALE, "brier", ...VARIATIONS.filter((v) => v.startsWith("dpsm"))]
    .map((v) => clean.find((r) => r.key.variation === v))
    .filter((r): r is Exp2Group => !!r)
    .map((r) => ({
      name: r.name,
      bins: poolReliabilityBins(
        r.observations.map((o) => {
          const f = finetune(o);
          return (r.key.variation === TEMPSCALE ? f.tempscale!.test : f.last.test.teacherForced).bins10;
        }),
      ),
      ece: r.metrics.ece10.mean,
    }));
  await reliabilityDiagram(
    { title: title("reliability on the test references (10 bins, pooled over seeds)"), panels },
    file("reliability"),
  );
  await scatterChart(
    {
      title: title("ROUGE-L against ECE-10 (test, last checkpoint)"),
      xTitle: "ECE-10 (lower is better)",
      yTitle: "ROUGE-L F",
      points: rows.map((g) => ({
        x: g.metrics.ece10.mean,
        y: g.metrics.rougeL.mean,
        label: g.name,
        group: g.key.setting,
      })),
    },
    file("rouge-vs-ece"),
  );
  return { nll: base("nll"), ece: base("ece"), reliability: base("reliability"), scatter: base("rouge-vs-ece") };
}

/** The final metrics' paired tests over seeds. */
const TESTS: [Metric, string][] = [
  ["rougeL", "ce"],
  ["rougeL", "brier"],
  ["ece10", "ce"],
  ["ece10", "brier"],
];

/** Whether a model's report compares ROUGE-L example by example (some variation has fewer than SEEDS_FOR_T seeds). */
const fewSeeds = (clean: readonly Exp2Group[]) => clean.some((g) => g.seeds.length < SEEDS_FOR_T);

/**
 * Every p-value the report shows, as one family for Holm's adjustment: per model the final metrics' tests over
 * seeds, the per-example bootstrap's (when shown) and the verdicts' one-sided significance tests.
 */
function exp2Family(ctx: Exp2ReportContext): TestFamily {
  const family = new TestFamily();
  const add = (id: string, p: number) => {
    if (!family.has(id)) family.add(id, p);
  };
  const c = ctx.config;
  for (const model of c.models) {
    const clean = ctx.groups.filter((g) => g.key.model === model && g.key.setting === "clean");
    for (const x of comparisons(clean, METRICS, TESTS)) add(x.id, x.test.p);
    if (fewSeeds(clean)) for (const x of bootstrapPairs(clean, c)) add(x.id, koehnP(x.b));
    const get = groupLookup(ctx.groups, model);
    for (const dpsm of c.variations.filter((v) => v.startsWith("dpsm"))) {
      for (const [id, p] of Object.entries(exp2VerdictTests(get, model, dpsm, c.rougeBootstrap))) add(id, p);
    }
  }
  return family;
}

/** The source-dependence gate's section: each CE seed's checks, and what a failure means for the verdicts. */
function gateSection(gate: SourceGate, samples: number): string[] {
  const lines = [
    "### Source dependence (the gate every verdict but efficiency rests on)",
    "",
    `CE's last checkpoint must write different summaries for at least ${100 * SOURCE_GATE.minDifferentShare} % of ` +
      "the test examples and score better ROUGE-L from the right source than from another example's (example i " +
      "summarised from the source of example i + n/2; Koehn's paired bootstrap over the test examples, " +
      `${samples} samples: the 95 % interval of the difference must lie above 0), for every CE seed.`,
    "",
  ];
  if (gate.checks.length) {
    lines.push(
      formatTable(
        [
          left("CE seed"),
          "different summaries",
          "ROUGE-L (right source)",
          "ROUGE-L (shuffled source)",
          "difference [95 % CI]",
          left("passes"),
        ],
        gate.checks.map((c) => [
          String(c.seed),
          `${fmt(100 * c.differentShare, 0)} %`,
          fmt(c.rougeL),
          fmt(c.shuffledRougeL),
          `${c.difference.estimate >= 0 ? "+" : ""}${fmt(c.difference.estimate)} [${fmt(c.difference.low)}, ${fmt(c.difference.high)}]`,
          c.passed ? "yes" : `**no**: ${describeCheck(c)}`,
        ]),
      ),
      "",
    );
  }
  lines.push(
    gate.passed
      ? "**The gate passes**: the CE model's summaries depend on the source, so the ROUGE, calibration and " +
          "robustness verdicts below can speak about summarisation."
      : `**The gate fails** (${gate.reason}): these runs cannot show anything about summarisation, so every verdict ` +
          "below but efficiency is **not informative**; the numbers above describe models that do not summarise.",
    "",
  );
  return lines;
}

async function modelSection(
  ctx: Exp2ReportContext,
  model: string,
  verdicts: Record<string, Verdict[]>,
  family: TestFamily,
) {
  const c = ctx.config;
  const rows = ctx.groups.filter((g) => g.key.model === model);
  const clean = rows.filter((r) => r.key.setting === "clean");
  const noisy = rows.filter((r) => r.key.setting === "summary-swap");
  const fig = await figures(ctx, model, rows);
  const d = ctx.data[model]!;
  const lines: string[] = [`## ${model}`, ""];
  const gate = sourceGate(
    clean.find((g) => g.key.variation === "ce"),
    c.rougeBootstrap,
  );
  lines.push(...gateSection(gate, c.rougeBootstrap));
  lines.push(
    `### Final metrics (${d.test.label}, last checkpoint)`,
    "",
    metricsTable(clean, METRICS, withTemperature),
    "",
  );
  const compared = comparisonsTable(clean, METRICS, TESTS, family, withTemperature);
  if (compared) lines.push("Paired comparisons over seeds:", "", compared, "");
  if (fewSeeds(clean)) {
    lines.push(
      `Fewer than ${SEEDS_FOR_T} seeds: ROUGE-L compared example by example (Koehn's paired bootstrap over the test ` +
        `examples, ${c.rougeBootstrap} samples; per-example scores averaged over the seeds both ran, so the interval ` +
        "covers the test set's sampling, not the seeds'):",
      "",
      bootstrapTable(clean, c, family),
      "",
    );
  }
  lines.push("### ROUGE with 95 % bootstrap intervals (test, last checkpoint)", "", rougeIntervalTable(clean), "");
  lines.push(...bertScoreSection(c, clean));
  const best = asSet(clean, bestSet());
  if (best.length) {
    lines.push("### Best-validation checkpoint (test)", "", metricsTable(best, METRICS, withTemperature), "");
  }
  for (const set of Object.keys(d.transfer)) {
    lines.push(
      `### Zero-shot transfer: ${d.transfer[set as keyof typeof d.transfer]!.label} (last checkpoint)`,
      "",
      metricsTable(asSet(clean, set), METRICS, withTemperature),
      "",
    );
  }
  if (noisy.length) {
    lines.push(
      `### Robustness: summary-swap noise (${c.summarySwap ? 100 * c.summarySwap.probability : 0} % of training pairs)`,
      "",
      swapTable(clean, noisy),
      "",
    );
  }
  // TextFooler on the clean runs (attack.ts); ce+tempscale would repeat CE's row.
  const attacked = clean.filter((g) => g.key.variation !== TEMPSCALE);
  lines.push(...attackSection(c, attacked));
  // The first model's low-resource runs and hyper-parameter grid (ablations.ts).
  lines.push(...(await ablationSections(c, model, rows, ctx.out)));
  lines.push(
    "### Learning curves (validation, teacher-forced)",
    "",
    `![validation NLL vs wall-clock](${fig.nll}.png)`,
    "",
    `![validation ECE vs wall-clock](${fig.ece}.png)`,
    "",
    `SVG: [NLL](${fig.nll}.svg), [ECE](${fig.ece}.svg).`,
    "",
    "### Reliability and ROUGE against calibration",
    "",
    `![reliability diagrams](${fig.reliability}.png)`,
    "",
    `![ROUGE-L vs ECE-10](${fig.scatter}.png)`,
    "",
    `SVG: [reliability](${fig.reliability}.svg), [ROUGE vs ECE](${fig.scatter}.svg).`,
    "",
  );
  const memory = c.device.startsWith("cuda") ? "GPU allocated" : "RSS";
  // The audit of the runs' own step: the verdicts' efficiency comes from it.
  const audit = runShapeAudit(ctx.audits, model);
  const audited = auditSection(ctx.audits, model);
  lines.push(
    "### Efficiency (fine-tuning; target tokens)",
    "",
    ...(audited.length ? [...audited, "The fine-tuning runs' own step times and peak memory:", ""] : []),
    efficiencyTable(
      clean.filter((g) => g.key.variation !== TEMPSCALE),
      "ce",
      memory,
    ),
    "",
    energyNote(clean),
    "",
    generationTable(clean),
    "",
  );
  if (c.examples > 0)
    lines.push("### Summaries side by side (test, last checkpoint)", "", ...examplesSection(c, d, clean));
  const get = groupLookup(ctx.groups, model);
  const judge = (dpsm: string) =>
    exp2Verdicts(get, dpsm, {
      model,
      family,
      bootstrapSamples: c.rougeBootstrap,
      memoryComparable: c.device.startsWith("cuda"),
      gate,
      ...(audit ? { audit } : {}),
    });
  lines.push(
    ...verdictSection(
      c.variations.filter((v) => v.startsWith("dpsm")),
      judge,
      verdicts,
    ),
  );
  return lines;
}

export async function exp2Report(ctx: Exp2ReportContext): Promise<ReportBody> {
  const c = ctx.config;
  const family = exp2Family(ctx);
  const { sections, verdicts } = await modelSections(c.models, ctx.groups, (model, v) =>
    modelSection(ctx, model, v, family),
  );
  return {
    environment: environmentNote(ctx.build, c.device, c.precision),
    run: whatWasRun(ctx),
    definitions: DEFINITIONS,
    sections,
    verdicts,
  };
}
