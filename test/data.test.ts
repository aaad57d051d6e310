// The language-modelling data pipeline on the real data sets: WikiText documents in the tokenized, raw and
// Hugging Face parquet layouts (the parquet files written here from real WikiText-2 lines), the OOD readers,
// packing into sequences, and the token cache.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import test from "ava";
import { parquetWriteFile } from "hyparquet-writer";

import {
  dataDir,
  detectWikiTextLayout,
  encodeGpt2Documents,
  GPT2_EOS,
  packDocuments,
  prepareLanguageModelData,
  readOodDocuments,
  readWikiTextDocuments,
  tokenCacheDir,
  type PackedArrays,
} from "../lib/data/index.ts";
import { sharedTmpDir } from "./helpers/tmp.ts";

const DATA = dataDir();
const WT2 = path.join(DATA, "wikitext-2");
const RAW_TEST = path.join(WT2, "raw_test_only");
const tmp = sharedTmpDir("dpsm-data-test-");

function fileLines(file: string): string[] {
  return fs.readFileSync(file, "utf8").split(/\r?\n/);
}

// An independent reading of the definition: a level-1 heading line is " = X = " with X not starting with "=".
const isTitle = (line: string) => /^ = [^=].* = $/.test(line);
const validLines = fileLines(path.join(WT2, "tokens", "valid.txt"));

test("WikiText-2 valid: one document per level-1 heading, sections stay inside, blank lines dropped", async (t) => {
  const docs = await readWikiTextDocuments(WT2, "valid");
  const titles = validLines.filter(isTitle);
  t.is(docs.length, titles.length);
  t.is(docs.length, 60);
  t.true(docs[0]!.startsWith(" = Homarus gammarus = \n Homarus gammarus , known as the European lobster"));
  t.deepEqual(
    docs.map((d) => d.split("\n")[0]),
    titles,
  );
  const docLines = docs.flatMap((d) => d.split("\n"));
  t.false(docLines.some((l) => l.trim() === ""));
  t.deepEqual(
    docLines,
    validLines.filter((l) => l.trim() !== ""),
  ); // nothing else changed or lost
  t.true(
    docs.some((d) => d.includes("\n = = ")),
    "section headings are inside documents",
  );
});

test("raw release reader: the raw test split (CRLF) gives the tokenized test split's documents, line for line", async (t) => {
  t.is(detectWikiTextLayout(RAW_TEST), "raw");
  const raw = await readWikiTextDocuments(RAW_TEST, "test");
  const tokenized = await readWikiTextDocuments(WT2, "test");
  t.is(raw.length, fileLines(path.join(RAW_TEST, "wiki.test.raw")).filter(isTitle).length);
  t.is(raw.length, tokenized.length);
  t.true(raw[0]!.startsWith(" = Robert Boulter = \n Robert Boulter is an English film , television and theatre actor"));
  t.false(raw.some((d) => d.includes("\r")));
  t.false(raw.some((d) => d.includes("<unk>")));
  t.deepEqual(
    raw.map((d) => d.split("\n").length),
    tokenized.map((d) => d.split("\n").length),
  );
});

test("layout detection and missing files: errors name the folder and what was looked for", async (t) => {
  t.is(detectWikiTextLayout(WT2), "tokens");
  const empty = fs.mkdtempSync(path.join(tmp, "empty-"));
  t.throws(() => detectWikiTextLayout(empty), {
    message: new RegExp(`no WikiText files found in ${empty}.*\\n.*wiki\\.\\{train,valid,test\\}\\.tokens`, "s"),
  });
  await t.throwsAsync(readWikiTextDocuments(path.join(tmp, "absent"), "test"), {
    message: /WikiText folder not found: .*absent/,
  });
  await t.throwsAsync(readWikiTextDocuments(RAW_TEST, "train"), {
    message: /train split \(raw layout\) not found under .*raw_test_only.*wiki\.\{train,valid,test\}\.raw/,
  });
  await t.throwsAsync(prepareLanguageModelData({ source: "wikitext-103", split: "train" }), {
    message: /wikitext-103 not found: .*wikitext-103/,
  });
  await t.throwsAsync(
    prepareLanguageModelData({ source: "wikitext-2", split: "test", dataDir: path.join(tmp, "nodata") }),
    {
      message: /data directory not found: .*nodata/,
    },
  );
});

