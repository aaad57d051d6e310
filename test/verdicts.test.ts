// The verdicts decide from an effect's 95 % interval and the criterion's direction (framework/decision.ts), on
// constructed metric values: a DPSM significantly worse than CE is never "met", an interval straddling its bound is
// "inconclusive", one seed is "not enough runs", significance is one-sided and Holm-adjusted over the report's
// family, the robustness share has an exact interval, runs that never converge count as bounds, and experiment 2
// falls back to Koehn's bootstrap over test examples with one seed. Each of these was decided otherwise before
// (point estimates, two-sided p < 0.05, no adjustment).
import test from "ava";

import { exp1Verdicts } from "../lib/experiments/exp1-lm/verdicts.ts";
import type { Exp1Group } from "../lib/experiments/exp1-lm/analysis.ts";
import type { Exp2Group } from "../lib/experiments/exp2-summarization/analysis.ts";
import { exp2Verdicts } from "../lib/experiments/exp2-summarization/verdicts.ts";
import { allOf, anyOf, decide, TestFamily } from "../lib/experiments/framework/decision.ts";
import { type AuditResult, auditedThroughput } from "../lib/experiments/framework/efficiency-audit.ts";
import { comparisonsTable, verdictTable } from "../lib/experiments/framework/report.ts";
import type { MetricSpec, Verdict } from "../lib/experiments/framework/spec.ts";
import { groupLookup, verdictTestId } from "../lib/experiments/framework/verdicts.ts";
import { meanStd, pairedTTest } from "../lib/metrics/stats.ts";

type Values = Record<string, number[]>;

/** A group of constructed per-seed values; `time`: per seed, seconds to the convergence target (null: never). */
function group(
  variation: string,
  values: Values,
  options: { setting?: string; time?: (number | null)[]; runLength?: number; tps?: number[]; mb?: number[] } = {},
) {
  const n = Object.values(values)[0]!.length;
  const seeds = Array.from({ length: n }, (_, i) => i);
  const runLength = options.runLength ?? 1000;
  return {
    key: { model: "tiny", setting: options.setting ?? "clean", variation },
    name: variation,
    clock: "audited" as const,
    seeds,
    metrics: Object.fromEntries(Object.entries(values).map(([k, v]) => [k, meanStd(v)])),
    perSeed: values,
    sets: {},
    versus: {},
    extra: {},
    ...(options.time
      ? { convergence: { steps: options.time.map((t) => (t === null ? null : t / 10)), seconds: options.time } }
      : {}),
    observations: seeds.map((seed, i) => ({
      key: { model: "tiny", setting: options.setting ?? "clean", variation, seed },
      metrics: Object.fromEntries(Object.entries(values).map(([k, v]) => [k, v[i]!])),
      curve: [{ step: 100, elapsedSeconds: runLength, ppl: 0 }],
      efficiency: {
        stepMs: 100,
        tokensPerSecond: options.tps?.[i] ?? 1000,
        peakMemoryBytes: (options.mb?.[i] ?? 100) * 2 ** 20,
      },
      source: {},
    })),
  };
}

const exp1 = (groups: ReturnType<typeof group>[], options: Parameters<typeof exp1Verdicts>[3] = {}) =>
  exp1Verdicts(groups as unknown as Exp1Group[], "tiny", "dpsm-linear", options);
const find = (verdicts: Verdict[], prefix: string) => verdicts.find((v) => v.criterion.startsWith(prefix))!;

// Three seeds of CE and Brier; a DPSM whose per-seed values are given.
const CE = { ppl: [200, 210, 220], ece10: [0.02, 0.021, 0.022] };
const BRIER = { ppl: [400, 420, 430], ece10: [0.014, 0.015, 0.0145] };
const base = (dpsm: Values, time?: { d?: (number | null)[]; ce?: number[]; brier?: (number | null)[] }) => [
  group("ce", CE, { time: time?.ce ?? [100, 110, 120] }),
  group("brier", BRIER, { time: time?.brier ?? [400, 420, 440] }),
  group("dpsm-linear", dpsm, { time: time?.d ?? [105, 112, 118] }),
];

