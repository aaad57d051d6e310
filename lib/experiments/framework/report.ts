// The report of any experiment: report.md (title, what was run, definitions, then the spec's sections) and
// results.json (settings, build, every group's numbers, verdicts, every finished job), written atomically;
// plus the tables and charts most experiments share, for the spec's sections to use.
import path from "node:path";

import type { z } from "zod";

import { writeFileAtomic, writeJsonAtomic } from "../../io/atomic.ts";
import { directionalStars, formatMeanStd, type MeanStd, meanStd, type PairedTTest } from "../../metrics/stats.ts";
import type { BuildInfo } from "../../native.ts";
import type { LossPoint } from "../../runlog.ts";
import { barChart, lineChart, panelChart } from "../../report/plots.ts";
import { fmt, formatTable } from "../../report/table.ts";
import { aggregate } from "./aggregate.ts";
import { describeEvidence, formatP, type TestFamily } from "./decision.ts";
import type { FitSummary } from "./fit-record.ts";
import type { AuditResult } from "./efficiency-audit.ts";
import { groupId, jobId } from "./keys.ts";
import type {
  AnalysisSpec,
  ConfigOf,
  ExperimentSpec,
  Finished,
  GroupSummary,
  Job,
  MetricSpec,
  Verdict,
} from "./spec.ts";

const mean = (xs: number[]) => meanStd(xs).mean;

/**
 * "libtorch 1.13.0, cpu (AMD EPYC, 2 threads, OpenBLAS kernel Zen, ATen avx512, avx512 loss kernel)." or
 * "…, cuda (bf16)." On the CPU it names what decides whether another machine reproduces the numbers bit for bit
 * (README: "What reproduces").
 */
export function environmentNote(build: BuildInfo, device: string, precision: string): string {
  const blas = build.blasCore ? `OpenBLAS kernel ${build.blasCore}` : "BLAS not OpenBLAS";
  const cpu = [build.cpuModel, `${build.threads} threads`, blas, `ATen ${build.atenCpuCapability}`];
  const how = device.startsWith("cuda")
    ? precision
    : [...cpu, `${build.cpuIsa} loss kernel`].filter(Boolean).join(", ");
  return `libtorch ${build.torchVersion}, ${device} (${how}).`;
}

/** Final metrics, one row per group: mean ± std over seeds with the best value of each column in bold. */
export function metricsTable<M extends string, G extends GroupSummary<M, unknown>>(
  groups: readonly G[],
  metrics: readonly MetricSpec<M>[],
  label: (g: G) => string = (g) => g.name,
): string {
  const best = (m: MetricSpec<M>) => {
    const values = groups.map((g) => g.metrics[m.name].mean).filter(Number.isFinite);
    return m.higherIsBetter ? Math.max(...values) : Math.min(...values);
  };
  return formatTable(
    [{ header: "variation", align: "left" }, ...metrics.map((m) => m.label)],
    groups.map((g) => [
      label(g),
      ...metrics.map((m) => {
        const cell = formatMeanStd(g.metrics[m.name], m.digits);
        return g.metrics[m.name].mean === best(m) ? `**${cell}**` : cell;
      }),
    ]),
  );
}

/** One paired comparison over seeds a table shows: `group` against `reference` on `metric`. */
export interface Comparison<M extends string, G> {
  id: string;
  group: G;
  metric: MetricSpec<M>;
  reference: string;
  test: PairedTTest;
}

/**
 * The paired tests over seeds of `groups` against their references (`tests`: [metric, reference variation]), as
 * aggregate() ran them, each with its id in the report's family of tests.
 */
export function comparisons<M extends string, G extends GroupSummary<M, unknown>>(
  groups: readonly G[],
  metrics: readonly MetricSpec<M>[],
  tests: readonly [M, string][],
): Comparison<M, G>[] {
  return groups.flatMap((group) =>
    tests.flatMap(([m, reference]) => {
      const test = group.versus[reference]?.[m];
      const metric = metrics.find((x) => x.name === m);
      if (!test || !metric) return [];
      return [{ id: `table|${groupId(group.key)}|${m}|${reference}`, group, metric, reference, test }];
    }),
  );
}