/** Hugging Face's rows for these lines: each line with its "\n", an empty string for a blank line. */
function hfRows(lines: string[]): string[] {
  return lines.slice(0, lines.at(-1) === "" ? -1 : undefined).map((l) => (l.trim() === "" ? "" : `${l}\n`));
}

function writeShard(file: string, rows: string[]): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  parquetWriteFile({ filename: file, columnData: [{ name: "text", data: rows, type: "STRING" }], rowGroupSize: 1000 });
}

test("parquet reader: Hugging Face layout written from real WikiText-2 valid lines gives the same documents", async (t) => {
  const rows = hfRows(validLines);
  const single = path.join(tmp, "hf-single");
  writeShard(path.join(single, "wikitext-2-raw-v1", "validation-00000-of-00001.parquet"), rows);
  const sharded = path.join(tmp, "hf-sharded", "wikitext-2-raw-v1");
  const half = Math.floor(rows.length / 2);
  writeShard(path.join(sharded, "validation-00001-of-00002.parquet"), rows.slice(half));
  writeShard(path.join(sharded, "validation-00000-of-00002.parquet"), rows.slice(0, half));

  const direct = await readWikiTextDocuments(WT2, "valid");
  t.is(detectWikiTextLayout(single), "parquet");
  t.deepEqual(await readWikiTextDocuments(single, "valid"), direct);
  t.deepEqual(await readWikiTextDocuments(sharded, "valid", "parquet"), direct);

  const partial = path.join(tmp, "hf-partial");
  writeShard(path.join(partial, "validation-00001-of-00002.parquet"), rows.slice(half));
  await t.throwsAsync(readWikiTextDocuments(partial, "valid"), { message: /incomplete parquet shards for validation/ });

  // the whole pipeline gives the same tokens from parquet as from the tokenized files
  const fromParquet = await prepareLanguageModelData({ source: { dir: single }, split: "valid", cache: false });
  const fromTokens = await prepareLanguageModelData({ source: "wikitext-2", split: "valid", cache: false });
  t.regex(fromParquet.source, /\(parquet\)$/);
  t.deepEqual(fromParquet.tokens, fromTokens.tokens);
});

test("OOD readers: PTB as one stream per file, Shakespeare whole, Wikinews and books one document per gold_ref", (t) => {
  const ptb = readOodDocuments("ptb", DATA);
  t.is(ptb.length, 1);
  t.is(ptb[0]!.split("\n").length, 3761); // ptb.test.txt's lines
  t.is(readOodDocuments("ptb", DATA, "valid")[0]!.split("\n").length, 3370);
  const shakespeare = readOodDocuments("tinyshakespeare", DATA);
  t.is(shakespeare.length, 1);
  t.true(shakespeare[0]!.startsWith("First Citizen:\nBefore we proceed any further, hear me speak."));
  t.is(shakespeare[0]!.length, 1115394);

  for (const [name, file] of [
    ["wikinews", "wikinews_cd"],
    ["books", "book_cd"],
  ] as const) {
    const docs = readOodDocuments(name, DATA);
    t.is(docs.length, 500, name);
    const rows = fileLines(path.join(DATA, "ood_lm", file, "test.jsonl"))
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as { gold_ref: string });
    t.deepEqual(
      docs,
      rows.map((r) => r.gold_ref),
      name,
    );
  }
  t.throws(() => readOodDocuments("books", DATA, "valid"), { instanceOf: RangeError, message: /no valid split/ });
});

/** The rows' real tokens, concatenated. */
function unpack(p: PackedArrays): number[] {
  const out: number[] = [];
  for (let s = 0; s < p.sequences; s++) {
    const row = p.tokens.subarray(s * p.contextLength, (s + 1) * p.contextLength);
    out.push(...row.subarray(0, p.lengths[s]));
    for (let i = p.lengths[s]!; i < p.contextLength; i++)
      if (row[i] !== GPT2_EOS) throw new Error(`row ${s}: padding ${row[i]} at ${i}`);
  }
  return out;
}

