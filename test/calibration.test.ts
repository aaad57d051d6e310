// ECE and reliability bins against a direct computation from the definition (docs/metrics.md), and the GPT-2
// BPE ids against known GPT-2 tokenizations.
import test from "ava";

import { rng } from "../dev/random.ts";
import { encodeGpt2, GPT2_EOS } from "../lib/data/tokenizer.ts";
import {
  adaptiveCalibrationError,
  brierDecomposition,
  expectedCalibrationError,
  poolReliabilityBins,
  reliabilityBins,
} from "../lib/metrics/calibration.ts";

function eceByDefinition(conf: number[], hit: number[], bins: number): number {
  let e = 0;
  for (let b = 0; b < bins; b++) {
    const inBin = conf
      .map((c, i) => [c, hit[i]!] as const)
      .filter(([c]) => (b === bins - 1 ? c >= b / bins : c >= b / bins && c < (b + 1) / bins));
    if (inBin.length === 0) continue;
    const acc = inBin.reduce((a, [, h]) => a + h, 0) / inBin.length;
    const cf = inBin.reduce((a, [c]) => a + c, 0) / inBin.length;
    e += (inBin.length / conf.length) * Math.abs(acc - cf);
  }
  return e;
}

test("ECE with 10 and 100 bins equals the definition on random confidences", (t) => {
  const rand = rng(11);
  for (const n of [1, 7, 1000]) {
    const conf = Array.from({ length: n }, () => rand());
    conf[0] = 1; // the top edge belongs to the last bin
    const hit = conf.map((c) => (rand() < c * 0.8 ? 1 : 0));
    for (const bins of [10, 100]) {
      const got = expectedCalibrationError(conf, hit, bins);
      t.true(Math.abs(got - eceByDefinition(conf, hit, bins)) < 1e-12, `n=${n} bins=${bins}`);
    }
  }
});

test("reliability bins count every token once; perfect calibration gives ECE 0", (t) => {
  const bins = reliabilityBins([0.05, 0.15, 0.15, 0.95, 1], [0, 1, 0, 1, 1], 10);
  t.is(
    bins.reduce((a, b) => a + b.count, 0),
    5,
  );
  t.is(bins[1]!.count, 2);
  t.is(bins[1]!.accuracy, 0.5);
  t.true(Math.abs(bins[9]!.confidence - 0.975) < 1e-12);
  t.true(Number.isNaN(bins[4]!.accuracy));
  t.is(expectedCalibrationError([0.5, 0.5], [1, 0], 10), 0);
  t.throws(() => reliabilityBins([0.5], [1], 0), { message: /bins: expected an integer >= 1/ });
  t.throws(() => reliabilityBins([0.5], [1, 0], 10), { message: /same length/ });
});

