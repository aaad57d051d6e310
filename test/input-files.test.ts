// Input files a user's mistake or a hostile folder puts in a reader's way (issue 29): FIFOs and folders where
// files are read, empty splits, rows that are not objects. Each is refused by name, never a hang or a split of
// 0 examples. Records are the data folder's real ones, written here in the layouts under test.
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

import test, { type ExecutionContext } from "ava";
import { parquetWriteFile } from "hyparquet-writer";

import {
  dataDir,
  encodeGpt2,
  GPT2_TOKENIZER_ID,
  prepareLanguageModelData,
  prepareSummarizationData,
  readWikiText,
  readWikiTextDocuments,
  summarizationSplit,
} from "../lib/data/index.ts";
import { WIKITEXT_SPLITS } from "../lib/index.ts";
import { loadTokenizer, TokenizerFormatError } from "../lib/tokenizers/index.ts";
import { tmpDir } from "./helpers/tmp.ts";

const DATA = dataDir();
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const TOKENIZER = path.join(import.meta.dirname, "fixtures", "tokenizers", "bart");

/**
 * A FIFO at `file`. Should a reader block on it anyway, a writer opens it after 20 s and closes it, so the read
 * ends (and the test fails on what it got) instead of hanging the run.
 */
function fifo(t: ExecutionContext, file: string): void {
  execFileSync("mkfifo", [file]);
  const writer = spawn("sh", ["-c", 'sleep 20; : > "$0"', file], { stdio: "ignore" });
  t.teardown(() => {
    writer.kill();
  });
}

async function cnnStories(t: ExecutionContext): Promise<string> {
  const { records } = await summarizationSplit({
    source: "cnn_dailymail",
    split: "validation",
    dir: path.join(DATA, "cnn_dailymail"),
  });
  const dir = tmpDir(t, "dpsm-input-stories-");
  fs.mkdirSync(path.join(dir, "validation"));
  for (const r of records.slice(0, 3)) {
    const story = `${r.document}\n\n@highlight\n\n${r.references[0]!.split("\n").join("\n\n@highlight\n\n")}\n`;
    fs.writeFileSync(path.join(dir, "validation", `${r.id}.story`), story);
  }
  return dir;
}

test("a FIFO or a folder named x.story among CNN/DailyMail stories is refused by name", async (t) => {
  const dir = await cnnStories(t);
  const read = () => summarizationSplit({ source: "cnn_dailymail", split: "validation", dir, layout: "story" });
  t.is((await read()).records.length, 3);
  const x = path.join(dir, "validation", "x.story");
  fifo(t, x);
  await t.throwsAsync(read(), { message: `CNN/DailyMail story: ${x} is a FIFO (named pipe), expected a regular file` });
  fs.rmSync(x);
  fs.mkdirSync(x);
  await t.throwsAsync(read(), { message: `CNN/DailyMail story: ${x} is a folder, expected a regular file` });
});

test("a tokenizer.json that is a FIFO or a folder is refused by name", (t) => {
  const dir = tmpDir(t, "dpsm-input-tokenizer-");
  for (const f of fs.readdirSync(TOKENIZER)) fs.copyFileSync(path.join(TOKENIZER, f), path.join(dir, f));
  t.is(loadTokenizer(dir).specialTokens.eos, 2);
  const file = path.join(dir, "tokenizer.json");
  fs.rmSync(file);
  fifo(t, file);
  t.throws(() => loadTokenizer(dir), {
    instanceOf: TokenizerFormatError,
    message: `${file}: is a FIFO (named pipe), expected a file`,
  });
  fs.rmSync(file);
  fs.mkdirSync(file);
  t.throws(() => loadTokenizer(dir), {
    instanceOf: TokenizerFormatError,
    message: `${file}: is a folder, expected a file`,
  });
});