test("packing: full rows, EOS after every document, the stream intact, a short tail kept only from 32 tokens", (t) => {
  const ids = encodeGpt2Documents(readOodDocuments("wikinews", DATA));
  const stream: number[] = ids.flatMap((d) => [...d, GPT2_EOS]);
  const docTokens = ids.reduce((a, d) => a + d.length, 0);
  t.false(
    ids.some((d) => d.includes(GPT2_EOS)),
    "no EOS inside a document",
  );

  // context lengths whose tail is long enough to keep, too short to keep, and absent
  const kept = [1024, 1000, 999].find((c) => stream.length % c >= 32)!;
  const dropped = Array.from({ length: 4000 }, (_, i) => i + 64).find(
    (c) => stream.length % c > 0 && stream.length % c < 32,
  )!;
  const exact = Array.from({ length: 4000 }, (_, i) => i + 64).find((c) => stream.length % c === 0);
  for (const C of [kept, dropped, ...(exact ? [exact] : [])]) {
    const p = packDocuments(ids, { contextLength: C, minRemainder: 32 });
    const tail = stream.length % C;
    t.is(p.streamTokens, docTokens + ids.length, `C=${C}`);
    t.is(p.documents, 500);
    t.is(p.tokens.length, p.sequences * C);
    t.is(
      p.totalTokens,
      p.lengths.reduce((a, b) => a + b, 0),
    );
    t.true(Array.from(p.lengths.subarray(0, -1)).every((n) => n === C));
    const last = p.lengths[p.sequences - 1]!;
    t.true(last === C || last >= 32, `C=${C}: last row ${last}`);
    t.is(p.totalTokens, tail >= 32 || tail === 0 ? stream.length : stream.length - tail, `C=${C}`);
    t.deepEqual(unpack(p), stream.slice(0, p.totalTokens), `C=${C}`);
  }
  t.not(packDocuments(ids, { contextLength: kept, minRemainder: 32 }).lengths.at(-1), kept);
  t.is(packDocuments(ids, { contextLength: dropped, minRemainder: 32 }).lengths.at(-1), dropped);
});

test.serial(
  "cache: the second call reads the cache; a corrupted or truncated file is detected and rebuilt",
  async (t) => {
    const cacheDir = path.join(tmp, "cache");
    const options = { source: "wikitext-2", split: "valid", contextLength: 512, cacheDir } as const;
    const first = await prepareLanguageModelData(options);
    t.false(first.fromCache);
    t.is(first.source, "wikitext-2/valid (tokens)");
    t.is(first.documents, 60);
    t.true(first.cacheFile !== undefined && first.cacheFile.startsWith(cacheDir));
    t.deepEqual(fs.readdirSync(cacheDir), [path.basename(first.cacheFile!)], "no temporary file left behind");

    const second = await prepareLanguageModelData(options);
    t.true(second.fromCache);
    t.deepEqual(second.tokens, first.tokens);
    t.deepEqual(second.lengths, first.lengths);
    t.is(second.totalTokens, first.totalTokens);
    t.is(second.streamTokens, first.streamTokens);

    const other = await prepareLanguageModelData({ ...options, contextLength: 1024 });
    t.false(other.fromCache, "other settings, other cache entry");
    t.is(other.totalTokens, first.totalTokens);

    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on("warning", onWarning);
    try {
      const file = first.cacheFile!;
      const bytes = fs.readFileSync(file);
      const at = bytes.length - 1000; // inside the token payload
      bytes.writeUInt8(bytes.readUInt8(at) ^ 0x5a, at);
      fs.writeFileSync(file, bytes);
      const rebuilt = await prepareLanguageModelData(options);
      t.false(rebuilt.fromCache);
      t.deepEqual(rebuilt.tokens, first.tokens);

      fs.truncateSync(file, fs.statSync(file).size - 4);
      t.false((await prepareLanguageModelData(options)).fromCache);
      t.true((await prepareLanguageModelData(options)).fromCache);
      await new Promise((r) => setImmediate(r)); // warnings are delivered on the next tick
    } finally {
      process.off("warning", onWarning);
    }
    t.is(warnings.length, 2);
    t.regex(warnings[0]!, /sha256 mismatch/);
    t.regex(warnings[1]!, /truncated/);
  },
);

