// ROUGE against Google's rouge-score 0.1.2 and NLTK's Porter stemmer on real summarisation pairs. The fixtures come
// from test/fixtures/rouge/make_fixture.py: pairs.json holds recipes over records of the shared data (no text) and
// rouge-score's scores, stems.txt NLTK's stem of every distinct token of the data sets.
import fs from "node:fs";
import path from "node:path";

import test from "ava";

import { dataDir } from "../lib/data/paths.ts";
import { bootstrapInterval, seededResampler, type Resampler } from "../lib/metrics/bootstrap.ts";
import { porterStem } from "../lib/metrics/porter-stemmer.ts";
import { rougeCorpus, rougeScores, rougeTokenize, type RougePair, type RougeScore } from "../lib/metrics/rouge.ts";
import { packageRoot } from "../lib/native.ts";

const FIXTURES = path.join(packageRoot, "test", "fixtures", "rouge");
const TOL = 1e-9;

type Spec = ([field: string] | [field: string, start: number, end: number])[];
interface FixturePair {
  line: number;
  id: string | null;
  c: Spec;
  r: Spec[];
  stem: number[];
  nostem: number[];
}
interface Fixture {
  types: ["rouge1", "rouge2", "rougeL", "rougeLsum"];
  sources: { file: string; pairs: FixturePair[] }[];
  bootstrap: {
    pairs: number;
    samples: number;
    confidence: number;
    indices: Record<string, number[][]>;
    result: Record<string, Record<"low" | "mid" | "high", number[]>>;
  };
}

const fixture = JSON.parse(fs.readFileSync(path.join(FIXTURES, "pairs.json"), "utf8")) as Fixture;
const TYPES = fixture.types;

type DataRecord = Record<string, unknown> & { id: string | null; references?: string[] };

function fieldValue(record: DataRecord, field: string): string {
  const value = field.startsWith("references.") ? record.references?.[Number(field.slice(11))] : record[field];
  if (typeof value !== "string") throw new Error(`record ${record.id} has no text field ${field}`);
  return value;
}

// The make_fixture.py recipe: whole fields or UTF-16 slices of them, joined by newlines.
const buildText = (record: DataRecord, spec: Spec) =>
  spec.map(([field, start, end]) => fieldValue(record, field).slice(start ?? 0, end)).join("\n");

interface Case extends FixturePair {
  candidate: string;
  references: string[];
}

const cases: Case[] = fixture.sources.flatMap(({ file, pairs }) => {
  const records = fs
    .readFileSync(path.join(dataDir(), file), "utf8")
    .split("\n")
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as DataRecord);
  return pairs.map((p) => {
    const record = records[p.line];
    if (record === undefined || record.id !== p.id) throw new Error(`${file}:${p.line}: not the record ${p.id}`);
    return { ...p, candidate: buildText(record, p.c), references: p.r.map((s) => buildText(record, s)) };
  });
});

const flatten = (s: Record<string, RougeScore>) =>
  TYPES.flatMap((t) => [s[t]!.precision, s[t]!.recall, s[t]!.fmeasure]);

function maxAbsDiff(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) return Infinity;
  return Math.max(...a.map((x, i) => Math.abs(x - b[i]!)));
}

test("the fixture exercises multi-reference, multi-sentence, stemming and empty cases", (t) => {
  t.true(cases.length >= 1000);
  t.true(cases.filter((c) => c.references.length === 3).length >= 500);
  // ROUGE-Lsum differs from ROUGE-L only with several sentences on both sides.
  t.true(cases.filter((c) => c.stem[11] !== c.stem[8]).length > 100);
  t.true(cases.filter((c) => maxAbsDiff(c.stem, c.nostem) > 0).length > 100);
  t.true(cases.some((c) => c.candidate === "" && c.stem.every((x) => x === 0)));
  // Under score_multi, some pairs take different references for different types.
  const perRefBest = cases.filter((c) => {
    if (c.references.length < 2) return false;
    const f = c.references.map((r) => flatten(rougeScores(c.candidate, r)));
    const best = (k: number) => f.findIndex((s) => s[k] === Math.max(...f.map((x) => x[k]!)));
    return new Set([2, 5, 8, 11].map(best)).size > 1;
  });
  t.true(perRefBest.length > 10, `${perRefBest.length} pairs`);
});

for (const stem of [true, false]) {
  test(`rougeScores equals rouge-score on every fixture pair (${stem ? "stemmed" : "unstemmed"})`, (t) => {
    let worst = 0;
    const failures: string[] = [];
    for (const c of cases) {
      const got = flatten(rougeScores(c.candidate, c.references, { stem }));
      const d = maxAbsDiff(got, stem ? c.stem : c.nostem);
      worst = Math.max(worst, d);
      if (!(d <= TOL)) failures.push(`${c.id ?? c.line}: ${d}`);
    }
    t.log(`${cases.length} pairs × 4 types × P/R/F; max |Δ| = ${worst}`);
    t.deepEqual(failures.slice(0, 10), []);
  });
}

