// Summarisation data on the real files of the data folder: the counts of each SOURCE.md, the same records from
// Hugging Face parquet and CNN/DM .story files (written here from real records) as from JSON lines, the
// preprocessing with GPT-2 BPE, the cache, and the summary-swap noise rule with its test vectors.
import fs from "node:fs";
import path from "node:path";

import test from "ava";
import { parquetWriteFile } from "hyparquet-writer";

import {
  applySummarySwap,
  dataDir,
  encodeGpt2,
  GPT2_EOS,
  GPT2_TOKENIZER_ID,
  prepareSummarizationData,
  readCnnStory,
  readSummarizationJsonl,
  SplitMix64,
  summarizationSplit,
  summarySwapSources,
  type SummarizationRecord,
} from "../lib/data/index.ts";
import { sharedTmpDir } from "./helpers/tmp.ts";

const DATA = dataDir();
const tmp = sharedTmpDir("dpsm-sumdata-test-");
const gpt2 = { id: GPT2_TOKENIZER_ID, encode: encodeGpt2 };

function jsonRows(file: string): Record<string, unknown>[] {
  return fs
    .readFileSync(path.join(DATA, file), "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

test("counts equal the SOURCE.md figures; partial copies say so", async (t) => {
  const figures = [
    ["xsum", "test", 1910, 11334],
    ["xsum", "validation", 979, 11332],
    ["dialogsum", "train", 12460, 12460],
    ["dialogsum", "validation", 500, 500],
    ["dialogsum", "test", 500, 500],
    ["aeslc", "train", 14436, 14436],
    ["aeslc", "validation", 1960, 1960],
    ["aeslc", "test", 1906, 1906],
    ["cnn_dailymail", "validation", 32, 13368],
  ] as const;
  for (const [source, split, rows, published] of figures) {
    const s = await summarizationSplit({ source, split });
    t.is(s.records.length, rows, `${source}/${split}`);
    t.is(s.published, published, `${source}/${split}`);
    t.is(s.layout, "jsonl");
    t.is(new Set(s.records.map((r) => r.id)).size, rows, `${source}/${split}: ids unique`);
    t.false(
      s.records.some((r) => r.document === "" || r.references.some((x) => x === "")),
      `${source}/${split}`,
    );
  }
  const dialog = await summarizationSplit({ source: "dialogsum", split: "train" });
  t.deepEqual(
    dialog.records.map((r) => r.id),
    Array.from({ length: 12460 }, (_, i) => `train_${i}`),
  );
  // 17 CNN/DM rows have no id: they are named by line, stably
  const cnn = await summarizationSplit({ source: "cnn_dailymail", split: "validation" });
  t.is(cnn.records.filter((r) => /^validation_sample-\d+$/.test(r.id)).length, 17);
  t.is(cnn.records[0]!.id, "238331e1a8c8ef744f3cc5bd82cee2f2f4f93536");
  t.true(cnn.records[0]!.document.startsWith("Jarryd Hayne's move to the NFL is a boost for rugby league"));
});

test("XSum: which official split ids the local copy holds", async (t) => {
  const testSplit = await summarizationSplit({ source: "xsum", split: "test" });
  const c = testSplit.coverage!;
  t.is(c.expected, 11334);
  t.is(c.present.length, 1910);
  t.is(c.missing.length, 11334 - 1910);
  t.deepEqual(c.outside, []);
  const official = JSON.parse(
    fs.readFileSync(path.join(DATA, "xsum", "XSum-TRAINING-DEV-TEST-SPLIT-90-5-5.json"), "utf8"),
  );
  t.true(c.present.includes("10001244") && (official.test as string[]).includes("10001244"));
  t.false(c.missing.includes("10001244"));
  const valid = (await summarizationSplit({ source: "xsum", split: "validation" })).coverage!;
  t.is(valid.present.length, 979);
  t.is(valid.expected, 11332);
  t.is(valid.outside.length, 0);
});

test("DialogSum test: three references per dialogue; AESLC: subject line or the three annotations", async (t) => {
  const s = await summarizationSplit({ source: "dialogsum", split: "test" });
  const rows = jsonRows("dialogsum/test.jsonl");
  t.true(s.records.every((r) => r.references.length === 3));
  t.is(
    s.records.reduce((n, r) => n + r.references.length, 0),
    1500,
  );
  t.deepEqual(s.records[0]!.references, rows[0]!.references);
  t.is(s.records[0]!.references[0], rows[0]!.summary as string);
  t.true(s.records[0]!.references[1]!.startsWith("In order to prevent employees from wasting time"));
  t.true(
    (await summarizationSplit({ source: "dialogsum", split: "validation" })).records.every(
      (r) => r.references.length === 1,
    ),
  );

  // DialogSum's original test file: fname / dialogue / summary1..3, written from the same real rows
  const original = path.join(tmp, "dialogsum.test.jsonl");
  fs.writeFileSync(
    original,
    rows
      .slice(0, 20)
      .map((r) => {
        const [summary1, summary2, summary3] = r.references as string[];
        return JSON.stringify({ fname: r.id, dialogue: r.document, summary1, summary2, summary3 });
      })
      .join("\n"),
  );
  t.deepEqual(readSummarizationJsonl(original), s.records.slice(0, 20));

  const subject = await summarizationSplit({ source: "aeslc", split: "validation" });
  const annotated = await summarizationSplit({ source: "aeslc", split: "validation", aeslcReferences: "annotations" });
  t.is(subject.records[0]!.references[0], "Confirmation: Risk Management Simulation Meeting 10/30/01");
  t.deepEqual(annotated.records[0]!.references, [
    "meeting confimation - tues, 8/10",
    "meeting confirmation",
    "meeting confirmed",
  ]);
  t.true(annotated.records.every((r) => r.references.length === 3));
  await t.throwsAsync(summarizationSplit({ source: "aeslc", split: "train", aeslcReferences: "annotations" }), {
    instanceOf: RangeError,
    message: /aeslcReferences: AESLC train has no annotations/,
  });
});

function writeParquet(file: string, columns: Record<string, string[]>): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  parquetWriteFile({
    filename: file,
    columnData: Object.entries(columns).map(([name, data]) => ({ name, data, type: "STRING" as const })),
    rowGroupSize: 500,
  });
}

/**
 * A real record as an original .story file: the article one sentence per paragraph (as the stories are laid
 * out), each highlight after its own "@highlight" line.
 */
function storyText(r: SummarizationRecord): string {
  const sentences = r.document.split(/(?<=[.!?]) (?=[A-Z])/);
  const highlights = r.references[0]!.split("\n").map((h) => `@highlight\n\n${h}`);
  return [...sentences, ...highlights].join("\n\n") + "\n";
}

const byId = (a: SummarizationRecord, b: SummarizationRecord) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

test("CNN/DailyMail: parquet shards, .story files and JSON lines give the same records", async (t) => {
  const jsonl = (await summarizationSplit({ source: "cnn_dailymail", split: "validation" })).records;
  const dir = path.join(tmp, "cnn_dailymail");
  writeParquet(path.join(dir, "3.0.0", "validation-00000-of-00001.parquet"), {
    article: jsonl.map((r) => r.document),
    highlights: jsonl.map((r) => r.references[0]!),
    id: jsonl.map((r) => r.id),
  });
  const fromParquet = await summarizationSplit({ source: "cnn_dailymail", split: "validation", dir });
  t.is(fromParquet.layout, "parquet");
  t.deepEqual(fromParquet.records, jsonl);

  const stories = path.join(tmp, "cnn-stories");
  fs.mkdirSync(path.join(stories, "validation"), { recursive: true });
  for (const r of jsonl) fs.writeFileSync(path.join(stories, "validation", `${r.id}.story`), storyText(r));
  const fromStories = await summarizationSplit({ source: "cnn_dailymail", split: "validation", dir: stories });
  t.is(fromStories.layout, "story");
  t.deepEqual(fromStories.records, [...jsonl].sort(byId));
  t.true(fromStories.records.some((r) => r.references[0]!.split("\n").length >= 4));

  // the .story rule itself: stripped lines, " ." after a line without an end mark, highlights joined by "\n"
  const one = path.join(tmp, "one.story");
  fs.writeFileSync(one, " Jarryd Hayne's move  \n\nWe can only hope \u201d\n\n@highlight\n\nHayne joins the 49ers\n");
  t.deepEqual(readCnnStory(one), {
    id: "one",
    document: "Jarryd Hayne's move . We can only hope \u201d",
    references: ["Hayne joins the 49ers ."],
  });

  fs.mkdirSync(path.join(dir, "validation"));
  fs.copyFileSync(path.join(stories, "validation", `${jsonl[0]!.id}.story`), path.join(dir, "validation", "a.story"));
  await t.throwsAsync(summarizationSplit({ source: "cnn_dailymail", split: "validation", dir }), {
    message: /holds cnn_dailymail validation in more than one layout \(parquet, story\); pass the layout/,
  });
  t.is(
    (await summarizationSplit({ source: "cnn_dailymail", split: "validation", dir, layout: "story" })).records.length,
    1,
  );
});

test("XSum: sharded parquet and JSON lines give the same records, and the same coverage", async (t) => {
  const jsonl = await summarizationSplit({ source: "xsum", split: "test" });
  const r = jsonl.records;
  const dir = path.join(tmp, "xsum");
  const half = 1000;
  const cols = (rows: SummarizationRecord[]) => ({
    document: rows.map((x) => x.document),
    summary: rows.map((x) => x.references[0]!),
    id: rows.map((x) => x.id),
  });
  writeParquet(path.join(dir, "data", "test-00001-of-00002.parquet"), cols(r.slice(half)));
  writeParquet(path.join(dir, "data", "test-00000-of-00002.parquet"), cols(r.slice(0, half)));
  fs.copyFileSync(
    path.join(DATA, "xsum", "XSum-TRAINING-DEV-TEST-SPLIT-90-5-5.json"),
    path.join(dir, "XSum-TRAINING-DEV-TEST-SPLIT-90-5-5.json"),
  );
  const fromParquet = await summarizationSplit({ source: "xsum", split: "test", dir });
  t.is(fromParquet.files.length, 2);
  t.deepEqual(fromParquet.records, r);
  t.deepEqual(fromParquet.coverage, jsonl.coverage);
});

test("errors: missing folder, unknown split, a split this copy lacks (what to place where), bad options", async (t) => {
  await t.throwsAsync(summarizationSplit({ source: "xsum", split: "test", dir: path.join(tmp, "absent") }), {
    message: /xsum folder not found: .*absent \(expected <split>-NNNNN-of-NNNNN\.parquet/,
  });
  await t.throwsAsync(summarizationSplit({ source: "xsum", split: "dev" as "test" }), {
    instanceOf: RangeError,
    message: /summarizationSplit options\.split: expected "train", "validation", "test", got "dev"/,
  });
  await t.throwsAsync(summarizationSplit({ source: "xsum", split: "train" }), {
    message:
      /xsum train split not found under .*xsum \(this copy has: validation \(jsonl\), test \(jsonl\)\); to use it, place train-NNNNN-of-NNNNN\.parquet .*columns id\/document\/summary.*; or train\.jsonl/,
  });
  await t.throwsAsync(summarizationSplit({ source: "cnn_dailymail", split: "test" }), {
    message: /cnn_dailymail test split not found .*this copy has: validation \(jsonl\).*test\/<id>\.story/,
  });
  await t.throwsAsync(summarizationSplit({ source: "dialogsum", split: "test", layout: "story" }), {
    message: /options\.layout: dialogsum is read from: jsonl/,
  });
  await t.throwsAsync(summarizationSplit({ source: "gigaword" as "xsum", split: "test" }), {
    message: /options\.source/,
  });
  await t.throwsAsync(summarizationSplit({ source: "xsum", split: "test", dataDir: path.join(tmp, "nodata") }), {
    message: /data directory not found: .*nodata/,
  });
  await t.throwsAsync(
    prepareSummarizationData({ source: "xsum", split: "test", tokenizer: { id: "x", encode: "gpt2" as never } }),
    { message: /tokenizer\.encode: expected a function/ },
  );
  await t.throwsAsync(
    prepareSummarizationData({ source: "xsum", split: "test", tokenizer: gpt2, maxSourceTokens: 0 }),
    {
      instanceOf: RangeError,
      message: /options\.maxSourceTokens/,
    },
  );
});

function row(a: Int32Array, width: number, i: number, length: number): number[] {
  return Array.from(a.subarray(i * width, i * width + length));
}

test("preprocessing: documents under 50 words dropped, sources ≤ 1024 and targets ≤ 128 GPT-2 tokens", async (t) => {
  const records = (await summarizationSplit({ source: "dialogsum", split: "validation" })).records;
  const short = records.filter((r) => r.document.trim().split(/\s+/).length < 50);
  const p = await prepareSummarizationData({ source: "dialogsum", split: "validation", tokenizer: gpt2, cache: false });
  t.is(p.read, 500);
  t.is(p.dropped, short.length);
  t.is(p.dropped, 36);
  t.deepEqual(
    p.ids,
    records.filter((r) => !short.includes(r)).map((r) => r.id),
  );
  t.is(p.sourceTokens.length, p.ids.length * p.maxSource);
  t.is(p.targetTokens.length, p.ids.length * p.maxTarget);
  for (let i = 0; i < p.ids.length; i += 37) {
    const r = records.find((x) => x.id === p.ids[i])!;
    t.deepEqual(row(p.sourceTokens, p.maxSource, i, p.sourceLengths[i]!), Array.from(encodeGpt2(r.document)));
    t.deepEqual(row(p.targetTokens, p.maxTarget, i, p.targetLengths[i]!), Array.from(encodeGpt2(r.references[0]!)));
    t.true(
      row(p.sourceTokens, p.maxSource, i, p.maxSource)
        .slice(p.sourceLengths[i])
        .every((x) => x === 0),
    );
  }

  // shorter limits, EOS and a pad id: every row cut to max − 1 ids and EOS, counted as truncated
  const q = await prepareSummarizationData({
    source: "dialogsum",
    split: "validation",
    tokenizer: gpt2,
    cache: false,
    minDocumentWords: 0,
    maxSourceTokens: 200,
    maxTargetTokens: 24,
    eosId: GPT2_EOS,
    padId: -1,
  });
  t.is(q.dropped, 0);
  t.is(q.maxSource, 200);
  t.is(q.maxTarget, 24);
  let cutSources = 0;
  let cutTargets = 0;
  records.forEach((r, i) => {
    const s = encodeGpt2(r.document);
    const g = encodeGpt2(r.references[0]!);
    cutSources += s.length > 199 ? 1 : 0;
    cutTargets += g.length > 23 ? 1 : 0;
    t.deepEqual(row(q.sourceTokens, 200, i, q.sourceLengths[i]!), [...Array.from(s.subarray(0, 199)), GPT2_EOS]);
    t.deepEqual(row(q.targetTokens, 24, i, q.targetLengths[i]!), [...Array.from(g.subarray(0, 23)), GPT2_EOS]);
    if (q.targetLengths[i]! < 24) t.is(q.targetTokens[i * 24 + 23], -1);
  });
  t.is(q.truncatedSources, cutSources);
  t.is(q.truncatedTargets, cutTargets);
  t.true(cutSources > 100 && cutTargets > 50, `${cutSources} ${cutTargets}`);

  // XSum test at the seed's settings: the figures of the report
  const x = await prepareSummarizationData({ source: "xsum", split: "test", tokenizer: gpt2, cache: false });
  t.deepEqual([x.read, x.dropped, x.truncatedSources, x.truncatedTargets, x.maxSource], [1910, 15, 93, 0, 1024]);
  t.true(Math.max(...x.sourceLengths) <= 1024 && Math.max(...x.targetLengths) <= 128);
});

test.serial(
  "cache: a second call reads it; other tokenizer or settings miss; corruption and truncation rebuild",
  async (t) => {
    const cacheDir = path.join(tmp, "cache");
    const options = { source: "dialogsum", split: "test", tokenizer: gpt2, cacheDir } as const;
    const first = await prepareSummarizationData(options);
    t.false(first.fromCache);
    t.is(first.source, "dialogsum/test (jsonl)");
    t.deepEqual(fs.readdirSync(cacheDir), [path.basename(first.cacheFile!)], "no temporary file left behind");
    const second = await prepareSummarizationData(options);
    t.true(second.fromCache);
    const { fromCache: _a, ...a } = first;
    const { fromCache: _b, ...b } = second;
    t.deepEqual(b, a);

    t.false((await prepareSummarizationData({ ...options, tokenizer: { ...gpt2, id: "other-bpe" } })).fromCache);
    t.false((await prepareSummarizationData({ ...options, maxTargetTokens: 64 })).fromCache);
    t.is(fs.readdirSync(cacheDir).length, 3);

    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on("warning", onWarning);
    try {
      const bytes = fs.readFileSync(first.cacheFile!);
      const at = bytes.length - 500; // inside the arrays
      bytes.writeUInt8(bytes.readUInt8(at) ^ 0x5a, at);
      fs.writeFileSync(first.cacheFile!, bytes);
      const rebuilt = await prepareSummarizationData(options);
      t.false(rebuilt.fromCache);
      t.deepEqual(rebuilt.targetTokens, first.targetTokens);
      fs.truncateSync(first.cacheFile!, fs.statSync(first.cacheFile!).size - 4);
      t.false((await prepareSummarizationData(options)).fromCache);
      t.true((await prepareSummarizationData(options)).fromCache);
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off("warning", onWarning);
    }
    t.is(warnings.length, 2);
    t.regex(warnings[0]!, /sha256 mismatch/);
    t.regex(warnings[1]!, /truncated/);
  },
);

test("SplitMix64: the published outputs", (t) => {
  const zero = new SplitMix64(0n);
  t.deepEqual([zero.next(), zero.next(), zero.next()], [0xe220a8397b1dcdafn, 0x6e789e6aa1b965f4n, 0x06c45d188009454fn]);
  const r = new SplitMix64(1234567n);
  t.deepEqual(
    Array.from({ length: 5 }, () => r.next()),
    [6457827717110365317n, 3203168211198807973n, 9817491932198370423n, 4593380528125082431n, 16408922859458223821n],
  );
});

test("summary swap: test vectors (from an independent Python implementation of the rule)", (t) => {
  const v = (seed: number, batchIndex: number, rows: number, p?: number) =>
    Array.from(summarySwapSources({ seed, batchIndex, rows, ...(p !== undefined && { p }) }));
  t.deepEqual(v(42, 7, 16), [0, 1, 2, 3, 4, 5, 0, 7, 4, 9, 10, 15, 12, 13, 14, 15]);
  t.deepEqual(v(42, 8, 16), [0, 1, 2, 4, 4, 5, 6, 7, 8, 9, 10, 8, 12, 13, 14, 15]);
  t.deepEqual(v(0, 0, 8, 0.5), [0, 5, 3, 2, 6, 4, 6, 7]);
  t.deepEqual(v(2 ** 32 - 1, 2 ** 32 - 1, 12, 0.3), [0, 9, 2, 3, 4, 6, 1, 2, 8, 1, 10, 11]);
  t.throws(() => v(2 ** 32, 0, 4), { instanceOf: RangeError, message: /seed: expected an integer in \[0, 2\^32\)/ });
  t.throws(() => v(1, -1, 4), { instanceOf: RangeError, message: /batchIndex/ });
  t.throws(() => v(1, 0, 4, 1.5), { instanceOf: RangeError, message: /p: expected a number in \[0, 1\]/ });
});

test("summary swap: reproducible per seed, rate ≈ p, never with itself, partners uniform", (t) => {
  const rows = 32;
  const batches = 2000;
  let swapped = 0;
  const partnerOffsets = new Array<number>(rows).fill(0);
  for (let b = 0; b < batches; b++) {
    const src = summarySwapSources({ seed: 1234, batchIndex: b, rows });
    t.deepEqual(src, summarySwapSources({ seed: 1234, batchIndex: b, rows }));
    src.forEach((j, i) => {
      if (j === i) return;
      swapped++;
      partnerOffsets[(j - i + rows) % rows]!++;
    });
  }
  const rate = swapped / (rows * batches);
  // binomial sd ≈ 0.0014 for 64,000 rows: 0.006 is over 4 sd
  t.true(Math.abs(rate - 0.15) < 0.006, `rate ${rate}`);
  t.is(partnerOffsets[0], 0, "never swapped with itself");
  const mean = swapped / (rows - 1);
  t.true(
    partnerOffsets.slice(1).every((n) => Math.abs(n - mean) < 6 * Math.sqrt(mean)),
    `${partnerOffsets}`,
  );

  const a = Array.from({ length: 50 }, (_, b) => Array.from(summarySwapSources({ seed: 1, batchIndex: b, rows })));
  const c = Array.from({ length: 50 }, (_, b) => Array.from(summarySwapSources({ seed: 2, batchIndex: b, rows })));
  t.notDeepEqual(a, c, "another seed, other swaps");

  t.deepEqual(
    Array.from(summarySwapSources({ seed: 9, batchIndex: 3, rows, p: 0 })),
    Array.from({ length: rows }, (_, i) => i),
  );
  t.true(summarySwapSources({ seed: 9, batchIndex: 3, rows, p: 1 }).every((j, i) => j !== i));
  t.deepEqual(Array.from(summarySwapSources({ seed: 9, batchIndex: 3, rows: 1, p: 1 })), [0]);
  t.is(summarySwapSources({ seed: 9, batchIndex: 3, rows: 0 }).length, 0);
});

test("summary swap on packed targets: row i becomes the original row src[i]", async (t) => {
  const p = await prepareSummarizationData({ source: "dialogsum", split: "test", tokenizer: gpt2, cache: false });
  const rows = 16;
  const T = p.maxTarget;
  const targets = p.targetTokens.subarray(0, rows * T);
  const lengths = p.targetLengths.subarray(0, rows);
  const src = summarySwapSources({ seed: 42, batchIndex: 7, rows });
  const out = applySummarySwap(targets, lengths, T, src);
  for (let i = 0; i < rows; i++) {
    t.deepEqual(out.targets.subarray(i * T, (i + 1) * T), targets.subarray(src[i]! * T, (src[i]! + 1) * T));
    t.is(out.lengths[i], lengths[src[i]!]);
  }
  t.notDeepEqual(out.targets, targets);
  t.throws(() => applySummarySwap(targets, lengths, T + 1, src), { instanceOf: RangeError });
});