/** Runs `fn` with the environment variables `vars` set (undefined: unset), then puts them back as they were. */
function withEnv(vars: Record<string, string | undefined>, fn: () => void): void {
  const saved = Object.fromEntries(Object.keys(vars).map((name) => [name, process.env[name]]));
  const apply = (values: Record<string, string | undefined>) => {
    for (const [name, value] of Object.entries(values)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
  try {
    apply(vars);
    fn();
  } finally {
    apply(saved);
  }
}

test.serial("cache folder: DPSM_CACHE_DIR, else the user's cache folder (XDG_CACHE_HOME, else ~/.cache)", (t) => {
  withEnv({ DPSM_CACHE_DIR: undefined, XDG_CACHE_HOME: tmp }, () => {
    t.is(tokenCacheDir(), path.join(tmp, "dpsm-native", "tokens"));
    delete process.env.XDG_CACHE_HOME;
    t.is(tokenCacheDir(), path.join(os.homedir(), ".cache", "dpsm-native", "tokens"));
    process.env.DPSM_CACHE_DIR = tmp;
    t.is(tokenCacheDir(), tmp);
  });
});

test.serial("a default data folder under /proc is refused naming the setting it comes from, not made", (t) => {
  // The one path check of every writer (lib/io/paths.ts): a recursive mkdir under /proc never returns.
  withEnv({ DPSM_DATA_DIR: undefined, XDG_CACHE_HOME: "/proc/self/x" }, () => {
    t.throws(() => dataDir(), {
      message:
        /^the data cache folder \(from XDG_CACHE_HOME\): \/proc\/self\/x\/dpsm-native\/data lies in \/proc, a kernel/,
    });
  });
  withEnv({ DPSM_DATA_DIR: undefined, XDG_CACHE_HOME: undefined, HOME: "/proc/self/x" }, () => {
    t.throws(() => dataDir(), {
      message: /^the data cache folder \(from HOME\): \/proc\/self\/x\/\.cache\/.* lies in \/proc/,
    });
  });
  withEnv({ DPSM_DATA_DIR: undefined, XDG_CACHE_HOME: tmp }, () => {
    t.is(dataDir(), path.join(tmp, "dpsm-native", "data"));
    t.true(fs.statSync(dataDir()).isDirectory());
  });
});

test("options are validated and errors name the argument", async (t) => {
  await t.throwsAsync(prepareLanguageModelData({ source: "wikitext-2", split: "test", contextLength: 1 }), {
    instanceOf: RangeError,
    message: /prepareLanguageModelData options\.contextLength/,
  });
  await t.throwsAsync(prepareLanguageModelData({ source: "wikitext-2" }), {
    instanceOf: RangeError,
    message: /options\.split: required for WikiText/,
  });
  await t.throwsAsync(prepareLanguageModelData({ source: { ood: "books" }, split: "valid" }), {
    message: /OOD set "books" has only: test/,
  });
  await t.throwsAsync(prepareLanguageModelData({ source: "wikitext-3" as "wikitext-2", split: "test" }), {
    message: /options\.source: expected "wikitext-2", "wikitext-103", \{ dir/,
  });
  await t.throwsAsync(prepareLanguageModelData({ source: "wikitext-2", split: "test", contextLenght: 8 } as never), {
    message: /unknown option\(s\) "contextLenght"/,
  });
});

test("an OOD set through the whole pipeline", async (t) => {
  const p = await prepareLanguageModelData({ source: { ood: "ptb" }, split: "valid", cache: false });
  const ids = encodeGpt2Documents(readOodDocuments("ptb", DATA, "valid"))[0]!;
  t.is(p.source, "ood:ptb/valid");
  t.is(p.documents, 1);
  t.is(p.fromCache, false);
  t.is(p.cacheFile, undefined);
  t.is(p.streamTokens, ids.length + 1);
  t.deepEqual(unpack(p), [...ids, GPT2_EOS].slice(0, p.totalTokens));
});
