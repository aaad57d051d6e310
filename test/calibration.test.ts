// ECE and reliability bins against a direct computation from the definition (docs/metrics.md), and the GPT-2
// BPE ids against known GPT-2 tokenizations.
import test from "ava";

import { rng } from "../dev/random.ts";
import { encodeGpt2, GPT2_EOS } from "../lib/data/tokenizer.ts";
import { expectedCalibrationError, poolReliabilityBins, reliabilityBins } from "../lib/metrics/calibration.ts";

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