test("empty splits are refused by name: a 0-byte dev.jsonl, a 0-row parquet shard, empty WikiText files", async (t) => {
  const dir = tmpDir(t, "dpsm-input-empty-");
  const dev = path.join(dir, "dialogsum", "dev.jsonl");
  fs.mkdirSync(path.dirname(dev));
  fs.writeFileSync(dev, "");
  await t.throwsAsync(summarizationSplit({ source: "dialogsum", split: "validation", dir: path.dirname(dev) }), {
    message: `${dev}: holds no records, expected one JSON object per line`,
  });

  const shard = path.join(dir, "xsum", "validation-00000-of-00001.parquet");
  fs.mkdirSync(path.dirname(shard));
  parquetWriteFile({
    filename: shard,
    columnData: ["id", "document", "summary"].map((name) => ({ name, data: [], type: "STRING" as const })),
  });
  await t.throwsAsync(summarizationSplit({ source: "xsum", split: "validation", dir: path.dirname(shard) }), {
    message: new RegExp(`^${escape(shard)}: .*the shard holds 0 rows`),
  });

  const wiki = path.join(dir, "wikitext");
  fs.mkdirSync(wiki);
  for (const split of WIKITEXT_SPLITS)
    fs.writeFileSync(path.join(wiki, `wiki.${split}.tokens`), split === "test" ? " \n\n" : "");
  const empty = new RegExp(`^WikiText test split: ${escape(path.join(wiki, "wiki.test.tokens"))} hold\\(s\\) no text`);
  t.throws(() => readWikiText(wiki, "test"), { message: empty });
  await t.throwsAsync(readWikiTextDocuments(wiki, "test"), { message: empty });
});

test("a JSON-lines row that is not an object is refused naming file:line", async (t) => {
  const real = fs.readFileSync(path.join(DATA, "dialogsum", "dev.jsonl"), "utf8").split("\n")[0]!;
  const dir = tmpDir(t, "dpsm-input-rows-");
  const dev = path.join(dir, "dev.jsonl");
  for (const [row, got] of [
    ["null", "null"],
    ["[1, 2]", "an array"],
    ['"text"', "string"],
  ]) {
    fs.writeFileSync(dev, `${real}\n${row}\n`);
    await t.throwsAsync(summarizationSplit({ source: "dialogsum", split: "validation", dir }), {
      message: `${dev}:2: expected a JSON object (one record), got ${got}`,
    });
  }
});

// The token cache's header had no checksum: an edited count or example id was returned as if cached, and a
// renamed key gave a bare TypeError. Now either is a miss, rebuilt, with a warning saying why.
test.serial(
  "an edited token-cache header is detected and the entry rebuilt (a count, an example id, a key)",
  async (t) => {
    const cacheDir = tmpDir(t, "dpsm-input-cache-");
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on("warning", onWarning);
    t.teardown(() => process.off("warning", onWarning));
    const edit = (file: string, from: string, to: string) => {
      t.is(from.length, to.length, "an edit that keeps the header's length");
      const bytes = fs.readFileSync(file);
      const at = bytes.indexOf(from);
      t.true(at > 0, `${from} in the header`);
      bytes.write(to, at, "latin1");
      fs.writeFileSync(file, bytes);
    };

    const lm = { source: "wikitext-2", split: "valid", contextLength: 512, cacheDir } as const;
    const first = await prepareLanguageModelData(lm);
    t.true((await prepareLanguageModelData(lm)).fromCache);
    edit(first.cacheFile!, `"documents":${first.documents}`, `"documents":${first.documents + 1}`);
    const again = await prepareLanguageModelData(lm);
    t.false(again.fromCache);
    t.is(again.documents, first.documents);

    const gpt2 = { id: GPT2_TOKENIZER_ID, encode: encodeGpt2 };
    const sum = { source: "dialogsum", split: "validation", tokenizer: gpt2, cacheDir } as const;
    const prepared = await prepareSummarizationData(sum);
    const id = prepared.ids[0]!;
    edit(prepared.cacheFile!, `"${id}"`, `"${id.slice(0, -1)}${id.endsWith("x") ? "y" : "x"}"`);
    const rebuilt = await prepareSummarizationData(sum);
    t.false(rebuilt.fromCache);
    t.is(rebuilt.ids[0], id);
    edit(prepared.cacheFile!, '"ids":', '"idz":');
    t.false((await prepareSummarizationData(sum)).fromCache);
    t.true((await prepareSummarizationData(sum)).fromCache);

    await new Promise((r) => setImmediate(r)); // warnings are delivered on the next tick
    t.is(warnings.length, 3);
    for (const w of warnings) t.regex(w, /^token cache .*: header sha256 mismatch \(edited\?\); rebuilding it$/);
  },
);
