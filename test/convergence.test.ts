// Convergence and audited time on constructed curves (issue 25): the target is a share of the reference's selected
// (best-validation) evaluation, not its last one past it; steps and time to the target are interpolated between
// the two evaluations that bracket the crossing; audited time is steps × the audit of the runs' own step.
import test from "ava";

import { aggregate, firstCrossing, selectedValue } from "../lib/experiments/framework/aggregate.ts";
import type { AuditResult } from "../lib/experiments/framework/efficiency-audit.ts";
import type { AnalysisSpec, CurvePoint, Finished, JobKey } from "../lib/experiments/framework/spec.ts";

interface Run {
  ppl: number;
  curve: CurvePoint[];
  best?: number;
}

const ANALYSIS: AnalysisSpec<"ppl", Run> = {
  metrics: [{ name: "ppl", label: "PPL", digits: 2 }],
  observe: (r) => [
    {
      key: r.key,
      metrics: { ppl: r.ppl },
      curve: r.curve,
      ...(r.best === undefined ? {} : { selectedStep: r.best }),
    },
  ],
  references: [],
  convergence: { reference: "ce", metric: "ppl", share: 0.95 },
};

/** A run evaluated every 100 steps, 10 s apart on its own clock. */
function run(variation: string, ppl: number[], best?: number, seed = 0): Finished<Run> {
  const key: JobKey = { model: "tiny", variation, setting: "clean", seed };
  const curve = ppl.map((p, i) => ({ step: 100 * (i + 1), elapsedSeconds: 10 * (i + 1), ppl: p }));
  return { key, ppl: Math.min(...ppl), curve, ...(best === undefined ? {} : { best }), finishedAt: "" };
}

// CE's best evaluation is at step 300 (PPL 100); it went on to 108 by step 500 (patience): its selected value is
// 100, the target 100 / 0.95 = 105.26. (From the last evaluation it would be 108 / 0.95 = 113.68.)
const CE = run("ce", [200, 120, 100, 104, 108], 300);
// DPSM misses 105.26 at step 300 (110) and reaches it at 400 (104): the line meets it at 300 + 100 × 4.74 / 6.
const DPSM = run("dpsm", [220, 130, 110, 104, 103], 500);
const CROSSING = 300 + (100 * (110 - 100 / 0.95)) / (110 - 104);

test("the convergence target is the reference's selected evaluation's, interpolated between the bracketing ones", (t) => {
  const [, dpsm] = aggregate(ANALYSIS, [CE, DPSM]);
  t.is(selectedValue({ curve: CE.curve, selectedStep: 300 }, "ppl"), 100);
  t.deepEqual(dpsm!.convergence!.brackets, [[300, 400]]);
  t.true(Math.abs(dpsm!.convergence!.steps[0]! - CROSSING) < 1e-9, String(dpsm!.convergence!.steps[0]));
  // Time on the run's own clock, interpolated alike: 30 s at step 300, 40 s at 400.
  t.true(Math.abs(dpsm!.convergence!.seconds[0]! - CROSSING / 10) < 1e-9, String(dpsm!.convergence!.seconds[0]));
});

test("without a selected step the target is the last evaluation's", (t) => {
  const ce = run("ce", [200, 120, 100, 104, 108]);
  const [, dpsm] = aggregate(ANALYSIS, [ce, DPSM]);
  // 108 / 0.95 = 113.68: missed at 200 (130), reached at 300 (110).
  t.deepEqual(dpsm!.convergence!.brackets, [[200, 300]]);
  t.true(Math.abs(dpsm!.convergence!.steps[0]! - (200 + (100 * (130 - 108 / 0.95)) / 20)) < 1e-9);
});

test("a crossing: between the bracketing evaluations, at the first evaluation's step when it already reaches, or none", (t) => {
  const curve = [
    { step: 50, elapsedSeconds: 5, ppl: 300, acc: 0.25 },
    { step: 100, elapsedSeconds: 15, ppl: 200, acc: 0.5 },
    { step: 150, elapsedSeconds: 20, ppl: 150, acc: 0.75 },
  ];
  t.deepEqual(firstCrossing(curve, "ppl", 250, false), { step: 75, seconds: 10, bracket: [50, 100] });
  // Exactly at an evaluation: that evaluation.
  t.deepEqual(firstCrossing(curve, "ppl", 200, false), { step: 100, seconds: 15, bracket: [50, 100] });
  // Higher is better: accuracy 0.625 lies halfway from 100 to 150.
  t.deepEqual(firstCrossing(curve, "acc", 0.625, true), { step: 125, seconds: 17.5, bracket: [100, 150] });
  // Reached at the first evaluation: nothing before it to interpolate from.
  t.deepEqual(firstCrossing(curve, "ppl", 400, false), { step: 50, seconds: 5, bracket: [0, 50] });
  t.is(firstCrossing(curve, "ppl", 100, false), null);
});

test("audited time is steps × the audit of the runs' own step, never the seed's fixed batch's", (t) => {
  const audit = (shape: "run" | "fixed", ms: number): AuditResult => ({
    model: "tiny",
    shape,
    tokens: shape === "run" ? 512 : 2048,
    reference: "ce",
    rounds: 2,
    warmupRounds: 0,
    rows: ["ce", "dpsm"].map((name) => ({ name, medianMs: ms, ratio: { median: 1, low: 1, high: 1 } })),
    ms: [],
    finishedAt: "",
  });
  // The fixed batch's audit first: an aggregation that took the model's first audit would time steps at 80 ms.
  const groups = aggregate(ANALYSIS, [CE, DPSM], [audit("fixed", 80), audit("run", 20)]);
  for (const g of groups) {
    t.is(g.clock, "audited");
    t.deepEqual(
      g.observations[0]!.curve!.map((p) => p.elapsedSeconds),
      [2, 4, 6, 8, 10],
    );
  }
  t.true(Math.abs(groups[1]!.convergence!.seconds[0]! - (CROSSING * 20) / 1000) < 1e-9);
  // Only the fixed batch timed: the runs keep their own clocks.
  t.is(aggregate(ANALYSIS, [CE, DPSM], [audit("fixed", 80)])[0]!.clock, "run");
});