test("adaptive ECE: equal-mass bins, worked by hand and against the definition", (t) => {
  // Sorted, two bins of two: |0 − 0.3|/4 + |2 − 0.7|/4; equal-width bins would pool all four (0.25).
  t.true(Math.abs(adaptiveCalibrationError([0.3, 0.1, 0.4, 0.2], [1, 0, 1, 0], 2) - 0.4) < 1e-12);
  t.true(Math.abs(expectedCalibrationError([0.3, 0.1, 0.4, 0.2], [1, 0, 1, 0], 2) - 0.25) < 1e-12);
  // Five tokens in two bins: ranks [0, 2) and [2, 5); ties ordered by hit (misses first).
  const five = adaptiveCalibrationError([0.5, 0.5, 0.9, 0.1, 0.5], [1, 0, 1, 0, 0], 2);
  t.true(Math.abs(five - (Math.abs(0 - 0.6) + Math.abs(2 - 1.9)) / 5) < 1e-12, `${five}`);
  const rand = rng(12);
  const conf = Array.from({ length: 997 }, () => rand());
  const hit = conf.map((c) => (rand() < c * 0.7 ? 1 : 0));
  const pairs = conf.map((c, i) => [c, hit[i]!] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let byDefinition = 0;
  for (let b = 0; b < 10; b++) {
    const bin = pairs.slice(Math.floor((b * 997) / 10), Math.floor(((b + 1) * 997) / 10));
    const acc = bin.reduce((a, [, h]) => a + h, 0) / bin.length;
    const cf = bin.reduce((a, [c]) => a + c, 0) / bin.length;
    byDefinition += (bin.length / 997) * Math.abs(acc - cf);
  }
  t.true(Math.abs(adaptiveCalibrationError(conf, hit, 10) - byDefinition) < 1e-12);
  t.true(Number.isNaN(adaptiveCalibrationError([], [], 10)));
});

test("Brier decomposition: Murphy's terms worked by hand; the identity holds with the within-bin terms", (t) => {
  // Two bins (0.2 and 0.8), no spread within them: REL 0.065, RES 0.0625, UNC 0.1875, top-1 Brier 0.19.
  const d = brierDecomposition([0.2, 0.2, 0.8, 0.8], [0, 1, 1, 1], 10);
  const expected = { top1: 0.19, reliability: 0.065, resolution: 0.0625, uncertainty: 0.1875 };
  for (const [k, v] of Object.entries(expected))
    t.true(Math.abs(d[k as keyof typeof d] - v) < 1e-12, `${k}: ${d[k as keyof typeof d]}`);
  t.true(Math.abs(d.withinVariance) < 1e-15 && Math.abs(d.withinCovariance) < 1e-15);
  const rand = rng(13);
  const conf = Array.from({ length: 1000 }, () => rand());
  const hit = conf.map((c) => (rand() < c ** 2 ? 1 : 0));
  const r = brierDecomposition(conf, hit, 10);
  const top1 = conf.reduce((a, c, i) => a + (c - hit[i]!) ** 2, 0) / conf.length;
  t.true(Math.abs(r.top1 - top1) < 1e-12);
  const sum = r.reliability - r.resolution + r.uncertainty + r.withinVariance - 2 * r.withinCovariance;
  t.true(Math.abs(sum - top1) < 1e-12, `${sum} vs ${top1}`);
  t.true(r.withinVariance > 0 && r.reliability > 0 && r.resolution > 0);
});

test("GPT-2 BPE ids match GPT-2's tokenizer on known strings", (t) => {
  t.deepEqual(Array.from(encodeGpt2("Hello world")), [15496, 995]);
  t.deepEqual(Array.from(encodeGpt2(" The quick brown fox")), [383, 2068, 7586, 21831]);
  // special-token text is plain text to encode_ordinary, never the EOS id
  t.false(Array.from(encodeGpt2("<|endoftext|>")).includes(GPT2_EOS));
});

test("pooled reliability bins equal the bins of the pooled predictions", (t) => {
  const draw = (n: number, seed: number) => {
    const next = rng(seed);
    const conf = Array.from({ length: n }, () => next() ** 2);
    return { conf, hit: conf.map((c) => (next() < c ? 1 : 0)) };
  };
  const a = draw(500, 1);
  const b = draw(300, 2);
  const pooled = poolReliabilityBins([reliabilityBins(a.conf, a.hit, 10), reliabilityBins(b.conf, b.hit, 10)]);
  const direct = reliabilityBins([...a.conf, ...b.conf], [...a.hit, ...b.hit], 10);
  for (const [i, bin] of direct.entries()) {
    const p = pooled[i]!;
    t.is(p.count, bin.count);
    const close = (x: number, y: number) => (Number.isNaN(y) ? Number.isNaN(x) : Math.abs(x - y) < 1e-12);
    t.true(close(p.confidence, bin.confidence) && close(p.accuracy, bin.accuracy), `bin ${i}`);
  }
  t.deepEqual(poolReliabilityBins([]), []);
});
