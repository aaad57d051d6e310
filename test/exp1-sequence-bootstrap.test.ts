// Experiment 1's verdicts with fewer than 3 seeds decided from Koehn's paired bootstrap over test sequences
// (lib/experiments/exp1-lm/verdicts.ts), on constructed per-sequence token sums: an interval that clears the
// threshold is met, one that straddles it inconclusive, one on the wrong side not met; runs saved without the sums
// keep the old "no interval" verdict. And the sums a run saves (run-job.ts's perSequenceSums, one native evaluation
// per sequence) pool back to the native evaluator's whole-set PPL, ECE-10 and Brier, for the identity resample and
// for a resample with repeats.
import test from "ava";

import type { Exp1Group } from "../lib/experiments/exp1-lm/analysis.ts";
import { perSequenceSums } from "../lib/experiments/exp1-lm/run-job.ts";
import { exp1Verdicts } from "../lib/experiments/exp1-lm/verdicts.ts";
import type { Verdict } from "../lib/experiments/framework/spec.ts";
import { Evaluator, type PackedTokens } from "../lib/index.ts";
import { identityResample } from "../lib/metrics/bootstrap.ts";
import { pooledMetrics, type SequenceSums } from "../lib/metrics/sequence-sums.ts";
import { meanStd } from "../lib/metrics/stats.ts";
import { briefTrainedGpt2 } from "./helpers/trained-gpt2.ts";

const SEQUENCES = 64;
const TOKENS = 63;

/**
 * Constructed sums of SEQUENCES sequences of TOKENS tokens: sequence i's mean NLL `nll(i)`, every token's max p
 * 0.75 (ECE-10's bin 7) with `hits(i)` of them right.
 */
function sums(nll: (i: number) => number, hits: (i: number) => number): SequenceSums {
  const s: SequenceSums = { tokens: [], nll: [], brier: [], binCount: [], binConfidence: [], binHits: [] };
  for (let i = 0; i < SEQUENCES; i++) {
    const bin = (x: number) => Array.from({ length: 10 }, (_, b) => (b === 7 ? x : 0));
    s.tokens.push(TOKENS);
    s.nll.push(TOKENS * nll(i));
    s.brier.push(TOKENS * 0.5);
    s.binCount.push(bin(TOKENS));
    s.binConfidence.push(bin(TOKENS * 0.75));
    s.binHits.push(bin(hits(i)));
  }
  return s;
}

/** A one-seed group whose run saved `testSequences` (undefined: a run saved before the sums existed). */
function group(variation: string, testSequences: SequenceSums, saved = true) {
  const m = pooledMetrics(testSequences, identityResample(SEQUENCES));
  const values = { ppl: [m.ppl], ece10: [m.ece10] };
  const key = { model: "tiny", setting: "clean", variation };
  return {
    key,
    name: variation,
    clock: "audited" as const,
    seeds: [0],
    metrics: Object.fromEntries(Object.entries(values).map(([k, v]) => [k, meanStd(v)])),
    perSeed: values,
    sets: {},
    versus: {},
    extra: {},
    observations: [
      {
        key: { ...key, seed: 0 },
        metrics: { ppl: m.ppl, ece10: m.ece10 },
        efficiency: { stepMs: 100, tokensPerSecond: 1000, peakMemoryBytes: 2 ** 20 },
        source: saved ? { testSequences } : {},
      },
    ],
  };
}

// CE at PPL 200, Brier at 400; ECE-10 of CE 6.25/63 (hits 40 and 42 alternately against Σ max p 47.25), of Brier
// 2.75/63.
const CE = sums(
  () => Math.log(200),
  (i) => (i % 2 ? 40 : 42),
);
const BRIER = sums(
  () => Math.log(400),
  (i) => (i % 2 ? 45 : 44),
);
/** DPSM's mean NLL ln(ppl) ± spread (alternately), its hits Brier's. */
const dpsm = (ppl: number, spread: number) =>
  sums(
    (i) => Math.log(ppl) + (i % 2 ? spread : -spread),
    (i) => (i % 2 ? 45 : 44),
  );

const verdicts = (d: SequenceSums, saved = true): Verdict[] =>
  exp1Verdicts(
    [group("ce", CE, saved), group("brier", BRIER, saved), group("dpsm-linear", d, saved)] as unknown as Exp1Group[],
    "tiny",
    "dpsm-linear",
  );
const find = (v: Verdict[], prefix: string) => v.find((x) => x.criterion.startsWith(prefix))!;