test("decide: met, not met or inconclusive by where the interval lies; parts combine", (t) => {
  t.is(decide(0.1, 0.2, "≤", 0.3), "met");
  t.is(decide(0.4, 0.5, "≤", 0.3), "not met");
  t.is(decide(0.2, 0.4, "≤", 0.3), "inconclusive");
  t.is(decide(0.3, 0.4, "≥", 0.25), "met");
  t.is(decide(0.1, 0.2, "≥", 0.25), "not met");
  t.is(decide(-Infinity, Infinity, "≥", 0.25), "inconclusive");
  t.is(decide(NaN, NaN, "≤", 0.3), "not enough runs");
  t.is(allOf(["met", "inconclusive", "met"]), "inconclusive");
  t.is(allOf(["met", "inconclusive", "not met"]), "not met");
  t.is(anyOf(["not met", "met"]), "met");
  t.is(anyOf(["not met", "not met"]), "not met");
  t.is(anyOf(["not met", "inconclusive"]), "inconclusive");
  // A part the runs cannot show outweighs every decided one.
  t.is(allOf(["met", "not met", "not informative"]), "not informative");
  t.is(anyOf(["met", "not informative"]), "not informative");
});

test("a DPSM significantly worse calibrated than CE is 'not met', not 'met' (two-sided p < 0.05 said met)", (t) => {
  const worse = { ppl: [200.1, 210.1, 220.1], ece10: [0.03, 0.0312, 0.0321] };
  const t2 = pairedTTest(worse.ece10, CE.ece10)!;
  t.true(t2.p < 0.05, "the old rule's two-sided test is significant");
  const v = exp1(base(worse));
  const significance = find(v, "Significance");
  t.is(significance.status, "not met");
  t.true(significance.evidence![0]!.p!.raw > 0.95, "one-sided p in the claimed direction (lower ECE) is near 1");
  t.is(find(v, "Calibration").status, "not met");
});

test("a DPSM significantly better calibrated is 'met'; Holm over a larger family can make it inconclusive", (t) => {
  // ECE-10 below CE's by 0.008, 0.0045 and 0.0081: one-sided p ≈ 0.014 over 3 seeds.
  const better = { ppl: [200.1, 210.1, 220.1], ece10: [0.012, 0.0165, 0.0139] };
  const alone = find(exp1(base(better)), "Significance");
  t.is(alone.status, "met");
  const raw = alone.evidence![0]!.p!.raw;
  t.true(raw < 0.05);
  // The same test among 40 others of p = 0.5: Holm multiplies the smallest p by 41.
  const family = new TestFamily();
  for (let i = 0; i < 40; i++) family.add(`other ${i}`, 0.5);
  family.add(verdictTestId("tiny", "dpsm-linear", "ece10 < ce (one-sided paired t)"), raw);
  const adjusted = find(exp1(base(better), { family }), "Significance");
  t.true(Math.abs(adjusted.evidence![0]!.p!.adjusted - Math.min(1, 41 * raw)) < 1e-12);
  t.is(adjusted.status, 41 * raw < 0.05 ? "met" : "inconclusive");
  t.true(41 * raw >= 0.05, "the constructed case must exercise the adjustment");
});

test("task quality: the PPL gap's interval against 0.3 (a mean gap of 0.2 with spread is inconclusive)", (t) => {
  const gap = (g: number[]) => ({ ppl: CE.ppl.map((x, i) => x + g[i]!), ece10: CE.ece10 });
  t.is(find(exp1(base(gap([0.1, 0.15, 0.12]))), "Task quality").status, "met");
  // mean 0.2 ≤ 0.3 (the old rule: met), but the t interval over 3 seeds reaches far above 0.3.
  const straddle = find(exp1(base(gap([-0.3, 0.2, 0.7]))), "Task quality");
  t.is(straddle.status, "inconclusive");
  t.true(straddle.evidence![0]!.high > 0.3 && straddle.evidence![0]!.estimate < 0.3);
  t.is(find(exp1(base(gap([160, 165, 170]))), "Task quality").status, "not met");
});

