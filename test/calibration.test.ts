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

// Equal-mass bins by rank over the tokens sorted by (confidence, value): bin b the ranks [⌊bN/B⌋, ⌊(b+1)N/B⌋),
// Σ_b (n_b/N)·|mean value_b − mean conf_b|. With the hits as values this is the old rule (a tied run split by
// rank, misses first); with each hit replaced by its tied run's mean hit it is docs/metrics.md's.
function rankBinned(conf: number[], value: number[], bins: number): number {
  const n = conf.length;
  const pairs = conf.map((c, i) => [c, value[i]!] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let e = 0;
  for (let b = 0; b < bins; b++) {
    const bin = pairs.slice(Math.floor((b * n) / bins), Math.floor(((b + 1) * n) / bins));
    if (bin.length === 0) continue;
    const acc = bin.reduce((a, [, h]) => a + h, 0) / bin.length;
    const cf = bin.reduce((a, [c]) => a + c, 0) / bin.length;
    e += (bin.length / n) * Math.abs(acc - cf);
  }
  return e;
}

/** Each hit replaced by the mean hit of the tokens with the same confidence. */
function runMeanHits(conf: number[], hit: number[]): number[] {
  const sum = new Map<number, [number, number]>();
  conf.forEach((c, i) => {
    const s = sum.get(c) ?? [0, 0];
    sum.set(c, [s[0] + hit[i]!, s[1] + 1]);
  });
  return conf.map((c) => sum.get(c)![0] / sum.get(c)![1]);
}

/** Whether a run of tied confidences crosses a rank cut ⌊bN/B⌋. */
function tieCrossesCut(conf: number[], bins: number): boolean {
  const s = [...conf].sort((a, b) => a - b);
  const n = s.length;
  return Array.from({ length: bins - 1 }, (_, b) => Math.floor(((b + 1) * n) / bins)).some(
    (k) => k > 0 && k < n && s[k - 1] === s[k],
  );
}

function permutations<T>(xs: T[]): T[][] {
  if (xs.length <= 1) return [xs];
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]));
}

test("adaptive ECE: equal-mass bins, worked by hand and against the definition", (t) => {
  // Sorted, two bins of two: |0 − 0.3|/4 + |2 − 0.7|/4; equal-width bins would pool all four (0.25).
  t.true(Math.abs(adaptiveCalibrationError([0.3, 0.1, 0.4, 0.2], [1, 0, 1, 0], 2) - 0.4) < 1e-12);
  t.true(Math.abs(expectedCalibrationError([0.3, 0.1, 0.4, 0.2], [1, 0, 1, 0], 2) - 0.25) < 1e-12);
  // Five tokens in two bins, ranks [0, 2) and [2, 5): the run of three at 0.5 (one hit) crosses the cut, one of
  // its tokens in the first bin and two in the second, each counting the run's mean hit 1/3:
  // (|1/3 − 0.6| + |2/3 + 1 − 1.9|)/5 = 0.1. Binning its miss first would give (|0 − 0.6| + |2 − 1.9|)/5 = 0.14.
  const five = adaptiveCalibrationError([0.5, 0.5, 0.9, 0.1, 0.5], [1, 0, 1, 0, 0], 2);
  t.true(Math.abs(five - 0.1) < 1e-12, `${five}`);
  const rand = rng(12);
  const conf = Array.from({ length: 997 }, () => rand());
  const hit = conf.map((c) => (rand() < c * 0.7 ? 1 : 0));
  t.true(Math.abs(adaptiveCalibrationError(conf, hit, 10) - rankBinned(conf, hit, 10)) < 1e-12);
  t.true(Number.isNaN(adaptiveCalibrationError([], [], 10)));
  t.true(Number.isNaN(adaptiveCalibrationError([0.5, NaN, 0.2, 0.5], [1, 0, 0, 1], 2)));
  // Fewer tokens than bins: the empty bins add nothing.
  t.true(Math.abs(adaptiveCalibrationError([0.2, 0.9], [0, 1], 10) - (0.2 + 0.1) / 2) < 1e-12);
});