test("one seed: the PPL gap's interval over test sequences decides task quality (met, inconclusive, not met)", (t) => {
  // 1 below CE's with little spread: the interval lies wholly below 0.3 (and below 0).
  const met = find(verdicts(dpsm(199, 0.001)), "Task quality");
  t.is(met.status, "met");
  const gap = met.evidence![0]!;
  t.true(gap.high < 0 && gap.low > -2, `${gap.low}, ${gap.high}`);
  t.regex(gap.interval, /paired bootstrap over 64 test sequences \(1000 resamples\), seed 0/);
  // 0.3 above CE's with a spread of ±5 % per sequence: the interval straddles 0.3.
  const straddles = find(verdicts(dpsm(200.3, 0.05)), "Task quality");
  t.is(straddles.status, "inconclusive");
  t.true(straddles.evidence![0]!.low < 0.3 && straddles.evidence![0]!.high > 0.3);
  // 10 above CE's: the whole interval lies above 0.3.
  const worse = find(verdicts(dpsm(210, 0.05)), "Task quality");
  t.is(worse.status, "not met");
  t.true(worse.evidence![0]!.low > 0.3);
  // The estimate is the pooled whole-set difference.
  const d = dpsm(210, 0.05);
  const whole = pooledMetrics(d, identityResample(SEQUENCES)).ppl - 200;
  t.true(Math.abs(worse.evidence![0]!.estimate - whole) < 1e-9);
});

test("one seed: calibration and significance over test sequences; a worse-calibrated DPSM is not met", (t) => {
  const v = verdicts(dpsm(199, 0.001));
  // ECE-10 2.75/63 against CE's 6.25/63: a 56 % reduction, Brier's alike.
  const calibration = find(v, "Calibration");
  t.is(calibration.status, "met");
  t.true(calibration.evidence![0]!.low >= 0.25);
  const significance = find(v, "Significance");
  t.is(significance.status, "met");
  t.true(significance.evidence![0]!.p!.raw <= 0.001, "no resample went the other way: p at the test's resolution");
  t.regex(significance.detail, /Koehn's paired bootstrap/);
  // Hits 55 and 53 where CE has 40 and 42: ECE-10 6.75/63, above CE's in every resample.
  const badly = sums(
    () => Math.log(199),
    (i) => (i % 2 ? 55 : 53),
  );
  const worse = find(verdicts(badly), "Significance");
  t.is(worse.status, "not met");
  t.true(worse.evidence![0]!.low > 0);
  t.is(find(verdicts(badly), "Calibration").status, "not met");
});

test("runs saved without per-sequence sums keep the one-seed verdict: no interval", (t) => {
  const v = verdicts(dpsm(199, 0.001), false);
  const quality = find(v, "Task quality");
  t.is(quality.status, "not enough runs");
  t.regex(quality.evidence![0]!.interval, /1 seed: no interval/);
  t.is(find(v, "Calibration").status, "not enough runs");
  t.is(find(v, "Significance").status, "not enough runs");
});

test("per-sequence sums pool back to the whole-set metrics (identity resample, and a resample with repeats)", async (t) => {
  // A few real training steps, so that some tokens are hit, and T = 0.1, so that max p spreads over several of
  // ECE-10's bins (an untrained model at T = 1 puts every token in bin 0 with no hit, which would leave the bins'
  // sums untested).
  const { model, valid: data } = await briefTrainedGpt2({ n_embd: 16, n_layer: 1, seed: 11, steps: 30 });
  const n = 12;
  const ev = new Evaluator(model, { batchSize: 1, maxSequences: n });
  const temperature = 0.1;
  const s = await perSequenceSums(ev, data, n, { temperature });
  t.is(s.tokens.length, n);
  const binsUsed = new Set(s.binCount.flatMap((row) => row.flatMap((c, b) => (c > 0 ? [b] : []))));
  t.true(binsUsed.size >= 2, `max p in bins ${[...binsUsed].join(", ")}`);
  t.true(
    s.binHits.flat().some((h) => h > 0),
    "some token is hit",
  );
  const close = (a: number, b: number, what: string) =>
    t.true(Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);
  const check = async (rows: number[], what: string) => {
    const w = data.contextLength;
    const picked: PackedTokens = {
      ...data,
      sequences: rows.length,
      tokens: Int32Array.from(rows.flatMap((r) => [...data.tokens.subarray(r * w, (r + 1) * w)])),
      lengths: Int32Array.from(rows.map((r) => data.lengths[r]!)),
      totalTokens: rows.reduce((x, r) => x + data.lengths[r]!, 0),
    };
    const whole = await new Evaluator(model, { batchSize: 1 }).evaluate(picked, { temperature });
    const pooled = pooledMetrics(s, rows);
    t.is(pooled.tokens, whole.tokens, `${what}: tokens`);
    close(pooled.ppl, whole.ppl, `${what}: PPL`);
    close(pooled.ece10, whole.ece10, `${what}: ECE-10`);
    close(pooled.brier, whole.brier, `${what}: Brier`);
  };
  await check([...identityResample(n)], "identity");
  await check([3, 0, 3, 7, 11, 11], "resample");
  // The batched evaluation a run reports agrees to float32 matmul rounding.
  const batched = await new Evaluator(model, { batchSize: 8, maxSequences: n }).evaluate(data, { temperature });
  const pooled = pooledMetrics(s, identityResample(n));
  t.true(Math.abs(pooled.ppl / batched.ppl - 1) < 1e-5, `${pooled.ppl} vs ${batched.ppl}`);
});