test("one seed: every criterion that needs seeds is 'not enough runs'", (t) => {
  const one = (v: Values) => Object.fromEntries(Object.entries(v).map(([k, x]) => [k, x.slice(0, 1)]));
  const v = exp1([
    group("ce", one(CE), { time: [100] }),
    group("brier", one(BRIER), { time: [400] }),
    group("dpsm-linear", { ppl: [200.1], ece10: [0.01] }, { time: [105] }),
  ]);
  for (const c of ["Task quality", "Calibration", "Convergence", "Efficiency", "Robustness", "Significance"]) {
    t.is(find(v, c).status, "not enough runs", c);
  }
});

const audit = (low: number, median: number, high: number): AuditResult => ({
  model: "tiny",
  tokens: 512,
  reference: "ce",
  rounds: 30,
  warmupRounds: 3,
  rows: [
    { name: "ce", medianMs: 100, ratio: { median: 1, low: 1, high: 1 } },
    { name: "dpsm-linear", medianMs: 102, ratio: { median, low, high } },
  ],
  ms: [],
  finishedAt: "",
});

test("efficiency: a step-time ratio whose interval straddles 1/0.98 is inconclusive (its point estimate said met)", (t) => {
  // dpsm-linear in the committed cpu-study: 1.0199 [0.996, 1.058] against 1/0.98 = 1.0204.
  t.is(auditedThroughput(audit(0.996, 1.0199, 1.058), "dpsm-linear")!.evidence.status, "inconclusive");
  t.is(auditedThroughput(audit(0.99, 1.005, 1.015), "dpsm-linear")!.evidence.status, "met");
  t.is(auditedThroughput(audit(1.03, 1.04, 1.06), "dpsm-linear")!.evidence.status, "not met");
  const dpsm = { ppl: [200.1, 210.1, 220.1], ece10: [0.012, 0.0131, 0.0139] };
  const groups = base(dpsm);
  t.is(find(exp1(groups, { audit: audit(0.996, 1.0199, 1.058) }), "Efficiency").status, "inconclusive");
  // Memory is a second part (t interval of the per-seed difference): 600 MB above CE's fails it whatever the audit.
  groups[2] = group("dpsm-linear", dpsm, { time: [105, 112, 118], mb: [700, 702, 698] });
  t.is(find(exp1(groups, { audit: audit(0.99, 1.005, 1.015) }), "Efficiency").status, "not met");
});

test("robustness: 12 of 15 comparisons (80 %) is inconclusive against 75 % (Clopper–Pearson), 15 of 15 met", (t) => {
  // 3 seeds × 5 sets: test and 4 OOD sets, each seed × set a comparison.
  const withSets = (g: ReturnType<typeof group>, pplBySet: number[][], eceBySet: number[][]) => {
    const sets = ["a", "b", "c", "d"];
    return {
      ...g,
      sets: Object.fromEntries(
        sets.map((s, k) => [s, { metrics: {}, perSeed: { ppl: pplBySet[k]!, ece10: eceBySet[k]! } }]),
      ),
    };
  };
  const flat = (x: number) => [
    [x, x, x],
    [x, x, x],
    [x, x, x],
    [x, x, x],
  ];
  const dpsm = { ppl: [200, 210, 220], ece10: [0.01, 0.011, 0.012] };
  const groups = base(dpsm);
  groups[0] = withSets(groups[0]!, flat(300), flat(0.05));
  // 12 of 15: the d set loses in every seed (ECE above CE's), everything else holds.
  groups[2] = withSets(groups[2]!, flat(300), [...flat(0.01).slice(0, 3), [0.06, 0.06, 0.06]]);
  const partly = find(exp1(groups), "Robustness");
  t.is(partly.status, "inconclusive");
  t.regex(partly.detail, /holds in 12 of 15/);
  groups[2] = withSets(groups[2]!, flat(300), flat(0.01));
  t.is(find(exp1(groups), "Robustness").status, "met");
});