/**
 * The paired comparisons over seeds: per group and test the mean difference with its 95 % t interval, the
 * two-sided p and its Holm adjustment over the report's `family` (to which comparisons() added them); stars on
 * the adjusted p, and only for a difference in the metric's better direction ("(worse)" otherwise). Undefined when
 * no group has a test (one seed).
 */
export function comparisonsTable<M extends string, G extends GroupSummary<M, unknown>>(
  groups: readonly G[],
  metrics: readonly MetricSpec<M>[],
  tests: readonly [M, string][],
  family: TestFamily,
  label: (g: G) => string = (g) => g.name,
): string | undefined {
  const rows = comparisons(groups, metrics, tests);
  if (!rows.length) return undefined;
  return formatTable(
    [
      { header: "variation", align: "left" },
      { header: "metric − reference's", align: "left" },
      "Δ (mean over seeds)",
      "95 % CI (t)",
      "p (two-sided)",
      "Holm p",
    ],
    rows.map(({ id, group, metric, reference, test }) => {
      const d = metric.digits;
      const adjusted = family.adjusted(id);
      const better = metric.higherIsBetter ? test.mean > 0 : test.mean < 0;
      return [
        label(group),
        `${metric.label} − ${reference}'s`,
        `${test.mean > 0 ? "+" : ""}${fmt(test.mean, d)}`,
        `[${fmt(test.low, d)}, ${fmt(test.high, d)}]`,
        formatP(test.p),
        `${formatP(adjusted)}${directionalStars(adjusted, better)}`,
      ];
    }),
  );
}

/** "audited time" when every group's curves are steps × the audit's step time, else "wall-clock". */
export function clockLabel(groups: readonly GroupSummary[]): string {
  const timed = groups.filter((g) => g.observations.some((o) => o.curve?.length));
  return timed.length > 0 && timed.every((g) => g.clock === "audited") ? "audited time" : "wall-clock";
}

/**
 * Steps (interpolated, with the bracketing evaluations' steps) and time to the convergence target per seed, and the
 * time against `reference`'s.
 */
export function convergenceTable(groups: readonly GroupSummary[], reference: string): string {
  const refConv = groups.find((g) => g.key.variation === reference && !g.key.params)?.convergence;
  const refSeconds = refConv ? mean(refConv.seconds.filter((x): x is number => x !== null)) : NaN;
  return formatTable(
    [
      { header: "variation", align: "left" },
      "steps to target [evaluations bracketing it] (per seed)",
      `${clockLabel(groups)} s (per seed)`,
      `${clockLabel(groups)} vs ${reference}`,
    ],
    groups
      .filter((g) => g.convergence)
      .map((g) => {
        const c = g.convergence!;
        const t = c.seconds.every((x) => x !== null) ? mean(c.seconds as number[]) : NaN;
        const step = (x: number | null, i: number) => {
          const b = c.brackets[i];
          return x === null ? "not reached" : `${fmt(x, 0)}${b ? ` [${b[0]}–${b[1]}]` : ""}`;
        };
        return [
          g.name,
          c.steps.map(step).join(", "),
          c.seconds.map((x) => (x === null ? "not reached" : x.toFixed(1))).join(", "),
          Number.isFinite(t) && refSeconds ? `${fmt((100 * t) / refSeconds, 0)} %` : "–",
        ];
      }),
  );
}