test("adaptive ECE: a tied run across a cut is binned by confidence alone, never by its hits", (t) => {
  // Four tokens at 0.5, half of them hits: calibrated. Splitting the run misses-first would make both bins
  // miscalibrated by 0.5.
  t.is(adaptiveCalibrationError([0.5, 0.5, 0.5, 0.5], [1, 0, 1, 0], 2), 0);
  t.is(expectedCalibrationError([0.5, 0.5, 0.5, 0.5], [1, 0, 1, 0], 2), 0);

  // Twelve tokens in three bins (cuts at ranks 4 and 8); the six at 0.7 (ranks 3..8, three hits) cross both.
  // The result is each bin's hit count averaged over every order of the tied tokens (what breaking the tie at
  // random gives in expectation), whichever of them the hits are.
  const conf = [0.1, 0.2, 0.3, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.8, 0.9, 0.95];
  const tiedHits = [1, 1, 1, 0, 0, 0];
  const orders = permutations(tiedHits);
  t.is(orders.length, 720);
  const meanHits = [0, 0, 0];
  for (const o of orders) {
    const h = [0, 1, 0, ...o, 1, 1, 1];
    for (let r = 0; r < 12; r++) meanHits[Math.floor(r / 4)]! += h[r]! / orders.length;
  }
  const confSums = [0, 1, 2].map((b) => conf.slice(4 * b, 4 * b + 4).reduce((a, c) => a + c, 0));
  const expected = meanHits.reduce((e, h, b) => e + Math.abs(h - confSums[b]!), 0) / 12;
  // (|1.5 − 1.3| + |2 − 2.8| + |3.5 − 3.35|)/12; misses first: (|1 − 1.3| + |2 − 2.8| + |4 − 3.35|)/12 = 0.1458.
  t.true(Math.abs(expected - (0.2 + 0.8 + 0.15) / 12) < 1e-12, `${expected}`);
  const seen = new Set<string>();
  for (const o of orders) {
    const key = o.join("");
    if (seen.has(key)) continue;
    seen.add(key);
    // The tied tokens in shuffled input positions too: neither the hits' order nor the input order matters.
    const got = adaptiveCalibrationError(conf, [0, 1, 0, ...o, 1, 1, 1], 3);
    t.true(Math.abs(got - expected) < 1e-12, `hits ${key}: ${got} vs ${expected}`);
    const rev = adaptiveCalibrationError([...conf].reverse(), [0, 1, 0, ...o, 1, 1, 1].reverse(), 3);
    t.true(Math.abs(rev - expected) < 1e-12, `hits ${key} reversed: ${rev} vs ${expected}`);
  }
  t.is(seen.size, 20);

  // Many ties across cuts (confidences on a grid of 16, a fifth exactly 1 as fp32 language models give):
  // each token counts its run's mean hit, and shuffling the hits among tied tokens changes nothing. The hits are
  // calibrated, so the bins' gaps differ in sign and splitting runs misses-first inflates the error (when every
  // bin's gap had the same sign, moving hits between bins would leave the sum of |gaps| as it is).
  const rand = rng(14);
  const grid = Array.from({ length: 1003 }, () => (rand() < 0.2 ? 1 : (Math.floor(rand() * 16) + 0.5) / 16));
  const hits: number[] = grid.map((c) => (rand() < c ? 1 : 0));
  for (const bins of [10, 15]) {
    t.true(tieCrossesCut(grid, bins));
    const got = adaptiveCalibrationError(grid, hits, bins);
    t.true(Math.abs(got - rankBinned(grid, runMeanHits(grid, hits), bins)) < 1e-12, `B=${bins}: ${got}`);
    const missesFirst = rankBinned(grid, hits, bins);
    t.true(got < missesFirst - 0.01, `B=${bins}: ${got}, misses first ${missesFirst}`);
    for (let k = 0; k < 5; k++) {
      const byConf = new Map<number, number[]>();
      grid.forEach((c, i) => byConf.set(c, [...(byConf.get(c) ?? []), i]));
      const shuffled = [...hits];
      for (const idx of byConf.values()) {
        const h = idx.map((i) => hits[i]!);
        for (let i = h.length - 1; i > 0; i--) {
          const j = Math.floor(rand() * (i + 1));
          [h[i], h[j]] = [h[j]!, h[i]!];
        }
        idx.forEach((i, m) => (shuffled[i] = h[m]!));
      }
      t.true(Math.abs(adaptiveCalibrationError(grid, shuffled, bins) - got) < 1e-12);
    }
  }
});

test("adaptive ECE: unchanged from binning by (confidence, hit) rank when no tied run crosses a cut", (t) => {
  // Runs of 5 tied confidences, 1000 tokens in 10 bins of 100: every run inside one bin, so each bin's hit count
  // is what it was, whichever of the run's tokens are hits.
  const rand = rng(15);
  const levels = new Set<number>();
  while (levels.size < 200) levels.add(Math.floor(rand() * 1024));
  const conf = [...levels].flatMap((l) => Array<number>(5).fill((2 * l + 1) / 2048));
  const hit = conf.map((c) => (rand() < c ** 1.5 ? 1 : 0));
  t.false(tieCrossesCut(conf, 10));
  t.true(new Set(conf).size < conf.length);
  const old = rankBinned(conf, hit, 10);
  t.true(Math.abs(adaptiveCalibrationError(conf, hit, 10) - old) < 1e-12);
  t.true(Math.abs(rankBinned(conf, runMeanHits(conf, hit), 10) - old) < 1e-12);
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