test("convergence: never reaching the target counts as the run's length, a bound that can only fail the criterion", (t) => {
  const dpsm = { ppl: [200.1, 210.1, 220.1], ece10: [0.012, 0.0131, 0.0139] };
  // DPSM never reaches CE's target within its 1,000 s runs; CE reaches it at ~110 s: not met (the ratio is ≥ 9).
  const never = find(exp1(base(dpsm, { d: [null, null, null] })), "Convergence");
  t.is(never.status, "not met");
  t.regex(never.evidence![0]!.interval, /not reached in 3 of 3 seeds/);
  // Brier never reaches it either: its run length (1,000 s) is a lower bound of its time, so DPSM at ~110 s is
  // within 60 % of it for sure, and within 110 % of CE's.
  const brierNever = find(
    exp1(base(dpsm, { d: [100, 111, 121], ce: [100, 110, 120], brier: [null, null, null] })),
    "Convergence",
  );
  t.is(brierNever.evidence![1]!.status, "met");
  t.is(brierNever.status, "met");
});

// Experiment 2: one seed, per-example ROUGE-L on 40 test examples.
function exp2Group(variation: string, rouge: number[], ece: number, setting = "clean") {
  const mean = (100 * rouge.reduce((s, x) => s + x, 0)) / rouge.length;
  const g = group(variation, { rougeL: [mean], ece10: [ece] }, { setting });
  return {
    ...g,
    observations: g.observations.map((o) => ({
      ...o,
      source: { last: { test: { rougeLPerExample: rouge }, transfer: {} } },
    })),
  };
}

test("experiment 2, one seed: Koehn's bootstrap over test examples decides ROUGE-L, one-sided", (t) => {
  const ce = Array.from({ length: 40 }, (_, j) => 0.2 + 0.01 * (j % 7));
  const judge = (dpsm: number[]) => {
    const groups = [exp2Group("ce", ce, 0.02), exp2Group("brier", ce, 0.015), exp2Group("dpsm-warm10", dpsm, 0.018)];
    return exp2Verdicts(groupLookup(groups as unknown as Exp2Group[], "tiny"), "dpsm-warm10", {
      model: "tiny",
      bootstrapSamples: 500,
      memoryComparable: false,
    });
  };
  // One ROUGE-L point (0.01 F) below CE on every example: significant, in the wrong direction.
  const worse = judge(ce.map((x) => x - 0.01));
  t.is(find(worse, "Significance").status, "not met");
  t.is(find(worse, "Task quality").status, "not met");
  t.regex(find(worse, "Task quality").evidence![0]!.interval, /paired bootstrap over 40 test examples/);
  // One point above on every example: met; the gain's interval is [1, 1], above 0.3.
  const better = judge(ce.map((x) => x + 0.01));
  t.is(find(better, "Significance").status, "met");
  t.is(find(better, "Task quality").status, "met");
  // Calibration has no per-example values: one seed is not enough.
  t.is(find(better, "Calibration").status, "not enough runs");
});

test("experiment 2: a failed source-dependence gate makes every verdict but efficiency not informative", (t) => {
  const ce = Array.from({ length: 40 }, (_, j) => 0.2 + 0.01 * (j % 7));
  const groups = [
    exp2Group("ce", ce, 0.02),
    exp2Group("brier", ce, 0.015),
    exp2Group(
      "dpsm-warm10",
      ce.map((x) => x + 0.01),
      0.018,
    ),
  ];
  const judge = (gate?: { passed: boolean; checks: []; reason: string }) =>
    exp2Verdicts(groupLookup(groups as unknown as Exp2Group[], "tiny"), "dpsm-warm10", {
      model: "tiny",
      bootstrapSamples: 500,
      memoryComparable: false,
      ...(gate ? { gate } : {}),
    });
  const open = judge({ passed: true, checks: [], reason: "" });
  t.deepEqual(open, judge());
  t.is(find(open, "Significance").status, "met");
  const shut = judge({ passed: false, checks: [], reason: "CE seed 0: different summaries 1 %" });
  t.is(shut.length, open.length);
  for (const v of shut) {
    if (v.criterion.startsWith("Efficiency")) t.is(v.status, find(open, "Efficiency").status);
    else {
      t.is(v.status, "not informative", v.criterion);
      t.regex(v.detail, /^source-dependence gate failed \(CE seed 0: different summaries 1 %\); as measured: /);
    }
  }
  // What was measured stays on record beside the status.
  t.regex(find(shut, "Significance").detail, /as measured: met/);
  t.deepEqual(find(shut, "Significance").evidence, find(open, "Significance").evidence);
});