/** Time per step, throughput and peak memory, and their difference from `reference`'s. */
export function efficiencyTable(groups: readonly GroupSummary[], reference: string, memoryLabel: string): string {
  const ref = groups.find((g) => g.key.variation === reference && !g.key.params)?.efficiency;
  return formatTable(
    [
      { header: "variation", align: "left" },
      "ms / step",
      "tokens / s",
      `peak ${memoryLabel} MB`,
      `throughput vs ${reference}`,
      `memory vs ${reference} MB`,
      "energy J / step",
    ],
    groups
      .filter((g) => g.efficiency)
      .map((g) => {
        const e = g.efficiency!;
        return [
          g.name,
          formatMeanStd(e.stepMs, 1),
          formatMeanStd(e.tokensPerSecond, 0),
          formatMeanStd(e.peakMemoryMB, 0),
          ref ? `${fmt(100 * (e.tokensPerSecond.mean / ref.tokensPerSecond.mean - 1), 1)} %` : "–",
          ref ? fmt(e.peakMemoryMB.mean - ref.peakMemoryMB.mean, 0) : "–",
          Number.isFinite(e.energyJoulesPerStep?.mean) ? formatMeanStd(e.energyJoulesPerStep, 1) : "not measured",
        ];
      }),
  );
}

/**
 * What the efficiency table's energy column is: the meter each run read (GPU through NVML, CPU packages through
 * RAPL; lib/energy.ts) and, where none could be read, why ("not measured").
 */
export function energyNote(groups: readonly GroupSummary[]): string {
  const kinds = new Set<string>();
  const reasons = new Set<string>();
  for (const g of groups) {
    for (const o of g.observations) {
      const e = (o.source as { fit?: FitSummary }).fit?.energy;
      if (!e) continue;
      if (e.joulesPerStep !== undefined) kinds.add(e.kind === "gpu" ? "the GPU's (NVML)" : "the CPU packages' (RAPL)");
      else if (e.unavailable) reasons.add(e.unavailable);
    }
  }
  const parts: string[] = [];
  if (kinds.size) {
    parts.push(
      `Energy: ${[...kinds].join(" and ")} counter over the training steps (evaluations left out), which counts ` +
        "whatever else ran on that device or package meanwhile.",
    );
  }
  if (reasons.size) parts.push(`Energy not measured: ${[...reasons].join("; ")}.`);
  if (!parts.length) parts.push("Energy not measured: these runs finished before energy was recorded.");
  return parts.join(" ");
}

/**
 * Per criterion: the decision, then the effects it was decided from (estimate, 95 % interval and where it comes
 * from, the threshold, each part's own decision), then the numbers beside them.
 */
export function verdictTable(verdicts: readonly Verdict[]): string {
  return formatTable(
    ["criterion", "verdict", "effect [95 % CI] against the threshold", "numbers"].map((header) => ({
      header,
      align: "left" as const,
    })),
    verdicts.map((v) => [
      v.criterion,
      v.status === "not met" ? "**not met**" : v.status,
      (v.evidence ?? []).map(describeEvidence).join("; ") || "–",
      v.detail,
    ]),
  );
}

/**
 * A group's training-step record `field` (fit-record.ts: loss, α, gradient norm, CE and Brier components,
 * update ratio), the mean over seeds at each recorded step, against the step.
 */
export function meanStepSeries(
  g: GroupSummary,
  field: "loss" | "alpha" | "gradNorm" | "ce" | "brier" | "updateRatio",
): { x: number; y: number }[] {
  const bySteps = new Map<number, number[]>();
  for (const o of g.observations) {
    const losses = (o.source as { losses?: LossPoint[] }).losses ?? [];
    for (const p of losses) {
      const y = p[field];
      if (y === undefined || y === null) continue;
      bySteps.set(p.step, [...(bySteps.get(p.step) ?? []), y]);
    }
  }
  return [...bySteps.entries()].sort((a, b) => a[0] - b[0]).map(([x, ys]) => ({ x, y: mean(ys) }));
}

/**
 * Why a loss trains as it does, per group over steps (means over seeds): α, the CE and Brier scores of the
 * training tokens (whatever the group trained), the gradient norm before clipping and the update-to-weight
 * ratio, stacked on one step axis.
 */