test("rougeCorpus gives each pair's scores and their means", (t) => {
  const pairs: RougePair[] = cases.map((c) => ({ candidate: c.candidate, references: c.references }));
  const out = rougeCorpus(pairs);
  t.is(out.count, cases.length);
  let worst = 0;
  out.pairs.forEach((s, i) => (worst = Math.max(worst, maxAbsDiff(flatten(s), cases[i]!.stem))));
  t.true(worst <= TOL, `max |Δ| ${worst}`);
  TYPES.forEach((type, k) => {
    const mean = (j: number) => cases.reduce((a, c) => a + c.stem[3 * k + j]!, 0) / cases.length;
    const m = out.scores[type].mean;
    t.true(maxAbsDiff([m.precision, m.recall, m.fmeasure], [mean(0), mean(1), mean(2)]) <= TOL, type);
    t.is(out.scores[type].interval, undefined);
  });
});

test("porterStem equals NLTK's PorterStemmer (NLTK_EXTENSIONS) on every word of the data sets", (t) => {
  const lines = fs.readFileSync(path.join(FIXTURES, "stems.txt"), "utf8").split("\n").filter(Boolean);
  t.true(lines.length > 50_000);
  const wrong: string[] = [];
  for (const line of lines) {
    const [word, stem = word] = line.split("\t") as [string, string?];
    const got = porterStem(word);
    if (got !== stem) wrong.push(`${word}: ${got} (NLTK ${stem})`);
  }
  t.log(`${lines.length} words`);
  t.deepEqual(wrong.slice(0, 20), []);
});

test("porterStem: where NLTK_EXTENSIONS departs from Martin Porter's version, and its irregular forms", (t) => {
  const expected: Record<string, string> = {
    used: "use",
    displayed: "display",
    always: "alway",
    dies: "die",
    spied: "spi",
    flies: "fli",
    sky: "sky",
    skies: "sky",
    dying: "die",
    news: "news",
    innings: "inning",
    generically: "gener",
    geology: "geolog",
    happily: "happili",
    yyyy: "yyyi",
  };
  for (const [word, stem] of Object.entries(expected)) t.is(porterStem(word), stem, word);
  t.is(porterStem("y".repeat(100_000)), "y".repeat(99_999) + "i");
});

test("rougeTokenize: rouge-score's tokens", (t) => {
  t.deepEqual(rougeTokenize('The U.S.-based firm\'s CEO, 42, said: "Hello!"', false), [
    "the",
    "u",
    "s",
    "based",
    "firm",
    "s",
    "ceo",
    "42",
    "said",
    "hello",
  ]);
  t.deepEqual(rougeTokenize("Running runners ran café", true), ["run", "runner", "ran", "caf"]);
  t.deepEqual(rougeTokenize(" \n\t…", true), []);
});

test("empty texts score 0", (t) => {
  const zero = { precision: 0, recall: 0, fmeasure: 0 };
  for (const [c, r] of [
    ["", "a reference"],
    ["a candidate", ""],
    ["", ""],
    ["!!!", "— …"],
    ["\n\n", "one line\nanother"],
  ]) {
    const s = rougeScores(c!, r!);
    for (const type of TYPES) t.deepEqual(s[type], zero, `${JSON.stringify([c, r])} ${type}`);
  }
});

// Replays the indices numpy drew inside BootstrapAggregator, in the order it drew them (type by type).
function replay(indices: Record<string, number[][]>): Resampler {
  const queue = TYPES.flatMap((type) => indices[type]!);
  let next = 0;
  return () => queue[next++]!;
}

test("the bootstrap interval equals rouge-score's BootstrapAggregator given its draws", (t) => {
  const b = fixture.bootstrap;
  const pairs = cases.slice(0, b.pairs).map((c) => ({ candidate: c.candidate, references: c.references }));
  const out = rougeCorpus(pairs, {
    types: TYPES,
    bootstrap: { samples: b.samples, confidence: b.confidence, resample: replay(b.indices) },
  });
  let worst = 0;
  for (const type of TYPES) {
    const interval = out.scores[type].interval!;
    for (const bound of ["low", "mid", "high"] as const) {
      const s = interval[bound];
      worst = Math.max(worst, maxAbsDiff([s.precision, s.recall, s.fmeasure], b.result[type]![bound]));
    }
  }
  t.log(`${b.pairs} pairs, ${b.samples} samples, 4 types; max |Δ| = ${worst}`);
  t.true(worst <= TOL, `max |Δ| ${worst}`);
});