test("experiment 2, one seed: degradation under swap noise from the per-example contrast drop − 0.7 × CE's drop", (t) => {
  const clean = Array.from({ length: 40 }, (_, j) => 0.3 + 0.01 * (j % 5));
  const shift = (xs: number[], by: number) => xs.map((x) => x + by);
  // CE loses 2 ROUGE-L points to swap noise on every example; DPSM loses `dpsmDrop`.
  const judge = (dpsmDrop: number) => {
    const groups = [
      exp2Group("ce", clean, 0.02),
      exp2Group("brier", clean, 0.015),
      exp2Group("dpsm-warm10", clean, 0.018),
      exp2Group("ce", shift(clean, -0.02), 0.03, "summary-swap"),
      exp2Group("dpsm-warm10", shift(clean, -dpsmDrop / 100), 0.025, "summary-swap"),
    ];
    const v = exp2Verdicts(groupLookup(groups as unknown as Exp2Group[], "tiny"), "dpsm-warm10", {
      model: "tiny",
      bootstrapSamples: 200,
      memoryComparable: false,
    });
    return find(v, "Degradation");
  };
  // A drop of 1 point against CE's 2: 1 − 0.7 × 2 = −0.4 on every example → met; of 1.6: +0.2 → not met.
  const held = judge(1);
  t.is(held.status, "met");
  t.true(Math.abs(held.evidence![0]!.estimate + 0.4) < 1e-9 && Math.abs(held.evidence![0]!.high + 0.4) < 1e-9);
  t.is(judge(1.6).status, "not met");
});

test("the verdict table prints each part's effect, interval, threshold and decision", (t) => {
  const v = exp1(base({ ppl: [199.9, 210.5, 219.9], ece10: [0.012, 0.0131, 0.0139] }), {
    audit: audit(0.996, 1.0199, 1.058),
  });
  const table = verdictTable(v);
  t.regex(
    table,
    /step time \/ ce's: 1\.0199 \[0\.9960, 1\.0580\] \(bootstrap over 30 interleaved audit rounds\); needs ≤ 1\.0204 → inconclusive/,
  );
  t.regex(table, /PPL − CE's: \+0\.10 \[-0\.76, \+0\.96\] \(t over 3 seeds\); needs ≤ \+0\.30 → inconclusive/);
  t.regex(table, /ECE-10 reduction vs CE's: \+\d+\.\d % \[/);
});

test("comparison stars never reward the worse direction; raw and Holm p side by side", (t) => {
  const metrics: MetricSpec[] = [{ name: "ece10", label: "ECE-10", digits: 4 }];
  const ce = group("ce", { ece10: [0.02, 0.021, 0.022] });
  const worse = group("dpsm-warm05", { ece10: [0.0252, 0.0263, 0.0271] });
  const better = group("dpsm-linear", { ece10: [0.0148, 0.0157, 0.0169] });
  for (const g of [worse, better]) {
    (g.versus as Record<string, unknown>).ce = { ece10: pairedTTest(g.perSeed.ece10!, ce.perSeed.ece10!) };
  }
  const family = new TestFamily();
  const rows = [ce, worse, better] as never[];
  for (const g of [worse, better]) family.add(`table|${JSON.stringify(["tiny", "clean", g.name, []])}|ece10|ce`, 0.001);
  const table = comparisonsTable(rows, metrics, [["ece10", "ce"]], family)!;
  const line = (name: string) => table.split("\n").find((l) => l.startsWith(`| ${name} `))!;
  t.regex(line("dpsm-warm05"), /\(worse\)/);
  t.notRegex(line("dpsm-warm05"), /\*/);
  t.regex(line("dpsm-linear"), /0\.0020\*\*/);
});