export async function diagnosticsChart(groups: readonly GroupSummary[], title: string, outBase: string): Promise<void> {
  const series = (field: Parameters<typeof meanStepSeries>[1]) =>
    groups.map((g) => ({ name: g.name, points: meanStepSeries(g, field) }));
  await panelChart(
    {
      title,
      xTitle: "optimiser step",
      panels: [
        { yTitle: "α (Brier's weight)", series: series("alpha") },
        { yTitle: "CE of train tokens", series: series("ce") },
        { yTitle: "Brier of train tokens", series: series("brier") },
        { yTitle: "gradient norm", series: series("gradNorm"), logY: true },
        { yTitle: "‖Δθ‖ / ‖θ‖ per step", series: series("updateRatio"), logY: true },
      ],
    },
    outBase,
  );
}

/** A group's validation curve of `metric`: the mean over seeds at each evaluated step, against mean wall-clock. */
export function meanCurve(g: GroupSummary, metric: string): { x: number; y: number }[] {
  const bySteps = new Map<number, { x: number[]; y: number[] }>();
  for (const o of g.observations) {
    for (const p of o.curve ?? []) {
      const e = bySteps.get(p.step) ?? { x: [], y: [] };
      e.x.push(p.elapsedSeconds);
      e.y.push(p[metric]!);
      bySteps.set(p.step, e);
    }
  }
  return [...bySteps.entries()].sort((a, b) => a[0] - b[0]).map(([, e]) => ({ x: mean(e.x), y: mean(e.y) }));
}

/** Validation `metric` against wall-clock, one line per group; writes `${outBase}.svg|png`. */
export async function curveChart(
  groups: readonly GroupSummary[],
  metric: string,
  chart: { title: string; yTitle: string; logY?: boolean },
  outBase: string,
): Promise<void> {
  await lineChart(
    {
      ...chart,
      xTitle:
        clockLabel(groups) === "audited time" ? "audited time (s): steps × the audit's ms/step" : "wall-clock (s)",
      series: groups.map((g) => ({ name: g.name, points: meanCurve(g, metric) })),
    },
    outBase,
  );
}

/** One bar per group: the mean of `metric`, ± its std over seeds. */
export async function metricBars(
  groups: readonly GroupSummary[],
  metric: string,
  chart: { title: string; yTitle: string },
  outBase: string,
): Promise<void> {
  await barChart(
    {
      ...chart,
      bars: groups.map((g) => {
        const s: MeanStd | undefined = g.metrics[metric];
        return { category: g.name, value: s?.mean ?? NaN, ...(s && Number.isFinite(s.std) ? { error: s.std } : {}) };
      }),
    },
    outBase,
  );
}

function statisticsDefinitions(analysis: AnalysisSpec<string, unknown>, audited: boolean): string[] {
  const lines: string[] = [];
  const c = analysis.convergence;
  if (c) {
    const m = analysis.metrics.find((x) => x.name === c.metric);
    const higher = m?.higherIsBetter ?? false;
    const label = m?.label ?? c.metric;
    const target = `${c.reference}'s final validation ${label} ${higher ? "×" : "/"} ${c.share}`;
    const share = `${Math.round(c.share * 100)} % of ${c.reference}'s final performance, same seed`;
    lines.push(
      `**Convergence target**: validation ${label} ${higher ? "≥" : "≤"} ${target} (${share}); ${c.reference}'s ` +
        "final value is that of its selected checkpoint (the evaluation its test metrics come from: the best " +
        "validation one where runs select it, never a later one past it). Evaluations are some way apart, and the " +
        "first one to reach the target can overstate the time to it by a whole interval, as much as the 10 % a " +
        "time criterion asks to resolve; so steps and time to the target are interpolated linearly in " +
        `${label} between the last evaluation short of it and the first that reaches it, and the table gives ` +
        "those two evaluations' steps as the bracket the crossing lies in (more evaluations would narrow the " +
        "bracket, each at the cost of a pass over the whole validation split).",
    );
  }
  if (audited) {
    lines.push(
      "**Audited time**: where the efficiency audit timed a variation's step at the runs' own batch shape, its " +
        "curves' and convergence's time is steps × the audit's median step time (evaluations excluded), so runs " +
        "trained at different times under different machine load compare fairly; each run's own clock is in " +
        "results.json.",
    );
  }
  lines.push(
    "Values are mean ± sample std over seeds. Paired comparisons: the mean difference over the seeds both ran " +
      "with its 95 % t interval, the two-sided paired t-test's p and its Holm adjustment over every p-value the " +
      "report shows (its family); stars on the adjusted p (* < 0.05, ** < 0.01, *** < 0.001) only for a " +
      'difference in the metric\'s better direction, "(worse)" for a significant one in the other; a comparison ' +
      "needs at least two seeds.",
  );
  return lines;
}