test("seeded bootstrap: reproducible, seed-dependent, ordered bounds around the mean", (t) => {
  const pairs = cases.slice(0, 300).map((c) => ({ candidate: c.candidate, references: c.references }));
  const run = (seed: number) => rougeCorpus(pairs, { bootstrap: { samples: 500, seed } }).scores;
  const a = run(7);
  t.deepEqual(run(7), a);
  t.notDeepEqual(run(8), a);
  for (const type of TYPES) {
    const { mean, interval } = a[type];
    for (const k of ["precision", "recall", "fmeasure"] as const) {
      const [lo, mid, hi] = [interval!.low[k], interval!.mid[k], interval!.high[k]];
      t.true(lo <= mid && mid <= hi && lo < hi, `${type} ${k}`);
      t.true(lo < mean[k] && mean[k] < hi, `${type} ${k}: mean ${mean[k]} outside [${lo}, ${hi}]`);
      // A 95 % interval on a mean of 300 scores spans about ±2 standard errors: wide, but far less than the range.
      t.true(hi - lo > 0.005 && hi - lo < 0.2, `${type} ${k}: width ${hi - lo}`);
    }
  }
});

test("bootstrapInterval: the percentiles of the resampled means, computed directly", (t) => {
  const rows = cases.slice(0, 40).map((c) => c.stem.slice(0, 3));
  const draws: Int32Array[] = [];
  const seeded = seededResampler(3);
  const recording: Resampler = (n) => {
    const idx = seeded(n) as Int32Array;
    draws.push(idx);
    return idx;
  };
  const got = bootstrapInterval(rows, 41, 0.9, recording);
  // 41 samples: the 5th, 50th and 95th percentiles fall on order statistics 2, 20 and 38 exactly.
  for (let k = 0; k < 3; k++) {
    const means = draws.map((idx) => Array.from(idx).reduce((a, i) => a + rows[i]![k]!, 0) / rows.length);
    means.sort((x, y) => x - y);
    t.true(Math.abs(got.low[k]! - means[2]!) <= 1e-15 && Math.abs(got.mid[k]! - means[20]!) <= 1e-15, `${k}`);
    t.true(Math.abs(got.high[k]! - means[38]!) <= 1e-15, `${k}`);
  }
  // Every sample the original rows: all bounds are the mean.
  const identity: Resampler = (n) => Int32Array.from({ length: n }, (_, i) => i);
  const flat = bootstrapInterval(rows, 5, 0.95, identity);
  const mean = rows.reduce((a, r) => a + r[0]!, 0) / rows.length;
  t.true([flat.low[0]!, flat.mid[0]!, flat.high[0]!].every((x) => Math.abs(x - mean) <= 1e-15));
});

test("bad input: errors name the argument", (t) => {
  const bad: [() => unknown, new (...a: never[]) => Error, RegExp][] = [
    [() => rougeScores(3 as unknown as string, "r"), TypeError, /candidate must be a string/],
    [() => rougeScores("c", 3 as unknown as string), TypeError, /references must be a string or an array/],
    [() => rougeScores("c", []), RangeError, /references must hold at least one/],
    [() => rougeScores("c", ["r", null as unknown as string]), TypeError, /references\[1\] must be a string/],
    [() => rougeScores("c", "r", { types: [] }), RangeError, /options\.types must be a non-empty array/],
    [() => rougeScores("c", "r", { types: ["rouge0" as "rouge1"] }), RangeError, /options\.types holds "rouge0"/],
    [() => rougeScores("c", "r", { types: ["rougeL", "rougeL"] }), RangeError, /options\.types repeats/],
    [() => rougeScores("c", "r", { stem: "yes" as unknown as boolean }), TypeError, /options\.stem must be a boolean/],
    [() => rougeCorpus([]), RangeError, /pairs must hold at least one pair/],
    [() => rougeCorpus("x" as unknown as RougePair[]), TypeError, /pairs must be an array/],
    [() => rougeCorpus([{ candidate: "c", references: [] }]), RangeError, /pairs\[0\]\.references must hold/],
    [() => rougeCorpus([{ candidate: "c" } as RougePair]), TypeError, /pairs\[0\]\.references must be/],
    [
      () => rougeCorpus([{ candidate: "c", references: "r" }], { bootstrap: { samples: 0, seed: 1 } }),
      RangeError,
      /samples/,
    ],
    [
      () => rougeCorpus([{ candidate: "c", references: "r" }], { bootstrap: { samples: 9, seed: -1 } }),
      RangeError,
      /seed/,
    ],
    [
      () => rougeCorpus([{ candidate: "c", references: "r" }], { bootstrap: { samples: 9, seed: 1, confidence: 2 } }),
      RangeError,
      /confidence must be in \[0, 1\]/,
    ],
    [() => porterStem(5 as unknown as string), TypeError, /word must be a string/],
  ];
  for (const [fn, type, message] of bad) t.throws(fn, { instanceOf: type, message });
});