/**
 * The report sections of each model that has results, in `models` order, from `section`, which also fills in
 * that model's verdicts (by DPSM variation); the verdicts are returned by model.
 */
export async function modelSections(
  models: readonly string[],
  groups: readonly GroupSummary[],
  section: (model: string, verdicts: Record<string, Verdict[]>) => Promise<string[]>,
): Promise<{ sections: string[]; verdicts: Record<string, Record<string, Verdict[]>> }> {
  const sections: string[] = [];
  const verdicts: Record<string, Record<string, Verdict[]>> = {};
  for (const model of models) {
    if (!groups.some((g) => g.key.model === model)) continue;
    verdicts[model] = {};
    sections.push(...(await section(model, verdicts[model])));
  }
  return { sections, verdicts };
}

/** Aggregates `results` and writes `out`/report.md and `out`/results.json; returns their paths. */
export async function writeReport<S extends z.ZodObject, J extends Job, R extends object, D, M extends string>(
  spec: ExperimentSpec<S, J, R, D, M>,
  config: ConfigOf<S>,
  run: { jobs: J[]; results: Finished<R>[]; data: D; audits: AuditResult[] },
  out: string,
  build: BuildInfo,
): Promise<{ report: string; json: string }> {
  const groups = aggregate(spec.analysis, run.results, run.audits);
  const { jobs, results, data, audits } = run;
  const body = await spec.report({ config, jobs, results, groups, data, out, build, audits });
  const missing = run.jobs.length - run.results.length;
  const rest = missing > 0 ? " (the rest: run the same command again to continue)" : "";
  const audited = groups.some((g) => g.clock === "audited");
  const definitions = [
    ...body.definitions,
    ...statisticsDefinitions(spec.analysis as AnalysisSpec<string, unknown>, audited),
  ];
  const lines = [
    `# ${spec.title} (${config.profile} profile)`,
    "",
    `Generated ${new Date().toISOString()} from the runs in this folder. ${body.environment}`,
    "",
    "## What was run",
    "",
    ...body.run.map((l) => `- ${l}`),
    `- ${run.results.length} of ${run.jobs.length} runs finished${rest}.`,
    "",
    "## Definitions",
    "",
    ...definitions.map((l) => `- ${l}`),
    "",
    ...body.sections,
  ];
  const report = path.join(out, "report.md");
  const json = path.join(out, "results.json");
  writeFileAtomic(report, `${lines.join("\n")}\n`);
  // Each group names its jobs; the jobs themselves are listed once, under runs.
  const summaries = groups.map(({ observations, ...g }) => ({
    ...g,
    runs: observations.map((o) => jobId(o.source.key)),
  }));
  const { verdicts } = body;
  const audit = audits.map(({ ms: _perRound, ...a }) => a); // per-round times stay in audit/<model>.json
  writeJsonAtomic(json, { experiment: spec.name, config, build, summaries, audit, verdicts, runs: run.results });
  return { report, json };
}
